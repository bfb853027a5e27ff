/**
 * Minting: a CWT claims map, signed as a COSE_Sign1 with the issuer's Ed25519 key.
 */
import { randomBytes, sign } from 'node:crypto';

import { CapframeError } from '../errors.js';
import { encodeCbor, Tagged } from '../lib/cbor/encode.js';
import { parseHolderKey, signingKey, type SigningKey } from '../keys/keys.js';
import { compileConstraints } from '../policy/constraints.js';
import { ClaimKey, tokenId, type Claims } from './claims.js';
import { protectedHeader, sigStructure, TAG_COSE_SIGN1 } from './cose.js';
import { MAX_TOKEN_BYTES } from './parse.js';
import { toPrintable } from './printable.js';

export interface MintOptions {
  /** Issuer secret key: 32-byte seed, PKCS#8 PEM, or a prepared SigningKey. */
  key: Uint8Array | string | SigningKey;
  /** Exact tool name (`database.query`) or pattern (`database.*`). */
  tool: string;
  /** Lifetime in seconds (positive integer). */
  ttl: number;
  /** Agent id, the `sub` claim. */
  agent?: string;
  capability?: string;
  /** Argument constraints copied into the `when` claim (SPEC §4). */
  when?: readonly unknown[];
  audience?: string;
  /** Seconds since the epoch before which the token is not valid. */
  notBefore?: number;
  /** Defaults to `capframe`. */
  issuer?: string;
  /** Holder key (raw 32-byte Ed25519 public key) for a `cnf` claim: every call then needs a proof by it. */
  holderKey?: Uint8Array;
  /** Parent token bytes for a delegated token. */
  parent?: Uint8Array;
  /** Override the clock (seconds since the epoch); for tests. */
  now?: number;
}

export interface MintedToken {
  /** Printable form, `cf1.…`. */
  token: string;
  /** COSE_Sign1 bytes. */
  bytes: Uint8Array;
  /** `tok_…` id. */
  id: string;
  claims: Claims;
  expiresAt: Date;
}

function isSigningKey(key: MintOptions['key']): key is SigningKey {
  return typeof key === 'object' && !(key instanceof Uint8Array);
}

/**
 * Mints a capability token.
 *
 * @example
 * const { secretKey } = generateKeyPair();
 * const { token, id } = mint({ key: secretKey, tool: 'database.query', agent: 'support-bot', ttl: 300 });
 */
export function mint(options: MintOptions): MintedToken {
  const key = isSigningKey(options.key) ? options.key : signingKey(options.key);
  if (typeof options.tool !== 'string' || options.tool.length === 0) {
    throw new CapframeError('invalid_argument', 'mint: tool must be a non-empty string');
  }
  if (!Number.isSafeInteger(options.ttl) || options.ttl <= 0) {
    throw new CapframeError('invalid_argument', `mint: ttl must be a positive integer number of seconds, got ${options.ttl}`);
  }
  if (options.when !== undefined) {
    // A constraint the verifier could not compile would make a token no call can use.
    if (!Array.isArray(options.when)) throw new CapframeError('invalid_argument', 'mint: when must be a list of constraints');
    compileConstraints(options.when, 'mint: when');
  }
  const holderKey = options.holderKey === undefined ? undefined : parseHolderKey(options.holderKey);
  const iat = Math.floor(options.now ?? Date.now() / 1000);
  const claims: Claims = {
    iss: options.issuer ?? 'capframe',
    exp: iat + options.ttl,
    iat,
    cti: new Uint8Array(randomBytes(16)),
    tool: options.tool,
  };
  if (options.agent !== undefined) claims.sub = options.agent;
  if (options.audience !== undefined) claims.aud = options.audience;
  if (options.notBefore !== undefined) claims.nbf = options.notBefore;
  if (holderKey !== undefined) claims.cnf = new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, holderKey]])]]);
  if (options.capability !== undefined) claims.cap = options.capability;
  if (options.when !== undefined && options.when.length > 0) claims.when = [...options.when];
  if (options.parent !== undefined) claims.prf = options.parent;

  const payload = encodeCbor(
    new Map<number | string, unknown>([
      [ClaimKey.iss, claims.iss],
      [ClaimKey.sub, claims.sub],
      [ClaimKey.aud, claims.aud],
      [ClaimKey.exp, claims.exp],
      [ClaimKey.nbf, claims.nbf],
      [ClaimKey.iat, claims.iat],
      [ClaimKey.cti, claims.cti],
      [ClaimKey.cnf, claims.cnf],
      ['tool', claims.tool],
      ['cap', claims.cap],
      ['when', claims.when],
      ['prf', claims.prf],
    ]),
  );
  const bytes = signPayload(key, payload);
  if (bytes.length > MAX_TOKEN_BYTES) {
    throw new CapframeError('invalid_argument', `mint: token would be ${bytes.length} bytes, over the 8 KiB limit`);
  }
  return { token: toPrintable(bytes), bytes, id: tokenId(claims.cti), claims, expiresAt: new Date(claims.exp * 1000) };
}

/** Wraps a claims payload in a COSE_Sign1 signed by `key`. */
export function signPayload(key: SigningKey, payload: Uint8Array): Uint8Array {
  const protectedBytes = protectedHeader(key.kid);
  const signature = sign(null, sigStructure(protectedBytes, payload), key.object);
  return encodeCbor(new Tagged(TAG_COSE_SIGN1, [protectedBytes, new Map(), payload, new Uint8Array(signature)]));
}
