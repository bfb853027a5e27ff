/**
 * The Redis store (SPEC §7): one Redis shared by every `capframe serve` of a fleet and
 * by every service following its revocations.
 *
 * Keys, all under a prefix (default `capframe:`) so deployments can share a Redis:
 *
 *   <prefix>revoked         sorted set: `tok_` id → when it may be forgotten (ms; the
 *                           token's expiry plus grace), trimmed on every revoke and
 *                           periodically
 *   <prefix>revocations     pub/sub channel: each new revocation's `tok_` id
 *   <prefix>token:<tok_id>  the ledger entry of an issued token (JSON), until its
 *                           expiry plus grace
 *   <prefix>nonce:<key>     a holder proof's nonce (SET NX PX)
 *   <prefix>rate:<key>      a sliding rate-limit window (sorted set of call times)
 *
 * While Redis cannot be reached every operation fails, and a verifier following the
 * feed denies (fail closed) — unless `onStoreFailure: 'use_cached'`, under which nonces
 * and rate limits fall back to this process's memory (they then hold per instance, not
 * across the fleet) and the ledger write of a minted token is skipped with a warning.
 */
import { randomBytes } from 'node:crypto';

import { CapframeError } from '../errors.js';
import { tokenId } from '../token/claims.js';
import { HealthState } from './health-state.js';
import { ledgerEntry, parseLedgerEntry } from './ledger.js';
import { MemoryRateLimiter } from './memory-rate-limit.js';
import { createMemoryNonceStore, type NonceStore } from './nonces.js';
import { connectOnce, createRedisClient, serverProblems, type Redis } from './redis-client.js';
import { loadRevoked, RedisRevocationFeed } from './redis-revocations.js';
import { RATE_LIMIT_SCRIPT, REVOKE_SCRIPT, TRIM_SCRIPT } from './redis-scripts.js';
import { parseRedisUrl } from './redis-url.js';
import type { OnStoreFailure, RateLimiter, Store, StoreLog } from './types.js';

export const DEFAULT_REDIS_PREFIX = 'capframe:';
/** How long a revocation outlives its token's expiry (s): covers clocks that run behind. */
export const DEFAULT_REVOCATION_GRACE = 60;
/** How long a revocation of a token the store knows nothing about is kept when no policy says (s). */
export const DEFAULT_UNKNOWN_RETENTION = 24 * 3600;

export interface RedisStoreOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS. */
  url: string;
  /** Password when the URL has none (default `CAPFRAME_REDIS_PASSWORD`). */
  password?: string;
  /** Key prefix (default `capframe:`). */
  prefix?: string;
  /** See the module comment (default 'deny'). */
  onStoreFailure?: OnStoreFailure;
  /**
   * Longest lifetime a token of this deployment can have (s): a revoked id the ledger
   * does not know is kept this long (plus grace). Default 24 h.
   */
  maxTtlSeconds?: number;
  /** Seconds a revocation is kept past its token's expiry (default 60). */
  graceSeconds?: number;
  /**
   * Long-lived (serve, services): reconnect forever, trim expired revocations
   * periodically. Short-lived (the CLI, default): one connection attempt, and a command
   * fails as soon as Redis does not answer.
   */
  longLived?: boolean;
  log?: StoreLog;
  /** Per-command deadline (ms, default 3000). */
  commandTimeoutMs?: number;
  /** Connection attempt deadline (ms, default 5000). */
  connectTimeoutMs?: number;
  /** Expired-revocation trim interval for long-lived stores (ms, default 10,000). */
  trimEveryMs?: number;
}

export interface RedisStore extends Store {
  readonly kind: 'redis';
  readonly prefix: string;
  /** The command connection (for tools and tests). */
  readonly client: Redis;
  /** Resolves once the command connection is ready the first time; rejects for a short-lived store that cannot connect. */
  connected(): Promise<void>;
}

interface ScriptClient {
  cfRevoke(key: string, id: string, dropMs: number, channel: string): Promise<number>;
  cfTrim(key: string): Promise<number>;
  cfRateLimit(key: string, calls: number, windowMs: number, member: string): Promise<number>;
}

function unreachable(where: string, error?: unknown): CapframeError {
  const why = error instanceof Error ? `: ${error.message}` : '';
  return new CapframeError('store_unavailable', `the Redis store at ${where} is unreachable${why}`, error === undefined ? undefined : { cause: error });
}

function checkSeconds(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) throw new CapframeError('invalid_argument', `redis store: ${name} must be a number of seconds ≥ ${min}, got ${String(value)}`);
  return value;
}

/**
 * Creates a Redis store and starts connecting in the background. Use {@link openRedisStore}
 * to wait for the connection (or fail when it cannot be made).
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  const target = parseRedisUrl(options.url, options.password ?? process.env.CAPFRAME_REDIS_PASSWORD);
  const where = target.redacted;
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  if (typeof prefix !== 'string' || /[\s*?[\]]/.test(prefix)) throw new CapframeError('invalid_argument', `redis store: the key prefix must not contain spaces or glob characters, got ${JSON.stringify(prefix)}`);
  const useCached = (options.onStoreFailure ?? 'deny') === 'use_cached';
  const graceMs = checkSeconds('graceSeconds', options.graceSeconds ?? DEFAULT_REVOCATION_GRACE, 0) * 1000;
  const maxTtlMs = checkSeconds('maxTtlSeconds', options.maxTtlSeconds ?? DEFAULT_UNKNOWN_RETENTION, 1) * 1000;
  const longLived = options.longLived ?? false;
  const log = options.log;
  const keys = {
    revoked: `${prefix}revoked`,
    channel: `${prefix}revocations`,
    token: (id: string) => `${prefix}token:${id}`,
    nonce: (key: string) => `${prefix}nonce:${key}`,
    rate: (key: string) => `${prefix}rate:${key}`,
  };
  const clientOptions = {
    reconnect: longLived,
    commandTimeoutMs: options.commandTimeoutMs ?? 3000,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
  };
  const client = createRedisClient(target, { ...clientOptions, name: 'capframe', autoPipelining: true });
  client.defineCommand('cfRevoke', { numberOfKeys: 1, lua: REVOKE_SCRIPT });
  client.defineCommand('cfTrim', { numberOfKeys: 1, lua: TRIM_SCRIPT });
  client.defineCommand('cfRateLimit', { numberOfKeys: 1, lua: RATE_LIMIT_SCRIPT });
  const scripts = client as unknown as ScriptClient;

  const health = new HealthState('redis', where, false);
  let commandsUp = false;
  let feed: RedisRevocationFeed | undefined;
  let closed = false;
  let everReady = false;
  let lastError: string | undefined;
  const refresh = () => {
    if (!commandsUp) health.mark(false, `${where} is unreachable${lastError === undefined ? '' : ` (${lastError})`}`);
    else if (feed !== undefined && !feed.isCurrent) health.mark(false, feed.why);
    else health.mark(true);
  };
  refresh();
  client.on('ready', () => {
    if (everReady) {
      health.reconnects++;
      log?.info('redis store reconnected', { store: where });
    }
    everReady = true;
    commandsUp = true;
    lastError = undefined;
    refresh();
  });
  client.on('close', () => {
    if (commandsUp && !closed) log?.warn('redis store connection lost', { store: where, ...(useCached && { on_store_failure: 'use_cached' }) });
    commandsUp = false;
    refresh();
  });
  client.on('error', (error: Error) => {
    // Connection errors repeat on every retry: log each new one once.
    if (error.message !== lastError) log?.warn('redis store error', { store: where, error: error.message });
    lastError = error.message;
  });
  const connecting = connectOnce(client, where, clientOptions.connectTimeoutMs);
  connecting.catch(() => undefined);
  void connecting
    .then(async () => {
      for (const problem of await serverProblems(client)) log?.error(`redis store: ${problem}`, { store: where });
    })
    .catch(() => undefined);

  let trimmer: NodeJS.Timeout | undefined;
  if (longLived && (options.trimEveryMs ?? 10_000) > 0) {
    trimmer = setInterval(() => {
      if (!commandsUp) return;
      scripts.cfTrim(keys.revoked).then(
        (n) => {
          if (n > 0) log?.info('dropped expired revocations', { store: where, dropped: n });
        },
        (error: Error) => log?.warn('cannot trim expired revocations', { store: where, error: error.message }),
      );
    }, options.trimEveryMs ?? 10_000);
    trimmer.unref();
  }

  /** A command that timed out means a connection that may be half-open: drop it and reconnect (the store is down until then). */
  function afterError(error: unknown): void {
    if (longLived && error instanceof Error && /timed out/i.test(error.message) && client.status === 'ready') {
      log?.warn('redis store command timed out; reconnecting', { store: where });
      client.disconnect(true);
    }
  }

  /** A store operation: Redis's answer, or `fallback` under use_cached when Redis cannot give one. */
  async function withFallback<T>(op: () => Promise<T>, fallback: () => T, what: string): Promise<T> {
    if (!commandsUp) {
      if (useCached) return fallback();
      throw unreachable(where);
    }
    try {
      return await op();
    } catch (error) {
      afterError(error);
      if (useCached && !(error instanceof Error && error.name === 'ReplyError')) {
        log?.warn(`redis store: ${what} served from memory (on_store_failure: use_cached)`, { store: where, error: (error as Error).message });
        return fallback();
      }
      throw error instanceof CapframeError ? error : unreachable(where, error);
    }
  }

  const memoryNonces = createMemoryNonceStore();
  const nonces: NonceStore = {
    claim(key, ttlMs) {
      if (typeof key !== 'string' || key === '') throw new CapframeError('invalid_argument', 'nonce store: key must be a non-empty string');
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new CapframeError('invalid_argument', `nonce store: ttlMs must be a positive number, got ${String(ttlMs)}`);
      return withFallback(
        async () => (await client.set(keys.nonce(key), '1', 'PX', Math.ceil(ttlMs), 'NX')) === 'OK',
        () => memoryNonces.claim(key, ttlMs) as boolean,
        'a replay nonce',
      );
    },
  };

  const memoryLimiter = new MemoryRateLimiter();
  const instance = randomBytes(6).toString('base64url');
  let seq = 0;
  const limiter: RateLimiter = {
    take(key, limit) {
      return withFallback(
        async () => (await scripts.cfRateLimit(keys.rate(key), limit.calls, Math.round(limit.per * 1000), `${instance}:${++seq}`)) === 1,
        () => memoryLimiter.take(key, limit),
        'a rate limit',
      );
    },
  };

  async function command<T>(op: () => Promise<T>): Promise<T> {
    if (!commandsUp) {
      // A short-lived store may still be connecting: give it its one chance.
      if (!longLived && !everReady) await connecting;
      else throw unreachable(where);
    }
    try {
      return await op();
    } catch (error) {
      afterError(error);
      throw error instanceof CapframeError ? error : unreachable(where, error);
    }
  }

  const store: RedisStore = {
    kind: 'redis',
    location: where,
    prefix,
    client,
    connected: () => connecting,
    async revoke(cti, revokeOptions = {}) {
      const id = tokenId(cti);
      return command(async () => {
        // Kept until the token expires (as the ledger recorded it, else as late as the
        // policy lets any token live), plus grace; a longer claimed expiry extends that.
        const known = await client.get(keys.token(id));
        const recorded = known === null ? undefined : parseLedgerEntry(known)?.exp;
        const until = Math.max(recorded === undefined ? Date.now() + maxTtlMs : recorded * 1000, (revokeOptions.exp ?? 0) * 1000);
        const dropMs = Math.ceil(until + graceMs);
        return (await scripts.cfRevoke(keys.revoked, id, dropMs, keys.channel)) === 1;
      });
    },
    async revokedIds() {
      const ids = await command(() => loadRevoked(client, keys.revoked));
      const out: Uint8Array[] = [];
      for (let i = 0; i < ids.length; i += 16) out.push(ids.slice(i, i + 16));
      return out;
    },
    followRevocations(handlers) {
      if (feed === undefined) {
        const subscriber = createRedisClient(target, { ...clientOptions, reconnect: true, name: 'capframe-revocations' });
        feed = new RedisRevocationFeed({
          subscriber,
          commands: client,
          key: keys.revoked,
          channel: keys.channel,
          where,
          ...(log !== undefined && { log }),
          onState: refresh,
          onReconnect: () => health.reconnects++,
        });
        refresh();
      }
      return feed.follow(handlers);
    },
    async record(minted) {
      const entry = ledgerEntry(minted);
      const write = async () => {
        await client.set(keys.token(entry.id), JSON.stringify(entry), 'PXAT', entry.exp * 1000 + graceMs);
      };
      if (useCached) {
        // The ledger only serves lookups by id: an outage must not stop issuing under use_cached.
        await withFallback(write, () => log?.warn('redis store: ledger entry not recorded (unreachable; on_store_failure: use_cached)', { store: where, id: entry.id }), 'a ledger entry');
        return;
      }
      await command(write);
    },
    async findToken(id) {
      const text = await command(() => client.get(keys.token(id)));
      if (text === null) return undefined;
      const entry = parseLedgerEntry(text);
      return entry?.id === id ? entry : undefined;
    },
    nonces,
    limiter,
    health: () => health.snapshot(),
    async close() {
      if (closed) return;
      closed = true;
      if (trimmer !== undefined) clearInterval(trimmer);
      await feed?.close();
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
  return store;
}

/**
 * Opens a Redis store and waits for its connection. A short-lived store (the default)
 * that cannot connect rejects (`store_unavailable`); a long-lived one resolves once
 * connected, or after `connectTimeoutMs` still connecting (its health says so).
 *
 * @example
 * const store = await openRedisStore({ url: process.env.CAPFRAME_REDIS_URL!, longLived: true });
 * const verifier = createVerifier({ keys, revocations: store, nonceStore: store.nonces });
 */
export async function openRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const store = createRedisStore(options);
  try {
    await store.connected();
  } catch (error) {
    if (options.longLived !== true) {
      await store.close();
      throw error;
    }
  }
  return store;
}
