/**
 * What every store does, run against both: the embedded file store and the Redis store
 * (a real redis-server). Store-specific behaviour is in file-store.test.ts and
 * redis-store.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateKeyPair, mint } from '../../src/index.js';
import { openFileStore } from '../../src/store/file-store.js';
import { openRedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from './redis-server.js';

let redis: RedisServer;
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => stopAllRedis());

const kinds: [string, () => Promise<Store>][] = [
  ['file', async () => openFileStore(tempDir(), { pollMs: 50 })],
  ['redis', () => openRedisStore({ url: redis.url, prefix: `contract${++prefixes}:`, longLived: true })],
];

const random = () => crypto.getRandomValues(new Uint8Array(16));
const ids = (flat: Uint8Array) => {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 16) out.push(Buffer.from(flat.subarray(i, i + 16)).toString('hex'));
  return out;
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(kinds)('%s store', (kind, open) => {
  it('revokes once (true, then false) and lists what is revoked', async () => {
    const store = await open();
    try {
      const a = random();
      const b = random();
      expect(await store.revoke(a)).toBe(true);
      expect(await store.revoke(a)).toBe(false);
      expect(await store.revoke(b, { exp: Math.floor(Date.now() / 1000) + 60 })).toBe(true);
      expect((await store.revokedIds()).map(hex).sort()).toEqual([hex(a), hex(b)].sort());
      expect(store.kind).toBe(kind);
    } finally {
      await store.close();
    }
  });

  it('a follower gets every existing revocation, is then current, and gets each new one', async () => {
    const store = await open();
    const other = kind === 'file' ? openFileStore(store.location) : await openRedisStore({ url: redis.url, prefix: (store as { prefix?: string }).prefix! });
    try {
      const before = [random(), random(), random()];
      for (const id of before) await other.revoke(id);
      const seen = new Set<string>();
      const states: boolean[] = [];
      const follow = store.followRevocations({ onRevoked: (flat) => ids(flat).forEach((id) => seen.add(id)), onState: (current) => states.push(current) });
      await follow.ready;
      expect([...seen].sort()).toEqual(before.map(hex).sort());
      expect(states.at(-1)).toBe(true);
      expect(store.health()).toMatchObject({ kind, up: true });
      const after = random();
      await other.revoke(after);
      await until(() => seen.has(hex(after)), 'the new revocation');
      await follow.close();
    } finally {
      await other.close();
      await store.close();
    }
  });

  it('records issued tokens and finds them by tok_ id', async () => {
    const store = await open();
    try {
      const t = mint({ key: generateKeyPair().secretKey, tool: 'database.query', agent: 'bot', capability: 'read-only', ttl: 60 });
      await store.record(t);
      expect(await store.findToken(t.id)).toEqual({ id: t.id, token: t.token, tool: 'database.query', agent: 'bot', capability: 'read-only', exp: t.claims.exp, iat: t.claims.iat });
      expect(await store.findToken('tok_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('accepts a nonce once, and holds a rate limit of N per window', async () => {
    const store = await open();
    try {
      expect(await store.nonces.claim('cti.nonce', 5000)).toBe(true);
      expect(await store.nonces.claim('cti.nonce', 5000)).toBe(false);
      expect(await store.nonces.claim('cti.other', 5000)).toBe(true);
      const limit = { calls: 3, per: 60 };
      const taken: boolean[] = [];
      for (let i = 0; i < 5; i++) taken.push(await store.limiter.take('agent\u0000line 7', limit));
      expect(taken).toEqual([true, true, true, false, false]);
      expect(await store.limiter.take('another agent\u0000line 7', limit)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
