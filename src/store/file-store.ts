/**
 * The embedded store (SPEC §7, the default): plain files in the state directory, for
 * one host.
 *
 *   revocations.log  append-only, one `tok_… <ISO time>` line per revocation, fsynced
 *                    before `revoke` reports success; followed live by every process
 *   tokens.jsonl     ledger of issued tokens, so the CLI accepts a `tok_` id anywhere;
 *                    appended in batches (written before the token is used, fsynced
 *                    within ~100 ms and on close)
 *
 * Nonces and rate limits are in memory, per process. Several processes append to the
 * same files safely: each write is one O_APPEND write(2) of whole lines.
 */
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { CapframeError } from '../errors.js';
import { openBatchedAppend, type BatchedAppend } from '../lib/batched-append.js';
import { tokenId } from '../token/claims.js';
import { parseTokenId } from '../verify/token-id.js';
import { ensureStateDir, readLines } from './keys.js';
import { ledgerEntry, parseLedgerEntry } from './ledger.js';
import { MemoryRateLimiter } from './memory-rate-limit.js';
import { createMemoryNonceStore } from './nonces.js';
import { watchRevocations } from './revocation-watch.js';
import { HealthState } from './health-state.js';
import type { LedgerEntry, RevocationFollow, Store, StoreLog } from './types.js';

export const REVOCATIONS_FILE = 'revocations.log';
export const LEDGER_FILE = 'tokens.jsonl';

export interface FileStore extends Store {
  readonly kind: 'file';
  readonly stateDir: string;
  readonly paths: { revocations: string; ledger: string };
}

export interface FileStoreOptions {
  log?: StoreLog;
  /** Poll interval of the revocation log for followers (ms, default 200). */
  pollMs?: number;
}

function fail(message: string, cause?: unknown): never {
  throw new CapframeError('store_error', message, { cause });
}

/** Appends one line and fsyncs it, so a reported success survives a crash. */
function appendDurable(path: string, line: string): void {
  const created = !existsSync(path);
  const fd = openSync(path, 'a', 0o600);
  try {
    writeSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) {
    // A new file's directory entry must reach the disk too.
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}

/**
 * Opens the embedded store in `stateDir` (created when first written).
 *
 * @example
 * const store = openFileStore('.capframe');
 * await store.revoke(parseTokenId('tok_…'));   // fsynced
 * const verifier = createVerifier({ keys, revocations: store }); // follows the log
 */
export function openFileStore(stateDir: string, options: FileStoreOptions = {}): FileStore {
  const paths = { revocations: join(stateDir, REVOCATIONS_FILE), ledger: join(stateDir, LEDGER_FILE) };
  let ledger: BatchedAppend | undefined;
  const follows = new Set<RevocationFollow>();
  const health = new HealthState('file', stateDir);

  function revokedIds(): Uint8Array[] {
    const ids: Uint8Array[] = [];
    readLines(paths.revocations).forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        ids.push(parseTokenId(line.split(' ')[0] ?? ''));
      } catch {
        // A revocation we cannot read could be a token we must deny: refuse to guess.
        fail(`${paths.revocations}:${i + 1}: not a revocation line: "${line.slice(0, 60)}"`);
      }
    });
    return ids;
  }

  function ledgerFile(): BatchedAppend {
    if (ledger !== undefined) return ledger;
    ensureStateDir(stateDir);
    try {
      ledger = openBatchedAppend(paths.ledger);
    } catch (error) {
      fail(`cannot open ${paths.ledger}: ${(error as Error).message}`, error);
    }
    return ledger;
  }

  const store: FileStore = {
    kind: 'file',
    location: stateDir,
    stateDir,
    paths,
    async revoke(cti) {
      const id = tokenId(cti);
      if (revokedIds().some((r) => Buffer.compare(r, cti) === 0)) return false;
      ensureStateDir(stateDir);
      try {
        appendDurable(paths.revocations, `${id} ${new Date().toISOString()}\n`);
      } catch (error) {
        fail(`cannot write ${paths.revocations}: ${(error as Error).message}`, error);
      }
      return true;
    },
    async revokedIds() {
      return revokedIds();
    },
    followRevocations(handlers) {
      let resolveReady!: () => void;
      const ready = new Promise<void>((resolve) => (resolveReady = resolve));
      handlers.onState(false, `reading ${paths.revocations}`);
      const watcher = watchRevocations(paths.revocations, (ids) => handlers.onRevoked(ids), {
        ...(options.pollMs !== undefined && { intervalMs: options.pollMs }),
        ...(options.log !== undefined && { log: options.log }),
        onState(current, reason) {
          health.mark(current, reason);
          handlers.onState(current, reason);
          if (current) resolveReady();
        },
      });
      const follow: RevocationFollow = {
        ready,
        async close() {
          watcher.close();
          follows.delete(follow);
        },
      };
      follows.add(follow);
      return follow;
    },
    async record(minted) {
      try {
        await ledgerFile().append(`${JSON.stringify(ledgerEntry(minted))}\n`);
      } catch (error) {
        if (error instanceof CapframeError) throw error;
        fail(`cannot write ${paths.ledger}: ${(error as Error).message}`, error);
      }
    },
    async findToken(id) {
      // This process's own lines first reach the file.
      await ledger?.flush().catch(() => undefined);
      let found: LedgerEntry | undefined;
      for (const line of readLines(paths.ledger)) {
        if (!line.includes(id)) continue;
        // A torn last line from a crash mid-append is skipped; the rest of the ledger is intact.
        const entry = parseLedgerEntry(line);
        if (entry?.id === id) found = entry;
      }
      return found;
    },
    nonces: createMemoryNonceStore(),
    limiter: new MemoryRateLimiter(),
    health: () => health.snapshot(),
    async close() {
      for (const follow of [...follows]) await follow.close();
      await ledger?.close();
    },
  };
  return store;
}
