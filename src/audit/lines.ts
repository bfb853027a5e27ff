import type { FileHandle } from 'node:fs/promises';

/** Byte value of "\n": audit lines are split on raw bytes so hashes see exact bytes. */
const NEWLINE = 0x0a;
const CHUNK = 64 * 1024;

/** The end of a file, as complete lines plus any unterminated fragment after them. */
export interface FileTail {
  /** The last complete lines (without their "\n"), oldest first. */
  lines: Buffer[];
  /** Byte offset of `lines[0]` (or of `partial` when there are no lines). */
  start: number;
  /** Bytes after the last "\n": a final line that was cut short. Empty when the file ends with "\n". */
  partial: Buffer;
  /** Offset just past the last "\n" (where `partial` begins). */
  end: number;
}

/**
 * Reads the last `count` complete lines of an open file by reading backwards, so opening
 * a large log stays cheap.
 *
 * @example
 * const tail = await readTail(handle, (await handle.stat()).size, 2);
 */
export async function readTail(handle: FileHandle, size: number, count: number): Promise<FileTail> {
  const chunks: Buffer[] = [];
  let pos = size;
  let newlines = 0;
  // count + 1 newlines guarantee `count` whole lines plus the boundary in front of them.
  while (pos > 0 && newlines <= count) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const chunk = await readExactly(handle, pos, len);
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === NEWLINE) newlines++;
    chunks.unshift(chunk);
  }
  const buf = Buffer.concat(chunks);
  const lastNewline = buf.lastIndexOf(NEWLINE);
  const partial = buf.subarray(lastNewline + 1);
  const end = pos + lastNewline + 1;
  const segments = splitLines(buf.subarray(0, lastNewline + 1));
  // Unless we reached the start of the file, the first segment may be the cut-off end of
  // an earlier line; it is never returned.
  const whole = pos > 0 ? segments.slice(1) : segments;
  const lines = count === 0 ? [] : whole.slice(-count);
  let start = end;
  for (const line of lines) start -= line.length + 1;
  return {
    lines,
    start,
    partial,
    end,
  };
}

/** Splits "\n"-terminated bytes into lines; bytes after the last "\n" are ignored. */
export function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let from = 0;
  for (;;) {
    const at = bytes.indexOf(NEWLINE, from);
    if (at < 0) return lines;
    lines.push(bytes.subarray(from, at));
    from = at + 1;
  }
}

/**
 * Accumulates chunks read from a file and hands back complete lines; the unterminated
 * remainder waits for the next chunk.
 *
 * @example
 * const splitter = new LineSplitter();
 * splitter.push(Buffer.from('a\nb')); // [<a>]
 * splitter.push(Buffer.from('\n'));   // [<b>]
 */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  /** Bytes received but not yet terminated by "\n". */
  get pending(): Buffer {
    return this.rest;
  }

  push(chunk: Buffer): Buffer[] {
    const joined = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
    const lastNewline = joined.lastIndexOf(NEWLINE);
    if (lastNewline < 0) {
      this.rest = joined;
      return [];
    }
    // Copy the remainder so it does not pin a large chunk in memory.
    this.rest = Buffer.from(joined.subarray(lastNewline + 1));
    return splitLines(joined.subarray(0, lastNewline + 1));
  }

  /** Forgets buffered bytes (after the file was truncated or replaced). */
  reset(): void {
    this.rest = Buffer.alloc(0);
  }
}

/** Reads exactly `length` bytes at `position` (a short read would mean the file shrank). */
export async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) return buf.subarray(0, done);
    done += bytesRead;
  }
  return buf;
}
