/**
 * The Redis store against a real redis-server: how long revocations are kept, the
 * resync after a lost connection, the subscribe-then-load order, fail closed and
 * use_cached while Redis is down, credentials that never reach a log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateKeyPair, mint } from '../../src/index.js';
import { openRedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import type { StoreLog } from '../../src/store/types.js';
import { tokenId } from '../../src/token/claims.js';
import { startRedis, startRelay, stopAllRedis, type RedisServer } from './redis-server.js';

let redis: RedisServer;
let n = 0;
const prefix = () => `rs${++n}:`;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => stopAllRedis());

const random = () => crypto.getRandomValues(new Uint8Array(16));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const key = generateKeyPair();

function capture(): StoreLog & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push(JSON.stringify({ level, msg, ...fields }));
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

async function until<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function open(options: Partial<RedisStoreOptions> = {}) {
  return openRedisStore({ url: redis.url, prefix: prefix(), longLived: true, ...options });
}

describe('how long a revocation is kept', () => {
  it('a known token: until its recorded expiry plus grace, then trimmed from Redis', async () => {
    const store = await open({ graceSeconds: 0.5, trimEveryMs: 100 });
    const direct = redis.client();
    try {
      const t = mint({ key: key.secretKey, tool: 'database.query', ttl: 1 });
      await store.record(t);
      await store.revoke(Buffer.from(t.id.slice(4), 'base64url'));
      const score = Number(await direct.zscore(`${store.prefix}revoked`, t.id));
      expect(score).toBe(t.claims.exp * 1000 + 500);
      // The ledger entry expires with it.
      const ledgerTtl = await direct.pttl(`${store.prefix}token:${t.id}`);
      expect(ledgerTtl).toBeGreaterThan(0);
      expect(ledgerTtl).toBeLessThanOrEqual(1500);
      await until(async () => (await direct.zscore(`${store.prefix}revoked`, t.id)) === null, 'the expired revocation to be trimmed');
      expect((await store.revokedIds()).map(hex)).not.toContain(hex(Buffer.from(t.id.slice(4), 'base64url')));
    } finally {
      direct.disconnect();
      await store.close();
    }
  });

  it('an unknown id: for the longest lifetime the policy grants, plus grace; a longer claimed expiry extends it, a shorter one does not shorten it', async () => {
    const store = await open({ maxTtlSeconds: 300, graceSeconds: 60 });
    const direct = redis.client();
    try {
      const unknown = random();
      const before = Date.now();
      await store.revoke(unknown);
      const score = Number(await direct.zscore(`${store.prefix}revoked`, tokenId(unknown)));
      expect(score).toBeGreaterThanOrEqual(before + 360_000);
      expect(score).toBeLessThanOrEqual(Date.now() + 360_000);

      const longLived = random();
      const exp = Math.floor(Date.now() / 1000) + 86_400;
      await store.revoke(longLived, { exp });
      expect(Number(await direct.zscore(`${store.prefix}revoked`, tokenId(longLived)))).toBe(exp * 1000 + 60_000);

      // A known token whose (unverified) claimed expiry is earlier than the ledger's keeps the ledger's.
      const t = mint({ key: key.secretKey, tool: 'database.query', ttl: 120 });
      await store.record(t);
      await store.revoke(Buffer.from(t.id.slice(4), 'base64url'), { exp: t.claims.exp - 100 });
      expect(Number(await direct.zscore(`${store.prefix}revoked`, t.id))).toBe(t.claims.exp * 1000 + 60_000);
      // Revoking again never shortens what is kept.
      await store.revoke(longLived, { exp: exp - 1000 });
      expect(Number(await direct.zscore(`${store.prefix}revoked`, tokenId(longLived)))).toBe(exp * 1000 + 60_000);
    } finally {
      direct.disconnect();
      await store.close();
    }
  });

  it('key prefixes keep deployments apart on one Redis', async () => {
    const a = await open();
    const b = await open();
    try {
      await a.revoke(random());
      expect(await b.revokedIds()).toEqual([]);
      expect(await a.revokedIds()).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('the revocation feed', () => {
  it('after a lost connection it resyncs: a revocation published while it was cut off is applied once it is back', async () => {
    const relay = await startRelay(redis);
    const p = prefix();
    const writer = await openRedisStore({ url: redis.url, prefix: p });
    const follower = await openRedisStore({ url: relay.url, prefix: p, longLived: true });
    try {
      const seen = new Set<string>();
      const states: string[] = [];
      await follower.followRevocations({
        onRevoked: (flat) => {
          for (let i = 0; i < flat.length; i += 16) seen.add(hex(flat.subarray(i, i + 16)));
        },
        onState: (current, reason) => states.push(current ? 'current' : `down: ${reason}`),
      }).ready;
      relay.cut();
      await until(() => follower.health().up === false, 'the follower to notice the cut');
      expect(states.at(-1)).toMatch(/^down: /);
      const missed = random();
      await writer.revoke(missed);
      await new Promise((r) => setTimeout(r, 200));
      expect(seen.has(hex(missed))).toBe(false);
      relay.restore();
      await until(() => seen.has(hex(missed)) && follower.health().up, 'the missed revocation after the reconnect');
      expect(states.at(-1)).toBe('current');
      expect(follower.health().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await follower.close();
      await writer.close();
      await relay.close();
    }
  });

  it('a follower starting while revocations keep coming gets every one (it subscribes before it loads)', async () => {
    const p = prefix();
    const writer = await openRedisStore({ url: redis.url, prefix: p });
    const follower = await openRedisStore({ url: redis.url, prefix: p, longLived: true });
    try {
      const all: string[] = [];
      let follow: { ready: Promise<void> } | undefined;
      const seen = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const id = random();
        all.push(hex(id));
        await writer.revoke(id);
        if (i === 150) {
          follow = follower.followRevocations({
            onRevoked: (flat) => {
              for (let j = 0; j < flat.length; j += 16) seen.add(hex(flat.subarray(j, j + 16)));
            },
            onState: () => undefined,
          });
        }
      }
      await follow!.ready;
      await until(() => seen.size === all.length, `all ${all.length} revocations (have ${seen.size})`);
      expect([...seen].sort()).toEqual([...all].sort());
    } finally {
      await follower.close();
      await writer.close();
    }
  });

  it('a revocation set holding something that is not a tok_ id is refused (not current, saying why)', async () => {
    const store = await open();
    const direct = redis.client();
    try {
      await direct.zadd(`${store.prefix}revoked`, Date.now() + 60_000, 'not-a-token-id');
      const reasons: string[] = [];
      store.followRevocations({ onRevoked: () => undefined, onState: (current, reason) => reasons.push(current ? 'current' : reason ?? '') });
      await until(() => reasons.some((r) => r.includes('"not-a-token-id", which is not a tok_ id')), 'the refusal');
      expect(reasons).not.toContain('current');
      expect(store.health().up).toBe(false);
    } finally {
      direct.disconnect();
      await store.close();
    }
  });
});

describe('while Redis is down', () => {
  it('fails closed: every operation rejects store_unavailable; recovers without a restart', async () => {
    const own = await startRedis();
    const log = capture();
    const store = await openRedisStore({ url: own.url, longLived: true, log });
    try {
      await own.stop();
      await until(() => !store.health().up, 'the store to notice');
      await expect(store.revoke(random())).rejects.toMatchObject({ code: 'store_unavailable', message: expect.stringContaining(`the Redis store at redis://127.0.0.1:${own.port} is unreachable`) });
      await expect(Promise.resolve(store.nonces.claim('n', 1000))).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(Promise.resolve(store.limiter.take('k', { calls: 5, per: 60 }))).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(store.record(mint({ key: key.secretKey, tool: 'x.y', ttl: 60 }))).rejects.toMatchObject({ code: 'store_unavailable' });
      await own.start();
      await until(() => store.health().up, 'the store to reconnect', 20_000);
      expect(await store.revoke(random())).toBe(true);
      expect(store.health().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it('use_cached: nonces and rate limits fall back to this process (per instance), the ledger write is skipped; a revocation still fails', async () => {
    const own = await startRedis();
    const log = capture();
    const store = await openRedisStore({ url: own.url, longLived: true, onStoreFailure: 'use_cached', log });
    try {
      await own.stop();
      await until(() => !store.health().up, 'the store to notice');
      expect(await store.nonces.claim('n', 5000)).toBe(true);
      expect(await store.nonces.claim('n', 5000)).toBe(false);
      const limit = { calls: 2, per: 60 };
      expect([await store.limiter.take('k', limit), await store.limiter.take('k', limit), await store.limiter.take('k', limit)]).toEqual([true, true, false]);
      await store.record(mint({ key: key.secretKey, tool: 'x.y', ttl: 60 }));
      expect(log.lines.some((l) => l.includes('ledger entry not recorded'))).toBe(true);
      await expect(store.revoke(random())).rejects.toMatchObject({ code: 'store_unavailable' });
    } finally {
      await store.close();
    }
  });

  it('a short-lived store (the CLI) that cannot connect fails at once, naming the URL without its password', async () => {
    const own = await startRedis();
    const port = own.port;
    await own.stop();
    const started = Date.now();
    await expect(openRedisStore({ url: `redis://:hunter2@127.0.0.1:${port}` })).rejects.toThrow(new RegExp(`^cannot reach the Redis store at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port}: `));
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('credentials', () => {
  it('a password from the URL or CAPFRAME_REDIS_PASSWORD opens a protected Redis; a wrong one does not; no log line holds it', async () => {
    const secret = 'correct horse battery staple';
    const own = await startRedis({ password: secret });
    const log = capture();
    try {
      const viaUrl = await openRedisStore({ url: `redis://:${encodeURIComponent(secret)}@127.0.0.1:${own.port}`, log });
      expect(await viaUrl.revoke(random())).toBe(true);
      await viaUrl.close();
      process.env.CAPFRAME_REDIS_PASSWORD = secret;
      try {
        const viaEnv = await openRedisStore({ url: own.url, log });
        expect(viaEnv.location).toBe(own.url);
        expect(await viaEnv.revokedIds()).toHaveLength(1);
        await viaEnv.close();
      } finally {
        delete process.env.CAPFRAME_REDIS_PASSWORD;
      }
      const wrong = openRedisStore({ url: `redis://:wrong-password@127.0.0.1:${own.port}`, log });
      await expect(wrong).rejects.toThrow(/cannot reach the Redis store at redis:\/\/\*\*\*@127\.0\.0\.1:\d+: .*(WRONGPASS|invalid)/i);
      const noPassword = await openRedisStore({ url: own.url, longLived: true, log, connectTimeoutMs: 1000 });
      expect(noPassword.health().up).toBe(false);
      await noPassword.close();
      expect(log.lines.join('\n')).not.toContain(secret);
      expect(log.lines.join('\n')).not.toContain('wrong-password');
    } finally {
      await own.stop();
    }
  });
});
