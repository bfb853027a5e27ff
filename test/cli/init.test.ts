/**
 * `capframe init` writes a starter a new user can run: the seed policy of SPEC §1
 * (unchanged), commented examples of servers, agents and capabilities that are
 * valid once uncommented, and the next step. The path a new user types, init →
 * policy check → serve, ends with a running server.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { SEED_POLICY } from '../../src/cli/commands/init.js';
import { parsePolicy } from '../../src/policy/index.js';
import { connectClient, killAllServed, startServe } from '../proxy/faults-helpers.js';
import { cli, tempDir } from '../helpers.js';

afterAll(() => killAllServed());

/** Uncomments the example blocks: a `# servers:`-style line and the indented `#   …` lines under it. */
function uncomment(text: string): string {
  const out: string[] = [];
  let inBlock = false;
  for (const line of text.split('\n')) {
    if (/^ {2}# (servers|agents|capabilities):$/.test(line)) {
      inBlock = true;
      out.push(`  ${line.slice(4)}`);
    } else if (inBlock && line.startsWith('  #   ')) {
      out.push(`  ${line.slice(4)}`);
    } else {
      inBlock = false;
      out.push(line);
    }
  }
  return out.join('\n');
}

describe('capframe init', () => {
  it('writes the seed policy unchanged plus commented examples, and prints the next step', () => {
    const dir = tempDir('capframe-init-');
    const file = join(dir, 'p.yaml');
    const r = cli(['init', '--policy', file]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`next: capframe policy check ${file}, then capframe serve --policy ${file} --port 8080`);
    const text = readFileSync(file, 'utf8');
    // The seed's rules, byte for byte, and the same data as the seed (comments only added).
    expect(text).toContain(SEED_POLICY.slice(SEED_POLICY.indexOf('  rules:\n')));
    expect(parse(text)).toEqual(parse(SEED_POLICY));
    for (const section of ['servers', 'agents', 'capabilities']) expect(text).toMatch(new RegExp(`^ {2}# ${section}:$`, 'm'));
    expect(text).toContain('capframe agents add');
  });

  it('its commented examples are a valid policy once uncommented (with a real key hash)', () => {
    const dir = tempDir('capframe-init-');
    const file = join(dir, 'p.yaml');
    expect(cli(['init', '--policy', file]).code).toBe(0);
    const key = createHash('sha256').update('cfk_example').digest('hex');
    const uncommented = uncomment(readFileSync(file, 'utf8'));
    expect(uncommented).not.toBe(readFileSync(file, 'utf8'));
    // The placeholder is not a hash: left in, it is a clear error at its line.
    expect(() => parsePolicy(uncommented, file)).toThrowError(/p\.yaml:\d+:\d+: expected key_sha256, the hex SHA-256 of the agent API key/);
    const policy = parsePolicy(uncommented.replace(/"<64 hex digits[^"]*>"/, `"${key}"`), file);
    expect(Object.keys(policy.servers).sort()).toEqual(['database', 'payments']);
    expect(Object.keys(policy.agents)).toEqual(['support-bot']);
    expect(Object.keys(policy.capabilities)).toEqual(['read-only']);
    expect(policy.warnings).toEqual(['line 33: capability "admin" is not defined under capabilities; it is a label with no extra constraints']);
    const query = (sql: string) => policy.decide({ agent: 'support-bot', tool: 'database.query', args: { sql }, token: { tool: 'database.query', cap: 'read-only' } });
    expect(query('SELECT * FROM orders').allowed).toBe(true);
    expect(query('SELECT 1; DROP TABLE orders')).toMatchObject({ allowed: false, code: 'constraint_failed' });
    expect(query('DELETE FROM orders')).toMatchObject({ allowed: false, code: 'constraint_failed' });
  });

  it('init, then policy check, then serve: a running server that answers an MCP client', async () => {
    const dir = tempDir('capframe-init-');
    const file = join(dir, 'p.yaml');
    expect(cli(['init', '--policy', file]).code).toBe(0);
    const check = cli(['policy', 'check', file]);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/^OK /);
    const served = await startServe(file);
    const client = await connectClient(served.url);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['capframe.request_token']);
    await client.close();
    expect(await served.stop()).toEqual({ code: 0, signal: null });
  });

  it('--force keeps the starter and the existing issuer key', () => {
    const dir = tempDir('capframe-init-');
    const file = join(dir, 'p.yaml');
    expect(cli(['init', '--policy', file]).code).toBe(0);
    writeFileSync(file, 'edited');
    const r = cli(['init', '--policy', file, '--force']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('kept existing issuer key');
    expect(parse(readFileSync(file, 'utf8'))).toEqual(parse(SEED_POLICY));
  });
});
