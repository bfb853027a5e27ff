/**
 * Raw HTTP against a running `capframe serve`, for what an SDK client would never send: any
 * Host or Origin header, a session id that is not the caller's, JSON-RPC batches that reuse
 * ids. Answers are read whole; SSE answers are split into their JSON-RPC messages.
 */
import { request, type IncomingHttpHeaders } from 'node:http';

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The JSON body, or every JSON-RPC message of an SSE body. */
  messages: unknown[];
}

export interface RawRequest {
  method?: string;
  /** Path on the server, default /mcp. */
  path?: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Agent key for Authorization: Bearer. */
  key?: string;
  session?: string;
}

/** Splits an SSE body into the JSON of its `data:` lines. */
export function sseMessages(text: string): unknown[] {
  const out: unknown[] = [];
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data !== '') out.push(JSON.parse(data));
  }
  return out;
}

/** Sends one request to `base` (http://127.0.0.1:port) and reads the whole answer. */
export function raw(base: string, r: RawRequest = {}): Promise<RawAnswer> {
  const url = new URL(r.path ?? '/mcp', base);
  const body = r.body === undefined ? undefined : JSON.stringify(r.body);
  const headers: Record<string, string> = {
    accept: 'application/json, text/event-stream',
    ...(body !== undefined && { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
    ...(r.key !== undefined && { authorization: `Bearer ${r.key}` }),
    ...(r.session !== undefined && { 'mcp-session-id': r.session, 'mcp-protocol-version': '2025-06-18' }),
    ...r.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(url, { method: r.method ?? (body === undefined ? 'GET' : 'POST'), headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const type = res.headers['content-type'] ?? '';
        let messages: unknown[] = [];
        if (type.startsWith('text/event-stream')) messages = sseMessages(text);
        else if (type.startsWith('application/json') && text !== '') messages = [JSON.parse(text)];
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, messages });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Opens the response of a request that may stay open (a GET SSE stream): resolves with the
 * status and headers as soon as they arrive, then closes the connection.
 */
export function rawHead(base: string, r: RawRequest = {}): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  const url = new URL(r.path ?? '/mcp', base);
  const headers: Record<string, string> = {
    accept: 'text/event-stream',
    ...(r.key !== undefined && { authorization: `Bearer ${r.key}` }),
    ...(r.session !== undefined && { 'mcp-session-id': r.session, 'mcp-protocol-version': '2025-06-18' }),
    ...r.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(url, { method: r.method ?? 'GET', headers }, (res) => {
      const status = res.statusCode ?? 0;
      if (status === 200 && (res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        resolve({ status, headers: res.headers, text: '' });
        req.destroy();
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status, headers: res.headers, text }));
    });
    req.on('error', (error) => {
      if (!req.destroyed) reject(error);
    });
    req.end();
  });
}

export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw-http-test', version: '1' } },
};

/**
 * Opens an MCP session by hand: initialize, and (unless `handshakeOnly`) the
 * notifications/initialized that follows it. Returns the session id.
 */
export async function openSession(base: string, key?: string, options: { handshakeOnly?: boolean } = {}): Promise<string> {
  const init = await raw(base, { body: INITIALIZE, ...(key !== undefined && { key }) });
  if (init.status !== 200) throw new Error(`initialize answered ${init.status}: ${init.text}`);
  const id = init.headers['mcp-session-id'];
  if (typeof id !== 'string') throw new Error('initialize answered without Mcp-Session-Id');
  if (options.handshakeOnly !== true) {
    const note = await raw(base, { body: { jsonrpc: '2.0', method: 'notifications/initialized' }, session: id, ...(key !== undefined && { key }) });
    if (note.status !== 202) throw new Error(`notifications/initialized answered ${note.status}: ${note.text}`);
  }
  return id;
}
