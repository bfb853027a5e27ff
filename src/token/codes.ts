/**
 * Verification outcomes shared with the native addon. A backend returns one integer:
 * the code in the low byte, a detail in the next byte (why a token is malformed, why
 * a chain or a proof is refused), and in the third byte the link of a delegation
 * chain the answer is about (0 is the presented token, 1 its parent, … up to the
 * root). The numbers are wire values between TypeScript and Rust
 * (native/src/verifier.rs, native/src/cbor.rs, native/src/proof.rs) — change both or
 * neither.
 */

export const Code = {
  ok: 0,
  malformed_token: 1,
  bad_signature: 2,
  unknown_key: 3,
  expired: 4,
  not_yet_valid: 5,
  revoked: 6,
  delegation_invalid: 7,
  bad_proof: 8,
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
  /** `cnf` is not exactly `{1: {1: 1, -1: 6, -2: x}}` with a 32-byte x that is not of small order. */
  BadHolderKey = 18,
}

/** Why a delegation chain is refused (`delegation_invalid`); the numbers match `native/src/verifier.rs`. */
export enum Delegation {
  /** The chain has more links than the verifier's maximum depth allows. */
  TooDeep = 1,
  /** A token carrying `prf` names no holder key of its own (`cnf`). */
  ChildUnbound = 2,
  /** The parent in `prf` has no holder key, so nobody could sign a child of it. */
  ParentUnbound = 3,
  /** The child's `kid` is not the key id of its parent's holder key. */
  WrongSigner = 4,
  /** The child's `iss` is not the hex key id of the key that signed it. */
  WrongIssuer = 5,
  /** The child expires after its parent. */
  OutlivesParent = 6,
  /** The child's tool pattern is not provably within its parent's (checked in TypeScript for both backends). */
  ToolNotSubset = 7,
  /** The child names a capability other than its parent chain's (checked in TypeScript for both backends). */
  CapabilityChanged = 8,
}

/** Why a holder proof is refused (`bad_proof`); the numbers match `native/src/proof.rs`. */
export enum ProofFailure {
  /** A proof was presented with a token that is not bound to a holder key. */
  NotBound = 1,
  /** The token is holder-bound and no proof was presented (TypeScript front end only). */
  Missing = 2,
  TooLarge = 3,
  Malformed = 4,
  /** The proof's `kid` is not the key id of the token's holder key. */
  WrongKey = 5,
  /** The proof names another token (`cti`). */
  WrongToken = 6,
  WrongTool = 7,
  WrongArgs = 8,
  /** `iat` is more than 60 s away from the verifier's clock. */
  Stale = 9,
  WrongAudience = 10,
  /** The proof names an audience and this verifier names none. */
  UnexpectedAudience = 11,
  /** This verifier names an audience and the proof names none. */
  MissingAudience = 12,
  BadSignature = 13,
  /** Not a `cfp1.` string of base64url (TypeScript front end only). */
  NotPrintable = 14,
}

const CODE_NAMES = ['ok', 'malformed_token', 'bad_signature', 'unknown_key', 'expired', 'not_yet_valid', 'revoked', 'delegation_invalid', 'bad_proof'] as const;
export type VerifyCode = (typeof CODE_NAMES)[number];

const MALFORMED_REASONS: Record<Malformed, string> = {
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
  [Malformed.BadHolderKey]: 'token cnf is not an Ed25519 COSE_Key {1: {1: 1, -1: 6, -2: <32 bytes>}} of a usable key',
};

const DELEGATION_REASONS: Record<Delegation, string> = {
  [Delegation.TooDeep]: 'delegation chain is deeper than this verifier allows',
  [Delegation.ChildUnbound]: 'delegated token names no holder key (cnf) of its own',
  [Delegation.ParentUnbound]: 'parent token has no holder key, so it cannot be delegated',
  [Delegation.WrongSigner]: 'delegated token is not signed by its parent\'s holder key (kid)',
  [Delegation.WrongIssuer]: 'delegated token\'s iss is not the key id of the key that signed it',
  [Delegation.OutlivesParent]: 'delegated token expires after its parent',
  [Delegation.ToolNotSubset]: 'delegated token names tools outside its parent\'s',
  [Delegation.CapabilityChanged]: 'delegated token names a capability other than its parent\'s',
};

const PROOF_REASONS: Record<ProofFailure, string> = {
  [ProofFailure.NotBound]: 'a holder proof was presented, but the token is not bound to a holder key',
  [ProofFailure.Missing]: 'token is bound to a holder key and no holder proof was presented',
  [ProofFailure.TooLarge]: 'holder proof is larger than 1 KiB',
  [ProofFailure.Malformed]: 'holder proof is not a well-formed capframe proof',
  [ProofFailure.WrongKey]: 'holder proof is not by the token\'s holder key (kid)',
  [ProofFailure.WrongToken]: 'holder proof was made for another token',
  [ProofFailure.WrongTool]: 'holder proof was made for another tool',
  [ProofFailure.WrongArgs]: 'holder proof was made for other arguments',
  [ProofFailure.Stale]: 'holder proof is more than 60 s old or in the future',
  [ProofFailure.WrongAudience]: 'holder proof was made for another audience',
  [ProofFailure.UnexpectedAudience]: 'holder proof names an audience and this verifier names none',
  [ProofFailure.MissingAudience]: 'holder proof names no audience and this verifier requires one',
  [ProofFailure.BadSignature]: 'holder proof signature does not verify',
  [ProofFailure.NotPrintable]: 'not a capframe holder proof (expected cfp1.<base64url>)',
};

const CODE_REASONS: Record<Exclude<VerifyCode, 'malformed_token' | 'delegation_invalid' | 'bad_proof'>, string> = {
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

/** The detail byte, when there is one (its meaning depends on the code). */
export function detailOf(result: number): number | undefined {
  const detail = (result >> 8) & 0xff;
  return detail === 0 ? undefined : detail;
}

/** Which link of a delegation chain the result is about: 0 is the presented token, 1 its parent, … */
export function linkOf(result: number): number {
  return (result >> 16) & 0xff;
}

/** The name of the detail, e.g. `Truncated`, `WrongSigner`, `Stale`: what the vector files state. */
export function detailName(result: number): string | undefined {
  const detail = detailOf(result);
  if (detail === undefined) return undefined;
  switch (codeName(result)) {
    case 'malformed_token':
      return Malformed[detail];
    case 'delegation_invalid':
      return Delegation[detail];
    case 'bad_proof':
      return ProofFailure[detail];
    default:
      return undefined;
  }
}

/** A sentence for people: what was wrong with the token (or its chain, or its proof); the link is not named. */
export function reasonFor(result: number): string {
  const name = codeName(result);
  const detail = detailOf(result);
  let reason: string;
  if (name === 'malformed_token') reason = MALFORMED_REASONS[(detail ?? Malformed.InvalidCbor) as Malformed] ?? MALFORMED_REASONS[Malformed.InvalidCbor];
  else if (name === 'delegation_invalid') reason = DELEGATION_REASONS[detail as Delegation] ?? 'delegation chain is invalid';
  else if (name === 'bad_proof') reason = PROOF_REASONS[detail as ProofFailure] ?? 'holder proof is invalid';
  else reason = CODE_REASONS[name];
  return reason;
}

/** Which token of a delegation chain a link number names, for people. */
export function describeLink(link: number): string {
  if (link === 0) return 'the presented token';
  if (link === 1) return 'its parent';
  if (link === 2) return 'its grandparent';
  return `its ancestor ${link} links up`;
}

/** Packs a code, a detail and a chain link into one result. */
export function pack(code: number, detail = 0, link = 0): number {
  return code | (detail << 8) | (link << 16);
}

/** The packed result for a malformed token with the given detail. */
export function malformed(detail: Malformed, link = 0): number {
  return pack(Code.malformed_token, detail, link);
}
