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
  /**
   * For programs, when the code has one: the precise reason, e.g. `Truncated` for a
   * malformed token, `WrongSigner` for an invalid delegation, `Stale` or `Missing`
   * for a bad proof (the names in `token/codes.ts`: Malformed, Delegation, ProofFailure).
   */
  detail?: string;
  /** Present when the token's signature verified (even if it is expired or revoked). */
  claims?: Claims;
  /** `tok_…` id, when the token could be read. */
  tokenId?: string;
  expiresAt?: Date;
  /**
   * The verified links of the token, the presented token first (`claims`) and its
   * root last: one entry for a token that is not delegated. Present with `claims`.
   */
  chain?: readonly Claims[];
  /** The raw 32-byte Ed25519 key the presented token is bound to (its `cnf`), when it is holder-bound. */
  holderKey?: Uint8Array;
  /**
   * For a delegated token, which link the answer is about: 0 is the presented
   * token, 1 its parent (in `prf`), and so on up to the root.
   */
  link?: number;
}

export function deny(code: DecisionCode, reason: string, extra?: Partial<Decision>): Decision {
  return { allowed: false, code, reason, ...extra };
}
