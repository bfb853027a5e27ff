/** Request bodies and JSON answers for the HTTP routes of `capframe serve`. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The body exceeded the route's limit; the router answers 413. */
export class BodyTooLarge extends Error {}

/** Reads the whole body, refusing to buffer more than `limit` bytes (rejects with BodyTooLarge). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Sentinel for a body that is not JSON. */
export const NOT_JSON: unique symbol = Symbol('not JSON');

/** The body parsed as JSON, or NOT_JSON. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return NOT_JSON;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  const head: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (headers !== undefined) Object.assign(head, headers);
  res.writeHead(status, head);
  res.end(text);
}

/** A JSON-RPC error answer with no request id, as MCP transports send them. */
export function sendRpcError(res: ServerResponse, status: number, code: number, message: string, headers?: Record<string, string>): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null }, headers);
}

/**
 * Drops what is left of a request body the server answered without reading. The socket
 * stays open, because closing it under a client still sending resets the connection and the
 * client reads EPIPE instead of the answer; a client still sending after 5 s is cut off.
 */
export function discardBody(req: IncomingMessage): void {
  if (req.complete) return;
  req.resume();
  const cut = setTimeout(() => req.socket.destroy(), 5000).unref();
  const keep = () => clearTimeout(cut);
  req.once('end', keep).once('close', keep);
}
