import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { toolMatches } from '../../src/policy/index.js';
import { patternCovers, patternsMayOverlap } from '../../src/policy/tool-pattern.js';

describe('toolMatches', () => {
  it.each([
    ['database.query', 'database.query', true],
    ['database.query', 'database.query2', false],
    ['database.query', 'database', false],
    ['database.*', 'database.query', true],
    ['database.*', 'database.', true],
    ['database.*', 'database', false],
    ['database.*', 'databasex.query', false],
    ['database.*', 'xdatabase.query', false],
    ['*', 'anything.at.all', true],
    ['*', '', true],
    ['*.read_*', 'files.read_file', true],
    ['*.read_*', 'files.write_file', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'acb', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*bc*bc', 'abcbc', true],
    ['a*bc*bc', 'abc', false],
    ['db.?', 'db.x', false],
    ['db.[a]', 'db.a', false],
  ] as const)('%s vs %s → %s', (pattern, tool, expected) => {
    expect(toolMatches(pattern, tool)).toBe(expected);
  });

  it('agrees with a reference regex on random patterns', () => {
    const chars = fc.constantFrom('a', 'b', '.', '*');
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 8 }), fc.string({ unit: fc.constantFrom('a', 'b', '.'), maxLength: 10 }), (pattern, tool) => {
        const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/\./g, '\\.')).join('.*')}$`, 's');
        expect(toolMatches(pattern, tool)).toBe(re.test(tool));
      }),
      { numRuns: 2000 },
    );
  });

  it('is not slow on a hostile tool name', () => {
    const start = performance.now();
    toolMatches('*a*a*a*a*a*a*a*b', 'a'.repeat(50_000));
    expect(performance.now() - start).toBeLessThan(200);
  });
});

describe('patternCovers / patternsMayOverlap', () => {
  it.each([
    ['database.*', 'database.query', true],
    ['database.*', 'database.read_*', true],
    ['database.*', 'database.*', true],
    ['*', 'x.*', true],
    ['database.query', 'database.*', false],
    ['database.*', 'data*', false],
    ['*.read', '*.write', false],
    ['a*b*c', 'a*c', false],
  ] as const)('%s covers %s → %s', (outer, inner, expected) => {
    expect(patternCovers(outer, inner)).toBe(expected);
  });

  it('never claims coverage that a tool contradicts (property)', () => {
    const unit = fc.constantFrom('a', 'b', '.', '*');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 6 }), fc.string({ unit, maxLength: 6 }), fc.string({ unit: fc.constantFrom('a', 'b', '.'), maxLength: 8 }), (outer, inner, tool) => {
        if (patternCovers(outer, inner) && toolMatches(inner, tool)) expect(toolMatches(outer, tool)).toBe(true);
        if (toolMatches(outer, tool) && toolMatches(inner, tool)) expect(patternsMayOverlap(outer, inner)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('knows disjoint prefixes do not overlap', () => {
    expect(patternsMayOverlap('shell.*', 'database.*')).toBe(false);
    expect(patternsMayOverlap('shell.*', '*')).toBe(true);
    expect(patternsMayOverlap('shell.exec', 'shell.*')).toBe(true);
  });
});
