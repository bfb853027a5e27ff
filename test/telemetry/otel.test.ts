/**
 * OpenTelemetry (issue 14, acceptance 4): with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
 * local OTLP/HTTP receiver, a real `serve` exports exactly one span per tools/call with
 * the decision attributes, as a child of the caller's W3C traceparent (from `_meta` or
 * the HTTP header), and the upstream receives the span's own traceparent in `_meta`.
 * Without the variable nothing is exported and the SDK is not even loaded.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { COUNT_CALLS, EXAMPLE_SERVERS, connectHttp, createPolicyEnv, startServe, type PolicyEnv } from '../proxy/e2e-helpers.js';

const KEY = 'cfk_otel-test-agent';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
  status?: { code?: number };
}

let receiver: Server;
let endpoint: string;
const spans: OtlpSpan[] = [];
const requests: { path: string; type: string }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', type: String(req.headers['content-type']) });
      const data = JSON.parse(body) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of data.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
});
afterAll(() => receiver.close());

const attrs = (span: OtlpSpan) => Object.fromEntries(span.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.intValue]));

function policy(): PolicyEnv {
  return createPolicyEnv(({ callLog }) => ({
    version: '0.2',
    default_policy: 'deny',
    agents: { bot: { key_sha256: createHash('sha256').update(KEY).digest('hex'), auto_mint: true } },
    servers: { database: { command: process.execPath, args: [COUNT_CALLS, process.execPath, join(EXAMPLE_SERVERS, 'database.js')], env: { CALL_LOG: callLog } } },
    rules: [{ tool: 'database.query', ttl: 60 }],
  }));
}

describe('OpenTelemetry spans', () => {
  it('one span per tools/call with the decision, child of the caller\'s traceparent, passed upstream', async () => {
    const env = policy();
    const served = await startServe(env, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' } });
    try {
      const parent = { trace: '0af7651916cd43dd8448eb211c80319c', span: 'b7ad6b7169203331' };
      const viaHeader = { trace: '4bf92f3577b34da6a3ce929d0e0e4736', span: '00f067aa0ba902b7' };
      const client = await connectHttp(served.url, { authorization: `Bearer ${KEY}` });
      const headerClient = await connectHttp(served.url, { authorization: `Bearer ${KEY}`, traceparent: `00-${viaHeader.trace}-${viaHeader.span}-01` });
      const allowed = (await client.callTool({ name: 'database.query', arguments: { sql: 'SELECT * FROM customers WHERE id = 1' }, _meta: { traceparent: `00-${parent.trace}-${parent.span}-01` } })) as CallToolResult;
      expect(allowed.isError ?? false, JSON.stringify(allowed)).toBe(false);
      const denied = (await headerClient.callTool({ name: 'database.update', arguments: { sql: 'UPDATE t' } })) as CallToolResult;
      expect(denied.isError).toBe(true);
      const bare = (await client.callTool({ name: 'database.query', arguments: { sql: 'SELECT * FROM customers WHERE id = 2' }, _meta: { traceparent: 'not-a-traceparent' } })) as CallToolResult;
      expect(bare.isError ?? false).toBe(false);
      await client.close();
      await headerClient.close();
    } finally {
      expect(await served.stop()).toBe(0); // shutdown flushes the last batch
    }
    expect(requests.every((r) => r.path === '/v1/traces' && r.type.startsWith('application/json'))).toBe(true);
    const calls = spans.filter((s) => s.name.startsWith('tools/call '));
    expect(calls.map((s) => s.name)).toEqual(['tools/call database.query', 'tools/call database.update', 'tools/call database.query']);

    const [first, second, third] = calls as [OtlpSpan, OtlpSpan, OtlpSpan];
    expect(first.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(first.parentSpanId).toBe('b7ad6b7169203331');
    expect(attrs(first)).toMatchObject({ 'capframe.decision': 'allow', 'capframe.code': 'ok', 'capframe.tool': 'database.query', 'capframe.agent': 'bot', 'capframe.upstream.outcome': 'ok', 'capframe.upstream.server': 'database', 'mcp.method.name': 'tools/call' });
    expect(attrs(first)['capframe.token_id']).toMatch(/^tok_/);
    expect(second.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(second.parentSpanId).toBe('00f067aa0ba902b7');
    expect(attrs(second)).toMatchObject({ 'capframe.decision': 'deny', 'capframe.code': 'no_rule', 'capframe.agent': 'bot', 'capframe.upstream.outcome': 'not_forwarded' });
    // A malformed traceparent is ignored: a new trace, no parent.
    expect(third.parentSpanId ?? '').toBe('');
    expect(third.traceId).not.toBe(first.traceId);

    // The upstream got each forwarded call's own span as its parent, in _meta.
    // (count-calls.mjs logs each call with its _meta as server "wrapped"; database.js logs it too.)
    const upstream = env.calls().filter((c) => c.server === 'wrapped');
    expect(upstream).toHaveLength(2);
    expect(upstream[0]!.meta?.traceparent).toBe(`00-${first.traceId}-${first.spanId}-01`);
    expect(upstream[1]!.meta?.traceparent).toMatch(new RegExp(`^00-${third.traceId}-${third.spanId}-0[01]$`));
    env.remove();
  }, 60_000);

  it('without an OTLP endpoint: no export, and the caller\'s traceparent still reaches the upstream', async () => {
    const env = policy();
    const before = requests.length;
    const served = await startServe(env, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: undefined, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined } });
    try {
      const client = await connectHttp(served.url, { authorization: `Bearer ${KEY}` });
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await client.callTool({ name: 'database.query', arguments: { sql: 'SELECT * FROM customers WHERE id = 1' }, _meta: { traceparent } });
      await client.close();
      expect(env.calls().find((c) => c.server === 'wrapped')!.meta?.traceparent).toBe(traceparent);
      expect(served.stderr()).not.toMatch(/tracing/);
    } finally {
      expect(await served.stop()).toBe(0);
    }
    expect(requests.length).toBe(before);
    env.remove();
  }, 60_000);
});
