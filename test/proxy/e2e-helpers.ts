/**
 * End-to-end plumbing for `capframe serve`: a temp directory with a policy whose
 * upstreams are the real example servers (each counting its tools/calls in a
 * CALL_LOG file), the proxy as a real child process (HTTP on port 0, or one
 * `--stdio` process per client), and SDK `Client`s connected to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';
import { stringify } from 'yaml';

import { signingKey, type SigningKey } from '../../src/keys/keys.js';
import { CLI, ROOT, tempDir } from '../helpers.js';

export const EXAMPLE_SERVERS = join(ROOT, 'examples', 'servers');
/** Wraps a stdio server that has no call counter of its own and counts its tools/calls. */
export const COUNT_CALLS = join(ROOT, 'test', 'proxy', 'fixtures', 'count-calls.mjs');

/** The `bin` entry of @modelcontextprotocol/server-everything, read from its package.json. */
export function everythingEntry(): string {
  const dir = join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : Object.values(pkg.bin)[0];
  if (bin === undefined) throw new Error('@modelcontextprotocol/server-everything has no bin entry');
  return join(dir, bin);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** One line the upstream wrote to CALL_LOG. */
export interface UpstreamCall {
  server: string;
  tool: string;
  args: Record<string, unknown>;
  /** The request's `_meta`, when the counter records it (test/proxy/fixtures/count-calls.mjs does). */
  meta?: Record<string, unknown> | null;
}

/** A temp directory holding a policy, its state directory and the upstreams' CALL_LOG. */
export interface PolicyEnv {
  dir: string;
  policyFile: string;
  stateDir: string;
  callLog: string;
  /** Every tools/call the upstreams received so far. */
  calls(): UpstreamCall[];
  /** The issuer key `serve` (or `mint`) created in the state directory. */
  issuerKey(): SigningKey;
  /** Deletes the temp dir (after the proxy has stopped). */
  remove(): void;
}

/** A stdio upstream entry for one of examples/servers/*.js, counting its calls in `callLog`. */
export function exampleServer(name: 'database' | 'payments' | 'filesystem' | 'http' | 'shell', callLog: string): Record<string, unknown> {
  return { command: process.execPath, args: [join(EXAMPLE_SERVERS, `${name}.js`)], env: { CALL_LOG: callLog }, timeout: 20 };
}

/**
 * Writes `policy.yaml` in a fresh temp dir. `build` gets the CALL_LOG path and returns
 * the body under the top-level `capframe:` key.
 */
export function createPolicyEnv(build: (ctx: { callLog: string; dir: string }) => Record<string, unknown>): PolicyEnv {
  const dir = tempDir('capframe-e2e-');
  const callLog = join(dir, 'calls.log');
  const policyFile = join(dir, 'policy.yaml');
  const stateDir = join(dir, '.capframe');
  writeFileSync(policyFile, stringify({ capframe: build({ callLog, dir }) }));
  return {
    dir,
    policyFile,
    stateDir,
    callLog,
    calls() {
      if (!existsSync(callLog)) return [];
      return readFileSync(callLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as UpstreamCall);
    },
    issuerKey: () => signingKey(readFileSync(join(stateDir, 'issuer.key'), 'utf8')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A `capframe serve --port 0` child process. */
export interface ServeProcess {
  /** `http://127.0.0.1:<port>/mcp`, as printed on stderr. */
  url: string;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  pid: number;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** SIGTERM, then the exit code (SIGKILL and an error after 10 s). */
  stop(): Promise<number | null>;
}

function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...extra })) if (v !== undefined) env[k] = v;
  return env;
}

function waitForExit(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`capframe serve (pid ${child.pid}) did not exit within ${ms} ms of SIGTERM`));
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Starts `capframe serve --policy <file> --port 0` (plus `args`) and resolves once it prints its URL. */
export async function startServe(env: PolicyEnv, options: { args?: string[]; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--policy', env.policyFile, '--port', '0', ...(options.args ?? [])], {
    cwd: env.dir,
    env: childEnv(options.env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`capframe serve did not print its URL within ${options.timeoutMs ?? 45_000} ms; stderr:\n${stderr}`));
    }, options.timeoutMs ?? 45_000);
    child.stderr!.on('data', (chunk: string) => {
      stderr += chunk;
      const m = /^capframe: serving (http:\/\/\S+)$/m.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`capframe serve exited with ${code} before listening; stderr:\n${stderr}`));
    });
  });
  return {
    url,
    origin: new URL(url).origin,
    pid: child.pid!,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      return waitForExit(child, 10_000);
    },
  };
}

/** An SDK client on the proxy's Streamable HTTP endpoint, with optional extra headers. */
export async function connectHttp(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'capframe-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

let stdioCount = 0;

/** An SDK client that runs `capframe serve --policy <file> --stdio` as its own child. */
export async function connectStdio(env: PolicyEnv, agentKey?: string): Promise<{ client: Client; stderr(): string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    // Each stdio proxy is its own process, so each gets its own audit log (one writer per log).
    args: [CLI, 'serve', '--policy', env.policyFile, '--stdio', '--audit-log', join(env.dir, `audit-stdio-${++stdioCount}.log`)],
    cwd: env.dir,
    env: childEnv({ CAPFRAME_AGENT_KEY: agentKey }),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const client = new Client({ name: 'capframe-e2e', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (error) {
    throw new Error(`capframe serve --stdio did not start: ${(error as Error).message}; stderr:\n${stderr}`);
  }
  return { client, stderr: () => stderr };
}

export type TransportKind = 'http' | 'stdio';

/** How a client identifies itself: the agent API key, and (HTTP only) a Capframe-Token header. */
export interface ClientOptions {
  agentKey?: string;
  tokenHeader?: string;
}

/**
 * The proxy behind one transport. Over HTTP one `serve` process answers every client;
 * over stdio every client runs its own `serve --stdio` (the agent key comes from its env).
 */
export interface Proxy {
  kind: TransportKind;
  env: PolicyEnv;
  /** The HTTP server (HTTP only). */
  http?: ServeProcess;
  connect(options?: ClientOptions): Promise<Client>;
  /**
   * Closes every client and stops the server. Returns the HTTP server's exit code; over
   * stdio, 0 when every `serve --stdio` logged a clean shutdown after its stdin closed, else 1.
   */
  stop(): Promise<number | null>;
}

export async function openProxy(kind: TransportKind, env: PolicyEnv, options: { serveEnv?: Record<string, string> } = {}): Promise<Proxy> {
  const clients: Client[] = [];
  const stdioLogs: (() => string)[] = [];
  const http = kind === 'http' ? await startServe(env, options.serveEnv === undefined ? {} : { env: options.serveEnv }) : undefined;
  return {
    kind,
    env,
    ...(http !== undefined && { http }),
    async connect(opts = {}) {
      let client: Client;
      if (http !== undefined) {
        const headers: Record<string, string> = {};
        if (opts.agentKey !== undefined) headers.authorization = `Bearer ${opts.agentKey}`;
        if (opts.tokenHeader !== undefined) headers['capframe-token'] = opts.tokenHeader;
        client = await connectHttp(http.url, headers);
      } else {
        if (opts.tokenHeader !== undefined) throw new Error('stdio has no headers; Capframe-Token is an HTTP feature');
        const stdio = await connectStdio(env, opts.agentKey);
        stdioLogs.push(stdio.stderr);
        client = stdio.client;
      }
      clients.push(client);
      return client;
    },
    async stop() {
      // Over stdio, close() ends the child's stdin and waits (up to 2 s) for it to exit.
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
      if (http !== undefined) return http.stop();
      return stdioLogs.every((log) => /"msg":"capframe runtime stopped"/.test(log())) ? 0 : 1;
    },
  };
}

/** `params._meta` carrying a token the way SPEC §6 says. */
export function withToken(token: string): { 'capframe/token': string } {
  return { 'capframe/token': token };
}

/** Calls a tool, optionally presenting `token` in `_meta`. */
export async function call(client: Client, name: string, args: Record<string, unknown>, token?: string): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args, ...(token !== undefined && { _meta: withToken(token) }) })) as CallToolResult;
}

export function textOf(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

/** Asserts the SPEC §6 denial shape for `code`. */
export function expectDenial(result: CallToolResult, code: string): void {
  expect(result.isError, `expected DENIED ${code}, got ${JSON.stringify(result)}`).toBe(true);
  expect(result.content).toHaveLength(1);
  expect(textOf(result)).toMatch(new RegExp(`^DENIED ${code}: \\S`));
  const decision = (result._meta as Record<string, unknown> | undefined)?.['capframe/decision'] as { allowed: unknown; code: unknown; reason: unknown } | undefined;
  expect(decision).toEqual({ allowed: false, code, reason: expect.any(String) });
  expect(textOf(result)).toBe(`DENIED ${code}: ${decision!.reason as string}`);
}

/** Runs `act`, asserts it was denied with `code`, and that no upstream saw a tools/call meanwhile. */
export async function expectDenied(env: PolicyEnv, act: () => Promise<CallToolResult>, code: string): Promise<CallToolResult> {
  const before = env.calls().length;
  const result = await act();
  expectDenial(result, code);
  expect(env.calls().length, 'a denied call reached the upstream').toBe(before);
  return result;
}

/**
 * Runs `act`, asserts it succeeded and that exactly one tools/call reached the upstreams:
 * `expected` (server, the upstream's own tool name, and the exact arguments).
 */
export async function expectForwarded(env: PolicyEnv, act: () => Promise<CallToolResult>, expected: Omit<UpstreamCall, 'meta'>): Promise<CallToolResult> {
  const before = env.calls().length;
  const result = await act();
  expect(result.isError ?? false, `expected the upstream's result, got ${JSON.stringify(result)}`).toBe(false);
  const after = env.calls();
  expect(after.length, 'an allowed call did not reach the upstream exactly once').toBe(before + 1);
  const { server, tool, args } = after.at(-1)!;
  expect({ server, tool, args }).toEqual(expected);
  return result;
}

/** The JSON an example server returned as text. */
export function jsonOf(result: CallToolResult): unknown {
  return JSON.parse(textOf(result));
}
