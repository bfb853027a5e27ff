/**
 * What the console lists from the store: issued tokens and revocations, newest first, a
 * page at a time. The console reads through this interface only, so another store (Redis)
 * needs one more adapter and nothing else; `fileLedger` reads the embedded store's files.
 */
import { open } from 'node:fs/promises';

import { readTail } from '../audit/lines.js';
import type { FileStore, LedgerEntry } from '../store/file-store.js';

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
