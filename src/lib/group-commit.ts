/**
 * Group commit for an append-only file kept open: everything pushed during one turn of
 * the event loop is handed to the OS together, by one write at the end of the turn
 * (a `setImmediate`), and fsynced at most every `syncMs` and on `flush()`.
 *
 * Why a synchronous write at the end of the turn: a page-cache append costs a few
 * microseconds, once per turn for every caller of that turn, while the thread-pool
 * round trip of an asynchronous write costs more than that per batch and delays every
 * waiter. fsync, which can take milliseconds, stays on the thread pool.
 *
 * Callers that must not act before their bytes are written (a proxy forwarding a call
 * whose audit line must survive a crash of the proxy) await `written()`: one promise
 * shared by everyone of that turn, not a syscall each.
 *
 * @example
 * const file = new GroupCommitFile(fd, { name: 'audit.log', syncMs: 100 });
 * file.push('{"seq":1}\n');
 * await file.written(); // in the kernel: survives kill -9 of this process
 * await file.flush();   // and on the disk: survives a power cut
 */
import { fsync, writeSync } from 'node:fs';

import { CapframeError, type ErrorCode } from '../errors.js';

export interface GroupCommitOptions {
  /** Names the file in errors. */
  name: string;
  /** fsync at most this long after a write (ms); 0 leaves fsync to flush(). Default 100. */
  syncMs?: number;
  /** push() throws once this many bytes wait for the end of the turn; default 64 MiB. */
  maxPendingBytes?: number;
  /** The code of the errors it throws (default `audit_log_failed`; the token ledger uses `store_error`). */
  errorCode?: ErrorCode;
}

/** Default fsync delay, and of the audit log's `audit.sync_ms`. */
export const DEFAULT_SYNC_MS = 100;

const DONE: Promise<void> = Promise.resolve();

export class GroupCommitFile {
  private readonly name: string;
  private readonly syncMs: number;
  private readonly maxPendingBytes: number;
  private readonly errorCode: ErrorCode;
  private pending: string[] = [];
  private pendingChars = 0;
  /** The end-of-turn write is scheduled. */
  private scheduled = false;
  /** What waiters of the pending batch are given, made on the first `written()` of the turn. */
  private batch: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } | undefined;
  // Batches: pushed into, handed to write(2), covered by a finished fsync.
  private pushed = 0;
  private writtenCount = 0;
  private synced = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private failure: CapframeError | undefined;
  private closed = false;

  constructor(
    readonly fd: number,
    options: GroupCommitOptions,
  ) {
    this.name = options.name;
    this.syncMs = options.syncMs ?? DEFAULT_SYNC_MS;
    this.maxPendingBytes = options.maxPendingBytes ?? 64 * 1024 * 1024;
    this.errorCode = options.errorCode ?? 'audit_log_failed';
  }

  /** The first write or fsync error, after which every call fails. */
  get failed(): CapframeError | undefined {
    return this.failure;
  }

  /**
   * Queues text for the end of this turn. Throws a CapframeError (`errorCode`)
   * after a failed write, after close(), or when the queue is over its limit.
   */
  push(text: string): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new CapframeError(this.errorCode, `${this.name} is closed`);
    // A UTF-16 unit is at most 3 UTF-8 bytes.
    if (this.pendingChars * 3 > this.maxPendingBytes) throw new CapframeError(this.errorCode, `${this.name}: writes are too far behind`);
    this.pending.push(text);
    this.pendingChars += text.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.pushed += 1;
      setImmediate(this.writeTurn);
    }
  }

  /**
   * Resolves once everything pushed so far has been handed to the OS (written, not
   * necessarily on disk); rejects with the write's error.
   */
  written(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (!this.scheduled) return DONE;
    if (this.batch === undefined) {
      let resolve!: () => void;
      let reject!: (error: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.batch = { promise, resolve, reject };
    }
    return this.batch.promise;
  }

  /** Everything pushed so far written and fsynced. */
  async flush(): Promise<void> {
    await this.written();
    const target = this.writtenCount;
    while (this.synced < target) {
      if (this.failure !== undefined) throw this.failure;
      // Join a running fsync; if it began before our batch was written, start another.
      await (this.syncing ?? this.sync());
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** flush(), then no more pushes. The caller closes the descriptor. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      clearTimeout(this.syncTimer);
    }
  }

  private readonly writeTurn = (): void => {
    const batch = this.batch;
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    this.batch = undefined;
    this.scheduled = false;
    try {
      writeAll(this.fd, text);
      this.writtenCount = this.pushed;
    } catch (error) {
      this.failure = new CapframeError(this.errorCode, `${this.name}: write failed: ${(error as Error).message}`, { cause: error });
      batch?.reject(this.failure);
      return;
    }
    batch?.resolve();
    if (this.syncMs > 0 && this.syncTimer === undefined) {
      this.syncTimer = setTimeout(() => {
        this.syncTimer = undefined;
        if (this.syncing === undefined && this.synced < this.writtenCount) void this.sync().catch(() => undefined);
      }, this.syncMs);
      // A pending background fsync must not keep the process alive.
      this.syncTimer.unref();
    }
  };

  private sync(): Promise<void> {
    const upTo = this.writtenCount;
    this.syncing = new Promise<void>((resolve, reject) => {
      fsync(this.fd, (error) => {
        this.syncing = undefined;
        if (error !== null) {
          this.failure ??= new CapframeError(this.errorCode, `${this.name}: fsync failed: ${error.message}`, { cause: error });
          reject(this.failure);
          return;
        }
        this.synced = Math.max(this.synced, upTo);
        resolve();
      });
    });
    return this.syncing;
  }
}

/** Writes all of `text` at the end of an O_APPEND descriptor. */
function writeAll(fd: number, text: string): void {
  const written = writeSync(fd, text);
  const bytes = Buffer.byteLength(text);
  if (written === bytes) return;
  // A short write (a full disk, a signal): finish from the byte where it stopped.
  const buf = Buffer.from(text, 'utf8');
  for (let offset = written; offset < buf.length; ) offset += writeSync(fd, buf, offset, buf.length - offset);
}
