/**
 * The fail-open of issue 10: `verify()` and `createVerifier().verify()` answered `ok`
 * for a holder-bound token (`cnf`) presented without a proof, and for a token whose
 * `prf` chain nobody had verified. Both must deny in a call context.
 */
import { describe, expect, it } from 'vitest';

import { createVerifier, generateKeyPair, mint, verify } from '../../src/index.js';

const issuer = generateKeyPair();
const holder = generateKeyPair();

describe('a holder-bound or delegated token is never ok without its proof and chain', () => {
  const bound = mint({ key: issuer.secretKey, tool: 'payments.refund', ttl: 60, holderKey: holder.publicKey });
  const call = { tool: 'payments.refund', args: { amount: 5 } };

  it('verify(): a bound token without a proof is bad_proof', () => {
    expect(verify(bound.token, { keys: [issuer.publicKey], ...call })).toMatchObject({ allowed: false, code: 'bad_proof' });
    expect(verify(bound.token, { keys: [issuer.publicKey], revoked: [], ...call })).toMatchObject({ allowed: false, code: 'bad_proof' });
  });

  it('createVerifier().verify(): a bound token without a proof is bad_proof, also on a repeat presentation', () => {
    const verifier = createVerifier({ keys: [issuer.publicKey] });
    expect(verifier.verify(bound.token, call)).toMatchObject({ allowed: false, code: 'bad_proof' });
    expect(verifier.verify(bound.token, call)).toMatchObject({ allowed: false, code: 'bad_proof' });
    expect(verifier.verifyBatch([bound.token], call)[0]).toMatchObject({ allowed: false, code: 'bad_proof' });
  });

  it('a token carrying a prf that the issuer signed directly is not ok', () => {
    // Signed by the trusted issuer, but its "parent" is just bytes nobody checked.
    const parent = mint({ key: generateKeyPair().secretKey, tool: '*', ttl: 60, holderKey: holder.publicKey });
    const child = mint({ key: issuer.secretKey, tool: 'payments.refund', ttl: 60, parent: parent.bytes, holderKey: holder.publicKey });
    const verifier = createVerifier({ keys: [issuer.publicKey] });
    expect(verifier.verify(child.token, call).allowed).toBe(false);
    expect(verifier.verify(child.token).allowed).toBe(false);
    expect(verify(child.token, { keys: [issuer.publicKey], ...call }).allowed).toBe(false);
  });
});
