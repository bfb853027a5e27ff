/** The CLI accepts a `tok_` id wherever it accepts a token. */
import { CapframeError } from '../errors.js';
import type { Store } from '../store/types.js';

export async function resolveToken(store: Store, input: string): Promise<string> {
  const text = input.trim();
  if (!text.startsWith('tok_')) return text;
  const entry = await store.findToken(text);
  if (entry === undefined) {
    throw new CapframeError('unknown_token', `no token with id ${text} in the ledger of ${store.location}`);
  }
  return entry.token;
}
