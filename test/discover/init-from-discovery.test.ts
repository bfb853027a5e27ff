/**
 * `capframe init --from-discovery` end to end: real example servers over stdio, the
 * real CLI, and the written policy loaded and decided by the policy engine.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadPolicy } from '../../src/policy/index.js';
import { cli, ROOT, tempDir } from '../helpers.js';

const server = (name: string) => `{ command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(join(ROOT, 'examples', 'servers', `${name}.js`))}] }`;

describe('capframe init --from-discovery', () => {
  const dir = tempDir();
  const source = join(dir, 'servers.yaml');
  writeFileSync(
    source,
    `capframe:
  version: "0.2"
  default_policy: deny
  servers:
    database: ${server('database')}
    payments: ${server('payments')}
    shell: ${server('shell')}
  rules: []
`,
  );

  it('writes a commented draft that passes policy check and denies the critical tools', async () => {
    const draft = join(dir, 'draft.yaml');
    const r = cli(['init', '--from-discovery', '--policy', source, '--out', draft, '--timeout', '20']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('drafted from discovery');
    const text = readFileSync(draft, 'utf8');
    expect(text).toMatch(/^# .*REVIEW EVERY RULE BEFORE USE/m);

    const check = cli(['policy', 'check', draft]);
    expect(check.code).toBe(0);

    const policy = await loadPolicy(draft);
    expect(policy.decide({ tool: 'shell.exec', args: { command: 'id' }, token: { tool: 'shell.exec' } })).toMatchObject({ allowed: false, code: 'denied_by_rule' });
    expect(policy.couldGrant('shell.exec')).toBe(false);
    expect(policy.decide({ tool: 'database.query', args: { sql: 'SELECT 1' }, token: { tool: 'database.query' } }).allowed).toBe(true);
    // Money gets a suggested bound: a large refund is not allowed by the draft.
    expect(policy.decide({ tool: 'payments.refund', args: { charge_id: 'ch_1', amount: 1e6, currency: 'EUR', reason: 'x' }, token: { tool: 'payments.refund' } }).allowed).toBe(false);
  });

  it('refuses to overwrite the source policy without --force, and needs the source to exist', () => {
    const r = cli(['init', '--from-discovery', '--policy', source]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`capframe: ${source} already exists; pass --force to overwrite it (or --out <file> for the draft)`);
    const missing = join(dir, 'missing.yaml');
    const m = cli(['init', '--from-discovery', '--policy', missing, '--out', join(dir, 'x.yaml')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/reads the servers of .*missing\.yaml, which does not exist/);
    expect(existsSync(join(dir, 'x.yaml'))).toBe(false);
  });
});
