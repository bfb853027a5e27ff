/**
 * The shared delegation-chain and holder-proof vectors (test/vectors/chains.json,
 * made by scripts/gen-chain-vectors.mjs with every answer stated by hand): each
 * case through a fresh `createVerifier` on the active backend, and — when the addon
 * is built — native and TypeScript side by side, on full decisions and on the
 * backends' packed results.
 */
import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { jsBackend } from '../../src/backend/js.js';
import { loadNativeBackend, nativeAddonPath } from '../../src/backend/native.js';
import { activeBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/types.js';
import { codeName } from '../../src/token/codes.js';
import { proofArgsHash } from '../../src/token/proof-format.js';
import { createVerifier, type VerifyContext } from '../../src/verify/verifier.js';

interface Case {
  name: string;
  token: string;
  expect: string;
  detail?: string;
  link?: number;
  context?: { tool?: string; args?: unknown; audience?: string; proof?: string; proof_text?: string };
  then?: string;
  verifier?: { max_depth?: number };
}
interface Vectors {
  now_ms: number;
  trusted_keys: string[];
  revoked: string[];
  max_depth: number;
  cases: Case[];
}

const vectors = JSON.parse(readFileSync(new URL('../vectors/chains.json', import.meta.url), 'utf8')) as Vectors;
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

function contextOf(c: Case): VerifyContext | undefined {
  if (c.context === undefined) return undefined;
  const { proof, proof_text, ...rest } = c.context;
  return { ...rest, ...(proof !== undefined && { proof: hex(proof) }), ...(proof_text !== undefined && { proof: proof_text }) };
}

/** `code[/detail][@link]` of the case's decision, and of the same call made again when the case says. */
function run(backend: Backend, c: Case): string[] {
  const verifier = createVerifier({
    keys: vectors.trusted_keys,
    revoked: vectors.revoked.map(hex),
    backend,
    clock: () => vectors.now_ms,
    maxDepth: c.verifier?.max_depth ?? vectors.max_depth,
  });
  const show = (d: { code: string; detail?: string; link?: number }) => `${d.code}${d.detail !== undefined ? `/${d.detail}` : ''}@${d.link ?? 0}`;
  const first = verifier.verify(hex(c.token), contextOf(c));
  if (c.then === undefined) return [show(first)];
  return [show(first), verifier.verify(hex(c.token), contextOf(c)).code];
}

const expected = (c: Case) => {
  const first = `${c.expect}${c.detail !== undefined ? `/${c.detail}` : ''}@${c.link ?? 0}`;
  return c.then === undefined ? [first] : [first, c.then];
};

describe(`delegation and proof vectors on the ${activeBackend().name} backend`, () => {
  it('covers every acceptance attack and the malformed cnf/prf cases', () => {
    expect(vectors.cases.length).toBeGreaterThanOrEqual(90);
    const codes = new Set(vectors.cases.map((c) => c.expect));
    for (const code of ['ok', 'bad_proof', 'delegation_invalid', 'constraint_failed', 'bad_signature', 'revoked', 'malformed_token', 'unknown_key', 'expired', 'not_yet_valid', 'tool_mismatch']) {
      expect(codes, code).toContain(code);
    }
    expect(vectors.cases.some((c) => c.then === 'replay')).toBe(true);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(run(activeBackend(), c)).toEqual(expected(c));
  });
});

/** The backend's packed answer for a case: `verify`, or `verifyProof` with its nonce. */
function packed(backend: Backend, c: Case): string {
  const core = backend.createVerifierCore(16, c.verifier?.max_depth ?? vectors.max_depth);
  for (const k of vectors.trusted_keys) core.addKey(hex(k));
  for (const r of vectors.revoked) core.revoke(hex(r));
  const token = hex(c.token);
  if (c.context?.proof === undefined) return String(core.verify(token, vectors.now_ms / 1000));
  const nonce = new Uint8Array(16);
  const result = core.verifyProof(token, hex(c.context.proof), c.context.tool ?? '', proofArgsHash(c.context.args ?? {}), c.context.audience, vectors.now_ms, nonce);
  return `${result}:${Buffer.from(nonce).toString('hex')}`;
}

describe.runIf(nativeAddonPath() !== undefined)('native and TypeScript backends agree on chains and proofs', () => {
  const native = () => loadNativeBackend().backend;

  it('on every decision', () => {
    const n = native();
    for (const c of vectors.cases) expect([c.name, run(n, c)]).toEqual([c.name, run(jsBackend, c)]);
  });

  it('on every packed result (code, detail, link, nonce)', () => {
    const n = native();
    for (const c of vectors.cases) expect([c.name, packed(n, c)]).toEqual([c.name, packed(jsBackend, c)]);
  });

  it('on mutated chains and proofs, which are never accepted (3,000 runs)', () => {
    const n = native();
    const bases = vectors.cases.filter((c) => c.expect === 'ok' && c.context?.proof !== undefined);
    const mutate = (bytes: Uint8Array, at: number, bit: number) => {
      const out = new Uint8Array(bytes);
      out[at % out.length]! ^= 1 << bit;
      return out;
    };
    fc.assert(
      fc.property(fc.constantFrom(...bases), fc.boolean(), fc.nat(), fc.integer({ min: 0, max: 7 }), (c, inProof, at, bit) => {
        const token = inProof ? hex(c.token) : mutate(hex(c.token), at, bit);
        const proof = inProof ? mutate(hex(c.context!.proof!), at, bit) : hex(c.context!.proof!);
        const answers = [n, jsBackend].map((b) => {
          const core = b.createVerifierCore(0, vectors.max_depth);
          for (const k of vectors.trusted_keys) core.addKey(hex(k));
          return core.verifyProof(token, proof, c.context!.tool!, proofArgsHash(c.context!.args ?? {}), c.context!.audience, vectors.now_ms, new Uint8Array(16));
        });
        expect(answers[0]).toBe(answers[1]);
        expect(codeName(answers[0]!)).not.toBe('ok');
      }),
      { numRuns: 3_000 },
    );
  });
});
