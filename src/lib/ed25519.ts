/**
 * Ed25519 with `verify_strict` semantics on top of node:crypto (OpenSSL).
 *
 * OpenSSL already rejects S ≥ L and compares R bytewise against the canonical
 * encoding of [S]B − [k]A (cofactorless). What ed25519-dalek's `verify_strict` adds,
 * and this module adds the same way, is rejecting small-order A and small-order R.
 * An encoding is small-order exactly when its y coordinate (sign bit cleared, reduced
 * the way dalek reads it) is one of seven values — the libsodium blacklist approach.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** y coordinates (mod 2^255, sign bit cleared) of every small-order point encoding. */
const SMALL_ORDER_Y = new Set<bigint>([
  0n, // order 4
  1n, // identity
  P - 1n, // order 2
  P, // non-canonical 0
  P + 1n, // non-canonical 1
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n, // order 8
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n, // order 8
]);

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function yOf(encoding: Uint8Array): bigint {
  return littleEndian(encoding) & ((1n << 255n) - 1n);
}

/** y (little-endian, sign bit cleared) as 32 bytes, for the byte-wise comparisons below. */
const yBytes = (n: bigint) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
const SMALL_ORDER_Y_BYTES = [...SMALL_ORDER_Y].map(yBytes);

/** True when y (sign bit cleared) is below p: the one encoding every implementation reads alike. */
export function isCanonicalEncoding(encoding: Uint8Array): boolean {
  // y >= p = 2^255 - 19 only when bytes 1..30 are 0xff, byte 31 is 0x7f (sign bit aside) and byte 0 >= 0xed.
  if ((encoding[31]! & 0x7f) !== 0x7f || encoding[0]! < 0xed) return true;
  for (let i = 1; i < 31; i++) if (encoding[i] !== 0xff) return true;
  return false;
}

/** True when the encoding's y is one of the small-order points' (compared byte-wise: this runs on every R). */
export function isSmallOrderEncoding(encoding: Uint8Array): boolean {
  next: for (const y of SMALL_ORDER_Y_BYTES) {
    for (let i = 0; i < 31; i++) if (encoding[i] !== y[i]) continue next;
    if ((encoding[31]! & 0x7f) === y[31]) return true;
  }
  return false;
}

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = base % P;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

const D = (((-121665n * pow(121666n, P - 2n)) % P) + P) % P;

/** True when the 32 bytes decode to a curve point the way curve25519-dalek decodes. */
export function isValidPoint(encoding: Uint8Array): boolean {
  if (encoding.length !== 32) return false;
  const y = yOf(encoding) % P;
  const y2 = (y * y) % P;
  const u = (y2 - 1n + P) % P;
  const v = (D * y2 + 1n) % P;
  const x2 = (u * pow(v, P - 2n)) % P;
  return x2 === 0n || pow(x2, (P - 1n) / 2n) === 1n;
}

/** First 8 bytes of SHA-256 of the raw public key (SPEC §2 `kid`). */
export function keyId(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest().subarray(0, 8));
}

/** A raw 32-byte public key as a node:crypto KeyObject. */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
    format: 'jwk',
  });
}

/** A trusted key prepared once: the KeyObject and whether A is small-order. */
export interface PreparedKey {
  raw: Uint8Array;
  object: KeyObject;
  smallOrder: boolean;
}

export function prepareKey(publicKey: Uint8Array): PreparedKey {
  return { raw: publicKey, object: publicKeyObject(publicKey), smallOrder: isSmallOrderEncoding(publicKey) };
}

/** L as 32 little-endian bytes, for a byte-wise S < L check on the hot path. */
const L_BYTES = Uint8Array.from({ length: 32 }, (_, i) => Number((L >> BigInt(8 * i)) & 0xffn));

function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! !== L_BYTES[i]!) return s[i]! < L_BYTES[i]!;
  }
  return false; // S == L
}

/** Strict verification: S < L, A and R not of small order, then the group equation. */
export function verifyStrict(key: PreparedKey, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || key.smallOrder) return false;
  if (!isCanonicalScalar(signature.subarray(32))) return false;
  if (isSmallOrderEncoding(signature.subarray(0, 32))) return false;
  return cryptoVerify(null, message, key.object, signature);
}
