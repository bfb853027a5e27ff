/**
 * `capframe agents add` as a real child process: the printed key hashes to the
 * printed key_sha256, the printed line pasted into a policy loads, and the proxy's
 * authenticate() accepts the key for that agent.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { loadPolicy } from '../../src/policy/index.js';
import { authenticate } from '../../src/proxy/auth.js';
import { cli, tempDir } from '../helpers.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

const POLICY = `capframe:
  version: "0.2"
  default_policy: deny
  agents:
    support-bot: { key_sha256: "${'ab'.repeat(32)}" }
  rules:
    - tool: "database.query"
      capability: "read-only"
      ttl: 300
`;

describe('capframe agents add', () => {
  let dir: string;
  let policyFile: string;

  beforeAll(() => {
    dir = tempDir();
    policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
  });

  it('prints a cfk_ key once and a policy line whose key_sha256 is the key\'s SHA-256', () => {
    const r = cli(['agents', 'add', 'billing-bot']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const key = /^api_key: (cfk_[A-Za-z0-9_-]{43})$/.exec(lines[0]!)?.[1];
    expect(key).toBeDefined();
    const line = /^ {4}billing-bot: \{ key_sha256: "([0-9a-f]{64})" \}$/.exec(lines[1]!);
    expect(line?.[1]).toBe(sha256(key!));
    // The key appears on stdout only, once; stderr says it is not stored and the file is not edited.
    expect(r.stdout.split(key!).length - 1).toBe(1);
    expect(r.stderr).not.toContain(key!);
    expect(r.stderr).toMatch(/shown only this once/);
    expect(r.stderr).toMatch(/does not edit the policy file/);
  });

  it('prints JSON with --json, and every run makes a different key', () => {
    const a = cli(['agents', 'add', 'ops.agent_1', '--json']);
    const b = cli(['agents', 'add', 'ops.agent_1', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const ja = JSON.parse(a.stdout) as Record<string, string>;
    const jb = JSON.parse(b.stdout) as Record<string, string>;
    expect(Object.keys(ja).sort()).toEqual(['agent', 'api_key', 'key_sha256', 'policy_line']);
    expect(ja.agent).toBe('ops.agent_1');
    expect(ja.key_sha256).toBe(sha256(ja.api_key!));
    expect(ja.policy_line).toBe(`    ops.agent_1: { key_sha256: "${ja.key_sha256}" }`);
    expect(ja.api_key).not.toBe(jb.api_key);
  });

  it('the printed line, pasted under agents:, loads and authenticate() accepts the key for that agent', async () => {
    const r = cli(['agents', 'add', 'billing-bot', '--policy', policyFile]);
    expect(r.code, r.stderr).toBe(0);
    const [keyLine, policyLine] = r.stdout.trimEnd().split('\n');
    const key = keyLine!.slice('api_key: '.length);
    // The command never writes the policy itself.
    expect(readFileSync(policyFile, 'utf8')).toBe(POLICY);

    const pasted = join(dir, 'pasted.yaml');
    writeFileSync(pasted, POLICY.replace('  agents:\n', `  agents:\n${policyLine}\n`));
    const policy = await loadPolicy(pasted);
    expect(Object.keys(policy.agents).sort()).toEqual(['billing-bot', 'support-bot']);
    expect(authenticate(policy, key)).toEqual({ kind: 'agent', agent: 'billing-bot' });
    expect(authenticate(policy, `${key}x`).kind).toBe('rejected');
  });

  it('says how to start the agents: section when the policy has none', () => {
    const bare = join(dir, 'bare.yaml');
    writeFileSync(bare, 'capframe:\n  version: "0.2"\n');
    const r = cli(['agents', 'add', 'first-bot', '--policy', bare]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/defines no agents yet: add "  agents:" under "capframe:"/);
  });

  it('exits 1 with one line for a name already in the policy, printing no key', () => {
    const r = cli(['agents', 'add', 'support-bot', '--policy', policyFile]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `capframe: agent "support-bot" is already defined in ${policyFile}; pick another name or replace its key_sha256 by hand`,
    ]);
  });

  it('exits 1 with one line for an invalid name or a missing policy', () => {
    for (const name of ['bad name', '1bot', 'true', 'a:b', `x${'y'.repeat(64)}`]) {
      const r = cli(['agents', 'add', name]);
      expect(r.code, name).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^capframe: invalid agent name/);
    }
    const missing = cli(['agents', 'add', 'bot', '--policy', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
