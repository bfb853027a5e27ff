/**
 * Operations a new user meets (issue 8, item 9), end to end with the real CLI as a
 * child process and real stdio upstreams: a taken port ends `serve` with exit 1 and
 * no orphaned upstream children; a policy reload applies `servers` changes (added
 * started, removed stopped, changed restarted); an upstream that fails to start is
 * logged with the last lines of its stderr, which never reach an agent.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { ROOT, tempDir } from '../helpers.js';
import {
  call,
  connectClient,
  deniedCode,
  EXAMPLE_SERVERS,
  killAllServed,
  NODE,
  poll,
  q,
  replaceFile,
  requestToken,
  startServe,
  textOf,
  upstreamCalls,
  withTimeout,
} from './faults-helpers.js';
import { alive, connectedPids, occupyPort, runToExit } from './lifecycle-helpers.js';

const AGENT_KEY = 'cfk_operations-test-agent';
const AGENTS = `  agents:\n    agent: { key_sha256: "${createHash('sha256').update(AGENT_KEY).digest('hex')}" }\n`;
const CRASH_SERVER = join(ROOT, 'test', 'discover', 'fixtures', 'crash-server.js');

const server = (file: string, env: Record<string, string> = {}): string => `{ command: ${NODE}, args: [${q(file)}], env: ${JSON.stringify(env)} }`;

const clients: Client[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => withTimeout(c.close(), 2000, 'client close').catch(() => undefined)));
  killAllServed();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}

describe('a listen error', () => {
  it('serve on a taken port: one clear line, exit 1, and every upstream child it started is gone', async () => {
    const dir = scratch('capframe-ops-port-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      `capframe:
  version: "0.2"
  servers:
    database: ${server(join(EXAMPLE_SERVERS, 'database.js'))}
    payments: ${server(join(EXAMPLE_SERVERS, 'payments.js'))}
  rules:
    - { tool: database.query }
`,
    );
    const { port, server: holder } = await occupyPort();
    try {
      const r = await runToExit(['serve', '--policy', policy, '--port', String(port)]);
      expect(r.code, r.stderr).toBe(1);
      const plain = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
      expect(plain).toEqual([`capframe: cannot listen on 127.0.0.1:${port}: port in use (EADDRINUSE); pick another --port`]);
      const pids = connectedPids(r.stderr);
      expect([...pids.keys()].sort()).toEqual(['database', 'payments']);
      // No orphans: the children were stopped before the exit (poll: the kernel reaps them shortly after).
      await poll(() => ([...pids.values()].every((pid) => !alive(pid)) ? true : undefined), 'the upstream children to be gone', 5000);
    } finally {
      holder.close();
    }
  }, 60_000);

  it('serve on an address this machine does not have: exit 1 naming it', async () => {
    const dir = scratch('capframe-ops-addr-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, `capframe:\n  version: "0.2"\n  servers:\n    database: ${server(join(EXAMPLE_SERVERS, 'database.js'))}\n`);
    const r = await runToExit(['serve', '--policy', policy, '--port', '0', '--host', '192.0.2.1']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('capframe: cannot listen on 192.0.2.1:0: address not available on this machine (EADDRNOTAVAIL); check --host\n');
    const pids = [...connectedPids(r.stderr).values()];
    expect(pids).toHaveLength(1);
    await poll(() => (pids.every((pid) => !alive(pid)) ? true : undefined), 'the upstream child to be gone', 5000);
  }, 60_000);
});

describe('policy reload applies servers', () => {
  it('an added server is started and callable, a changed one restarted (new pid), a removed one stopped; each logged', async () => {
    const dir = scratch('capframe-ops-reload-');
    const dbCalls = join(dir, 'database-calls.log');
    const payCalls = join(dir, 'payments-calls.log');
    const policy = join(dir, 'policy.yaml');
    const policyWith = (servers: string) => `capframe:
  version: "0.2"
${AGENTS}  servers:
${servers}  rules:
    - { tool: database.query, ttl: 120 }
    - { tool: payments.get_charge, ttl: 120 }
`;
    const database = (env: Record<string, string> = {}) => `    database: ${server(join(EXAMPLE_SERVERS, 'database.js'), { CALL_LOG: dbCalls, ...env })}\n`;
    const payments = `    payments: ${server(join(EXAMPLE_SERVERS, 'payments.js'), { CALL_LOG: payCalls })}\n`;
    writeFileSync(policy, policyWith(database()));

    const served = await startServe(policy);
    const agent = await connectClient(served.url, AGENT_KEY);
    clients.push(agent);
    const listed = async () => (await agent.listTools()).tools.map((t) => t.name).sort();
    const pidOf = (name: string) => connectedPids(served.stderr()).get(name);
    const query = async () => {
      const { token } = await requestToken(agent, 'database.query');
      const r = await call(agent, 'database.query', { sql: 'SELECT COUNT(*) FROM customers' }, token);
      expect(r.isError, textOf(r)).not.toBe(true);
      expect(JSON.parse(textOf(r))).toEqual([{ count: 4 }]);
    };
    expect(await listed()).toEqual(['capframe.request_token', 'database.query']);
    const payToken = (await requestToken(agent, 'payments.get_charge')).token; // the rule exists; the server does not yet
    expect(deniedCode(await call(agent, 'payments.get_charge', { charge_id: 'ch_1001' }, payToken))).toBe('no_rule');
    const dbPid = pidOf('database')!;
    expect(dbPid).toBeGreaterThan(0);

    // 1. Added: started, its tools listed and callable.
    replaceFile(policy, policyWith(database() + payments));
    await served.waitForLog((l) => l.msg === 'upstream added by policy reload; starting it' && l.server === 'payments', 'about the added server', 10_000);
    await served.waitForLog((l) => l.msg === 'upstream connected' && l.server === 'payments', 'the added server to connect', 20_000);
    expect(await listed()).toEqual(['capframe.request_token', 'database.query', 'payments.get_charge']);
    const charge = await call(agent, 'payments.get_charge', { charge_id: 'ch_1001' }, payToken);
    expect(charge.isError, textOf(charge)).not.toBe(true);
    expect(JSON.parse(textOf(charge))).toMatchObject({ id: 'ch_1001', amount: 120 });
    expect(upstreamCalls(payCalls)).toHaveLength(1);
    const payPid = pidOf('payments')!;
    expect(pidOf('database')).toBe(dbPid); // the unchanged server kept its child

    // 2. Changed (env): restarted with a new child; the old one is gone.
    replaceFile(policy, policyWith(database({ RELOAD_MARK: '2' }) + payments));
    const changed = await served.waitForLog((l) => l.msg === 'upstream changed by policy reload; restarting it' && l.server === 'database', 'about the changed server', 10_000);
    expect(changed.changed).toEqual(['env']);
    expect(JSON.stringify(changed)).not.toContain('RELOAD_MARK'); // names of fields, not their values
    const newDbPid = await poll(() => {
      const pid = pidOf('database');
      return pid !== undefined && pid !== dbPid ? pid : undefined;
    }, 'the database server to be restarted', 20_000);
    await poll(() => (!alive(dbPid) ? true : undefined), 'the old database child to be gone', 5000);
    expect(alive(newDbPid)).toBe(true);
    await query();
    expect(pidOf('payments')).toBe(payPid);

    // 3. Removed: stopped, its child gone, its tools no longer listed or callable.
    const before = upstreamCalls(payCalls).length;
    replaceFile(policy, policyWith(database({ RELOAD_MARK: '2' })));
    await served.waitForLog((l) => l.msg === 'upstream removed by policy reload; stopping it' && l.server === 'payments', 'about the removed server', 10_000);
    await poll(() => (!alive(payPid) ? true : undefined), 'the removed payments child to be gone', 5000);
    expect(await listed()).toEqual(['capframe.request_token', 'database.query']);
    const gone = await call(agent, 'payments.get_charge', { charge_id: 'ch_1001' }, payToken);
    expect(deniedCode(gone), textOf(gone)).toBe('no_rule');
    expect(upstreamCalls(payCalls)).toHaveLength(before);
    await query();

    // A reload that leaves servers alone (a rule added) restarts nothing.
    replaceFile(policy, `${policyWith(database({ RELOAD_MARK: '2' }))}    - { tool: database.update, ttl: 60 }\n`);
    await served.waitForLog((l) => l.msg === 'policy reloaded' && l.rules === 3, 'the rules-only reload', 10_000);
    await query();
    expect(served.logs().filter((l) => /by policy reload/.test(l.msg))).toHaveLength(3);
    expect(pidOf('database')).toBe(newDbPid);
    expect(await served.stop()).toEqual({ code: 0, signal: null });
    expect(alive(newDbPid)).toBe(false);
  }, 90_000);
});

describe('an upstream that fails to start', () => {
  it('is logged with the last lines of its stderr; an agent calling it gets upstream_unavailable without them', async () => {
    const dir = scratch('capframe-ops-crash-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      `capframe:
  version: "0.2"
${AGENTS}  servers:
    broken: ${server(CRASH_SERVER, { CRASH_TRACE: '1' })}
    database: ${server(join(EXAMPLE_SERVERS, 'database.js'))}
  rules:
    - { tool: broken.anything, ttl: 60 }
`,
    );
    const served = await startServe(policy);
    const failed = await served.waitForLog((l) => l.msg === 'upstream unavailable' && l.server === 'broken', 'about the broken server');
    expect(failed.level).toBe('error');
    expect(failed.error).toMatch(/^server "broken" \(.*crash-server\.js`\): the server exited or closed the connection during initialize$/);
    expect(failed.stderr).toEqual(Array.from({ length: 10 }, (_, i) => `at frame${i + 5} (/srv/app/db.js:${i + 5}:7)`));

    const agent = await connectClient(served.url, AGENT_KEY);
    clients.push(agent);
    const { token } = await requestToken(agent, 'broken.anything');
    const r = await call(agent, 'broken.anything', {}, token);
    expect(deniedCode(r), textOf(r)).toBe('upstream_unavailable');
    expect(textOf(r)).toContain('"broken"');
    expect(textOf(r)).not.toMatch(/frame|db\.js|stderr/);
    expect(await served.stop()).toEqual({ code: 0, signal: null });
  });
});
