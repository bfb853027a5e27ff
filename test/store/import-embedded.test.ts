/** Switching from the embedded store to Redis keeps the revocations that may still matter. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openRedisStore } from '../../src/store/redis-store.js';
import { importEmbeddedRevocations } from '../../src/store/import-embedded.js';
import { tokenId } from '../../src/token/claims.js';
import { tempDir } from '../helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from './redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => stopAllRedis());

const cti = (n: number) => new Uint8Array(16).fill(n);

describe('importing the embedded revocation log into Redis', () => {
  it('copies revocations younger than the longest token lifetime, kept until then plus grace; skips older ones', async () => {
    const dir = tempDir();
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    writeFileSync(join(dir, 'revocations.log'), `${tokenId(cti(1))} ${iso(now - 10_000)}\n${tokenId(cti(2))} ${iso(now - 400_000)}\n${tokenId(cti(3))} not-a-time\n`);
    const store = await openRedisStore({ url: redis.url, prefix: 'import1:', maxTtlSeconds: 300, graceSeconds: 60 });
    const direct = redis.client();
    try {
      expect(await importEmbeddedRevocations(dir, store, 300, now)).toBe(2);
      expect((await store.revokedIds()).map((b) => b[0]).sort()).toEqual([1, 3]);
      // Kept at least until the token revoked 10 s ago could have expired, plus grace.
      expect(Number(await direct.zscore('import1:revoked', tokenId(cti(1))))).toBeGreaterThanOrEqual(now - 10_000 + 300_000 + 60_000);
    } finally {
      direct.disconnect();
      await store.close();
    }
  });

  it('refuses a log line it cannot read, naming file and line; an absent log imports nothing', async () => {
    const dir = tempDir();
    const store = await openRedisStore({ url: redis.url, prefix: 'import2:' });
    try {
      expect(await importEmbeddedRevocations(dir, store, 300)).toBe(0);
      writeFileSync(join(dir, 'revocations.log'), 'garbage\n');
      await expect(importEmbeddedRevocations(dir, store, 300)).rejects.toThrow(/revocations\.log:1: not a revocation line: "garbage"; fix or remove it before switching to Redis/);
    } finally {
      await store.close();
    }
  });
});
