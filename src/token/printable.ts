/** The printable token form: `cf1.` + base64url (no padding) of the COSE bytes. */
import { decodeBase64url, encodeBase64url } from '../lib/base64url.js';

export const PRINTABLE_PREFIX = 'cf1.';

export function toPrintable(bytes: Uint8Array): string {
  return PRINTABLE_PREFIX + encodeBase64url(bytes);
}

/** The COSE bytes of a printable token, or undefined when `text` is not one. */
export function fromPrintable(text: string): Uint8Array | undefined {
  if (!text.startsWith(PRINTABLE_PREFIX)) return undefined;
  return decodeBase64url(text.slice(PRINTABLE_PREFIX.length));
}
