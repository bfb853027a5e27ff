/**
 * capframeGuard with real SDK parts: McpServer and the low-level Server, guarded,
 * talking to a real SDK Client over InMemoryTransport and, through a spawned
 * guarded server built from dist/, over stdio. Every denial is checked to leave the
 * tool's own call counter unchanged.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import { capframeGuard, createProof, createVerifier, delegate, generateKeyPair, mint, type GuardOptions, type Verifier } from '../src/index.js';
import { DECISION_META_KEY, denial, PROOF_META_KEY, TOKEN_META_KEY } from '../src/mcp/meta.js';
import type { Decision } from '../src/verify/decision.js';
import { cli, ROOT, tempDir } from './helpers.js';

const issuer = generateKeyPair();
const stranger = generateKeyPair();
const READ_ONLY = [{ arg: 'sql', op: 'matches', value: '^\\s*SELECT\\b' }];
const now = () => Math.floor(Date.now() / 1000);

const tokens = {
  valid: () => mint({ key: issuer.secretKey, tool: 'database.query', agent: 'support-bot', ttl: 300, when: READ_ONLY }),
  expired: () => mint({ key: issuer.secretKey, tool: 'database.query', ttl: 60, now: now() - 3600 }),
  wrongTool: () => mint({ key: issuer.secretKey, tool: 'database.update', ttl: 300 }),
  otherIssuer: () => mint({ key: stranger.secretKey, tool: 'database.query', ttl: 300 }),
  holderBound: () => mint({ key: issuer.secretKey, tool: 'database.query', ttl: 300, holderKey: generateKeyPair().publicKey }),
};

/** A guarded server whose `query` tool counts the times it really ran. */
interface Guarded {
  server: McpServer | Server;
  calls: () => number;
}

function mcpServer(options: GuardOptions, registerFirst: boolean): Guarded {
  let calls = 0;
  const server = new McpServer({ name: 'database', version: '1.0.0' });
  const register = () =>
    server.registerTool('query', { inputSchema: { sql: z.string() } }, async ({ sql }) => {
      calls += 1;
      return { content: [{ type: 'text', text: `ran ${sql}` }] };
    });
  if (registerFirst) register();
  capframeGuard(server, options);
  if (!registerFirst) register();
  return { server, calls: () => calls };
}

function lowLevelServer(options: GuardOptions, registerFirst: boolean): Guarded {
  let calls = 0;
  const server = new Server({ name: 'database', version: '1.0.0' }, { capabilities: { tools: {} } });
  const register = () => {
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [{ name: 'query', inputSchema: { type: 'object', properties: { sql: { type: 'string' } } } }],
    }));
    server.setRequestHandler(CallToolRequestSchema, (request) => {
      calls += 1;
      return { content: [{ type: 'text', text: `ran ${String(request.params.arguments?.sql)}` }] };
    });
  };
  if (registerFirst) register();
  capframeGuard(server, options);
  if (!registerFirst) register();
  return { server, calls: () => calls };
}

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function connect(server: McpServer | Server): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'test', version: '1.0.0' });
  await client.connect(clientSide);
  clients.push(client);
  return client;
}

async function call(client: Client, sql: string, token?: unknown, name = 'query'): Promise<CallToolResult> {
  return (await client.callTool({
    name,
    arguments: { sql },
    ...(token !== undefined && { _meta: { [TOKEN_META_KEY]: token } }),
  })) as CallToolResult;
}

/** The result is exactly the proxy's denial for `code`, and the tool did not run. */
function expectDenied(result: CallToolResult, code: string): void {
  const decision = (result._meta as Record<string, { code: string; reason: string }> | undefined)?.[DECISION_META_KEY];
  expect(decision?.code, JSON.stringify(result)).toBe(code);
  expect(result).toEqual(denial(decision!.code as Decision['code'], decision!.reason));
  expect((result.content[0] as { text: string }).text).toMatch(new RegExp(`^DENIED ${code}: .+`));
}

const variants = [
  ['McpServer, tool registered before the guard', (o: GuardOptions) => mcpServer(o, true)],
  ['McpServer, tool registered after the guard', (o: GuardOptions) => mcpServer(o, false)],
  ['low-level Server, handler set before the guard', (o: GuardOptions) => lowLevelServer(o, true)],
  ['low-level Server, handler set after the guard', (o: GuardOptions) => lowLevelServer(o, false)],
] as const;

describe.each(variants)('capframeGuard on %s', (_label, build) => {
  let verifier: Verifier;
  let decisions: Array<Decision & { tool: string }>;
  let guarded: Guarded;
  let client: Client;

  async function setUp(): Promise<void> {
    verifier = createVerifier({ keys: [issuer.publicKey] });
    decisions = [];
    guarded = build({ verifier, prefix: 'database.', onDecision: (d) => decisions.push(d) });
    client = await connect(guarded.server);
  }

  it('runs the tool for a valid token and returns its real result', async () => {
    await setUp();
    const result = await call(client, 'SELECT 1', tokens.valid().token);
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: 'ran SELECT 1' }]);
    expect(guarded.calls()).toBe(1);
    expect(decisions.map((d) => [d.allowed, d.code, d.tool])).toEqual([[true, 'ok', 'database.query']]);
  });

  it('denies every bad presentation without running the tool', async () => {
    await setUp();
    const revoked = tokens.valid();
    verifier.revoke(revoked.id);
    const cases: Array<[string, string, unknown]> = [
      ['missing_token', 'SELECT 1', undefined],
      ['missing_token', 'SELECT 1', ''],
      ['expired', 'SELECT 1', tokens.expired().token],
      ['revoked', 'SELECT 1', revoked.token],
      ['tool_mismatch', 'SELECT 1', tokens.wrongTool().token],
      ['unknown_key', 'SELECT 1', tokens.otherIssuer().token],
      ['constraint_failed', 'DELETE FROM users', tokens.valid().token],
      ['malformed_token', 'SELECT 1', 'cf1.not-a-token'],
      ['malformed_token', 'SELECT 1', 42],
      ['bad_proof', 'SELECT 1', tokens.holderBound().token],
    ];
    for (const [code, sql, token] of cases) expectDenied(await call(client, sql, token), code);
    expect(guarded.calls()).toBe(0);
    expect(decisions.map((d) => d.code)).toEqual(cases.map(([code]) => code));
    expect(decisions.every((d) => !d.allowed && d.tool === 'database.query')).toBe(true);
  });

  it('denies a token revoked through the verifier while the server runs', async () => {
    await setUp();
    const minted = tokens.valid();
    expect((await call(client, 'SELECT 1', minted.token)).isError).toBeFalsy();
    verifier.revoke(minted.id);
    expectDenied(await call(client, 'SELECT 2', minted.token), 'revoked');
    expect(guarded.calls()).toBe(1);
  });
});

describe('capframeGuard options', () => {
  it('takes keys and revoked ids directly', async () => {
    const revoked = tokens.valid();
    const { server, calls } = mcpServer({ keys: [Buffer.from(issuer.publicKey).toString('hex')], revoked: [revoked.id], prefix: 'database.' }, false);
    const client = await connect(server);
    expectDenied(await call(client, 'SELECT 1', revoked.token), 'revoked');
    expect((await call(client, 'SELECT 1', tokens.valid().token)).content).toEqual([{ type: 'text', text: 'ran SELECT 1' }]);
    expect(calls()).toBe(1);
  });

  it('matches the bare tool name when no prefix is given', async () => {
    const { server, calls } = mcpServer({ keys: [issuer.publicKey] }, true);
    const client = await connect(server);
    expectDenied(await call(client, 'SELECT 1', tokens.valid().token), 'tool_mismatch');
    const bare = mint({ key: issuer.secretKey, tool: 'query', ttl: 60 });
    expect((await call(client, 'SELECT 1', bare.token)).isError).toBeFalsy();
    expect(calls()).toBe(1);
  });

  it('denies with internal_error when onDecision throws, and does not run the tool', async () => {
    const { server, calls } = mcpServer(
      {
        keys: [issuer.publicKey],
        prefix: 'database.',
        onDecision: () => {
          throw new Error('audit sink is down');
        },
      },
      false,
    );
    const client = await connect(server);
    expectDenied(await call(client, 'SELECT 1', tokens.valid().token), 'internal_error');
    expect(calls()).toBe(0);
  });

  it('guards a fallbackRequestHandler that answers tools/call', async () => {
    let calls = 0;
    const server = new Server({ name: 'database', version: '1.0.0' }, { capabilities: { tools: {} } });
    capframeGuard(server, { keys: [issuer.publicKey], prefix: 'database.' });
    server.fallbackRequestHandler = async (request) => {
      if (request.method !== 'tools/call') throw new Error(`unexpected ${request.method}`);
      calls += 1;
      return { content: [{ type: 'text', text: 'ran' }] };
    };
    const client = await connect(server);
    expectDenied(await call(client, 'SELECT 1'), 'missing_token');
    expect(calls).toBe(0);
    expect((await call(client, 'SELECT 1', tokens.valid().token)).content).toEqual([{ type: 'text', text: 'ran' }]);
    expect(calls).toBe(1);
  });

  it('refuses bad options and a second guard on the same server', () => {
    const server = new McpServer({ name: 'x', version: '1.0.0' });
    expect(() => capframeGuard(server, { keys: [] })).toThrow(/at least one trusted public key/);
    expect(() => capframeGuard(server, {} as GuardOptions)).toThrow(/options.keys/);
    expect(() => capframeGuard(server, { keys: ['not a key'] })).toThrow(/32 bytes/);
    const verifier = createVerifier({ keys: [issuer.publicKey] });
    expect(() => capframeGuard(server, { verifier, keys: [issuer.publicKey] })).toThrow(/not both/);
    expect(() => capframeGuard({} as McpServer, { keys: [issuer.publicKey] })).toThrow(/McpServer or Server/);
    capframeGuard(server, { verifier });
    expect(() => capframeGuard(server, { verifier })).toThrow(/already guarded/);
  });

  it('rejects a tools/call without a tool name as invalid params, without running anything', async () => {
    const { server, calls } = lowLevelServer({ keys: [issuer.publicKey] }, true);
    const client = await connect(server);
    await expect(client.request({ method: 'tools/call', params: { arguments: {} } } as never, CallToolRequestSchema as never)).rejects.toThrow(
      /Invalid tools\/call request/,
    );
    expect(calls()).toBe(0);
  });
});

describe('capframeGuard over stdio (spawned server built from dist/)', () => {
  const fixture = join(ROOT, 'test', 'fixtures', 'guarded-server.js');
  const callLog = join(tempDir('capframe-guard-'), 'calls.jsonl');
  const revoked = tokens.valid();
  let client: Client;
  const ran = () => (existsSync(callLog) ? readFileSync(callLog, 'utf8').split('\n').filter(Boolean).length : 0);

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'guard.js'))) throw new Error('dist/guard.js is missing: run `npm run build:ts` first');
    writeFileSync(callLog, '');
    client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [fixture],
        env: {
          ...(process.env as Record<string, string>),
          GUARD_KEYS: Buffer.from(issuer.publicKey).toString('hex'),
          GUARD_REVOKED: revoked.id,
          GUARD_PREFIX: 'database.',
          CALL_LOG: callLog,
        },
        stderr: 'inherit',
      }),
    );
  });

  afterAll(async () => {
    await client?.close();
  });

  it('lists the tool and runs it for a valid token', async () => {
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['query']);
    const result = await call(client, 'SELECT 1', tokens.valid().token);
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: 'ran SELECT 1 (call 1)' }]);
    expect(ran()).toBe(1);
  });

  it('denies missing, expired, revoked, wrong-tool, foreign and constraint-breaking tokens; the tool never runs', async () => {
    const before = ran();
    expectDenied(await call(client, 'SELECT 1'), 'missing_token');
    expectDenied(await call(client, 'SELECT 1', tokens.expired().token), 'expired');
    expectDenied(await call(client, 'SELECT 1', revoked.token), 'revoked');
    expectDenied(await call(client, 'SELECT 1', tokens.wrongTool().token), 'tool_mismatch');
    expectDenied(await call(client, 'SELECT 1', tokens.otherIssuer().token), 'unknown_key');
    expectDenied(await call(client, 'DROP TABLE users', tokens.valid().token), 'constraint_failed');
    expect(ran()).toBe(before);
  });
});

describe('capframeGuard with holder-bound and delegated tokens', () => {
  const planner = generateKeyPair();
  const executor = generateKeyPair();
  const sub = generateKeyPair();
  const TOOL = 'database.query';
  const root = () => mint({ key: issuer.secretKey, tool: 'database.*', ttl: 300, holderKey: planner.publicKey, when: READ_ONLY });
  const withProof = (token: string, key: Uint8Array, sql: string, more: Partial<Parameters<typeof createProof>[0]> = {}) => ({
    [TOKEN_META_KEY]: token,
    [PROOF_META_KEY]: createProof({ token, tool: TOOL, args: { sql }, key, ...more }).proof,
  });
  async function callMeta(client: Client, sql: string, meta: Record<string, unknown>): Promise<CallToolResult> {
    return (await client.callTool({ name: 'query', arguments: { sql }, _meta: meta })) as CallToolResult;
  }

  it('runs a call with a proof by the holder once; every stolen-token attack is denied and never runs', async () => {
    const { server, calls } = mcpServer({ keys: [issuer.publicKey], prefix: 'database.' }, false);
    const client = await connect(server);
    const t = root();
    const good = withProof(t.token, planner.secretKey, 'SELECT 1');
    expect((await callMeta(client, 'SELECT 1', good)).content).toEqual([{ type: 'text', text: 'ran SELECT 1' }]);
    expect(calls()).toBe(1);
    expectDenied(await callMeta(client, 'SELECT 1', good), 'replay');
    expectDenied(await callMeta(client, 'SELECT 1', { [TOKEN_META_KEY]: t.token }), 'bad_proof');
    expectDenied(await callMeta(client, 'SELECT 1', { [TOKEN_META_KEY]: t.token, [PROOF_META_KEY]: createProof({ token: mint({ key: issuer.secretKey, tool: 'database.*', ttl: 60, holderKey: sub.publicKey }).token, tool: TOOL, args: { sql: 'SELECT 1' }, key: sub.secretKey }).proof }), 'bad_proof');
    expectDenied(await callMeta(client, 'SELECT 2', withProof(t.token, planner.secretKey, 'SELECT 1')), 'bad_proof');
    expectDenied(await callMeta(client, 'SELECT 1', withProof(t.token, planner.secretKey, 'SELECT 1', { now: Date.now() - 61_000 })), 'bad_proof');
    expectDenied(await callMeta(client, 'SELECT 1', { [TOKEN_META_KEY]: t.token, [PROOF_META_KEY]: 42 }), 'bad_proof');
    expect(calls()).toBe(1);
  });

  it('verifies a delegated chain with every link\'s constraints, and refuses invalid delegations', async () => {
    const verifier = createVerifier({ keys: [issuer.publicKey] });
    const { server, calls } = mcpServer({ verifier, prefix: 'database.' }, false);
    const client = await connect(server);
    const t0 = root();
    const t1 = delegate(t0.token, { key: planner.secretKey, tools: TOOL, when: [{ arg: 'sql', op: 'max_length', value: 20 }], to: executor.publicKey });
    const t2 = delegate(t1.token, { key: executor.secretKey, tools: TOOL, when: [{ arg: 'sql', op: 'not_matches', value: 'secret' }], to: sub.publicKey });
    expect((await callMeta(client, 'SELECT 1', withProof(t2.token, sub.secretKey, 'SELECT 1'))).isError).toBeFalsy();
    expectDenied(await callMeta(client, 'SELECT secret', withProof(t2.token, sub.secretKey, 'SELECT secret')), 'constraint_failed');
    expectDenied(await callMeta(client, 'SELECT * FROM a_very_long_table', withProof(t2.token, sub.secretKey, 'SELECT * FROM a_very_long_table')), 'constraint_failed');
    expectDenied(await callMeta(client, 'DELETE FROM x', withProof(t2.token, sub.secretKey, 'DELETE FROM x')), 'constraint_failed');
    // A child the planner signs by hand (delegate() would refuse both): outliving its parent, and naming other tools.
    const hex = Buffer.from(planner.kid).toString('hex');
    const outliving = mint({ key: planner.secretKey, issuer: hex, tool: TOOL, ttl: 10_000, holderKey: executor.publicKey, parent: t0.bytes });
    const wider = mint({ key: planner.secretKey, issuer: hex, tool: '*', ttl: 60, holderKey: executor.publicKey, parent: t0.bytes });
    expectDenied(await callMeta(client, 'SELECT 1', withProof(outliving.token, executor.secretKey, 'SELECT 1')), 'delegation_invalid');
    expectDenied(await callMeta(client, 'SELECT 1', withProof(wider.token, executor.secretKey, 'SELECT 1')), 'delegation_invalid');
    expect(calls()).toBe(1);
    // Acceptance 3, guard half: revoking the parent through the verifier denies the cached grandchild at once.
    verifier.revoke(t1.id);
    expectDenied(await callMeta(client, 'SELECT 1', withProof(t2.token, sub.secretKey, 'SELECT 1')), 'revoked');
    expect((await callMeta(client, 'SELECT 1', withProof(t0.token, planner.secretKey, 'SELECT 1'))).isError).toBeFalsy();
    expect(calls()).toBe(2);
  });

  it('with an audience, proofs must name it', async () => {
    const { server, calls } = mcpServer({ keys: [issuer.publicKey], prefix: 'database.', audience: 'db-1' }, false);
    const client = await connect(server);
    const t = root();
    expectDenied(await callMeta(client, 'SELECT 1', withProof(t.token, planner.secretKey, 'SELECT 1')), 'bad_proof');
    expectDenied(await callMeta(client, 'SELECT 1', withProof(t.token, planner.secretKey, 'SELECT 1', { audience: 'db-2' })), 'bad_proof');
    expect((await callMeta(client, 'SELECT 1', withProof(t.token, planner.secretKey, 'SELECT 1', { audience: 'db-1' }))).isError).toBeFalsy();
    expect(calls()).toBe(1);
  });
});

describe('acceptance 3, guard half: a guarded server sharing the state directory sees a revoked parent', () => {
  const fixture = join(ROOT, 'test', 'fixtures', 'guarded-server.js');
  const planner = generateKeyPair();
  const executor = generateKeyPair();
  const sub = generateKeyPair();

  async function spawnGuard(stateDir: string, callLog: string): Promise<Client> {
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [fixture],
        env: { ...(process.env as Record<string, string>), GUARD_STATE_DIR: stateDir, GUARD_PREFIX: 'database.', CALL_LOG: callLog },
        stderr: 'inherit',
      }),
    );
    clients.push(client);
    return client;
  }

  it('every descendant of a parent revoked with `capframe revoke` is denied, and the tool never runs', async () => {
    const dir = tempDir('capframe-guard-state-');
    const policy = join(dir, 'policy.yaml');
    expect(cli(['init', '--policy', policy]).code).toBe(0);
    const stateDir = join(dir, '.capframe');
    const callLog = join(dir, 'calls.jsonl');
    writeFileSync(callLog, '');
    const ran = () => readFileSync(callLog, 'utf8').split('\n').filter(Boolean).length;
    const minted = cli(['mint', '--policy', policy, '--tool', 'database.query', '--holder', Buffer.from(planner.publicKey).toString('hex'), '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const t0 = (JSON.parse(minted.stdout) as { token: string }).token;
    const t1 = delegate(t0, { key: planner.secretKey, tools: 'database.query', to: executor.publicKey });
    const t2 = delegate(t1.token, { key: executor.secretKey, tools: 'database.query', to: sub.publicKey });
    const proofFor = (token: string, key: Uint8Array, sql: string) => ({
      [TOKEN_META_KEY]: token,
      [PROOF_META_KEY]: createProof({ token, tool: 'database.query', args: { sql }, key }).proof,
    });
    const callMeta = async (client: Client, sql: string, meta: Record<string, unknown>) =>
      (await client.callTool({ name: 'query', arguments: { sql }, _meta: meta })) as CallToolResult;

    const before = await spawnGuard(stateDir, callLog);
    expect((await callMeta(before, 'SELECT 1', proofFor(t2.token, sub.secretKey, 'SELECT 1'))).isError).toBeFalsy();
    expect(ran()).toBe(1);

    expect(cli(['revoke', '--policy', policy, '--token', t1.token]).code).toBe(0);
    const after = await spawnGuard(stateDir, callLog);
    expectDenied(await callMeta(after, 'SELECT 1', proofFor(t2.token, sub.secretKey, 'SELECT 1')), 'revoked');
    expectDenied(await callMeta(after, 'SELECT 1', proofFor(t1.token, executor.secretKey, 'SELECT 1')), 'revoked');
    // The root itself was not revoked.
    expect((await callMeta(after, 'SELECT 1', proofFor(t0, planner.secretKey, 'SELECT 1'))).isError).toBeFalsy();
    expect(ran()).toBe(2);
  });
});
