/**
 * /healthz states (SPEC §6 Operations, issue 8 item 9): 200 ok while every upstream is up,
 * 503 degraded naming the one that is down (kill -9 of its child, restarts held off), 200
 * again once it is back; never a pid, a command line or an error text.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.js';
import { EXAMPLE_SERVERS, FIXTURES, healthz, killAllServed, NODE, poll, q, startServe, upstreamPid } from '../proxy/faults-helpers.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServed();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('GET /healthz', () => {
  it('is 200 ok with every upstream up, 503 degraded naming the one that is down, and 200 again when it is back', async () => {
    const dir = tempDir('capframe-http-health-');
    dirs.push(dir);
    const hold = join(dir, 'hold-down');
    const secret = 'SECRET_ARG_must_not_show';
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      `capframe:
  version: "0.2"
  default_policy: deny
  servers:
    database: { command: ${NODE}, args: [${q(join(FIXTURES, 'gated.js'))}, ${q(secret)}], env: { GATED_SERVER: ${q(join(EXAMPLE_SERVERS, 'database.js'))}, HOLD_DOWN_FILE: ${q(hold)} } }
    payments: { command: ${NODE}, args: [${q(join(EXAMPLE_SERVERS, 'payments.js'))}] }
  rules: []
`,
    );
    const served = await startServe(policy);
    const up = await healthz(served.base);
    expect(up).toMatchObject({ httpStatus: 200, status: 'ok', upstreams: { database: { up: true, tools: 2, restarts: 0 }, payments: { up: true, restarts: 0 } } });
    expect(Object.keys(up.upstreams.database!).sort()).toEqual(['restarts', 'since', 'tools', 'up']);
    const upSince = up.upstreams.database!.since!;
    expect(Date.parse(upSince)).toBeGreaterThan(Date.now() - 120_000);

    writeFileSync(hold, ''); // restarts fail while this exists
    const pid = upstreamPid(served, 'database');
    process.kill(pid, 'SIGKILL');
    const down = await poll(async () => {
      const h = await healthz(served.base);
      return h.httpStatus === 503 && h.upstreams.database!.restarts >= 1 ? h : undefined;
    }, '/healthz to say degraded after a failed restart', 15_000);
    expect(down).toMatchObject({ status: 'degraded', upstreams: { database: { up: false }, payments: { up: true } } });
    expect(Date.parse(down.upstreams.database!.since!)).toBeGreaterThan(Date.parse(upSince));
    expect(down.upstreams.payments!.since).toBe(up.upstreams.payments!.since);
    const text = await (await fetch(`${served.base}/healthz`)).text();
    for (const leak of [secret, 'gated.js', String(pid), 'pid', 'error', 'command']) expect(text).not.toContain(leak);

    rmSync(hold);
    const back = await poll(async () => {
      const h = await healthz(served.base);
      return h.httpStatus === 200 ? h : undefined;
    }, '/healthz to say ok once the upstream is back', 20_000);
    expect(back).toMatchObject({ status: 'ok', upstreams: { database: { up: true, tools: 2 } } });
    expect(back.upstreams.database!.restarts).toBeGreaterThanOrEqual(1);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });
});
