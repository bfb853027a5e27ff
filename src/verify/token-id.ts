/** `tok_` ids: the human-facing name of a token (base64url of its 16-byte cti). */
import { CapframeError } from '../errors.js';
import { decodeBase64url } from '../lib/base64url.js';

export function parseTokenId(id: string): Uint8Array {
  const cti = id.startsWith('tok_') ? decodeBase64url(id.slice(4)) : undefined;
  if (cti === undefined || cti.length !== 16) {
    throw new CapframeError('invalid_argument', `not a token id: "${id.slice(0, 40)}" (expected tok_ followed by 22 base64url characters)`);
  }
  return cti;
}

export function isTokenId(text: string): boolean {
  return /^tok_[A-Za-z0-9_-]{22}$/.test(text);
}
