/**
 * Per-(agent, rule) rate limits: at most `calls` calls in any `per`-second sliding
 * window. Exact, with memory bounded by `calls` timestamps per active key.
 */
export class RateLimiter {
  private readonly windows = new Map<string, number[]>();

  /** Records a call at `nowMs` if the window has room; false when the limit is reached. */
  take(key: string, limit: { calls: number; per: number }, nowMs = Date.now()): boolean {
    const since = nowMs - limit.per * 1000;
    let stamps = this.windows.get(key);
    if (stamps === undefined) {
      stamps = [];
      this.windows.set(key, stamps);
    }
    while (stamps.length > 0 && stamps[0]! <= since) stamps.shift();
    if (stamps.length >= limit.calls) return false;
    stamps.push(nowMs);
    return true;
  }

  /** Drops windows with no recent calls, so idle agents cost nothing. */
  sweep(maxWindowSeconds: number, nowMs = Date.now()): void {
    for (const [key, stamps] of this.windows) {
      if (stamps.length === 0 || stamps[stamps.length - 1]! <= nowMs - maxWindowSeconds * 1000) this.windows.delete(key);
    }
  }
}
