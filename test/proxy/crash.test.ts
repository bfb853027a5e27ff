/**
 * Crash and fault proofs with real processes (issue 13): `kill -9` of `serve` in the
 * middle of a storm of revocations and in the middle of load, a torn last audit line,
 * and a state directory that cannot be written.
 *
 *  - every revocation that was acknowledged (HTTP 200, or `capframe revoke` exit 0) is
 *    in force after the restart;
 *  - every call the upstream saw has its `allow` line in the audit log: the line is
 *    written (handed to the OS) before the call is forwarded;
 *  - a torn last line is reported by `audit verify`, and `serve` starts anyway, keeping
 *    the damaged log as evidence and naming it in the first line of a new chain;
 *  - with an unwritable state directory, `revoke` exits 1 and `serve` refuses to start.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { canonicalJson, sha256Hex } from '../../src/audit/canonical-json.js';
import { generateKeyPair, secretKeyToPem, signingKey } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';
import { CLI, tempDir, type CliResult } from '../helpers.js';
import { createPolicyEnv, exampleServer, type PolicyEnv } from './e2e-helpers.js';
import { call, cliAsync, connectClient, deniedCode, killAllServed, poll, runAsync, startServe, textOf, type Served } from './faults-helpers.js';

const ADMIN_KEY = 'admin-key-for-crash-tests';
const envs: PolicyEnv[] = [];
afterEach(() => killAllServed());
afterAll(() => {
  for (const env of envs) env.remove();
});

function databaseEnv(): PolicyEnv {
  const env = createPolicyEnv(({ callLog }) => ({
    version: '0.2',
    default_policy: 'deny',
    servers: { database: exampleServer('database', callLog) },
    rules: [{ tool: 'database.query', ttl: 3600 }],
  }));
  envs.push(env);
  return env;
}

/** Whole lines of a file (a torn last line is left out). */
function completeLines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '');
}

/** `kill -9` of serve itself (its stdio upstreams see their stdin close and exit). */
async function crash(served: Served): Promise<void> {
  process.kill(served.pid, 'SIGKILL');
  expect((await served.exited).signal).toBe('SIGKILL');
}

async function revokeOverHttp(base: string, token: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/v1/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    await res.text();
    return res.status === 200;
  } catch {
    return false; // the server died mid-request: not acknowledged
  }
}

describe('kill -9 of serve during a storm of revocations', () => {
  it('every acknowledged revocation (HTTP and CLI) is in force after the restart', async () => {
    const env = databaseEnv();
    let served = await startServe(env.policyFile, { env: { CAPFRAME_ADMIN_KEY: ADMIN_KEY } });
    const key = env.issuerKey();
    const tokens = Array.from({ length: 400 }, () => mint({ key, tool: 'database.query', ttl: 3600 }).token);
    const acknowledged: string[] = [];
    // HTTP revocations, 8 at a time, until the server dies under them.
    let next = 0;
    const overHttp = async () => {
      while (next < 300) {
        // HTTP revocations are far quicker than a CLI process: hold them after 100 until
        // the CLI has started a few, so both kinds are still going when the kill comes.
        if (next >= 100 && cliNext < 304) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        const token = tokens[next++]!;
        if (await revokeOverHttp(served.base, token)) acknowledged.push(token);
      }
    };
    // CLI revocations of the other 100, 3 at a time, into the same state directory.
    let cliNext = 300;
    const overCli = async () => {
      while (cliNext < 400 && next < 300) {
        const token = tokens[cliNext++]!;
        const r = await cliAsync(['revoke', '--token', token, '--state-dir', env.stateDir]);
        if (r.code === 0) acknowledged.push(token);
      }
    };
    const storm = Promise.all([...Array.from({ length: 8 }, overHttp), ...Array.from({ length: 3 }, overCli)]);
    // Kill once both kinds were acknowledged, while both are still going.
    await poll(() => (acknowledged.length >= 40 && cliNext >= 304 ? true : undefined), '40 acknowledged revocations, some by the CLI', 90_000);
    await crash(served);
    await storm;
    expect(acknowledged.length).toBeGreaterThanOrEqual(40);

    served = await startServe(env.policyFile);
    const client = await connectClient(served.url);
    try {
      for (const token of acknowledged) {
        expect(deniedCode(await call(client, 'database.query', { sql: 'SELECT 1' }, token))).toBe('revoked');
      }
      // A token nobody revoked still works: the denials above are the revocations, not a broken server.
      const fresh = mint({ key, tool: 'database.query', ttl: 3600 }).token;
      const ok = await call(client, 'database.query', { sql: 'SELECT * FROM customers' }, fresh);
      expect([ok.isError, textOf(ok)]).toEqual([undefined, expect.any(String)]);
      expect(env.calls().filter((c) => c.args.sql === 'SELECT * FROM customers')).toHaveLength(1);
    } finally {
      await client.close();
      await served.stop();
    }
  }, 180_000);
});

describe('kill -9 of serve under load, then a torn audit line', () => {
  const env = databaseEnv();
  const auditLog = join(env.stateDir, 'audit.log');

  it('every call the upstream saw has its allow line in the audit log', async () => {
    const served = await startServe(env.policyFile);
    const token = mint({ key: env.issuerKey(), tool: 'database.query', ttl: 3600 }).token;
    const clients = await Promise.all(Array.from({ length: 4 }, () => connectClient(served.url)));
    let n = 0;
    let stop = false;
    const worker = async (client: (typeof clients)[number]) => {
      while (!stop) {
        const sql = `SELECT ${n++}`;
        try {
          await call(client, 'database.query', { sql }, token);
        } catch {
          return; // the proxy died
        }
      }
    };
    const load = Promise.all(clients.flatMap((c) => [worker(c), worker(c), worker(c), worker(c)]));
    await poll(() => (env.calls().length >= 150 ? true : undefined), '150 forwarded calls', 60_000);
    await crash(served);
    stop = true;
    await load;
    for (const c of clients) await c.close().catch(() => undefined);

    // Let the upstream read what was already in its pipe, then compare.
    await new Promise((r) => setTimeout(r, 500));
    const seen = env.calls().map((c) => sha256Hex(canonicalJson(c.args)));
    const allowed = new Set(
      completeLines(auditLog)
        .map((l) => JSON.parse(l) as { decision: string; args_sha256: string })
        .filter((r) => r.decision === 'allow')
        .map((r) => r.args_sha256),
    );
    expect(seen.length).toBeGreaterThanOrEqual(150);
    expect(seen.filter((h) => !allowed.has(h))).toEqual([]);
  }, 120_000);

  it('a torn last line: audit verify reports it, serve starts anyway on a new chain naming the old log', async () => {
    const before = readFileSync(auditLog, 'utf8');
    const lines = completeLines(auditLog);
    // A crash in the middle of a write leaves part of a line.
    const intact = before.slice(0, before.lastIndexOf('\n') + 1);
    const torn = `${intact}${lines[0]!.slice(0, 57)}`;
    writeFileSync(auditLog, torn);

    const verify = await cliAsync(['audit', 'verify', '--log', auditLog]);
    expect(verify.code).toBe(2);
    expect(verify.stdout + verify.stderr).toMatch(new RegExp(`line ${lines.length + 1}\\b[^]*incomplete`));

    const served = await startServe(env.policyFile);
    const warned = await served.waitForLog((l) => l.msg.includes('torn line'), 'the torn-line warning');
    const kept = join(env.stateDir, String(warned.kept_as).split('/').pop()!);
    expect(readFileSync(kept, 'utf8')).toBe(torn);
    expect(readdirSync(env.stateDir).filter((f) => f.startsWith('audit.log.damaged-'))).toHaveLength(1);
    const last = JSON.parse(lines[lines.length - 1]!) as { seq: number };
    const first = JSON.parse(completeLines(auditLog)[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      seq: 1,
      decision: 'restart',
      code: 'audit_log_damaged',
      previous_log: kept.split('/').pop(),
      previous_seq: last.seq,
      previous_head: sha256Hex(lines[lines.length - 1]!),
    });
    // The new chain records calls and verifies.
    const client = await connectClient(served.url);
    const token = mint({ key: env.issuerKey(), tool: 'database.query', ttl: 3600 }).token;
    const ok = await call(client, 'database.query', { sql: 'SELECT * FROM customers' }, token);
    expect([ok.isError, textOf(ok)]).toEqual([undefined, expect.any(String)]);
    await client.close();
    await served.stop();
    const after = await cliAsync(['audit', 'verify', '--log', auditLog]);
    expect([after.code, after.stdout]).toEqual([0, expect.stringMatching(/OK/)]);
    expect(completeLines(auditLog).map((l) => (JSON.parse(l) as { decision: string }).decision)).toEqual(['restart', 'allow']);
  }, 120_000);
});

/** Root writes anywhere: the unwritable-directory test then drops the capabilities that allow it. */
const asRoot = process.getuid?.() === 0;

/**
 * Runs the CLI so that directory permissions apply to it. As root, it keeps uid 0 (the
 * checkout may be readable by root only, e.g. in a 0700 temp dir) but loses the
 * capabilities that bypass permission bits (setpriv, from util-linux).
 */
function cliUnprivileged(args: string[]): Promise<CliResult> {
  const cli = [process.execPath, CLI, ...args];
  return asRoot ? runAsync('setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--', ...cli]) : runAsync(cli[0]!, cli.slice(1));
}

describe('a state directory that cannot be written', () => {
  it('revoke exits 1 and serve refuses to start, each saying which directory', async () => {
    const dir = tempDir('capframe-readonly-');
    const state = join(dir, 'state');
    const audit = join(dir, 'logs');
    mkdirSync(state);
    mkdirSync(audit);
    const policy = join(dir, 'policy.yaml');
    // The audit log lives elsewhere, so only the state directory is in the way.
    writeFileSync(policy, `capframe:\n  version: "0.2"\n  state_dir: ${JSON.stringify(state)}\n  audit: { path: ${JSON.stringify(join(audit, 'audit.log'))} }\n`);
    // An issuer key, readable, in a directory that is then closed for writing.
    const { secretKey } = generateKeyPair();
    writeFileSync(join(state, 'issuer.key'), secretKeyToPem(secretKey), { mode: 0o600 });
    chmodSync(state, 0o500);
    try {
      const token = mint({ key: signingKey(secretKey), tool: 'x.y', ttl: 60 }).token;
      const revoke = await cliUnprivileged(['revoke', '--token', token, '--policy', policy]);
      expect(revoke.code).toBe(1);
      expect(revoke.stderr).toContain(state);

      const serve = await cliUnprivileged(['serve', '--policy', policy, '--port', '0']);
      expect(serve.code).toBe(1);
      expect(serve.stderr).toMatch(new RegExp(`state directory ${state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\n]*not writable`));
      expect(serve.stderr).not.toMatch(/serving http/);
    } finally {
      chmodSync(state, 0o700);
    }
  }, 60_000);
});
