/**
 * Trusted public keys as JWKs (RFC 8037 OKP keys in a RFC 7517 JWK Set), for
 * verifiers outside capframe: `capframe keys public --json` prints the set and
 * `serve` publishes it at `/.well-known/capframe-keys`.
 */
import { CapframeError } from '../errors.js';
import { encodeBase64url } from '../lib/base64url.js';
import { keyId } from '../lib/ed25519.js';

/** An Ed25519 public key as a JWK. `kid` is base64url of the token `kid` (8 bytes). */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  /** base64url of the raw 32-byte public key. */
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export interface PublicJwkSet {
  keys: PublicJwk[];
}

/**
 * One raw Ed25519 public key as a JWK.
 *
 * @example
 * const { publicKey } = generateKeyPair();
 * publicJwk(publicKey); // { kty: 'OKP', crv: 'Ed25519', x: '…', kid: '…', alg: 'EdDSA', use: 'sig' }
 */
export function publicJwk(publicKey: Uint8Array): PublicJwk {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new CapframeError('invalid_key', 'an Ed25519 public key is 32 bytes');
  }
  return { kty: 'OKP', crv: 'Ed25519', x: encodeBase64url(publicKey), kid: encodeBase64url(keyId(publicKey)), alg: 'EdDSA', use: 'sig' };
}

/**
 * The JWK Set of the keys a verifier should trust, in the order given, each key once
 * (the issuer's key is often listed in `trusted.keys` too).
 *
 * @example
 * const keys = openKeyStore('.capframe');
 * const body = JSON.stringify(publicJwks(keys.trustedKeys())); // serve as application/jwk-set+json
 */
export function publicJwks(publicKeys: readonly Uint8Array[]): PublicJwkSet {
  const keys: PublicJwk[] = [];
  const seen = new Set<string>();
  for (const publicKey of publicKeys) {
    const jwk = publicJwk(publicKey);
    if (seen.has(jwk.x)) continue;
    seen.add(jwk.x);
    keys.push(jwk);
  }
  return { keys };
}
