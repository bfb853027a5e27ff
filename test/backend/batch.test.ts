/**
 * `verifyBatch` answers, token for token, what `verify` answers — on both backends,
 * for every shared vector, and for the signatures a batch equation alone would let
 * through (small-order R, S + L, R moved by a torsion point). The native backend checks
 * the signatures of a chunk with one random linear combination (native/src/verifier.rs),
 * so each odd token is also tried alone among good ones, where no other failure hides it.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { jsBackend } from '../../src/backend/js.js';
import { loadNativeBackend, nativeAddonPath } from '../../src/backend/native.js';
import { activeBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/types.js';
import { signingKey } from '../../src/keys/keys.js';
import { codeName } from '../../src/token/codes.js';
import { mint } from '../../src/token/mint.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/tokens.json', import.meta.url), 'utf8')) as {
  now: number;
  trusted_keys: string[];
  revoked: string[];
  tokens: { name: string; token: string; expect: string }[];
};
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const key = signingKey(new Uint8Array(32).fill(42));
const good = Array.from({ length: 140 }, (_, i) => mint({ key, tool: `db.t${i}`, ttl: 3600, now: vectors.now - 10 }).bytes);

// Edwards25519 in affine coordinates, just enough to move a signature's R by a torsion point.
const P = 2n ** 255n - 19n;
const mod = (n: bigint) => ((n % P) + P) % P;
function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  for (b = mod(b); e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
}
function inv(n: bigint): bigint {
  return pow(n, P - 2n);
}
const D = mod(-121665n * inv(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);
function decompress(bytes: Uint8Array): [bigint, bigint] {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  const x2 = mod((y * y - 1n) * inv(D * y * y + 1n));
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = (x * SQRT_M1) % P;
  if (mod(x * x - x2) !== 0n) throw new Error('not a point');
  if ((x & 1n) !== sign) x = mod(-x);
  return [x, y];
}
function add([x1, y1]: [bigint, bigint], [x2, y2]: [bigint, bigint]): [bigint, bigint] {
  const t = mod(D * x1 * x2 * y1 * y2);
  return [mod((x1 * y2 + y1 * x2) * inv(1n + t)), mod((y1 * y2 + x1 * x2) * inv(1n - t))];
}
function compress([x, y]: [bigint, bigint]): Uint8Array {
  const n = y | ((x & 1n) << 255n);
  return Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
}
/** A point of order 8, and so its multiples: every torsion point but the identity. */
const T8 = decompress(hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'));
const TORSION = [T8];
for (let i = 1; i < 7; i++) TORSION.push(add(TORSION[i - 1]!, T8));

/** A valid token with its signature's R moved by a torsion point, S unchanged. */
function torsionMoved(token: Uint8Array, t: [bigint, bigint]): Uint8Array {
  const out = Uint8Array.from(token);
  const at = out.length - 64;
  out.set(compress(add(decompress(out.subarray(at, at + 32)), t)), at);
  return out;
}

const odd = [
  ...vectors.tokens.map((v) => hex(v.token)),
  ...TORSION.map((t, i) => torsionMoved(good[i]!, t)),
  ...TORSION.map((t) => torsionMoved(hex(vectors.tokens[0]!.token), t)),
];

function core(backend: Backend) {
  const c = backend.createVerifierCore();
  c.addKey(key.publicKey);
  for (const k of vectors.trusted_keys) c.addKey(hex(k));
  for (const r of vectors.revoked) c.revoke(hex(r));
  return c;
}

function batch(backend: Backend, tokens: Uint8Array[]): string[] {
  const offsets = new Uint32Array(tokens.length + 1);
  tokens.forEach((t, i) => (offsets[i + 1] = offsets[i]! + t.length));
  return [...core(backend).verifyBatch(Buffer.concat(tokens), offsets, vectors.now)].map(codeName);
}

const singles = (backend: Backend, tokens: Uint8Array[]) => tokens.map((t) => codeName(core(backend).verify(t, vectors.now)));

describe(`verifyBatch on the ${activeBackend().name} backend`, () => {
  const backend = activeBackend();

  it('refuses every torsion-moved R alone, as strict verification does', () => {
    expect(singles(backend, odd.slice(vectors.tokens.length))).toEqual(Array(odd.length - vectors.tokens.length).fill('bad_signature'));
  });

  it('answers every vector and odd signature as verify does, all in one batch and in chunks', () => {
    const all = [...good.slice(0, 10), ...odd, ...good.slice(10)];
    expect(batch(backend, all)).toEqual(singles(backend, all));
    expect(batch(backend, good).every((c) => c === 'ok')).toBe(true);
  });

  it('answers each odd token alone among good ones as verify does', () => {
    for (const t of odd) {
      const set = [...good.slice(0, 4), t, ...good.slice(4, 8)];
      const got = batch(backend, set);
      expect([got[4], got.filter((c, i) => i !== 4 && c !== 'ok')]).toEqual([singles(backend, [t])[0], []]);
    }
  });
});

describe.runIf(nativeAddonPath() !== undefined)('verifyBatch: native and TypeScript agree', () => {
  it('on every vector and odd signature, in batches', () => {
    const native = loadNativeBackend().backend;
    const all = [...good.slice(0, 70), ...odd, ...good.slice(70)];
    expect(batch(native, all)).toEqual(batch(jsBackend, all));
    for (const t of odd) expect(batch(native, [...good.slice(0, 5), t])).toEqual(batch(jsBackend, [...good.slice(0, 5), t]));
  });
});
