/**
 * Replay protection for holder proofs (SPEC §5, §7): each proof carries a 16-byte
 * nonce, and a verifier accepts a nonce once. A `NonceStore` remembers the nonces
 * it has seen for as long as the proof could still be accepted.
 *
 * `claim` answers synchronously (the in-memory store here) or with a promise (the
 * Redis store, `SET key 1 NX PX ttl`). `Verifier.verify` needs a synchronous store;
 * `Verifier.verifyAsync` awaits either kind.
 */
import { CapframeError } from '../errors.js';

export interface NonceStore {
  /**
   * Records `key` for `ttlMs` milliseconds. True when the key was not already
   * recorded (the caller may proceed), false when it was (a replay). Throws (or
   * rejects) when it cannot tell: the verifier then denies the call.
   */
  claim(key: string, ttlMs: number): boolean | Promise<boolean>;
}

export interface MemoryNonceStoreOptions {
  /**
   * Most nonces remembered at once (default 500,000, about 50 MB at worst). When
   * full of nonces that have not expired, `claim` throws: the call is denied rather
   * than a live nonce forgotten.
   */
  max?: number;
  /** Clock in milliseconds since the epoch; defaults to Date.now. */
  clock?: () => number;
}

export const DEFAULT_MAX_NONCES = 500_000;

/**
 * A bounded in-memory nonce store with expiry, for one process (embedded mode).
 * Nonces expire lazily: a full store first drops expired ones, oldest first.
 *
 * @example
 * const verifier = createVerifier({ keys: [issuerPublicKey], nonceStore: createMemoryNonceStore({ max: 100_000 }) });
 */
export function createMemoryNonceStore(options: MemoryNonceStoreOptions = {}): NonceStore & { readonly size: number } {
  const max = options.max ?? DEFAULT_MAX_NONCES;
  if (!Number.isSafeInteger(max) || max < 1) throw new CapframeError('invalid_argument', `createMemoryNonceStore: max must be a positive whole number, got ${String(max)}`);
  const clock = options.clock ?? Date.now;
  // Insertion order is claim order; expiries are close to claim time + ttl, so the
  // oldest entries are the first to expire.
  const seen = new Map<string, number>();

  /**
   * Drops expired nonces from the oldest on, stopping at the first live one: the
   * work is what was freed, never a scan of live entries. A nonce with a shorter
   * ttl behind a live one goes when it reaches the front (or is claimed again).
   */
  function sweep(now: number): void {
    for (const [key, expires] of seen) {
      if (expires > now) return;
      seen.delete(key);
    }
  }

  return {
    get size() {
      return seen.size;
    },
    claim(key, ttlMs) {
      if (typeof key !== 'string' || key === '') throw new CapframeError('invalid_argument', 'nonce store: key must be a non-empty string');
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new CapframeError('invalid_argument', `nonce store: ttlMs must be a positive number, got ${String(ttlMs)}`);
      const now = clock();
      const expires = seen.get(key);
      if (expires !== undefined) {
        if (expires > now) return false;
        seen.delete(key);
      }
      if (seen.size >= max) {
        sweep(now);
        if (seen.size >= max) {
          throw new CapframeError('store_error', `nonce store is full (${max} live nonces); the call is refused rather than a nonce forgotten`);
        }
      }
      seen.set(key, now + ttlMs);
      return true;
    },
  };
}
