/**
 * Where a sink stands in the audit log: the `seq` and line hash of the last line the
 * receiver accepted, in a small file per sink, replaced atomically. On restart a sink
 * resumes after it, so lines written while the receiver (or Capframe) was down are
 * delivered once it is back.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SinkCursor {
  /** 0 before anything was delivered. */
  seq: number;
  /** SHA-256 (hex) of the line `seq`; empty with seq 0. */
  hash: string;
}

export const START: SinkCursor = Object.freeze({ seq: 0, hash: '' });

/** The cursor in `path`, or START when there is none (or it is unreadable: delivering again beats losing lines). */
export function readCursor(path: string): { cursor: SinkCursor; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { cursor: START };
    return { cursor: START, problem: `cannot read ${path}: ${(error as Error).message}` };
  }
  try {
    const value = JSON.parse(text) as Partial<SinkCursor>;
    if (Number.isSafeInteger(value.seq) && (value.seq as number) >= 0 && typeof value.hash === 'string' && /^(?:[0-9a-f]{64})?$/.test(value.hash)) {
      return { cursor: { seq: value.seq as number, hash: value.hash } };
    }
  } catch {
    // fall through
  }
  return { cursor: START, problem: `${path} is not a sink cursor; delivering from the first line` };
}

/** Writes the cursor: a temp file renamed over the old one, so a crash leaves one or the other. */
export function writeCursor(path: string, cursor: SinkCursor): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(cursor)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
