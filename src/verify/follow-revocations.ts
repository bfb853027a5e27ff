/** `followRevocations`: an existing verifier follows a store's revocation feed (SPEC §7). */
import { CapframeError } from '../errors.js';
import { follow, openRevocationSource, type Following } from '../store/follow.js';
import type { OnStoreFailure, RevocationSource, StoreLog } from '../store/types.js';
import { feedSideOf, type Verifier } from './verifier.js';

export interface FollowRevocationsOptions {
  /** While the feed is down after it loaded: 'deny' (default) or 'use_cached'. */
  onStoreFailure?: OnStoreFailure;
  log?: StoreLog;
}

/**
 * Makes `verifier` follow `source` — a state directory, a `redis://`/`rediss://` URL,
 * or a store from `openStore()` — and resolves once every existing revocation is
 * applied. Until then, and while the feed is down, the verifier denies every call
 * `internal_error` (unless `onStoreFailure: 'use_cached'` after the first load).
 * `verifier.close()` (or the returned `close()`) stops following.
 *
 * @example
 * const verifier = createVerifier({ keys: [issuerPublicKey] });
 * await followRevocations(verifier, process.env.CAPFRAME_REDIS_URL ?? '.capframe');
 * capframeGuard(server, { verifier, prefix: 'database.' });
 */
export async function followRevocations(verifier: Verifier, source: string | RevocationSource, options: FollowRevocationsOptions = {}): Promise<Following> {
  const side = feedSideOf(verifier);
  const onStoreFailure = options.onStoreFailure ?? 'deny';
  if (onStoreFailure !== 'deny' && onStoreFailure !== 'use_cached') {
    throw new CapframeError('invalid_argument', `followRevocations: onStoreFailure must be 'deny' or 'use_cached', got ${String(onStoreFailure)}`);
  }
  const opened = typeof source === 'string' ? openRevocationSource(source, options.log === undefined ? {} : { log: options.log }) : undefined;
  const from = opened ?? (source as RevocationSource);
  if (typeof from?.followRevocations !== 'function') {
    throw new CapframeError('invalid_argument', 'followRevocations: source must be a state directory, a redis:// URL or a store from openStore()');
  }
  const following = follow(side.target(), from, { onStoreFailure, ...(options.log !== undefined && { log: options.log }) }, opened === undefined ? undefined : () => opened.close());
  side.attach(following);
  await following.ready;
  return following;
}
