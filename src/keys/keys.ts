/**
 * Ed25519 keys: generation, import from the formats Capframe stores, and key ids.
 * A secret key is its 32-byte RFC 8032 seed; files hold it as PKCS#8 PEM.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

import { CapframeError } from '../errors.js';
import { decodeBase64url } from '../lib/base64url.js';
import { isCanonicalEncoding, isSmallOrderEncoding, isValidPoint, keyId } from '../lib/ed25519.js';

export interface KeyPair {
  /** 32-byte seed. Keep it secret. */
  secretKey: Uint8Array;
  /** Raw 32-byte public key. */
  publicKey: Uint8Array;
  /** First 8 bytes of SHA-256 of the public key. */
  kid: Uint8Array;
}

/** A secret key ready to sign with. */
export interface SigningKey {
  object: KeyObject;
  publicKey: Uint8Array;
  kid: Uint8Array;
}

/** DER of PKCS#8 `PrivateKeyInfo` for Ed25519 (RFC 8410 §7), up to the 32-byte seed. */
const PKCS8_SEED_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function rawPublic(object: KeyObject): Uint8Array {
  const jwk = object.export({ format: 'jwk' });
  return decodeBase64url(jwk.x ?? '') ?? new Uint8Array();
}

/**
 * Generates an Ed25519 key pair.
 *
 * @example
 * const { secretKey, publicKey } = generateKeyPair();
 * const token = mint({ key: secretKey, tool: 'database.query', ttl: 300 });
 */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const secretKey = decodeBase64url(jwk.d ?? '')!;
  const publicKey = decodeBase64url(jwk.x ?? '')!;
  return { secretKey, publicKey, kid: keyId(publicKey) };
}

/**
 * Accepts a 32-byte seed, a PKCS#8 PEM string, or base64url of the seed (the form
 * `CAPFRAME_ISSUER_KEY` takes) and returns a signing key.
 */
export function signingKey(secret: Uint8Array | string): SigningKey {
  let object: KeyObject;
  try {
    if (typeof secret === 'string' && secret.includes('-----BEGIN')) {
      object = createPrivateKey(secret);
    } else {
      const seed = typeof secret === 'string' ? decodeBase64url(secret.trim()) : secret;
      if (seed === undefined || seed.length !== 32) throw new Error('expected a 32-byte Ed25519 seed');
      object = createPrivateKey({ key: Buffer.concat([PKCS8_SEED_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    }
  } catch (error) {
    throw new CapframeError('invalid_key', `not an Ed25519 secret key: ${(error as Error).message}`);
  }
  if (object.asymmetricKeyType !== 'ed25519') {
    throw new CapframeError('invalid_key', `expected an Ed25519 key, got ${object.asymmetricKeyType ?? 'unknown'}`);
  }
  const publicKey = rawPublic(createPublicKey(object));
  return { object, publicKey, kid: keyId(publicKey) };
}

/** PKCS#8 PEM text of a seed, the format of `issuer.key`. */
export function secretKeyToPem(secretKey: Uint8Array): string {
  return signingKey(secretKey).object.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Parses a raw 32-byte public key given as bytes, base64url or hex. */
export function parsePublicKey(input: Uint8Array | string): Uint8Array {
  const bytes =
    typeof input !== 'string'
      ? input
      : /^[0-9a-f]{64}$/i.test(input)
        ? new Uint8Array(Buffer.from(input, 'hex'))
        : decodeBase64url(input);
  if (bytes === undefined || bytes.length !== 32) {
    throw new CapframeError('invalid_key', 'an Ed25519 public key is 32 bytes (hex or base64url)');
  }
  return bytes;
}

/**
 * Parses a holder's public key (what `cnf` names: `mint --holder`, `delegate --to`,
 * a policy's `holder_keys`): 32 bytes as bytes, hex or base64url, that every
 * implementation reads as the same point of large order. Throws CapframeError
 * (`invalid_key`) otherwise — a token bound to such a key could never be used.
 *
 * @example
 * const holderKey = parseHolderKey('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
 */
export function parseHolderKey(input: Uint8Array | string): Uint8Array {
  const key = parsePublicKey(input);
  if (!isCanonicalEncoding(key) || isSmallOrderEncoding(key) || !isValidPoint(key)) {
    throw new CapframeError('invalid_key', 'not a usable Ed25519 holder key: expected the canonical encoding of a point of large order (as `capframe keys generate --holder` prints)');
  }
  return new Uint8Array(key);
}
