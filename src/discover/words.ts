/**
 * Word tokens for the discovery rules. Rules match whole words, never
 * substrings, so "load balancer" is not money and "executive summary" is not
 * code execution.
 */

/**
 * Splits a name or a sentence into lowercase word tokens: camelCase and
 * PascalCase humps (keeping acronyms together), snake_case, kebab-case, dots,
 * slashes, spaces and punctuation are all boundaries; digits stay attached to
 * their word.
 *
 * @example
 * words('getHTTPResponse');          // ['get', 'http', 'response']
 * words('run_shell-command.v2');     // ['run', 'shell', 'command', 'v2']
 * words('Generates an executive summary.'); // ['generates', 'an', 'executive', 'summary']
 */
export function words(text: string): string[] {
  const out: string[] = [];
  // Letters and digits only; everything else separates words.
  for (const chunk of text.normalize('NFKC').split(/[^\p{L}\p{N}]+/u)) {
    if (chunk === '') continue;
    // Split lower→Upper ("getUser") and ACRONYM→Word ("HTTPResponse").
    const parts = chunk
      .replace(/(\p{Ll})(\p{Lu})/gu, '$1 $2')
      .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1 $2')
      .split(' ');
    for (const part of parts) if (part !== '') out.push(part.toLowerCase());
  }
  return out;
}

/** True when any token is in `vocabulary`. */
export function hasAnyWord(tokens: readonly string[], vocabulary: ReadonlySet<string>): boolean {
  return tokens.some((t) => vocabulary.has(t));
}

/** The tokens that are in `vocabulary`, in order, without duplicates. */
export function matchingWords(tokens: readonly string[], vocabulary: ReadonlySet<string>): string[] {
  return [...new Set(tokens.filter((t) => vocabulary.has(t)))];
}

/**
 * True when `phrase` (already tokenised) occurs as consecutive tokens.
 *
 * @example
 * hasPhrase(words('Please IGNORE all previous instructions'), ['ignore', 'all', 'previous']); // true
 */
export function hasPhrase(tokens: readonly string[], phrase: readonly string[]): boolean {
  if (phrase.length === 0 || phrase.length > tokens.length) return false;
  outer: for (let i = 0; i + phrase.length <= tokens.length; i++) {
    for (let j = 0; j < phrase.length; j++) if (tokens[i + j] !== phrase[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * True when a token of `first` is followed, within `window` tokens, by a token of `second`.
 *
 * @example
 * near(words('Executes a shell command'), new Set(['executes']), new Set(['command']), 3); // true
 */
export function near(tokens: readonly string[], first: ReadonlySet<string>, second: ReadonlySet<string>, window: number): boolean {
  for (let i = 0; i < tokens.length; i++) {
    if (!first.has(tokens[i] ?? '')) continue;
    for (let j = i + 1; j <= i + window && j < tokens.length; j++) if (second.has(tokens[j] ?? '')) return true;
  }
  return false;
}

/** A Set from a space-separated word list (keeps the vocabularies readable). */
export function wordSet(list: string): ReadonlySet<string> {
  return new Set(list.split(/\s+/).filter((w) => w !== ''));
}
