/**
 * Issue 10, acceptance 4 through the proxy with capframeClient: examples/agents/run.mjs
 * run as a real process (it starts `capframe serve` and three agents with their own API
 * keys and holder keys). Amount bounds 200 (policy) → 50 → 20 (delegation): 15 is
 * allowed at every level, 30 for the planner and the executor, 150 for the planner
 * only — and the payments server's CALL_LOG holds exactly the allowed calls, with
 * exactly the arguments that were checked.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ROOT, tempDir } from '../helpers.js';

interface Outcome {
  agent: string;
  amount: number;
  allowed: boolean;
  code: string | null;
  text: string;
}

describe('examples/agents: planner → executor → sub-executor through capframe serve', () => {
  it('allows 15 everywhere, 30 down to the executor, 150 for the planner only; the upstream saw exactly the allowed calls', () => {
    const dir = tempDir('capframe-agents-example-');
    const run = spawnSync(process.execPath, [join(ROOT, 'examples', 'agents', 'run.mjs'), '--dir', dir, '--json'], {
      cwd: ROOT,
      env: process.env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const { outcomes, callLog } = JSON.parse(run.stdout) as { outcomes: Outcome[]; callLog: string };

    expect(outcomes.map((o) => `${o.agent} ${o.amount}: ${o.allowed ? 'OK' : `DENIED ${o.code}`}`)).toEqual([
      'planner 15: OK',
      'planner 30: OK',
      'planner 150: OK',
      'executor 15: OK',
      'executor 30: OK',
      'executor 150: DENIED constraint_failed',
      'sub-executor 15: OK',
      'sub-executor 30: DENIED constraint_failed',
      'sub-executor 150: DENIED constraint_failed',
    ]);
    const denial = (agent: string, amount: number) => outcomes.find((o) => o.agent === agent && o.amount === amount)!.text;
    // Each denial names the bound it broke and the link that carries it.
    expect(denial('executor', 150)).toMatch(/^DENIED constraint_failed: amount <= 50: .*delegation link 0/);
    expect(denial('sub-executor', 30)).toMatch(/^DENIED constraint_failed: amount <= 20: .*delegation link 0/);
    expect(denial('sub-executor', 150)).toMatch(/^DENIED constraint_failed: amount <= 50: .*delegation link 1/);

    const calls = readFileSync(callLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
    const allowed = outcomes.filter((o) => o.allowed);
    expect(calls).toEqual(
      allowed.map((o) => ({
        server: 'payments',
        tool: 'refund',
        args: { charge_id: 'ch_1003', amount: o.amount, currency: 'USD', reason: `agents example: refund ${o.amount}` },
      })),
    );
    // The upstream really refunded each one.
    expect(allowed.map((o) => (JSON.parse(o.text) as { status: string; amount: number }))).toEqual(allowed.map((o) => expect.objectContaining({ status: 'succeeded', amount: o.amount })));
  }, 150_000);
});
