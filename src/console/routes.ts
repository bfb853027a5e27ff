/**
 * The operator console's HTTP routes under /console (SPEC §14): the pages, their files,
 * login/logout and the JSON API under /console/api/. Everything but the login page and
 * the static files needs a session, which only the admin key opens; every state change
 * also needs the session's CSRF token in `X-CSRF-Token` and an `Origin` naming this server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { AuditRecord } from '../audit/record.js';
import { visible } from '../discover/report.js';
import { BodyTooLarge, NOT_JSON, discardBody, readBody, readJson } from '../http/body.js';
import type { Route } from '../http/router.js';
import { sameSecret } from '../lib/same-secret.js';
import { RateLimiter } from '../proxy/rate-limit.js';
import type { Runtime } from '../proxy/runtime.js';
import { parseTokenId } from '../verify/token-id.js';
import type { ConsoleAssets } from './assets.js';
import { auditStatusReader } from './audit-status.js';
import { DecisionFeed, type FeedItem } from './decision-feed.js';
import { BadCursor, type ConsoleLedger } from './ledger.js';
import { SESSION_COOKIE, cookieValue, crossOriginReason, needsSecureCookie, queryOf, remoteOf, sessionCookie } from './request.js';
import { ConsoleSessions, type ConsoleSession, type SessionLimits } from './sessions.js';
import { statsReader } from './stats.js';
import { toolsView } from './tools-view.js';

export interface ConsoleLimits {
  sessions: SessionLimits;
  /** Open decision streams per session. */
  streamsPerSession: number;
  /** Open decision streams in all. */
  streams: number;
  /** A stream whose client reads slower than this many buffered bytes is closed (it reconnects and gets the recent history). */
  streamBufferBytes: number;
  /** Login attempts per remote address per minute, and from all addresses together. */
  loginsPerAddress: number;
  logins: number;
  /** Items per page at most (tokens, revocations). */
  pageSize: number;
}

export const DEFAULT_CONSOLE_LIMITS: ConsoleLimits = Object.freeze({
  sessions: { idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000, max: 64 },
  streamsPerSession: 4,
  streams: 32,
  streamBufferBytes: 256 * 1024,
  loginsPerAddress: 10,
  logins: 60,
  pageSize: 200,
});

export interface ConsoleDeps {
  rt: Runtime;
  assets: ConsoleAssets;
  ledger: ConsoleLedger;
  /** `Secure` on the session cookie even on a loopback listener without TLS (`--console-secure-cookie`). */
  secureCookie: boolean;
  limits?: ConsoleLimits;
  /** Reads the admin key per login (default: `CAPFRAME_ADMIN_KEY`). */
  adminKey?: () => string | undefined;
  /** Heartbeat of decision streams (ms, default 15 s); each beat also checks the session. */
  heartbeatMs?: number;
  /** Registers cleanup for when the HTTP server closes. */
  onClose(cleanup: () => void): void;
}

const LOGIN_BODY_BYTES = 4096;
const API_BODY_BYTES = 4096;
const MAX_FILTER_CHARS = 128;

type ApiHandler = (req: IncomingMessage, res: ServerResponse, session: ConsoleSession) => Promise<void> | void;

/**
 * The console's routes.
 *
 * @example
 * const routes = consoleRoutes({ rt, assets: loadConsoleAssets(), ledger: fileLedger(rt.store), secureCookie: false, onClose });
 */
export function consoleRoutes(deps: ConsoleDeps): Route[] {
  const { rt, assets } = deps;
  const limits = deps.limits ?? DEFAULT_CONSOLE_LIMITS;
  const adminKey = deps.adminKey ?? (() => process.env.CAPFRAME_ADMIN_KEY);
  const sessions = new ConsoleSessions(limits.sessions);
  const logins = new RateLimiter();
  const feed = new DecisionFeed(rt.auditPath, { log: rt.log });
  const stats = statsReader(rt.auditPath);
  const auditStatus = auditStatusReader(rt.auditPath);
  let streams = 0;
  const sweep = setInterval(() => {
    sessions.sweep();
    logins.sweep(60);
  }, 60_000).unref();
  deps.onClose(() => {
    clearInterval(sweep);
    sessions.clear();
    feed.close();
  });

  const baseHeaders = {
    'content-security-policy': assets.csp,
    'x-frame-options': 'DENY',
    // Not no-referrer: under it browsers send `Origin: null` on same-origin POSTs, and the
    // Origin check on state changes needs the real one. Other sites still get no referrer.
    'referrer-policy': 'same-origin',
    'x-content-type-options': 'nosniff',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store',
  };
  const send = (res: ServerResponse, status: number, type: string, body: Buffer | string, extra: Record<string, string> = {}) => {
    res.writeHead(status, { ...baseHeaders, 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) =>
    send(res, status, 'application/json', JSON.stringify(body), extra);
  const html = (res: ServerResponse, status: number, body: Buffer, extra: Record<string, string> = {}) => send(res, status, 'text/html; charset=utf-8', body, extra);
  const redirect = (res: ServerResponse, location: string, extra: Record<string, string> = {}) => {
    res.writeHead(303, { ...baseHeaders, location, 'content-length': 0, ...extra });
    res.end();
  };
  const sessionOf = (req: IncomingMessage, touch = true) => sessions.get(cookieValue(req, SESSION_COOKIE), touch);

  /** An API route: 401 without a session; with `state`, 403 without the CSRF token or from another origin. */
  const api =
    (handler: ApiHandler, state = false) =>
    async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const session = sessionOf(req);
      if (session === undefined) {
        json(res, 401, { error: 'not logged in: sign in at /console/login with the admin key' });
        discardBody(req);
        return;
      }
      if (state) {
        const refused = crossOriginReason(req);
        const header = req.headers['x-csrf-token'];
        if (refused !== undefined || !sessions.csrfMatches(session, typeof header === 'string' ? header : undefined)) {
          rt.log.warn('console: state change refused', { path: (req.url ?? '').slice(0, 100), session: session.handle, reason: refused ?? 'missing or wrong X-CSRF-Token' });
          json(res, 403, { error: refused === undefined ? 'forbidden: missing or wrong X-CSRF-Token' : `forbidden: ${refused}` });
          discardBody(req);
          return;
        }
      }
      await handler(req, res, session);
    };

  const page = (query: URLSearchParams): { before?: string; limit: number } | string => {
    const limitText = query.get('limit') ?? '50';
    const limit = /^[1-9][0-9]{0,3}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit <= limits.pageSize)) return `limit must be a whole number from 1 to ${limits.pageSize}`;
    const before = query.get('before');
    return before === null ? { limit } : { before, limit };
  };

  // --- pages ---------------------------------------------------------------------------

  const appPage = (req: IncomingMessage, res: ServerResponse) => {
    if (sessionOf(req) === undefined) return redirect(res, '/console/login');
    html(res, 200, assets.appPage);
  };

  const loginPage = (req: IncomingMessage, res: ServerResponse) => {
    if (sessionOf(req, false) !== undefined) return redirect(res, '/console/');
    html(res, 200, assets.loginPage());
  };

  const login = async (req: IncomingMessage, res: ServerResponse) => {
    const remote = remoteOf(req);
    if (!logins.take(`addr:${remote}`, { calls: limits.loginsPerAddress, per: 60 }) || !logins.take('all', { calls: limits.logins, per: 60 })) {
      rt.log.warn('console: login rate limit reached', { remote });
      html(res, 429, assets.loginPage('Too many sign-in attempts. Wait a minute and try again.'), { 'retry-after': '60' });
      discardBody(req);
      return;
    }
    const refused = crossOriginReason(req);
    if (refused !== undefined) {
      html(res, 403, assets.loginPage(`Refused: ${refused}.`));
      discardBody(req);
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, LOGIN_BODY_BYTES);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        html(res, 413, assets.loginPage('The form was too large.'));
        discardBody(req);
        return;
      }
      throw error;
    }
    const key = new URLSearchParams(body.toString('utf8')).get('key') ?? undefined;
    if (!sameSecret(key, adminKey())) {
      rt.log.warn('console: login refused (wrong admin key)', { remote });
      html(res, 401, assets.loginPage('Wrong admin key.'));
      return;
    }
    // A login replaces whatever session the browser had.
    sessions.destroy(cookieValue(req, SESSION_COOKIE));
    const { id, session } = sessions.create();
    rt.log.info('console: signed in', { remote, session: session.handle });
    redirect(res, '/console/', { 'set-cookie': sessionCookie(id, { secure: needsSecureCookie(req, deps.secureCookie), maxAgeSeconds: Math.floor(limits.sessions.absoluteMs / 1000) }) });
  };

  const logout: ApiHandler = (req, res, session) => {
    sessions.destroy(cookieValue(req, SESSION_COOKIE));
    rt.log.info('console: signed out', { session: session.handle });
    json(res, 200, { ok: true }, { 'set-cookie': sessionCookie('', { secure: needsSecureCookie(req, deps.secureCookie), maxAgeSeconds: 0 }) });
    discardBody(req);
  };

  // --- API ------------------------------------------------------------------------------

  const sessionInfo: ApiHandler = (_req, res, session) => {
    const policy = rt.policy();
    json(res, 200, {
      csrf: session.csrf,
      idle_expires_at: new Date(session.lastSeen + limits.sessions.idleMs).toISOString(),
      expires_at: new Date(session.createdAt + limits.sessions.absoluteMs).toISOString(),
      log_args: policy.audit.logArgs,
      backend: rt.backend,
      policy: policy.file,
    });
  };

  /** A decision as the stream sends it: strings from the log made visible, arguments only under `audit.log_args`. */
  const decisionEvent = (r: AuditRecord): Record<string, unknown> => {
    const out: Record<string, unknown> = {
      time: r.time,
      seq: r.seq,
      agent: r.agent === null ? null : visible(r.agent),
      tool: r.tool === null ? null : visible(r.tool),
      decision: r.decision,
      code: visible(r.code),
      token_id: r.token_id === null ? null : visible(r.token_id),
      latency_us: r.latency_us,
      reason: visible(r.reason),
    };
    if (r.of_seq !== undefined) out.of_seq = r.of_seq;
    if (rt.policy().audit.logArgs) {
      if (r.args !== undefined) out.args = r.args;
      if (r.args_omitted !== undefined) out.args_omitted = r.args_omitted;
    }
    return out;
  };

  const stream: ApiHandler = (req, res, session) => {
    const query = queryOf(req);
    const filter: { agent?: string; tool?: string; code?: string } = {};
    for (const name of ['agent', 'tool', 'code'] as const) {
      const value = query.get(name);
      if (value === null || value === '') continue;
      if (value.length > MAX_FILTER_CHARS) return json(res, 400, { error: `${name} filter longer than ${MAX_FILTER_CHARS} characters` });
      filter[name] = value;
    }
    // A session's closers are its open streams.
    if (session.closers.size >= limits.streamsPerSession || streams >= limits.streams) {
      return json(res, 429, { error: `too many open decision streams (${limits.streamsPerSession} per session, ${limits.streams} in all); close another console tab` }, { 'retry-after': '10' });
    }
    const toolPrefix = filter.tool?.endsWith('*') === true ? filter.tool.slice(0, -1) : undefined;
    const matches = (r: AuditRecord): boolean =>
      (filter.agent === undefined || r.agent === filter.agent) &&
      (filter.code === undefined || r.code === filter.code) &&
      (filter.tool === undefined || (toolPrefix !== undefined ? (r.tool ?? '').startsWith(toolPrefix) : r.tool === filter.tool));

    streams += 1;
    res.writeHead(200, { ...baseHeaders, 'content-type': 'text/event-stream', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      streams -= 1;
      unsubscribe();
      clearInterval(beat);
      session.closers.delete(close);
      res.end();
    };
    const write = (text: string) => {
      if (!open) return;
      if (res.writableLength > limits.streamBufferBytes) {
        rt.log.debug('console: closing a decision stream that does not keep up', { session: session.handle });
        close();
        return;
      }
      res.write(text);
    };
    const unsubscribe = feed.subscribe((item: FeedItem) => {
      if (item === null) write('event: invalid\ndata: {}\n\n');
      else if (matches(item)) write(`id: ${item.seq}\nevent: decision\ndata: ${JSON.stringify(decisionEvent(item))}\n\n`);
    });
    const beat = setInterval(() => {
      if (!sessions.alive(session)) close();
      else write(': keep-alive\n\n');
    }, deps.heartbeatMs ?? 15_000);
    beat.unref();
    session.closers.add(close);
    req.on('close', close);
    res.on('error', close);
  };

  const tokens: ApiHandler = async (req, res) => {
    const query = page(queryOf(req));
    if (typeof query === 'string') return json(res, 400, { error: query });
    try {
      const result = await deps.ledger.issued(query);
      const now = Date.now() / 1000;
      json(res, 200, {
        items: result.items.map((t) => {
          const revoked = isRevokedId(t.id);
          return {
            id: t.id,
            tool: visible(t.tool),
            agent: t.agent === undefined ? null : visible(t.agent),
            capability: t.capability === undefined ? null : visible(t.capability),
            issued_at: new Date(t.iat * 1000).toISOString(),
            expires_at: new Date(t.exp * 1000).toISOString(),
            state: revoked ? 'revoked' : t.exp <= now ? 'expired' : 'active',
          };
        }),
        ...(result.next !== undefined && { next: result.next }),
      });
    } catch (error) {
      if (error instanceof BadCursor) return json(res, 400, { error: error.message });
      throw error;
    }
  };

  const isRevokedId = (id: string): boolean => {
    try {
      return rt.isRevoked(parseTokenId(id));
    } catch {
      return false;
    }
  };

  const revoke: ApiHandler = async (req, res, session) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) {
      json(res, 415, { error: 'send JSON: Content-Type: application/json, body {"id": "tok_…"}' });
      discardBody(req);
      return;
    }
    let parsed: unknown;
    try {
      parsed = await readJson(req, API_BODY_BYTES);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        json(res, 413, { error: `body larger than ${API_BODY_BYTES} bytes` });
        discardBody(req);
        return;
      }
      throw error;
    }
    const id = parsed !== NOT_JSON && typeof parsed === 'object' && parsed !== null ? (parsed as { id?: unknown }).id : undefined;
    let cti: Uint8Array | undefined;
    if (typeof id === 'string' && id.startsWith('tok_')) {
      try {
        cti = parseTokenId(id);
      } catch {
        cti = undefined;
      }
    }
    if (cti === undefined) return json(res, 400, { error: 'body must be {"id": "tok_…"}: the id of the token to revoke' });
    const added = rt.revoke(cti);
    rt.log.info('console: token revoked', { token_id: id, new: added, session: session.handle });
    json(res, 200, { revoked: id, new: added, in_force: rt.isRevoked(cti) });
  };

  const revocations: ApiHandler = async (req, res) => {
    const query = page(queryOf(req));
    if (typeof query === 'string') return json(res, 400, { error: query });
    try {
      const result = await deps.ledger.revocations(query);
      json(res, 200, result);
    } catch (error) {
      if (error instanceof BadCursor) return json(res, 400, { error: error.message });
      throw error;
    }
  };

  const agents: ApiHandler = (_req, res) => {
    const policy = rt.policy();
    const names = Object.keys(policy.agents);
    json(res, 200, {
      // Without agents the token alone authorizes a call (SPEC §6).
      mode: names.length === 0 ? 'capability' : 'agents',
      auto_mint: policy.autoMint,
      agents: names.map((name) => {
        const agent = policy.agents[name]!;
        return {
          name,
          auto_mint: agent.autoMint,
          // Not a secret (the key cannot be derived from it), but a prefix is enough to tell keys apart.
          key_fingerprint: agent.keySha256.slice(0, 12),
          holder_keys: agent.holderKeys,
          rules: policy.rules.filter((r) => r.agents?.includes(name) === true).map((r) => ({ tool: r.tool, effect: r.effect, line: r.line, ...(r.capability !== undefined && { capability: r.capability }) })),
        };
      }),
      rules_for_every_agent: policy.rules.filter((r) => r.agents === undefined).map((r) => ({ tool: r.tool, effect: r.effect, line: r.line })),
    });
  };

  const tools: ApiHandler = (_req, res) => json(res, 200, toolsView(rt.upstreams.catalog()));

  const audit: ApiHandler = async (req, res) => json(res, 200, await auditStatus(queryOf(req).get('refresh') === '1'));

  const chart: ApiHandler = async (_req, res) => json(res, 200, await stats());

  // --- files ----------------------------------------------------------------------------

  const fileRoutes: Route[] = [...assets.files].map(([name, asset]) => ({
    method: 'GET' as const,
    path: `/console/assets/${name}`,
    // Code and styles only, no data: served without a session so the login page can use them.
    handler: (_req: IncomingMessage, res: ServerResponse) => send(res, 200, asset.type, asset.body, { 'cache-control': 'no-cache' }),
  }));

  return [
    { method: 'GET', path: '/console', handler: appPage },
    { method: 'GET', path: '/console/', handler: appPage },
    { method: 'GET', path: '/console/login', handler: loginPage },
    { method: 'POST', path: '/console/login', handler: login },
    { method: 'POST', path: '/console/logout', handler: api(logout, true) },
    { method: 'GET', path: '/console/api/session', handler: api(sessionInfo) },
    { method: 'GET', path: '/console/api/decisions/stream', handler: api(stream), longLived: true },
    { method: 'GET', path: '/console/api/tokens', handler: api(tokens) },
    { method: 'POST', path: '/console/api/tokens/revoke', handler: api(revoke, true) },
    { method: 'GET', path: '/console/api/revocations', handler: api(revocations) },
    { method: 'GET', path: '/console/api/agents', handler: api(agents) },
    { method: 'GET', path: '/console/api/tools', handler: api(tools) },
    { method: 'GET', path: '/console/api/audit', handler: api(audit) },
    { method: 'GET', path: '/console/api/stats', handler: api(chart) },
    ...fileRoutes,
  ];
}
