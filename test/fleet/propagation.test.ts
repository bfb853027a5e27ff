/**
 * Issue 11, acceptance 1 and 5: revocation across a fleet on one Redis. Two `capframe
 * serve` instances and a capframeGuard-ed tool server share nothing but Redis and the
 * issuer key; 200 revocations made through instance A (`POST /v1/revocations`) and
 * more with the CLI are each in force on instance B and on the guard; a third instance
 * started later loads them all before its first call; an expired token's revocation
 * leaves Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mint } from '../../src/index.js';
import { killAllServed, poll } from '../proxy/faults-helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from '../store/redis-server.js';
import { cliWith, createFleet, outcome, percentile, startGuard, type Fleet, type Guard, type Instance } from './fleet-helpers.js';

const REVOCATIONS = 200;

let redis: RedisServer;
let fleet: Fleet;
let a: Instance;
let b: Instance;
let guard: Guard;

beforeAll(async () => {
  redis = await startRedis();
  fleet = createFleet(redis.url);
  [a, b] = await Promise.all([fleet.serve('a'), fleet.serve('b')]);
  guard = await startGuard(fleet, redis.url);
  const probe = mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300 }).token;
  // The guard loads the revocations in the background; it denies until it has them.
  await poll(async () => (outcome(await guard.query(probe)) === 'ok' ? true : undefined), 'the guard to load the revocations', 15_000);
}, 60_000);

afterAll(async () => {
  await guard?.close();
  killAllServed();
  await stopAllRedis();
});

describe('acceptance 1: a revocation made through one instance holds on every instance and on guarded servers', () => {
  it(`${REVOCATIONS} revocations through POST /v1/revocations on A are each denied on B and by the guard; p99 under a second`, async () => {
    const tokens = Array.from({ length: REVOCATIONS }, () => mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300 }));
    const onB: number[] = [];
    const onGuard: number[] = [];
    let okOnB = 0;
    let okOnGuard = 0;
    const upstreamBefore = fleet.upstreamCalls();
    const guardBefore = guard.calls();
    for (const t of tokens) {
      expect(outcome(await b.query(t.token))).toBe('ok');
      okOnB++;
      const started = performance.now();
      const res = await a.revoke(t.id);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ revoked: t.id, new: true });
      const seen = async (check: () => Promise<string>, ok: () => void) => {
        for (;;) {
          const code = await check();
          if (code === 'revoked') return performance.now() - started;
          expect(code).toBe('ok'); // nothing else may happen while the revocation travels
          ok();
          if (performance.now() - started > 10_000) throw new Error(`${t.id} still allowed 10 s after its revocation`);
        }
      };
      const [b1, g1] = await Promise.all([
        seen(async () => outcome(await b.query(t.token)), () => okOnB++),
        seen(async () => outcome(await guard.query(t.token)), () => okOnGuard++),
      ]);
      onB.push(b1);
      onGuard.push(g1);
    }
    // Every revoked token stays denied everywhere, and no denied call reached a tool.
    for (const t of tokens) {
      expect(outcome(await b.query(t.token))).toBe('revoked');
      expect(outcome(await a.query(t.token))).toBe('revoked');
      expect(outcome(await guard.query(t.token))).toBe('revoked');
    }
    expect(fleet.upstreamCalls() - upstreamBefore).toBe(okOnB);
    expect(guard.calls() - guardBefore).toBe(okOnGuard);
    const report = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p99 ${percentile(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
    console.log(`revocation A → B over ${REVOCATIONS}: ${report(onB)}; A → guard: ${report(onGuard)}`);
    expect(percentile(onB, 99)).toBeLessThan(1000);
    expect(percentile(onGuard, 99)).toBeLessThan(1000);
  }, 180_000);

  it('`capframe mint` and `capframe revoke` work against Redis: the ledger finds the id from another instance\'s policy, B and the guard deny it', async () => {
    const minted = await cliWith(fleet.env, ['mint', '--policy', a.policyFile, '--tool', 'database.query', '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const { token, id } = JSON.parse(minted.stdout) as { token: string; id: string };
    expect(outcome(await b.query(token))).toBe('ok');
    // verify by id on B's policy: the ledger is in Redis, not in A's state directory.
    const ok = await cliWith(fleet.env, ['verify', '--policy', b.policyFile, '--token', id]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^OK .*${id}`));
    const revoked = await cliWith(fleet.env, ['revoke', '--policy', a.policyFile, '--token', id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`revoked ${id}`);
    await poll(async () => (outcome(await b.query(token)) === 'revoked' ? true : undefined), 'B to deny the CLI revocation', 5000);
    await poll(async () => (outcome(await guard.query(token)) === 'revoked' ? true : undefined), 'the guard to deny the CLI revocation', 5000);
    const denied = await cliWith(fleet.env, ['verify', '--policy', b.policyFile, '--token', id]);
    expect(denied.code).toBe(2);
    expect(denied.stdout).toMatch(/^DENIED revoked: /);
    const doctor = await cliWith(fleet.env, ['doctor', '--policy', b.policyFile, '--json']);
    expect(doctor.code, doctor.stderr).toBe(0);
    expect(JSON.parse(doctor.stdout)).toMatchObject({ store: 'redis', store_location: redis.url, store_from: 'policy', store_reachable: true, revoked_tokens: REVOCATIONS + 1 });
  }, 60_000);
});

describe('acceptance 5: a late instance and expired revocations', () => {
  it('a third instance loads every existing revocation before its first call', async () => {
    const revoked = mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300 });
    expect((await a.revoke(revoked.id)).status).toBe(200);
    const c = await fleet.serve('c');
    // Its very first call: already denied.
    expect(outcome(await c.query(revoked.token))).toBe('revoked');
    const loaded = c.logs().find((l) => l.msg === 'revocation feed current');
    expect(loaded?.revoked).toBeGreaterThanOrEqual(REVOCATIONS + 2);
    const order = c.logs().map((l) => l.msg);
    expect(order.indexOf('revocation feed current')).toBeLessThan(order.indexOf('listening'));
    expect(outcome(await c.query(mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300 }).token))).toBe('ok');
    await c.stop();
  }, 60_000);

  it('a revocation whose token has expired is gone from Redis after its expiry (plus the 1 s grace of this policy)', async () => {
    const minted = await cliWith(fleet.env, ['mint', '--policy', a.policyFile, '--tool', 'database.query', '--ttl', '2', '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const { id } = JSON.parse(minted.stdout) as { id: string };
    expect((await a.revoke(id)).status).toBe(200);
    const direct = redis.client();
    try {
      const score = Number(await direct.zscore('fleet:revoked', id));
      expect(score).toBeGreaterThan(Date.now());
      expect(score).toBeLessThanOrEqual(Date.now() + 3000 + 1000);
      // The instances trim every 10 s: gone within the expiry plus one trim round.
      await poll(async () => ((await direct.zscore('fleet:revoked', id)) === null ? true : undefined), 'the expired revocation to leave Redis', 30_000, 250);
    } finally {
      direct.disconnect();
    }
  }, 60_000);
});
