/**
 * Agent authentication: `Authorization: Bearer <agent API key>` checked against the
 * policy's `key_sha256` values in constant time (SPEC §6).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import type { Policy } from '../policy/types.js';

export type AuthResult =
  /** The policy defines no agents: the token alone authorizes (pure capability model). */
  | { kind: 'open' }
  | { kind: 'agent'; agent: string }
  | { kind: 'rejected'; reason: string };

/**
 * The bearer credential of an `Authorization` header, if there is exactly one. Pass every
 * value the request carried (`req.headersDistinct.authorization`): Node keeps only the
 * first of two, and a layer in front may read the other, so two are no credential.
 *
 * @example
 * bearerOf(['Bearer cfk_abc']); // 'cfk_abc'
 * bearerOf(['Bearer cfk_abc', 'Bearer cfk_other']); // undefined
 */
export function bearerOf(header: string | string[] | undefined): string | undefined {
  if (Array.isArray(header) && header.length !== 1) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value ?? '');
  return match?.[1];
}

export function authenticate(policy: Policy, key: string | undefined): AuthResult {
  const agents = Object.entries(policy.agents);
  if (agents.length === 0) return { kind: 'open' };
  if (key === undefined) return { kind: 'rejected', reason: 'this proxy requires an agent API key (Authorization: Bearer …)' };
  const presented = createHash('sha256').update(key, 'utf8').digest();
  let found: string | undefined;
  // Compare against every agent, so timing does not say which one (or whether any) matched.
  for (const [name, agent] of agents) {
    const expected = Buffer.from(agent.keySha256, 'hex');
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && found === undefined) found = name;
  }
  return found === undefined ? { kind: 'rejected', reason: 'the agent API key is not known to this policy' } : { kind: 'agent', agent: found };
}
