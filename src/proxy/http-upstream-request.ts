/**
 * Requests to a Streamable HTTP upstream on the session the SDK client negotiated,
 * without the client's fetch and web-stream layers: one keep-alive HTTP request, and the
 * JSON or SSE answer read as it arrives, counting its bytes. `tools/call` is the proxy's
 * per-call hot path (bench/proxy.mjs); reads, prompts and completions go the same way.
 *
 * Going this way also keeps what the upstream says about a request tied to it: the
 * messages it sends on the request's own SSE stream before the answer (progress, log
 * messages, and requests of its own such as `sampling/createMessage`) are handed to the
 * caller's {@link StreamHandlers}, and the answers to its requests are posted back. A
 * stream the upstream closes after sending an event id (SEP-1699 polling) is resumed with
 * a GET and `Last-Event-ID`. Cancelling sends `notifications/cancelled`.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import type { HttpSession } from '../mcp/connect.js';
import { isRecord } from '../lib/is-record.js';
import { UpstreamCallError } from './upstream-error.js';

// Idle kept-alive connections are dropped after 4 s, before a Node upstream's default
// 5 s keepAliveTimeout closes them under us: a call written to a connection the upstream
// is closing has to be reported as "sent, may have run". (Only idle sockets time out.)
const agentOptions = { keepAlive: true, maxSockets: 64, timeout: 4000 };
const agents = { http: new HttpAgent(agentOptions), https: new HttpsAgent(agentOptions) };
let nextId = 0;
const NEWLINE = 0x0a;
/** How often a stream the upstream closed early is resumed before the request fails. */
const MAX_RESUMES = 10;
/** Longest wait before resuming, whatever `retry:` the upstream asked for. */
const MAX_RETRY_MS = 5000;
const DEFAULT_RETRY_MS = 1000;

/** A JSON-RPC message the upstream sent on a request's stream that is not its answer. */
export interface StreamMessage {
  method: string;
  params?: Record<string, unknown>;
  /** Present on requests (the upstream waits for an answer), absent on notifications. */
  id?: string | number;
}

/** The answer to one of the upstream's own requests. */
export type StreamAnswer = { result: Record<string, unknown> } | { error: { code: number; message: string; data?: unknown } };

/** What the caller does with the messages a request's stream carries besides its answer. */
export interface StreamHandlers {
  /** `notifications/progress` for this request; when set, the request carries a progress token. */
  onProgress?(params: Record<string, unknown>): void;
  /** Every other notification on the stream (log messages, list changes, cancellations of its own requests…). */
  onNotification?(message: StreamMessage): void;
  /** A request of the upstream's own; its answer is posted back. Without a handler the upstream gets an error. */
  onRequest?(message: StreamMessage): Promise<StreamAnswer>;
}

export interface HttpRequestOptions {
  /** Deadline for the whole request, in ms. */
  timeoutMs: number;
  /** Largest answer accepted: the JSON body, or one SSE event. Beyond it the request fails with `result_too_large`. */
  maxResultBytes: number;
  handlers?: StreamHandlers;
  /** Aborting cancels the request: `notifications/cancelled` goes to the upstream, and it fails with `cancelled`. */
  signal?: AbortSignal;
  /** Problems that fail nothing (an answer to the upstream that could not be posted). */
  onProblem?(message: string): void;
}

interface Answer {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string };
}

const tooLarge = (limit: number): UpstreamCallError => new UpstreamCallError(`the answer is larger than max_result_bytes (${limit} bytes)`, 'result_too_large');

function settle(answer: Answer, method: string): Record<string, unknown> {
  if (answer.error !== undefined) {
    const error = isRecord(answer.error) ? answer.error : {};
    throw new UpstreamCallError(`MCP error ${typeof error.code === 'number' ? error.code : '?'}: ${String(error.message ?? 'no message').slice(0, 500)}`, 'upstream_error', undefined, {
      code: typeof error.code === 'number' ? error.code : undefined,
      message: typeof error.message === 'string' ? error.message.slice(0, 2000) : undefined,
    });
  }
  const result = answer.result;
  if (!isRecord(result)) throw new UpstreamCallError(`${method} answered without a result object`, 'malformed_result');
  return result;
}

/** The headers every message to the session carries. */
function sessionHeaders(session: HttpSession, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ...session.headers, ...extra };
  const sessionId = session.sessionId();
  if (sessionId !== undefined) headers['mcp-session-id'] = sessionId;
  const version = session.protocolVersion();
  if (version !== undefined) headers['mcp-protocol-version'] = version;
  return headers;
}

function send(session: HttpSession, method: 'GET' | 'POST', headers: OutgoingHttpHeaders, onResponse: (res: IncomingMessage) => void): ClientRequest {
  const https = session.url.protocol === 'https:';
  return (https ? httpsRequest : httpRequest)(session.url, { method, headers, agent: https ? agents.https : agents.http }, onResponse);
}

/**
 * Posts one message (an answer or a notification) to the session; resolves when the
 * upstream accepted it, rejects otherwise. Bounded by `timeoutMs`.
 */
export function postToSession(session: HttpSession, message: unknown, timeoutMs: number): Promise<void> {
  const body = JSON.stringify(message);
  const headers = sessionHeaders(session, {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': String(Buffer.byteLength(body)),
  });
  return new Promise<void>((resolve, reject) => {
    const req = send(session, 'POST', headers, (res) => {
      res.resume();
      if (res.statusCode === 202 || res.statusCode === 200 || res.statusCode === 204) resolve();
      else reject(new Error(`the upstream answered HTTP ${res.statusCode}`));
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref();
    req.once('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end(body);
  });
}

/** One request in flight: its id, what it waits for, and the state of its event stream. */
class Exchange {
  done = false;
  /** The id of the last SSE event, to resume from. */
  lastEventId: string | undefined;
  retryMs = DEFAULT_RETRY_MS;
  resumes = 0;
  current: ClientRequest | undefined;
  /** Set once a connection existed: every failure after it means "sent, and may have run". */
  connected = false;

  constructor(
    readonly session: HttpSession,
    readonly id: string,
    readonly method: string,
    readonly options: HttpRequestOptions,
    readonly resolve: (result: Record<string, unknown>) => void,
    readonly reject: (error: Error) => void,
  ) {}

  finish(error: Error | undefined, result?: Record<string, unknown>): void {
    if (this.done) return;
    this.done = true;
    if (error !== undefined) {
      this.reject(error);
      this.current?.destroy();
    } else this.resolve(result!);
  }

  /** A message from the stream: our answer ends the exchange; anything else goes to the handlers. */
  dispatch(message: unknown): void {
    if (!isRecord(message)) return;
    const m = message as Answer;
    if (m.id === this.id && ('result' in m || 'error' in m)) {
      try {
        this.finish(undefined, settle(m, this.method));
      } catch (error) {
        this.finish(error as Error);
      }
      return;
    }
    if (typeof m.method !== 'string') return; // an answer to something else: not ours
    const params = isRecord(m.params) ? m.params : undefined;
    const handlers = this.options.handlers;
    if (m.id === undefined) {
      if (m.method === 'notifications/progress') {
        if (params?.progressToken === this.id) handlers?.onProgress?.(params);
        return;
      }
      handlers?.onNotification?.({ method: m.method, ...(params !== undefined && { params }) });
      return;
    }
    if (typeof m.id !== 'string' && typeof m.id !== 'number') return;
    this.answer({ method: m.method, id: m.id, ...(params !== undefined && { params }) });
  }

  /** Answers one of the upstream's own requests, posting the answer back to the session. */
  private answer(request: StreamMessage): void {
    const handler = this.options.handlers?.onRequest;
    const answered: Promise<StreamAnswer> =
      handler === undefined
        ? Promise.resolve({ error: { code: -32601, message: `capframe: ${request.method} is not relayed: it was sent with no call to relay it for` } })
        : handler(request).catch((error: unknown) => ({ error: { code: -32603, message: `capframe: ${(error as Error).message}` } }));
    void answered
      .then((a) => postToSession(this.session, { jsonrpc: '2.0', id: request.id, ...a }, this.options.timeoutMs))
      .catch((error: unknown) => this.options.onProblem?.(`the answer to the upstream's ${request.method} could not be posted: ${(error as Error).message}`));
  }
}

/**
 * Reads an SSE body: each event is dispatched as it completes; no event may exceed
 * `limit` bytes. Calls `ended` when the body ends before the exchange is done.
 */
function readEvents(x: Exchange, req: ClientRequest, res: IncomingMessage, ended: () => void): void {
  const limit = x.options.maxResultBytes;
  // Bytes of the line being received (not yet ended by "\n"), and the data lines of the
  // current event; together they are what one event can make us hold.
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let data: string[] = [];
  let dataBytes = 0;
  let eventId: string | undefined;
  const onLine = (line: Buffer): void => {
    let end = line.length;
    if (end > 0 && line[end - 1] === 0x0d) end -= 1;
    if (end === 0) {
      if (eventId !== undefined) x.lastEventId = eventId;
      eventId = undefined;
      const text = data.join('\n');
      data = [];
      dataBytes = 0;
      // An event without data (SEP-1699's priming event carries only an id and a retry) says nothing.
      if (text.trim() === '') return;
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        x.finish(new UpstreamCallError('the upstream sent an event that is not JSON', 'malformed_result'));
        return;
      }
      // Notifications and the upstream's own requests may come first; only our answer ends the exchange.
      for (const m of Array.isArray(message) ? message : [message]) {
        if (x.done) break;
        x.dispatch(m);
      }
      if (x.done) res.resume();
      return;
    }
    const text = line.toString('utf8', 0, end);
    if (text.startsWith('data:')) {
      data.push(text.slice(text.startsWith('data: ') ? 6 : 5));
      dataBytes += end;
    } else if (text.startsWith('id:')) {
      eventId = text.slice(text.startsWith('id: ') ? 4 : 3);
    } else if (text.startsWith('retry:')) {
      const ms = Number(text.slice(6).trim());
      if (Number.isSafeInteger(ms) && ms >= 0) x.retryMs = Math.min(ms, MAX_RETRY_MS);
    }
  };
  res.on('data', (chunk: Buffer) => {
    if (x.done) return;
    let from = 0;
    let nl: number;
    while (!x.done && (nl = chunk.indexOf(NEWLINE, from)) >= 0) {
      const piece = chunk.subarray(from, nl);
      const line = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
      partial = [];
      partialBytes = 0;
      from = nl + 1;
      onLine(line);
      if (!x.done && dataBytes > limit) x.finish(tooLarge(limit));
    }
    if (x.done || from >= chunk.length) return;
    const rest = chunk.subarray(from);
    partial.push(rest);
    partialBytes += rest.length;
    if (partialBytes + dataBytes > limit) x.finish(tooLarge(limit));
  });
  res.on('end', () => {
    if (!x.done && req === x.current) ended();
  });
}

/** Reads a JSON body of at most `limit` bytes and dispatches what it holds. */
function readJson(x: Exchange, res: IncomingMessage): void {
  const limit = x.options.maxResultBytes;
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    x.finish(tooLarge(limit));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    if (x.done) return;
    size += c.length;
    if (size > limit) {
      x.finish(tooLarge(limit));
      return;
    }
    chunks.push(c);
  });
  res.on('end', () => {
    if (x.done) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch (error) {
      x.finish(new UpstreamCallError(`unreadable answer: ${(error as Error).message}`, 'malformed_result'));
      return;
    }
    for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
      if (x.done) return;
      x.dispatch(m);
    }
    if (!x.done) x.finish(new UpstreamCallError('the upstream answered another request', 'malformed_result'));
  });
}

/**
 * Sends one JSON-RPC request to an HTTP upstream and resolves with its result object.
 * Rejects with an UpstreamCallError: `not_sent` when no connection to the upstream was
 * made (the request cannot have reached it), else the outcome of a request that was sent
 * — timeout, lost connection, an answer over `maxResultBytes` (only this request's
 * connection is closed), a malformed answer, a non-200 status, a JSON-RPC error, or
 * `cancelled` when `signal` aborted it.
 *
 * @example
 * const result = await requestOverHttp(upstream.http!, 'resources/read', { uri: 'file:///srv/a.md' },
 *   { timeoutMs: 30_000, maxResultBytes: 8 * 1024 * 1024 });
 */
export function requestOverHttp(session: HttpSession, method: string, params: Record<string, unknown>, options: HttpRequestOptions): Promise<Record<string, unknown>> {
  const id = `capframe-${++nextId}`;
  const sent: Record<string, unknown> = options.handlers?.onProgress === undefined ? params : { ...params, _meta: { ...(isRecord(params._meta) ? params._meta : {}), progressToken: id } };
  const body = JSON.stringify({ jsonrpc: '2.0', id, method, params: sent });
  const { timeoutMs, signal } = options;

  return new Promise<Record<string, unknown>>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new UpstreamCallError('cancelled by the client before it was sent', 'not_sent'));
      return;
    }
    // `finish` settles exactly once; the timer and the abort listener go with it.
    let deadline: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
    };
    const x = new Exchange(
      session,
      id,
      method,
      options,
      (result) => {
        cleanup();
        resolve(result);
      },
      (error) => {
        cleanup();
        reject(error);
      },
    );

    const onResponse = (req: ClientRequest) => (res: IncomingMessage) => {
      res.on('error', () => x.finish(new UpstreamCallError('the connection was lost while reading the answer', 'upstream_disconnected')));
      res.on('aborted', () => x.finish(new UpstreamCallError('the connection was lost while reading the answer', 'upstream_disconnected')));
      if (res.statusCode !== 200) {
        res.resume();
        // The request was sent: whatever the status claims, the proxy cannot know it did not run.
        x.finish(new UpstreamCallError(`the upstream answered HTTP ${res.statusCode}`, 'upstream_error', res.statusCode));
        return;
      }
      const type = res.headers['content-type'] ?? '';
      if (type.startsWith('text/event-stream')) readEvents(x, req, res, resume);
      else if (req.method === 'POST') readJson(x, res);
      else x.finish(new UpstreamCallError(`the upstream resumed the stream as ${JSON.stringify(type.slice(0, 60))}, not text/event-stream`, 'malformed_result'));
    };
    const track = (req: ClientRequest): ClientRequest => {
      x.current = req;
      req.on('socket', (socket) => {
        if (!socket.connecting) x.connected = true; // a kept-alive connection
        else socket.once(session.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => (x.connected = true));
      });
      req.on('error', (error) => {
        if (req !== x.current) return;
        if (error instanceof UpstreamCallError) x.finish(error);
        else x.finish(new UpstreamCallError(error.message, x.connected ? 'upstream_disconnected' : 'not_sent'));
      });
      return req;
    };

    /** The stream ended before the answer: resume it from the last event id, or fail. */
    function resume(): void {
      if (x.lastEventId === undefined || x.resumes >= MAX_RESUMES) {
        x.finish(new UpstreamCallError('the upstream closed its event stream without answering', 'upstream_disconnected'));
        return;
      }
      x.resumes += 1;
      setTimeout(() => {
        if (x.done) return;
        const headers = sessionHeaders(session, { accept: 'text/event-stream', 'last-event-id': x.lastEventId! });
        const req: ClientRequest = track(send(session, 'GET', headers, (res) => onResponse(req)(res)));
        req.end();
      }, x.retryMs).unref();
    }

    // A deadline for the whole request: the socket timeout alone resets on every byte, so
    // an upstream trickling SSE comments could hold the request open for ever.
    deadline = setTimeout(() => {
      x.finish(
        x.connected
          ? new UpstreamCallError(`no answer within ${timeoutMs} ms`, 'upstream_timeout')
          : new UpstreamCallError(`no connection within ${timeoutMs} ms`, 'not_sent'),
      );
    }, timeoutMs);
    deadline.unref();

    function onAbort(): void {
      if (x.done) return;
      const wasSent = x.connected;
      x.finish(new UpstreamCallError('the client cancelled the request', wasSent ? 'cancelled' : 'not_sent'));
      if (wasSent) {
        const cancel = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'the client cancelled the request' } };
        postToSession(session, cancel, timeoutMs).catch((error: unknown) => options.onProblem?.(`notifications/cancelled could not be posted: ${(error as Error).message}`));
      }
    }
    signal?.addEventListener('abort', onAbort, { once: true });

    const headers = sessionHeaders(session, {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': String(Buffer.byteLength(body)),
    });
    // W3C trace context travels as the header too (the enforcer only sets a well-formed one).
    const meta = params._meta;
    if (isRecord(meta) && typeof meta.traceparent === 'string') headers.traceparent = meta.traceparent;
    const first: ClientRequest = track(send(session, 'POST', headers, (res) => onResponse(first)(res)));
    first.end(body);
  });
}

/**
 * Calls a tool on an HTTP upstream: {@link requestOverHttp} for `tools/call`.
 *
 * @example
 * const result = await callToolOverHttp(upstream.http!, 'query', { sql: 'SELECT 1' }, {},
 *   { timeoutMs: 30_000, maxResultBytes: 8 * 1024 * 1024 });
 */
export async function callToolOverHttp(
  session: HttpSession,
  name: string,
  args: Record<string, unknown>,
  meta: Record<string, unknown>,
  options: HttpRequestOptions,
): Promise<CallToolResult> {
  return (await requestOverHttp(session, 'tools/call', { name, arguments: args, _meta: meta }, options)) as CallToolResult;
}
