/**
 * Live revocation from the embedded store: follows `revocations.log` (fs.watch for
 * speed, a short poll as the safety net) and feeds new ids to the verifier, so a
 * `capframe revoke` takes effect in a running proxy within the poll interval.
 */
import { closeSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

import { parseTokenId } from '../verify/token-id.js';
import type { Logger } from './log.js';

export interface RevocationWatcher {
  /** Reads anything new now (also called by the timer and the watcher). */
  poll(): void;
  close(): void;
}

export function watchRevocations(
  path: string,
  onRevoked: (cti: Uint8Array) => void,
  options: { intervalMs?: number; log: Logger; startAt?: number },
): RevocationWatcher {
  let offset = options.startAt ?? 0;
  let partial = '';
  const poll = () => {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return; // Not created yet.
    }
    if (size < offset) {
      // Replaced or truncated: an append-only log should never shrink. Re-read it all;
      // revoking an id twice is harmless, missing one is not.
      options.log.warn('revocation log shrank; re-reading it', { path });
      offset = 0;
      partial = '';
    }
    if (size === offset) return;
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      const n = readSync(fd, buf, 0, buf.length, offset);
      offset += n;
      const text = partial + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        try {
          onRevoked(parseTokenId(line.split(' ')[0] ?? ''));
        } catch {
          options.log.error('unreadable revocation line', { path, line: line.slice(0, 80) });
        }
      }
    } finally {
      closeSync(fd);
    }
  };
  // Runs from a timer and a watcher: an I/O error (EMFILE, EACCES) is logged, never thrown.
  const safePoll = () => {
    try {
      poll();
    } catch (error) {
      options.log.error('cannot read the revocation log', { path, error: (error as Error).message });
    }
  };
  const timer = setInterval(safePoll, options.intervalMs ?? 200);
  timer.unref();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, file) => {
      if (file === null || file === basename(path)) safePoll();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // The directory may not exist yet; the poll covers it.
  }
  safePoll();
  return {
    poll: safePoll,
    close() {
      clearInterval(timer);
      watcher?.close();
    },
  };
}
