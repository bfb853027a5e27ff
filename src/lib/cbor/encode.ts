/**
 * Deterministic CBOR encoding (RFC 8949 §4.2.1, core deterministic): shortest heads,
 * definite lengths, map keys sorted by their encoded bytes, floats in the shortest
 * form that keeps the value. Only what tokens contain is supported: integers, finite
 * floats, text, bytes, booleans, null, arrays, Maps and plain objects, and one tag.
 */

/** A value wrapped in a CBOR tag (only the COSE_Sign1 envelope uses one). */
export class Tagged {
  constructor(
    readonly tag: number,
    readonly value: unknown,
  ) {}
}

export function encodeCbor(value: unknown): Uint8Array {
  const chunks: Uint8Array[] = [];
  write(value, chunks);
  return Buffer.concat(chunks);
}

function head(major: number, n: number, out: Uint8Array[]): void {
  const m = major << 5;
  if (n < 24) out.push(Uint8Array.of(m | n));
  else if (n <= 0xff) out.push(Uint8Array.of(m | 24, n));
  else if (n <= 0xffff) out.push(Uint8Array.of(m | 25, n >> 8, n & 0xff));
  else if (n <= 0xffffffff) {
    const b = new Uint8Array(5);
    b[0] = m | 26;
    new DataView(b.buffer).setUint32(1, n);
    out.push(b);
  } else {
    const b = new Uint8Array(9);
    b[0] = m | 27;
    new DataView(b.buffer).setBigUint64(1, BigInt(n));
    out.push(b);
  }
}

function write(value: unknown, out: Uint8Array[]): void {
  if (value === null) out.push(Uint8Array.of(0xf6));
  else if (value === false) out.push(Uint8Array.of(0xf4));
  else if (value === true) out.push(Uint8Array.of(0xf5));
  else if (typeof value === 'number') writeNumber(value, out);
  else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    head(3, bytes.length, out);
    out.push(bytes);
  } else if (value instanceof Uint8Array) {
    head(2, value.length, out);
    out.push(value);
  } else if (Array.isArray(value)) {
    head(4, value.length, out);
    for (const item of value) write(item, out);
  } else if (value instanceof Tagged) {
    head(6, value.tag, out);
    write(value.value, out);
  } else if (value instanceof Map) {
    writeMap([...value.entries()], out);
  } else if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    writeMap(Object.entries(value as Record<string, unknown>), out);
  } else {
    throw new TypeError(`cannot encode ${typeof value} as CBOR`);
  }
}

function writeMap(entries: [unknown, unknown][], out: Uint8Array[]): void {
  const encoded = entries
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [encodeCbor(k), v] as const)
    .sort(([a], [b]) => Buffer.compare(a, b));
  for (let i = 1; i < encoded.length; i++) {
    if (Buffer.compare(encoded[i - 1]![0], encoded[i]![0]) === 0) throw new TypeError('duplicate map key');
  }
  head(5, encoded.length, out);
  for (const [k, v] of encoded) {
    out.push(k);
    write(v, out);
  }
}

function writeNumber(n: number, out: Uint8Array[]): void {
  if (!Number.isFinite(n)) throw new TypeError('cannot encode a non-finite number');
  if (Number.isSafeInteger(n) && !Object.is(n, -0)) {
    if (n >= 0) head(0, n, out);
    else head(1, -1 - n, out);
    return;
  }
  const half = toHalf(n);
  if (half !== undefined) {
    out.push(Uint8Array.of(0xf9, half >> 8, half & 0xff));
  } else if (Math.fround(n) === n) {
    const b = new Uint8Array(5);
    b[0] = 0xfa;
    new DataView(b.buffer).setFloat32(1, n);
    out.push(b);
  } else {
    const b = new Uint8Array(9);
    b[0] = 0xfb;
    new DataView(b.buffer).setFloat64(1, n);
    out.push(b);
  }
}

/** The IEEE 754 half bits for `n` when it is exactly representable, else undefined. */
export function toHalf(n: number): number | undefined {
  if (n === 0) return Object.is(n, -0) ? 0x8000 : 0;
  const sign = n < 0 ? 0x8000 : 0;
  const a = Math.abs(n);
  const exp = Math.floor(Math.log2(a));
  if (exp > 15 || exp < -24) return undefined;
  if (exp >= -14) {
    const mant = (a / 2 ** exp - 1) * 1024;
    if (!Number.isInteger(mant) || mant >= 1024) return undefined;
    return sign | ((exp + 15) << 10) | mant;
  }
  const mant = a * 2 ** 24;
  return Number.isInteger(mant) && mant < 1024 ? sign | mant : undefined;
}
