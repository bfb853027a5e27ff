/**
 * An append-only file opened for group commit (src/lib/group-commit.ts): every line
 * appended during one turn of the event loop goes to the OS in one write at the end of
 * that turn, on a file kept open, and fsync runs off the main thread at most every
 * `syncEveryMs`. A caller that must not act before its line is written awaits
 * `append()`; durability against a power loss is bounded by the sync interval (and
 * complete after `close()`). Used by the embedded store's token ledger; the audit log
 * uses GroupCommitFile directly (it adds its own hash chain).
 *
 * This replaces an open+write+fsync+close per line on the main thread, which cost a
 * third of it under `auto_mint` (one ledger line per call).
 */
import { close, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

import { CapframeError } from '../errors.js';
import { GroupCommitFile } from './group-commit.js';

export interface BatchedAppendOptions {
  /** fsync at most this often while lines arrive (ms, default 100). */
  syncEveryMs?: number;
  /** Creation mode of a new file (default 0o600). */
  mode?: number;
}

export interface BatchedAppend {
  readonly path: string;
  /** Queues `line` (which should end in "\n"); resolves once it is written to the OS, rejects if the write fails. */
  append(line: string): Promise<void>;
  /** Resolves once everything appended so far is written and fsynced. */
  flush(): Promise<void>;
  /** flush(), then closes the file; later appends reject. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens `path` for batched appends (creating it and its directory, mode 0600). After a
 * failed write every later append fails too (`store_error`): a line torn by a short
 * write must not be followed by more lines, so the store fails closed until restarted.
 *
 * @example
 * const ledger = openBatchedAppend('.capframe/tokens.jsonl');
 * await ledger.append(`${JSON.stringify(entry)}\n`); // written; fsynced within ~100 ms
 * await ledger.close();                              // fsynced
 */
export function openBatchedAppend(path: string, options: BatchedAppendOptions = {}): BatchedAppend {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, 'a', options.mode ?? 0o600);
  const file = new GroupCommitFile(fd, { name: path, syncMs: options.syncEveryMs ?? 100, errorCode: 'store_error' });
  let closed: Promise<void> | undefined;
  return {
    path,
    append(line) {
      if (closed !== undefined) return Promise.reject(new CapframeError('store_error', `${path} is closed`));
      try {
        file.push(line);
      } catch (error) {
        return Promise.reject(error as Error);
      }
      return file.written();
    },
    flush: () => file.flush(),
    close() {
      closed ??= file.close().finally(() => new Promise<void>((resolve) => close(fd, () => resolve())));
      return closed;
    },
  };
}
