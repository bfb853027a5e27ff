/**
 * `capframe policy check` and `capframe policy test` as real child processes
 * against the compiled CLI.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { cli, ROOT, tempDir } from '../helpers.js';

const SEED = `capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - tool: "database.query"
      capability: "read-only"
      ttl: 300
    - tool: "payments.refund"
      capability: "admin"
      ttl: 60
`;

const EXAMPLE_POLICY = join(ROOT, 'examples', 'policy.yaml');
const EXAMPLE_CASES = join(ROOT, 'examples', 'cases.yaml');

describe('capframe policy', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('capframe-policy-cli-');
  });

  it('check: the seed policy passes with a summary, warnings that explain what it leaves open, and the next step (exit 0)', () => {
    const file = join(dir, 'seed.yaml');
    writeFileSync(file, SEED);
    const r = cli(['policy', 'check', file]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      `OK ${file}`,
      '  version 0.2, default_policy deny',
      '  0 servers, 0 agents, 0 capabilities, 2 rules',
      '  4 warnings',
      `next: add your MCP servers under servers:, then capframe serve --policy ${file} --port 8080`,
      '',
    ]);
    expect(r.stderr.split('\n')).toEqual([
      'warning: line 5: capability "read-only" is not defined under capabilities; it is a label with no extra constraints',
      'warning: line 8: capability "admin" is not defined under capabilities; it is a label with no extra constraints',
      'warning: no servers: `capframe serve` would proxy no tools; add your MCP servers under servers: (stdio command or url)',
      'warning: no agents: anyone holding a valid token may call (pure capability mode) and no caller authenticates; ' +
        'if that is not intended, run `capframe agents add <name>` and add the line it prints under agents:',
      '',
    ]);
  });

  it('check: the example policy passes with no warnings and names the serve command', () => {
    const r = cli(['policy', 'check', 'examples/policy.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK examples/policy.yaml');
    expect(r.stdout).toContain('5 servers, 4 agents, 6 capabilities, 12 rules');
    expect(r.stdout).toContain('  0 warnings\nnext: capframe serve --policy examples/policy.yaml --port 8080\n');
    expect(r.stderr).toBe('');
  });

  it('check: a pattern with a Unicode caveat is a warning with its line, never a failure; a path with spaces is quoted in the next step', () => {
    const file = join(dir, 'my policy.yaml');
    writeFileSync(
      file,
      `capframe:
  version: "0.2"
  servers:
    database: { command: node, args: [db.js] }
  capabilities:
    read-only:
      when: [{ arg: sql, op: not_matches, value: "DROP.*TABLE" }]
  rules:
    - { tool: database.query, capability: read-only }
`,
    );
    const r = cli(['policy', 'check', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  2 warnings\n');
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`next: capframe serve --policy '${file}' --port 8080`);
    const warnings = r.stderr.trim().split('\n');
    expect(warnings[0]).toMatch(/^warning: line 7: capability "read-only": sql not_matches "DROP\.\*TABLE": \. does not match line terminators/);
    expect(warnings[1]).toMatch(/^warning: no agents: /);
    expect(warnings).toHaveLength(2);
  });

  it('check: default_policy allow prints its warning on stderr', () => {
    const file = join(dir, 'allow.yaml');
    writeFileSync(file, 'capframe:\n  version: "0.2"\n  default_policy: allow\n');
    const r = cli(['policy', 'check', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('3 warnings'); // default allow, no servers, no agents
    expect(r.stderr).toMatch(/^WARNING: default_policy is allow: every tool that no rule mentions is ALLOWED/);
  });

  it('check: an invalid policy prints file:line:column lines on stderr and exits 1', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      when: [{ arg: a, op: "=~", value: "x" }]\n      ttl: soon\n');
    const r = cli(['policy', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      `${file}:5:28: unknown operator "=~"; expected one of == != < <= > >= in not_in matches not_matches starts_with contains max_length path_within url_origin_in url_path_within absent`,
      `${file}:6:12: expected a number, got a string`,
      '',
    ]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('check: a missing file is one clear line, exit 1', () => {
    const r = cli(['policy', 'check', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cannot read policy file ${join(dir, 'nope.yaml')}: no such file\n`);
  });

  it('test: the example cases all pass', () => {
    const r = cli(['policy', 'test', EXAMPLE_POLICY, '--cases', EXAMPLE_CASES]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = r.stdout.trim().split('\n').at(-1) ?? '';
    const match = /^(\d+) passed, 0 failed$/.exec(summary);
    expect(match).not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThanOrEqual(80);
    expect(r.stdout).not.toContain('FAIL');
  });

  it('test: a deliberately wrong expectation exits 2 and shows the failing case', () => {
    const cases = join(dir, 'wrong.yaml');
    writeFileSync(
      cases,
      `cases:
  - { name: refund ok, agent: support-bot, tool: payments.refund, args: { charge_id: ch_1, amount: 20, currency: EUR, reason: late }, expect: allow }
  - { name: wrong on purpose, agent: support-bot, tool: payments.refund, args: { charge_id: ch_1, amount: "20", currency: EUR, reason: late }, expect: allow }
  - { name: right code, agent: support-bot, tool: shell.exec, args: {}, expect: deny, code: denied_by_rule }
  - { name: wrong code, agent: support-bot, tool: shell.exec, args: {}, expect: deny, code: no_rule }
`,
    );
    const r = cli(['policy', 'test', EXAMPLE_POLICY, '--cases', cases]);
    expect(r.code).toBe(2);
    const lines = r.stdout.split('\n');
    expect(lines.find((l) => l.includes('wrong on purpose'))).toMatch(/^FAIL\s+wrong on purpose\s+allow\s+deny constraint_failed$/);
    expect(lines.find((l) => l.includes('wrong code'))).toMatch(/^FAIL\s+wrong code\s+deny no_rule\s+deny denied_by_rule$/);
    expect(lines.find((l) => l.includes('refund ok'))).toMatch(/^pass\s+refund ok/);
    expect(r.stdout).toContain('line 3: rule at line 97: amount > 0: expected a number, got a string');
    expect(lines.at(-2)).toBe('2 passed, 2 failed');
  });

  it('test: a bad cases file exits 1 with one clear line', () => {
    const cases = join(dir, 'badcases.yaml');
    writeFileSync(cases, 'cases:\n  - { name: a, tool: x.y, args: {}, expect: maybe }\n');
    const r = cli(['policy', 'test', EXAMPLE_POLICY, '--cases', cases]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${cases}:2:45: expect must be allow or deny\n`);
  });

  it('test: unknown keys and codes in cases are errors with positions', () => {
    const cases = join(dir, 'badkeys.yaml');
    writeFileSync(cases, 'cases:\n  - name: a\n    tool: x.y\n    expect: deny\n    cod: no_rule\n  - { name: b, tool: x.y, expect: deny, code: nope }\n');
    const r = cli(['policy', 'test', EXAMPLE_POLICY, '--cases', cases]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')).toEqual([
      `${cases}:5:5: unknown key "cod"; expected one of: name, agent, tool, capability, args, expect, code`,
      `${cases}:6:47: code must be one of ok, no_rule, denied_by_rule, constraint_failed, agent_not_allowed, agent_unknown, tool_mismatch`,
      '',
    ]);
  });

  it('test: a missing cases file or invalid policy exits 1', () => {
    const missing = cli(['policy', 'test', EXAMPLE_POLICY, '--cases', join(dir, 'none.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`cannot read cases file ${join(dir, 'none.yaml')}: no such file\n`);
    const bad = join(dir, 'bad2.yaml');
    writeFileSync(bad, 'capframe:\n  version: 2\n');
    const r = cli(['policy', 'test', bad, '--cases', EXAMPLE_CASES]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${bad}:2:12: expected version as a quoted string such as "0.2", got a number\n`);
  });

  it('test: --cases is required', () => {
    const r = cli(['policy', 'test', EXAMPLE_POLICY]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("required option '--cases <cases.yaml>' not specified");
  });
});
