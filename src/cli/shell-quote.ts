/** Quoting for the commands the CLI suggests, so a path with spaces can be pasted as printed. */

/**
 * `word` as one POSIX shell word: unchanged when it is plainly safe, else in single quotes.
 *
 * @example
 * shellQuote('my-policy.yaml'); // 'my-policy.yaml'
 * shellQuote("my policy's.yaml"); // "'my policy'\\''s.yaml'"
 */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
