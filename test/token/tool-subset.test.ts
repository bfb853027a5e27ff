/**
 * toolSubset is sound: whenever it says a child pattern is within a parent pattern,
 * no tool name matched by the child escapes the parent. Property-tested against
 * brute force (every short name, and names made by filling in the child's `*`s).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { compileToolPattern } from '../../src/policy/tool-pattern.js';
import { toolSubset } from '../../src/token/tool-subset.js';

/** Every string over `alphabet` up to `max` characters. */
function allNames(alphabet: string, max: number): string[] {
  const out = [''];
  let layer = [''];
  for (let n = 1; n <= max; n++) {
    layer = layer.flatMap((s) => [...alphabet].map((c) => s + c));
    out.push(...layer);
  }
  return out;
}

const SMALL = allNames('ab.', 7);
const pattern = fc.stringMatching(/^[ab.*]{1,6}$/);

describe('toolSubset', () => {
  it.each([
    ['database.query', 'database.*', true],
    ['database.q*', 'database.*', true],
    ['database.*', 'database.*', true],
    ['anything.at_all', '*', true],
    ['*', '*', true],
    ['*.query', '*', true],
    ['database.query', 'database.query', true],
    ['db.*.read', 'db.*', true],
    ['data*.query', 'database.*', false],
    ['database.*', 'database.query', false],
    ['*', 'database.*', false],
    ['database.*', 'database.q*', false],
    ['payments.refund', 'payments.charge', false],
    ['a*b', 'a*c', false],
  ])('%s within %s: %s', (child, parent, answer) => {
    expect(toolSubset(child, parent)).toBe(answer);
  });

  it('is sound against every name of up to 7 characters over {a, b, .} (3,000 pattern pairs)', () => {
    fc.assert(
      fc.property(pattern, pattern, (child, parent) => {
        if (!toolSubset(child, parent)) return;
        const inChild = compileToolPattern(child);
        const inParent = compileToolPattern(parent);
        for (const name of SMALL) if (inChild(name)) expect([child, parent, name, inParent(name)]).toEqual([child, parent, name, true]);
      }),
      { numRuns: 3_000 },
    );
  });

  it('is sound on names made from the child by filling in its stars with anything (5,000 runs)', () => {
    const fill = fc.array(fc.string({ maxLength: 6, unit: fc.constantFrom('a', 'b', '.', '*', 'x', 'é') }), { minLength: 6, maxLength: 6 });
    fc.assert(
      fc.property(pattern, pattern, fill, (child, parent, fillings) => {
        fc.pre(toolSubset(child, parent));
        const parts = child.split('*');
        const name = parts.reduce((acc, part, i) => acc + (i > 0 ? fillings[(i - 1) % fillings.length]! : '') + part, '');
        expect(compileToolPattern(child)(name)).toBe(true);
        expect([child, parent, name, compileToolPattern(parent)(name)]).toEqual([child, parent, name, true]);
      }),
      { numRuns: 5_000 },
    );
  });

  it('says subset for exact names exactly when the parent matches them, and always for a pattern within itself', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[ab.]{0,6}$/), pattern, (name, parent) => {
        expect(toolSubset(name, parent)).toBe(compileToolPattern(parent)(name));
        expect(toolSubset(parent, parent)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});
