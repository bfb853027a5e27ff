/**
 * The verifier with delegated tokens and holder proofs, beyond the shared vectors:
 * the verdict cache never changes an answer, a denied call never burns a proof's
 * nonce, asynchronous nonce stores, and the one-shot verify().
 */
import { describe, expect, it } from 'vitest';

import { createMemoryNonceStore, createProof, createVerifier, delegate, generateKeyPair, mint, verify, type NonceStore } from '../../src/index.js';

const issuer = generateKeyPair();
const planner = generateKeyPair();
const executor = generateKeyPair();
const sub = generateKeyPair();
const T0 = Math.floor(Date.now() / 1000);
const TOOL = 'payments.refund';

function chain() {
  const root = mint({ key: issuer.secretKey, tool: TOOL, ttl: 600, holderKey: planner.publicKey, when: [{ arg: 'amount', op: '<=', value: 200 }], now: T0 });
  const mid = delegate(root.token, { key: planner.secretKey, tools: TOOL, when: [{ arg: 'amount', op: '<=', value: 50 }], ttl: 300, to: executor.publicKey, now: T0 });
  const leaf = delegate(mid.token, { key: executor.secretKey, tools: TOOL, when: [{ arg: 'amount', op: '<=', value: 20 }], ttl: 300, to: sub.publicKey, now: T0 });
  return { root, mid, leaf };
}
const callWith = (token: string, key: Uint8Array, amount: number, nowMs = T0 * 1000) => {
  const args = { amount };
  return { tool: TOOL, args, proof: createProof({ token, tool: TOOL, args, key, now: nowMs }).proof };
};

describe('the verdict cache never changes an answer', () => {
  it('revoking a parent or the root of a cached chain revokes the child at once', () => {
    const { root, mid, leaf } = chain();
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000 });
    expect(verifier.verify(leaf.token, callWith(leaf.token, sub.secretKey, 10)).code).toBe('ok');
    expect(verifier.verify(leaf.token, callWith(leaf.token, sub.secretKey, 10)).code).toBe('ok');
    verifier.revoke(mid.id);
    expect(verifier.verify(leaf.token, callWith(leaf.token, sub.secretKey, 10))).toMatchObject({ allowed: false, code: 'revoked', link: 1 });
    expect(verifier.verify(mid.token, callWith(mid.token, executor.secretKey, 10))).toMatchObject({ code: 'revoked', link: 0 });
    const other = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000 });
    expect(other.verify(leaf.token, callWith(leaf.token, sub.secretKey, 10)).code).toBe('ok');
    other.revoke(root.claims.cti);
    expect(other.verify(leaf.token, callWith(leaf.token, sub.secretKey, 10))).toMatchObject({ code: 'revoked', link: 2 });
    expect(other.verify(leaf.bytes)).toMatchObject({ code: 'revoked', link: 2 });
  });

  it('re-checks every link\'s expiry on a cache hit', () => {
    let now = T0 * 1000;
    const root = mint({ key: issuer.secretKey, tool: TOOL, ttl: 100, holderKey: planner.publicKey, now: T0 });
    const child = delegate(root.token, { key: planner.secretKey, tools: TOOL, to: executor.publicKey, now: T0 });
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => now });
    expect(verifier.verify(child.token, callWith(child.token, executor.secretKey, 1, now)).code).toBe('ok');
    now = (T0 + 100) * 1000;
    // Both expire together; the root is checked first.
    expect(verifier.verify(child.token, callWith(child.token, executor.secretKey, 1, now))).toMatchObject({ code: 'expired', link: 1 });
  });
});

describe('holder proofs and nonces', () => {
  it('a denied call does not burn the nonce; an allowed one does', () => {
    const { leaf } = chain();
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000 });
    const tooMuch = callWith(leaf.token, sub.secretKey, 30);
    expect(verifier.verify(leaf.token, tooMuch)).toMatchObject({ code: 'constraint_failed', link: 0 });
    expect(verifier.verify(leaf.token, tooMuch)).toMatchObject({ code: 'constraint_failed', link: 0 });
    const fine = callWith(leaf.token, sub.secretKey, 15);
    expect(verifier.verify(leaf.token, { ...fine, tool: 'payments.charge' })).toMatchObject({ code: 'bad_proof', detail: 'WrongTool' });
    expect(verifier.verify(leaf.token, fine).code).toBe('ok');
    expect(verifier.verify(leaf.token, fine)).toMatchObject({ code: 'replay', allowed: false, tokenId: leaf.id });
  });

  it('a proof is refused for an unbound token, and arguments that are not I-JSON cannot be proven', () => {
    const unbound = mint({ key: issuer.secretKey, tool: TOOL, ttl: 60 });
    const { leaf } = chain();
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000 });
    expect(verifier.verify(unbound.token, callWith(leaf.token, sub.secretKey, 1))).toMatchObject({ code: 'bad_proof', detail: 'NotBound' });
    const proof = callWith(leaf.token, sub.secretKey, 1).proof;
    expect(verifier.verify(leaf.token, { tool: TOOL, args: { amount: Number.POSITIVE_INFINITY }, proof })).toMatchObject({ code: 'constraint_failed' });
    expect(verifier.verify(leaf.token, { tool: TOOL, args: { amount: 1 }, proof: 'cfp1.!!!' })).toMatchObject({ code: 'bad_proof', detail: 'NotPrintable' });
  });

  it('verify() needs a synchronous store; verifyAsync awaits an asynchronous one', async () => {
    const seen = new Set<string>();
    const slow: NonceStore = {
      claim: async (key) => {
        await new Promise((r) => setTimeout(r, 1));
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      },
    };
    const { leaf } = chain();
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000, nonceStore: slow });
    const call = callWith(leaf.token, sub.secretKey, 5);
    expect(verifier.verify(leaf.token, call)).toMatchObject({ code: 'internal_error', reason: expect.stringContaining('verifyAsync') });
    const again = callWith(leaf.token, sub.secretKey, 5);
    expect((await verifier.verifyAsync(leaf.token, again)).code).toBe('ok');
    expect((await verifier.verifyAsync(leaf.token, again)).code).toBe('replay');
    // Tokens that need no nonce do not touch the store.
    const unbound = mint({ key: issuer.secretKey, tool: TOOL, ttl: 60 });
    expect(verifier.verify(unbound.token, { tool: TOOL }).code).toBe('ok');
  });

  it('verifyStaged leaves the nonce to the caller: unclaimed, the proof stays usable; claimed once, however often claim() is called', async () => {
    const { leaf } = chain();
    const claims: string[] = [];
    const memory = createMemoryNonceStore();
    const store: NonceStore = { claim: (key, ttl) => (claims.push(key), memory.claim(key, ttl)) };
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000, nonceStore: store });
    const call = callWith(leaf.token, sub.secretKey, 5);
    // The caller's own checks deny: claim() is never called, nothing is burned.
    const abandoned = verifier.verifyStaged(leaf.token, call);
    expect(abandoned.decision).toMatchObject({ allowed: true, code: 'ok', tokenId: leaf.id });
    expect(claims).toEqual([]);
    const staged = verifier.verifyStaged(leaf.token, call);
    expect(await staged.claim()).toMatchObject({ allowed: true, code: 'ok' });
    expect(await staged.claim()).toMatchObject({ allowed: true, code: 'ok' });
    expect(claims).toHaveLength(1);
    // Seen now: the first stage still passes (steps 1–7), the claim is the replay.
    const again = verifier.verifyStaged(leaf.token, call);
    expect(again.decision.code).toBe('ok');
    expect(await again.claim()).toMatchObject({ allowed: false, code: 'replay', tokenId: leaf.id });
    // A denial, or a token that needs no nonce, answers the same decision from claim().
    const denied = verifier.verifyStaged(leaf.token, callWith(leaf.token, sub.secretKey, 30));
    expect(denied.decision.code).toBe('constraint_failed');
    expect(await denied.claim()).toBe(denied.decision);
    const unbound = verifier.verifyStaged(mint({ key: issuer.secretKey, tool: TOOL, ttl: 60 }).token, { tool: TOOL });
    expect(await unbound.claim()).toBe(unbound.decision);
    expect(claims).toHaveLength(2);
  });

  it('a failing store denies with internal_error and burns nothing', async () => {
    let down = true;
    const memory = createMemoryNonceStore();
    const flaky: NonceStore = {
      claim: (key, ttl) => {
        if (down) throw new Error('connection refused');
        return memory.claim(key, ttl);
      },
    };
    const { leaf } = chain();
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000, nonceStore: flaky });
    const call = callWith(leaf.token, sub.secretKey, 5);
    expect(verifier.verify(leaf.token, call)).toMatchObject({ allowed: false, code: 'internal_error', reason: expect.stringContaining('connection refused') });
    expect(await verifier.verifyAsync(leaf.token, call)).toMatchObject({ allowed: false, code: 'internal_error' });
    down = false;
    expect(verifier.verify(leaf.token, call).code).toBe('ok');
    expect(verifier.verify(leaf.token, call).code).toBe('replay');
  });

  it('the ttl of a claimed nonce covers the skew window twice, or the token\'s life if shorter', () => {
    const ttls: number[] = [];
    const store: NonceStore = { claim: (_key, ttl) => (ttls.push(ttl), true) };
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000, nonceStore: store });
    const { leaf } = chain();
    verifier.verify(leaf.token, callWith(leaf.token, sub.secretKey, 5));
    const short = mint({ key: issuer.secretKey, tool: TOOL, ttl: 30, holderKey: planner.publicKey, now: T0 });
    verifier.verify(short.token, callWith(short.token, planner.secretKey, 5));
    expect(ttls).toEqual([120_000, 30_000]);
  });

  it('one-shot verify() remembers nonces across calls, with or without a revocation list', () => {
    const { leaf } = chain();
    const call = callWith(leaf.token, sub.secretKey, 5, Date.now());
    expect(verify(leaf.token, { keys: [issuer.publicKey], revoked: [], ...call }).code).toBe('ok');
    expect(verify(leaf.token, { keys: [issuer.publicKey], ...call }).code).toBe('replay');
    expect(verify(leaf.token, { keys: [issuer.publicKey], revoked: [], ...call }).code).toBe('replay');
  });

  it('verifyBatch takes no proof: bound tokens in a batch are bad_proof', () => {
    const { leaf } = chain();
    const unbound = mint({ key: issuer.secretKey, tool: TOOL, ttl: 60, now: T0 });
    const verifier = createVerifier({ keys: [issuer.publicKey], clock: () => T0 * 1000 });
    expect(verifier.verifyBatch([leaf.token, unbound.token], { tool: TOOL }).map((d) => [d.code, d.detail])).toEqual([['bad_proof', 'Missing'], ['ok', undefined]]);
    expect(() => verifier.verifyBatch([leaf.token], { tool: TOOL, proof: 'cfp1.x' } as never)).toThrow(/verify holder-bound tokens one by one/);
  });

  it('maxDepth is checked and applied', () => {
    const { leaf, mid } = chain();
    expect(() => createVerifier({ keys: [issuer.publicKey], maxDepth: 17 })).toThrow(/maxDepth must be a whole number from 0 to 16/);
    const one = createVerifier({ keys: [issuer.publicKey], maxDepth: 1, clock: () => T0 * 1000 });
    expect(one.maxDepth).toBe(1);
    expect(one.verify(mid.token, callWith(mid.token, executor.secretKey, 5)).code).toBe('ok');
    expect(one.verify(leaf.token, callWith(leaf.token, sub.secretKey, 5))).toMatchObject({ code: 'delegation_invalid', detail: 'TooDeep', link: 1 });
  });
});
