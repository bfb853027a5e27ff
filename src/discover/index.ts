/**
 * Discovery (SPEC §10): map every tool an agent can reach, classify its risk
 * with deterministic rules, pin definitions, and draft a least-privilege policy.
 */
import { dirname } from 'node:path';

import { loadPolicy, type Policy } from '../policy/index.js';
import { discover, type DiscoverProgress } from './discover.js';
import { draftPolicy, type DraftOptions } from './draft-policy.js';
import type { DiscoveryResult } from './types.js';

export { DEFAULT_DISCOVER_TIMEOUT_MS, classifyListings, discover, listServer, riskOf } from './discover.js';
export type { DiscoverOptions, DiscoverProgress, ServerListing } from './discover.js';
export { PLACEHOLDER_ORIGIN, PLACEHOLDER_ROOT, draftPolicy, guessRoot, type DraftOptions } from './draft-policy.js';
export { MITRE_ATLAS, NIST_AI_RMF, OWASP_LLM_2025, RULE_FRAMEWORKS, frameworksFor } from './frameworks.js';
export {
  LOCK_FIELDS,
  LOCK_FILE_NAME,
  compareToLock,
  hashToolDefinition,
  hashToolFields,
  lockEntries,
  mergeLockEntries,
  parseLock,
  readLock,
  readLockSync,
  serializeLock,
  writeLock,
} from './lock.js';
export type { LockDiff, LockEntry, LockField, LockFile } from './lock.js';
export { DISCOVERY_FORMAT, formatTable, toDocument, visible, type DiscoveryDocument } from './report.js';
export { RULE_INFO, TOOL_RULES, classifyTool, shadowingFindings, toolContext } from './rules.js';
export { walkSchema } from './schema-walk.js';
export { words } from './words.js';
export * from './types.js';

/** Options for {@link discoverPolicy} and {@link draftPolicyFromServers}. */
export interface PolicyDiscoveryOptions {
  /** Per-server deadline in ms; default: each server's `timeout`, else 10 s. */
  timeoutMs?: number;
  onProgress?: (event: DiscoverProgress) => void;
}

/**
 * Loads a policy and discovers its `servers` (stdio servers start in the policy's directory).
 *
 * @example
 * const { policy, result } = await discoverPolicy('my-policy.yaml', { timeoutMs: 5000 });
 */
export async function discoverPolicy(policyFile: string, opts: PolicyDiscoveryOptions = {}): Promise<{ policy: Policy; result: DiscoveryResult }> {
  const policy = await loadPolicy(policyFile);
  const result = await discover(policy.servers, {
    cwd: dirname(policy.file),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  return { policy, result };
}

/**
 * Discovers the servers of a policy file and drafts a least-privilege policy
 * (YAML text, commented for review) that keeps its `servers` block. Used by
 * `capframe init --from-discovery`.
 *
 * @example
 * const yaml = await draftPolicyFromServers('my-policy.yaml', { timeoutMs: 10_000 });
 * writeFileSync('my-policy.yaml', yaml);
 */
export async function draftPolicyFromServers(policyFile: string, opts: PolicyDiscoveryOptions & DraftOptions = {}): Promise<string> {
  const { policy, result } = await discoverPolicy(policyFile, opts);
  return draftPolicy(result, policy.servers, {
    source: opts.source ?? policy.file,
    ...(opts.readOnlyTtl !== undefined ? { readOnlyTtl: opts.readOnlyTtl } : {}),
    ...(opts.sideEffectTtl !== undefined ? { sideEffectTtl: opts.sideEffectTtl } : {}),
  });
}
