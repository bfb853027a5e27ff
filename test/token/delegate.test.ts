/** delegate() and createProof(): what they make, and the mistakes they refuse to make. */
import { describe, expect, it } from 'vitest';

import { createProof, createVerifier, delegate, generateKeyPair, mint } from '../../src/index.js';
import { keyId } from '../../src/lib/ed25519.js';
import { parseToken } from '../../src/token/parse.js';
import { PROOF_PREFIX } from '../../src/token/proof-format.js';

const issuer = generateKeyPair();
const planner = generateKeyPair();
const executor = generateKeyPair();
const now = Math.floor(Date.now() / 1000);
const parent = mint({ key: issuer.secretKey, tool: 'payments.*', ttl: 600, holderKey: planner.publicKey, capability: 'refunds', when: [{ arg: 'amount', op: '<=', value: 200 }], now });

describe('delegate', () => {
  it('makes a child signed by the parent\'s holder key, carrying the parent, bound to the sub-agent', () => {
    const child = delegate(parent.token, { key: planner.secretKey, tools: 'payments.refund', when: [{ arg: 'amount', op: '<=', value: 50 }], ttl: 60, to: executor.publicKey, agent: 'executor', now });
    const parsed = parseToken(child.bytes);
    expect(Buffer.from(parsed.kid)).toEqual(Buffer.from(keyId(planner.publicKey)));
    expect(Buffer.from(parsed.prf!)).toEqual(Buffer.from(parent.bytes));
    expect(Buffer.from(parsed.holder!)).toEqual(Buffer.from(executor.publicKey));
    expect(child.claims).toMatchObject({ iss: Buffer.from(keyId(planner.publicKey)).toString('hex'), sub: 'executor', tool: 'payments.refund', exp: now + 60 });
    // Only its own constraints; no capability of its own (it inherits the parent's).
    expect(child.claims.when).toEqual([{ arg: 'amount', op: '<=', value: 50 }]);
    expect(child.claims.cap).toBeUndefined();
    const verifier = createVerifier({ keys: [issuer.publicKey] });
    const args = { amount: 20 };
    const d = verifier.verify(child.token, { tool: 'payments.refund', args, proof: createProof({ token: child.token, tool: 'payments.refund', args, key: executor.secretKey }).proof });
    expect(d).toMatchObject({ allowed: true, code: 'ok', tokenId: child.id });
    expect(d.chain!.map((c) => c.tool)).toEqual(['payments.refund', 'payments.*']);
    expect(Buffer.from(d.holderKey!)).toEqual(Buffer.from(executor.publicKey));
  });

  it('expires no later than the parent, whatever ttl is asked for', () => {
    const child = delegate(parent.token, { key: planner.secretKey, tools: 'payments.refund', ttl: 10_000, to: executor.publicKey, now });
    expect(child.claims.exp).toBe(parent.claims.exp);
    expect(delegate(parent.bytes, { key: planner.secretKey, tools: 'payments.refund', to: executor.publicKey, now }).claims.exp).toBe(parent.claims.exp);
  });

  it('a chain four delegations deep, with constraints on every link, fits the 8 KiB token limit with room to spare', () => {
    let token = parent.token;
    let holder = planner;
    let size = 0;
    for (let depth = 1; depth <= 4; depth++) {
      const next = generateKeyPair();
      const child = delegate(token, {
        key: holder.secretKey,
        tools: 'payments.refund',
        when: [
          { arg: 'amount', op: '<=', value: 200 - depth * 10 },
          { arg: 'currency', op: 'in', value: ['EUR', 'USD'] },
          { arg: 'reason', op: 'max_length', value: 200 },
        ],
        to: next.publicKey,
        agent: `agent-${depth}`,
        now,
      });
      token = child.token;
      holder = next;
      size = child.bytes.length;
    }
    expect(size).toBeLessThan(2048);
    const verifier = createVerifier({ keys: [issuer.publicKey] });
    const args = { amount: 100, currency: 'EUR', reason: 'damaged' };
    expect(verifier.verify(token, { tool: 'payments.refund', args, proof: createProof({ token, tool: 'payments.refund', args, key: holder.secretKey }).proof }).code).toBe('ok');
  });

  it('refuses what no verifier would accept', () => {
    const base = { key: planner.secretKey, tools: 'payments.refund', to: executor.publicKey, now };
    expect(() => delegate(parent.token, { ...base, key: executor.secretKey })).toThrow(/not the parent token's holder key/);
    expect(() => delegate(parent.token, { ...base, tools: 'shell.*' })).toThrow(/not within the parent's "payments\.\*"/);
    expect(() => delegate(parent.token, { ...base, tools: 'has space' })).toThrow(/tool name or pattern/);
    expect(() => delegate(parent.token, { ...base, when: [{ arg: 'amount', op: 'lte', value: 5 }] })).toThrow(/op/);
    expect(() => delegate(parent.token, { ...base, ttl: 0 })).toThrow(/ttl must be a positive/);
    expect(() => delegate(parent.token, { ...base, now: parent.claims.exp })).toThrow(/expired/);
    expect(() => delegate(parent.token, { ...base, to: Uint8Array.of(1, ...new Uint8Array(31)) })).toThrow(/not a usable Ed25519 holder key/);
    expect(() => delegate(parent.token, { ...base, to: 'zz' })).toThrow(/32 bytes/);
    const unbound = mint({ key: issuer.secretKey, tool: 'payments.*', ttl: 60 });
    expect(() => delegate(unbound.token, base)).toThrow(/not bound to a holder key/);
    expect(() => delegate('cf1.AAAA', base)).toThrow(/not a readable token/);
  });
});

describe('createProof', () => {
  it('makes a cfp1. proof by the holder for one call, with a fresh nonce each time', () => {
    const a = createProof({ token: parent.token, tool: 'payments.refund', args: { amount: 1 }, key: planner.secretKey });
    const b = createProof({ token: parent.token, tool: 'payments.refund', args: { amount: 1 }, key: planner.secretKey });
    expect(a.proof.startsWith(PROOF_PREFIX)).toBe(true);
    expect(a.bytes.length).toBeLessThan(256);
    expect(Buffer.from(a.nonce)).not.toEqual(Buffer.from(b.nonce));
    expect(Math.abs(a.iat - Date.now())).toBeLessThan(60_000);
  });

  it('refuses to sign for a token the key does not hold, or arguments that are not JSON', () => {
    expect(() => createProof({ token: parent.token, tool: 'payments.refund', args: {}, key: executor.secretKey })).toThrow(/not the token's holder key/);
    const unbound = mint({ key: issuer.secretKey, tool: 'payments.*', ttl: 60 });
    expect(() => createProof({ token: unbound.token, tool: 'payments.refund', key: planner.secretKey })).toThrow(/not bound to a holder key/);
    expect(() => createProof({ token: parent.token, tool: 'payments.refund', args: { n: Number.NaN }, key: planner.secretKey })).toThrow(/not a JSON value/);
    expect(() => createProof({ token: parent.token, tool: '', key: planner.secretKey })).toThrow(/tool must be/);
    expect(() => createProof({ token: parent.token, tool: 'x'.repeat(2000), key: planner.secretKey })).toThrow(/1024-byte limit/);
  });
});

