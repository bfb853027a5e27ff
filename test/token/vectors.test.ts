/**
 * The shared vector table (test/vectors/tokens.json) against the active backend,
 * and — when the addon is built — native and TypeScript side by side.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { jsBackend } from '../../src/backend/js.js';
import { loadNativeBackend, nativeAddonPath } from '../../src/backend/native.js';
import { activeBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/types.js';
import { CapframeError } from '../../src/errors.js';
import { codeName, detailOf, Malformed } from '../../src/token/codes.js';

interface Vectors {
  now: number;
  trusted_keys: string[];
  revoked: string[];
  tokens: { name: string; token: string; expect: string; detail?: keyof typeof Malformed }[];
  ed25519: { name: string; public_key: string; message: string; signature: string; valid: boolean }[];
}

const vectors = JSON.parse(readFileSync(new URL('../vectors/tokens.json', import.meta.url), 'utf8')) as Vectors;
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

function runAll(backend: Backend): string[] {
  const core = backend.createVerifierCore();
  for (const k of vectors.trusted_keys) core.addKey(hex(k));
  for (const r of vectors.revoked) core.revoke(hex(r));
  return vectors.tokens.map((v) => {
    const result = core.verify(hex(v.token), vectors.now);
    const detail = detailOf(result);
    return detail === undefined ? codeName(result) : `${codeName(result)}/${Malformed[detail]}`;
  });
}

const expected = (v: Vectors['tokens'][number]) => (v.detail === undefined ? v.expect : `${v.expect}/${v.detail}`);

describe(`token vectors on the ${activeBackend().name} backend`, () => {
  it('has at least 40 token cases and the RFC 8032 vectors', () => {
    expect(vectors.tokens.length).toBeGreaterThanOrEqual(40);
    expect(vectors.ed25519.filter((v) => v.name.startsWith('RFC 8032') && v.valid).length).toBeGreaterThanOrEqual(3);
  });

  const results = runAll(activeBackend());
  it.each(vectors.tokens.map((v, i) => [v.name, i] as const))('%s', (_name, i) => {
    expect(results[i]).toBe(expected(vectors.tokens[i]!));
  });

  it.each(vectors.ed25519.map((v) => [v.name, v] as const))('ed25519: %s', (_name, v) => {
    expect(activeBackend().ed25519VerifyStrict(hex(v.public_key), hex(v.message), hex(v.signature))).toBe(v.valid);
  });

  it('a cache hit still re-checks expiry and revocation', () => {
    const core = activeBackend().createVerifierCore();
    core.addKey(hex(vectors.trusted_keys[0]!));
    const valid = hex(vectors.tokens[0]!.token);
    expect(core.verify(valid, vectors.now)).toBe(0);
    expect(codeName(core.verify(valid, vectors.now + 3600))).toBe('expired');
    core.revoke(new Uint8Array(16).fill(1));
    expect(codeName(core.verify(valid, vectors.now))).toBe('revoked');
  });

  it('removing a key drops verdicts cached under it', () => {
    const core = activeBackend().createVerifierCore();
    const kid = core.addKey(hex(vectors.trusted_keys[0]!));
    const valid = hex(vectors.tokens[0]!.token);
    expect(core.verify(valid, vectors.now)).toBe(0);
    expect(core.removeKey(kid)).toBe(true);
    expect(codeName(core.verify(valid, vectors.now))).toBe('unknown_key');
  });

  it('verifyBatch gives the same answers as verify, in order', () => {
    const core = activeBackend().createVerifierCore();
    for (const k of vectors.trusted_keys) core.addKey(hex(k));
    for (const r of vectors.revoked) core.revoke(hex(r));
    const tokens = vectors.tokens.map((v) => hex(v.token));
    const offsets = new Uint32Array(tokens.length + 1);
    tokens.forEach((t, i) => (offsets[i + 1] = offsets[i]! + t.length));
    const codes = core.verifyBatch(Buffer.concat(tokens), offsets, vectors.now);
    expect([...codes].map((c) => (detailOf(c) === undefined ? codeName(c) : `${codeName(c)}/${Malformed[detailOf(c)!]}`))).toEqual(
      vectors.tokens.map(expected),
    );
  });

  it('countRevoked counts revoked ids in one call', () => {
    const core = activeBackend().createVerifierCore();
    core.revokeMany(Buffer.concat([new Uint8Array(16).fill(1), new Uint8Array(16).fill(2)]));
    expect(core.revokedCount()).toBe(2);
    expect(core.countRevoked(Buffer.concat([new Uint8Array(16).fill(2), new Uint8Array(16).fill(3), new Uint8Array(16).fill(1)]))).toBe(2);
    expect(() => core.countRevoked(new Uint8Array(17))).toThrow(/multiple of 16/);
  });

  it('rejects keys that are not curve points and ids of the wrong size', () => {
    const core = activeBackend().createVerifierCore();
    expect(() => core.addKey(new Uint8Array(31))).toThrow(/32 bytes/);
    // y = 2 is not on the curve; both backends say so with the same error code.
    expect(() => core.addKey(hex('02' + '00'.repeat(31)))).toThrow(/not a valid Ed25519 point/);
    try {
      core.addKey(hex('02' + '00'.repeat(31)));
    } catch (error) {
      expect(error).toBeInstanceOf(CapframeError);
      expect((error as CapframeError).code).toBe('invalid_key');
    }
    expect(() => core.revoke(new Uint8Array(15))).toThrow(/16 bytes/);
  });
});

describe.runIf(nativeAddonPath() !== undefined)('native and TypeScript backends agree', () => {
  it('on every token vector', () => {
    expect(runAll(loadNativeBackend().backend)).toEqual(runAll(jsBackend));
  });

  it('on every Ed25519 vector', () => {
    const native = loadNativeBackend().backend;
    for (const v of vectors.ed25519) {
      const args = [hex(v.public_key), hex(v.message), hex(v.signature)] as const;
      expect([v.name, native.ed25519VerifyStrict(...args)]).toEqual([v.name, jsBackend.ed25519VerifyStrict(...args)]);
    }
  });
});
