/**
 * Switching a deployment from the embedded store to Redis must not un-revoke a token
 * that is still alive: at start, `capframe serve` on Redis copies into it the
 * revocations of its state directory's log that may still matter (made less than the
 * policy's longest token lifetime ago).
 */
import { join } from 'node:path';

import { CapframeError } from '../errors.js';
import { parseTokenId } from '../verify/token-id.js';
import { REVOCATIONS_FILE } from './file-store.js';
import { readLines } from './keys.js';
import type { Store } from './types.js';

/**
 * Copies the recent revocations of `<stateDir>/revocations.log` into `store`; returns
 * how many. A line it cannot read refuses (fail closed), naming file and line.
 *
 * @example
 * await importEmbeddedRevocations('.capframe', redisStore, maxTokenTtl(policy));
 */
export async function importEmbeddedRevocations(stateDir: string, store: Store, maxTtlSeconds: number, now = Date.now()): Promise<number> {
  const path = join(stateDir, REVOCATIONS_FILE);
  const recent: { cti: Uint8Array; exp: number }[] = [];
  readLines(path).forEach((line, i) => {
    if (line.trim() === '') return;
    const [id = '', at = ''] = line.split(' ');
    let cti: Uint8Array;
    try {
      cti = parseTokenId(id);
    } catch {
      throw new CapframeError('store_error', `${path}:${i + 1}: not a revocation line: "${line.slice(0, 60)}"; fix or remove it before switching to Redis`);
    }
    const revokedAt = Date.parse(at);
    // A token revoked at T expired by T + the longest lifetime; an unreadable time counts as now.
    const expiresBy = (Number.isFinite(revokedAt) ? revokedAt : now) + maxTtlSeconds * 1000;
    if (expiresBy > now) recent.push({ cti, exp: Math.ceil(expiresBy / 1000) });
  });
  await Promise.all(recent.map((r) => store.revoke(r.cti, { exp: r.exp })));
  return recent.length;
}
