/**
 * `tools/call` to a Streamable HTTP upstream on the session the SDK client
 * negotiated, without the client's fetch and web-stream layers: one keep-alive
 * HTTP request, and the JSON or SSE answer read as it arrives, counting its bytes.
 * This is the proxy's per-call hot path (bench/proxy.mjs); everything else still
 * goes through the SDK.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import type { HttpSession } from '../mcp/connect.js';
import { UpstreamCallError } from './upstream-error.js';

// Idle kept-alive connections are dropped after 4 s, before a Node upstream's default
// 5 s keepAliveTimeout closes them under us: a call written to a connection the upstream
// is closing has to be reported as "sent, may have run". (Only idle sockets time out.)
const agentOptions = { keepAlive: true, maxSockets: 64, timeout: 4000 };
const agents = { http: new HttpAgent(agentOptions), https: new HttpsAgent(agentOptions) };
let nextId = 0;
const NEWLINE = 0x0a;

export interface HttpCallOptions {
  /** Deadline for the whole call, in ms. */
  timeoutMs: number;
  /** Largest answer accepted: the JSON body, or one SSE event. Beyond it the call fails with `result_too_large`. */
  maxResultBytes: number;
}

interface Answer {
  id?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string };
}

function settle(answer: Answer): CallToolResult {
  if (answer.error !== undefined) {
    throw new UpstreamCallError(`MCP error ${answer.error?.code ?? '?'}: ${String(answer.error?.message ?? 'no message').slice(0, 500)}`, 'upstream_error');
  }
  const result = answer.result;
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new UpstreamCallError('tools/call answered without a result object', 'malformed_result');
  return result as CallToolResult;
}

const tooLarge = (limit: number): UpstreamCallError => new UpstreamCallError(`the answer is larger than max_result_bytes (${limit} bytes)`, 'result_too_large');

/** Reads an SSE body until the message answering `id` arrives; no event may exceed `limit` bytes. */
function readEvents(req: ClientRequest, res: IncomingMessage, id: string, limit: number, resolve: (r: CallToolResult) => void, reject: (e: Error) => void): void {
  // Bytes of the line being received (not yet ended by "\n"), and the data lines of the
  // current event; together they are what one event can make us hold.
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let data: string[] = [];
  let dataBytes = 0;
  let done = false;
  const fail = (error: UpstreamCallError): void => {
    done = true;
    reject(error);
    req.destroy();
  };
  const onLine = (line: Buffer): void => {
    let end = line.length;
    if (end > 0 && line[end - 1] === 0x0d) end -= 1;
    if (end === 0) {
      if (data.length === 0) return;
      let message: Answer;
      try {
        message = JSON.parse(data.join('\n')) as Answer;
      } catch {
        fail(new UpstreamCallError('the upstream sent an event that is not JSON', 'malformed_result'));
        return;
      }
      data = [];
      dataBytes = 0;
      // Notifications and server requests may come first; only our answer ends the call.
      if (typeof message === 'object' && message !== null && message.id === id && ('result' in message || 'error' in message)) {
        done = true;
        try {
          resolve(settle(message));
        } catch (error) {
          reject(error as Error);
        }
        res.resume();
      }
      return;
    }
    const text = line.toString('utf8', 0, end);
    if (text.startsWith('data:')) {
      data.push(text.slice(text.startsWith('data: ') ? 6 : 5));
      dataBytes += end;
    }
  };
  res.on('data', (chunk: Buffer) => {
    if (done) return;
    let from = 0;
    let nl: number;
    while (!done && (nl = chunk.indexOf(NEWLINE, from)) >= 0) {
      const piece = chunk.subarray(from, nl);
      const line = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
      partial = [];
      partialBytes = 0;
      from = nl + 1;
      onLine(line);
      if (!done && dataBytes > limit) fail(tooLarge(limit));
    }
    if (done || from >= chunk.length) return;
    const rest = chunk.subarray(from);
    partial.push(rest);
    partialBytes += rest.length;
    if (partialBytes + dataBytes > limit) fail(tooLarge(limit));
  });
  res.on('end', () => {
    if (!done) reject(new UpstreamCallError('the upstream closed its event stream without answering', 'upstream_disconnected'));
  });
}

/** Reads a JSON body of at most `limit` bytes and finds the answer to `id`. */
function readJson(req: ClientRequest, res: IncomingMessage, id: string, limit: number, resolve: (r: CallToolResult) => void, reject: (e: Error) => void): void {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    reject(tooLarge(limit));
    req.destroy();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  res.on('data', (c: Buffer) => {
    if (done) return;
    size += c.length;
    if (size > limit) {
      done = true;
      reject(tooLarge(limit));
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  res.on('end', () => {
    if (done) return;
    try {
      let parsed: Answer | Answer[];
      try {
        parsed = JSON.parse(Buffer.concat(chunks, size).toString('utf8')) as Answer | Answer[];
      } catch (error) {
        throw new UpstreamCallError(`unreadable answer: ${(error as Error).message}`, 'malformed_result');
      }
      const answer = Array.isArray(parsed) ? parsed.find((m) => typeof m === 'object' && m !== null && m.id === id) : parsed;
      if (typeof answer !== 'object' || answer === null || answer.id !== id) throw new UpstreamCallError('the upstream answered another request', 'malformed_result');
      resolve(settle(answer));
    } catch (error) {
      reject(error as Error);
    }
  });
}

/**
 * Calls a tool on an HTTP upstream. Rejects with an UpstreamCallError: `not_sent` when
 * no connection to the upstream was made (the request cannot have reached it), else
 * the outcome of a call that was sent — timeout, lost connection, an answer over
 * `maxResultBytes` (only this request's connection is closed), a malformed answer, a
 * non-200 status or a JSON-RPC error.
 *
 * @example
 * const result = await callToolOverHttp(upstream.http!, 'query', { sql: 'SELECT 1' }, {},
 *   { timeoutMs: 30_000, maxResultBytes: 8 * 1024 * 1024 });
 */
export function callToolOverHttp(
  session: HttpSession,
  name: string,
  args: Record<string, unknown>,
  meta: Record<string, unknown>,
  options: HttpCallOptions,
): Promise<CallToolResult> {
  const id = `capframe-${++nextId}`;
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: meta } });
  const headers: Record<string, string> = {
    ...session.headers,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': String(Buffer.byteLength(body)),
  };
  const sessionId = session.sessionId();
  if (sessionId !== undefined) headers['mcp-session-id'] = sessionId;
  const version = session.protocolVersion();
  if (version !== undefined) headers['mcp-protocol-version'] = version;
  // W3C trace context travels as the header too (the enforcer only sets a well-formed one).
  if (typeof meta.traceparent === 'string') headers.traceparent = meta.traceparent;
  const https = session.url.protocol === 'https:';
  const { timeoutMs, maxResultBytes } = options;

  return new Promise<CallToolResult>((resolve, reject) => {
    // Until a connection exists the request cannot have reached the upstream; after that
    // every failure means "sent, and may have run".
    let connected = false;
    const req = (https ? httpsRequest : httpRequest)(session.url, { method: 'POST', headers, agent: https ? agents.https : agents.http }, (res) => {
      res.on('error', () => reject(new UpstreamCallError('the connection was lost while reading the answer', 'upstream_disconnected')));
      res.on('aborted', () => reject(new UpstreamCallError('the connection was lost while reading the answer', 'upstream_disconnected')));
      if (res.statusCode !== 200) {
        res.resume();
        // The request was sent: whatever the status claims, the proxy cannot know it did not run.
        reject(new UpstreamCallError(`the upstream answered HTTP ${res.statusCode}`, 'upstream_error', res.statusCode));
        return;
      }
      const type = res.headers['content-type'] ?? '';
      if (type.startsWith('text/event-stream')) readEvents(req, res, id, maxResultBytes, resolve, reject);
      else readJson(req, res, id, maxResultBytes, resolve, reject);
    });
    req.on('socket', (socket) => {
      if (!socket.connecting) connected = true; // a kept-alive connection
      else socket.once(https ? 'secureConnect' : 'connect', () => (connected = true));
    });
    // A deadline for the whole call: the socket timeout alone resets on every byte, so an
    // upstream trickling SSE comments could hold the call open for ever.
    const deadline = setTimeout(() => {
      req.destroy(
        connected
          ? new UpstreamCallError(`no answer within ${timeoutMs} ms`, 'upstream_timeout')
          : new UpstreamCallError(`no connection within ${timeoutMs} ms`, 'not_sent'),
      );
    }, timeoutMs).unref();
    req.once('close', () => clearTimeout(deadline));
    req.on('error', (error) => {
      if (error instanceof UpstreamCallError) reject(error);
      else reject(new UpstreamCallError(error.message, connected ? 'upstream_disconnected' : 'not_sent'));
    });
    req.end(body);
  });
}
