/**
 * CWT claims (RFC 8392) as carried by capframe tokens, and their decoding from a
 * payload that `parseToken` (or the native addon) has already validated.
 */
import { Decoder } from 'cbor-x';

import { encodeBase64url } from '../lib/base64url.js';

/** Integer claim keys (RFC 8392 §4, RFC 8747 for cnf). */
export const ClaimKey = { iss: 1, sub: 2, aud: 3, exp: 4, nbf: 5, iat: 6, cti: 7, cnf: 8 } as const;

export interface Claims {
  /** Issuer (`iss`). */
  iss: string;
  /** Agent the token was minted for (`sub`), when it names one. */
  sub?: string;
  aud?: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  nbf?: number;
  iat: number;
  /** 16 random bytes naming the token; printed as `tok_` + base64url. */
  cti: Uint8Array;
  /** Holder key (RFC 8747 COSE_Key), when the token is bound to one. */
  cnf?: unknown;
  /** Tool name or pattern such as `database.*`. */
  tool: string;
  /** Capability name. */
  cap?: string;
  /** Argument constraints ({arg, op, value} objects, SPEC §4). */
  when?: unknown[];
  /** Parent token bytes, for delegated tokens. */
  prf?: Uint8Array;
}

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

/** Token id as people see it: `tok_` + base64url of `cti`. */
export function tokenId(cti: Uint8Array): string {
  return `tok_${encodeBase64url(cti)}`;
}

/** Plain JSON-like data from decoded CBOR. Keys are defined, not assigned, so a `__proto__` key stays data. */
function toPlain(value: unknown): unknown {
  // cbor-x hands back 64-bit integers as bigint; the encoder only writes safe integers.
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) Object.defineProperty(out, String(k), { value: toPlain(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  if (Array.isArray(value)) return value.map(toPlain);
  return value;
}

/** Decodes a validated claims payload. */
export function decodeClaims(payload: Uint8Array): Claims {
  const map = decoder.decode(payload) as Map<number | string, unknown>;
  const claims: Claims = {
    iss: map.get(ClaimKey.iss) as string,
    exp: toPlain(map.get(ClaimKey.exp)) as number,
    iat: toPlain(map.get(ClaimKey.iat)) as number,
    cti: new Uint8Array(map.get(ClaimKey.cti) as Uint8Array),
    tool: map.get('tool') as string,
  };
  const sub = map.get(ClaimKey.sub);
  if (sub !== undefined) claims.sub = sub as string;
  const aud = map.get(ClaimKey.aud);
  if (aud !== undefined) claims.aud = aud as string;
  const nbf = map.get(ClaimKey.nbf);
  if (nbf !== undefined) claims.nbf = toPlain(nbf) as number;
  const cnf = map.get(ClaimKey.cnf);
  if (cnf !== undefined) claims.cnf = cnf;
  const cap = map.get('cap');
  if (cap !== undefined) claims.cap = cap as string;
  const when = map.get('when');
  if (when !== undefined) claims.when = toPlain(when) as unknown[];
  const prf = map.get('prf');
  if (prf !== undefined) claims.prf = new Uint8Array(prf as Uint8Array);
  return claims;
}
