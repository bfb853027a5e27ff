/**
 * `capframe audit verify` and `capframe audit tail` as real child processes of the
 * compiled CLI (bin/capframe.js → dist/).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { openAuditLog } from '../../src/audit/writer.js';
import { CLI, ROOT, cli } from '../helpers.js';
import { entry, tempDir, writeLog } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let log: string;
let lines: string[];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  log = join(dir, 'audit.log');
  await writeLog(log, 5);
  lines = (await readFile(log, 'utf8')).slice(0, -1).split('\n');
});
afterEach(async () => {
  await cleanup();
});

describe('capframe audit verify', () => {
  it('prints OK <n> lines and exits 0', () => {
    const r = cli(['audit', 'verify', '--log', log]);
    expect(r).toEqual({ code: 0, stdout: 'OK 5 lines\n', stderr: '' });
  });

  it('prints BROKEN line <k>: <problem> and exits 2 for an edited, deleted or swapped line', async () => {
    const edited = lines[2]!.replace('"latency_us":13', '"latency_us":12');
    expect(edited).not.toBe(lines[2]);
    await writeFile(log, `${[...lines.slice(0, 2), edited, ...lines.slice(3)].join('\n')}\n`);
    expect(cli(['audit', 'verify', '--log', log])).toEqual({
      code: 2,
      stdout: 'BROKEN line 3: line 4 records a different hash for this line: this line was modified\n',
      stderr: '',
    });
    await writeFile(log, `${lines.filter((_, i) => i !== 1).join('\n')}\n`);
    expect(cli(['audit', 'verify', '--log', log]).stdout).toBe(
      'BROKEN line 2: chain broken: seq jumps from 1 to 3 and prev does not match line 1: line(s) deleted before this line\n',
    );
    await writeFile(log, `${[lines[0], lines[2], lines[1], lines[3], lines[4]].join('\n')}\n`);
    const swapped = cli(['audit', 'verify', '--log', log]);
    expect(swapped.code).toBe(2);
    expect(swapped.stdout).toBe('BROKEN line 2: lines out of order: seq 3 follows seq 1 and line 3 has seq 2\n');
  });

  it('exits 1 with one clear line when the log does not exist', () => {
    const missing = join(dir, 'missing.log');
    expect(cli(['audit', 'verify', '--log', missing])).toEqual({
      code: 1,
      stdout: '',
      stderr: `capframe: audit log not found: ${missing}\n`,
    });
  });

  it('finds the log through --policy (state_dir or audit.path) and --state-dir', async () => {
    const state = join(dir, 'state');
    await mkdir(state);
    await writeLog(join(state, 'audit.log'), 2);
    const policy = join(dir, 'policy.yaml');
    const body = (extra: string): string =>
      `capframe:\n  version: "0.2"\n  default_policy: deny\n  state_dir: state\n${extra}  rules:\n    - tool: "database.query"\n      capability: "read-only"\n      ttl: 300\n`;
    await writeFile(policy, body(''));
    expect(cli(['audit', 'verify', '--policy', policy])).toMatchObject({ code: 0, stdout: 'OK 2 lines\n' });
    await writeFile(policy, body('  audit:\n    path: audit.log\n'));
    expect(cli(['audit', 'verify', '--policy', policy])).toMatchObject({ code: 0, stdout: 'OK 5 lines\n' });
    expect(cli(['audit', 'verify', '--state-dir', state])).toMatchObject({ code: 0, stdout: 'OK 2 lines\n' });
    expect(cli(['audit', 'verify'], { cwd: dir, env: { CAPFRAME_STATE_DIR: state } })).toMatchObject({
      code: 0,
      stdout: 'OK 2 lines\n',
    });
  });
});

describe('capframe audit tail', () => {
  it('prints the last records one per line: time, decision, code, agent, tool, token, latency', () => {
    const r = cli(['audit', 'tail', '--log', log, '-n', '2']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = r.stdout.split('\n');
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z allow ok agent=agent-0 tool=database\.query token=tok_000004 14µs$/,
    );
    expect(out[1]).toMatch(/Z deny  missing_token agent=agent-1 tool=database\.query token=- 15µs$/);
    expect(out[2]).toBe('');
  });

  it('--json prints the raw lines', () => {
    const r = cli(['audit', 'tail', '--log', log, '-n', '3', '--json']);
    expect(r).toEqual({ code: 0, stdout: `${lines.slice(2).join('\n')}\n`, stderr: '' });
  });

  it('never prints control characters from agent-chosen text raw', async () => {
    const odd = join(dir, 'odd.log');
    const w = await openAuditLog(odd);
    w.append(entry(1, { agent: null, tool: 'evil\u001b[2J\u202etool name' }));
    await w.close();
    const r = cli(['audit', 'tail', '--log', odd]);
    expect(r.stdout).toContain('agent=- tool="evil\\u001b[2J\\u202etool name" token=-');
    expect(r.stdout).not.toMatch(/[\u001b\u202e]/);
    await writeFile(odd, 'garbage \u001b line\n');
    expect(cli(['audit', 'tail', '--log', odd]).stdout).toBe('INVALID "garbage \\u001b line"\n');
  });

  it('rejects a bad -n and a missing log with exit 1', () => {
    expect(cli(['audit', 'tail', '--log', log, '-n', 'ten'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'capframe: -n expects a non-negative integer, got "ten"\n',
    });
    const missing = join(dir, 'none.log');
    expect(cli(['audit', 'tail', '--log', missing])).toEqual({
      code: 1,
      stdout: '',
      stderr: `capframe: audit log not found: ${missing}\n`,
    });
  });

  it('--follow prints a record appended after it started, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'audit', 'tail', '--log', log, '-n', '1', '--follow', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const waitFor = async (n: number): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (stdout.split('\n').length - 1 < n) {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`tail printed ${JSON.stringify(stdout)} (stderr ${JSON.stringify(stderr)})`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitFor(1);
      expect(stdout).toBe(`${lines[4]}\n`);
      const w = await openAuditLog(log);
      const appended = w.append(entry(6, { reason: 'appended while following' }));
      await w.close();
      await waitFor(2);
      const second = JSON.parse(stdout.split('\n')[1]!) as { seq: number; reason: string };
      expect(second).toMatchObject({ seq: 6, reason: 'appended while following' });
      expect(second).toEqual(appended);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
