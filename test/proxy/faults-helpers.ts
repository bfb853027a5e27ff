/**
 * Helpers for the fault and audit end-to-end tests (test/proxy/faults.test.ts): the real
 * `capframe serve` as a child process, the official SDK client over Streamable HTTP,
 * bounded polling, and readers for the upstreams' CALL_LOG, /healthz and /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import { CLI, ROOT, type CliResult } from '../helpers.js';

export const EXAMPLE_SERVERS = join(ROOT, 'examples', 'servers');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
/** A YAML-safe (JSON) string: policies name node and server files by absolute path. */
export const q = (value: string): string => JSON.stringify(value);
export const NODE = q(process.execPath);

/** Runs `capframe <args>` like test/helpers `cli`, without blocking, so several can run at once. */
export function cliAsync(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return runAsync(process.execPath, [CLI, ...args], { timeoutMs });
}

/** Runs `command argv` in the repository, collecting its output, without blocking. */
export function runAsync(command: string, argv: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** One structured log line of `capframe serve` (stderr). */
export interface LogLine {
  time: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Served {
  /** `http://127.0.0.1:<port>/mcp` */
  url: string;
  /** `http://127.0.0.1:<port>` */
  base: string;
  pid: number;
  stderr(): string;
  /** Every JSON log line so far. */
  logs(): LogLine[];
  /** Resolves with the first log line (already written or future) that matches. */
  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  readonly exited: Promise<Exit>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then the exit status (bounded). */
  stop(timeoutMs?: number): Promise<Exit>;
}

const running = new Set<ChildProcess>();

/**
 * Kills (SIGKILL, whole process group: serve and its stdio upstreams) every serve
 * process still running. Call from afterEach/afterAll.
 */
export function killAllServed(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  running.clear();
}

/**
 * Starts `capframe serve --policy <file> --port 0` (backend selection inherited) in its
 * own process group and resolves once it prints `capframe: serving <url>`.
 */
export async function startServe(policyFile: string, options: { env?: Record<string, string>; timeoutMs?: number; args?: string[] } = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--policy', policyFile, '--port', '0', ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  running.add(child);
  let stderr = '';
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  const parsed: LogLine[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      parsed.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within ${options.timeoutMs ?? 30_000} ms; stderr:\n${stderr}`)), options.timeoutMs ?? 30_000);
    const check = () => {
      const m = /capframe: serving (http:\/\/\S+)/.exec(stderr);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve(m[1]);
      }
    };
    child.stderr!.on('data', check);
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${e.code ?? e.signal}) before listening; stderr:\n${stderr}`));
    });
  });

  const signal = (sig: NodeJS.Signals) => {
    child.kill(sig);
  };
  return {
    url,
    base: new URL(url).origin,
    pid: child.pid!,
    stderr: () => stderr,
    logs: () => [...parsed],
    waitForLog(match, what, timeoutMs = 5000) {
      const found = parsed.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(new Error(`no log line ${what} within ${timeoutMs} ms; stderr:\n${stderr}`));
        }, timeoutMs);
        const entry = {
          match,
          resolve: (line: LogLine) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(entry);
      });
    },
    exited,
    signal,
    async stop(timeoutMs = 10_000) {
      signal('SIGTERM');
      return withTimeout(exited, timeoutMs, () => `serve to exit after SIGTERM; stderr:\n${stderr}`);
    },
  };
}

/** `work`, or an error naming `what` after `ms`; `what` may be a function, called only on timeout. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined, for
 * at most `timeoutMs`; the error names what was awaited and the last value seen.
 */
export async function poll<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** An SDK client connected to the proxy over Streamable HTTP, optionally as an agent. */
export async function connectClient(url: string, agentKey?: string): Promise<Client> {
  const client = new Client({ name: 'capframe-faults-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    ...(agentKey !== undefined && { requestInit: { headers: { authorization: `Bearer ${agentKey}` } } }),
  });
  await client.connect(transport);
  return client;
}

/** The text content of a tool result. */
export function textOf(result: unknown): string {
  const content = (result as CallToolResult).content ?? [];
  return content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('');
}

/** Calls a tool through the proxy, presenting `token` in `_meta` when given. */
export async function call(client: Client, tool: string, args: Record<string, unknown>, token?: string): Promise<CallToolResult> {
  return (await client.callTool({
    name: tool,
    arguments: args,
    ...(token !== undefined && { _meta: { 'capframe/token': token } }),
  })) as CallToolResult;
}

/** Gets a token with `capframe.request_token`; throws with the denial text if refused. */
export async function requestToken(client: Client, tool: string): Promise<{ token: string; id: string }> {
  const result = await call(client, 'capframe.request_token', { tool });
  if (result.isError === true) throw new Error(`request_token ${tool}: ${textOf(result)}`);
  return JSON.parse(textOf(result)) as { token: string; id: string };
}

/** The `DENIED <code>` of a denial, or undefined when the call was not denied. */
export function deniedCode(result: CallToolResult): string | undefined {
  if (result.isError !== true) return undefined;
  return /^DENIED (\w+): /.exec(textOf(result))?.[1];
}

export interface CallLogLine {
  server: string;
  tool: string;
  args: Record<string, unknown>;
}

/** The calls an example server (or fixture) received, from its CALL_LOG file. */
export function upstreamCalls(file: string): CallLogLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as CallLogLine);
}

/** One upstream as /healthz shows it: no pid, no command line, no error text. */
export interface UpstreamHealth {
  up: boolean;
  tools: number;
  restarts: number;
  /** When it last went up or down (ISO 8601). */
  since?: string;
}

export interface Health {
  /** 200 while every upstream is up, 503 while one is down. */
  httpStatus: number;
  status: 'ok' | 'degraded';
  backend: string;
  upstreams: Record<string, UpstreamHealth>;
}

/** GET /healthz; 200 (ok) and 503 (degraded) are both answers, anything else throws. */
export async function healthz(base: string): Promise<Health> {
  const res = await fetch(`${base}/healthz`);
  if (res.status !== 200 && res.status !== 503) throw new Error(`/healthz answered ${res.status}`);
  return { httpStatus: res.status, ...((await res.json()) as Omit<Health, 'httpStatus'>) };
}

/** The pid of a stdio upstream's current child, from serve's latest "upstream connected" log line. */
export function upstreamPid(served: Served, server: string): number {
  const line = served.logs().filter((l) => l.msg === 'upstream connected' && l.server === server).at(-1);
  if (typeof line?.pid !== 'number') throw new Error(`serve logged no pid for upstream "${server}"; stderr:\n${served.stderr()}`);
  return line.pid;
}

export async function metricsText(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** The value of one sample, e.g. `capframe_upstream_up{server="database"}`, or undefined. */
export function sample(metrics: string, series: string): number | undefined {
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** Replaces a file atomically (write beside it, rename over it), as deploy tools do. */
export function replaceFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
