/**
 * Strict validation of deterministic CBOR (RFC 8949 §4.2.1) — the twin of
 * `native/src/cbor.rs`. Both walk the bytes in the same order and report the same
 * first error, so the two backends agree on every input (see test/vectors/).
 *
 * Rules: shortest-form heads, definite lengths only, map keys strictly ascending in
 * bytewise order of their encodings (so no duplicates), no tags, only `false`,
 * `true`, `null` and finite floats in their shortest exact form as simple values,
 * UTF-8 text, nesting at most MAX_DEPTH.
 */
import { Malformed } from '../../token/codes.js';
import { toHalf } from './encode.js';

/** Maximum nesting of arrays and maps (the outermost container counts as 1). */
export const MAX_DEPTH = 16;

/** Thrown inside the validator and caught by its callers; never escapes the token module. */
export class MalformedError extends Error {
  constructor(readonly detail: Malformed) {
    super(`malformed: ${detail}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A cursor over CBOR bytes. */
export class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }

  peek(): number {
    if (this.pos >= this.buf.length) throw new MalformedError(Malformed.Truncated);
    return this.buf[this.pos]!;
  }

  /** Advances over `n` bytes and returns where they start, for DataView reads. */
  skip(n: number): number {
    const start = this.pos;
    this.take(n);
    return start;
  }

  take(n: number): Uint8Array {
    const end = this.pos + n;
    if (end > this.buf.length) throw new MalformedError(Malformed.Truncated);
    const slice = this.buf.subarray(this.pos, end);
    this.pos = end;
    return slice;
  }

  /**
   * Reads an item head, enforcing the shortest form, and returns [major, argument].
   * Arguments above 2^53 come back as Infinity: no length that large can be satisfied,
   * and claim readers treat them as wrong types.
   */
  head(): [number, number] {
    const b = this.take(1)[0]!;
    const major = b >> 5;
    const ai = b & 0x1f;
    let arg: number;
    if (ai < 24) arg = ai;
    else if (ai === 24) {
      arg = this.take(1)[0]!;
      if (arg < 24) throw new MalformedError(Malformed.NonShortest);
    } else if (ai === 25) {
      arg = this.view.getUint16(this.skip(2));
      if (arg <= 0xff) throw new MalformedError(Malformed.NonShortest);
    } else if (ai === 26) {
      arg = this.view.getUint32(this.skip(4));
      if (arg <= 0xffff) throw new MalformedError(Malformed.NonShortest);
    } else if (ai === 27) {
      const big = this.view.getBigUint64(this.skip(8));
      if (big <= 0xffffffffn) throw new MalformedError(Malformed.NonShortest);
      arg = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : Infinity;
    } else if (ai === 31 && major >= 2 && major <= 5) {
      throw new MalformedError(Malformed.IndefiniteLength);
    } else {
      throw new MalformedError(Malformed.InvalidCbor);
    }
    return [major, arg];
  }

  /** Validates one complete item; `depth` is the enclosing container's nesting. */
  item(depth: number): void {
    const b = this.peek();
    const major = b >> 5;
    if (major === 7) {
      this.pos += 1;
      this.simple(b & 0x1f);
      return;
    }
    if (major === 6) {
      this.head();
      throw new MalformedError(Malformed.UnexpectedTag);
    }
    const [, arg] = this.head();
    switch (major) {
      case 0:
      case 1:
        return;
      case 2:
        this.take(arg);
        return;
      case 3:
        try {
          utf8.decode(this.take(arg));
        } catch (error) {
          if (error instanceof MalformedError) throw error;
          throw new MalformedError(Malformed.InvalidUtf8);
        }
        return;
      case 4: {
        const inner = nest(depth);
        for (let i = 0; i < arg; i++) this.item(inner);
        return;
      }
      default: {
        const inner = nest(depth);
        let prev: Uint8Array | undefined;
        for (let i = 0; i < arg; i++) {
          const start = this.pos;
          this.item(inner);
          const key = this.buf.subarray(start, this.pos);
          if (prev !== undefined) {
            const order = Buffer.compare(prev, key);
            if (order === 0) throw new MalformedError(Malformed.DuplicateKey);
            if (order > 0) throw new MalformedError(Malformed.UnsortedKeys);
          }
          prev = key;
          this.item(inner);
        }
      }
    }
  }

  private simple(ai: number): void {
    if (ai >= 20 && ai <= 22) return;
    if (ai === 25) {
      const bits = this.view.getUint16(this.skip(2));
      // Exponent all ones: infinity or NaN, which JSON arguments never hold.
      if ((bits & 0x7c00) === 0x7c00) throw new MalformedError(Malformed.InvalidCbor);
      return;
    }
    if (ai === 26) {
      const v = this.view.getFloat32(this.skip(4));
      if (!Number.isFinite(v)) throw new MalformedError(Malformed.InvalidCbor);
      if (toHalf(v) !== undefined) throw new MalformedError(Malformed.NonShortest);
      return;
    }
    if (ai === 27) {
      const v = this.view.getFloat64(this.skip(8));
      if (!Number.isFinite(v)) throw new MalformedError(Malformed.InvalidCbor);
      if (Math.fround(v) === v) throw new MalformedError(Malformed.NonShortest);
      return;
    }
    // A "break" outside an indefinite item, undefined, or an unassigned simple value.
    throw new MalformedError(Malformed.InvalidCbor);
  }
}

function nest(depth: number): number {
  if (depth >= MAX_DEPTH) throw new MalformedError(Malformed.TooDeep);
  return depth + 1;
}

/** Validates `buf` as exactly one well-formed deterministic item with no tags. */
export function validateCbor(buf: Uint8Array): void {
  const r = new Reader(buf);
  r.item(0);
  if (!r.atEnd()) throw new MalformedError(Malformed.TrailingBytes);
}
