/**
 * Acceptance 4 of issue 10 from the CLI, with real processes: a planner holds a
 * token for payments.refund with amount <= 200, delegates amount <= 50 to an
 * executor, who delegates amount <= 20 to a sub-executor — all offline, with
 * `keys generate --holder`, `mint --holder`, `delegate`, `proof` and `verify`.
 * 15 is allowed at every level; 30 for the planner and the executor only; 150 for
 * the planner only. Each denial names the link whose bound it broke.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { CLI, cli, ROOT, tempDir, type CliResult } from '../helpers.js';

const POLICY = `capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - tool: "payments.refund"
      ttl: 600
      when: [{ arg: amount, op: "<=", value: 200 }]
`;
const TOOL = 'payments.refund';

/** `capframe <args>` as a child process, concurrently with others. */
function run(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** stdout of a command that must succeed. */
function ok(r: CliResult): string {
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('planner → executor → sub-executor with amount bounds 200 → 50 → 20, from the CLI', () => {
  let dir: string;
  let policy: string;
  const levels: { name: string; token: string; keyFile: string }[] = [];
  const publicKeys: Record<string, string> = {};

  beforeAll(async () => {
    dir = tempDir('capframe-delegation-');
    policy = join(dir, 'policy.yaml');
    ok(cli(['init', '--policy', policy]));
    writeFileSync(policy, POLICY);
    const names = ['planner', 'executor', 'sub-executor'];
    const generated = await Promise.all(names.map((n) => run(['keys', 'generate', '--holder', '--out', join(dir, `${n}.key`), '--json'])));
    generated.forEach((r, i) => {
      const { public_key } = JSON.parse(ok(r)) as { public_key: string };
      publicKeys[names[i]!] = public_key;
    });
    const t0 = ok(cli(['mint', '--policy', policy, '--tool', TOOL, '--agent', 'planner', '--holder', publicKeys.planner!]));
    const t1 = ok(cli(['delegate', '--token', t0, '--key', join(dir, 'planner.key'), '--tool', TOOL, '--when', '[{"arg":"amount","op":"<=","value":50}]', '--to', publicKeys.executor!, '--agent', 'executor']));
    const t2 = ok(cli(['delegate', '--token', t1, '--key', join(dir, 'executor.key'), '--tool', TOOL, '--when', '[{"arg":"amount","op":"<=","value":20}]', '--ttl', '300', '--to', publicKeys['sub-executor']!]));
    levels.push({ name: 'planner', token: t0, keyFile: join(dir, 'planner.key') });
    levels.push({ name: 'executor', token: t1, keyFile: join(dir, 'executor.key') });
    levels.push({ name: 'sub-executor', token: t2, keyFile: join(dir, 'sub-executor.key') });
  });

  /** The first line of `verify` for a call of `amount` by a level, with its own fresh proof. */
  async function callAt(level: (typeof levels)[number], amount: number): Promise<{ code: number; first: string; failedLine?: string }> {
    const args = JSON.stringify({ amount });
    const proof = ok(await run(['proof', '--token', level.token, '--key', level.keyFile, '--tool', TOOL, '--args', args]));
    const r = await run(['verify', '--policy', policy, '--token', level.token, '--tool', TOOL, '--args', args, '--proof', proof]);
    const lines = r.stdout.split('\n');
    return { code: r.code, first: lines[0]!, ...(lines.some((l) => l.endsWith('<- FAILED')) && { failedLine: lines.find((l) => l.endsWith('<- FAILED'))! }) };
  }

  it('15 is allowed at every level; 30 for the executor, not the sub-executor; 150 only for the planner', async () => {
    const grid = await Promise.all(levels.flatMap((level) => [15, 30, 150].map(async (amount) => [level.name, amount, await callAt(level, amount)] as const)));
    const verdicts = grid.map(([name, amount, r]) => `${name} ${amount}: ${r.code === 0 ? 'OK' : r.first.split(':')[0]}`);
    expect(verdicts).toEqual([
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
    const find = (name: string, amount: number) => grid.find(([n, a]) => n === name && a === amount)![2];
    // Which bound each denial broke: the executor's 50 for 150 at both lower levels, the sub-executor's 20 for 30.
    expect(find('executor', 150).failedLine).toMatch(/^ {2}link 0: tok_\S+ .*when=\[amount <= 50\] .*<- FAILED$/);
    expect(find('sub-executor', 150).failedLine).toMatch(/^ {2}link 1: tok_\S+ .*when=\[amount <= 50\] .*<- FAILED$/);
    expect(find('sub-executor', 30).failedLine).toMatch(/^ {2}link 0: tok_\S+ .*when=\[amount <= 20\] .*<- FAILED$/);
    expect(find('planner', 150).first).toMatch(/^OK tok_\S+ tool=payments\.refund capability=- agent=planner expires=/);
  }, 90_000);

  it('verify prints the whole chain: issuer and holder key ids, tools, constraints and expiry of each link', () => {
    const r = cli(['verify', '--policy', policy, '--token', levels[2]!.token]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^OK tok_\S+ tool=payments\.refund .* holder=[0-9a-f]{16} \(holder-bound: each call needs a proof by this key\)$/);
    expect(lines.slice(1).map((l) => l.replace(/tok_\S+/, 'tok').replace(/[0-9a-f]{16}/g, 'KID').replace(/expires=\S+/, 'expires=T'))).toEqual([
      '  link 2 (root): tok  signed by issuer key KID  holder KID  tool=payments.refund  agent=planner  when=[amount <= 200]  expires=T',
      '  link 1: tok  signed by holder key KID  holder KID  tool=payments.refund  agent=executor  when=[amount <= 50]  expires=T',
      '  link 0: tok  signed by holder key KID  holder KID  tool=payments.refund  when=[amount <= 20]  expires=T',
    ]);
    const json = JSON.parse(cli(['verify', '--policy', policy, '--token', levels[2]!.token, '--json']).stdout) as {
      valid: boolean;
      code: string;
      chain: { link: number; signed_by: string; holder: string }[];
    };
    expect(json.valid).toBe(true);
    expect(json.code).toBe('bad_proof');
    // Each link is signed by the key its parent binds.
    expect(json.chain.map((l) => l.link)).toEqual([2, 1, 0]);
    expect(json.chain[1]!.signed_by).toBe(json.chain[0]!.holder);
    expect(json.chain[2]!.signed_by).toBe(json.chain[1]!.holder);
  });

  it('denies a stolen token without a proof, or with a proof by another holder key', async () => {
    const [sub, exec] = [levels[2]!, levels[1]!];
    const args = JSON.stringify({ amount: 5 });
    const none = await run(['verify', '--policy', policy, '--token', sub.token, '--tool', TOOL, '--args', args]);
    expect([none.code, none.stdout.split('\n')[0]]).toEqual([2, expect.stringMatching(/^DENIED bad_proof: token is bound to a holder key and no holder proof was presented/)]);
    // The executor cannot sign for the sub-executor's token, and its own proof does not fit it.
    const refused = await run(['proof', '--token', sub.token, '--key', exec.keyFile, '--tool', TOOL, '--args', args]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not the token's holder key/);
    const foreign = ok(await run(['proof', '--token', exec.token, '--key', exec.keyFile, '--tool', TOOL, '--args', args]));
    const r = await run(['verify', '--policy', policy, '--token', sub.token, '--tool', TOOL, '--args', args, '--proof', foreign, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ allowed: false, code: 'bad_proof', valid: false, failed_link: 0 });
  });

  it('delegate refuses tools outside the parent\'s; revoking the root revokes every descendant', async () => {
    const wider = await run(['delegate', '--token', levels[1]!.token, '--key', levels[1]!.keyFile, '--tool', 'payments.*', '--to', publicKeys['sub-executor']!]);
    expect(wider.code).toBe(1);
    expect(wider.stderr.trim()).toBe('capframe: delegate: tools "payments.*" are not within the parent\'s "payments.refund"');
    const dir2 = tempDir('capframe-delegation-revoke-');
    const policy2 = join(dir2, 'policy.yaml');
    ok(cli(['init', '--policy', policy2]));
    writeFileSync(policy2, POLICY);
    const root = ok(cli(['mint', '--policy', policy2, '--tool', TOOL, '--holder', publicKeys.planner!]));
    const child = ok(cli(['delegate', '--token', root, '--key', levels[0]!.keyFile, '--tool', TOOL, '--to', publicKeys.executor!]));
    expect(cli(['verify', '--policy', policy2, '--token', child]).code).toBe(0);
    ok(cli(['revoke', '--policy', policy2, '--token', root]));
    const r = cli(['verify', '--policy', policy2, '--token', child]);
    expect(r.code).toBe(2);
    expect(r.stdout.split('\n')[0]).toMatch(/^DENIED revoked: token has been revoked \(tok_\S+, delegation link 1, its parent\)$/);
    expect(r.stdout).toMatch(/link 1 \(root\): .*<- FAILED\n/);
  });
});
