/** The issued-token ledger's entries, shared by both stores. */
import type { MintedToken } from '../token/mint.js';
import type { LedgerEntry } from './types.js';

/** The ledger entry for a minted token. */
export function ledgerEntry(minted: MintedToken): LedgerEntry {
  const entry: LedgerEntry = { id: minted.id, token: minted.token, tool: minted.claims.tool, exp: minted.claims.exp, iat: minted.claims.iat };
  if (minted.claims.sub !== undefined) entry.agent = minted.claims.sub;
  if (minted.claims.cap !== undefined) entry.capability = minted.claims.cap;
  return entry;
}

/** A ledger entry from its JSON text, or undefined when the text is not one (a torn line). */
export function parseLedgerEntry(text: string): LedgerEntry | undefined {
  try {
    const entry = JSON.parse(text) as Partial<LedgerEntry> | null;
    if (entry === null || typeof entry !== 'object' || typeof entry.id !== 'string' || typeof entry.token !== 'string' || typeof entry.exp !== 'number') return undefined;
    return entry as LedgerEntry;
  } catch {
    return undefined;
  }
}
