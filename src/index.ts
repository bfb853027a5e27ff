/**
 * Capframe: capability tokens and a default-deny policy for MCP tool calls.
 * Everything public is exported here, by name.
 */
export { CapframeError, type ErrorCode } from './errors.js';
export { generateKeyPair, signingKey, parsePublicKey, parseHolderKey, type KeyPair, type SigningKey } from './keys/keys.js';
export { publicJwk, publicJwks, type PublicJwk, type PublicJwkSet } from './keys/jwks.js';
export { mint, type MintOptions, type MintedToken } from './token/mint.js';
export { delegate, type DelegateOptions } from './token/delegate.js';
export { createProof, type CreatedProof, type ProofOptions } from './token/proof.js';
export { toolSubset } from './token/tool-subset.js';
export { decodeClaims, tokenId, type Claims } from './token/claims.js';
export { createVerifier, type StagedDecision, type Verifier, type VerifierOptions, type VerifyContext } from './verify/verifier.js';
export { chainCapability } from './verify/token-facts.js';
export { createMemoryNonceStore, type MemoryNonceStoreOptions, type NonceStore } from './store/nonces.js';
export { DECISION_META_KEY, PROOF_HEADER, PROOF_META_KEY, TOKEN_HEADER, TOKEN_META_KEY } from './mcp/meta.js';
export { verify, type VerifyOptions } from './verify/verify.js';
export type { Decision, DecisionCode } from './verify/decision.js';
export { backendStatus, type BackendStatus } from './backend/select.js';
export { openFileStore, type FileStore } from './store/file-store.js';
export { capframeGuard, type GuardOptions } from './guard.js';
export {
  capframeClient,
  decisionOf,
  type CapframeClient,
  type CapframeClientOptions,
  type ClientDelegateOptions,
  type DelegatedToken,
  type ToolCaller,
  type ToolCallParams,
} from './agent/client.js';
export {
  compileConstraints,
  loadPolicy,
  loadPolicySync,
  parsePolicy,
  watchPolicy,
  type Constraint,
  type DecideInput,
  type Decision as PolicyDecision,
  type Grant,
  type Policy,
  type PolicyWatcher,
  type Rule,
} from './policy/index.js';
export { discover, draftPolicy, type DiscoveryResult, type Finding } from './discover/index.js';
export { verifyAuditLog, openAuditLog, canonicalJson } from './audit/index.js';

import { backendStatus } from './backend/select.js';

/**
 * The active backend, `'native'` or `'js'`, chosen when first read. See
 * `backendStatus()` for why.
 */
export const backend: 'native' | 'js' = backendStatus().name;
