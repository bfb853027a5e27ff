/**
 * The capframe token envelope: COSE_Sign1 (tag 18) around a CWT claims map.
 *
 * Twin of `native/src/token.rs`. Parsing is strict and happens entirely before any
 * signature work: the size limit, then deterministic-CBOR validation of the whole
 * token, then the envelope shape, the protected header and every claim's type —
 * `cnf` down to its last byte (`{1: {1: 1, -1: 6, -2: x}}`, x not of small order).
 * A parent token in `prf` is only checked to be a byte string here; the chain
 * walker (`chain.ts`) parses it as a token of its own.
 */
import { isCanonicalEncoding, isSmallOrderEncoding } from '../lib/ed25519.js';
import { MalformedError, Reader, validateCbor } from '../lib/cbor/validate.js';
import { Malformed } from './codes.js';

/** Tokens larger than this are rejected before anything else is read. */
export const MAX_TOKEN_BYTES = 8192;

/** A COSE_Sign1 taken apart: what a signature check needs. */
export interface Envelope {
  /** The serialized protected header (the content of its bstr). */
  protectedBytes: Uint8Array;
  kid: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** The parts of a structurally valid token that verification needs. */
export interface ParsedToken extends Envelope {
  /** The `iss` claim's UTF-8 bytes. */
  iss: Uint8Array;
  exp: number;
  nbf: number | undefined;
  cti: Uint8Array;
  /** The raw 32-byte Ed25519 key of `cnf`, when the token is holder-bound. */
  holder: Uint8Array | undefined;
  /** The parent token's bytes (`prf`), when the token is delegated. */
  prf: Uint8Array | undefined;
}

/** Parses a token, throwing MalformedError with the first problem found. */
export function parseToken(token: Uint8Array): ParsedToken {
  if (token.length > MAX_TOKEN_BYTES) throw new MalformedError(Malformed.TooLarge);
  const envelope = parseEnvelope(token);
  return { ...envelope, ...claims(envelope.payload) };
}

/**
 * The COSE_Sign1 envelope shared by tokens and holder proofs: one well-formed
 * deterministic item, tag 18, `[protected {1: -8, 4: kid}, {}, payload, 64-byte signature]`.
 * The caller checks the size first.
 */
export function parseEnvelope(token: Uint8Array): Envelope {
  checkWellFormed(token);

  const r = new Reader(token);
  if (r.peek() !== 0xd2) throw new MalformedError(Malformed.WrongType);
  r.pos += 1;
  expectHead(r, 4, 4, Malformed.WrongType);
  const protectedBytes = bstr(r);
  const [major, count] = r.head();
  if (major !== 5) throw new MalformedError(Malformed.WrongType);
  if (count !== 0) throw new MalformedError(Malformed.BadHeader);
  const payload = bstr(r);
  const signature = bstr(r);
  if (signature.length !== 64) throw new MalformedError(Malformed.WrongType);

  const kid = protectedHeader(protectedBytes);
  return { protectedBytes, kid, payload, signature };
}

/** The whole token is one well-formed item; the only tag allowed is the outer 18. */
function checkWellFormed(token: Uint8Array): void {
  const r = new Reader(token);
  if (r.peek() >> 5 === 6) {
    const [, tag] = r.head();
    if (tag !== 18) throw new MalformedError(Malformed.UnexpectedTag);
  }
  r.item(0);
  if (!r.atEnd()) throw new MalformedError(Malformed.TrailingBytes);
}

export function expectHead(r: Reader, major: number, arg: number, otherwise: Malformed): void {
  const [m, a] = r.head();
  if (m !== major || a !== arg) throw new MalformedError(otherwise);
}

export function bstr(r: Reader): Uint8Array {
  const [major, len] = r.head();
  if (major !== 2) throw new MalformedError(Malformed.WrongType);
  return r.take(len);
}

export function text(r: Reader): Uint8Array {
  const [major, len] = r.head();
  if (major !== 3) throw new MalformedError(Malformed.WrongType);
  return r.take(len);
}

export function uint(r: Reader): number {
  const [major, v] = r.head();
  if (major !== 0 || v > Number.MAX_SAFE_INTEGER) throw new MalformedError(Malformed.WrongType);
  return v;
}

/** Exactly `{1: -8, 4: kid}` with an 8-byte kid. */
function protectedHeader(bytes: Uint8Array): Uint8Array {
  validateCbor(bytes);
  const r = new Reader(bytes);
  const [major, n] = r.head();
  if (major !== 5) throw new MalformedError(Malformed.BadHeader);
  let alg = false;
  let kid: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const [km, key] = r.head();
    if (km === 0 && key === 1) {
      expectHead(r, 1, 7, Malformed.UnsupportedAlg);
      alg = true;
    } else if (km === 0 && key === 4) {
      expectHead(r, 2, 8, Malformed.BadHeader);
      kid = r.take(8);
    } else {
      throw new MalformedError(Malformed.BadHeader);
    }
  }
  if (!alg || kid === undefined) throw new MalformedError(Malformed.BadHeader);
  return kid;
}

const TEXT_CLAIMS: Record<string, number> = { cap: 3, prf: 2, tool: 3, when: 4 };
const textDecoder = new TextDecoder();

type Claims = Pick<ParsedToken, 'iss' | 'exp' | 'nbf' | 'cti' | 'holder' | 'prf'>;

/**
 * Checks every claim's type. Keys arrive in canonical order (validated), so the
 * first error found is the same one the native backend reports.
 */
function claims(payload: Uint8Array): Claims {
  validateCbor(payload);
  const r = new Reader(payload);
  const [major, n] = r.head();
  if (major !== 5) throw new MalformedError(Malformed.WrongType);
  let iss: Uint8Array | undefined;
  let iat = false;
  let tool = false;
  let exp: number | undefined;
  let nbf: number | undefined;
  let cti: Uint8Array | undefined;
  let holder: Uint8Array | undefined;
  let prf: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const [km, key] = r.head();
    if (km === 0 && key >= 1 && key <= 3) {
      const value = text(r);
      if (key === 1) iss = value;
    } else if (km === 0 && key === 4) exp = uint(r);
    else if (km === 0 && key === 5) nbf = uint(r);
    else if (km === 0 && key === 6) {
      uint(r);
      iat = true;
    } else if (km === 0 && key === 7) {
      cti = bstr(r);
      if (cti.length !== 16) throw new MalformedError(Malformed.WrongType);
    } else if (km === 0 && key === 8) {
      holder = holderKey(r);
    } else if (km === 3) {
      const name = textDecoder.decode(r.take(key));
      const expectedMajor = TEXT_CLAIMS[name];
      if (expectedMajor === undefined || !Object.hasOwn(TEXT_CLAIMS, name)) {
        throw new MalformedError(Malformed.UnknownClaim);
      }
      if (r.peek() >> 5 !== expectedMajor) throw new MalformedError(Malformed.WrongType);
      if (name === 'tool') {
        if (text(r).length === 0) throw new MalformedError(Malformed.WrongType);
        tool = true;
      } else if (name === 'prf') {
        prf = bstr(r);
      } else {
        r.item(1);
      }
    } else {
      throw new MalformedError(Malformed.UnknownClaim);
    }
  }
  if (iss === undefined || exp === undefined || !iat || cti === undefined || !tool) {
    throw new MalformedError(Malformed.MissingClaim);
  }
  return { iss, exp, nbf, cti, holder, prf };
}

/**
 * `cnf`, RFC 8747 with an RFC 8037 OKP key, exactly: `{1: {1: 1, -1: 6, -2: x}}` —
 * one member (COSE_Key), whose members are kty OKP, crv Ed25519 and a 32-byte x
 * that is a canonical encoding (y < p) and not of small order. Anything else, extra members included, is
 * refused: a key we read differently from another implementation is no binding.
 */
function holderKey(r: Reader): Uint8Array {
  try {
    for (const [major, arg] of HOLDER_KEY_HEADS) {
      const [m, a] = r.head();
      if (m !== major || a !== arg) throw new MalformedError(Malformed.BadHolderKey);
    }
    const x = r.take(32);
    if (!isCanonicalEncoding(x) || isSmallOrderEncoding(x)) throw new MalformedError(Malformed.BadHolderKey);
    return x;
  } catch (error) {
    if (error instanceof MalformedError) throw new MalformedError(Malformed.BadHolderKey);
    throw error;
  }
}

/** The item heads of `{1: {1: 1, -1: 6, -2: h'<32 bytes>'}}`, in order. */
const HOLDER_KEY_HEADS: ReadonlyArray<readonly [number, number]> = [
  [5, 1], [0, 1], [5, 3], [0, 1], [0, 1], [1, 0], [0, 6], [1, 1], [2, 32],
];
