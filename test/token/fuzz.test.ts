/**
 * Property tests: the decoder never throws on any byte string and never accepts a
 * mutated token. Runs on the active backend (the suite runs once per backend).
 */
import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { activeBackend } from '../../src/backend/select.js';
import { codeName } from '../../src/token/codes.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/tokens.json', import.meta.url), 'utf8')) as {
  now: number;
  trusted_keys: string[];
  tokens: { token: string; expect: string }[];
};
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const validTokens = vectors.tokens.filter((t) => t.expect === 'ok').map((t) => hex(t.token));

function core() {
  const c = activeBackend().createVerifierCore(0);
  for (const k of vectors.trusted_keys) c.addKey(hex(k));
  return c;
}

/** A valid token changed by one of: bit flip, byte overwrite, insertion, deletion, truncation, splice. */
const mutated = fc
  .record({
    base: fc.constantFrom(...validTokens),
    kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate', 'splice'),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
    byte: fc.integer({ min: 0, max: 255 }),
    extra: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  })
  .map(({ base, kind, at, bit, byte, extra }) => {
    const i = at % base.length;
    const t = Array.from(base);
    if (kind === 'flip') t[i]! ^= 1 << bit;
    else if (kind === 'set') t[i] = t[i] === byte ? byte ^ 0xff : byte;
    else if (kind === 'insert') t.splice(i, 0, byte);
    else if (kind === 'delete') t.splice(i, 1);
    else if (kind === 'truncate') t.length = i;
    else t.splice(i, Math.min(extra.length, t.length - i), ...extra);
    return { base, bytes: Uint8Array.from(t) };
  })
  .filter(({ base, bytes }) => Buffer.compare(base, bytes) !== 0);

describe(`decoder properties on the ${activeBackend().name} backend`, () => {
  it('never throws and never accepts random byte strings (5,000 runs)', () => {
    const c = core();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const result = c.verify(bytes, vectors.now);
        expect(codeName(result)).not.toBe('ok');
      }),
      { numRuns: 5_000 },
    );
  });

  it('never throws and never accepts a mutated token (10,000 runs)', () => {
    const c = core();
    fc.assert(
      fc.property(mutated, ({ bytes }) => {
        expect(codeName(c.verify(bytes, vectors.now))).not.toBe('ok');
      }),
      { numRuns: 10_000 },
    );
  });

  it('never throws on CBOR-shaped input built from valid prefixes (2,000 runs)', () => {
    const c = core();
    fc.assert(
      fc.property(fc.constantFrom(...validTokens), fc.nat(), fc.uint8Array({ maxLength: 64 }), (base, cut, tail) => {
        const bytes = Buffer.concat([base.subarray(0, cut % base.length), tail]);
        // A tail can rebuild the very token it cut (e.g. its own last byte): that is no mutation.
        fc.pre(Buffer.compare(bytes, base) !== 0);
        expect(codeName(c.verify(bytes, vectors.now))).not.toBe('ok');
      }),
      { numRuns: 2_000 },
    );
  });
});
