/** The store as `capframe doctor` shows it: kind, where (never a password), whether it answers, revocations. */
import { openStore, redisUrlOf, storeOptionsFor } from '../store/open.js';
import { serverProblems } from '../store/redis-client.js';
import type { RedisStore } from '../store/redis-store.js';
import { redactRedisUrl } from '../store/redis-url.js';
import type { CliContext } from './context.js';

export interface StoreReport {
  store: 'file' | 'redis';
  store_location: string;
  /** `policy`, `CAPFRAME_REDIS_URL`, or `default` (the embedded store). */
  store_from: string;
  store_reachable: boolean;
  store_error?: string;
  /** What this Redis would do to the store (evictions, an old version). */
  store_warnings?: string[];
  revoked_tokens: number | null;
}

export async function storeReport(ctx: CliContext): Promise<StoreReport> {
  const redis = redisUrlOf(ctx.policy);
  const where = {
    store: redis === undefined ? ('file' as const) : ('redis' as const),
    store_location: redis === undefined ? ctx.keys.stateDir : redactRedisUrl(redis.url),
    store_from: redis?.from ?? 'default',
  };
  try {
    const store = await openStore(ctx.policy !== undefined ? storeOptionsFor(ctx.policy) : { stateDir: ctx.keys.stateDir, ...(redis !== undefined && { url: redis.url }) });
    try {
      const revoked = (await store.revokedIds()).length;
      const warnings = store.kind === 'redis' ? await serverProblems((store as RedisStore).client) : [];
      return { ...where, store_reachable: true, ...(warnings.length > 0 && { store_warnings: warnings }), revoked_tokens: revoked };
    } finally {
      await store.close();
    }
  } catch (error) {
    return { ...where, store_reachable: false, store_error: (error as Error).message, revoked_tokens: null };
  }
}
