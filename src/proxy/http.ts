/**
 * The HTTP listener of `capframe serve`: MCP Streamable HTTP on `/` and `/mcp`
 * (sessions via `Mcp-Session-Id`), `/healthz`, `/metrics`, `POST /v1/tokens`,
 * `POST /v1/revocations`, with a request body limit.
 */
import { randomUUID, createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';

import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';

import { tokenId } from '../token/claims.js';
import { claimedExpiry } from '../verify/token-id.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

import { authenticate, bearerOf } from './auth.js';
import { callerWith } from './enforce.js';
import type { Runtime } from './runtime.js';
import { authInfoFor, createSessionServer } from './mcp-server.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';

export interface HttpOptions {
  /** Largest accepted request body in bytes (default 1 MiB); larger gets 413. */
  maxBodyBytes: number;
  /** Answer POSTs with plain JSON instead of an SSE stream. */
  jsonResponse: boolean;
  /** Open MCP sessions at most (new ones get 503 beyond). */
  maxSessions: number;
  /** A session with no request for this long is closed (ms). */
  sessionIdleMs: number;
}

class BodyTooLarge extends Error {}

/**
 * A lone, well-formed `tools/call` request on an established session whose client
 * accepts a JSON answer and speaks a protocol version we know; else undefined.
 */
function fastToolCall(req: IncomingMessage, body: unknown): { id: string | number; name: string; arguments: unknown; meta: unknown } | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const m = body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  if (m.jsonrpc !== '2.0' || m.method !== 'tools/call' || (typeof m.id !== 'string' && typeof m.id !== 'number')) return undefined;
  if (typeof m.params !== 'object' || m.params === null) return undefined;
  const p = m.params as { name?: unknown; arguments?: unknown; _meta?: unknown };
  if (typeof p.name !== 'string') return undefined;
  if (!(req.headers.accept ?? '').includes('application/json')) return undefined;
  const version = req.headers['mcp-protocol-version'];
  if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return undefined;
  return { id: m.id, name: p.name, arguments: p.arguments, meta: p._meta };
}

/** Reads the whole body, refusing to buffer more than `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
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
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sameSecret(presented: string | undefined, expected: string | undefined): boolean {
  if (presented === undefined || expected === undefined || expected === '') return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function createHttpServer(rt: Runtime, options: HttpOptions): HttpServer {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: Server; lastSeen: number }>();
  // Sessions cost memory and can be opened before authenticating: bound their number and
  // close the ones left idle.
  const sweep = setInterval(() => {
    const cutoff = Date.now() - options.sessionIdleMs;
    for (const [id, session] of sessions) {
      if (session.lastSeen < cutoff) {
        sessions.delete(id);
        void session.transport.close();
      }
    }
  }, Math.min(60_000, options.sessionIdleMs)).unref();

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let parsed: unknown;
    if (req.method === 'POST') {
      const body = await readBody(req, options.maxBodyBytes);
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error: body is not JSON' }, id: null });
        return;
      }
    }
    const auth = authenticate(rt.policy(), bearerOf(req.headers.authorization));
    (req as IncomingMessage & { auth?: unknown }).auth = authInfoFor(auth);

    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing !== undefined) {
      existing.lastSeen = Date.now();
      const call = fastToolCall(req, parsed);
      if (call !== undefined) {
        // The per-call hot path: answered here as plain JSON, not through the SDK's
        // web-stream transport. Anything unusual falls through to the SDK below.
        const result = await rt.enforcer.callTool(callerWith(auth, req.headers), call.name, call.arguments, call.meta);
        sendJson(res, 200, { jsonrpc: '2.0', id: call.id, result });
        return;
      }
      await existing.transport.handleRequest(req, res, parsed);
      return;
    }
    if (typeof sessionId === 'string') {
      sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return;
    }
    if (sessions.size >= options.maxSessions) {
      sendJson(res, 503, { jsonrpc: '2.0', error: { code: -32000, message: `too many open sessions (${options.maxSessions}); try again later` }, id: null });
      return;
    }
    // A new session starts with an initialize request; the transport rejects anything else.
    const server = createSessionServer({ enforcer: rt.enforcer, upstreams: rt.upstreams, policy: rt.policy });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.jsonResponse,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, lastSeen: Date.now() });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, parsed);
  }

  async function handleTokens(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, options.maxBodyBytes);
    let args: unknown;
    try {
      args = JSON.parse(body.toString('utf8'));
    } catch {
      sendJson(res, 400, { error: 'body must be JSON: {tool, capability?, ttl?}' });
      return;
    }
    const auth = authenticate(rt.policy(), bearerOf(req.headers.authorization));
    const issued = await rt.enforcer.issueOverHttp({ auth }, args);
    if (issued.ok) sendJson(res, 200, issued.body);
    else sendJson(res, issued.code === 'agent_unknown' ? 401 : 403, { allowed: false, code: issued.code, reason: issued.reason });
  }

  async function handleRevocations(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameSecret(bearerOf(req.headers.authorization), process.env.CAPFRAME_ADMIN_KEY)) {
      sendJson(res, 401, { error: 'POST /v1/revocations needs Authorization: Bearer <CAPFRAME_ADMIN_KEY>' });
      return;
    }
    const body = await readBody(req, options.maxBodyBytes);
    let ref: unknown;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { id?: unknown; token?: unknown } | null;
      ref = parsed?.id ?? parsed?.token;
    } catch {
      sendJson(res, 400, { error: 'body must be JSON: {id: "tok_…"} or {token: "cf1.…"}' });
      return;
    }
    const cti = typeof ref === 'string' ? rt.ctiOf(ref) : undefined;
    if (cti === undefined) {
      sendJson(res, 400, { error: 'body must name a token: {id: "tok_…"} or {token: "cf1.…"}' });
      return;
    }
    let added: boolean;
    try {
      added = await rt.revoke(cti, claimedExpiry(ref as string));
    } catch (error) {
      // Never a success that did not happen: this instance denies the token, the store does not know.
      rt.log.error('revocation not stored', { id: tokenId(cti), error: (error as Error).message });
      sendJson(res, 503, { error: `${tokenId(cti)} is revoked in this instance only: the store could not record it (${(error as Error).message}); retry` });
      return;
    }
    sendJson(res, 200, { revoked: tokenId(cti), new: added });
  }

  const http = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = `${req.method} ${path}`;
    // A GET on the MCP endpoint is a session's standalone SSE stream, open until the
    // client leaves: not in-flight work, so SIGTERM must not wait for it.
    const track = req.method === 'GET' && (path === '/' || path === '/mcp') ? (_work: Promise<unknown>) => undefined : rt.track;
    track(
      (async () => {
        try {
          if (path === '/' || path === '/mcp') await handleMcp(req, res);
          else if (route === 'GET /healthz') {
            const store = rt.storeHealth.check();
            sendJson(res, store.ok ? 200 : 503, { status: store.ok ? 'ok' : 'degraded', backend: rt.backend, upstreams: rt.upstreams.health(), store: store.detail });
          }
          else if (route === 'GET /metrics') {
            const text = rt.metrics.render();
            res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
            res.end(text);
          } else if (route === 'POST /v1/tokens') await handleTokens(req, res);
          else if (route === 'POST /v1/revocations') await handleRevocations(req, res);
          else sendJson(res, 404, { error: `no route for ${route}` });
        } catch (error) {
          if (error instanceof BodyTooLarge) {
            // No `connection: close`: closing a socket with unread request bytes resets it,
            // and a client still sending gets EPIPE instead of this answer. The rest of the
            // body is read and dropped; a client still sending after 5 s is cut off.
            sendJson(res, 413, { error: `request body larger than ${options.maxBodyBytes} bytes` });
            req.resume();
            if (!req.complete) {
              const cut = setTimeout(() => req.socket.destroy(), 5000).unref();
              const keep = () => clearTimeout(cut);
              req.once('end', keep).once('close', keep);
            }
            return;
          }
          rt.log.error('http handler error', { route, error: (error as Error).message });
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.end();
        }
      })(),
    );
  });
  http.on('close', () => clearInterval(sweep));
  return http;
}
