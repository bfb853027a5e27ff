/**
 * AuthZEN with holder-bound tokens (after the proxy verifies proofs): `context.proof` is
 * checked exactly as in the proxy — the right proof permits, the same proof again is a
 * replay, a missing one is bad_proof, and a token bound to a key the subject does not
 * hold is agent_not_allowed.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateKeyPair, signingKey } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';
import { createProof } from '../../src/token/proof.js';
import { tempDir } from '../helpers.js';
import { killAllServed, startServe, type Served } from '../proxy/faults-helpers.js';

const PEP = 'cfk_pep-proofs';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const holder = generateKeyPair();
const stranger = generateKeyPair();
let dir: string;
let served: Served;

beforeAll(async () => {
  dir = tempDir('capframe-authzen-proofs-');
  writeFileSync(
    join(dir, 'policy.yaml'),
    `capframe:
  version: "0.2"
  agents:
    gateway: { key_sha256: "${sha(PEP)}", pdp: true }
    bot: { key_sha256: "${sha('cfk_bot')}", holder_keys: ["${Buffer.from(holder.publicKey).toString('hex')}"] }
  rules:
    - { tool: payments.refund, agents: [bot], ttl: 60 }
`,
  );
  served = await startServe(join(dir, 'policy.yaml'));
});
afterAll(() => {
  killAllServed();
  rmSync(dir, { recursive: true, force: true });
});

async function ask(token: string, proof?: string) {
  const res = await fetch(`${served.base}/access/v1/evaluation`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PEP}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      subject: { type: 'agent', id: 'bot' },
      action: { name: 'tools/call' },
      resource: { type: 'mcp_tool', id: 'payments.refund', properties: { arguments: { amount: 5 } } },
      context: { token, ...(proof !== undefined && { proof }) },
    }),
  });
  return ((await res.json()) as { context: { code: string } }).context.code;
}

describe('AuthZEN and holder proofs', () => {
  it('permits with the holder\'s proof once; replay, missing proof and a foreign holder key are denied', async () => {
    const key = signingKey(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8'));
    const bound = mint({ key, tool: 'payments.refund', agent: 'bot', ttl: 60, holderKey: holder.publicKey }).token;
    const proof = createProof({ token: bound, tool: 'payments.refund', args: { amount: 5 }, key: holder.secretKey }).proof;
    expect(await ask(bound, proof)).toBe('ok');
    expect(await ask(bound, proof)).toBe('replay');
    expect(await ask(bound)).toBe('bad_proof');
    const foreign = mint({ key, tool: 'payments.refund', agent: 'bot', ttl: 60, holderKey: stranger.publicKey }).token;
    expect(await ask(foreign, createProof({ token: foreign, tool: 'payments.refund', args: { amount: 5 }, key: stranger.secretKey }).proof)).toBe('agent_not_allowed');
  });
});
