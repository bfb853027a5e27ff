/**
 * ioredis connections as the Redis store wants them: commands fail at once while
 * disconnected (no offline queue: a call waits for nothing, it is denied), a hung
 * server times commands out, and a lost connection is retried with a capped backoff.
 * ioredis is loaded on first use, so processes that never touch Redis do not pay for it.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

import type { Redis, RedisOptions } from 'ioredis';

import { CapframeError } from '../errors.js';
import type { RedisTarget } from './redis-url.js';

export type { Redis } from 'ioredis';

export interface ClientOptions {
  /** Shown in CLIENT LIST. */
  name: string;
  /** Keep reconnecting after a loss (long-lived processes); false: one attempt (the CLI). */
  reconnect: boolean;
  /** Per-command deadline (ms). */
  commandTimeoutMs: number;
  /** Deadline for a connection attempt (ms). */
  connectTimeoutMs: number;
  /** Batch commands issued in one tick into one write. */
  autoPipelining?: boolean;
}

/** Longest wait between reconnection attempts (ms). */
const MAX_BACKOFF_MS = 1000;

let ioredis: typeof import('ioredis') | undefined;

function load(): typeof import('ioredis') {
  ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return ioredis;
}

/**
 * A connection to `target`, connecting in the background. Attach listeners before
 * awaiting anything: an `error` event with no listener is printed by ioredis.
 */
export function createRedisClient(target: RedisTarget, options: ClientOptions): Redis {
  const base: RedisOptions = { ...target.options };
  if (base.tls !== undefined && isIP(base.host ?? '') !== 0) {
    // SNI carries host names only; the certificate is still checked against the IP.
    const { servername: _ip, ...tls } = base.tls;
    base.tls = tls;
  }
  const { Redis: RedisClient } = load();
  return new RedisClient({
    ...base,
    connectionName: options.name,
    // RESP2: every Redis since 2.x speaks it, including managed services without HELLO.
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: options.autoPipelining ?? false,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    retryStrategy: options.reconnect ? (times) => Math.min(25 * 2 ** Math.min(times, 10), MAX_BACKOFF_MS) : () => null,
  });
}

/** Resolves once `client` is ready; rejects (naming `where`) when the first attempt fails or takes longer than `timeoutMs`. */
export function connectOnce(client: Redis, where: string, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined;
    const done = (error?: Error) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
      if (error === undefined) resolve();
      else reject(error);
    };
    const unreachable = (why: string) => new CapframeError('store_unavailable', `cannot reach the Redis store at ${where}: ${why}`);
    const onReady = () => done();
    const onError = (error: Error) => (lastError = error);
    const onEnd = () => done(unreachable(lastError?.message ?? 'connection closed'));
    const timer = setTimeout(() => done(unreachable(`no answer within ${timeoutMs} ms${lastError === undefined ? '' : ` (${lastError.message})`}`)), timeoutMs);
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
    if (client.status === 'wait') client.connect().catch((error: Error) => (lastError = error));
  });
}

/**
 * What this Redis would do to the store's keys, in words, or undefined when it is fine:
 * an eviction policy can drop the revocation set or live replay nonces (fail open), and
 * a version before 6.2 lacks commands the scripts use. CONFIG may be disabled (managed
 * services): then only the version is checked.
 */
export async function serverProblems(client: Redis): Promise<string[]> {
  const problems: string[] = [];
  const info = await client.info('server');
  const m = /^redis_version:(\d+)\.(\d+)/m.exec(info);
  const [major, minor] = m === null ? [0, 0] : [Number(m[1]), Number(m[2])];
  if (major < 6 || (major === 6 && minor < 2)) problems.push(`Redis ${major}.${minor} is older than 6.2: the store needs ZADD GT and SET PXAT`);
  try {
    const [, policy] = (await client.config('GET', 'maxmemory-policy')) as [string, string | undefined];
    if (policy !== undefined && policy !== 'noeviction') {
      problems.push(`maxmemory-policy is ${policy}: under memory pressure Redis may evict revocations or replay nonces; set maxmemory-policy noeviction`);
    }
  } catch {
    // CONFIG renamed or disabled: nothing more to learn here.
  }
  return problems;
}
