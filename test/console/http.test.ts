/**
 * The console over plain HTTP against a real `capframe serve --console`: no session, no
 * access; the admin key and only it opens a session; every state change needs the CSRF
 * token and this server's Origin; revocation from the console is in force at once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectHttp, expectDenial, startServe, type PolicyEnv } from '../proxy/e2e-helpers.js';
import {
  ADMIN_KEY,
  AGENT_KEY,
  callWith,
  consolePolicyEnv,
  decisionsOf,
  eventually,
  http,
  openStream,
  requestToken,
  serveRefusal,
  signIn,
  startConsole,
  type ConsoleServer,
  type Signed,
} from './helpers.js';

const API_GETS = ['/console/api/session', '/console/api/decisions/stream', '/console/api/tokens', '/console/api/revocations', '/console/api/agents', '/console/api/tools', '/console/api/audit', '/console/api/stats'];
const API_POSTS = ['/console/api/tokens/revoke', '/console/logout'];
const QUERY = { sql: 'SELECT * FROM customers' };

const revocationLog = (env: PolicyEnv): string => {
  const path = join(env.stateDir, 'revocations.log');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};

describe('serve --console refuses to start without a usable admin key', () => {
  let env: PolicyEnv;
  beforeAll(() => {
    env = consolePolicyEnv();
  });
  afterAll(() => env.remove());

  it('no CAPFRAME_ADMIN_KEY: exit 1 naming the variable, nothing served', async () => {
    const r = await serveRefusal(env, ['--console'], { CAPFRAME_ADMIN_KEY: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--console needs CAPFRAME_ADMIN_KEY/);
    expect(r.stderr).not.toMatch(/capframe: serving/);
  });

  it('an empty or short admin key is refused too', async () => {
    expect((await serveRefusal(env, ['--console'], { CAPFRAME_ADMIN_KEY: '' })).stderr).toMatch(/--console needs CAPFRAME_ADMIN_KEY/);
    const short = await serveRefusal(env, ['--console'], { CAPFRAME_ADMIN_KEY: 'admin' });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 16 characters \(it has 5\)/);
  });

  it('--console with --stdio, and --console-secure-cookie alone, are refused', async () => {
    expect((await serveRefusal(env, ['--console', '--stdio'], {})).stderr).toMatch(/--console needs HTTP/);
    expect((await serveRefusal(env, ['--console-secure-cookie'], {})).stderr).toMatch(/--console-secure-cookie needs --console/);
  });

  it('without --console there is no console, even with the admin key set', async () => {
    const server = await startServe(env, { env: { CAPFRAME_ADMIN_KEY: ADMIN_KEY } });
    try {
      for (const path of ['/console/', '/console/login', '/console/api/tokens', '/console/assets/app.js']) {
        expect((await http(server.origin, path)).status, path).toBe(404);
      }
    } finally {
      await server.stop();
    }
  });
});

describe('the console over HTTP', () => {
  let env: PolicyEnv;
  let server: ConsoleServer;
  let base: string;
  let admin: Signed;
  let agent: Client;

  beforeAll(async () => {
    env = consolePolicyEnv();
    server = await startConsole(env);
    base = server.origin;
    admin = await signIn(base);
    agent = await connectHttp(server.url, { authorization: `Bearer ${AGENT_KEY}` });
  });
  afterAll(async () => {
    await agent?.close();
    await server?.stop();
    env?.remove();
  });

  it('every API route answers 401 without a session, and with a session id it never issued', async () => {
    for (const cookie of [undefined, 'capframe_console=not-a-session', 'capframe_console=']) {
      for (const path of API_GETS) {
        const r = await http(base, path, { headers: cookie === undefined ? {} : { cookie } });
        expect(r.status, `${path} with ${cookie}`).toBe(401);
        expect(r.headers['content-type']).toBe('application/json');
        expect(r.json()).toEqual({ error: expect.stringMatching(/not logged in/) });
      }
      for (const path of API_POSTS) {
        const r = await http(base, path, { body: { id: 'tok_AAAAAAAAAAAAAAAAAAAAAA' }, headers: { origin: base, 'x-csrf-token': admin.csrf, ...(cookie !== undefined && { cookie }) } });
        expect(r.status, `POST ${path} with ${cookie}`).toBe(401);
      }
    }
    expect(revocationLog(env)).toBe('');
  });

  it('pages without a session lead to the login form; every console answer carries the security headers', async () => {
    for (const path of ['/console', '/console/']) {
      const r = await http(base, path);
      expect(r.status).toBe(303);
      expect(r.headers.location).toBe('/console/login');
    }
    const login = await http(base, '/console/login');
    expect(login.status).toBe(200);
    expect(login.text).toMatch(/<form method="post" action="\/console\/login">/);
    for (const r of [login, await http(base, '/console/api/tokens'), await http(base, '/console/api/tokens', { headers: { cookie: admin.cookie } })]) {
      const csp = String(r.headers['content-security-policy']);
      expect(csp).toMatch(/(^|; )default-src 'none'(;|$)/);
      expect(csp).toMatch(/(^|; )script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
      expect(csp).toMatch(/frame-ancestors 'none'/);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(r.headers['x-frame-options']).toBe('DENY');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['referrer-policy']).toBe('same-origin');
      expect(r.headers['cache-control']).toBe('no-store');
    }
  });

  it('the app page allows exactly its import map by hash; the UI files come from this server', async () => {
    const page = await http(base, '/console/', { headers: { cookie: admin.cookie } });
    expect(page.status).toBe(200);
    const map = /<script type="importmap">([^<]*)<\/script>/.exec(page.text)?.[1];
    expect(map).toBeDefined();
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update(map!).digest('base64');
    expect(String(page.headers['content-security-policy'])).toContain(`'sha256-${hash}'`);
    const imports = (JSON.parse(map!) as { imports: Record<string, string> }).imports;
    expect(Object.keys(imports).sort()).toEqual(['htm', 'preact', 'preact/hooks']);
    for (const path of [...Object.values(imports), '/console/assets/app.js', '/console/assets/app.css']) {
      expect(path.startsWith('/console/assets/')).toBe(true);
      const r = await http(base, path);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type']).toMatch(path.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
    }
    // Nothing else is reachable under /console/assets: no directory walking.
    expect((await http(base, '/console/assets/../../package.json')).status).toBe(404);
    expect((await http(base, '/console/assets/index.html')).status).toBe(404);
  });

  it('a wrong admin key opens nothing', async () => {
    const r = await http(base, '/console/login', { body: 'key=console-test-admin-key-0123456780', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base } });
    expect(r.status).toBe(401);
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.text).toMatch(/Wrong admin key/);
    await eventually(() => (/console: login refused \(wrong admin key\)/.test(server.stderr()) ? true : undefined), 'the refusal in the log');
    expect(server.stderr()).not.toContain('console-test-admin-key-0123456780');
  });

  it('a sign-in from another origin, or with no Origin, is refused before the key is looked at', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams({ key: ADMIN_KEY }).toString();
    // localhost passes the DNS-rebinding guard (a loopback origin) but is not this server's origin.
    const other = base.replace('127.0.0.1', 'localhost');
    for (const headers of [form, { ...form, origin: other }, { ...form, origin: 'null' }, { ...form, origin: base, 'sec-fetch-site': 'cross-site' }]) {
      const r = await http(base, '/console/login', { body, headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.headers['set-cookie']).toBeUndefined();
    }
  });

  it('the session cookie is HTTP-only, SameSite=Strict, limited to /console, and not Secure on a loopback listener without TLS', () => {
    const parts = admin.setCookie.split('; ');
    expect(parts[0]).toMatch(/^capframe_console=[A-Za-z0-9_-]{43}$/);
    expect(parts.slice(1).sort()).toEqual(['HttpOnly', 'Max-Age=43200', 'Path=/console', 'SameSite=Strict']);
  });

  it('revoking from the console needs the CSRF token and this Origin; then the token is denied at once', async () => {
    const { token, id } = await requestToken(agent, 'database.query');
    expect((await callWith(agent, 'database.query', QUERY, token)).isError ?? false).toBe(false);
    const send = (headers: Record<string, string>, body: object | string = { id }) => http(base, '/console/api/tokens/revoke', { body, headers: { cookie: admin.cookie, ...headers } });

    const other = await signIn(base);
    const refusals: [string, Record<string, string>, number][] = [
      ['no CSRF token', { origin: base }, 403],
      ['a wrong CSRF token', { origin: base, 'x-csrf-token': admin.csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }, 403],
      ["another session's CSRF token", { origin: base, 'x-csrf-token': other.csrf }, 403],
      ['no Origin', { 'x-csrf-token': admin.csrf }, 403],
      ['another origin', { origin: base.replace('127.0.0.1', 'localhost'), 'x-csrf-token': admin.csrf }, 403],
      ['a cross-site fetch', { origin: base, 'x-csrf-token': admin.csrf, 'sec-fetch-site': 'cross-site' }, 403],
    ];
    for (const [what, headers, status] of refusals) {
      const r = await send(headers);
      expect(r.status, what).toBe(status);
    }
    // A form-encoded body (what a cross-site form could send) is not accepted either.
    expect((await send({ origin: base, 'x-csrf-token': admin.csrf, 'content-type': 'text/plain' }, JSON.stringify({ id }))).status).toBe(415);
    // Nothing was revoked: the store has no line and the token still works.
    expect(revocationLog(env)).not.toContain(id);
    const before = env.calls().length;
    expect((await callWith(agent, 'database.query', QUERY, token)).isError ?? false).toBe(false);
    expect(env.calls().length).toBe(before + 1);
    await eventually(() => (/console: state change refused/.test(server.stderr()) ? true : undefined), 'the refusals in the log');

    const ok = await send({ origin: base, 'x-csrf-token': admin.csrf });
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ revoked: id, new: true, in_force: true });
    expect(revocationLog(env)).toContain(id);
    // In force at once: the very next call is denied and never reaches the upstream.
    const seen = env.calls().length;
    expectDenial(await callWith(agent, 'database.query', QUERY, token), 'revoked');
    expect(env.calls().length).toBe(seen);
    // Revoking again is harmless and says so.
    expect((await send({ origin: base, 'x-csrf-token': admin.csrf })).json()).toEqual({ revoked: id, new: false, in_force: true });

    const tokens = await http(base, '/console/api/tokens', { headers: { cookie: admin.cookie } });
    const listed = (tokens.json() as { items: { id: string; state: string }[] }).items.find((t) => t.id === id);
    expect(listed?.state).toBe('revoked');
    // The printable token (a bearer credential) never leaves the server.
    expect(tokens.text).not.toContain('cf1.');
    const revocations = await http(base, '/console/api/revocations', { headers: { cookie: admin.cookie } });
    expect((revocations.json() as { items: { id: string }[] }).items.map((r) => r.id)).toContain(id);
  });

  it('bad revoke bodies and page queries are 400, nothing revoked', async () => {
    const headers = { cookie: admin.cookie, origin: base, 'x-csrf-token': admin.csrf };
    const log = revocationLog(env);
    for (const body of [{}, { id: 'cf1.abc' }, { id: 'tok_!!' }, { token: 'tok_AAAAAAAAAAAAAAAAAAAAAA' }, 'not json']) {
      const r = await http(base, '/console/api/tokens/revoke', { body: typeof body === 'string' ? body : body, headers: { ...headers, 'content-type': 'application/json' } });
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect(revocationLog(env)).toBe(log);
    for (const query of ['?limit=0', '?limit=201', '?limit=x', '?before=-1', '?before=99999999999']) {
      expect((await http(base, `/console/api/tokens${query}`, { headers: { cookie: admin.cookie } })).status, query).toBe(400);
    }
  });

  it('tokens page newest first with a cursor to older ones', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await requestToken(agent, 'database.update')).id);
    const first = (await http(base, '/console/api/tokens?limit=2', { headers: { cookie: admin.cookie } })).json() as { items: { id: string }[]; next?: string };
    expect(first.items.map((t) => t.id)).toEqual([ids[2], ids[1]]);
    expect(first.next).toMatch(/^\d+$/);
    const second = (await http(base, `/console/api/tokens?limit=2&before=${first.next}`, { headers: { cookie: admin.cookie } })).json() as { items: { id: string }[] };
    expect(second.items[0]!.id).toBe(ids[0]);
  });

  it('agents show a key fingerprint, not the whole key hash; tools show findings and pin state; the audit chain is OK', async () => {
    const agents = await http(base, '/console/api/agents', { headers: { cookie: admin.cookie } });
    const { createHash } = await import('node:crypto');
    const fullHash = createHash('sha256').update(AGENT_KEY).digest('hex');
    expect(agents.json()).toMatchObject({ mode: 'agents', agents: [{ name: 'support-bot', auto_mint: false, key_fingerprint: fullHash.slice(0, 12), holder_keys: [] }] });
    expect(agents.text).not.toContain(fullHash);

    const tools = (await http(base, '/console/api/tools', { headers: { cookie: admin.cookie } })).json() as { servers: { server: string; up: boolean; tools: { name: string; status: string; pin: string; findings: { rule: string }[] }[] }[] };
    const database = tools.servers.find((s) => s.server === 'database');
    expect(database?.up).toBe(true);
    const update = database?.tools.find((t) => t.name === 'database.update');
    expect(update).toMatchObject({ status: 'served', pin: 'no_lock' });
    expect(update?.findings.map((f) => f.rule)).toContain('CF-TEXT-001');

    const audit = (await http(base, '/console/api/audit?refresh=1', { headers: { cookie: admin.cookie } })).json() as { ok: boolean; lines: number };
    expect(audit.ok).toBe(true);
    expect(audit.lines).toBeGreaterThan(0);

    const stats = (await http(base, '/console/api/stats', { headers: { cookie: admin.cookie } })).json() as { tools: { tool: string; allow: number; deny: number; codes: Record<string, number> }[] };
    const query = stats.tools.find((t) => t.tool === 'database.query');
    expect(query?.allow).toBeGreaterThanOrEqual(2);
    expect(query?.codes.revoked).toBeGreaterThanOrEqual(1);
  });

  it('the decisions stream sends new decisions live, filtered by tool, without arguments (audit.log_args is off)', async () => {
    const all = await openStream(base, admin.cookie);
    const updates = await openStream(base, admin.cookie, '?tool=database.update');
    try {
      expect(all.status).toBe(200);
      expect(all.headers['content-type']).toBe('text/event-stream');
      const { token, id } = await requestToken(agent, 'database.update');
      await callWith(agent, 'database.update', { table: 'orders', id: 1, fields: { status: 'shipped' } }, token);
      const live = await eventually(() => decisionsOf(updates).find((d) => d.token_id === id && d.tool === 'database.update'), 'the call on the filtered stream');
      expect(live).toMatchObject({ agent: 'support-bot', decision: 'allow', code: 'ok' });
      expect(live).not.toHaveProperty('args');
      expect(live).not.toHaveProperty('args_sha256');
      await eventually(() => decisionsOf(all).find((d) => d.tool === 'capframe.request_token' && d.token_id === id), 'the issuance on the unfiltered stream');
      expect(decisionsOf(updates).every((d) => d.tool === 'database.update')).toBe(true);
    } finally {
      all.close();
      updates.close();
    }
  });

  it('a session may hold 4 decision streams at once; the 5th is refused', async () => {
    const s = await signIn(base);
    const open = await Promise.all([1, 2, 3, 4].map(() => openStream(base, s.cookie)));
    try {
      expect(open.map((o) => o.status)).toEqual([200, 200, 200, 200]);
      const fifth = await http(base, '/console/api/decisions/stream', { headers: { cookie: s.cookie } });
      expect(fifth.status).toBe(429);
    } finally {
      for (const o of open) o.close();
    }
  });

  it('sign-out needs the CSRF token; afterwards the session opens nothing and its streams end', async () => {
    const s = await signIn(base);
    const stream = await openStream(base, s.cookie);
    expect((await http(base, '/console/logout', { body: {}, headers: { cookie: s.cookie, origin: base } })).status).toBe(403);
    expect((await http(base, '/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(200);
    const out = await http(base, '/console/logout', { body: {}, headers: { cookie: s.cookie, origin: base, 'x-csrf-token': s.csrf } });
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/^capframe_console=; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=0/);
    await stream.ended;
    expect((await http(base, '/console/api/session', { headers: { cookie: s.cookie } })).status).toBe(401);
    expect((await http(base, '/console/', { headers: { cookie: s.cookie } })).status).toBe(303);
    // The other session is untouched.
    expect((await http(base, '/console/api/session', { headers: { cookie: admin.cookie } })).status).toBe(200);
  });
});

describe('console sign-in limits, Secure cookies and audit.log_args', () => {
  let env: PolicyEnv;
  let server: ConsoleServer;
  beforeAll(async () => {
    env = consolePolicyEnv({ audit: { log_args: true } });
    server = await startConsole(env, { args: ['--console-secure-cookie'] });
  });
  afterAll(async () => {
    await server?.stop();
    env?.remove();
  });

  it('--console-secure-cookie marks the cookie Secure; with audit.log_args the stream shows arguments', async () => {
    const admin = await signIn(server.origin);
    expect(admin.setCookie.split('; ')).toContain('Secure');
    const stream = await openStream(server.origin, admin.cookie, '?tool=database.query');
    const agent = await connectHttp(server.url, { authorization: `Bearer ${AGENT_KEY}` });
    try {
      const { token } = await requestToken(agent, 'database.query');
      await callWith(agent, 'database.query', QUERY, token);
      const seen = await eventually(() => decisionsOf(stream).find((d) => d.tool === 'database.query'), 'the call on the stream');
      expect(seen.args).toEqual(QUERY);
    } finally {
      stream.close();
      await agent.close();
    }
  });

  it('after 10 sign-in attempts a minute from one address, even the right key is refused (429)', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded', origin: server.origin };
    let refused = 0;
    for (let i = 0; i < 12; i++) {
      const r = await http(server.origin, '/console/login', { body: 'key=wrong-key-wrong-key-wrong', headers: form });
      if (r.status === 429) refused += 1;
      else expect(r.status).toBe(401);
    }
    expect(refused).toBeGreaterThanOrEqual(2);
    const right = await http(server.origin, '/console/login', { body: new URLSearchParams({ key: ADMIN_KEY }).toString(), headers: form });
    expect(right.status).toBe(429);
    expect(right.headers['retry-after']).toBe('60');
    expect(right.headers['set-cookie']).toBeUndefined();
  });
});

describe('shutdown with the console open', () => {
  it('SIGTERM with a signed-in decision stream open still drains and exits 0, ending the stream', async () => {
    const env = consolePolicyEnv();
    const server = await startConsole(env);
    try {
      const admin = await signIn(server.origin);
      const stream = await openStream(server.origin, admin.cookie);
      expect(stream.status).toBe(200);
      expect(await server.stop()).toBe(0);
      await stream.ended;
    } finally {
      await server.stop();
      env.remove();
    }
  });
});
