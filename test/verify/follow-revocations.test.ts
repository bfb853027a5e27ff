/**
 * Verifiers following a store's revocations (SPEC §7): `createVerifier({ revocations })`
 * and `followRevocations(verifier, source)`, on the embedded store's log and on Redis,
 * with the fail-closed rule while the feed is not current.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createVerifier, followRevocations, generateKeyPair, mint, openFileStore, openRedisStore } from '../../src/index.js';
import { parseTokenId } from '../../src/verify/token-id.js';
import { tempDir } from '../helpers.js';
import { startRedis, startRelay, stopAllRedis, type RedisServer } from '../store/redis-server.js';

const issuer = generateKeyPair();
const token = () => mint({ key: issuer.secretKey, tool: 'database.query', ttl: 300 });
const cti = (t: { id: string }) => parseTokenId(t.id);

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let redis: RedisServer;
let n = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => stopAllRedis());

describe('following the embedded store (a state directory)', () => {
  it('loads existing revocations, then denies a token revoked by another process within the poll interval', async () => {
    const dir = tempDir();
    const writer = openFileStore(dir);
    const old = token();
    await writer.revoke(cti(old));
    const verifier = createVerifier({ keys: [issuer.publicKey], revocations: dir });
    await verifier.ready();
    expect(verifier.verify(old.token).code).toBe('revoked');
    const fresh = token();
    expect(verifier.verify(fresh.token).code).toBe('ok');
    await writer.revoke(cti(fresh));
    await until(() => verifier.verify(fresh.token).code === 'revoked', 'the new revocation');
    await verifier.close();
  });

  it('refuses a path that is not a directory (a typo would follow nothing, for ever)', () => {
    const file = join(tempDir(), 'not-a-dir');
    writeFileSync(file, '');
    expect(() => createVerifier({ keys: [issuer.publicKey], revocations: file })).toThrow(/is not a directory; give the state directory that holds revocations\.log/);
    expect(() => createVerifier({ keys: [issuer.publicKey], revocations: join(tempDir(), 'missing') })).toThrow(/is not a directory/);
    expect(() => createVerifier({ keys: [issuer.publicKey], revocations: 'http://example.com' })).toThrow(/is not a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('an unreadable revocation log denies every call internal_error, naming the line (fail closed)', async () => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'revocations.log'), 'garbage\n');
    const verifier = createVerifier({ keys: [issuer.publicKey], revocations: dir });
    const d = verifier.verify(token().token);
    expect(d.code).toBe('internal_error');
    expect(d.reason).toMatch(/revocations\.log:1: not a revocation line/);
    expect(verifier.verifyBatch([token().token]).map((x) => x.code)).toEqual(['internal_error']);
    await verifier.close();
  });
});

describe('following the Redis store', () => {
  it('createVerifier({ revocations: url }) denies until loaded, then applies a revocation from another instance in milliseconds', async () => {
    const prefixFree = `redis://127.0.0.1:${redis.port}`;
    const writer = await openRedisStore({ url: prefixFree });
    const old = token();
    await writer.revoke(cti(old));
    const verifier = createVerifier({ keys: [issuer.publicKey], revocations: prefixFree });
    const early = verifier.verify(old.token);
    expect(early.code).toBe('internal_error');
    expect(early.reason).toMatch(/revocations from redis:\/\/127\.0\.0\.1:\d+ are not loaded yet/);
    await verifier.ready();
    expect(verifier.verify(old.token).code).toBe('revoked');
    const fresh = token();
    expect(verifier.verify(fresh.token).code).toBe('ok');
    await writer.revoke(cti(fresh));
    await until(() => verifier.verify(fresh.token).code === 'revoked', 'the pushed revocation', 5000);
    await verifier.close();
    await writer.close();
  });

  it('disconnected: internal_error until it is back (deny), or the last known set (use_cached); a revocation made meanwhile holds once back', async () => {
    const relay = await startRelay(redis);
    const prefix = `follow${++n}:`;
    const writer = await openRedisStore({ url: redis.url, prefix });
    const denying = createVerifier({ keys: [issuer.publicKey] });
    const cached = createVerifier({ keys: [issuer.publicKey] });
    const viaRelay = await openRedisStore({ url: relay.url, prefix, longLived: true });
    await followRevocations(denying, viaRelay);
    await followRevocations(cached, viaRelay, { onStoreFailure: 'use_cached' });
    const revokedBefore = token();
    await writer.revoke(cti(revokedBefore));
    await until(() => denying.verify(revokedBefore.token).code === 'revoked' && cached.verify(revokedBefore.token).code === 'revoked', 'the first revocation');

    relay.cut();
    const during = token();
    await until(() => denying.verify(during.token).code === 'internal_error', 'the denying verifier to fail closed');
    expect(denying.verify(during.token).reason).toMatch(/the revocation store redis:\/\/127\.0\.0\.1:\d+ is unreachable .*calls are denied until it is back \(on_store_failure: deny\)/);
    expect(cached.verify(during.token).code).toBe('ok');
    expect(cached.verify(revokedBefore.token).code).toBe('revoked');
    await writer.revoke(cti(during));
    expect(cached.verify(during.token).code).toBe('ok'); // it cannot know yet: that is what use_cached trades

    relay.restore();
    await until(() => denying.verify(during.token).code === 'revoked' && cached.verify(during.token).code === 'revoked', 'the resync after the reconnect');
    expect(denying.verify(token().token).code).toBe('ok');
    await denying.close();
    await cached.close();
    await viaRelay.close();
    await writer.close();
    await relay.close();
  });
});
