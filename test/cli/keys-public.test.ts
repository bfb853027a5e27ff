/**
 * `capframe keys public` as a real child process: the issuer's key and those in
 * trusted.keys, as kid + hex + JWK, and as a JWK Set with --json that node:crypto
 * (an independent JWK reader) turns into keys that verify the issuer's signatures.
 */
import { createHash, createPublicKey, sign, verify } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { generateKeyPair, signingKey } from '../../src/keys/keys.js';
import { cli, tempDir } from '../helpers.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const kidOf = (publicKey: Uint8Array) => createHash('sha256').update(publicKey).digest().subarray(0, 8);
/** Runs without an issuer key in the environment, so the state directory decides. */
const noEnvKey = { CAPFRAME_ISSUER_KEY: undefined };

interface Jwk {
  kty: string;
  crv: string;
  x: string;
  kid: string;
  alg: string;
  use: string;
}

describe('capframe keys public', () => {
  let dir: string;
  let policy: string;
  let issuerPem: string;
  let issuer: Uint8Array;
  const second = generateKeyPair();

  beforeAll(() => {
    dir = tempDir();
    policy = join(dir, 'policy.yaml');
    expect(cli(['init', '--policy', policy], { env: noEnvKey }).code).toBe(0);
    issuerPem = readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8');
    issuer = signingKey(issuerPem).publicKey;
    // Rotation: the next key, a comment, and the issuer's own key listed again.
    writeFileSync(join(dir, '.capframe', 'trusted.keys'), `# next issuer key\n${hex(second.publicKey)}\n${hex(issuer)}\n`);
  });

  it('prints each trusted key once: kid, raw public key and JWK, the issuer first', () => {
    const r = cli(['keys', 'public', '--policy', policy], { env: noEnvKey });
    expect(r.code, r.stderr).toBe(0);
    const blocks = r.stdout.trimEnd().split('\n\n');
    expect(blocks).toHaveLength(2);
    for (const [i, [key, source]] of ([[issuer, 'issuer'], [second.publicKey, 'trusted.keys']] as const).entries()) {
      const [kidLine, keyLine, jwkLine, ...rest] = blocks[i]!.split('\n');
      expect(rest).toEqual([]);
      expect(kidLine).toBe(`kid: ${hex(kidOf(key))} (${source})`);
      expect(keyLine).toBe(`public_key: ${hex(key)}`);
      expect(JSON.parse(jwkLine!.replace(/^jwk: /, ''))).toEqual({
        kty: 'OKP',
        crv: 'Ed25519',
        x: Buffer.from(key).toString('base64url'),
        kid: kidOf(key).toString('base64url'),
        alg: 'EdDSA',
        use: 'sig',
      });
    }
    expect(r.stderr).toBe('');
  });

  it('--json prints a JWK Set whose keys verify the matching signatures, and no secret', () => {
    const r = cli(['keys', 'public', '--state-dir', join(dir, '.capframe'), '--json'], { env: noEnvKey });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const set = JSON.parse(r.stdout) as { keys: Jwk[] };
    expect(Object.keys(set)).toEqual(['keys']);
    expect(set.keys.map((k) => Buffer.from(k.x, 'base64url').toString('hex'))).toEqual([hex(issuer), hex(second.publicKey)]);
    const message = Buffer.from('capframe');
    const signatures = [sign(null, message, signingKey(issuerPem).object), sign(null, message, signingKey(second.secretKey).object)];
    set.keys.forEach((jwk, i) => {
      expect(jwk.kid).toBe(kidOf(Buffer.from(jwk.x, 'base64url')).toString('base64url'));
      const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
      expect(verify(null, message, key, signatures[i]!)).toBe(true);
      expect(verify(null, message, key, signatures[1 - i]!)).toBe(false);
    });
    // Nothing secret: neither the PEM body nor any `d`.
    const pemBody = issuerPem.split('\n').filter((l) => l !== '' && !l.startsWith('-----')).join('');
    expect(r.stdout).not.toContain(pemBody);
    expect(r.stdout).not.toMatch(/"d"/);
  });

  it('labels CAPFRAME_ISSUER_KEY as the issuer when it is set', () => {
    const fromEnv = generateKeyPair();
    const r = cli(['keys', 'public', '--policy', policy], { env: { CAPFRAME_ISSUER_KEY: Buffer.from(fromEnv.secretKey).toString('base64url') } });
    expect(r.code, r.stderr).toBe(0);
    const kids = r.stdout.split('\n').filter((l) => l.startsWith('kid: '));
    expect(kids).toEqual([
      `kid: ${hex(kidOf(fromEnv.publicKey))} (issuer)`,
      `kid: ${hex(kidOf(second.publicKey))} (trusted.keys)`,
      `kid: ${hex(kidOf(issuer))} (trusted.keys)`,
    ]);
  });

  it('fails clearly when there is no key, and names a bad trusted.keys line', () => {
    const empty = tempDir();
    const none = cli(['keys', 'public', '--state-dir', empty, '--json'], { env: noEnvKey });
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^capframe: no trusted keys in .*: no issuer key .* run `capframe init --policy <file>`\n$/);

    appendFileSync(join(empty, 'trusted.keys'), `${hex(second.publicKey)}\nnot-a-key\n`);
    const bad = cli(['keys', 'public', '--state-dir', empty], { env: noEnvKey });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain(`${join(empty, 'trusted.keys')}:2: an Ed25519 public key is 32 bytes`);
  });

  it('without an issuer key, the trusted.keys keys alone are printed (a verify-only host)', () => {
    const verifyOnly = tempDir();
    writeFileSync(join(verifyOnly, 'trusted.keys'), `${hex(second.publicKey)}\n`);
    const r = cli(['keys', 'public', '--state-dir', verifyOnly], { env: noEnvKey });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`kid: ${hex(kidOf(second.publicKey))} (trusted.keys)`);
  });
});
