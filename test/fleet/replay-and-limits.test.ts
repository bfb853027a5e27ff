/**
 * Issue 11, acceptance 2 and 3: what a fleet shares besides revocations. A holder proof
 * accepted by one verifier is a replay on every other one on the same Redis (two
 * capframeGuard-ed servers, separate processes); a rate limit of N calls per minute
 * holds across two `capframe serve` instances together, and in the embedded store for
 * one instance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createProof, createVerifier, generateKeyPair, mint, openRedisStore } from '../../src/index.js';
import { PROOF_META_KEY, TOKEN_META_KEY } from '../../src/mcp/meta.js';
import { killAllServed, poll } from '../proxy/faults-helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from '../store/redis-server.js';
import { createFleet, outcome, startGuard } from './fleet-helpers.js';

const LIMIT = 5;

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  killAllServed();
  await stopAllRedis();
});

describe('acceptance 2: a holder proof is accepted once across the fleet', () => {
  it('a proof accepted by one guarded server is `replay` on another process sharing the Redis; the tool runs once', async () => {
    const fleet = createFleet(redis.url);
    const [one, two] = await Promise.all([startGuard(fleet, redis.url), startGuard(fleet, redis.url)]);
    try {
      const holder = generateKeyPair();
      const t = mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300, holderKey: holder.publicKey });
      const meta = (sql: string) => ({ [TOKEN_META_KEY]: t.token, [PROOF_META_KEY]: createProof({ token: t.token, tool: 'database.query', args: { sql }, key: holder.secretKey }).proof });
      // Both guards load the revocations first; until then they deny everything.
      for (const g of [one, two]) await poll(async () => (outcome(await g.call(meta('SELECT 0'), 'SELECT 0')) === 'ok' ? true : undefined), 'a guard to load', 15_000);
      const ranBefore = one.calls() + two.calls();
      const proof = meta('SELECT 1');
      expect(outcome(await one.call(proof, 'SELECT 1'))).toBe('ok');
      expect(outcome(await two.call(proof, 'SELECT 1'))).toBe('replay');
      expect(outcome(await one.call(proof, 'SELECT 1'))).toBe('replay');
      expect(one.calls() + two.calls() - ranBefore).toBe(1);
    } finally {
      await one.close();
      await two.close();
    }
  }, 60_000);

  it('two verifiers (two instances) with the Redis nonce store: the second sees `replay`', async () => {
    const [a, b] = await Promise.all([openRedisStore({ url: redis.url, prefix: 'replay:', longLived: true }), openRedisStore({ url: redis.url, prefix: 'replay:', longLived: true })]);
    const issuer = generateKeyPair();
    const holder = generateKeyPair();
    const va = createVerifier({ keys: [issuer.publicKey], nonceStore: a.nonces });
    const vb = createVerifier({ keys: [issuer.publicKey], nonceStore: b.nonces });
    const t = mint({ key: issuer.secretKey, tool: 'payments.refund', ttl: 60, holderKey: holder.publicKey });
    const call = { tool: 'payments.refund', args: { amount: 5 }, proof: createProof({ token: t.token, tool: 'payments.refund', args: { amount: 5 }, key: holder.secretKey }).proof };
    expect((await va.verifyAsync(t.token, call)).code).toBe('ok');
    expect((await vb.verifyAsync(t.token, call)).code).toBe('replay');
    // The in-memory default would not have caught it: each verifier alone accepts it once.
    const alone = createVerifier({ keys: [issuer.publicKey] });
    expect((await alone.verifyAsync(t.token, call)).code).toBe('ok');
    await a.close();
    await b.close();
  });
});

describe('acceptance 3: rate limits', () => {
  const rules = [{ tool: 'database.query', ttl: 300, rate_limit: { calls: LIMIT, per: 60 } }];

  it(`N = ${LIMIT} calls per minute across two instances together: N allowed, the next rate_limited on either; the upstream saw N`, async () => {
    const fleet = createFleet(redis.url, { rules, extra: { redis: { prefix: 'limits:' } } });
    const [a, b] = await Promise.all([fleet.serve('a'), fleet.serve('b')]);
    const token = mint({ key: fleet.issuer.secretKey, tool: 'database.query', agent: 'bot', ttl: 300 }).token;
    const before = fleet.upstreamCalls();
    const outcomes: string[] = [];
    for (let i = 0; i < LIMIT; i++) outcomes.push(outcome(await (i % 2 === 0 ? a : b).query(token)));
    expect(outcomes).toEqual(Array(LIMIT).fill('ok'));
    expect(outcome(await b.query(token))).toBe('rate_limited');
    expect(outcome(await a.query(token))).toBe('rate_limited');
    expect(fleet.upstreamCalls() - before).toBe(LIMIT);
    // Another agent has a window of its own.
    expect(outcome(await a.query(mint({ key: fleet.issuer.secretKey, tool: 'database.query', agent: 'other', ttl: 300 }).token))).toBe('ok');
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it(`the embedded store, one instance: N = ${LIMIT} allowed, the next rate_limited`, async () => {
    const fleet = createFleet(redis.url, { rules });
    const solo = await fleet.serve('solo', { body: { store: undefined } });
    expect(solo.logs().find((l) => l.msg === 'store opened')).toMatchObject({ store: 'file' });
    const token = mint({ key: fleet.issuer.secretKey, tool: 'database.query', agent: 'bot', ttl: 300 }).token;
    const before = fleet.upstreamCalls();
    for (let i = 0; i < LIMIT; i++) expect(outcome(await solo.query(token))).toBe('ok');
    expect(outcome(await solo.query(token))).toBe('rate_limited');
    expect(fleet.upstreamCalls() - before).toBe(LIMIT);
    await solo.stop();
  }, 60_000);
});
