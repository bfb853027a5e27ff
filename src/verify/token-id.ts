/** `tok_` ids: the human-facing name of a token (base64url of its 16-byte cti). */
import { CapframeError } from '../errors.js';
import { decodeBase64url } from '../lib/base64url.js';
import { MalformedError } from '../lib/cbor/validate.js';
import { malformed, reasonFor } from '../token/codes.js';
import { parseToken } from '../token/parse.js';
import { fromPrintable } from '../token/printable.js';

export function parseTokenId(id: string): Uint8Array {
  const cti = id.startsWith('tok_') ? decodeBase64url(id.slice(4)) : undefined;
  if (cti === undefined || cti.length !== 16) {
    throw new CapframeError('invalid_argument', `not a token id: "${id.slice(0, 40)}" (expected tok_ followed by 22 base64url characters)`);
  }
  return cti;
}

/**
 * The cti named by a `tok_` id or carried by a printable token (read strictly, not
 * verified: revoking a forged token's id is harmless). Throws CapframeError saying why not.
 */
export function ctiOfReference(ref: string): Uint8Array {
  const text = ref.trim();
  if (text.startsWith('tok_')) return parseTokenId(text);
  const bytes = fromPrintable(text);
  if (bytes === undefined) throw new CapframeError('invalid_argument', 'not a capframe token or tok_ id');
  try {
    return parseToken(bytes).cti;
  } catch (error) {
    if (error instanceof MalformedError) throw new CapframeError('invalid_argument', `not a readable token: ${reasonFor(malformed(error.detail))}`);
    throw error;
  }
}

/**
 * The expiry (seconds since the epoch) a printable token claims, read without verifying
 * it; undefined for a `tok_` id or an unreadable token. Only ever used to keep a
 * revocation longer, never shorter.
 */
export function claimedExpiry(ref: string): number | undefined {
  const text = ref.trim();
  if (text.startsWith('tok_')) return undefined;
  const bytes = fromPrintable(text);
  if (bytes === undefined) return undefined;
  try {
    const exp = parseToken(bytes).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
