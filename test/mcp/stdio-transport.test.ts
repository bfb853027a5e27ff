/**
 * src/mcp/stdio-transport.ts with the official SDK Client and a real child (the hostile
 * fixture): an oversized or malformed answer fails its own request only, and the child
 * keeps serving.
 */
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';

import { NotSentError, RefusedAnswer, StdioUpstreamTransport } from '../../src/mcp/stdio-transport.js';
import { ROOT } from '../helpers.js';

const HOSTILE = join(ROOT, 'test', 'fixtures', 'hostile.js');
const open: Client[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function connect(maxMessageBytes: number): Promise<{ client: Client; transport: StdioUpstreamTransport; closed: () => boolean }> {
  const transport = new StdioUpstreamTransport({ command: process.execPath, args: [HOSTILE], maxMessageBytes });
  const client = new Client({ name: 'stdio-transport-test', version: '1' });
  let closed = false;
  client.onclose = () => (closed = true);
  await client.connect(transport);
  open.push(client);
  return { client, transport, closed: () => closed };
}

const callTool = (client: Client, name: string, args: Record<string, unknown> = {}) =>
  client.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, { timeout: 10_000 });

async function refusal(work: Promise<unknown>): Promise<RefusedAnswer> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(McpError);
  expect((error as McpError).data).toBeInstanceOf(RefusedAnswer);
  return (error as McpError).data as RefusedAnswer;
}

describe('StdioUpstreamTransport', () => {
  it('fails only the request whose answer is over the cap; a call in flight completes and the child lives on', async () => {
    const { client, transport, closed } = await connect(64 * 1024);
    const pid = transport.pid;
    expect(pid).toBeGreaterThan(0);
    const slow = callTool(client, 'slow', { ms: 1500 });
    const refused = await refusal(callTool(client, 'big', { bytes: 200_000 }));
    expect(refused.code).toBe('result_too_large');
    expect(refused.reason).toMatch(/max_result_bytes \(65536 bytes; skipped \d+\)/);
    expect(await slow).toMatchObject({ content: [{ type: 'text', text: 'slept 1500ms' }] });
    expect(await callTool(client, 'big', { bytes: 60_000 })).toMatchObject({ content: [{ type: 'text' }] });
    expect(await callTool(client, 'pid')).toMatchObject({ content: [{ text: String(pid) }] });
    expect(closed()).toBe(false);
  });

  it('fails a request answered with a malformed message at once, not by its timeout', async () => {
    const { client, closed } = await connect(1024 * 1024);
    const started = Date.now();
    const refused = await refusal(callTool(client, 'garbage'));
    expect(refused.code).toBe('malformed_result');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await callTool(client, 'echo', { a: 1 })).toMatchObject({ content: [{ text: '{"a":1}' }] });
    expect(closed()).toBe(false);
  });

  it('an upstream cannot forge the refusal: its own error data is plain JSON', async () => {
    const { client } = await connect(1024 * 1024);
    const error = await callTool(client, 'fail').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).data).not.toBeInstanceOf(RefusedAnswer);
  });

  it('send() to a child that is gone rejects with NotSentError', async () => {
    const { transport } = await connect(1024 * 1024);
    process.kill(transport.pid!, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sent = transport.send({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'echo' } });
    await expect(sent).rejects.toBeInstanceOf(NotSentError);
  });
});
