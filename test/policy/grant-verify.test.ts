/**
 * Issue acceptance 4: a token minted under a rule with constraints carries
 * them in its "when" claim, so a service holding only the public key denies a
 * call that breaks them (constraint_failed), on every backend that loads.
 */
import { describe, expect, it } from 'vitest';

import { jsBackend } from '../../src/backend/js.js';
import { loadNativeBackend } from '../../src/backend/native.js';
import type { Backend } from '../../src/backend/types.js';
import { generateKeyPair } from '../../src/keys/keys.js';
import { parsePolicy, type Grant } from '../../src/policy/index.js';
import { mint } from '../../src/token/mint.js';
import { createVerifier } from '../../src/verify/verifier.js';

function backends(): Backend[] {
  try {
    return [jsBackend, loadNativeBackend().backend];
  } catch {
    return [jsBackend];
  }
}

const policy = parsePolicy(`capframe:
  version: "0.2"
  capabilities:
    small-refund:
      when:
        - { arg: amount, op: "<=", value: 50 }
        - { arg: currency, op: in, value: [EUR, USD] }
  rules:
    - tool: payments.refund
      capability: small-refund
      ttl: 60
      when: [{ arg: reason, op: max_length, value: 20 }]
    - tool: files.read
      when: [{ arg: path, op: path_within, value: /srv/app }]
`);

describe.each(backends().map((b) => [b.name, b] as const))('grant → mint → verify (%s backend)', (_name, backend) => {
  const pair = generateKeyPair();
  const verifier = createVerifier({ keys: [pair.publicKey], backend });

  function tokenFor(tool: string): string {
    const grant = policy.grant({ tool }) as Grant;
    expect(grant.ttl).toBeGreaterThan(0);
    const options: Parameters<typeof mint>[0] = { key: pair.secretKey, tool, ttl: grant.ttl, when: grant.when };
    if (grant.capability !== undefined) options.capability = grant.capability;
    return mint(options).token;
  }

  it('enforces the rule and capability constraints copied into the token', () => {
    const token = tokenFor('payments.refund');
    const ok = { amount: 20, currency: 'EUR', reason: 'late' };
    expect(verifier.verify(token, { tool: 'payments.refund', args: ok }).allowed).toBe(true);
    for (const args of [
      { ...ok, amount: 51 },
      { ...ok, amount: '20' },
      { ...ok, amount: [20] },
      { ...ok, currency: 'JPY' },
      { ...ok, reason: 'x'.repeat(21) },
      { amount: 20, currency: 'EUR' },
    ]) {
      expect(verifier.verify(token, { tool: 'payments.refund', args })).toMatchObject({ allowed: false, code: 'constraint_failed' });
    }
  });

  it('enforces path_within from the token alone', () => {
    const token = tokenFor('files.read');
    expect(verifier.verify(token, { tool: 'files.read', args: { path: '/srv/app/a.txt' } }).allowed).toBe(true);
    expect(verifier.verify(token, { tool: 'files.read', args: { path: '/srv/app/%2e%2e/etc/passwd' } }).code).toBe('constraint_failed');
    expect(verifier.verify(token, { tool: 'files.read', args: { path: '/srv/app-shadow/x' } }).code).toBe('constraint_failed');
  });
});
