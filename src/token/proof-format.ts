/**
 * The holder proof (SPEC §5): a COSE_Sign1 (tag 18, protected `{1: -8, 4: kid}`,
 * empty unprotected header) signed by the token's holder key over a deterministic
 * CBOR map with small integer keys:
 *
 *   1 cti    bstr(16)  the presented token's cti
 *   2 tool   tstr      the tool called, exactly
 *   3 args   bstr(32)  SHA-256 of the RFC 8785 canonical JSON of the arguments
 *   4 iat    uint      when the proof was made, milliseconds since the epoch (≤ 2^53 − 1)
 *   5 nonce  bstr(16)  random; a verifier accepts it once
 *   6 aud    tstr      optional: the verifier the proof is for
 *
 * At most 1 KiB, parsed as strictly as a token, before any signature work. A proof
 * can never pass for a token (claim 1 of a token is text, of a proof 16 bytes), nor
 * a token for a proof, although the same holder key signs proofs and child tokens.
 *
 * Twin of `native/src/proof.rs`.
 */
import { createHash } from 'node:crypto';

import { canonicalJson } from '../lib/canonical-json.js';
import { MalformedError, Reader, validateCbor } from '../lib/cbor/validate.js';
import { Malformed, ProofFailure } from './codes.js';
import { bstr, parseEnvelope, text, uint, type Envelope } from './parse.js';

/** Proofs larger than this are refused before anything else is read. */
export const MAX_PROOF_BYTES = 1024;
/** How far a proof's `iat` may be from the verifier's clock, either way. */
export const PROOF_SKEW_MS = 60_000;
/** The printable form: `cfp1.` + base64url (no padding) of the COSE bytes. */
export const PROOF_PREFIX = 'cfp1.';

export const ProofKey = { cti: 1, tool: 2, args: 3, iat: 4, nonce: 5, aud: 6 } as const;

export interface ParsedProof extends Envelope {
  cti: Uint8Array;
  /** UTF-8 bytes of the tool name. */
  tool: Uint8Array;
  argsHash: Uint8Array;
  iat: number;
  nonce: Uint8Array;
  /** UTF-8 bytes of the audience, when the proof names one. */
  aud: Uint8Array | undefined;
}

/**
 * The arguments hash a proof carries: SHA-256 of the RFC 8785 canonical JSON of the
 * arguments. Throws CapframeError (`invalid_argument`) for data that is not I-JSON.
 */
export function proofArgsHash(args: unknown): Uint8Array {
  return new Uint8Array(createHash('sha256').update(canonicalJson(args)).digest());
}

/** Parses a proof, or says why it is not one (TooLarge or Malformed). */
export function parseProof(bytes: Uint8Array): ParsedProof | ProofFailure {
  if (bytes.length > MAX_PROOF_BYTES) return ProofFailure.TooLarge;
  try {
    const envelope = parseEnvelope(bytes);
    return { ...envelope, ...fields(envelope.payload) };
  } catch (error) {
    if (error instanceof MalformedError) return ProofFailure.Malformed;
    throw error;
  }
}

function fields(payload: Uint8Array): Omit<ParsedProof, keyof Envelope> {
  validateCbor(payload);
  const r = new Reader(payload);
  const [major, n] = r.head();
  if (major !== 5) throw new MalformedError(Malformed.WrongType);
  let cti: Uint8Array | undefined;
  let tool: Uint8Array | undefined;
  let argsHash: Uint8Array | undefined;
  let iat: number | undefined;
  let nonce: Uint8Array | undefined;
  let aud: Uint8Array | undefined;
  const sized = (bytes: Uint8Array, length: number) => {
    if (bytes.length !== length) throw new MalformedError(Malformed.WrongType);
    return bytes;
  };
  for (let i = 0; i < n; i++) {
    const [km, key] = r.head();
    if (km !== 0) throw new MalformedError(Malformed.UnknownClaim);
    if (key === ProofKey.cti) cti = sized(bstr(r), 16);
    else if (key === ProofKey.tool) tool = text(r);
    else if (key === ProofKey.args) argsHash = sized(bstr(r), 32);
    else if (key === ProofKey.iat) iat = uint(r);
    else if (key === ProofKey.nonce) nonce = sized(bstr(r), 16);
    else if (key === ProofKey.aud) aud = text(r);
    else throw new MalformedError(Malformed.UnknownClaim);
  }
  if (cti === undefined || tool === undefined || argsHash === undefined || iat === undefined || nonce === undefined) {
    throw new MalformedError(Malformed.MissingClaim);
  }
  return { cti, tool, argsHash, iat, nonce, aud };
}
