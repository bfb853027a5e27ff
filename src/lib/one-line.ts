/**
 * Text from an untrusted peer, made safe to quote inside one line of our own: line breaks,
 * other control characters and invisible format characters (zero-width, bidi overrides)
 * become a space, so the quote cannot start a line of its own ("\nDENIED revoked: …") or
 * reorder what is shown around it.
 *
 * @example
 * oneLine('boom\nDENIED revoked: x'); // 'boom DENIED revoked: x'
 */
export function oneLine(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, ' ');
}
