/**
 * Issue 10, acceptance 3: revoking a parent makes every descendant `revoked` at once —
 * in a running `capframe serve` (through `capframe revoke` and `POST /v1/revocations`)
 * and in a `capframeGuard`-ed server that shares the state directory. The guarded
 * server also sits behind serve, so a delegated call reaches it with the token and the
 * proof, and it verifies both again itself.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { delegate } from '../../src/token/delegate.js';
import { cli, ROOT } from '../helpers.js';
import { agentsSection, callMeta, proved, requestBound, testAgent, type TestAgent } from './delegation-helpers.js';
import { createPolicyEnv, expectDenial, expectDenied, openProxy, textOf, type PolicyEnv, type Proxy } from './e2e-helpers.js';

const ADMIN_KEY = randomBytes(24).toString('hex');
const GUARDED = join(ROOT, 'test', 'fixtures', 'guarded-server.js');
const QUERY = 'database.query';

const planner = testAgent('planner');
const executor = testAgent('executor');
const sub = testAgent('sub-executor');
const AGENTS = [planner, executor, sub];

/** The guard's CALL_LOG: one `{sql}` line per call its tool ran. */
function guardRuns(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { sql: string }).sql);
}

/**
 * Calls `act` until it is denied, for at most `ms`; returns the denial and how long it
 * took. Each attempt that was allowed ran, so the caller checks the upstream's log.
 */
async function deniedWithin(ms: number, act: () => Promise<CallToolResult>): Promise<{ result: CallToolResult; elapsed: number }> {
  const start = Date.now();
  let result = await act();
  while (!result.isError && Date.now() - start < ms) {
    await new Promise((r) => setTimeout(r, 20));
    result = await act();
  }
  return { result, elapsed: Date.now() - start };
}

describe('revoking a parent revokes every descendant at once: serve, and a guarded server sharing the state directory', () => {
  let env: PolicyEnv;
  let proxy: Proxy;
  const clients = new Map<TestAgent, Client>();
  /** The guard behind serve writes the env's CALL_LOG (so expectDenied checks it), as `{sql}` lines. */
  const guardLog = () => env.callLog;
  const directLog = () => join(env.dir, 'direct-guard-calls.log');
  let direct: Client;

  beforeAll(async () => {
    env = createPolicyEnv(({ dir, callLog }) => ({
      version: '0.2',
      default_policy: 'deny',
      servers: {
        // The guarded server trusts serve's state directory and follows its revocation log.
        database: {
          command: process.execPath,
          args: [GUARDED],
          env: { GUARD_STATE_DIR: join(dir, '.capframe'), GUARD_PREFIX: 'database.', GUARD_FOLLOW: '1', CALL_LOG: callLog },
          timeout: 20,
        },
      },
      agents: agentsSection(AGENTS),
      rules: [{ tool: QUERY, ttl: 600, agents: AGENTS.map((a) => a.name) }],
    }));
    proxy = await openProxy('http', env, { serveEnv: { CAPFRAME_ADMIN_KEY: ADMIN_KEY } });
    for (const agent of AGENTS) clients.set(agent, await proxy.connect({ agentKey: agent.apiKey }));
    // A second guarded server, called directly, sharing the same state directory (started after serve made the issuer key).
    direct = new Client({ name: 'direct', version: '1.0.0' });
    await direct.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [GUARDED],
        env: { ...(process.env as Record<string, string>), GUARD_STATE_DIR: env.stateDir, GUARD_PREFIX: 'database.', GUARD_FOLLOW: '1', CALL_LOG: directLog() },
        stderr: 'ignore',
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await direct?.close();
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  const as = (agent: TestAgent) => clients.get(agent)!;
  const q = (sql: string) => ({ sql });

  /** A fresh chain root (planner) → t1 (executor) → t2 (sub-executor) for database.query. */
  async function chain() {
    const root = await requestBound(as(planner), QUERY, planner.publicHex);
    const t1 = delegate(root.token, { key: planner.holder.secretKey, tools: QUERY, to: executor.holder.publicKey });
    const t2 = delegate(t1.token, { key: executor.holder.secretKey, tools: QUERY, to: sub.holder.publicKey });
    return { root, t1, t2 };
  }

  it('a delegated call through serve reaches the guarded server with its token and proof, which it verifies itself', async () => {
    const { t2 } = await chain();
    const before = guardRuns(guardLog()).length;
    const result = await callMeta(as(sub), QUERY, q('SELECT 1'), proved(t2.token, sub.holder.secretKey, QUERY, q('SELECT 1')));
    // A guard that got no proof would have answered "[upstream] DENIED bad_proof".
    expect(result.isError ?? false, textOf(result)).toBe(false);
    expect(textOf(result)).toMatch(/^ran SELECT 1 \(call \d+\)$/);
    expect(guardRuns(guardLog()).slice(before)).toEqual(['SELECT 1']);
  });

  it('`capframe revoke` of the executor\'s token: the sub-executor\'s is revoked within a second, in serve and in the running guard; the root still works', async () => {
    const { root, t1, t2 } = await chain();
    const subCall = (sql: string) => () => callMeta(as(sub), QUERY, q(sql), proved(t2.token, sub.holder.secretKey, QUERY, q(sql)));
    const directCall = (sql: string) => async () => (await direct.callTool({ name: 'query', arguments: q(sql), _meta: proved(t2.token, sub.holder.secretKey, QUERY, q(sql)) })) as CallToolResult;
    expect((await subCall('SELECT 2')()).isError ?? false).toBe(false);
    expect((await directCall('SELECT 2')()).isError ?? false).toBe(false);

    const revoke = cli(['revoke', '--policy', env.policyFile, '--token', t1.id]);
    expect(revoke.code, revoke.stderr).toBe(0);
    const viaServe = await deniedWithin(1000, subCall('SELECT 3'));
    expectDenial(viaServe.result, 'revoked');
    expect(viaServe.elapsed).toBeLessThanOrEqual(1000);
    expect(textOf(viaServe.result)).toContain(t1.id);
    const viaGuard = await deniedWithin(1000, directCall('SELECT 3'));
    expectDenial(viaGuard.result, 'revoked');
    expect(viaGuard.elapsed).toBeLessThanOrEqual(1000);

    // From now on: every descendant is denied and no guard runs anything for them.
    const ranBehindServe = guardRuns(guardLog()).length;
    const ranDirect = guardRuns(directLog()).length;
    await expectDenied(env, subCall('SELECT 4'), 'revoked');
    await expectDenied(env, () => callMeta(as(executor), QUERY, q('SELECT 4'), proved(t1.token, executor.holder.secretKey, QUERY, q('SELECT 4'))), 'revoked');
    expectDenial(await directCall('SELECT 4')(), 'revoked');
    expect(guardRuns(guardLog()).length).toBe(ranBehindServe);
    expect(guardRuns(directLog()).length).toBe(ranDirect);
    // The root itself was not revoked.
    const rootCall = await callMeta(as(planner), QUERY, q('SELECT 5'), proved(root.token, planner.holder.secretKey, QUERY, q('SELECT 5')));
    expect(rootCall.isError ?? false, textOf(rootCall)).toBe(false);
    expect(guardRuns(guardLog()).slice(ranBehindServe)).toEqual(['SELECT 5']);
  });

  it('POST /v1/revocations of the root: every descendant is revoked on the next call', async () => {
    const { root, t1, t2 } = await chain();
    const allowed = await callMeta(as(sub), QUERY, q('SELECT 6'), proved(t2.token, sub.holder.secretKey, QUERY, q('SELECT 6')));
    expect(allowed.isError ?? false, textOf(allowed)).toBe(false);
    expect(guardRuns(guardLog()).at(-1)).toBe('SELECT 6');
    const response = await fetch(`${proxy.http!.origin}/v1/revocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ id: root.id }),
    });
    expect(response.status).toBe(200);
    const ran = guardRuns(guardLog()).length;
    await expectDenied(env, () => callMeta(as(sub), QUERY, q('SELECT 7'), proved(t2.token, sub.holder.secretKey, QUERY, q('SELECT 7'))), 'revoked');
    await expectDenied(env, () => callMeta(as(executor), QUERY, q('SELECT 7'), proved(t1.token, executor.holder.secretKey, QUERY, q('SELECT 7'))), 'revoked');
    await expectDenied(env, () => callMeta(as(planner), QUERY, q('SELECT 7'), proved(root.token, planner.holder.secretKey, QUERY, q('SELECT 7'))), 'revoked');
    expect(guardRuns(guardLog()).length).toBe(ran);
  });
});
