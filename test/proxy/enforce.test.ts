/**
 * The Enforcer's fail-closed edges, with real parts: a real policy, verifier, store,
 * metrics and a real upstream; the audit log is a real one that has failed (closed).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openAuditLog, type AuditLog } from '../../src/audit/writer.js';
import { parsePolicy } from '../../src/policy/index.js';
import { Enforcer } from '../../src/proxy/enforce.js';
import { createLogger } from '../../src/proxy/log.js';
import { createCapframeMetrics } from '../../src/proxy/metrics.js';
import { RateLimiter } from '../../src/proxy/rate-limit.js';
import { UpstreamPool } from '../../src/proxy/upstreams.js';
import { generateKeyPair } from '../../src/keys/keys.js';
import { openFileStore } from '../../src/store/file-store.js';
import { createMemoryNonceStore, type NonceStore } from '../../src/store/nonces.js';
import { createProof } from '../../src/token/proof.js';
import { mint } from '../../src/token/mint.js';
import { createVerifier } from '../../src/verify/verifier.js';
import { ROOT, tempDir } from '../helpers.js';

const dir = tempDir('capframe-enforce-');
const calls = join(dir, 'calls.log');
const policy = parsePolicy(`capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - { tool: database.query, ttl: 60 }
`);
const store = openFileStore(join(dir, 'state'));
store.ensureIssuerKey();
const logs: string[] = [];
const log = createLogger({ write: (line) => logs.push(line) });
const upstreams = new UpstreamPool(
  { database: { command: process.execPath, args: [join(ROOT, 'examples', 'servers', 'database.js')], env: { CALL_LOG: calls } } },
  { cwd: dir, defaultTimeoutMs: 10_000, log },
);

function enforcer(audit: AuditLog, nonceStore?: NonceStore): Enforcer {
  return new Enforcer({
    policy: () => policy,
    verifier: createVerifier({ keys: store.trustedKeys(), ...(nonceStore !== undefined && { nonceStore }) }),
    issuer: store.issuerKey(),
    store,
    upstreams,
    audit,
    metrics: createCapframeMetrics(),
    limiter: new RateLimiter(),
    log,
  });
}

const upstreamCalls = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean).length : 0);
const token = () => mint({ key: store.issuerKey(), tool: 'database.query', ttl: 60 }).token;
const sql = { sql: 'SELECT name FROM customers WHERE id = 1' };

beforeAll(() => upstreams.start());
afterAll(() => upstreams.close());

describe('Enforcer', () => {
  it('forwards an allowed call and audits it first', async () => {
    const audit = await openAuditLog(join(dir, 'ok.log'));
    const result = await enforcer(audit).callTool({ auth: { kind: 'open' } }, 'database.query', sql, { 'capframe/token': token() });
    expect(result.isError).not.toBe(true);
    expect(upstreamCalls()).toBe(1);
    await audit.close();
    expect(readFileSync(join(dir, 'ok.log'), 'utf8')).toContain('"decision":"allow"');
  });

  it('a call it cannot audit is not made: DENIED internal_error, upstream untouched', async () => {
    const audit = await openAuditLog(join(dir, 'failed.log'));
    await audit.close(); // a failed log: every append now throws
    const before = upstreamCalls();
    const result = await enforcer(audit).callTool({ auth: { kind: 'open' } }, 'database.query', sql, { 'capframe/token': token() });
    expect(result).toMatchObject({ isError: true, _meta: { 'capframe/decision': { allowed: false, code: 'internal_error' } } });
    expect(upstreamCalls()).toBe(before);
    expect(logs.some((l) => l.includes('"msg":"enforcement error"'))).toBe(true);
  });

  it('arguments that are not a JSON object are denied before anything else', async () => {
    const audit = await openAuditLog(join(dir, 'args.log'));
    const before = upstreamCalls();
    for (const args of [['SELECT 1'], 'SELECT 1', 42]) {
      const result = await enforcer(audit).callTool({ auth: { kind: 'open' } }, 'database.query', args, { 'capframe/token': token() });
      expect(result._meta).toMatchObject({ 'capframe/decision': { code: 'constraint_failed', reason: 'tool arguments must be a JSON object' } });
    }
    expect(upstreamCalls()).toBe(before);
    await audit.close();
  });

  it('arguments smuggling a "__proto__" key are refused (an upstream merging them would inherit it)', async () => {
    const audit = await openAuditLog(join(dir, 'proto.log'));
    const before = upstreamCalls();
    const cases: [string, string][] = [
      ['{"sql":"SELECT 1","__proto__":{"force":true}}', 'arguments: a "__proto__" key is not allowed'],
      ['{"sql":"SELECT 1","opts":{"__proto__":{"admin":true}}}', 'arguments.opts: a "__proto__" key is not allowed'],
    ];
    for (const [raw, reason] of cases) {
      const result = await enforcer(audit).callTool({ auth: { kind: 'open' } }, 'database.query', JSON.parse(raw), { 'capframe/token': token() });
      expect(result._meta).toMatchObject({ 'capframe/decision': { code: 'constraint_failed', reason } });
    }
    expect(upstreamCalls()).toBe(before);
    await audit.close();
  });

  it('claims proof nonces through the injected store, awaiting an asynchronous one (the Redis seam); a failing store denies and forwards nothing', async () => {
    const audit = await openAuditLog(join(dir, 'nonces.log'));
    const memory = createMemoryNonceStore();
    let down = false;
    const remote: NonceStore = {
      claim: async (key, ttl) => {
        await new Promise((r) => setTimeout(r, 1));
        if (down) throw new Error('store unreachable');
        return memory.claim(key, ttl);
      },
    };
    const e = enforcer(audit, remote);
    const holder = generateKeyPair();
    const bound = mint({ key: store.issuerKey(), tool: 'database.query', ttl: 60, holderKey: holder.publicKey }).token;
    const meta = () => ({ 'capframe/token': bound, 'capframe/proof': createProof({ token: bound, tool: 'database.query', args: sql, key: holder.secretKey }).proof });
    const before = upstreamCalls();
    const first = meta();
    expect((await e.callTool({ auth: { kind: 'open' } }, 'database.query', sql, first)).isError).not.toBe(true);
    expect(upstreamCalls()).toBe(before + 1);
    expect(await e.callTool({ auth: { kind: 'open' } }, 'database.query', sql, first)).toMatchObject({ _meta: { 'capframe/decision': { code: 'replay' } } });
    down = true;
    const failed = await e.callTool({ auth: { kind: 'open' } }, 'database.query', sql, meta());
    expect(failed).toMatchObject({ isError: true, _meta: { 'capframe/decision': { code: 'internal_error', reason: expect.stringContaining('store unreachable') } } });
    expect(upstreamCalls()).toBe(before + 1);
    await audit.close();
  });
});
