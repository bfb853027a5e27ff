/** src/proxy/check-arguments.ts: the one-pass I-JSON / depth / __proto__ gate. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalJson } from '../../src/audit/canonical-json.js';
import { argumentProblem, MAX_ARGUMENT_DEPTH } from '../../src/proxy/check-arguments.js';

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe('argumentProblem', () => {
  it('refuses what cannot be forwarded exactly, naming the path and why', () => {
    const cases: [unknown, string][] = [
      [JSON.parse('{"items":[{"sku":"a"},{"price":1e400}]}'), 'arguments.items[1].price: Infinity is not a finite number'],
      [{ n: NaN }, 'arguments.n: NaN is not a finite number'],
      [JSON.parse('{"n":9007199254740993}'), 'arguments.n: 9007199254740992 is outside ±(2^53−1), so it may have been rounded and cannot be forwarded exactly'],
      [{ n: -(2 ** 53) }, 'arguments.n: -9007199254740992 is outside ±(2^53−1)'],
      [{ n: 1.5e300 }, 'arguments.n: 1.5e+300 is outside ±(2^53−1)'],
      [{ 'a b': ['\ud800'] }, 'arguments["a b"][0]: the string contains a lone surrogate (not valid Unicode)'],
      [{ ['\udfff']: 1 }, 'arguments["\\udfff"]: the key contains a lone surrogate (not valid Unicode)'],
      [JSON.parse('{"o":{"__proto__":{"admin":true}}}'), 'arguments.o: a "__proto__" key is not allowed'],
      [{ d: new Date(0) }, 'arguments.d: not a plain JSON object'],
      [{ u: undefined }, 'arguments.u: undefined is not a JSON value'],
      [{ b: 1n }, 'arguments.b: bigint is not a JSON value'],
      [nested(MAX_ARGUMENT_DEPTH + 1), `: the arguments are nested deeper than ${MAX_ARGUMENT_DEPTH} levels`],
    ];
    for (const [args, reason] of cases) expect(argumentProblem(args), reason).toContain(reason);
  });

  it('accepts the largest safe integers, a paired surrogate and the deepest allowed nesting', () => {
    expect(argumentProblem({ max: Number.MAX_SAFE_INTEGER, min: -Number.MAX_SAFE_INTEGER, e: '😀', z: -0, f: 0.1 })).toBeUndefined();
    expect(argumentProblem(nested(MAX_ARGUMENT_DEPTH))).toBeUndefined();
    expect(argumentProblem(Object.assign(Object.create(null) as object, { a: 1 }))).toBeUndefined();
  });

  it('keeps long paths short', () => {
    const key = 'k'.repeat(500);
    const problem = argumentProblem({ [key]: { [key]: { [key]: Infinity } } })!;
    expect(problem.length).toBeLessThan(300);
    expect(problem).toMatch(/Infinity is not a finite number$/);
  });

  it('whatever it accepts re-serialises to the same value and has a canonical form', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        if (argumentProblem({ v: value }) !== undefined) return;
        const copy = JSON.parse(JSON.stringify({ v: value })) as unknown;
        // -0 is the number 0 in JSON; everything else survives exactly.
        expect(JSON.stringify(copy)).toBe(JSON.stringify({ v: value }));
        expect(canonicalJson(copy)).toBe(canonicalJson({ v: value }));
      }),
      { numRuns: 500 },
    );
  });
});
