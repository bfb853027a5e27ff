import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_CANONICAL_DEPTH, canonicalJson, fingerprintJson, sha256Hex } from '../../src/lib/canonical-json.js';
import { CapframeError } from '../../src/errors.js';

/** Builds the double with the given IEEE 754 bit pattern (RFC 8785 Appendix B lists them so). */
function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

describe('canonicalJson: RFC 8785 examples', () => {
  it('§3.2.2 sample: literals, numbers and string escapes', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    expect(canonicalJson(JSON.parse(input))).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
  });

  it('§3.2.3 sorting: by UTF-16 code units, not code points or locale', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    const out = canonicalJson(JSON.parse(input));
    // U+1F600 (surrogates D83D DE00) sorts before U+FB33 by code units, after it by code
    // points. (Object.keys would reorder "1" first, so compare the text.)
    expect(out).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    // The RFC's UTF-8 hex of the output begins 7b 22 5c 72 22 3a 22 43 ("{"\r":"C).
    expect(Buffer.from(out, 'utf8').subarray(0, 8).toString('hex')).toBe('7b225c72223a2243');
  });

  it('the "weird" test data: control characters, DEL, emoji, </script>', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign", "\r": "Carriage Return", "\u000a": "Newline", "1": "One",
      "\u0080": "Control\u007f", "\ud83d\ude02": "Smiley",
      "\u00f6": "Latin Small Letter O With Diaeresis",
      "\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"
    }`;
    expect(canonicalJson(JSON.parse(input))).toBe(
      '{"\\n":"Newline","\\r":"Carriage Return","1":"One","</script>":"Browser Challenge",' +
        '"\u0080":"Control\u007f","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign",' +
        '"😂":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('nested structures and arrays keep array order and sort every object', () => {
    const structures = `{"1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0}, "10": { }, "": "empty", "a": { },
      "111": [ {"e": "yes","E": "no" } ], "A": { }}`;
    expect(canonicalJson(JSON.parse(structures))).toBe(
      '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}',
    );
    // JS objects iterate integer-like keys numerically ("2" before "10"); JCS sorts by code units.
    expect(canonicalJson({ 2: 'b', 10: 'a', x: 0 })).toBe('{"10":"a","2":"b","x":0}');
    expect(canonicalJson(JSON.parse('[56, {"d": true, "10": null, "1": [ ]}]'))).toBe(
      '[56,{"1":[],"10":null,"d":true}]',
    );
  });

  it('does not normalize Unicode (A + combining ring stays two code points)', () => {
    expect(canonicalJson({ 'Unnormalized Unicode': 'A\u030a' })).toBe('{"Unnormalized Unicode":"A\u030a"}');
  });

  it('Appendix B: number serialization', () => {
    const table: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, expected] of table) {
      expect({ bits, out: canonicalJson(fromBits(bits)) }).toEqual({ bits, out: expected });
    }
    // NaN and Infinity have no JSON form.
    expect(() => canonicalJson(fromBits('7fffffffffffffff'))).toThrow(/NaN/);
    expect(() => canonicalJson(fromBits('7ff0000000000000'))).toThrow(/Infinity/);
  });
});

describe('canonicalJson: rejects what is not JSON', () => {
  const cases: [string, unknown, RegExp][] = [
    ['undefined', undefined, /undefined at \$ /],
    ['undefined member', { a: 1, b: undefined }, /undefined at \$\.b /],
    ['sparse array hole', [1, , 3], /undefined at \$\[1\]/],
    ['function', { f: () => 1 }, /a function at \$\.f/],
    ['symbol', [Symbol('x')], /a symbol at \$\[0\]/],
    ['BigInt', { n: 10n }, /a BigInt at \$\.n/],
    ['NaN', { x: [NaN] }, /NaN at \$\.x\[0\]/],
    ['-Infinity', -Infinity, /-Infinity at \$/],
    ['Date', { d: new Date(0) }, /instance of Date at \$\.d/],
    ['Map', new Map(), /instance of Map/],
    ['typed array', new Uint8Array(2), /instance of Uint8Array/],
    ['boxed string', { s: new String('x') }, /instance of String/],
    ['lone surrogate in a value', { s: 'a\ud800b' }, /lone surrogate at \$\.s/],
    ['lone surrogate in a key', { '\udc00': 1 }, /lone surrogate/],
  ];
  for (const [name, value, message] of cases) {
    it(name, () => {
      let caught: unknown;
      try {
        canonicalJson(value);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CapframeError);
      expect((caught as CapframeError).code).toBe('invalid_argument');
      expect((caught as CapframeError).message).toMatch(message);
    });
  }

  it('cycles, but not shared sub-objects', () => {
    const shared = { v: 1 };
    expect(canonicalJson({ a: shared, b: [shared] })).toBe('{"a":{"v":1},"b":[{"v":1}]}');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    expect(() => canonicalJson(cyclic)).toThrow(/cycle at \$\.self\.back/);
    const list: unknown[] = [];
    list.push(list);
    expect(() => canonicalJson(list)).toThrow(/cycle at \$\[0\]/);
  });

  it('nesting beyond the limit is an error, not a stack overflow', () => {
    let deep: unknown = 0;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) deep = [deep];
    expect(canonicalJson(deep)).toBe(`${'['.repeat(MAX_CANONICAL_DEPTH)}0${']'.repeat(MAX_CANONICAL_DEPTH)}`);
    expect(() => canonicalJson([deep])).toThrow(CapframeError);
  });

  it('accepts null-prototype objects and paired surrogates', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.z = '😀';
    bare.a = null;
    expect(canonicalJson(bare)).toBe('{"a":null,"z":"😀"}');
  });
});

describe('canonicalJson: properties', () => {
  it('is a fixed point: canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const once = canonicalJson(value);
        expect(canonicalJson(JSON.parse(once))).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  it('does not depend on member insertion order and parses back to equal data', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'grapheme' }), fc.jsonValue()), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        const out = canonicalJson(dict);
        expect(canonicalJson(reversed)).toBe(out);
        expect(JSON.parse(out)).toEqual(JSON.parse(JSON.stringify(dict)));
        // No whitespace outside string literals.
        expect(out.replace(/"(?:[^"\\]|\\.)*"/g, '""')).not.toMatch(/\s/);
      }),
      { numRuns: 500 },
    );
  });
});

describe('sha256Hex', () => {
  it('hashes strings as UTF-8 and bytes as given', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new Uint8Array([0x61, 0x62, 0x63]))).toBe(sha256Hex('abc'));
    expect(sha256Hex('é')).toBe(sha256Hex(Buffer.from([0xc3, 0xa9])));
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('fingerprintJson', () => {
  it('is the canonical hash for I-JSON, and a marked hash in a separate domain otherwise; it never throws', () => {
    expect(fingerprintJson({ b: 1, a: 'x' })).toEqual({ sha256: sha256Hex('{"a":"x","b":1}'), canonical: '{"a":"x","b":1}' });
    const deep: unknown[] = [];
    let cursor = deep;
    for (let i = 0; i < MAX_CANONICAL_DEPTH + 10; i++) {
      const next: unknown[] = [];
      cursor.push(next);
      cursor = next;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const odd = [{ n: NaN }, { n: -Infinity }, { s: '\udc00' }, { [`k\ud800`]: 1 }, { u: undefined }, { b: 1n }, new Date(0), deep, cyclic];
    const hashes = odd.map((value) => fingerprintJson(value));
    for (const h of hashes) {
      expect(h.canonical).toBeUndefined();
      expect(h.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(new Set(hashes.map((h) => h.sha256)).size).toBe(odd.length);
    // Lone surrogates keep their identity (escaped), so two different ones differ.
    expect(fingerprintJson({ s: '\ud800' }).sha256).not.toBe(fingerprintJson({ s: '\ud801' }).sha256);
  });
});
