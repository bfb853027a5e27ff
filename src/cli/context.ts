/**
 * Where CLI commands find the policy, the keys and the store.
 *
 * The state directory (keys, and the embedded store) is the policy's `state_dir` when
 * `--policy` is given, else `--state-dir`, else `CAPFRAME_STATE_DIR`, else `.capframe` in
 * the working directory. The store is Redis when the policy says `store: redis://…` or,
 * failing that, `CAPFRAME_REDIS_URL` is set; otherwise the embedded file store.
 */
import { resolve } from 'node:path';

import { loadPolicy } from '../policy/index.js';
import type { Policy } from '../policy/types.js';
import { openKeyStore, type KeyStore } from '../store/keys.js';
import { openStore, redisUrlOf, storeOptionsFor } from '../store/open.js';
import type { Store } from '../store/types.js';

export interface StoreOptions {
  policy?: string;
  stateDir?: string;
}

export interface CliContext {
  keys: KeyStore;
  policy?: Policy;
  /** Where the Redis URL came from, when the store is Redis. */
  storeFrom?: 'policy' | 'CAPFRAME_REDIS_URL';
}

/** The policy (when `--policy` is given) and the keys of its state directory; no store is opened. */
export async function openKeys(options: StoreOptions): Promise<CliContext> {
  if (options.policy !== undefined) {
    const policy = await loadPolicy(options.policy);
    return { keys: openKeyStore(policy.stateDir), policy };
  }
  const dir = options.stateDir ?? process.env.CAPFRAME_STATE_DIR ?? '.capframe';
  return { keys: openKeyStore(resolve(dir)) };
}

/**
 * Runs `work` with the keys and an open store, and closes the store after (a Redis
 * connection would keep the process alive). A Redis store that cannot be reached fails
 * here, before `work` runs, with `store_unavailable` (exit 1).
 */
export async function withStore<T>(options: StoreOptions, work: (ctx: CliContext & { store: Store }) => Promise<T>): Promise<T> {
  const ctx = await openKeys(options);
  const redis = redisUrlOf(ctx.policy);
  const store = await openStore(ctx.policy !== undefined ? storeOptionsFor(ctx.policy) : { stateDir: ctx.keys.stateDir, ...(redis !== undefined && { url: redis.url }) });
  try {
    return await work({ ...ctx, store, ...(redis !== undefined && { storeFrom: redis.from }) });
  } finally {
    await store.close();
  }
}
