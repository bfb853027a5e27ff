/**
 * The policy's delegation keys: `max_delegation_depth` (default 4) and each agent's
 * `holder_keys`, the keys whose delegated tokens that agent may present.
 */
import { describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { generateKeyPair } from '../../src/keys/keys.js';
import { encodeBase64url } from '../../src/lib/base64url.js';
import { parsePolicy } from '../../src/policy/index.js';

const HEX = 'ab'.repeat(32);
const holder = generateKeyPair().publicKey;

function errorOf(text: string): string {
  try {
    parsePolicy(text);
  } catch (error) {
    if (error instanceof CapframeError) return error.message;
    throw error;
  }
  throw new Error('expected the policy to be refused');
}

describe('delegation keys in the policy', () => {
  it('max_delegation_depth defaults to 4 and takes 0 to 16', () => {
    expect(parsePolicy('capframe:\n  version: "0.2"\n').maxDelegationDepth).toBe(4);
    expect(parsePolicy('capframe:\n  version: "0.2"\n  max_delegation_depth: 0\n').maxDelegationDepth).toBe(0);
    expect(parsePolicy('capframe:\n  version: "0.2"\n  max_delegation_depth: 16\n').maxDelegationDepth).toBe(16);
    for (const bad of ['17', '-1', '2.5', '"4"']) {
      expect(errorOf(`capframe:\n  version: "0.2"\n  max_delegation_depth: ${bad}\n`)).toMatch(/:3:\d+: .*(max_delegation_depth must be a whole number from 0|expected a number)/);
    }
  });

  it('agents name their holder keys in hex or base64url; they are kept as lowercase hex', () => {
    const hex = Buffer.from(holder).toString('hex');
    const policy = parsePolicy(`capframe:
  version: "0.2"
  agents:
    executor: { key_sha256: "${HEX}", holder_keys: ["${hex.toUpperCase()}", "${encodeBase64url(holder)}"] }
    planner: { key_sha256: "${HEX}" }
`);
    expect(policy.agents.executor!.holderKeys).toEqual([hex, hex]);
    expect(policy.agents.planner!.holderKeys).toEqual([]);
  });

  it('refuses holder keys that are not usable public keys, naming the line', () => {
    const message = errorOf(`capframe:
  version: "0.2"
  agents:
    executor:
      key_sha256: "${HEX}"
      holder_keys:
        - "${Buffer.from(holder).toString('hex')}"
        - "0100000000000000000000000000000000000000000000000000000000000000"
        - "not-a-key"
`);
    expect(message).toMatch(/:8:\d+: .*not a usable Ed25519 holder key/);
    expect(message).toMatch(/:9:\d+: .*32 bytes/);
    expect(errorOf(`capframe:\n  version: "0.2"\n  agents:\n    x: { key_sha256: "${HEX}", holder_keys: [] }\n`)).toMatch(/at least one public key/);
  });
});
