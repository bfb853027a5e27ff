/**
 * Live revocation from the embedded store: follows `revocations.log` (fs.watch for
 * speed, a short poll as the safety net) and hands new ids on in batches, so a
 * `capframe revoke` takes effect in every process following the log (proxies,
 * services, guards) within the poll interval.
 *
 * Fail closed: a line that is not a revocation, or a log that cannot be read, makes
 * the feed not current (its reason names the file and line) until the log reads
 * cleanly again; a replaced or truncated log is read again from the start.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

import { parseTokenId } from '../verify/token-id.js';
import type { StoreLog } from './types.js';

export interface RevocationWatcher {
  /** Reads anything new now (also called by the timer and the watcher). */
  poll(): void;
  close(): void;
}

export interface WatchOptions {
  /** Poll interval (ms, default 200). */
  intervalMs?: number;
  log?: StoreLog;
  /** Called when the log becomes readable (true) or not (false, with why). */
  onState?(current: boolean, reason?: string): void;
}

/**
 * Follows the revocation log at `path`: every id already in it, then each one appended.
 * `onRevoked` gets 16-byte cti values concatenated.
 *
 * @example
 * const watcher = watchRevocations('.capframe/revocations.log', (ids) => verifier.revokeMany(ids));
 */
export function watchRevocations(path: string, onRevoked: (ids: Uint8Array) => void, options: WatchOptions = {}): RevocationWatcher {
  let offset = 0;
  let inode: number | undefined;
  let partial = '';
  let lineNo = 0;
  /** The first unreadable line since the log was last read from the start. */
  let badLine: string | undefined;
  let current: boolean | undefined;

  const setState = (next: boolean, reason?: string) => {
    if (current === next) return;
    current = next;
    options.onState?.(next, reason);
  };

  const poll = () => {
    let size: number;
    let ino: number;
    try {
      const st = statSync(path);
      size = st.size;
      ino = st.ino;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // Not created yet: nothing is revoked. (Deleted after it existed: what was read stays revoked.)
      if (badLine === undefined) setState(true);
      return;
    }
    if (size < offset || (inode !== undefined && ino !== inode)) {
      // Replaced or truncated: an append-only log should never shrink. Re-read it all;
      // revoking an id twice is harmless, missing one is not.
      options.log?.warn('revocation log was replaced or shrank; re-reading it', { path });
      offset = 0;
      partial = '';
      lineNo = 0;
      badLine = undefined;
    }
    inode = ino;
    if (size > offset) {
      const fd = openSync(path, 'r');
      try {
        // The inode of what is read now: a replacement between stat and open is caught next poll.
        inode = fstatSync(fd).ino;
        const buf = Buffer.alloc(size - offset);
        const n = readSync(fd, buf, 0, buf.length, offset);
        offset += n;
        const lines = (partial + buf.subarray(0, n).toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        const ids = new Uint8Array(lines.length * 16);
        let count = 0;
        for (const line of lines) {
          lineNo++;
          if (line.trim() === '') continue;
          try {
            ids.set(parseTokenId(line.split(' ')[0] ?? ''), count * 16);
            count++;
          } catch {
            // A revocation we cannot read could be a token we must deny: refuse to guess.
            badLine ??= `${path}:${lineNo}: not a revocation line: "${line.slice(0, 60)}"`;
            options.log?.error('unreadable revocation line', { path, line: lineNo });
          }
        }
        if (count > 0) onRevoked(ids.subarray(0, count * 16));
      } finally {
        closeSync(fd);
      }
    }
    if (badLine !== undefined) setState(false, badLine);
    else setState(true);
  };
  // Runs from a timer and a watcher: an I/O error (EMFILE, EACCES) is reported, never thrown.
  const safePoll = () => {
    try {
      poll();
    } catch (error) {
      options.log?.error('cannot read the revocation log', { path, error: (error as Error).message });
      setState(false, `cannot read ${path}: ${(error as Error).message}`);
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
    watcher.unref();
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
