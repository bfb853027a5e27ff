/**
 * A verifier following a revocation feed (SPEC §7): the embedded store's log (file
 * watch) or the Redis store's set and channel (pub/sub), so revocation reaches every
 * service and guard, not only the proxies.
 *
 * Fail closed: until the feed has delivered every existing revocation, and while it
 * cannot (disconnected, unreadable), the verifier denies every call with
 * `internal_error` — except that under `use_cached` a feed that was loaded once keeps
 * serving with the last revocation set it knew.
 */
import { statSync } from 'node:fs';

import { CapframeError } from '../errors.js';
import { openFileStore } from './file-store.js';
import { createRedisStore } from './redis-store.js';
import { redactRedisUrl } from './redis-url.js';
import type { OnStoreFailure, RevocationSource, StoreLog } from './types.js';

/** What a feed drives in a verifier. */
export interface FeedTarget {
  revokeMany(ids: Uint8Array): void;
  /** While `reason` is set, every call is denied `internal_error` with it; undefined lifts the block. */
  block(reason: string | undefined): void;
}

export interface FollowOptions {
  /** While the feed is down after it loaded once: 'deny' (default) or 'use_cached'. */
  onStoreFailure?: OnStoreFailure;
  log?: StoreLog;
}

/** A running follow. */
export interface Following {
  readonly location: string;
  /** Resolves once every existing revocation is applied. */
  readonly ready: Promise<void>;
  /** Whether the feed is current now, and why not. */
  state(): { current: boolean; reason?: string };
  close(): Promise<void>;
}

/** A source given as text: a `redis://`/`rediss://` URL, or a state directory. The caller owns (closes) what this opens. */
export function openRevocationSource(ref: string, options: { log?: StoreLog } = {}): RevocationSource & { close(): Promise<void> } {
  if (typeof ref !== 'string' || ref.trim() === '') {
    throw new CapframeError('invalid_argument', 'revocations: expected a redis:// or rediss:// URL, a state directory, or a store from openStore()');
  }
  if (/^rediss?:\/\//i.test(ref)) {
    return createRedisStore({ url: ref, longLived: true, ...(options.log !== undefined && { log: options.log }) });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    throw new CapframeError('invalid_argument', `revocations: ${redactRedisUrl(ref)} is not a redis:// or rediss:// URL`);
  }
  let isDir = false;
  try {
    isDir = statSync(ref).isDirectory();
  } catch {
    isDir = false;
  }
  // A mistyped directory would be followed forever with nothing revoked: refuse it.
  if (!isDir) throw new CapframeError('invalid_argument', `revocations: ${ref} is not a directory; give the state directory that holds revocations.log (e.g. .capframe)`);
  return openFileStore(ref, options.log === undefined ? {} : { log: options.log });
}

/**
 * Feeds `source`'s revocations into `target` and blocks it while they may be incomplete.
 * `onClose` runs after the feed stops (to close a source opened for it).
 */
export function follow(target: FeedTarget, source: RevocationSource, options: FollowOptions = {}, onClose?: () => Promise<void>): Following {
  const useCached = options.onStoreFailure === 'use_cached';
  let loaded = false;
  let current = false;
  let reason: string | undefined = 'not loaded yet';
  const where = source.location;
  target.block(`revocations from ${where} are not loaded yet; calls are denied until they are`);
  const feed = source.followRevocations({
    onRevoked: (ids) => target.revokeMany(ids),
    onState(now, why) {
      current = now;
      reason = now ? undefined : why;
      if (now) {
        if (loaded === false) options.log?.info('revocations loaded', { store: where });
        loaded = true;
        target.block(undefined);
      } else if (!loaded) {
        target.block(`revocations from ${where} are not loaded yet (${why ?? 'connecting'}); calls are denied until they are`);
      } else if (useCached) {
        target.block(undefined);
      } else {
        target.block(`the revocation store ${where} is unreachable (${why ?? 'disconnected'}); calls are denied until it is back (on_store_failure: deny)`);
      }
    },
  });
  return {
    location: where,
    ready: feed.ready,
    state: () => (current ? { current } : { current, ...(reason !== undefined && { reason }) }),
    async close() {
      await feed.close();
      await onClose?.();
    },
  };
}
