/** One process owns an audit log: a second `serve` on the same log refuses to start. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.js';
import { cliAsync, killAllServed, startServe } from './faults-helpers.js';

const POLICY = `capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - tool: "database.query"
      ttl: 60
`;

afterAll(() => killAllServed());

describe('audit log ownership', () => {
  it('a second serve on the same audit log exits 1 naming the owner; its own --audit-log works', async () => {
    const dir = tempDir();
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    const first = await startServe(policy);
    const second = await cliAsync(['serve', '--policy', policy, '--port', '0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`audit log ${join(dir, '.capframe', 'audit.log')} is in use by process ${first.pid}`);
    const third = await startServe(policy, { args: ['--audit-log', join(dir, 'other.log')] });
    expect(await third.stop()).toMatchObject({ code: 0 });
    expect(await first.stop()).toMatchObject({ code: 0 });
  });

  it('a lock left by a process that is gone is taken over', async () => {
    const dir = tempDir();
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, '.capframe'), { recursive: true });
    writeFileSync(join(dir, '.capframe', 'audit.log.lock'), '999999999\n');
    const served = await startServe(policy);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });
});
