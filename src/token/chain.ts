/**
 * Delegation chains (SPEC §5): a delegated token carries its parent token in `prf`,
 * which may carry its own parent, up to a root signed by a trusted issuer key.
 *
 * Twin of the walk in `native/src/verifier.rs`. This is the part of chain
 * verification that needs no cryptography — every link parsed strictly and the
 * links checked against each other — so both backends do all of it before any
 * signature work, in this order, link by link from the presented token (link 0)
 * up to the root:
 *
 *   1. parse link i (malformed_token at link i);
 *   2. with its child (link i − 1): the parent must name a holder key (ParentUnbound),
 *      the child's kid must be that key's id (WrongSigner), and the child must not
 *      expire after it (OutlivesParent) — failures are the child's, link i − 1;
 *   3. when link i carries `prf`: it must name a holder key of its own (ChildUnbound),
 *      its `iss` must be the hex id of the key that signed it (WrongIssuer), and its
 *      parent must be within the depth limit (TooDeep) — at link i.
 */
import { CapframeError } from '../errors.js';
import { keyId } from '../lib/ed25519.js';
import { MalformedError } from '../lib/cbor/validate.js';
import { Code, Delegation, malformed, pack } from './codes.js';
import { parseToken, type ParsedToken } from './parse.js';

/** Delegations a verifier accepts below the root unless told otherwise (SPEC §5). */
export const DEFAULT_MAX_DEPTH = 4;
/** The most a verifier may be configured to accept; the 8 KiB token limit binds sooner in practice. */
export const MAX_DEPTH_LIMIT = 16;

/** `maxDepth` itself, when it is a whole number from 0 to 16; else a CapframeError. */
export function checkMaxDepth(maxDepth: number): number {
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 0 || maxDepth > MAX_DEPTH_LIMIT) {
    throw new CapframeError('invalid_argument', `maxDepth must be a whole number from 0 to ${MAX_DEPTH_LIMIT}, got ${String(maxDepth)}`);
  }
  return maxDepth;
}

/**
 * Every link of `token`, the presented token first and the root last, or the packed
 * result (malformed_token or delegation_invalid, with the link) of the first problem.
 */
export function parseChain(token: Uint8Array, maxDepth: number): ParsedToken[] | number {
  const links: ParsedToken[] = [];
  let bytes: Uint8Array | undefined = token;
  while (bytes !== undefined) {
    const i = links.length;
    let link: ParsedToken;
    try {
      link = parseToken(bytes);
    } catch (error) {
      if (error instanceof MalformedError) return malformed(error.detail, i);
      throw error;
    }
    if (i > 0) {
      const child = links[i - 1]!;
      if (link.holder === undefined) return pack(Code.delegation_invalid, Delegation.ParentUnbound, i - 1);
      if (!sameBytes(child.kid, keyId(link.holder))) return pack(Code.delegation_invalid, Delegation.WrongSigner, i - 1);
      if (child.exp > link.exp) return pack(Code.delegation_invalid, Delegation.OutlivesParent, i - 1);
    }
    if (link.prf !== undefined) {
      if (link.holder === undefined) return pack(Code.delegation_invalid, Delegation.ChildUnbound, i);
      if (!isHexOf(link.iss, link.kid)) return pack(Code.delegation_invalid, Delegation.WrongIssuer, i);
      if (i + 1 > maxDepth) return pack(Code.delegation_invalid, Delegation.TooDeep, i);
    }
    links.push(link);
    bytes = link.prf;
  }
  return links;
}

/**
 * The links of `token` as far as they parse, presented token first, with no
 * checks between them: for showing a chain (e.g. `capframe verify`), never for
 * deciding anything.
 */
export function readChain(token: Uint8Array): ParsedToken[] {
  const links: ParsedToken[] = [];
  let bytes: Uint8Array | undefined = token;
  while (bytes !== undefined && links.length <= MAX_DEPTH_LIMIT) {
    try {
      const link: ParsedToken = parseToken(bytes);
      links.push(link);
      bytes = link.prf;
    } catch {
      break;
    }
  }
  return links;
}

/** The `iss` of a delegated token: the lowercase hex key id of the key that signed it. */
export function issuerOfDelegated(kid: Uint8Array): string {
  return Buffer.from(kid).toString('hex');
}

const HEX = '0123456789abcdef';

/** True when `text` (UTF-8 bytes) is exactly the lowercase hex of `kid`. */
function isHexOf(text: Uint8Array, kid: Uint8Array): boolean {
  if (text.length !== kid.length * 2) return false;
  for (let i = 0; i < kid.length; i++) {
    if (text[2 * i] !== HEX.charCodeAt(kid[i]! >> 4) || text[2 * i + 1] !== HEX.charCodeAt(kid[i]! & 15)) return false;
  }
  return true;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
