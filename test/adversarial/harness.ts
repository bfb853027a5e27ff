/**
 * The shared harness of the adversarial suite (issue 8, acceptance 1): one real
 * `capframe serve` child per test file, in front of recording upstreams
 * (test/adversarial/fixtures/raw-upstream.mjs, hand-written JSON-RPC over stdio, and the
 * example servers), and three ways to attack it: the official SDK client, raw HTTP with
 * any bytes and headers, and raw TCP for what Node's HTTP client will not send.
 *
 * Every attack asserts its code and what the upstream saw: nothing (proved with a
 * sentinel call sent after the attack, which must be the only new line in CALL_LOG) or
 * exactly the arguments that were checked (whose canonical SHA-256 must equal the
 * `args_sha256` the proxy audited for that call).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';

import type { AuditRecord } from '../../src/audit/index.js';
import { canonicalJson, sha256Hex } from '../../src/audit/canonical-json.js';
import { signingKey, type SigningKey } from '../../src/keys/keys.js';
import { sseMessages } from '../http/raw.js';
import { tempDir, ROOT } from '../helpers.js';
import { killAllServed, NODE, poll, q, startServe, textOf, type Served } from '../proxy/faults-helpers.js';

export { poll, textOf } from '../proxy/faults-helpers.js';

export const RAW_UPSTREAM = join(ROOT, 'test', 'adversarial', 'fixtures', 'raw-upstream.mjs');
export const EXAMPLES = join(ROOT, 'examples', 'servers');
export const PROTOCOL = '2025-06-18';

/** Agent keys; every edge defines these agents (alice and bob mint per call, carol does not). */
export const KEYS = { alice: 'cfk_adv-alice-0123456789', bob: 'cfk_adv-bob-0123456789', carol: 'cfk_adv-carol-0123456789' } as const;
export type AgentName = keyof typeof KEYS;
const sha = (key: string) => createHash('sha256').update(key).digest('hex');

/** One tools/call as the upstream recorded it. */
export interface UpstreamCall {
  server: string;
  tool: string;
  args: Record<string, unknown>;
  meta?: Record<string, unknown> | null;
}

export interface UpstreamSpec {
  /** raw-upstream.mjs (default) or an example server. */
  kind?: 'raw' | 'database' | 'payments' | 'filesystem' | 'http';
  env?: Record<string, string>;
  /** Seconds. */
  timeout?: number;
  maxResultBytes?: number;
}

export interface EdgeOptions {
  servers: Record<string, UpstreamSpec>;
  /** YAML lines under `rules:` (each starting with "- "), indented by the harness. */
  rules: string[];
  /** YAML lines under `capframe:` besides the harness's own keys (capabilities, screen, …). */
  extra?: string[];
  /** Extra `serve` flags. */
  args?: string[];
  /** `auto_mint` for alice and bob (default true). */
  autoMint?: boolean;
  /** Without agents: pure capability mode. */
  noAgents?: boolean;
  /** Environment of `serve` (e.g. CAPFRAME_ADMIN_KEY). */
  env?: Record<string, string>;
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The JSON body, or each JSON-RPC message of an SSE body; [] when neither parses. */
  messages: unknown[];
}

export interface Send {
  method?: string;
  path?: string;
  /** Header values; an array sends the header once per value. Defaults: accept (JSON and SSE), content-type JSON. */
  headers?: Record<string, string | string[] | undefined>;
  /** A value is sent as JSON; a string or Buffer as is. */
  body?: unknown;
  /** Sent as separate chunks with Transfer-Encoding: chunked (no Content-Length). */
  chunks?: (string | Buffer)[];
  key?: AgentName | string;
  session?: string;
}

export interface Edge {
  served: Served;
  base: string;
  url: string;
  dir: string;
  stateDir: string;
  policyFile: string;
  /** Every tools/call the upstreams recorded so far. */
  calls(): UpstreamCall[];
  /** Every message server `name` (a raw upstream) received. */
  messages(name: string): Record<string, unknown>[];
  audit(): AuditRecord[];
  /** The issuer key `serve` created in the state directory (to mint tokens by hand). */
  issuerKey(): SigningKey;
  /** Raw HTTP to the proxy. */
  send(r: Send): Promise<RawAnswer>;
  /** A session opened by hand for `agent` (initialize + initialized). */
  session(agent?: AgentName): Promise<string>;
  /** An official SDK client as `agent`. */
  client(agent?: AgentName, headers?: Record<string, string>): Promise<Client>;
  /** A lone tools/call over raw HTTP on `session` (the fast path); its JSON-RPC answer. */
  rpcCall(session: string, agent: AgentName | undefined, name: string, args: unknown, meta?: unknown): Promise<{ status: number; result?: CallToolResult; error?: unknown }>;
  stop(): Promise<void>;
}

function yamlServer(name: string, spec: UpstreamSpec, callLog: string, dir: string): string {
  const kind = spec.kind ?? 'raw';
  const file = kind === 'raw' ? RAW_UPSTREAM : join(EXAMPLES, `${kind}.js`);
  const env: Record<string, string> = { SERVER_NAME: name, CALL_LOG: callLog, MESSAGE_LOG: join(dir, `messages-${name}.log`), ...spec.env };
  const envYaml = Object.entries(env)
    .map(([k, v]) => `${k}: ${q(v)}`)
    .join(', ');
  const extras = [spec.timeout !== undefined && `timeout: ${spec.timeout}`, spec.maxResultBytes !== undefined && `max_result_bytes: ${spec.maxResultBytes}`].filter(Boolean);
  return `    ${name}: { command: ${NODE}, args: [${q(file)}], env: { ${envYaml} }${extras.map((e) => `, ${e}`).join('')} }`;
}

function readLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

/** Sends one HTTP request with exactly these headers and body bytes, and reads the whole answer. */
export function sendRaw(base: string, r: Send): Promise<RawAnswer> {
  // The path as written (no URL normalisation of "//mcp" or "/mcp/../mcp").
  const { hostname, port } = new URL(base);
  const body = r.body === undefined ? undefined : typeof r.body === 'string' || Buffer.isBuffer(r.body) ? r.body : JSON.stringify(r.body);
  const key = r.key === undefined ? undefined : r.key in KEYS ? KEYS[r.key as AgentName] : r.key;
  const headers: Record<string, string | string[]> = {
    accept: 'application/json, text/event-stream',
    ...((body !== undefined || r.chunks !== undefined) && { 'content-type': 'application/json' }),
    ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }),
    ...(key !== undefined && { authorization: `Bearer ${key}` }),
    ...(r.session !== undefined && { 'mcp-session-id': r.session, 'mcp-protocol-version': PROTOCOL }),
  };
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: r.path ?? '/mcp', method: r.method ?? (body === undefined && r.chunks === undefined ? 'GET' : 'POST'), headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        const type = String(res.headers['content-type'] ?? '');
        let messages: unknown[] = [];
        try {
          if (type.startsWith('text/event-stream')) messages = sseMessages(text);
          else if (type.startsWith('application/json') && text !== '') messages = [JSON.parse(text)];
        } catch {
          messages = [];
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, messages });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (r.chunks !== undefined) {
      for (const chunk of r.chunks) req.write(chunk);
      req.end();
    } else req.end(body);
  });
}

/**
 * Writes `bytes` on a fresh TCP connection and resolves with the HTTP status line's code
 * (0 when the server closed without answering) once the server answers or closes.
 */
export function sendTcp(base: string, bytes: string | Buffer, waitMs = 5000): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      // One full answer is enough.
      const head = text.indexOf('\r\n\r\n');
      if (head >= 0) {
        const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head));
        if (length && text.length >= head + 4 + Number(length[1])) done();
      }
    });
    socket.on('end', done);
    socket.on('error', (e) => (text === '' ? reject(e) : done()));
    socket.write(bytes);
  });
}

/** Starts the edge: a temp dir, the policy, `capframe serve` and its upstreams. */
export async function startEdge(options: EdgeOptions): Promise<Edge> {
  const dir = tempDir('capframe-adv-');
  const callLog = join(dir, 'calls.log');
  const stateDir = join(dir, 'state');
  const policyFile = join(dir, 'policy.yaml');
  const autoMint = options.autoMint ?? true;
  const lines = [
    'capframe:',
    '  version: "0.2"',
    '  default_policy: deny',
    `  state_dir: ${q(stateDir)}`,
    ...(options.noAgents === true
      ? []
      : [
          '  agents:',
          `    alice: { key_sha256: "${sha(KEYS.alice)}", auto_mint: ${autoMint} }`,
          `    bob: { key_sha256: "${sha(KEYS.bob)}", auto_mint: ${autoMint} }`,
          `    carol: { key_sha256: "${sha(KEYS.carol)}" }`,
        ]),
    '  servers:',
    ...Object.entries(options.servers).map(([name, spec]) => yamlServer(name, spec, callLog, dir)),
    ...(options.extra ?? []).map((l) => `  ${l}`),
    '  rules:',
    ...options.rules.map((l) => `    ${l}`),
  ];
  writeFileSync(policyFile, `${lines.join('\n')}\n`);
  const served = await startServe(policyFile, { args: options.args ?? [], timeoutMs: 60_000, ...(options.env !== undefined && { env: options.env }) });
  const clients: Client[] = [];

  const edge: Edge = {
    served,
    base: served.base,
    url: served.url,
    dir,
    stateDir,
    policyFile,
    calls: () => readLines<UpstreamCall>(callLog),
    messages: (name) => readLines<Record<string, unknown>>(join(dir, `messages-${name}.log`)),
    audit: () => readLines<AuditRecord>(join(stateDir, 'audit.log')),
    issuerKey: () => signingKey(readFileSync(join(stateDir, 'issuer.key'), 'utf8')),
    send: (r) => sendRaw(served.base, r),
    async session(agent) {
      const init = await edge.send({
        ...(agent !== undefined && { key: agent }),
        body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'adversary', version: '1' } } },
      });
      const id = init.headers['mcp-session-id'];
      if (init.status !== 200 || typeof id !== 'string') throw new Error(`initialize answered ${init.status}: ${init.text}`);
      const note = await edge.send({ ...(agent !== undefined && { key: agent }), session: id, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
      if (note.status !== 202) throw new Error(`notifications/initialized answered ${note.status}: ${note.text}`);
      return id;
    },
    async client(agent, headers = {}) {
      const client = new Client({ name: 'adversary-sdk', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(served.url), {
          requestInit: { headers: { ...(agent !== undefined && { authorization: `Bearer ${KEYS[agent]}` }), ...headers } },
        }),
      );
      clients.push(client);
      return client;
    },
    async rpcCall(session, agent, name, args, meta) {
      const params: Record<string, unknown> = { name, arguments: args };
      if (meta !== undefined) params._meta = meta;
      const answer = await edge.send({ ...(agent !== undefined && { key: agent }), session, body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params } });
      const message = answer.messages[0] as { result?: CallToolResult; error?: unknown } | undefined;
      return { status: answer.status, ...(message?.result !== undefined && { result: message.result }), ...(message?.error !== undefined && { error: message.error }) };
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await served.stop().catch(() => undefined);
      killAllServed();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return edge;
}

/** `_meta["capframe/decision"]` and `_meta["capframe/outcome"]` of a result. */
export function metaOf(result: CallToolResult | undefined): { decision?: Record<string, unknown>; outcome?: Record<string, unknown>; meta: Record<string, unknown> } {
  const meta = (result?._meta ?? {}) as Record<string, unknown>;
  return { decision: meta['capframe/decision'] as Record<string, unknown> | undefined, outcome: meta['capframe/outcome'] as Record<string, unknown> | undefined, meta };
}

/** Asserts a SPEC §6 denial with `code`: DENIED text, isError, the decision in `_meta`. */
export function expectDenial(result: CallToolResult | undefined, code: string): void {
  expect(result, 'no tools/call result').toBeDefined();
  const text = textOf(result);
  expect(result!.isError, `expected DENIED ${code}, got ${text}`).toBe(true);
  expect(text).toMatch(new RegExp(`^DENIED ${code}: \\S`));
  expect(metaOf(result).decision).toEqual({ allowed: false, code, reason: text.slice(`DENIED ${code}: `.length) });
}

/** Asserts an UPSTREAM_ERROR with `code`: sent (allowed decision) and the outcome in `_meta`. */
export function expectUpstreamError(result: CallToolResult | undefined, code: string): void {
  expect(result, 'no tools/call result').toBeDefined();
  const text = textOf(result);
  expect(result!.isError, `expected UPSTREAM_ERROR ${code}, got ${text}`).toBe(true);
  expect(text).toMatch(new RegExp(`^UPSTREAM_ERROR ${code}: [^]*may have run`));
  const { decision, outcome } = metaOf(result);
  expect(decision).toMatchObject({ allowed: true, code: 'ok' });
  expect(outcome).toEqual({ code, reason: expect.any(String) });
}

let sentinels = 0;

/**
 * Proves the upstream saw nothing of `act`: after it, a sentinel call (an allowed echo
 * through `via`) must be the only new tools/call in CALL_LOG. Upstreams read their stdin
 * in order, so anything `act` had forwarded would be recorded before the sentinel.
 */
export async function expectNothingForwarded<T>(edge: Edge, act: () => Promise<T>, sentinel: (marker: number) => Promise<unknown>): Promise<T> {
  const before = edge.calls().length;
  const out = await act();
  const marker = ++sentinels;
  await sentinel(marker);
  const seen = edge.calls().slice(before);
  expect(
    seen.map((c) => c.args),
    'a refused request reached the upstream',
  ).toEqual([expect.objectContaining({ sentinel: marker })]);
  return out;
}

/**
 * Asserts that `act` reached the upstream exactly once, as `tool` with exactly `args`,
 * and that those are the arguments the proxy checked: a new `allow` line for the call
 * appears in the audit log with their canonical SHA-256 as `args_sha256` (the audit log
 * is written asynchronously, so it is polled for).
 */
export async function expectForwardedExactly<T>(edge: Edge, act: () => Promise<T>, expected: { server: string; tool: string; args: unknown }): Promise<T> {
  const qualified = `${expected.server}.${expected.tool}`;
  const hash = sha256Hex(canonicalJson(expected.args));
  const audited = () => edge.audit().filter((r) => r.decision === 'allow' && r.tool === qualified && r.args_sha256 === hash).length;
  const before = edge.calls().length;
  const auditedBefore = audited();
  const out = await act();
  const seen = edge.calls().slice(before);
  expect(seen.map(({ server, tool, args }) => ({ server, tool, args })), 'an allowed call did not reach the upstream exactly once, as checked').toEqual([expected]);
  // The arguments the upstream received are the ones the proxy checked and audited.
  await poll(() => (audited() > auditedBefore ? true : undefined), `an allow line for ${qualified} with args_sha256 ${hash} (the checked arguments)`);
  expect(audited()).toBe(auditedBefore + 1);
  return out;
}

/** The last audit line that matches, once it is written. */
export function auditLine(edge: Edge, match: (r: AuditRecord) => boolean, what: string): Promise<AuditRecord> {
  return poll(() => edge.audit().filter(match).at(-1), what);
}

/** What an attack is expected to get. */
export type Expect =
  /** DENIED <code> as a tool result (HTTP 200); nothing forwarded. */
  | { denied: string }
  /** Allowed: the upstream got exactly these arguments (for `tool` of `server`), and they are the audited ones. */
  | { forwarded: Record<string, unknown>; server?: string; tool?: string }
  /** This HTTP status (with this JSON-RPC error code, when given); nothing forwarded. */
  | { status: number; rpc?: number };

/** The tools/call result of an answer (plain JSON, or the first message of an SSE stream). */
export function resultOf(answer: RawAnswer): CallToolResult | undefined {
  return (answer.messages[0] as { result?: CallToolResult } | undefined)?.result;
}

/**
 * Sends one attack and asserts `want`: for a refusal, its code and that the upstream saw
 * nothing (proved by `sentinel`); for an allowed call, that the upstream got exactly the
 * checked arguments and echoed them back (the raw upstream's tools echo).
 */
export async function expectAnswer(
  edge: Edge,
  send: () => Promise<RawAnswer>,
  want: Expect,
  sentinel: (marker: number) => Promise<unknown>,
  defaults: { server: string; tool: string },
): Promise<RawAnswer> {
  if ('forwarded' in want) {
    const answer = await expectForwardedExactly(edge, send, { server: want.server ?? defaults.server, tool: want.tool ?? defaults.tool, args: want.forwarded });
    expect(answer.status, answer.text).toBe(200);
    const result = resultOf(answer);
    expect(result?.isError ?? false, textOf(result)).toBe(false);
    expect(metaOf(result).decision).toMatchObject({ allowed: true, code: 'ok' });
    expect(JSON.parse(textOf(result))).toEqual(want.forwarded);
    return answer;
  }
  const answer = await expectNothingForwarded(edge, send, sentinel);
  if ('denied' in want) {
    expect(answer.status, answer.text).toBe(200);
    expectDenial(resultOf(answer), want.denied);
  } else {
    expect(answer.status, answer.text).toBe(want.status);
    if (want.rpc !== undefined) expect((answer.messages[0] as { error?: { code?: unknown } } | undefined)?.error?.code, answer.text).toBe(want.rpc);
  }
  return answer;
}

/** What a tools/call through the SDK client is expected to get. */
export type ToolExpect = { denied: string } | { forwarded: Record<string, unknown>; server?: string; tool?: string } | { upstreamError: string };

/**
 * `expectAnswer` for a call made with the official SDK client: DENIED and nothing
 * forwarded, or exactly the checked arguments forwarded (and echoed back).
 */
export async function expectToolResult(
  edge: Edge,
  act: () => Promise<CallToolResult>,
  want: ToolExpect,
  sentinel: (marker: number) => Promise<unknown>,
  defaults: { server: string; tool: string },
): Promise<CallToolResult> {
  if ('forwarded' in want) {
    const result = await expectForwardedExactly(edge, act, { server: want.server ?? defaults.server, tool: want.tool ?? defaults.tool, args: want.forwarded });
    expect(result.isError ?? false, textOf(result)).toBe(false);
    expect(metaOf(result).decision).toMatchObject({ allowed: true, code: 'ok' });
    expect(JSON.parse(textOf(result))).toEqual(want.forwarded);
    return result;
  }
  if ('upstreamError' in want) {
    const result = await act();
    expectUpstreamError(result, want.upstreamError);
    return result;
  }
  const result = await expectNothingForwarded(edge, act, sentinel);
  expectDenial(result, want.denied);
  return result;
}

/** The JSON-RPC id of a message, or undefined. */
export const idOf = (m: unknown): unknown => (m as { id?: unknown } | undefined)?.id;
