/** The CLI accepts a `tok_` id wherever it accepts a token. */
import { CapframeError } from '../errors.js';
import type { FileStore } from '../store/file-store.js';

export function resolveToken(store: FileStore, input: string): string {
  const text = input.trim();
  if (!text.startsWith('tok_')) return text;
  const entry = store.findToken(text);
  if (entry === undefined) {
    throw new CapframeError('unknown_token', `no token with id ${text} in ${store.paths.ledger}`);
  }
  return entry.token;
}
