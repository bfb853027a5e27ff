/** The public API (SPEC §11) is importable from the package entry, by name. */
import { describe, expect, it } from 'vitest';

import * as capframe from '../src/index.js';

describe('package exports', () => {
  it('names the SPEC §11 API', () => {
    for (const name of ['generateKeyPair', 'mint', 'verify', 'createVerifier', 'delegate', 'createProof', 'createMemoryNonceStore', 'loadPolicy', 'parsePolicy', 'capframeGuard', 'capframeClient', 'decisionOf', 'CapframeError', 'backend']) {
      expect(capframe, name).toHaveProperty(name);
    }
    expect(['native', 'js']).toContain(capframe.backend);
  });

  it('loadPolicy → decide, and a minted token verifies against the grant', () => {
    const policy = capframe.parsePolicy(`capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - tool: "payments.refund"
      ttl: 60
      when: [{ arg: amount, op: "<=", value: 50 }]
`);
    expect(policy.decide({ tool: 'payments.refund', args: { amount: 10 }, token: { tool: 'payments.refund' } }).allowed).toBe(true);
    const grant = policy.grant({ tool: 'payments.refund' });
    if ('allowed' in grant) throw new Error(grant.reason);
    const pair = capframe.generateKeyPair();
    const { token } = capframe.mint({ key: pair.secretKey, tool: 'payments.refund', ttl: grant.ttl, when: grant.when });
    expect(capframe.verify(token, { keys: [pair.publicKey], tool: 'payments.refund', args: { amount: 80 } }).code).toBe('constraint_failed');
  });
});
