import { isUtf8 } from 'node:buffer';
import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import { CapframeError } from '../errors.js';
import { LineSplitter, readExactly, readTail } from './lines.js';
import { parseAuditLine, type AuditRecord } from './record.js';

export interface TailOptions {
  /** Keep running and report lines as they are appended, until `signal` aborts. */
  follow?: boolean;
  /** How many existing lines to report first; default 10. */
  lines?: number;
  /**
   * Called once per complete line, in file order. `record` is null when the line is not a
   * valid audit record (it is still reported: a tail must not hide anything).
   */
  onRecord: (record: AuditRecord | null, line: string) => void;
  /** Stops following; the returned promise then resolves. */
  signal?: AbortSignal;
  /** Poll interval backing up fs.watch (which can miss events, e.g. on network filesystems); default 250 ms. */
  pollIntervalMs?: number;
}

const READ_CHUNK = 1024 * 1024;

/**
 * Reports the last `lines` lines of an audit log and, with `follow`, every line appended
 * afterwards. Following copes with a log that does not exist yet (it is waited for),
 * and with one that is truncated or replaced (reading restarts at its beginning). An
 * unterminated final line is reported once its "\n" arrives.
 *
 * Without `follow`, a missing file is a CapframeError `audit_log_not_found`.
 *
 * @example
 * const stop = new AbortController();
 * await tailAuditLog('.capframe/audit.log', {
 *   follow: true, lines: 5, signal: stop.signal,
 *   onRecord: (record, line) => console.log(record ? `${record.decision} ${record.code}` : line),
 * });
 */
export async function tailAuditLog(path: string, opts: TailOptions): Promise<void> {
  const count = opts.lines ?? 10;
  if (!Number.isInteger(count) || count < 0) {
    throw new CapframeError('invalid_argument', `lines must be a non-negative integer, got ${count}`);
  }
  const emit = (bytes: Buffer): void => {
    const text = bytes.toString('utf8');
    const parsed = isUtf8(bytes) ? parseAuditLine(text) : undefined;
    opts.onRecord(parsed?.ok === true ? parsed.record : null, text);
  };

  // Where following continues: the byte after the last reported "\n" of this file.
  let offset = 0;
  let identity: { dev: number; ino: number } | undefined;
  let initial: Buffer[] = [];
  try {
    const handle = await open(path, 'r');
    try {
      const info = await handle.stat();
      const tail = await readTail(handle, info.size, count);
      initial = tail.lines;
      offset = tail.end;
      identity = { dev: info.dev, ino: info.ino };
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw readError(path, error);
    if (opts.follow !== true) {
      throw new CapframeError('audit_log_not_found', `audit log not found: ${path}`, { cause: error });
    }
  }
  for (const line of initial) emit(line);
  if (opts.follow !== true || opts.signal?.aborted === true) return;

  const splitter = new LineSplitter();
  const restart = (): void => {
    offset = 0;
    identity = undefined;
    splitter.reset();
  };

  /** Reads whatever was appended since the last call. */
  const pump = async (): Promise<void> => {
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        restart();
        return;
      }
      throw error;
    }
    if (identity !== undefined && (identity.dev !== info.dev || identity.ino !== info.ino)) restart();
    else if (info.size < offset) restart();
    identity = { dev: info.dev, ino: info.ino };
    if (info.size <= offset) return;
    const handle = await open(path, 'r');
    try {
      while (offset < info.size) {
        const chunk = await readExactly(handle, offset, Math.min(READ_CHUNK, info.size - offset));
        if (chunk.length === 0) break;
        offset += chunk.length;
        for (const line of splitter.push(chunk)) emit(line);
      }
    } finally {
      await handle.close();
    }
  };

  await new Promise<void>((resolve, reject) => {
    let running = false;
    let again = false;
    let finished = false;
    let watcher: FSWatcher | undefined;

    const finish = (error?: unknown): void => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      watcher?.close();
      opts.signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      // File-system failures get one clear message; errors thrown by onRecord pass through.
      else reject(isSystemError(error) ? readError(path, error) : error);
    };
    const onAbort = (): void => finish();

    // Coalesces events: at most one pump runs, and one more follows if events arrived meanwhile.
    const schedule = (): void => {
      if (finished) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      pump().then(
        () => {
          running = false;
          if (again) {
            again = false;
            schedule();
          }
        },
        (error: unknown) => finish(error),
      );
    };

    const startWatcher = (): void => {
      if (watcher !== undefined || finished) return;
      try {
        // Watch the directory, not the file: it sees the file being created or replaced.
        watcher = watch(dirname(path), { persistent: true }, (_event, name) => {
          if (name === null || name === basename(path)) schedule();
        });
        watcher.on('error', () => {
          watcher?.close();
          watcher = undefined;
        });
      } catch {
        watcher = undefined; // Directory missing or watching unsupported: polling covers it.
      }
    };

    const timer = setInterval(() => {
      startWatcher();
      schedule();
    }, opts.pollIntervalMs ?? 250);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    startWatcher();
    schedule();
  });
}

function readError(path: string, error: unknown): CapframeError {
  return new CapframeError('audit_log_failed', `cannot read audit log ${path}: ${(error as Error).message}`, {
    cause: error,
  });
}

function isSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && !(error instanceof CapframeError);
}
