/**
 * DNS-rebinding protection (issue 8 item 10; MCP Streamable HTTP transport, Security
 * Warning): the guard on its own, then against a real `capframe serve` whose upstream logs
 * every call — a refused request is a 403 before authentication, and the upstream never
 * sees anything of it.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { createOriginGuard, isLoopbackAddress } from '../../src/http/origin.js';
import type { Policy } from '../../src/policy/types.js';
import { tempDir } from '../helpers.js';
import { EXAMPLE_SERVERS, killAllServed, NODE, q, startServe, upstreamCalls } from '../proxy/faults-helpers.js';
import { openSession, raw } from './raw.js';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
const policyWith = (allowedOrigins: string[] = [], allowedHosts: string[] = []) => ({ allowedOrigins, allowedHosts }) as unknown as Policy;

describe('createOriginGuard', () => {
  const loopbackGuard = (policy = policyWith(), flags: { origins?: string[]; hosts?: string[] } = {}) =>
    createOriginGuard({ loopback: () => true, policy: () => policy, origins: flags.origins ?? [], hosts: flags.hosts ?? [] });

  it('on a loopback listener, accepts loopback Host names with or without a port, and nothing else', () => {
    const guard = loopbackGuard();
    for (const host of ['localhost', 'localhost:8080', 'LOCALHOST:1', '127.0.0.1', '127.0.0.1:65535', '127.1.2.3:80', '[::1]', '[::1]:8080']) {
      expect(guard(req({ host })), host).toBeUndefined();
    }
    for (const host of ['evil.example', 'evil.example:8080', 'localhost.evil.example', '127.0.0.1.evil.example', 'evil-127.0.0.1', '10.0.0.1:8080', '[::2]:80', '0.0.0.0', '']) {
      expect(guard(req({ host })), host).toMatch(/^Host ".*" is not accepted here; .*allowed_hosts \(policy\) or --allowed-host/);
    }
    expect(guard(req({}))).toBe('the Host header is missing');
  });

  it('accepts a present Origin only when it is a loopback origin or listed', () => {
    const guard = loopbackGuard(policyWith(['https://console.example.com']), { origins: ['http://app.example.org:8443'] });
    const host = '127.0.0.1:9000';
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:9000', 'https://[::1]', 'https://console.example.com', 'http://app.example.org:8443']) {
      expect(guard(req({ host, origin })), origin).toBeUndefined();
    }
    for (const origin of ['http://evil.example', 'null', 'http://localhost.evil.example', 'https://console.example.com:8443', 'http://console.example.com', 'file://', 'http://app.example.org']) {
      expect(guard(req({ host, origin })), origin).toMatch(/^Origin ".*" is not accepted here; list it in allowed_origins \(policy\) or --allowed-origin/);
    }
  });

  it('widens Host only by what is listed, by name or by name and port', () => {
    const guard = loopbackGuard(policyWith([], ['mcp.example.com']), { hosts: ['proxy.internal:8080'] });
    for (const host of ['mcp.example.com', 'mcp.example.com:443', 'MCP.Example.com', 'proxy.internal:8080', 'localhost:1']) expect(guard(req({ host })), host).toBeUndefined();
    for (const host of ['proxy.internal', 'proxy.internal:8081', 'sub.mcp.example.com']) expect(guard(req({ host })), host).toBeDefined();
  });

  it('follows the policy as it reloads', () => {
    let policy = policyWith();
    const guard = createOriginGuard({ loopback: () => true, policy: () => policy, origins: [], hosts: [] });
    const r = req({ host: 'localhost', origin: 'https://console.example.com' });
    expect(guard(r)).toBeDefined();
    policy = policyWith(['https://console.example.com']);
    expect(guard(r)).toBeUndefined();
    policy = policyWith();
    expect(guard(r)).toBeDefined();
  });

  it('beyond loopback, Host is free unless hosts are listed; a present Origin must be listed', () => {
    const open = createOriginGuard({ loopback: () => false, policy: () => policyWith(), origins: [], hosts: [] });
    expect(open(req({ host: 'mcp.example.com:8080' }))).toBeUndefined();
    expect(open(req({}))).toBeUndefined();
    // Not even a loopback origin: a browser page on the operator's machine is still a browser page.
    expect(open(req({ host: 'mcp.example.com', origin: 'http://localhost:3000' }))).toMatch(/^Origin/);
    const listed = createOriginGuard({ loopback: () => false, policy: () => policyWith(['https://console.example.com'], ['mcp.example.com']), origins: [], hosts: [] });
    expect(listed(req({ host: 'mcp.example.com', origin: 'https://console.example.com' }))).toBeUndefined();
    expect(listed(req({ host: 'localhost:8080' }))).toBeUndefined();
    expect(listed(req({ host: 'evil.example' }))).toMatch(/^Host/);
  });

  it('knows loopback listener addresses', () => {
    expect(['127.0.0.1', '127.0.1.1', '::1', '::ffff:127.0.0.1'].map(isLoopbackAddress)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '::', '10.1.2.3', '::ffff:10.0.0.1', '128.0.0.1'].map(isLoopbackAddress)).toEqual([false, false, false, false, false]);
  });
});

const KEY = 'cfk_rebinding-test-agent';
const dirs: string[] = [];
afterEach(() => killAllServed());
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function setup(extra = ''): { policy: string; calls: string } {
  const dir = tempDir('capframe-http-origin-');
  dirs.push(dir);
  const calls = join(dir, 'calls.log');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `capframe:
  version: "0.2"
  default_policy: deny
  auto_mint: true
  agents:
    agent: { key_sha256: "${createHash('sha256').update(KEY).digest('hex')}" }
  servers:
    database: { command: ${NODE}, args: [${q(join(EXAMPLE_SERVERS, 'database.js'))}], env: { CALL_LOG: ${q(calls)} } }
  rules:
    - { tool: database.query, ttl: 60 }
${extra}`,
  );
  return { policy, calls };
}

const CALL = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'database.query', arguments: { sql: 'SELECT name FROM customers WHERE id = 1' } } };
const ROUTES = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/metrics' },
  { method: 'POST', path: '/v1/tokens', body: { tool: 'database.query' } },
  { method: 'POST', path: '/v1/revocations', body: { id: 'tok_x' } },
  { method: 'GET', path: '/no-such-route' },
];

describe('DNS-rebinding protection in a running serve', () => {
  it('a foreign Origin or Host is a 403 on every route, before authentication, and the upstream never sees it', async () => {
    const { policy, calls } = setup();
    const served = await startServe(policy);
    const session = await openSession(served.base, KEY);
    const port = new URL(served.base).port;
    const attacks: Record<string, string>[] = [{ origin: 'http://evil.example' }, { host: `evil.example:${port}` }, { host: `evil.example:${port}`, origin: `http://evil.example:${port}` }, { origin: 'null' }];
    for (const headers of attacks) {
      // A rebinding page driving a real session with a valid key: still refused.
      const mcp = await raw(served.base, { key: KEY, session, body: CALL, headers });
      expect(mcp.status, JSON.stringify(headers)).toBe(403);
      expect(mcp.messages).toEqual([{ error: expect.stringMatching(/^forbidden: (Origin|Host) "/) }]);
      const init = await raw(served.base, { key: KEY, body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: {} }, headers });
      expect(init.status).toBe(403);
      expect(init.headers['mcp-session-id']).toBeUndefined();
      for (const route of ROUTES) {
        const answer = await raw(served.base, { method: route.method, path: route.path, key: KEY, headers, ...(route.body !== undefined && { body: route.body }) });
        expect(answer.status, `${route.method} ${route.path} ${JSON.stringify(headers)}`).toBe(403);
      }
    }
    expect(upstreamCalls(calls)).toEqual([]);
    // Loopback names and origins pass, and the same call then goes through.
    const loopback: Record<string, string>[] = [{ host: `localhost:${port}` }, { host: `127.0.0.1:${port}`, origin: 'http://localhost:5173' }, { host: `[::1]:${port}` }];
    for (const headers of loopback) {
      expect((await raw(served.base, { path: '/healthz', headers })).status, JSON.stringify(headers)).toBe(200);
    }
    const ok = await raw(served.base, { key: KEY, session, body: CALL, headers: { origin: `http://localhost:${port}` } });
    expect(ok.status, ok.text).toBe(200);
    expect(upstreamCalls(calls)).toHaveLength(1);
    const metrics = (await raw(served.base, { path: '/metrics' })).text;
    expect(metrics).toMatch(/capframe_http_refused_total\{reason="origin"\} [1-9]/);
    expect(metrics).toMatch(/capframe_http_refused_total\{reason="host"\} [1-9]/);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('allowed_origins and allowed_hosts in the policy, and --allowed-origin / --allowed-host, widen it deliberately', async () => {
    const { policy, calls } = setup('  allowed_origins: ["https://Console.Example.com/"]\n  allowed_hosts: [mcp.example.com]\n');
    const served = await startServe(policy, { args: ['--allowed-origin', 'https://app.example.org', '--allowed-host', 'proxy.internal'] });
    const port = new URL(served.base).port;
    const allowed: Record<string, string>[] = [
      { origin: 'https://console.example.com', host: `mcp.example.com:${port}` },
      { origin: 'https://app.example.org', host: `proxy.internal:${port}` },
    ];
    for (const headers of allowed) {
      const init = await raw(served.base, { key: KEY, headers, body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'browser', version: '1' } } } });
      expect(init.status, init.text).toBe(200);
      const session = init.headers['mcp-session-id'] as string;
      expect((await raw(served.base, { key: KEY, session, headers, body: { jsonrpc: '2.0', method: 'notifications/initialized' } })).status).toBe(202);
      const call = await raw(served.base, { key: KEY, session, headers, body: CALL });
      expect(call.status, call.text).toBe(200);
      expect((await raw(served.base, { path: '/healthz', headers })).status).toBe(200);
    }
    expect(upstreamCalls(calls)).toHaveLength(2);
    const foreign: Record<string, string>[] = [{ origin: 'https://evil.example' }, { host: 'evil.example' }, { origin: 'https://console.example.com.evil.example' }];
    for (const headers of foreign) {
      expect((await raw(served.base, { path: '/healthz', headers })).status, JSON.stringify(headers)).toBe(403);
    }
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('beyond loopback (--host 0.0.0.0): Host is not checked, a present Origin must be listed, and serve warns at start', async () => {
    const { policy } = setup();
    const served = await startServe(policy, { args: ['--host', '0.0.0.0'] });
    const base = `http://127.0.0.1:${new URL(served.base).port}`;
    const warning = await served.waitForLog((l) => l.level === 'warn' && l.msg.startsWith('listening beyond loopback'), 'the beyond-loopback warning');
    expect(warning).toMatchObject({ host_header: expect.stringContaining('not checked'), origin_header: expect.stringContaining('refused') });
    expect((await raw(base, { path: '/healthz', headers: { host: 'mcp.example.com' } })).status).toBe(200);
    expect((await raw(base, { path: '/healthz', headers: { origin: 'http://localhost:3000' } })).status).toBe(403);
    expect((await raw(base, { path: '/healthz', headers: { origin: 'https://evil.example' } })).status).toBe(403);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('a malformed --allowed-origin or policy entry is refused at start, naming it', async () => {
    const { policy } = setup();
    await expect(startServe(policy, { args: ['--allowed-origin', '*'] })).rejects.toThrow(/--allowed-origin: expected an origin such as "https:\/\/console.example.com".*got "\*"/);
    await expect(startServe(policy, { args: ['--allowed-host', 'https://mcp.example.com/'] })).rejects.toThrow(/--allowed-host: expected a host name/);
    const bad = setup('  allowed_origins: ["https://console.example.com/path"]\n');
    await expect(startServe(bad.policy)).rejects.toThrow(/policy\.yaml:\d+:\d+: .*expected an origin/);
  });
});
