/**
 * A `redis://` or `rediss://` (TLS) URL as ioredis connection options, and as text safe
 * to print. The password comes from the URL or `CAPFRAME_REDIS_PASSWORD`; it never
 * appears in a log line, an error or `capframe doctor` (`redis://***@host:port`).
 */
import type { RedisOptions } from 'ioredis';

import { CapframeError } from '../errors.js';

export interface RedisTarget {
  /** ioredis options: host, port, db, credentials, TLS. */
  options: RedisOptions;
  /** The URL without credentials, e.g. `rediss://***@cache.internal:6380/0`. */
  redacted: string;
  tls: boolean;
}

function invalid(message: string): never {
  throw new CapframeError('invalid_argument', message);
}

/** `url` without its credentials: `redis://***@host:port/db` when it has any, else as given. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    const auth = u.username !== '' || u.password !== '' ? '***@' : '';
    return `${u.protocol}//${auth}${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    // Not a URL: say so without echoing what might be a secret.
    return '<unparsable redis URL>';
  }
}

/**
 * Reads a Redis URL. `password` (default: `CAPFRAME_REDIS_PASSWORD`) is used when the
 * URL carries none.
 *
 * @example
 * parseRedisUrl('rediss://:s3cret@cache.internal:6380/2').redacted // 'rediss://***@cache.internal:6380/2'
 */
export function parseRedisUrl(url: string, password = process.env.CAPFRAME_REDIS_PASSWORD): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    invalid(`${redactRedisUrl(url)} is not a URL; expected redis://[:password@]host[:port][/db] or rediss://… for TLS`);
  }
  const tls = u.protocol === 'rediss:';
  if (!tls && u.protocol !== 'redis:') invalid(`${redactRedisUrl(url)}: expected a redis:// or rediss:// URL`);
  if (u.hostname === '') invalid(`${redactRedisUrl(url)}: the URL names no host`);
  if (u.search !== '' || u.hash !== '') invalid(`${redactRedisUrl(url)}: query strings and fragments are not read; put options in the policy`);
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) invalid(`${redactRedisUrl(url)}: the path must be a database number, e.g. /0`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const options: RedisOptions = {
    host,
    port: u.port === '' ? 6379 : Number(u.port),
    ...(dbText !== '' && { db: Number(dbText) }),
  };
  const username = decodeURIComponent(u.username);
  const fromUrl = decodeURIComponent(u.password);
  if (username !== '') options.username = username;
  if (fromUrl !== '') options.password = fromUrl;
  else if (password !== undefined && password !== '') options.password = password;
  // Certificates are checked against the system CAs plus NODE_EXTRA_CA_CERTS.
  if (tls) options.tls = { servername: host };
  return { options, redacted: redactRedisUrl(url), tls };
}
