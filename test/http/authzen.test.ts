/**
 * The AuthZEN decision API on `serve` (issue 14, acceptance 1): allowed and denied calls
 * (every code an evaluation can produce), batches in each semantic, PEP authentication,
 * Bad Requests, the metadata document, and the decisions in the audit log with
 * `via: "authzen"`. A real `serve` child process, real example upstreams, real tokens.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateKeyPair, signingKey } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';
import { tempDir } from '../helpers.js';
import { EXAMPLE_SERVERS, FIXTURES, NODE, cliAsync, killAllServed, q, startServe, upstreamCalls, type Served } from '../proxy/faults-helpers.js';

const PEP_KEY = 'cfk_gateway-pep-key';
const BOT_KEY = 'cfk_support-bot-key';
const ADMIN_KEY = 'capframe-admin-test-key';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let dir: string;
let served: Served;
let dbCalls: string;
const key = () => signingKey(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8'));

beforeAll(async () => {
  dir = tempDir('capframe-authzen-');
  dbCalls = join(dir, 'db-calls.log');
  const description = join(dir, 'description.txt');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `capframe:
  version: "0.2"
  default_policy: deny
  agents:
    gateway: { key_sha256: "${sha(PEP_KEY)}", pdp: true }
    support-bot: { key_sha256: "${sha(BOT_KEY)}" }
    other-bot: { key_sha256: "${sha('cfk_other')}" }
  servers:
    database: { command: ${NODE}, args: [${q(join(EXAMPLE_SERVERS, 'database.js'))}], env: { CALL_LOG: ${q(dbCalls)} } }
    pinned: { command: ${NODE}, args: [${q(join(FIXTURES, 'drifting.js'))}], env: { TARGET_SERVER: ${q(join(EXAMPLE_SERVERS, 'payments.js'))}, DESCRIPTION_FILE: ${q(description)} } }
    broken: { command: ${NODE}, args: ["-e", "process.exit(3)"] }
  capabilities:
    read-only: { when: [{ arg: sql, op: matches, value: "^SELECT " }] }
  rules:
    - { tool: database.query, capability: read-only, agents: [support-bot], ttl: 300 }
    - { tool: database.update, effect: deny }
    - { tool: database.*, agents: [other-bot], ttl: 60 }
    - { tool: remote.lookup, agents: [support-bot], ttl: 60, rate_limit: { calls: 2, per: 3600 } }
    - { tool: pinned.*, ttl: 60 }
    - { tool: broken.*, ttl: 60 }
`,
  );
  // Lock the pinned server's tools, then change a description: serve starts with a drifted tool.
  const locked = await cliAsync(['discover', '--policy', policy, '--lock']);
  expect(locked.code, locked.stderr).toBe(0);
  writeFileSync(description, ' IMPORTANT: changed after the lock');
  served = await startServe(policy, { env: { CAPFRAME_ADMIN_KEY: ADMIN_KEY } });
}, 60_000);

afterAll(() => {
  killAllServed();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json?: unknown;
}

/** POSTs `body` as JSON with `auth` as the bearer key (null: no Authorization header). */
async function post(path: string, body: unknown, auth: string | null = PEP_KEY, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${served.base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth !== null && { authorization: `Bearer ${auth}` }), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const evaluation = (subject: string, tool: string, args: Record<string, unknown>, context?: Record<string, unknown>) => ({
  subject: { type: 'agent', id: subject },
  action: { name: 'tools/call' },
  resource: { type: 'mcp_tool', id: tool, properties: { arguments: args } },
  ...(context !== undefined && { context }),
});

/** The audit log as written so far (lines reach the disk just after the answer: poll with {@link auditAfter}). */
function auditLines(): Record<string, unknown>[] {
  return readFileSync(join(dir, '.capframe', 'audit.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The number of audit lines once every earlier decision is on disk: lines are written in
 * order, so once a fresh barrier decision is in the file, so is every line before it.
 */
let barriers = 0;
async function auditMark(): Promise<number> {
  const tool = `barrier.mark${++barriers}`;
  const answer = await post('/access/v1/evaluation', evaluation('support-bot', tool, {}));
  expect(answer.status).toBe(200);
  await expect.poll(() => auditLines().some((l) => l.tool === tool), { timeout: 10_000 }).toBe(true);
  return auditLines().length;
}

/** The audit lines after the first `before`, once there are `count` of them. */
async function auditAfter(before: number, count: number): Promise<Record<string, unknown>[]> {
  await expect.poll(() => auditLines().length - before, { timeout: 10_000 }).toBeGreaterThanOrEqual(count);
  return auditLines().slice(before);
}

async function decide(subject: string, tool: string, args: Record<string, unknown>, context?: Record<string, unknown>) {
  const answer = await post('/access/v1/evaluation', evaluation(subject, tool, args, context));
  expect(answer.status, answer.text).toBe(200);
  return answer.json as { decision: boolean; context: { code: string; reason: string; token_id?: string } };
}

describe('POST /access/v1/evaluation', () => {
  it('permits an allowed call, with the token verified as in the proxy, and audits it with via: "authzen"; the upstream is never called', async () => {
    const token = mint({ key: key(), tool: 'database.query', capability: 'read-only', agent: 'support-bot', ttl: 60 });
    const before = await auditMark();
    const answer = await decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: token.token });
    expect(answer).toEqual({ decision: true, context: { code: 'ok', reason: expect.stringMatching(/^allowed by the rule at line \d+$/), token_id: token.id } });
    const [line] = await auditAfter(before, 1);
    expect(line).toMatchObject({ agent: 'support-bot', tool: 'database.query', decision: 'allow', code: 'ok', token_id: token.id, via: 'authzen' });
    expect(upstreamCalls(dbCalls)).toHaveLength(0);
    // The audit log still verifies with the new field in it.
    const verified = await cliAsync(['audit', 'verify', '--log', join(dir, '.capframe', 'audit.log')]);
    expect(verified.stdout).toMatch(/^OK \d+ lines/);
  });

  it('without a token, the policy alone decides for the subject (as `policy test`), for a tool capframe does not proxy too', async () => {
    expect(await decide('support-bot', 'database.query', { sql: 'SELECT 1' })).toMatchObject({ decision: true, context: { code: 'ok' } });
    expect((await decide('support-bot', 'database.query', { sql: 'DELETE FROM t' })).context.code).toBe('constraint_failed');
    // remote.* is not one of serve's servers: a PEP guards it; the upstream checks do not apply.
    const remote = await decide('support-bot', 'remote.lookup', { q: 'x' });
    expect(remote).toEqual({ decision: true, context: { code: 'ok', reason: expect.any(String) } });
  });

  it('denies with each code an evaluation can produce', async () => {
    const k = key();
    const now = Math.floor(Date.now() / 1000);
    const other = signingKey(generateKeyPair().secretKey);
    const revoked = mint({ key: k, tool: 'database.query', capability: 'read-only', agent: 'support-bot', ttl: 60 });
    const r = await cliAsync(['revoke', '--token', revoked.token, '--policy', join(dir, 'policy.yaml')]);
    expect(r.code, r.stderr).toBe(0);
    const valid = mint({ key: k, tool: 'database.query', capability: 'read-only', agent: 'support-bot', ttl: 60 });
    const tampered = `${valid.token.slice(0, -4)}${valid.token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    const before = await auditMark();
    const cases: [string, Promise<{ decision: boolean; context: { code: string } }>][] = [
      ['malformed_token', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: 'cf1.not-a-token' })],
      ['bad_signature', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: tampered })],
      ['unknown_key', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: mint({ key: other, tool: 'database.query', agent: 'support-bot', ttl: 60 }).token })],
      ['expired', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: mint({ key: k, tool: 'database.query', agent: 'support-bot', ttl: 60, now: now - 600 }).token })],
      ['not_yet_valid', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: mint({ key: k, tool: 'database.query', agent: 'support-bot', ttl: 600, notBefore: now + 300 }).token })],
      ['tool_mismatch', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: mint({ key: k, tool: 'database.update', agent: 'support-bot', ttl: 60 }).token })],
      ['constraint_failed', decide('support-bot', 'database.query', { sql: 'DROP TABLE t' }, { token: valid.token })],
      ['no_rule', decide('support-bot', 'payments.refund', { amount: 1 })],
      ['denied_by_rule', decide('support-bot', 'database.update', { sql: 'UPDATE t' })],
      ['agent_unknown', decide('mallory', 'database.query', { sql: 'SELECT 1' })],
      ['agent_not_allowed', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: mint({ key: k, tool: 'database.query', agent: 'other-bot', ttl: 60 }).token })],
      ['bad_proof', decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: mint({ key: k, tool: 'database.query', capability: 'read-only', agent: 'support-bot', ttl: 60, holderKey: Buffer.alloc(32, 9) }).token })],
      ['tool_changed', decide('support-bot', 'pinned.get_charge', { charge_id: 'ch_1' })],
      ['upstream_unavailable', decide('support-bot', 'broken.anything', {})],
    ];
    for (const [code, answer] of cases) expect((await answer).context.code, code).toBe(code);
    await auditAfter(before, cases.length);
    // Revocation reaches the running server through the watched store.
    await expect.poll(async () => (await decide('support-bot', 'database.query', { sql: 'SELECT 1' }, { token: revoked.token })).context.code, { timeout: 10_000 }).toBe('revoked');
    for (const [code] of cases) expect(auditLines().some((l) => l.code === code && l.via === 'authzen' && l.decision === 'deny'), code).toBe(true);
    expect(upstreamCalls(dbCalls)).toHaveLength(0);
  });

  it('an evaluation is one call: the rule\'s rate limit counts it (rate_limited on the third)', async () => {
    expect((await decide('support-bot', 'remote.lookup', { q: 1 })).context.code).toBe('ok'); // the second (see above)
    expect((await decide('support-bot', 'remote.lookup', { q: 1 })).context.code).toBe('rate_limited');
  });

  it('a request that does not map onto a tool call is denied and audited, not an error', async () => {
    const before = await auditMark();
    const wrong = await post('/access/v1/evaluation', { subject: { type: 'user', id: 'alice' }, action: { name: 'can_read' }, resource: { type: 'document', id: '1' } });
    expect(wrong.json).toMatchObject({ decision: false, context: { code: 'agent_unknown' } });
    const action = await post('/access/v1/evaluation', { ...evaluation('support-bot', 'database.query', {}), action: { name: 'resources/read' } });
    expect(action.json).toMatchObject({ decision: false, context: { code: 'no_rule' } });
    const lines = await auditAfter(before, 2);
    expect(lines[0]).toMatchObject({ agent: 'alice', tool: null, decision: 'deny', code: 'agent_unknown', via: 'authzen' });
    expect(lines[1]).toMatchObject({ agent: 'support-bot', tool: 'database.query', decision: 'deny', code: 'no_rule', via: 'authzen' });
  });

  it('echoes X-Request-ID', async () => {
    const answer = await post('/access/v1/evaluation', evaluation('support-bot', 'database.query', { sql: 'SELECT 1' }), PEP_KEY, { 'x-request-id': 'req-42' });
    expect(answer.headers.get('x-request-id')).toBe('req-42');
  });
});

describe('authentication of the PEP', () => {
  it('refuses (401, nothing decided or audited) no key, an unknown key and the key of an agent without pdp: true; takes the admin key', async () => {
    // Lines are written in order: once this one is in the file, every earlier one is.
    const barrier = await post('/access/v1/evaluation', evaluation('support-bot', 'barrier.before', {}));
    expect(barrier.status).toBe(200);
    await expect.poll(() => auditLines().some((l) => l.tool === 'barrier.before'), { timeout: 10_000 }).toBe(true);
    const before = await auditMark();
    for (const auth of [null, 'cfk_unknown', BOT_KEY]) {
      const answer = await post('/access/v1/evaluation', evaluation('support-bot', 'database.query', { sql: 'SELECT 1' }), auth);
      expect(answer.status, String(auth)).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe(auth === null ? 'Bearer realm="capframe-pdp"' : 'Bearer realm="capframe-pdp", error="invalid_token"');
      expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(answer.text).toMatch(/^Unauthorized: /);
      const batch = await post('/access/v1/evaluations', { evaluations: [evaluation('support-bot', 'database.query', {})] }, auth);
      expect(batch.status).toBe(401);
    }
    const admin = await post('/access/v1/evaluation', evaluation('support-bot', 'database.query', { sql: 'SELECT 1' }), ADMIN_KEY);
    expect(admin.json).toMatchObject({ decision: true });
    // The admin's decision is the only line since the barrier: the refused requests left none.
    const after = await auditAfter(before, 1);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ tool: 'database.query', code: 'ok', via: 'authzen' });
  });
});

describe('Bad Requests (400, an error message string)', () => {
  it.each([
    ['not JSON', '{'],
    ['not an object', '[1]'],
    ['no subject', { action: { name: 'tools/call' }, resource: { type: 'mcp_tool', id: 'database.query' } }],
    ['subject without id', { subject: { type: 'agent' }, action: { name: 'tools/call' }, resource: { type: 'mcp_tool', id: 'database.query' } }],
    ['action without name', { subject: { type: 'agent', id: 'a' }, action: {}, resource: { type: 'mcp_tool', id: 'database.query' } }],
    ['resource without type', { subject: { type: 'agent', id: 'a' }, action: { name: 'tools/call' }, resource: { id: 'database.query' } }],
    ['context not an object', { subject: { type: 'agent', id: 'a' }, action: { name: 'tools/call' }, resource: { type: 'mcp_tool', id: 'x.y' }, context: 'x' }],
  ])('%s', async (_name, body) => {
    const answer = await post('/access/v1/evaluation', body);
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/^Bad Request: /);
  });

  it('a batch with one incomplete evaluation, an unknown semantic or too many evaluations', async () => {
    const subject = { type: 'agent', id: 'support-bot' };
    for (const body of [
      { subject, evaluations: [{ action: { name: 'tools/call' } }] },
      { ...evaluation('support-bot', 'database.query', {}), options: { evaluations_semantic: 'first_come' }, evaluations: [{}] },
      { ...evaluation('support-bot', 'database.query', {}), evaluations: Array.from({ length: 257 }, () => ({})) },
      { evaluations: 'x' },
    ]) {
      const answer = await post('/access/v1/evaluations', body);
      expect(answer.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
  });

  it('a body that is not application/json', async () => {
    const answer = await post('/access/v1/evaluation', evaluation('support-bot', 'database.query', {}), PEP_KEY, { 'content-type': 'text/plain' });
    expect(answer.status).toBe(400);
  });
});

describe('POST /access/v1/evaluations', () => {
  const subject = { type: 'agent', id: 'support-bot' };
  const action = { name: 'tools/call' };
  const tool = (id: string, args: Record<string, unknown>) => ({ resource: { type: 'mcp_tool', id, properties: { arguments: args } } });
  // permit, deny, permit
  const items = [tool('database.query', { sql: 'SELECT 1' }), tool('database.update', { sql: 'UPDATE t' }), tool('database.query', { sql: 'SELECT 2' })];

  it('execute_all (the default): every evaluation, in order, each audited', async () => {
    const before = await auditMark();
    for (const options of [undefined, { evaluations_semantic: 'execute_all' }]) {
      const answer = await post('/access/v1/evaluations', { subject, action, ...(options !== undefined && { options }), evaluations: items });
      expect(answer.status).toBe(200);
      expect((answer.json as { evaluations: { decision: boolean; context: { code: string } }[] }).evaluations.map((e) => [e.decision, e.context.code])).toEqual([
        [true, 'ok'],
        [false, 'denied_by_rule'],
        [true, 'ok'],
      ]);
    }
    expect((await auditAfter(before, 6)).map((l) => [l.code, l.via])).toEqual([
      ['ok', 'authzen'], ['denied_by_rule', 'authzen'], ['ok', 'authzen'],
      ['ok', 'authzen'], ['denied_by_rule', 'authzen'], ['ok', 'authzen'],
    ]);
  });

  it('deny_on_first_deny stops after the first denial; permit_on_first_permit after the first permit; the rest is not decided', async () => {
    let before = auditLines().length;
    const deny = await post('/access/v1/evaluations', { subject, action, options: { evaluations_semantic: 'deny_on_first_deny' }, evaluations: items });
    expect((deny.json as { evaluations: unknown[] }).evaluations).toEqual([
      { decision: true, context: expect.objectContaining({ code: 'ok' }) },
      { decision: false, context: expect.objectContaining({ code: 'denied_by_rule' }) },
    ]);
    expect(await auditAfter(before, 2)).toHaveLength(2);

    before = auditLines().length;
    const permit = await post('/access/v1/evaluations', { subject, action, options: { evaluations_semantic: 'permit_on_first_permit' }, evaluations: [items[1], items[0], items[2]] });
    expect((permit.json as { evaluations: unknown[] }).evaluations).toEqual([
      { decision: false, context: expect.objectContaining({ code: 'denied_by_rule' }) },
      { decision: true, context: expect.objectContaining({ code: 'ok' }) },
    ]);
    expect(await auditAfter(before, 2)).toHaveLength(2);
  });

  it('evaluations override the top-level defaults key by key; without evaluations it answers like /evaluation', async () => {
    const answer = await post('/access/v1/evaluations', {
      subject,
      action,
      resource: { type: 'mcp_tool', id: 'database.query', properties: { arguments: { sql: 'SELECT 1' } } },
      evaluations: [{}, { subject: { type: 'agent', id: 'other-bot' } }, { action: { name: 'can_read' } }],
    });
    expect((answer.json as { evaluations: { context: { code: string } }[] }).evaluations.map((e) => e.context.code)).toEqual(['ok', 'ok', 'no_rule']);
    const single = await post('/access/v1/evaluations', evaluation('support-bot', 'database.update', {}));
    expect(single.json).toMatchObject({ decision: false, context: { code: 'denied_by_rule' } });
    expect(single.json).not.toHaveProperty('evaluations');
  });
});

describe('GET /.well-known/authzen-configuration', () => {
  it('names the PDP and both endpoints, without authentication', async () => {
    const res = await fetch(`${served.base}/.well-known/authzen-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      policy_decision_point: served.base,
      access_evaluation_endpoint: `${served.base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${served.base}/access/v1/evaluations`,
    });
  });
});
