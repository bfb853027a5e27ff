/** The byte-wise encoding checks agree with their definitions over integers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isCanonicalEncoding, isSmallOrderEncoding } from '../../src/lib/ed25519.js';

const P = 2n ** 255n - 19n;
const SMALL_ORDER_Y = [0n, 1n, P - 1n, P, P + 1n, 0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n, 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n];
const y = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n) & ((1n << 255n) - 1n);
const le = (n: bigint, sign = false) => {
  const b = Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
  if (sign) b[31]! |= 0x80;
  return b;
};

describe('Ed25519 encoding checks', () => {
  const near = fc.oneof(
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.tuple(fc.constantFrom(...SMALL_ORDER_Y, P - 2n, P + 2n, 2n ** 255n - 1n), fc.boolean()).map(([n, s]) => le(n, s)),
    fc.tuple(fc.integer({ min: 0, max: 40 }), fc.boolean()).map(([d, s]) => le(P - 20n + BigInt(d), s)),
  );

  it('isCanonicalEncoding is y < p and isSmallOrderEncoding is y in the small-order set (20,000 runs)', () => {
    fc.assert(
      fc.property(near, (b) => {
        expect(isCanonicalEncoding(b)).toBe(y(b) < P);
        expect(isSmallOrderEncoding(b)).toBe(SMALL_ORDER_Y.includes(y(b)));
      }),
      { numRuns: 20_000 },
    );
  });
});
