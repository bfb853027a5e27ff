/**
 * Holder keys, agents and proofs for the delegation tests through `capframe serve`:
 * a policy with agents that each have an API key and a holder key, tokens bound to
 * those keys, and proofs — honest ones, and the forged ones an attacker would send.
 */
import { randomBytes } from 'node:crypto';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';

import { generateKeyPair, signingKey, type KeyPair } from '../../src/keys/keys.js';
import { encodeCbor } from '../../src/lib/cbor/encode.js';
import { PROOF_META_KEY, TOKEN_META_KEY } from '../../src/mcp/meta.js';
import { signPayload } from '../../src/token/mint.js';
import { parseToken } from '../../src/token/parse.js';
import { fromPrintable } from '../../src/token/printable.js';
import { PROOF_PREFIX, proofArgsHash, ProofKey } from '../../src/token/proof-format.js';
import { createProof, type ProofOptions } from '../../src/token/proof.js';
import { sha256Hex, textOf } from './e2e-helpers.js';

/** An agent of the test policy: its API key and its holder key pair. */
export interface TestAgent {
  name: string;
  apiKey: string;
  holder: KeyPair;
  /** The holder public key in hex, as the policy lists it. */
  publicHex: string;
}

export function testAgent(name: string): TestAgent {
  const holder = generateKeyPair();
  return { name, apiKey: `cfk_${randomBytes(24).toString('base64url')}`, holder, publicHex: Buffer.from(holder.publicKey).toString('hex') };
}

/** The policy's `agents:` section for these agents, each holding its own key. */
export function agentsSection(agents: TestAgent[]): Record<string, unknown> {
  return Object.fromEntries(agents.map((a) => [a.name, { key_sha256: sha256Hex(a.apiKey), holder_keys: [a.publicHex] }]));
}

/** `_meta` with the token and a proof by `key` for this very call. */
export function proved(token: string, key: Uint8Array, tool: string, args: Record<string, unknown>, more: Partial<ProofOptions> = {}): Record<string, string> {
  return { [TOKEN_META_KEY]: token, [PROOF_META_KEY]: createProof({ token, tool, args, key, ...more }).proof };
}

/**
 * A proof about `token` and this call, well-formed and fresh, but signed by `key`,
 * which is not the token's holder key (createProof refuses to make one).
 */
export function forgedProof(token: string, key: Uint8Array, tool: string, args: Record<string, unknown>): string {
  const cti = parseToken(fromPrintable(token)!).cti;
  const payload = encodeCbor(
    new Map<number, unknown>([
      [ProofKey.cti, cti],
      [ProofKey.tool, tool],
      [ProofKey.args, proofArgsHash(args)],
      [ProofKey.iat, Date.now()],
      [ProofKey.nonce, new Uint8Array(randomBytes(16))],
    ]),
  );
  return PROOF_PREFIX + Buffer.from(signPayload(signingKey(key), payload)).toString('base64url');
}

export async function callMeta(client: Client, tool: string, args: Record<string, unknown>, meta: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name: tool, arguments: args, _meta: meta })) as CallToolResult;
}

/** A token bound to `holderHex` from the proxy's `capframe.request_token`, which must grant it. */
export async function requestBound(client: Client, tool: string, holderHex: string, ttl?: number): Promise<{ token: string; id: string; holder_key: string }> {
  const issued = (await client.callTool({ name: 'capframe.request_token', arguments: { tool, holder_key: holderHex, ...(ttl !== undefined && { ttl }) } })) as CallToolResult;
  expect(issued.isError ?? false, textOf(issued)).toBe(false);
  return issued.structuredContent as { token: string; id: string; holder_key: string };
}

/** The printable form of token bytes. */
export const printable = (bytes: Uint8Array): string => `cf1.${Buffer.from(bytes).toString('base64url')}`;
