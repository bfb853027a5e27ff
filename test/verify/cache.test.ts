/**
 * The caches never change an answer (issue 13, acceptance 2): a token verified once —
 * its verdict cached by the backend, its claims by the verifier, and its repeat
 * presentations answered without calling into the backend at all — is denied as soon as
 * it is revoked, expires, is not yet valid, fails a constraint, names another tool, or
 * loses its key. On the active backend (the suite runs once per backend).
 */
import { describe, expect, it } from 'vitest';

import { activeBackend } from '../../src/backend/select.js';
import { generateKeyPair, signingKey } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';
import { createVerifier } from '../../src/verify/verifier.js';
import { verify } from '../../src/verify/verify.js';

const key = signingKey(new Uint8Array(32).fill(21));
const NOW = 1_800_000_000_000;
const TOOL = 'payments.refund';
const when = [{ arg: 'amount', op: '<=', value: 50 }];

function setup(options: { nbf?: number } = {}) {
  let now = NOW;
  const verifier = createVerifier({ keys: [key.publicKey], clock: () => now });
  const minted = mint({ key, tool: TOOL, ttl: 600, now: NOW / 1000 - 1, when, ...(options.nbf !== undefined && { notBefore: options.nbf }) });
  const call = (args: unknown = { amount: 20 }, tool = TOOL) => verifier.verify(minted.token, { tool, args });
  return { verifier, minted, call, at: (ms: number) => (now = ms) };
}

describe(`cached tokens on the ${activeBackend().name} backend`, () => {
  it('a cached token revoked afterwards is denied at once, however often it was presented', () => {
    const { verifier, minted, call } = setup();
    for (let i = 0; i < 5; i++) expect(call().code).toBe('ok');
    expect(verifier.revoke(minted.id)).toBe(true);
    expect(call()).toMatchObject({ allowed: false, code: 'revoked' });
    expect(call()).toMatchObject({ allowed: false, code: 'revoked' });
  });

  it('a cached token is expired at exp, to the millisecond, and stays so', () => {
    const { minted, call, at } = setup();
    expect(call().code).toBe('ok');
    at(minted.claims.exp * 1000 - 1);
    expect(call().code).toBe('ok');
    at(minted.claims.exp * 1000);
    expect(call().code).toBe('expired');
    at(minted.claims.exp * 1000 + 5000);
    expect(call().code).toBe('expired');
  });

  it('a token valid from nbf is not yet valid again if the clock goes back', () => {
    const nbf = NOW / 1000 + 10;
    const { call, at } = setup({ nbf });
    expect(call().code).toBe('not_yet_valid');
    at(nbf * 1000);
    expect(call().code).toBe('ok');
    expect(call().code).toBe('ok');
    at(nbf * 1000 - 1);
    expect(call().code).toBe('not_yet_valid');
  });

  it('constraints and the tool are checked on every presentation', () => {
    const { call } = setup();
    expect(call().code).toBe('ok');
    expect(call({ amount: 51 }).code).toBe('constraint_failed');
    expect(call({}).code).toBe('constraint_failed');
    expect(call({ amount: 20 }, 'payments.charge').code).toBe('tool_mismatch');
    expect(call().code).toBe('ok');
  });

  it('a removed key drops what was cached under it; a revocation of another token changes nothing', () => {
    const { verifier, call } = setup();
    expect(call().code).toBe('ok');
    verifier.revoke(mint({ key, tool: TOOL, ttl: 60 }).id);
    expect(call().code).toBe('ok');
    verifier.removeKey(verifier.addKey(key.publicKey));
    expect(call().code).toBe('unknown_key');
  });

  it('public verify(): a key changed in place is another key; revoked ids apply to cached tokens', () => {
    const token = mint({ key, tool: TOOL, ttl: 600, when }).token;
    const keys = [Uint8Array.from(key.publicKey)];
    const context = { tool: TOOL, args: { amount: 20 } };
    for (let i = 0; i < 3; i++) expect(verify(token, { keys, ...context }).code).toBe('ok');
    expect(verify(token, { keys: [key.publicKey], ...context }).code).toBe('ok');
    keys[0]!.set(generateKeyPair().publicKey);
    expect(verify(token, { keys, ...context }).code).toBe('unknown_key');
    expect(verify(token, { keys: [key.publicKey], ...context }).code).toBe('ok');
    expect(verify(token, { keys: [key.publicKey], revoked: [mint({ key, tool: TOOL, ttl: 1 }).id, tokenIdOf(token)], ...context }).code).toBe('revoked');
    expect(verify(token, { keys: [key.publicKey], ...context, args: { amount: 99 } }).code).toBe('constraint_failed');
  });
});

function tokenIdOf(token: string): string {
  const d = verify(token, { keys: [key.publicKey] });
  return d.tokenId!;
}
