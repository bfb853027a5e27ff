/**
 * `GET /.well-known/capframe-keys` on a running `serve`: the trusted issuer keys as a JWK
 * Set (the same set `capframe keys public --json` prints), public, cacheable, and a key
 * from a verifier in another language's point of view: node:crypto imports each JWK and
 * verifies a signature by the issuer. The route's body is built once; no keys is a 500.
 */
import { createHash, createPublicKey, sign, verify } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { jwkSetBody } from '../../src/http/routes/keys.js';
import { generateKeyPair, signingKey } from '../../src/keys/keys.js';
import { cli, tempDir } from '../helpers.js';
import { killAllServed, startServe } from '../proxy/faults-helpers.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServed();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('GET /.well-known/capframe-keys', () => {
  it('serves the trusted keys as application/jwk-set+json, public for 300 s, without authentication', async () => {
    const dir = tempDir('capframe-keys-route-');
    dirs.push(dir);
    const policy = join(dir, 'policy.yaml');
    const agentKey = createHash('sha256').update('cfk_x').digest('hex');
    writeFileSync(policy, `capframe:\n  version: "0.2"\n  agents:\n    bot: { key_sha256: "${agentKey}" }\n  rules: []\n`);
    const next = generateKeyPair();
    mkdirSync(join(dir, '.capframe'), { recursive: true });
    // Rotation, step 1: the next key is trusted (so published) before it signs anything.
    writeFileSync(join(dir, '.capframe', 'trusted.keys'), `${Buffer.from(next.publicKey).toString('hex')}\n`);
    const served = await startServe(policy, { env: { CAPFRAME_ISSUER_KEY: '' } });

    const res = await fetch(`${served.base}/.well-known/capframe-keys`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/jwk-set+json');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const set = (await res.json()) as { keys: { x: string; kid: string }[] };
    const printed = cli(['keys', 'public', '--json', '--policy', policy], { env: { CAPFRAME_ISSUER_KEY: undefined } });
    expect(printed.code, printed.stderr).toBe(0);
    expect(set).toEqual(JSON.parse(printed.stdout));
    expect(set.keys.map((k) => k.x)).toEqual([
      Buffer.from(signingKey(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8')).publicKey).toString('base64url'),
      Buffer.from(next.publicKey).toString('base64url'),
    ]);
    // Any JWK-reading verifier can use them: the issuer's signature verifies with the first.
    const issuerPem = readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8');
    const signature = sign(null, Buffer.from('hello'), issuerPem);
    expect(verify(null, Buffer.from('hello'), createPublicKey({ key: set.keys[0] as never, format: 'jwk' }), signature)).toBe(true);
    expect(verify(null, Buffer.from('hello'), createPublicKey({ key: set.keys[1] as never, format: 'jwk' }), signature)).toBe(false);
  });

  it('is never an empty or partial set: no keys, or a key that is not one, is an error (the route answers 500)', () => {
    expect(jwkSetBody([])).toEqual({ error: 'no trusted keys are loaded' });
    expect(jwkSetBody([generateKeyPair().publicKey, new Uint8Array(31)])).toHaveProperty('error');
    const ok = jwkSetBody([generateKeyPair().publicKey]);
    expect('body' in ok && (JSON.parse(ok.body) as { keys: unknown[] }).keys).toHaveLength(1);
  });
});
