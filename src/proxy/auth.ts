/**
 * Agent authentication: `Authorization: Bearer <agent API key>` checked against the
 * policy's `key_sha256` values in constant time (SPEC §6).
 */
import { hash, timingSafeEqual } from 'node:crypto';

import { sameSecret } from '../lib/same-secret.js';
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

const OPEN: AuthResult = Object.freeze({ kind: 'open' });

/**
 * Each policy's agents with their key digests decoded, made once per policy object: a
 * reload makes a new one, so a removed key stops working at once.
 */
const expectedDigests = new WeakMap<Policy, { name: string; digest: Buffer; result: AuthResult }[]>();

function agentsOf(policy: Policy): { name: string; digest: Buffer; result: AuthResult }[] {
  let list = expectedDigests.get(policy);
  if (list === undefined) {
    list = Object.entries(policy.agents).map(([name, agent]) => ({ name, digest: Buffer.from(agent.keySha256, 'hex'), result: Object.freeze({ kind: 'agent' as const, agent: name }) }));
    expectedDigests.set(policy, list);
  }
  return list;
}

export function authenticate(policy: Policy, key: string | undefined): AuthResult {
  const agents = agentsOf(policy);
  if (agents.length === 0) return OPEN;
  if (key === undefined) return { kind: 'rejected', reason: 'this proxy requires an agent API key (Authorization: Bearer …)' };
  const presented = hash('sha256', key, 'buffer');
  let found: AuthResult | undefined;
  // Compare against every agent, so timing does not say which one (or whether any) matched.
  for (const agent of agents) {
    if (agent.digest.length === presented.length && timingSafeEqual(agent.digest, presented) && found === undefined) found = agent.result;
  }
  return found ?? { kind: 'rejected', reason: 'the agent API key is not known to this policy' };
}

/** Who may ask the AuthZEN decision API: the operator (admin key) or an agent whose policy entry has `pdp: true`. */
export type PepAuth = { kind: 'admin' } | { kind: 'pep'; agent: string } | { kind: 'rejected'; reason: string };

/**
 * Authenticates a policy enforcement point: `CAPFRAME_ADMIN_KEY`, or the key of an agent
 * with `pdp: true`. Without agents in the policy only the admin key works.
 *
 * @example
 * authenticatePep(policy, bearerOf(req.headers.authorization), process.env.CAPFRAME_ADMIN_KEY); // { kind: 'pep', agent: 'gateway' }
 */
export function authenticatePep(policy: Policy, key: string | undefined, adminKey: string | undefined): PepAuth {
  if (key === undefined) return { kind: 'rejected', reason: 'send Authorization: Bearer <key of an agent with pdp: true, or CAPFRAME_ADMIN_KEY>' };
  // Both checks always run, so timing does not say which kind of key was presented.
  const admin = sameSecret(key, adminKey);
  const agent = Object.keys(policy.agents).length > 0 ? authenticate(policy, key) : undefined;
  if (admin) return { kind: 'admin' };
  if (agent?.kind === 'agent') {
    if (policy.agents[agent.agent]?.pdp === true) return { kind: 'pep', agent: agent.agent };
    return { kind: 'rejected', reason: `agent "${agent.agent}" may not use the decision API; set pdp: true on it in the policy` };
  }
  return { kind: 'rejected', reason: 'the key is neither CAPFRAME_ADMIN_KEY nor the key of an agent with pdp: true' };
}
