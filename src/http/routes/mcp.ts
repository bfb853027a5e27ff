/**
 * MCP Streamable HTTP on `/` and `/mcp`: POST (requests, SSE or JSON answers), GET (the
 * session's own SSE stream) and DELETE (end the session), with sessions via
 * `Mcp-Session-Id` bound to the identity that opened them (src/proxy/sessions.ts).
 *
 * Order per request: authenticate (with agents in the policy, no valid key is a 401 before
 * any session or SDK object exists) → a POST body must be JSON (415) → find the caller's
 * own session (anyone else's is a 404, as if unknown) → read the body → a lone `tools/call` is answered here as plain JSON
 * (the hot path); everything else goes through the SDK transport.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

import { isRecord } from '../../lib/is-record.js';
import { authenticate, bearerOf } from '../../proxy/auth.js';
import { callerWith } from '../../proxy/enforce.js';
import { authInfoFor, createSessionServer } from '../../proxy/mcp-server.js';
import { SessionTable, type SessionOwner, type SessionRefusal } from '../../proxy/sessions.js';
import { NOT_JSON, discardBody, readJson, sendJson, sendRpcError } from '../body.js';
import type { RouteFamily } from '../context.js';
import type { Route } from '../router.js';

/** JSON-RPC error codes MCP transports use for HTTP-level refusals. */
const SERVER_ERROR = -32000;
const SESSION_NOT_FOUND = -32001;
const PARSE_ERROR = -32700;

/**
 * A lone, well-formed `tools/call` request on an established session whose client
 * accepts a JSON answer and speaks a protocol version we know; else undefined.
 */
function fastToolCall(req: IncomingMessage, body: unknown): { id: string | number; name: string; arguments: unknown; meta: unknown } | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const m = body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  // Ids as the SDK path accepts them (a string or an integer), so the two paths agree on what is a request.
  if (m.jsonrpc !== '2.0' || m.method !== 'tools/call' || (typeof m.id !== 'string' && !Number.isSafeInteger(m.id))) return undefined;
  if (typeof m.params !== 'object' || m.params === null) return undefined;
  const p = m.params as { name?: unknown; arguments?: unknown; _meta?: unknown };
  // A `_meta` that is not an object is refused by the SDK path; here it would be ignored, and a token in it with it.
  if (typeof p.name !== 'string' || (p._meta !== undefined && !isRecord(p._meta))) return undefined;
  if (!(req.headers.accept ?? '').includes('application/json')) return undefined;
  const version = req.headers['mcp-protocol-version'];
  if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return undefined;
  return { id: m.id as string | number, name: p.name, arguments: p.arguments, meta: p._meta };
}

/** A `Content-Type` whose media type is application/json (parameters such as charset aside). */
function isJsonBody(type: string | undefined): boolean {
  const semicolon = type?.indexOf(';') ?? -1;
  return type !== undefined && (semicolon === -1 ? type : type.slice(0, semicolon)).trim().toLowerCase() === 'application/json';
}

/** An `initialize` request, alone or as a batch of one (the transport checks the rest). */
function isInitialize(body: unknown): boolean {
  const m = Array.isArray(body) && body.length === 1 ? (body[0] as unknown) : body;
  return typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'initialize';
}

export const mcpRoutes: RouteFamily = ({ rt, options, onClose }) => {
  const sessions = new SessionTable<StreamableHTTPServerTransport>(options.sessions);
  const { metrics } = rt;
  const refused = (reason: string) => metrics.httpRefused.labels(reason).inc();
  const limits = options.sessions;
  const sweep = setInterval(
    () => {
      const policy = rt.policy();
      const hasAgents = Object.keys(policy.agents).length > 0;
      // An agent removed from the policy loses its sessions; so does every session when the
      // policy switches between agents and capability mode.
      sessions.sweep((owner) => (owner === undefined ? !hasAgents : Object.hasOwn(policy.agents, owner)));
      metrics.sessionsOpen.set(sessions.size);
    },
    Math.max(100, Math.min(60_000, limits.handshakeMs, limits.idleMs) / 2),
  ).unref();
  onClose(() => {
    clearInterval(sweep);
    sessions.closeAll();
  });

  const notFound = (req: IncomingMessage, res: ServerResponse) => {
    refused('session_not_found');
    sendRpcError(res, 404, SESSION_NOT_FOUND, 'Session not found');
    discardBody(req);
  };

  async function openSession(req: IncomingMessage, res: ServerResponse, owner: SessionOwner, auth: ReturnType<typeof authenticate>): Promise<void> {
    if (req.method !== 'POST') {
      sendRpcError(res, 400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
      discardBody(req);
      return;
    }
    const full = (refusal: SessionRefusal) => {
      refused(`session_limit_${refusal.limit}`);
      sendRpcError(res, refusal.status, SERVER_ERROR, refusal.message, { 'retry-after': '30' });
    };
    // Refused early when full, so a full server reads no bodies; the place itself is held
    // only once the body is in, so a client sending slowly holds none.
    const early = sessions.refusal(owner);
    if (early !== undefined) {
      full(early);
      discardBody(req);
      return;
    }
    const parsed = await readJson(req, options.maxBodyBytes);
    if (parsed === NOT_JSON) {
      sendRpcError(res, 400, PARSE_ERROR, 'Parse error: body is not JSON');
      return;
    }
    if (!isInitialize(parsed)) {
      // Nothing but initialize opens a session: answered without building an SDK server.
      sendRpcError(res, 400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required; a session starts with an initialize request');
      return;
    }
    const reservation = sessions.reserve(owner);
    if ('limit' in reservation) return full(reservation);
    try {
      const server = createSessionServer({ enforcer: rt.enforcer, upstreams: rt.upstreams, policy: rt.policy });
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: options.jsonResponse,
        onsessioninitialized: (id) => {
          reservation.open(id, transport);
          metrics.sessionsOpen.set(sessions.size);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.remove(transport.sessionId);
        metrics.sessionsOpen.set(sessions.size);
      };
      await server.connect(transport);
      (req as IncomingMessage & { auth?: unknown }).auth = authInfoFor(auth);
      await transport.handleRequest(req, res, parsed);
    } finally {
      reservation.release();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Per request, against the current policy: a key removed from it stops working at once.
    const auth = authenticate(rt.policy(), bearerOf(req.headersDistinct.authorization));
    if (auth.kind === 'rejected') {
      refused('unauthenticated');
      const several = (req.headersDistinct.authorization?.length ?? 0) > 1;
      sendRpcError(
        res,
        401,
        SESSION_NOT_FOUND,
        `agent_unknown: ${several ? 'more than one Authorization header was sent' : auth.reason}; send one Authorization: Bearer <agent API key> (\`capframe agents add <name>\` creates a key)`,
        { 'www-authenticate': req.headers.authorization === undefined ? 'Bearer realm="capframe"' : 'Bearer realm="capframe", error="invalid_token"' },
      );
      discardBody(req);
      return;
    }
    if (req.method === 'POST' && !isJsonBody(req.headers['content-type'])) {
      // Checked here for every POST: the hot path would not, and the SDK's own check accepts any
      // type that merely contains "application/json" (`text/plain; x=application/json`, which a
      // browser posts cross-site without asking).
      sendRpcError(res, 415, SERVER_ERROR, 'Unsupported Media Type: Content-Type must be application/json');
      discardBody(req);
      return;
    }
    const owner = auth.kind === 'agent' ? auth.agent : undefined;
    const sessionId = req.headers['mcp-session-id'];
    if (sessionId === undefined) return openSession(req, res, owner, auth);
    // Unknown, or another identity's: the same answer, so a session id reveals nothing.
    const session = typeof sessionId === 'string' ? sessions.use(sessionId, owner) : undefined;
    if (session === undefined) return notFound(req, res);

    let parsed: unknown;
    if (req.method === 'POST') {
      parsed = await readJson(req, options.maxBodyBytes);
      if (parsed === NOT_JSON) {
        sendRpcError(res, 400, PARSE_ERROR, 'Parse error: body is not JSON');
        return;
      }
      const call = fastToolCall(req, parsed);
      if (call !== undefined) {
        // The per-call hot path: answered here as plain JSON, not through the SDK's
        // web-stream transport. Anything unusual falls through to the SDK below.
        const result = await rt.enforcer.callTool(callerWith(auth, req.headers), call.name, call.arguments, call.meta);
        sendJson(res, 200, { jsonrpc: '2.0', id: call.id, result });
        return;
      }
    }
    (req as IncomingMessage & { auth?: unknown }).auth = authInfoFor(auth);
    await session.value.handleRequest(req, res, parsed);
  }

  const routes: Route[] = [];
  for (const path of ['/', '/mcp']) {
    routes.push(
      { method: 'POST', path, handler: handle },
      // The session's own SSE stream stays open until the client leaves.
      { method: 'GET', path, handler: handle, longLived: true },
      { method: 'DELETE', path, handler: handle },
    );
  }
  return routes;
};
