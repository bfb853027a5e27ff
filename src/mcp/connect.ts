/**
 * Connecting to upstream MCP servers with the official SDK client, shared by
 * `capframe discover` and the runtime proxy. One place decides how a configured
 * server becomes a live `Client`: stdio child process or Streamable HTTP.
 */
import { resolve } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

import { CapframeError } from '../errors.js';
import { DEFAULT_MAX_RESULT_BYTES, StdioUpstreamTransport } from './stdio-transport.js';

/**
 * An upstream server as configured in the policy's `servers` block. Structurally
 * the same as `ServerConfig` in src/policy/types.ts (declared here so this module
 * does not depend on the policy loader). `timeout` is in seconds; `maxResultBytes`
 * caps one answer (`max_result_bytes`, default {@link DEFAULT_MAX_RESULT_BYTES}).
 */
export type UpstreamConfig =
  | { command: string; args?: string[]; env?: Record<string, string>; cwd?: string; timeout?: number; maxResultBytes?: number }
  | { url: string; headers?: Record<string, string>; timeout?: number; maxResultBytes?: number };

/**
 * The server's own `maxResultBytes`, or the default (8 MiB).
 *
 * @example
 * maxResultBytes({ url: 'http://127.0.0.1:9000/mcp' }); // 8388608
 */
export function maxResultBytes(config: UpstreamConfig): number {
  return typeof config.maxResultBytes === 'number' && config.maxResultBytes > 0 ? config.maxResultBytes : DEFAULT_MAX_RESULT_BYTES;
}

/** A negotiated Streamable HTTP session: where to post and the headers that name the session. */
export interface HttpSession {
  url: URL;
  headers: Record<string, string>;
  sessionId(): string | undefined;
  protocolVersion(): string | undefined;
}

/** How to connect. */
export interface ConnectOptions {
  /** Deadline for the MCP `initialize` handshake, in milliseconds. */
  timeoutMs: number;
  /** Base directory for a stdio server: its default cwd, and what a relative `cwd` resolves against. Usually the policy file's directory. */
  cwd?: string;
  /** Receives the child's stderr (stdio only). It is always drained, so a chatty server never blocks. */
  onStderr?: (chunk: string) => void;
  /** How long `close()` waits for a stdio child to exit on its own before killing it (ms, default 1000). */
  closeGraceMs?: number;
  /** Client name/version announced to the upstream. */
  clientInfo?: { name: string; version: string };
}

/** A live connection to one upstream. */
export interface Upstream {
  client: Client;
  transport: 'stdio' | 'http';
  /** The Streamable HTTP session the client negotiated (http only), for callers that post to it directly. */
  http?: HttpSession;
  /** Child process id (stdio only). */
  pid?: number;
  /** The last few KiB the stdio child wrote to stderr (see {@link lastStderrLines}). */
  stderrTail(): string;
  /** Closes the session; a stdio child that lingers past the grace period is killed. Idempotent. */
  close(): Promise<void>;
}

const STDERR_TAIL_BYTES = 4096;

/** True for a stdio server entry (`command`), false for a Streamable HTTP one (`url`). */
export function isStdioConfig(config: UpstreamConfig): config is Extract<UpstreamConfig, { command: string }> {
  return typeof (config as { command?: unknown }).command === 'string';
}

/**
 * The server's own `timeout` (seconds) in milliseconds, or `fallbackMs`.
 *
 * @example
 * upstreamTimeoutMs({ url: 'http://127.0.0.1:9000/mcp', timeout: 5 }, 10_000); // 5000
 */
export function upstreamTimeoutMs(config: UpstreamConfig, fallbackMs: number): number {
  return typeof config.timeout === 'number' && config.timeout > 0 ? config.timeout * 1000 : fallbackMs;
}

/**
 * Connects to one upstream and completes the MCP handshake within `timeoutMs`.
 * Throws CapframeError(`upstream_unavailable`) naming the server and why (cannot
 * spawn, exited, refused, timed out); nothing is left running on failure.
 *
 * For stdio servers the child gets the SDK's safe default environment (PATH,
 * HOME, …) plus the configured `env`, not the whole parent environment, and its
 * stderr is piped, never inherited.
 *
 * @example
 * const up = await connectUpstream('database', { command: 'node', args: ['examples/servers/database.js'] },
 *   { timeoutMs: 10_000, cwd: dirname(policyFile) });
 * const tools = await listAllTools(up.client);
 * await up.close();
 */
export async function connectUpstream(name: string, config: UpstreamConfig, opts: ConnectOptions): Promise<Upstream> {
  const client = new Client(opts.clientInfo ?? { name: 'capframe', version: '0.1.0' }, { capabilities: {} });
  const graceMs = opts.closeGraceMs ?? 1000;
  let tail = '';

  if (isStdioConfig(config)) {
    const base = opts.cwd ?? process.cwd();
    // Our own transport: it caps every message at max_result_bytes and fails only the
    // request an oversized answer belongs to (see stdio-transport.ts).
    const transport = new StdioUpstreamTransport({
      command: config.command,
      args: config.args ?? [],
      ...(config.env ? { env: config.env } : {}),
      cwd: config.cwd ? resolve(base, config.cwd) : base,
      maxMessageBytes: maxResultBytes(config),
    });
    transport.stderr.on('data', (chunk: Buffer | string) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-STDERR_TAIL_BYTES);
      opts.onStderr?.(text);
    });
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await Promise.race([client.close().catch(() => undefined), delay(graceMs)]);
      // The transport escalates to SIGKILL only after ~4 s; a hung child should not hold us that long.
      transport.kill();
    };
    try {
      await withDeadline(client.connect(transport, { timeout: opts.timeoutMs }), opts.timeoutMs);
    } catch (error) {
      await close();
      throw upstreamError(name, `\`${[config.command, ...(config.args ?? [])].join(' ')}\``, error, opts.timeoutMs, tail);
    }
    const pid = transport.pid;
    return {
      client,
      transport: 'stdio',
      ...(pid !== undefined ? { pid } : {}),
      stderrTail: () => tail,
      close,
    };
  }

  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new CapframeError('upstream_unavailable', `server "${name}": url ${JSON.stringify(config.url)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CapframeError('upstream_unavailable', `server "${name}": url must be http:// or https://, got ${url.protocol}`);
  }
  const transport = new StreamableHTTPClientTransport(url, {
    ...(config.headers ? { requestInit: { headers: config.headers } } : {}),
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    // Ends the session politely when the server supports it; never waits long.
    await Promise.race([
      transport.terminateSession().catch(() => undefined).then(() => client.close()).catch(() => undefined),
      delay(graceMs),
    ]);
  };
  try {
    await withDeadline(client.connect(transport, { timeout: opts.timeoutMs }), opts.timeoutMs);
  } catch (error) {
    await close();
    throw upstreamError(name, url.origin + url.pathname, error, opts.timeoutMs, '');
  }
  const http: HttpSession = {
    url,
    headers: config.headers ?? {},
    sessionId: () => transport.sessionId,
    protocolVersion: () => transport.protocolVersion,
  };
  return { client, transport: 'http', http, stderrTail: () => '', close };
}

/** Options for {@link listAllTools}. */
export interface ListToolsOptions {
  /** Per-page request timeout in ms (SDK default when unset). */
  timeoutMs?: number;
  /** Stop with an error after this many pages (default 100): a server that never stops paginating is broken or hostile. */
  maxPages?: number;
  /**
   * Stop with an error once the server lists more tools than this (default 10,000): every
   * `tools/list` an agent sends carries them all, and no real server comes close.
   */
  maxTools?: number;
}

/** Default of {@link ListToolsOptions.maxTools}. */
export const MAX_UPSTREAM_TOOLS = 10_000;

/**
 * Lists every tool of a connected server, following `nextCursor` pagination.
 * Throws CapframeError(`upstream_unavailable`) if a cursor repeats or the page or tool
 * cap is reached, rather than returning a silently truncated list.
 *
 * @example
 * const tools = await listAllTools(up.client, { timeoutMs: 5000 });
 * tools.map((t) => t.name); // ['query', 'update']
 */
export async function listAllTools(client: Client, opts: ListToolsOptions = {}): Promise<Tool[]> {
  const maxPages = opts.maxPages ?? 100;
  const maxTools = opts.maxTools ?? MAX_UPSTREAM_TOOLS;
  const tools: Tool[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor }, opts.timeoutMs === undefined ? undefined : { timeout: opts.timeoutMs });
    if (tools.length + result.tools.length > maxTools) {
      throw new CapframeError('upstream_unavailable', `tools/list lists more than ${maxTools} tools; a server with that many is broken or hostile`);
    }
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (cursor === undefined || cursor === '') return tools;
    if (seen.has(cursor)) {
      throw new CapframeError('upstream_unavailable', `tools/list pagination loops: cursor ${JSON.stringify(cursor.slice(0, 80))} was returned twice`);
    }
    seen.add(cursor);
  }
  throw new CapframeError('upstream_unavailable', `tools/list did not finish within ${maxPages} pages`);
}

/**
 * The first line says what failed; the lines after it are the end of the child's
 * stderr, where a crashing server says why (often a stack trace). The operator
 * sees them in logs and `discover`; callers that answer agents should use only the
 * first line, since a server's stderr can quote its configuration.
 */
function upstreamError(name: string, target: string, error: unknown, timeoutMs: number, stderrTail: string): CapframeError {
  const reason = describeFailure(error, timeoutMs);
  const lines = lastStderrLines(stderrTail);
  const detail = lines.length === 0 ? '' : `\n${lines.map((line) => `  stderr: ${line}`).join('\n')}`;
  return new CapframeError('upstream_unavailable', `server "${name}" (${target}): ${reason}${detail}`, { cause: error });
}

/** At most this many stderr lines, and this many bytes of them, go into a start-up error. */
const STDERR_REPORT_LINES = 10;
const STDERR_REPORT_BYTES = 1024;
const STDERR_LINE_CHARS = 240;

/**
 * The last non-empty lines of a stderr tail, each trimmed, stripped of terminal
 * escapes and control characters (a hostile server must not drive the operator's
 * terminal), shortened, and bounded in number and total size.
 *
 * @example
 * lastStderrLines('Error: boom\n    at main (server.js:3:9)\n'); // ['Error: boom', 'at main (server.js:3:9)']
 */
export function lastStderrLines(tail: string): string[] {
  let lines = tail.split(/\r?\n|\r/);
  // A full tail starts mid-line; that fragment would only mislead.
  if (tail.length >= STDERR_TAIL_BYTES && lines.length > 1) lines = lines.slice(1);
  const out: string[] = [];
  let bytes = 0;
  for (let i = lines.length - 1; i >= 0 && out.length < STDERR_REPORT_LINES; i--) {
    let line = (lines[i] as string)
      .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]/g, '')
      .replace(/[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]/g, '')
      .replace(/\t/g, ' ')
      .trim();
    if (line === '') continue;
    if (line.length > STDERR_LINE_CHARS) line = `${line.slice(0, STDERR_LINE_CHARS - 3)}...`;
    bytes += Buffer.byteLength(line);
    if (bytes > STDERR_REPORT_BYTES && out.length > 0) break;
    out.unshift(line);
  }
  return out;
}

function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof DeadlineError) return `no answer to initialize within ${formatSeconds(timeoutMs)}`;
  const err = error as { code?: unknown; message?: unknown } | undefined;
  const code = systemErrorCode(error);
  if (code === 'ENOENT') return 'command not found';
  if (code === 'EACCES') return 'command is not executable';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return 'network unreachable';
  if (code === 'ECONNRESET') return 'connection reset';
  // McpError RequestTimeout is -32001.
  if (err?.code === -32001) return `no answer to initialize within ${formatSeconds(timeoutMs)}`;
  const message = typeof err?.message === 'string' ? err.message : String(error);
  if (/connection closed/i.test(message)) return 'the server exited or closed the connection during initialize';
  const cause = (error as { cause?: { message?: unknown } } | undefined)?.cause?.message;
  const line = message.split('\n')[0] ?? message;
  return typeof cause === 'string' && cause !== '' ? `${line} (${cause.split('\n')[0]})` : line;
}

/** The first string `code` along the `cause` chain: fetch hides ECONNREFUSED a few causes deep under "fetch failed". */
function systemErrorCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

class DeadlineError extends Error {}

/** Belt and braces over the SDK's own request timeout, which does not cover every stall (e.g. a spawn that never fires). */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError('deadline')), ms + 250);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms).unref());
}
