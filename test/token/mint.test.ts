import { describe, expect, it } from 'vitest';

import { createVerifier, generateKeyPair, mint, verify } from '../../src/index.js';
import { encodeCbor, toHalf } from '../../src/lib/cbor/encode.js';
import { validateCbor } from '../../src/lib/cbor/validate.js';
import { fromPrintable } from '../../src/token/printable.js';

describe('mint', () => {
  const pair = generateKeyPair();

  it('a simple token is at most 200 bytes of CBOR and prints as cf1.', () => {
    const t = mint({ key: pair.secretKey, tool: 'database.query', agent: 'support-bot', capability: 'read-only', ttl: 300 });
    expect(t.bytes.length).toBeLessThanOrEqual(200);
    expect(t.token).toMatch(/^cf1\.[A-Za-z0-9_-]+$/);
    expect(t.id).toMatch(/^tok_[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(fromPrintable(t.token)!)).toEqual(Buffer.from(t.bytes));
    expect(t.expiresAt.getTime()).toBe(t.claims.exp * 1000);
    expect(t.claims.exp - t.claims.iat).toBe(300);
  });

  it('round-trips through verify with every claim', () => {
    const holder = generateKeyPair().publicKey;
    const t = mint({
      key: pair.secretKey, tool: 'database.*', agent: 'a', capability: 'c', ttl: 60, audience: 'mcp',
      notBefore: Math.floor(Date.now() / 1000) - 5, holderKey: holder, issuer: 'iss-x',
      when: [{ arg: 'n', op: '<', value: 1.5 }, { arg: 's', op: 'in', value: ['x', 'y'] }],
    });
    const d = verify(t.token, { keys: [pair.publicKey] });
    // Holder-bound: the token is valid and readable, but nothing is allowed without a proof.
    expect(d).toMatchObject({ allowed: false, code: 'bad_proof', tokenId: t.id });
    expect(Buffer.from(d.holderKey!)).toEqual(Buffer.from(holder));
    expect(d.claims).toMatchObject({ iss: 'iss-x', sub: 'a', aud: 'mcp', tool: 'database.*', cap: 'c' });
    expect(d.claims!.when).toEqual([{ arg: 'n', op: '<', value: 1.5 }, { arg: 's', op: 'in', value: ['x', 'y'] }]);
  });

  it('rejects bad arguments with clear errors', () => {
    expect(() => mint({ key: pair.secretKey, tool: '', ttl: 60 })).toThrow(/tool must be a non-empty string/);
    expect(() => mint({ key: pair.secretKey, tool: 'x', ttl: 0 })).toThrow(/ttl must be a positive integer/);
    expect(() => mint({ key: pair.secretKey, tool: 'x', ttl: 1.5 })).toThrow(/ttl must be a positive integer/);
    expect(() => mint({ key: new Uint8Array(31), tool: 'x', ttl: 5 })).toThrow(/32-byte Ed25519 seed/);
    expect(() => mint({ key: pair.secretKey, tool: 'x', ttl: 5, when: [{ arg: 'a', op: '==', value: 'y'.repeat(9000) }] })).toThrow(/8 KiB/);
    expect(() => mint({ key: pair.secretKey, tool: 'x', ttl: 5, holderKey: new Uint8Array(31) })).toThrow(/32 bytes/);
    // The identity point: every proof by it would be forgeable, so no token names it.
    expect(() => mint({ key: pair.secretKey, tool: 'x', ttl: 5, holderKey: Uint8Array.of(1, ...new Uint8Array(31)) })).toThrow(/not a usable Ed25519 holder key/);
  });
});

describe('deterministic CBOR encoding', () => {
  it.each([
    [0, '00'], [23, '17'], [24, '1818'], [255, '18ff'], [256, '190100'], [65536, '1a00010000'], [-1, '20'], [-25, '3818'],
    [0.5, 'f93800'], [1.5, 'f93e00'], [65504, '19ffe0'], [100000.5, 'fa47c35040'], [0.1, 'fb3fb999999999999a'],
    [5.960464477539063e-8, 'f90001'], [-0, 'f98000'],
  ])('%s encodes as %s', (value, hex) => {
    expect(Buffer.from(encodeCbor(value)).toString('hex')).toBe(hex);
  });

  it('sorts map keys by their encoding and rejects what it cannot encode', () => {
    const bytes = encodeCbor(new Map<unknown, unknown>([['when', 1], ['tool', 2], [7, 3], [1, 4], ['cap', 5]]));
    expect(Buffer.from(bytes).toString('hex')).toBe('a50104070363636170056474' + '6f6f6c02647768656e01');
    expect(() => validateCbor(bytes)).not.toThrow();
    expect(() => encodeCbor(Number.NaN)).toThrow(/non-finite/);
    expect(() => encodeCbor(new Date())).toThrow(/cannot encode/);
  });

  it('toHalf agrees with the spec on the boundaries', () => {
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(65505)).toBeUndefined();
    expect(toHalf(2 ** -24)).toBe(1);
    expect(toHalf(2 ** -25)).toBeUndefined();
    expect(toHalf(0.1)).toBeUndefined();
  });
});

describe('createVerifier', () => {
  const pair = generateKeyPair();
  const verifier = createVerifier({ keys: [pair.publicKey] });

  it('checks the tool and the token constraints when given a call', () => {
    const t = mint({ key: pair.secretKey, tool: 'payments.refund', ttl: 60, when: [{ arg: 'amount', op: '<=', value: 50 }] });
    expect(verifier.verify(t.token, { tool: 'payments.refund', args: { amount: 20 } }).allowed).toBe(true);
    expect(verifier.verify(t.token, { tool: 'payments.refund', args: { amount: 51 } })).toMatchObject({ allowed: false, code: 'constraint_failed' });
    expect(verifier.verify(t.token, { tool: 'payments.refund', args: { amount: '20' } })).toMatchObject({ allowed: false, code: 'constraint_failed' });
    expect(verifier.verify(t.token, { tool: 'payments.refund' })).toMatchObject({ allowed: false, code: 'constraint_failed' });
    expect(verifier.verify(t.token, { tool: 'payments.charge', args: { amount: 1 } })).toMatchObject({ allowed: false, code: 'tool_mismatch' });
    expect(verifier.verify(t.token).allowed).toBe(true);
  });

  it('tool patterns in the token match exactly what they say', () => {
    const t = mint({ key: pair.secretKey, tool: 'database.*', ttl: 60 });
    expect(verifier.verify(t.token, { tool: 'database.query' }).allowed).toBe(true);
    expect(verifier.verify(t.token, { tool: 'databasex.query' }).code).toBe('tool_mismatch');
  });

  it('revocation applies at once, also to cached verdicts', () => {
    const t = mint({ key: pair.secretKey, tool: 'x.y', ttl: 60 });
    expect(verifier.verify(t.token).allowed).toBe(true);
    expect(verifier.revoke(t.id)).toBe(true);
    expect(verifier.verify(t.token)).toMatchObject({ allowed: false, code: 'revoked', tokenId: t.id });
    expect(verifier.isRevoked(t.claims.cti)).toBe(true);
  });

  it('verifyBatch answers like verify, including for non-tokens', () => {
    const good = mint({ key: pair.secretKey, tool: 'a.b', ttl: 60 }).token;
    const foreign = mint({ key: generateKeyPair().secretKey, tool: 'a.b', ttl: 60 }).token;
    const decisions = verifier.verifyBatch([good, 'nonsense', foreign, fromPrintable(good)!]);
    expect(decisions.map((d) => d.code)).toEqual(['ok', 'malformed_token', 'unknown_key', 'ok']);
  });

  it('a token with an audience is accepted in a call context only by that audience', () => {
    const t = mint({ key: pair.secretKey, tool: 'billing.charge', ttl: 60, audience: 'billing-svc' });
    expect(verifier.verify(t.token, { tool: 'billing.charge', audience: 'billing-svc' }).allowed).toBe(true);
    expect(verifier.verify(t.token, { tool: 'billing.charge', audience: 'other-svc' })).toMatchObject({ allowed: false, code: 'tool_mismatch' });
    expect(verifier.verify(t.token, { tool: 'billing.charge' })).toMatchObject({ allowed: false, code: 'tool_mismatch', reason: expect.stringContaining('names no audience') });
    expect(verifier.verify(t.token).allowed).toBe(true); // validity alone
  });

  it('constraint values beyond 32 bits survive the round trip (not bigint)', () => {
    const t = mint({ key: pair.secretKey, tool: 'payments.refund', ttl: 60, when: [{ arg: 'amount', op: '<=', value: 5_000_000_000 }] });
    expect(verifier.verify(t.token, { tool: 'payments.refund', args: { amount: 4_000_000_000 } }).allowed).toBe(true);
    expect(verifier.verify(t.token, { tool: 'payments.refund', args: { amount: 6_000_000_000 } }).code).toBe('constraint_failed');
  });

  it('a clock that does not return milliseconds is a programmer error, not an unexpiring token', () => {
    const broken = createVerifier({ keys: [pair.publicKey], clock: () => Number.NaN });
    expect(() => broken.verify(mint({ key: pair.secretKey, tool: 'x.y', ttl: 60 }).token)).toThrow(/clock\(\) returned NaN/);
  });

  it('missing tokens deny with missing_token; programmer errors throw', () => {
    expect(verifier.verify(undefined).code).toBe('missing_token');
    expect(verifier.verify('').code).toBe('missing_token');
    expect(() => verifier.verify(42 as unknown as string)).toThrow(/token must be a string or Uint8Array/);
    expect(() => createVerifier({} as never)).toThrow(/options.keys must be an array/);
    expect(() => verifier.revoke('tok_short')).toThrow(/not a token id/);
  });
});
