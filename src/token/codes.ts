/**
 * Verification outcomes shared with the native addon. A backend returns one integer:
 * the code in the low byte and, for `malformed_token`, the detail in the next byte.
 * The numbers are wire values between TypeScript and Rust (native/src/verifier.rs,
 * native/src/cbor.rs) — change both or neither.
 */

export const Code = {
  ok: 0,
  malformed_token: 1,
  bad_signature: 2,
  unknown_key: 3,
  expired: 4,
  not_yet_valid: 5,
  revoked: 6,
} as const;

/** Why a token is malformed; the numbers match `native/src/cbor.rs`. */
export enum Malformed {
  TooLarge = 1,
  Truncated = 2,
  TrailingBytes = 3,
  IndefiniteLength = 4,
  DuplicateKey = 5,
  UnsortedKeys = 6,
  NonShortest = 7,
  TooDeep = 8,
  UnexpectedTag = 9,
  WrongType = 10,
  BadHeader = 11,
  UnsupportedAlg = 12,
  UnknownClaim = 13,
  MissingClaim = 14,
  InvalidCbor = 15,
  InvalidUtf8 = 16,
  /** Not a `cf1.` string of base64url; only the TypeScript front end reports it. */
  NotPrintable = 17,
}

const CODE_NAMES = ['ok', 'malformed_token', 'bad_signature', 'unknown_key', 'expired', 'not_yet_valid', 'revoked'] as const;
export type VerifyCode = (typeof CODE_NAMES)[number];

const DETAIL_REASONS: Record<Malformed, string> = {
  [Malformed.TooLarge]: 'token is larger than 8 KiB',
  [Malformed.Truncated]: 'token is truncated',
  [Malformed.TrailingBytes]: 'token has trailing bytes',
  [Malformed.IndefiniteLength]: 'token uses an indefinite-length item',
  [Malformed.DuplicateKey]: 'token has a duplicate map key',
  [Malformed.UnsortedKeys]: 'token map keys are not in deterministic order',
  [Malformed.NonShortest]: 'token uses a non-shortest CBOR encoding',
  [Malformed.TooDeep]: 'token nests deeper than 16 levels',
  [Malformed.UnexpectedTag]: 'token has an unexpected CBOR tag',
  [Malformed.WrongType]: 'token has an item of the wrong type',
  [Malformed.BadHeader]: 'token has an unexpected COSE header',
  [Malformed.UnsupportedAlg]: 'token algorithm is not EdDSA',
  [Malformed.UnknownClaim]: 'token has an unknown claim',
  [Malformed.MissingClaim]: 'token lacks a required claim',
  [Malformed.InvalidCbor]: 'token is not valid CBOR',
  [Malformed.InvalidUtf8]: 'token has invalid UTF-8 text',
  [Malformed.NotPrintable]: 'not a capframe token (expected cf1.<base64url>)',
};

const CODE_REASONS: Record<Exclude<VerifyCode, 'malformed_token'>, string> = {
  ok: 'token is valid',
  bad_signature: 'signature does not verify',
  unknown_key: 'token is signed by a key that is not trusted',
  expired: 'token has expired',
  not_yet_valid: 'token is not valid yet',
  revoked: 'token has been revoked',
};

export function codeName(result: number): VerifyCode {
  return CODE_NAMES[result & 0xff] ?? 'malformed_token';
}

export function detailOf(result: number): Malformed | undefined {
  const detail = result >> 8;
  return detail === 0 ? undefined : (detail as Malformed);
}

/** A sentence for people: what was wrong with the token. */
export function reasonFor(result: number): string {
  const name = codeName(result);
  if (name !== 'malformed_token') return CODE_REASONS[name];
  return DETAIL_REASONS[detailOf(result) ?? Malformed.InvalidCbor];
}

/** The packed result for a malformed token with the given detail. */
export function malformed(detail: Malformed): number {
  return Code.malformed_token | (detail << 8);
}
