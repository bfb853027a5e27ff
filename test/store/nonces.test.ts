/** The in-memory nonce store: once per nonce while it lives, bounded, failing closed when full. */
import { describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { createMemoryNonceStore } from '../../src/store/nonces.js';

describe('createMemoryNonceStore', () => {
  it('accepts a nonce once while it lives, and again after it expired', () => {
    let now = 1_000;
    const store = createMemoryNonceStore({ clock: () => now });
    expect(store.claim('a', 100)).toBe(true);
    expect(store.claim('a', 100)).toBe(false);
    expect(store.claim('b', 100)).toBe(true);
    now += 99;
    expect(store.claim('a', 100)).toBe(false);
    now += 1;
    expect(store.claim('a', 100)).toBe(true);
  });

  it('drops expired nonces when full, and refuses (throws store_error) when full of live ones', () => {
    let now = 0;
    const store = createMemoryNonceStore({ max: 3, clock: () => now });
    for (const k of ['a', 'b', 'c']) expect(store.claim(k, 10)).toBe(true);
    expect(() => store.claim('d', 10)).toThrow(CapframeError);
    try {
      store.claim('d', 10);
    } catch (error) {
      expect((error as CapframeError).code).toBe('store_error');
    }
    // A refused claim forgot nothing: the live nonces are still replays.
    expect(store.claim('a', 10)).toBe(false);
    now = 10;
    expect(store.claim('d', 10)).toBe(true);
    expect(store.size).toBe(1);
    expect(store.claim('a', 10)).toBe(true);
  });

  it('rejects bad arguments', () => {
    const store = createMemoryNonceStore();
    expect(() => store.claim('', 10)).toThrow(/non-empty/);
    expect(() => store.claim('a', 0)).toThrow(/positive/);
    expect(() => store.claim('a', Number.NaN)).toThrow(/positive/);
    expect(() => createMemoryNonceStore({ max: 0 })).toThrow(/max must be a positive/);
  });
});
