/**
 * Plumbing for the console tests: a real `capframe serve --console` child in front of the
 * example database server, HTTP requests with any header (Origin, Cookie, X-CSRF-Token),
 * and signing in through the form as a browser does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import { createPolicyEnv, exampleServer, sha256Hex, startServe, type PolicyEnv, type ServeProcess } from '../proxy/e2e-helpers.js';
import { CLI } from '../helpers.js';

export const ADMIN_KEY = 'console-test-admin-key-0123456789';
export const AGENT_KEY = 'cfk_console_test_support_bot_key';

/** A policy with one agent and two tools of the example database server. */
export function consolePolicyEnv(extra: Record<string, unknown> = {}): PolicyEnv {
  return createPolicyEnv(({ callLog }) => ({
    version: '0.2',
    default_policy: 'deny',
    servers: { database: exampleServer('database', callLog) },
    agents: { 'support-bot': { key_sha256: sha256Hex(AGENT_KEY) } },
    rules: [
      { tool: 'database.query', ttl: 300, agents: ['support-bot'] },
      { tool: 'database.update', ttl: 60, agents: ['support-bot'] },
    ],
    ...extra,
  }));
}

export type ConsoleServer = ServeProcess;

export interface ExitedServe {
  code: number | null;
  stderr: string;
}

function spawnServe(env: PolicyEnv, args: string[], extraEnv: Record<string, string | undefined>): ChildProcess {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, CAPFRAME_ADMIN_KEY: ADMIN_KEY, ...extraEnv })) if (v !== undefined) childEnv[k] = v;
  return spawn(process.execPath, [CLI, 'serve', '--policy', env.policyFile, '--port', '0', ...args], { cwd: env.dir, env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Starts `capframe serve --console` (plus `args`) with the admin key and resolves once it listens. */
export function startConsole(env: PolicyEnv, options: { args?: string[]; env?: Record<string, string | undefined> } = {}): Promise<ConsoleServer> {
  return startServe(env, { args: ['--console', ...(options.args ?? [])], env: { CAPFRAME_ADMIN_KEY: ADMIN_KEY, ...options.env } });
}

/** Runs `capframe serve` with arguments that must make it refuse to start; resolves with its exit. */
export function serveRefusal(env: PolicyEnv, args: string[], extraEnv: Record<string, string | undefined>): Promise<ExitedServe> {
  const child = spawnServe(env, args, extraEnv);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`capframe serve ${args.join(' ')} kept running; stderr:\n${stderr}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

/** One HTTP request with exactly these headers; the body as given (a string) or as JSON. */
export function http(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string | object } = {}): Promise<Answer> {
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = {
    ...(body !== undefined && typeof options.body === 'object' && { 'content-type': 'application/json' }),
    ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface Signed {
  /** `capframe_console=<id>`, for a Cookie header. */
  cookie: string;
  /** The raw Set-Cookie value the login answered with. */
  setCookie: string;
  csrf: string;
}

/** Signs in through the form (as a same-origin browser page does) and fetches the session's CSRF token. */
export async function signIn(base: string, key = ADMIN_KEY): Promise<Signed> {
  const login = await http(base, '/console/login', {
    body: new URLSearchParams({ key }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
  });
  if (login.status !== 303) throw new Error(`sign-in answered ${login.status}: ${login.text.slice(0, 300)}`);
  const setCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? [])[0] ?? '';
  const cookie = setCookie.split(';')[0]!;
  const session = await http(base, '/console/api/session', { headers: { cookie } });
  const { csrf } = session.json() as { csrf: string };
  return { cookie, setCookie, csrf };
}

/** An SDK call with a token in `_meta`. */
export async function callWith(client: Client, tool: string, args: Record<string, unknown>, token: string): Promise<CallToolResult> {
  return (await client.callTool({ name: tool, arguments: args, _meta: { 'capframe/token': token } })) as CallToolResult;
}

/** Asks the proxy for a token as the agent would. */
export async function requestToken(client: Client, tool: string): Promise<{ token: string; id: string }> {
  const issued = (await client.callTool({ name: 'capframe.request_token', arguments: { tool } })) as CallToolResult;
  const body = issued.structuredContent as { token?: string; id?: string } | undefined;
  if (body?.token === undefined || body.id === undefined) throw new Error(`no token issued: ${JSON.stringify(issued)}`);
  return { token: body.token, id: body.id };
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface StreamEvent {
  event: string;
  id?: string;
  data: string;
}

export interface OpenStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** Every event so far. */
  events: StreamEvent[];
  /** Resolves once the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens the decisions stream and collects its events as they arrive. */
export function openStream(base: string, cookie: string | undefined, query = ''): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/console/api/decisions/stream${query}`, base), { headers: { accept: 'text/event-stream', ...(cookie !== undefined && { cookie }) } }, (res) => {
      const events: StreamEvent[] = [];
      let buffer = '';
      let endedResolve!: () => void;
      const ended = new Promise<void>((r) => (endedResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let at: number;
        while ((at = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const event: StreamEvent = { event: 'message', data: '' };
          let any = false;
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) ((event.event = line.slice(7)), (any = true));
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('data: ')) ((event.data += line.slice(6)), (any = true));
          }
          if (any) events.push(event);
        }
      });
      res.on('end', endedResolve);
      res.on('close', endedResolve);
      res.on('error', endedResolve);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, events, ended, close: () => req.destroy() });
    });
    req.on('error', (error) => {
      if (!req.destroyed) reject(error);
    });
    req.end();
  });
}

/** The decisions a stream carried, parsed. */
export function decisionsOf(stream: OpenStream): Record<string, unknown>[] {
  return stream.events.filter((e) => e.event === 'decision').map((e) => JSON.parse(e.data) as Record<string, unknown>);
}
