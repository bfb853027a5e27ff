import { isUtf8 } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';

import { CapframeError } from '../errors.js';
import { sha256Hex } from './canonical-json.js';
import { LineSplitter } from './lines.js';
import { GENESIS_PREV, parseAuditLine, type ParsedLine } from './record.js';

/** Outcome of {@link verifyAuditLog}. */
export type AuditVerification =
  | {
      ok: true;
      /** Number of lines (= records). */
      lines: number;
      /** `seq` of the last line (0 for an empty log). */
      lastSeq: number;
      /** SHA-256 hex of the last line: anchor it elsewhere to detect later tail truncation. */
      head: string;
    }
  | {
      ok: false;
      /** 1-based line number of the first bad line, by the rule documented on verifyAuditLog. */
      line: number;
      problem: string;
    };

/** Lines longer than this are reported instead of buffered without limit. */
export const MAX_AUDIT_LINE_BYTES = 16 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;

interface Line {
  no: number;
  bytes: Buffer;
  terminated: boolean;
  parsed?: ParsedLine;
  hash?: string;
}

function parse(line: Line): ParsedLine {
  line.parsed ??= isUtf8(line.bytes)
    ? parseAuditLine(line.bytes.toString('utf8'))
    : { ok: false, problem: 'not valid UTF-8' };
  return line.parsed;
}

function hash(line: Line): string {
  line.hash ??= sha256Hex(line.bytes);
  return line.hash;
}

/**
 * Checks a hash-chained audit log from the first line to the last, streaming (memory is
 * bounded by the longest line), and reports the FIRST problem found.
 *
 * Lines are checked in order. Line k is accepted when it ends with "\n", is valid UTF-8
 * JSON with exactly the record fields and types, byte-for-byte in the form the writer
 * produces (key order, no whitespace, JSON.stringify escapes), with `args` hashing to
 * `args_sha256` when logged, and chains: `prev` is the SHA-256 of line k-1's bytes (64 zeros for
 * k = 1) and `seq` is line k-1's seq + 1 (1 for k = 1). The line number reported for
 * the first line that is not accepted:
 *
 * - unterminated (cut short), not JSON, or a bad field → k itself;
 * - `prev` chains but `seq` is wrong → k (its seq was edited);
 * - `seq` is right but `prev` does not match line k-1 → one of the two lines was edited.
 *   If line k+1 chains to line k, line k is intact, so **k-1** is reported (its content
 *   changed after line k hashed it); if line k+1 exists, parses and does not chain to
 *   line k, **k** is reported (its own `prev` was edited); if there is no usable line
 *   k+1, **k-1** is reported (the earlier candidate). On line 1 → 1;
 * - `seq` jumps forward and `prev` does not match → k, the line where the chain breaks:
 *   lines were deleted before it, or it is the first of two swapped lines (the problem
 *   text says "out of order" when line k+1 carries a lower seq);
 * - `seq` repeats or goes back → k; except when line k chains to line k-2 with the same
 *   seq as line k-1, where line k-1 was inserted → k-1.
 *
 * So: an edited line k is reported as k (except on the last line, see below); a deleted
 * line is reported at the line that now follows the gap; two swapped lines are reported
 * at the first of them; a truncated last line is reported as that line.
 *
 * Limits of any hash chain: removing whole lines from the end, or rewriting the last
 * line consistently, leaves a valid shorter chain — compare `head`/`lastSeq` with a copy
 * kept elsewhere to catch that.
 *
 * Throws a CapframeError `audit_log_not_found` when the file does not exist.
 *
 * @example
 * const result = await verifyAuditLog('.capframe/audit.log');
 * if (!result.ok) console.error(`BROKEN line ${result.line}: ${result.problem}`);
 */
export async function verifyAuditLog(path: string): Promise<AuditVerification> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CapframeError('audit_log_not_found', `audit log not found: ${path}`, { cause: error });
    }
    throw new CapframeError('audit_log_failed', `cannot read audit log ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return await check(readLines(handle));
  } catch (error) {
    if (error instanceof CapframeError) throw error;
    throw new CapframeError('audit_log_failed', `cannot read audit log ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await handle.close();
  }
}

async function* readLines(handle: FileHandle): AsyncGenerator<Line | { no: number; tooLong: true }> {
  const splitter = new LineSplitter();
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let no = 0;
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, 0, READ_CHUNK, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    // Copy: the splitter may keep a reference past the next read into `buf`.
    for (const bytes of splitter.push(Buffer.from(buf.subarray(0, bytesRead)))) {
      yield { no: ++no, bytes, terminated: true };
    }
    if (splitter.pending.length > MAX_AUDIT_LINE_BYTES) {
      yield { no: no + 1, tooLong: true };
      return;
    }
  }
  if (splitter.pending.length > 0) yield { no: no + 1, bytes: splitter.pending, terminated: false };
}

type Broken = { ok: false; line: number; problem: string };

async function check(lines: AsyncGenerator<Line | { no: number; tooLong: true }>): Promise<AuditVerification> {
  const next = async (): Promise<Line | Broken | undefined> => {
    const { value, done } = await lines.next();
    if (done === true) return undefined;
    if ('tooLong' in value) {
      return { ok: false, line: value.no, problem: `line is longer than ${MAX_AUDIT_LINE_BYTES} bytes` };
    }
    return value;
  };
  const broken = (line: number, problem: string): Broken => ({ ok: false, line, problem });

  // The two accepted lines before the current one.
  let last: { hash: string; seq: number } | undefined;
  let beforeLast: { hash: string; seq: number } | undefined;
  let count = 0;

  let cur = await next();
  while (cur !== undefined) {
    if ('ok' in cur) return cur;
    const k = cur.no;
    // Only the lookahead line's prev and seq are used, to decide between two candidates.
    const ahead = await next();
    const nextLine = ahead !== undefined && !('ok' in ahead) ? ahead : undefined;
    const nextRecord = (() => {
      if (nextLine === undefined || !nextLine.terminated) return undefined;
      const p = parse(nextLine);
      return p.ok ? p.record : undefined;
    })();

    if (!cur.terminated) return broken(k, 'line is incomplete (no trailing newline): the log was truncated');
    const parsed = parse(cur);
    if (!parsed.ok) return broken(k, parsed.problem);
    const { seq, prev } = parsed.record;
    const expectedPrev = last?.hash ?? GENESIS_PREV;
    const expectedSeq = (last?.seq ?? 0) + 1;

    if (prev !== expectedPrev || seq !== expectedSeq) {
      if (prev === expectedPrev) {
        return broken(k, `seq is ${seq}, expected ${expectedSeq}, though prev matches the line before: this line was modified`);
      }
      if (last === undefined) {
        return seq === 1
          ? broken(1, 'prev is not 64 zeros: the first line was modified')
          : broken(1, `first line has seq ${seq} and does not start the chain: lines were deleted from the start`);
      }
      if (seq === expectedSeq) {
        if (nextRecord !== undefined && nextRecord.prev !== hash(cur)) {
          return broken(k, `prev does not match the hash of line ${k - 1}, and line ${k + 1} does not chain to this line: this line was modified`);
        }
        return broken(k - 1, `line ${k} records a different hash for this line: this line was modified`);
      }
      if (seq > expectedSeq) {
        if (nextRecord !== undefined && nextRecord.seq < seq) {
          return broken(k, `lines out of order: seq ${seq} follows seq ${last.seq} and line ${k + 1} has seq ${nextRecord.seq}`);
        }
        return broken(k, `chain broken: seq jumps from ${last.seq} to ${seq} and prev does not match line ${k - 1}: line(s) deleted before this line`);
      }
      if (seq === last.seq && beforeLast !== undefined && prev === beforeLast.hash) {
        return broken(k - 1, `line ${k} chains to line ${k - 2} with the same seq ${seq}: this line was inserted`);
      }
      return broken(k, `seq ${seq} does not follow seq ${last.seq}: lines reordered or duplicated`);
    }

    beforeLast = last;
    last = { hash: hash(cur), seq };
    count = k;
    cur = ahead;
  }
  return { ok: true, lines: count, lastSeq: last?.seq ?? 0, head: last?.hash ?? GENESIS_PREV };
}
