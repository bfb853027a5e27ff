/**
 * `rediss://`: the store over TLS, against a real redis-server serving TLS with a
 * self-signed certificate made by openssl. The certificate is trusted the standard Node
 * way (NODE_EXTRA_CA_CERTS, read at process start), so the check runs in a CLI process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseRedisUrl } from '../../src/store/redis-url.js';
import { cli, tempDir } from '../helpers.js';
import { selfSignedCert, startRedis, stopAllRedis, type RedisServer } from './redis-server.js';

let redis: RedisServer;
let cert: { cert: string; key: string };
beforeAll(async () => {
  cert = selfSignedCert();
  redis = await startRedis({ tls: cert, password: 'tls-secret' });
});
afterAll(() => stopAllRedis());

describe('Redis over TLS', () => {
  it('rediss:// turns TLS on (with SNI for host names); redis:// does not', () => {
    expect(parseRedisUrl('rediss://cache.internal:6380').options.tls).toEqual({ servername: 'cache.internal' });
    expect(parseRedisUrl('redis://cache.internal:6380').options.tls).toBeUndefined();
  });

  it('doctor reaches a TLS Redis with a trusted certificate, and refuses one it cannot trust or plain text to the TLS port', () => {
    const state = tempDir();
    const env = { CAPFRAME_REDIS_PASSWORD: 'tls-secret', CAPFRAME_STATE_DIR: state };
    const ok = cli(['doctor', '--json'], { env: { ...env, CAPFRAME_REDIS_URL: `rediss://127.0.0.1:${redis.port}`, NODE_EXTRA_CA_CERTS: cert.cert } });
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ store: 'redis', store_location: `rediss://127.0.0.1:${redis.port}`, store_from: 'CAPFRAME_REDIS_URL', store_reachable: true, revoked_tokens: 0 });
    expect(ok.stdout + ok.stderr).not.toContain('tls-secret');

    const untrusted = cli(['doctor', '--json'], { env: { ...env, CAPFRAME_REDIS_URL: `rediss://127.0.0.1:${redis.port}` } });
    expect(untrusted.code).toBe(1);
    expect(JSON.parse(untrusted.stdout)).toMatchObject({ store_reachable: false, store_error: expect.stringMatching(/self[- ]signed certificate/i) });

    const plain = cli(['doctor', '--json'], { env: { ...env, CAPFRAME_REDIS_URL: `redis://127.0.0.1:${redis.port}` } });
    expect(plain.code).toBe(1);
    expect(JSON.parse(plain.stdout)).toMatchObject({ store_reachable: false });
  });
});
