/**
 * COSE_Sign1 pieces shared by minting and verification (RFC 9052 §4.2, §4.4).
 */
import { encodeCbor } from '../lib/cbor/encode.js';

/** COSE algorithm id for EdDSA. */
export const ALG_EDDSA = -8;
/** CBOR tag of COSE_Sign1. */
export const TAG_COSE_SIGN1 = 18;

/** The serialized protected header `{1: -8, 4: kid}`. */
export function protectedHeader(kid: Uint8Array): Uint8Array {
  return encodeCbor(new Map<number, unknown>([[1, ALG_EDDSA], [4, kid]]));
}

/** `["Signature1", protected, h'', payload]`: the bytes a COSE_Sign1 signature covers. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature1', protectedBytes, new Uint8Array(0), payload]);
}
