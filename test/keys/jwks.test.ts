/**
 * publicJwk / publicJwks: RFC 8037 OKP JWKs whose kid is capframe's token kid, read
 * back by independent implementations (node:crypto's JWK import, @ldclabs/cose-ts).
 */
import { createHash, createPublicKey } from 'node:crypto';

import { Ed25519Key } from '@ldclabs/cose-ts/ed25519';
import { Sign1Message } from '@ldclabs/cose-ts/sign1';
import { decode as cborgDecode } from 'cborg';
import { describe, expect, it } from 'vitest';

import { CapframeError, generateKeyPair, mint, publicJwk, publicJwks } from '../../src/index.js';

describe('publicJwk', () => {
  const pair = generateKeyPair();

  it('is an Ed25519 OKP JWK with the token kid, base64url-encoded', () => {
    const jwk = publicJwk(pair.publicKey);
    expect(Object.keys(jwk)).toEqual(['kty', 'crv', 'x', 'kid', 'alg', 'use']);
    expect(jwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.from(pair.publicKey).toString('base64url'),
      kid: createHash('sha256').update(pair.publicKey).digest().subarray(0, 8).toString('base64url'),
      alg: 'EdDSA',
      use: 'sig',
    });
    expect(jwk.x).not.toMatch(/[=+/]/);
    expect(Buffer.from(jwk.kid, 'base64url')).toEqual(Buffer.from(pair.kid));
  });

  it("names the kid in a minted token's protected header, and verifies it", () => {
    const minted = mint({ key: pair.secretKey, tool: 'database.query', ttl: 60 });
    const jwk = publicJwk(pair.publicKey);
    const envelope = cborgDecode(minted.bytes, { tags: Object.assign([], { 18: (v: unknown) => v }), useMaps: true }) as [Uint8Array];
    const header = cborgDecode(envelope[0], { useMaps: true }) as Map<number, Uint8Array>;
    expect(Buffer.from(header.get(4)!).toString('base64url')).toBe(jwk.kid);
    // An independent JWK reader and COSE library accept the key and the token.
    const imported = createPublicKey({ key: { ...jwk } as Record<string, string>, format: 'jwk' });
    expect(imported.asymmetricKeyType).toBe('ed25519');
    const raw = imported.export({ format: 'jwk' }).x!;
    expect(() => Sign1Message.fromBytes(Ed25519Key.fromPublic(Buffer.from(raw, 'base64url')), minted.bytes)).not.toThrow();
  });

  it('refuses anything but a 32-byte key', () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(64), 'ab'.repeat(32) as unknown as Uint8Array]) {
      expect(() => publicJwk(bad)).toThrow(CapframeError);
      expect(() => publicJwk(bad)).toThrow(/32 bytes/);
    }
  });
});

describe('publicJwks', () => {
  it('keeps the given order and lists a repeated key once', () => {
    const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const set = publicJwks([a.publicKey, b.publicKey, new Uint8Array(a.publicKey), c.publicKey, b.publicKey]);
    expect(set.keys.map((k) => k.x)).toEqual([a, b, c].map((p) => Buffer.from(p.publicKey).toString('base64url')));
    expect(JSON.parse(JSON.stringify(set))).toEqual(set);
  });

  it('is empty for no keys, and fails whole on one bad key', () => {
    expect(publicJwks([])).toEqual({ keys: [] });
    expect(() => publicJwks([generateKeyPair().publicKey, new Uint8Array(16)])).toThrow(/32 bytes/);
  });
});
