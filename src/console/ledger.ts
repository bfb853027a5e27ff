/**
 * What the console lists from the store: issued tokens and revocations, newest first, a
 * page at a time. The console reads through this interface only, so another store (Redis)
 * needs one more adapter and nothing else; `fileLedger` reads the embedded store's files.
 */
import { open } from 'node:fs/promises';

import { readTail } from '../audit/lines.js';
import type { FileStore } from '../store/file-store.js';
import type { LedgerEntry, Store } from '../store/types.js';
import { tokenId } from '../token/claims.js';

/** One issued token as the console shows it (never the token itself). */
export interface IssuedTokenEntry {
  id: string;
  tool: string;
  agent?: string;
  capability?: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
}

export interface RevocationEntry {
  id: string;
  /** When it was revoked (ISO 8601), as the store recorded it. */
  time?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: string;
}

export interface PageQuery {
  /** A `next` value from the previous page; absent for the newest page. */
  before?: string;
  limit: number;
}

export interface ConsoleLedger {
  issued(query: PageQuery): Promise<Page<IssuedTokenEntry>>;
  revocations(query: PageQuery): Promise<Page<RevocationEntry>>;
}

/** A cursor that is not one this ledger handed out. */
export class BadCursor extends Error {}

/** The store cannot list this (the console says so instead of showing an empty list). */
export class LedgerUnavailable extends Error {}

/**
 * The embedded store's ledger (`tokens.jsonl`) and revocation log (`revocations.log`),
 * read backwards from the end: a page costs its own lines, however long the files are.
 * Cursors are byte offsets.
 *
 * @example
 * const ledger = fileLedger(rt.store);
 * const { items, next } = await ledger.issued({ limit: 50 });
 */
export function fileLedger(store: Pick<FileStore, 'paths'>): ConsoleLedger {
  return {
    issued: (query) =>
      pageOf(store.paths.ledger, query, (line) => {
        const entry = JSON.parse(line) as Partial<LedgerEntry>;
        if (typeof entry.id !== 'string' || typeof entry.tool !== 'string' || typeof entry.exp !== 'number' || typeof entry.iat !== 'number') return undefined;
        // Copied field by field: the printable token in the ledger is a bearer credential and never leaves the server.
        return {
          id: entry.id,
          tool: entry.tool,
          ...(typeof entry.agent === 'string' && { agent: entry.agent }),
          ...(typeof entry.capability === 'string' && { capability: entry.capability }),
          iat: entry.iat,
          exp: entry.exp,
        };
      }),
    revocations: (query) =>
      pageOf(store.paths.revocations, query, (line) => {
        const [id, time] = line.trim().split(' ');
        if (id === undefined || !id.startsWith('tok_')) return undefined;
        return { id, ...(time !== undefined && { time }) };
      }),
  };
}

/** Lines of a line-per-record file, newest first, ending before byte `before`. Unreadable lines are skipped. */
async function pageOf<T>(path: string, query: PageQuery, parse: (line: string) => T | undefined): Promise<Page<T>> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { items: [] };
    throw error;
  }
  try {
    const { size } = await handle.stat();
    let end = size;
    if (query.before !== undefined) {
      if (!/^(0|[1-9][0-9]{0,15})$/.test(query.before) || Number(query.before) > size) throw new BadCursor(`not a cursor of this list: ${query.before.slice(0, 20)}`);
      end = Number(query.before);
    }
    // A torn last line (a crash mid-append) has no "\n" yet: readTail leaves it out.
    const tail = await readTail(handle, end, query.limit);
    const items: T[] = [];
    for (const bytes of [...tail.lines].reverse()) {
      try {
        const item = parse(bytes.toString('utf8'));
        if (item !== undefined) items.push(item);
      } catch {
        // Not JSON: a damaged line is skipped here; the CLI reports it when it matters.
      }
    }
    return { items, ...(tail.start > 0 && { next: String(tail.start) }) };
  } finally {
    await handle.close();
  }
}

/**
 * Any other store (Redis): revocations in force, a page at a time in id order (the
 * store keeps them as a set, not a log); issued tokens cannot be listed, because the
 * Redis ledger keeps each entry under its id until the token expires, with no index.
 *
 * @example
 * const ledger = storeLedger(rt.store);
 * const { items } = await ledger.revocations({ limit: 50 });
 */
export function storeLedger(store: Pick<Store, 'revokedIds' | 'kind'>): ConsoleLedger {
  return {
    issued: () =>
      Promise.reject(
        new LedgerUnavailable(`the ${store.kind} store keeps issued tokens by id only, until they expire; look one up with \`capframe verify --token tok_…\``),
      ),
    async revocations(query) {
      const ids = (await store.revokedIds()).map(tokenId).sort();
      if (query.before !== undefined && !query.before.startsWith('tok_')) throw new BadCursor(`not a cursor of this list: ${JSON.stringify(query.before.slice(0, 40))}`);
      const from = query.before === undefined ? 0 : ids.findIndex((id) => id > query.before!);
      const start = from < 0 ? ids.length : from;
      const items = ids.slice(start, start + query.limit).map((id) => ({ id }));
      const last = items.at(-1);
      return { items, ...(start + query.limit < ids.length && last !== undefined && { next: last.id }) };
    },
  };
}
