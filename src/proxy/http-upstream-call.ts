/**
 * `tools/call` to a Streamable HTTP upstream on the session the SDK client
 * negotiated, without the client's fetch and web-stream layers: one keep-alive
 * HTTP request, and the JSON or SSE answer read as it arrives. This is the proxy's
 * per-call hot path (bench/proxy.mjs); everything else still goes through the SDK.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import type { HttpSession } from '../mcp/connect.js';

const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 64 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 64 }) };
let nextId = 0;

/**
 * Why a call did not produce a result. `rpc`: the upstream answered with a JSON-RPC
 * error (it is alive); `transport`: no usable answer (down, timeout, bad HTTP status).
 */
export class UpstreamCallError extends Error {
  constructor(
    message: string,
    readonly kind: 'rpc' | 'transport',
    readonly status?: number,
  ) {
    super(message);
  }
}

interface Answer {
  id?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string };
}

function settle(answer: Answer): CallToolResult {
  if (answer.error !== undefined) throw new UpstreamCallError(`MCP error ${answer.error.code ?? '?'}: ${answer.error.message ?? 'no message'}`, 'rpc');
  const result = answer.result;
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new UpstreamCallError('tools/call answered without a result object', 'transport');
  return result as CallToolResult;
}

/** Reads an SSE body until the message answering `id` arrives. */
function readEvents(res: IncomingMessage, id: string, resolve: (r: CallToolResult) => void, reject: (e: Error) => void): void {
  let buffer = '';
  let data: string[] = [];
  let done = false;
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    if (done) return;
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      else if (line === '' && data.length > 0) {
        let message: Answer;
        try {
          message = JSON.parse(data.join('\n')) as Answer;
        } catch {
          done = true;
          reject(new UpstreamCallError('the upstream sent an event that is not JSON', 'transport'));
          res.destroy();
          return;
        }
        data = [];
        // Notifications and server requests may come first; only our answer ends the call.
        if (message.id === id && ('result' in message || 'error' in message)) {
          done = true;
          try {
            resolve(settle(message));
          } catch (error) {
            reject(error as Error);
          }
          res.resume();
          return;
        }
      }
    }
  });
  res.on('end', () => {
    if (!done) reject(new UpstreamCallError('the upstream closed its event stream without answering', 'transport'));
  });
}

/**
 * Calls a tool on an HTTP upstream. Rejects on timeout, transport failure, a
 * non-200 status, or a JSON-RPC error; the caller turns that into a denial.
 */
export function callToolOverHttp(
  session: HttpSession,
  name: string,
  args: Record<string, unknown>,
  meta: Record<string, unknown>,
  timeoutMs: number,
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
  const https = session.url.protocol === 'https:';

  return new Promise<CallToolResult>((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(session.url, { method: 'POST', headers, agent: https ? agents.https : agents.http }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new UpstreamCallError(`the upstream answered HTTP ${res.statusCode}`, 'transport', res.statusCode));
        return;
      }
      const type = res.headers['content-type'] ?? '';
      res.on('error', reject);
      if (type.startsWith('text/event-stream')) {
        readEvents(res, id, resolve, reject);
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer | Answer[];
          const answer = Array.isArray(parsed) ? parsed.find((m) => m.id === id) : parsed;
          if (answer === undefined || answer.id !== id) throw new UpstreamCallError('the upstream answered another request', 'transport');
          resolve(settle(answer));
        } catch (error) {
          reject(error instanceof UpstreamCallError ? error : new UpstreamCallError(`unreadable answer: ${(error as Error).message}`, 'transport'));
        }
      });
    });
    // A deadline for the whole call: the socket timeout alone resets on every byte, so an
    // upstream trickling SSE comments could hold the call open for ever.
    const deadline = setTimeout(() => req.destroy(new UpstreamCallError(`no answer within ${timeoutMs} ms`, 'transport')), timeoutMs).unref();
    req.once('close', () => clearTimeout(deadline));
    req.on('error', (error) => reject(error instanceof UpstreamCallError ? error : new UpstreamCallError(error.message, 'transport')));
    req.end(body);
  });
}
