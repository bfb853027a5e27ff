/**
 * Minting what a policy grants: the one recipe behind `capframe mint`,
 * `capframe.request_token`, `POST /v1/tokens` and auto_mint.
 */
import type { SigningKey } from '../keys/keys.js';
import type { Decision, Grant, Policy } from '../policy/types.js';
import { mint, type MintedToken } from './mint.js';

export interface GrantRequest {
  tool: string;
  agent?: string;
  capability?: string;
  /** Requested lifetime in seconds; the rule's TTL caps it. */
  ttl?: number;
  /** Bind the token to this holder key (raw 32-byte Ed25519 public key): every call then needs a proof by it. */
  holderKey?: Uint8Array;
}

/**
 * Mints a token for `request` if the policy grants it: the rule's TTL caps the
 * lifetime, and the rule's and capability's constraints go into the `when` claim.
 * Returns the policy's denial otherwise (the key is read only when a grant is made).
 */
export function mintGranted(policy: Policy, key: () => SigningKey, request: GrantRequest): { minted: MintedToken; grant: Grant } | Decision {
  const { tool, agent, capability, ttl, holderKey } = request;
  const grant = policy.grant({ tool, ...(agent !== undefined && { agent }), ...(capability !== undefined && { capability }) });
  if ('allowed' in grant) return grant;
  const granted = grant.capability ?? capability;
  const minted = mint({
    key: key(),
    tool,
    ttl: Math.min(ttl ?? grant.ttl, grant.ttl),
    ...(agent !== undefined && { agent }),
    ...(granted !== undefined && { capability: granted }),
    ...(grant.when.length > 0 && { when: grant.when }),
    ...(policy.issuer !== undefined && { issuer: policy.issuer }),
    ...(holderKey !== undefined && { holderKey }),
  });
  return { minted, grant };
}
