/**
 * Issue 11, acceptance 4: Redis goes away mid-run. An instance under the default
 * `on_store_failure: deny` denies every call `internal_error`; one under `use_cached`
 * keeps serving from its last revocation set; both say so in /healthz (503 degraded)
 * and /metrics, refuse to report revocations they could not store (`capframe revoke`
 * exits 1, POST /v1/revocations answers 503), and recover by themselves when Redis is
 * back. An instance cut off from Redis while the others are not applies, once it is
 * back, a revocation made meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mint } from '../../src/index.js';
import { killAllServed, poll, sample } from '../proxy/faults-helpers.js';
import { startRedis, startRelay, stopAllRedis, type Relay, type RedisServer } from '../store/redis-server.js';
import { cliWith, createFleet, outcome, type Fleet, type Instance } from './fleet-helpers.js';

let redis: RedisServer;
let relay: Relay;
let fleet: Fleet;
let denying: Instance;
let cached: Instance;
let cutOff: Instance;
const token = () => mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300 });

beforeAll(async () => {
  // Persistent, like a production Redis: what was stored survives the restart.
  redis = await startRedis({ persistent: true });
  relay = await startRelay(redis);
  fleet = createFleet(redis.url);
  [denying, cached, cutOff] = await Promise.all([
    fleet.serve('denying'),
    fleet.serve('cached', { body: { on_store_failure: 'use_cached' } }),
    fleet.serve('cutoff', { body: { store: relay.url } }),
  ]);
}, 60_000);

afterAll(async () => {
  killAllServed();
  await relay?.close();
  await stopAllRedis();
});

/** While Redis is stopped: what each instance answers, reports and refuses. */
async function expectOutageHandled(revokedBefore: { token: string }, fresh: { token: string }): Promise<void> {
  // Until an instance has seen the connection close, it serves with the set it has (no
  // revocation can be made meanwhile): wait for the denial, then count from there.
  const down = await poll(async () => {
    const r = await denying.query(fresh.token);
    return outcome(r) === 'internal_error' ? r : undefined;
  }, 'the deny instance to fail closed', 15_000);
  expect(down.content?.[0]).toMatchObject({ text: expect.stringMatching(/^DENIED internal_error: the revocation store redis:\/\/127\.0\.0\.1:\d+ is unreachable .*\(on_store_failure: deny\)$/) });
  const upstreamBefore = fleet.upstreamCalls();
  expect(outcome(await denying.query(fresh.token))).toBe('internal_error');
  expect(fleet.upstreamCalls()).toBe(upstreamBefore);
  // use_cached: still serving, and still denying what it knew was revoked.
  await poll(async () => ((await cached.health()).status === 503 ? true : undefined), 'the cached instance to report the outage', 15_000);
  expect(outcome(await cached.query(fresh.token))).toBe('ok');
  expect(outcome(await cached.query(revokedBefore.token))).toBe('revoked');
  expect(fleet.upstreamCalls()).toBe(upstreamBefore + 1);

  const dHealth = await denying.health();
  expect(dHealth).toMatchObject({ status: 503, body: { status: 'degraded', store: { kind: 'redis', up: false, serving: 'denying' } } });
  expect(await cached.health()).toMatchObject({ status: 503, body: { status: 'degraded', store: { kind: 'redis', up: false, serving: 'cached' } } });
  // /healthz is unauthenticated: it does not say where Redis is.
  expect(JSON.stringify(dHealth.body)).not.toContain(String(redis.port));
  expect(sample(await denying.metrics(), 'capframe_store_up{kind="redis"}')).toBe(0);

  // Revocations that cannot be stored are never reported as done.
  const victim = token();
  const cli = await cliWith(fleet.env, ['revoke', '--policy', denying.policyFile, '--token', victim.id]);
  expect(cli.code).toBe(1);
  expect(cli.stderr).toMatch(new RegExp(`^capframe: cannot reach the Redis store at redis://127\\.0\\.0\\.1:${redis.port}: `));
  expect(cli.stdout).toBe('');
  const posted = await cached.revoke(victim.id);
  expect(posted.status).toBe(503);
  expect(await posted.json()).toEqual({ error: expect.stringMatching(new RegExp(`^${victim.id} is revoked in this instance only: the store could not record it`)) });
  // ... but the instance that was asked does deny it from now on (fail closed).
  expect(outcome(await cached.query(victim.token))).toBe('revoked');
}

describe('acceptance 4: Redis stopped mid-run', () => {
  it('deny: internal_error; use_cached: served from the last set; both 503 degraded; no false revocation success; both recover without a restart', async () => {
    const revokedBefore = token();
    expect((await denying.revoke(revokedBefore.id)).status).toBe(200);
    const fresh = token();
    for (const i of [denying, cached]) {
      await poll(async () => (outcome(await i.query(revokedBefore.token)) === 'revoked' ? true : undefined), `${i.name} to apply the revocation`, 5000);
      expect(outcome(await i.query(fresh.token))).toBe('ok');
      expect(await i.health()).toMatchObject({ status: 200, body: { status: 'ok', store: { kind: 'redis', up: true } } });
    }
    await redis.stop();
    try {
      await expectOutageHandled(revokedBefore, fresh);
    } finally {
      // Whatever failed above, the next test needs Redis back.
      await redis.start();
    }
    for (const i of [denying, cached]) {
      await poll(async () => ((await i.health()).status === 200 ? true : undefined), `${i.name} to recover`, 30_000);
    }
    expect(outcome(await denying.query(fresh.token))).toBe('ok');
    expect(outcome(await denying.query(revokedBefore.token))).toBe('revoked');
    const metrics = await denying.metrics();
    expect(sample(metrics, 'capframe_store_up{kind="redis"}')).toBe(1);
    expect(sample(metrics, 'capframe_store_reconnects_total{kind="redis"}')).toBeGreaterThanOrEqual(1);
    // Revocations are recorded again.
    expect((await cliWith(fleet.env, ['revoke', '--policy', denying.policyFile, '--token', token().id])).code).toBe(0);
  }, 120_000);

  it('an instance cut off from Redis denies meanwhile, and once back applies a revocation made while it was away', async () => {
    const during = token();
    await poll(async () => (outcome(await cutOff.query(during.token)) === 'ok' ? true : undefined), 'the cut-off instance to be current', 30_000);
    relay.cut();
    await poll(async () => (outcome(await cutOff.query(during.token)) === 'internal_error' ? true : undefined), 'the cut-off instance to fail closed', 15_000);
    // Revoked through another instance while this one cannot hear it.
    expect((await denying.revoke(during.id)).status).toBe(200);
    expect(outcome(await denying.query(during.token))).toBe('revoked');
    relay.restore();
    const after = await poll(async () => {
      const code = outcome(await cutOff.query(during.token));
      return code === 'internal_error' ? undefined : code;
    }, 'the cut-off instance to reconnect', 30_000);
    expect(after).toBe('revoked');
    expect(outcome(await cutOff.query(token().token))).toBe('ok');
  }, 90_000);
});
