/**
 * Which store: the policy's `store: redis://…`, else `CAPFRAME_REDIS_URL`, else the
 * embedded file store in the state directory.
 */
import { DEFAULT_TTL } from '../policy/decide.js';
import type { Policy } from '../policy/types.js';
import { openFileStore } from './file-store.js';
import { DEFAULT_REDIS_PREFIX, DEFAULT_REVOCATION_GRACE, openRedisStore } from './redis-store.js';
import type { OnStoreFailure, Store, StoreLog } from './types.js';

export interface OpenStoreOptions {
  /** The embedded store's directory (also where keys live). */
  stateDir: string;
  /** A Redis URL; when absent, `CAPFRAME_REDIS_URL`; when that is unset too, the embedded store. */
  url?: string;
  /** Redis key prefix (default `capframe:`). */
  prefix?: string;
  onStoreFailure?: OnStoreFailure;
  /** Longest token lifetime of the deployment (s): how long a revoked unknown id is kept in Redis. */
  maxTtlSeconds?: number;
  /** Seconds a Redis revocation outlives its token (default 60). */
  graceSeconds?: number;
  /** serve and services: reconnect forever; the CLI: fail at once (default). */
  longLived?: boolean;
  log?: StoreLog;
}

/** Where the Redis URL of a policy comes from, if any. */
export function redisUrlOf(policy?: Policy): { url: string; from: 'policy' | 'CAPFRAME_REDIS_URL' } | undefined {
  if (policy?.store !== undefined) return { url: policy.store, from: 'policy' };
  const env = process.env.CAPFRAME_REDIS_URL;
  return env === undefined || env === '' ? undefined : { url: env, from: 'CAPFRAME_REDIS_URL' };
}

/** The longest lifetime the policy lets a token have (s): the largest rule `ttl`, or the default cap. */
export function maxTokenTtl(policy: Policy): number {
  let max = DEFAULT_TTL;
  for (const rule of policy.rules) if (rule.effect === 'allow' && rule.ttl !== undefined && rule.ttl > max) max = rule.ttl;
  return max;
}

/** The store options a policy implies. */
export function storeOptionsFor(policy: Policy): OpenStoreOptions {
  const redis = redisUrlOf(policy);
  return {
    stateDir: policy.stateDir,
    ...(redis !== undefined && { url: redis.url }),
    prefix: policy.redis.prefix,
    graceSeconds: policy.redis.revocationGrace,
    onStoreFailure: policy.onStoreFailure,
    maxTtlSeconds: maxTokenTtl(policy),
  };
}

/**
 * Opens the store the options name. A short-lived Redis store that cannot connect
 * rejects with `store_unavailable`.
 *
 * @example
 * const store = await openStore({ stateDir: '.capframe', url: process.env.CAPFRAME_REDIS_URL, longLived: true });
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const url = options.url ?? (process.env.CAPFRAME_REDIS_URL || undefined);
  if (url === undefined) return openFileStore(options.stateDir, options.log === undefined ? {} : { log: options.log });
  return openRedisStore({
    url,
    prefix: options.prefix ?? DEFAULT_REDIS_PREFIX,
    graceSeconds: options.graceSeconds ?? DEFAULT_REVOCATION_GRACE,
    ...(options.onStoreFailure !== undefined && { onStoreFailure: options.onStoreFailure }),
    ...(options.maxTtlSeconds !== undefined && { maxTtlSeconds: options.maxTtlSeconds }),
    ...(options.longLived !== undefined && { longLived: options.longLived }),
    ...(options.log !== undefined && { log: options.log }),
  });
}

