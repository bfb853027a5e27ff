/** The result of verifying a token: a decision, never an exception. */
import type { Claims } from '../token/claims.js';

/**
 * Stable reason codes (SPEC §6). `verify()` produces the token-level ones; the proxy
 * adds the policy, agent, rate-limit and upstream ones.
 */
export type DecisionCode =
  | 'ok'
  | 'missing_token'
  | 'malformed_token'
  | 'bad_signature'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'tool_mismatch'
  | 'constraint_failed'
  | 'no_rule'
  | 'denied_by_rule'
  | 'agent_unknown'
  | 'agent_not_allowed'
  | 'rate_limited'
  | 'replay'
  | 'bad_proof'
  | 'delegation_invalid'
  | 'tool_changed'
  | 'upstream_unavailable'
  | 'internal_error';

export interface Decision {
  allowed: boolean;
  code: DecisionCode;
  /** For people: what was decided and why. */
  reason: string;
  /** Present when the token's signature verified (even if it is expired or revoked). */
  claims?: Claims;
  /** `tok_…` id, when the token could be read. */
  tokenId?: string;
  expiresAt?: Date;
}

export function deny(code: DecisionCode, reason: string, extra?: Partial<Decision>): Decision {
  return { allowed: false, code, reason, ...extra };
}
