/**
 * A slice of `npm run fuzz` (scripts/fuzz/targets.mjs) in every test run: each target
 * for a few thousand cases from a fixed seed. The token and chain targets compare both
 * backends when the addon is built; the proxy's JSON-RPC path runs on the backend under
 * test. The full runs (1,000,000 cases per target) are `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';

import { activeBackend } from '../../src/backend/select.js';

interface FuzzResult {
  cases: number;
  failures: { seed: number; case: number; what: string; input: string }[];
  forwarded?: number;
}
type Target = (o: { cases: number; seed?: number }) => Promise<FuzzResult>;

const targetsPath = '../../scripts/fuzz/targets.mjs';
const { TARGETS } = (await import(targetsPath)) as { TARGETS: Record<'token' | 'chain' | 'policy' | 'jsonrpc', Target> };

describe(`fuzz slice on the ${activeBackend().name} backend`, () => {
  it('token decoder: 20,000 cases, no throw, backends agree, no forgery', async () => {
    expect((await TARGETS.token({ cases: 20_000, seed: 11 })).failures).toEqual([]);
  });

  it('delegation chains and holder proofs: 5,000 cases', async () => {
    expect((await TARGETS.chain({ cases: 5_000, seed: 12 })).failures).toEqual([]);
  });

  it('policy loader on mutated YAML: 300 cases, only CapframeError', async () => {
    expect((await TARGETS.policy({ cases: 300, seed: 13 })).failures).toEqual([]);
  });

  it('the proxy JSON-RPC path: 600 mutated requests, no 500, no uncaught throw, nothing forwarded the policy denies', async () => {
    const r = await TARGETS.jsonrpc({ cases: 600, seed: 14 });
    expect(r.failures).toEqual([]);
    // The slice must reach the upstream at all, or the forwarding check checked nothing.
    expect(r.forwarded).toBeGreaterThan(0);
  }, 120_000);
});
