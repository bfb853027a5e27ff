/**
 * Per-key rate limits in memory, for one process: at most `calls` calls in any
 * `per`-second sliding window. Exact, with memory bounded by `calls` timestamps per
 * active key; keys idle for a whole window are dropped as they are passed by.
 */
import type { RateLimit, RateLimiter } from './types.js';

interface Window {
  stamps: number[];
  perMs: number;
}

/** How often idle windows are looked for (ms). */
const SWEEP_EVERY_MS = 60_000;

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, Window>();
  private lastSweep = 0;

  /** Records a call at `nowMs` if the window has room; false when the limit is reached. */
  take(key: string, limit: RateLimit, nowMs = Date.now()): boolean {
    if (nowMs - this.lastSweep > SWEEP_EVERY_MS) this.sweep(nowMs);
    const perMs = limit.per * 1000;
    const since = nowMs - perMs;
    let window = this.windows.get(key);
    if (window === undefined) {
      window = { stamps: [], perMs };
      this.windows.set(key, window);
    }
    window.perMs = perMs;
    const stamps = window.stamps;
    while (stamps.length > 0 && stamps[0]! <= since) stamps.shift();
    if (stamps.length >= limit.calls) return false;
    stamps.push(nowMs);
    return true;
  }

  /** Keys with a window, for tests and metrics. */
  get size(): number {
    return this.windows.size;
  }

  /** Drops windows with no call inside their period, so idle agents cost nothing. */
  sweep(nowMs = Date.now()): void {
    this.lastSweep = nowMs;
    for (const [key, w] of this.windows) {
      const last = w.stamps[w.stamps.length - 1];
      if (last === undefined || last <= nowMs - w.perMs) this.windows.delete(key);
    }
  }
}
