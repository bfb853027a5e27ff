/**
 * Pre-authentication cost is bounded (SPEC §6, issue 8 item 2): sessions in total, per
 * agent and anonymous ones are capped, a session that never gets past initialize expires
 * quickly, an idle one later, and an agent removed from the policy loses its sessions.
 * The SessionTable on its own with a fake clock, then each bound against a real serve.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { SessionTable, type SessionLimits } from '../../src/proxy/sessions.js';
import { openSession, raw } from '../http/raw.js';
import { tempDir } from '../helpers.js';
import { killAllServed, metricsText, poll, replaceFile, sample, startServe, type Served } from './faults-helpers.js';

afterAll(() => killAllServed());

const LIMITS: SessionLimits = { total: 5, perAgent: 2, anonymous: 2, handshakeMs: 1000, idleMs: 10_000 };

class FakeTransport {
  closed = 0;
  close(): void {
    this.closed += 1;
  }
}

describe('SessionTable', () => {
  const table = (limits: Partial<SessionLimits> = {}) => {
    const clock = { now: 0 };
    return { clock, sessions: new SessionTable<FakeTransport>({ ...LIMITS, ...limits }, () => clock.now) };
  };
  const open = (t: SessionTable<FakeTransport>, id: string, owner: string | undefined) => {
    const r = t.reserve(owner);
    if ('limit' in r) throw new Error(r.message);
    const value = new FakeTransport();
    r.open(id, value);
    return value;
  };

  it('finds a session only for its owner; anyone else sees nothing', () => {
    const { sessions } = table();
    open(sessions, 'a1', 'alice');
    open(sessions, 'n1', undefined);
    expect(sessions.use('a1', 'alice')?.owner).toBe('alice');
    expect(sessions.use('a1', 'bob')).toBeUndefined();
    expect(sessions.use('a1', undefined)).toBeUndefined();
    expect(sessions.use('n1', undefined)?.owner).toBeUndefined();
    expect(sessions.use('n1', 'alice')).toBeUndefined();
    expect(sessions.use('nope', 'alice')).toBeUndefined();
  });

  it('caps sessions per agent (429), anonymous ones and the total (503), counting reservations', () => {
    const { sessions } = table();
    open(sessions, 'a1', 'alice');
    const held = sessions.reserve('alice');
    expect('limit' in held).toBe(false);
    expect(sessions.reserve('alice')).toMatchObject({ limit: 'per_agent', status: 429, message: expect.stringContaining('agent "alice" has too many open sessions (2') });
    // A reservation given back frees its place; releasing twice changes nothing.
    (held as { release(): void }).release();
    (held as { release(): void }).release();
    open(sessions, 'a2', 'alice');
    open(sessions, 'n1', undefined);
    open(sessions, 'n2', undefined);
    expect(sessions.reserve(undefined)).toMatchObject({ limit: 'anonymous', status: 503, message: expect.stringContaining('anonymous sessions (2') });
    open(sessions, 'b1', 'bob');
    expect(sessions.size).toBe(5);
    expect(sessions.reserve('carol')).toMatchObject({ limit: 'total', status: 503, message: expect.stringContaining('too many open sessions (5') });
    sessions.remove('b1');
    sessions.remove('b1');
    expect('limit' in sessions.reserve('carol')).toBe(false);
  });

  it('an opened reservation is not given back by release()', () => {
    const { sessions } = table({ perAgent: 1 });
    const r = sessions.reserve('alice');
    if ('limit' in r) throw new Error(r.message);
    r.open('a1', new FakeTransport());
    r.release();
    expect(sessions.reserve('alice')).toMatchObject({ limit: 'per_agent' });
    expect(() => r.open('a2', new FakeTransport())).toThrow(/already opened/);
  });

  it('sweeps half-open sessions after the handshake time, idle ones after the idle time, and owners no longer valid', () => {
    const { sessions, clock } = table({ total: 10, perAgent: 10, anonymous: 10 });
    const halfOpen = open(sessions, 'h', 'alice');
    const busy = open(sessions, 'e', 'alice');
    const bobs = open(sessions, 'b', 'bob');
    clock.now = 500;
    sessions.use('e', 'alice');
    sessions.use('b', 'bob');
    clock.now = 999;
    expect(sessions.sweep(() => true)).toBe(0);
    clock.now = 1000;
    expect(sessions.sweep(() => true)).toBe(1);
    expect(sessions.use('h', 'alice')).toBeUndefined();
    // Established: the idle time applies (and each use resets it).
    expect(sessions.use('e', 'alice')).toBeDefined();
    expect(sessions.use('b', 'bob')).toBeDefined();
    clock.now = 1000 + 9_999;
    expect(sessions.sweep(() => true)).toBe(0);
    // Bob leaves the policy.
    expect(sessions.sweep((owner) => owner !== 'bob')).toBe(1);
    clock.now = 1000 + 10_000;
    expect(sessions.sweep(() => true)).toBe(1);
    expect(sessions.size).toBe(0);
    return Promise.resolve().then(() => {
      expect([halfOpen.closed, busy.closed, bobs.closed]).toEqual([1, 1, 1]);
    });
  });
});

const KEYS = { alice: 'cfk_sessions-alice', bob: 'cfk_sessions-bob' };
const sha = (key: string) => createHash('sha256').update(key).digest('hex');
const agentsPolicy = (names: (keyof typeof KEYS)[]) =>
  `capframe:\n  version: "0.2"\n  default_policy: deny\n  agents:\n${names.map((n) => `    ${n}: { key_sha256: "${sha(KEYS[n])}" }\n`).join('')}  rules: []\n`;

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  killAllServed();
});

async function sdk(url: string, key?: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), key === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${key}` } } });
  const client = new Client({ name: 'sessions-test', version: '1' });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

/** An initialize by hand, answered with the status and the JSON-RPC error message if any. */
async function tryOpen(served: Served, key?: string): Promise<{ status: number; message?: string; retryAfter?: string }> {
  const r = await raw(served.base, {
    ...(key !== undefined && { key }),
    body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } },
  });
  const error = (r.messages[0] as { error?: { message: string } } | undefined)?.error;
  return { status: r.status, ...(error !== undefined && { message: error.message }), ...(typeof r.headers['retry-after'] === 'string' && { retryAfter: r.headers['retry-after'] }) };
}

const openGauge = async (served: Served) => sample(await metricsText(served.base), 'capframe_sessions_open');

describe('session bounds in a running serve', () => {
  it('refuses a session beyond --max-sessions with 503 and admits one again after a session ends', async () => {
    const dir = tempDir('capframe-sessions-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'capframe:\n  version: "0.2"\n  default_policy: deny\n  rules: []\n');
    const served = await startServe(policy, { args: ['--max-sessions', '2'] });
    const first = await sdk(served.url);
    await sdk(served.url);
    await expect(sdk(served.url)).rejects.toThrow(/503|too many open sessions/);
    expect(await tryOpen(served)).toEqual({ status: 503, message: 'too many open sessions (2, --max-sessions); try again later', retryAfter: '30' });
    await first.transport.terminateSession();
    const again = await sdk(served.url);
    expect((await again.client.listTools()).tools.map((t) => t.name)).toEqual(['capframe.request_token']);
    expect(sample(await metricsText(served.base), 'capframe_http_refused_total{reason="session_limit_total"}')).toBe(2);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('caps sessions per agent (429 naming the agent) without touching other agents, and the total across agents', async () => {
    const dir = tempDir('capframe-sessions-agent-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, agentsPolicy(['alice', 'bob']));
    const served = await startServe(policy, { args: ['--max-sessions-per-agent', '2', '--max-sessions', '3'] });
    const a1 = await sdk(served.url, KEYS.alice);
    await sdk(served.url, KEYS.alice);
    const refused = await tryOpen(served, KEYS.alice);
    expect(refused).toEqual({
      status: 429,
      message: 'agent "alice" has too many open sessions (2, --max-sessions-per-agent); close one (DELETE with its Mcp-Session-Id) or wait for idle ones to expire',
      retryAfter: '30',
    });
    await expect(sdk(served.url, KEYS.alice)).rejects.toThrow(/429|too many open sessions/);
    // Bob has his own budget, but the server as a whole holds 3.
    await sdk(served.url, KEYS.bob);
    expect(await tryOpen(served, KEYS.bob)).toMatchObject({ status: 503, message: expect.stringContaining('too many open sessions (3, --max-sessions)') });
    // Alice ends one of hers; she may open one again.
    await a1.transport.terminateSession();
    await sdk(served.url, KEYS.alice);
    expect(await openGauge(served)).toBe(3);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('caps anonymous sessions (no agents in the policy) with 503 naming the limit', async () => {
    const dir = tempDir('capframe-sessions-anon-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'capframe:\n  version: "0.2"\n  default_policy: deny\n  rules: []\n');
    const served = await startServe(policy, { args: ['--max-anonymous-sessions', '2'] });
    await sdk(served.url);
    await sdk(served.url);
    expect(await tryOpen(served)).toMatchObject({ status: 503, message: expect.stringMatching(/^too many open anonymous sessions \(2, --max-anonymous-sessions\)/) });
    expect(sample(await metricsText(served.base), 'capframe_http_refused_total{reason="session_limit_anonymous"}')).toBe(1);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('a session that never gets past initialize expires after --session-handshake-timeout; an established one stays', async () => {
    const dir = tempDir('capframe-sessions-handshake-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, agentsPolicy(['alice']));
    const served = await startServe(policy, { args: ['--max-sessions-per-agent', '2', '--session-handshake-timeout', '1'] });
    const established = await sdk(served.url, KEYS.alice); // sends notifications/initialized
    const halfOpen = await openSession(served.base, KEYS.alice, { handshakeOnly: true });
    expect((await tryOpen(served, KEYS.alice)).status).toBe(429);
    // Without touching the half-open session (any request would establish it): the gauge.
    await poll(async () => ((await openGauge(served)) === 1 ? true : undefined), 'the half-open session to expire', 15_000, 100);
    const after = await raw(served.base, { key: KEYS.alice, session: halfOpen, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
    expect(after.status).toBe(404);
    // The established one still works, and its place is still taken: one more fits, not two.
    expect((await established.client.listTools()).tools.map((t) => t.name)).toEqual(['capframe.request_token']);
    expect((await tryOpen(served, KEYS.alice)).status).toBe(200);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('an established session idle past --session-idle-timeout is closed', async () => {
    const dir = tempDir('capframe-sessions-idle-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, agentsPolicy(['alice']));
    const served = await startServe(policy, { args: ['--session-idle-timeout', '1'] });
    const session = await openSession(served.base, KEYS.alice);
    expect(await openGauge(served)).toBe(1);
    await poll(async () => ((await openGauge(served)) === 0 ? true : undefined), 'the idle session to be closed', 15_000, 100);
    expect((await raw(served.base, { key: KEYS.alice, session, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } })).status).toBe(404);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });

  it('an agent removed from the policy loses its sessions at once (401) and they are closed; others keep theirs', async () => {
    const dir = tempDir('capframe-sessions-removed-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, agentsPolicy(['alice', 'bob']));
    // A short handshake timeout makes the sweep that closes her sessions run every half second.
    const served = await startServe(policy, { args: ['--session-handshake-timeout', '1'] });
    const alice = await openSession(served.base, KEYS.alice);
    const bob = await openSession(served.base, KEYS.bob);
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect((await raw(served.base, { key: KEYS.alice, session: alice, body: list })).status).toBe(200);

    replaceFile(policy, agentsPolicy(['bob']));
    await served.waitForLog((l) => l.msg === 'policy reloaded', 'the policy reload', 10_000);
    const refused = await raw(served.base, { key: KEYS.alice, session: alice, body: list });
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('agent_unknown');
    await poll(async () => ((await openGauge(served)) === 1 ? true : undefined), 'alice\'s session to be closed', 15_000, 100);
    expect((await raw(served.base, { key: KEYS.bob, session: bob, body: list })).status).toBe(200);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });
});
