/**
 * The live decisions behind the console's SSE stream: one follower of the audit log,
 * shared by every open stream, running only while a stream is open (so the proxy's call
 * path pays nothing for the console when nobody watches). It keeps the last few records,
 * so a stream that opens gets recent history and then every later line, in order, with
 * nothing missed or repeated in between.
 */
import { tailAuditLog } from '../audit/tail.js';
import type { AuditRecord } from '../audit/record.js';
import type { Logger } from '../proxy/log.js';

/** A record, or null for a line that is not a valid audit record (the tail hides nothing). */
export type FeedItem = AuditRecord | null;

export type FeedListener = (item: FeedItem) => void;

export interface DecisionFeedOptions {
  /** Records kept for streams that open later (default 200). */
  history?: number;
  /** How long the follower keeps running after the last stream closed (ms, default 30 s), so a reload does not re-read the log. */
  lingerMs?: number;
  /** Poll interval backing up fs.watch (ms, default 250). */
  pollIntervalMs?: number;
  log: Logger;
}

/**
 * @example
 * const feed = new DecisionFeed('.capframe/audit.log', { log });
 * const stop = feed.subscribe((record) => send(record)); // recent history first, then live
 * stop();
 */
export class DecisionFeed {
  private readonly listeners = new Set<FeedListener>();
  private readonly recent: FeedItem[] = [];
  private readonly history: number;
  private follower: AbortController | undefined;
  private linger: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly options: DecisionFeedOptions,
  ) {
    this.history = options.history ?? 200;
  }

  /** Whether the audit log is being followed now. */
  get running(): boolean {
    return this.follower !== undefined;
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** Replays the kept records to `listener`, then calls it for every line appended; returns the unsubscribe function. */
  subscribe(listener: FeedListener): () => void {
    if (this.closed) return () => undefined;
    clearTimeout(this.linger);
    this.linger = undefined;
    for (const item of this.recent) listener(item);
    this.listeners.add(listener);
    if (this.follower === undefined) this.start();
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0 || this.closed) return;
      this.linger = setTimeout(() => this.stop(), this.options.lingerMs ?? 30_000);
      this.linger.unref();
    };
  }

  /** Stops following for good. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    clearTimeout(this.linger);
    clearTimeout(this.retry);
    this.stop();
  }

  private start(): void {
    const follower = new AbortController();
    this.follower = follower;
    // The first lines are the log's last `history` ones: they fill `recent` for the streams already waiting.
    tailAuditLog(this.path, {
      follow: true,
      lines: this.history,
      signal: follower.signal,
      ...(this.options.pollIntervalMs !== undefined && { pollIntervalMs: this.options.pollIntervalMs }),
      onRecord: (record) => this.publish(record),
    }).then(
      () => undefined,
      (error: unknown) => {
        if (this.follower !== follower) return;
        this.options.log.error('console: following the audit log failed; retrying', { error: (error as Error).message });
        this.stop();
        if (this.listeners.size > 0 && !this.closed) {
          this.retry = setTimeout(() => {
            if (this.listeners.size > 0 && this.follower === undefined && !this.closed) this.start();
          }, 1000);
          this.retry.unref();
        }
      },
    );
  }

  private stop(): void {
    this.follower?.abort();
    this.follower = undefined;
    this.recent.length = 0;
  }

  private publish(item: FeedItem): void {
    this.recent.push(item);
    if (this.recent.length > this.history) this.recent.shift();
    for (const listener of this.listeners) listener(item);
  }
}
