/**
 * Issue 4, acceptance items 1–3, end to end: `capframe serve` as a real child process,
 * the official SDK `Client` over Streamable HTTP and over stdio, real upstream MCP
 * servers (examples/servers and @modelcontextprotocol/server-everything) whose own
 * call counters (CALL_LOG) show a denied call never reached them.
 *
 * Needs `npm run build:ts` first (the CLI runs from dist/).
 */
import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mint } from '../../src/token/mint.js';
import { createVerifier } from '../../src/verify/verifier.js';
import { cli, type CliResult } from '../helpers.js';
import {
  COUNT_CALLS,
  call,
  createPolicyEnv,
  everythingEntry,
  exampleServer,
  expectDenial,
  expectDenied,
  expectForwarded,
  jsonOf,
  openProxy,
  sha256Hex,
  textOf,
  type PolicyEnv,
  type Proxy,
  type TransportKind,
} from './e2e-helpers.js';

const KINDS: TransportKind[] = ['http', 'stdio'];
const ADMIN_KEY = randomBytes(24).toString('hex');

const GB_CUSTOMERS = "SELECT name, tier FROM customers WHERE country = 'GB' ORDER BY id";
const GB_ROWS = [
  { name: 'Ada Lovelace', tier: 'gold' },
  { name: 'Alan Turing', tier: 'bronze' },
];
const READ_ONLY = { 'read-only': { when: [{ arg: 'sql', op: 'matches', value: '^\\s*SELECT\\b' }] } };

interface Minted {
  token: string;
  id: string;
}

/** `capframe mint --json`, which must succeed. */
function mintCli(env: PolicyEnv, tool: string, agent?: string): Minted {
  const r = cli(['mint', '--policy', env.policyFile, '--tool', tool, '--json', ...(agent === undefined ? [] : ['--agent', agent])]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Minted;
}

/** A token from the proxy's own `capframe.request_token` tool, for the calling agent. */
async function requestToken(client: Client, tool: string): Promise<Minted> {
  const issued = await call(client, 'capframe.request_token', { tool });
  expect(issued.isError ?? false, textOf(issued)).toBe(false);
  return issued.structuredContent as unknown as Minted;
}

async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name).sort();
}

/** The seed's policy (SPEC §1) with real upstreams, the read-only capability, a limit on refunds, and database.update. */
function seedPolicy({ callLog }: { callLog: string }): Record<string, unknown> {
  return {
    version: '0.2',
    default_policy: 'deny',
    servers: { database: exampleServer('database', callLog), payments: exampleServer('payments', callLog) },
    capabilities: READ_ONLY,
    rules: [
      { tool: 'database.query', capability: 'read-only', ttl: 300 },
      { tool: 'payments.refund', capability: 'admin', ttl: 60, when: [{ arg: 'amount', op: '<=', value: 50 }] },
      { tool: 'database.update', ttl: 60 },
    ],
  };
}

describe.each(KINDS)('the seed checklist and token checks through the proxy over %s', (kind) => {
  let env: PolicyEnv;
  let check: CliResult;
  let proxy: Proxy;
  let client: Client;

  beforeAll(async () => {
    env = createPolicyEnv(seedPolicy);
    check = cli(['policy', 'check', env.policyFile]);
    proxy = await openProxy(kind, env, { serveEnv: { CAPFRAME_ADMIN_KEY: ADMIN_KEY } });
    client = await proxy.connect();
  });

  afterAll(async () => {
    // SIGTERM drains and exits 0 (HTTP); stdio exits when the client closes stdin.
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  it('the policy is validated (policy check exits 0) and the runtime lists the granted upstream tools', async () => {
    expect(check.code, check.stderr).toBe(0);
    // payments.get_charge exists upstream but no rule grants it.
    expect(await toolNames(client)).toEqual(['capframe.request_token', 'database.query', 'database.update', 'payments.refund']);
    const { tools } = await client.listTools();
    const query = tools.find((t) => t.name === 'database.query') as Tool;
    expect(query.description).toBe('Run a read-only SQL SELECT against the customers and orders tables.');
    expect(query.inputSchema.properties).toHaveProperty('sql');
    if (proxy.http !== undefined) {
      const health = await fetch(`${proxy.http.origin}/healthz`);
      expect(health.status).toBe(200);
      const body = (await health.json()) as { backend: string };
      expect(body).toMatchObject({ status: 'ok', upstreams: { database: { up: true }, payments: { up: true } } });
      // CAPFRAME_BACKEND reaches the server: the suite runs on the backend it was asked to.
      expect(body.backend).toBe(process.env.CAPFRAME_BACKEND ?? body.backend);
    }
  });

  it('a call without a token is DENIED missing_token and never reaches the upstream', async () => {
    await expectDenied(env, () => call(client, 'database.query', { sql: GB_CUSTOMERS }), 'missing_token');
    await expectDenied(env, () => call(client, 'payments.refund', { charge_id: 'ch_1001', amount: 5, currency: 'EUR', reason: 'x' }), 'missing_token');
  });

  it('a token from `capframe mint` gets the upstream\'s real result', async () => {
    const { token } = mintCli(env, 'database.query');
    const result = await expectForwarded(env, () => call(client, 'database.query', { sql: GB_CUSTOMERS }, token), {
      server: 'database',
      tool: 'query',
      args: { sql: GB_CUSTOMERS },
    });
    expect(jsonOf(result)).toEqual(GB_ROWS);
  });

  it('with no agents defined, nobody can get a token from the proxy: tokens come from the operator (capframe mint)', async () => {
    const issued = await expectDenied(env, () => call(client, 'capframe.request_token', { tool: 'database.query', ttl: 30 }), 'agent_unknown');
    expect(textOf(issued)).toContain('this policy defines no agents');
    if (proxy.http !== undefined) {
      const response = await fetch(`${proxy.http.origin}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tool: 'database.query' }),
      });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ allowed: false, code: 'agent_unknown' });
    }
  });

  it('an expired token is DENIED expired and never reaches the upstream', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = mint({ key: env.issuerKey(), tool: 'database.query', capability: 'read-only', ttl: 60, now: now - 120 });
    const result = await expectDenied(env, () => call(client, 'database.query', { sql: GB_CUSTOMERS }, expired.token), 'expired');
    expect(textOf(result)).toContain(expired.id);
    // The same key one minute later is fine: only the expiry differed.
    const fresh = mint({ key: env.issuerKey(), tool: 'database.query', capability: 'read-only', ttl: 60, now });
    await expectForwarded(env, () => call(client, 'database.query', { sql: GB_CUSTOMERS }, fresh.token), { server: 'database', tool: 'query', args: { sql: GB_CUSTOMERS } });
  });

  it('a token that was accepted is DENIED expired once it expires (no verdict is cached past exp)', async () => {
    // exp is whole seconds: pick the first second boundary at least 700 ms away.
    const expSeconds = Math.ceil((Date.now() + 700) / 1000);
    const short = mint({ key: env.issuerKey(), tool: 'database.query', capability: 'read-only', ttl: 60, now: expSeconds - 60 });
    const exp = short.expiresAt.getTime();
    expect(exp).toBe(expSeconds * 1000);
    const args = { sql: 'SELECT id FROM orders WHERE id = 103' };
    await expectForwarded(env, () => call(client, 'database.query', args, short.token), { server: 'database', tool: 'query', args });
    await expectForwarded(env, () => call(client, 'database.query', args, short.token), { server: 'database', tool: 'query', args });
    await new Promise((r) => setTimeout(r, exp + 20 - Date.now()));
    await expectDenied(env, () => call(client, 'database.query', args, short.token), 'expired');
  });

  it('a token revoked with `capframe revoke` while the server runs is DENIED revoked within one second, without a restart', async () => {
    const { token, id } = mintCli(env, 'database.query');
    const args = { sql: 'SELECT id FROM orders WHERE id = 101' };
    const expected = { server: 'database', tool: 'query', args };
    await expectForwarded(env, () => call(client, 'database.query', args, token), expected);

    const revoke = cli(['revoke', '--policy', env.policyFile, '--token', id]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout.trim()).toBe(`revoked ${id}`);
    const revokedAt = Date.now();
    let result = await call(client, 'database.query', args, token);
    let before = env.calls().length;
    while (!result.isError && Date.now() - revokedAt < 1000) {
      await new Promise((r) => setTimeout(r, 20));
      before = env.calls().length;
      result = await call(client, 'database.query', args, token);
    }
    const elapsed = Date.now() - revokedAt;
    expectDenial(result, 'revoked');
    expect(elapsed).toBeLessThanOrEqual(1000);
    expect(env.calls().length, 'the revoked call reached the upstream').toBe(before);
    await expectDenied(env, () => call(client, 'database.query', args, token), 'revoked');

    // Same process, same session: a new token still works.
    const fresh = mintCli(env, 'database.query');
    await expectForwarded(env, () => call(client, 'database.query', args, fresh.token), expected);
    if (proxy.http !== undefined) expect(proxy.http.stderr()).not.toMatch(/runtime stopped/);
  });

  if (kind === 'http') {
    it('POST /v1/revocations with CAPFRAME_ADMIN_KEY revokes at once; without the admin key it is refused', async () => {
      const { token, id } = mintCli(env, 'database.query');
      const args = { sql: 'SELECT id FROM orders WHERE id = 102' };
      await expectForwarded(env, () => call(client, 'database.query', args, token), { server: 'database', tool: 'query', args });

      const post = (auth: string | undefined) =>
        fetch(`${proxy.http!.origin}/v1/revocations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth !== undefined && { authorization: `Bearer ${auth}` }) },
          body: JSON.stringify({ id }),
        });
      expect((await post(undefined)).status).toBe(401);
      expect((await post('not-the-admin-key')).status).toBe(401);
      await expectForwarded(env, () => call(client, 'database.query', args, token), { server: 'database', tool: 'query', args });

      const accepted = await post(ADMIN_KEY);
      expect(accepted.status).toBe(200);
      expect(await accepted.json()).toEqual({ revoked: id, new: true });
      await expectDenied(env, () => call(client, 'database.query', args, token), 'revoked');
      // The revocation is durable: the CLI sees it in the store.
      const verify = cli(['verify', '--policy', env.policyFile, '--token', id]);
      expect(verify.stdout).toMatch(/^DENIED revoked: /);

      // A printable token names its id too.
      const other = mintCli(env, 'database.query');
      await expectForwarded(env, () => call(client, 'database.query', args, other.token), { server: 'database', tool: 'query', args });
      const byToken = await fetch(`${proxy.http!.origin}/v1/revocations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ token: other.token }),
      });
      expect(await byToken.json()).toEqual({ revoked: other.id, new: true });
      await expectDenied(env, () => call(client, 'database.query', args, other.token), 'revoked');
    });
  }

  it('a token for database.query used on database.update is DENIED tool_mismatch', async () => {
    const { token } = mintCli(env, 'database.query');
    await expectDenied(env, () => call(client, 'database.update', { table: 'orders', id: 101, fields: { status: 'shipped' } }, token), 'tool_mismatch');
    // The token itself is good for its own tool.
    await expectForwarded(env, () => call(client, 'database.query', { sql: GB_CUSTOMERS }, token), { server: 'database', tool: 'query', args: { sql: GB_CUSTOMERS } });
  });

  it('a call that breaks a constraint is DENIED constraint_failed', async () => {
    const query = mintCli(env, 'database.query');
    await expectDenied(env, () => call(client, 'database.query', { sql: "UPDATE orders SET status = 'x'" }, query.token), 'constraint_failed');
    await expectDenied(env, () => call(client, 'database.query', { sql: 42 }, query.token), 'constraint_failed');

    const refund = mintCli(env, 'payments.refund');
    const big = { charge_id: 'ch_1003', amount: 500, currency: 'USD', reason: 'too much' };
    await expectDenied(env, () => call(client, 'payments.refund', big, refund.token), 'constraint_failed');
    await expectDenied(env, () => call(client, 'payments.refund', { ...big, amount: '20' }, refund.token), 'constraint_failed');
    // Within the limit the real refund happens.
    const small = { charge_id: 'ch_1003', amount: 20, currency: 'USD', reason: 'late delivery' };
    const result = await expectForwarded(env, () => call(client, 'payments.refund', small, refund.token), { server: 'payments', tool: 'refund', args: small });
    expect(jsonOf(result)).toMatchObject({ refund_id: expect.stringMatching(/^re_\d+$/), charge_id: 'ch_1003', amount: 20, status: 'succeeded' });
  });

  if (kind === 'http') {
    it('the Capframe-Token header works as an alternative to _meta', async () => {
      const { token } = mintCli(env, 'database.query');
      const headerClient = await proxy.connect({ tokenHeader: token });
      const result = await expectForwarded(env, () => call(headerClient, 'database.query', { sql: GB_CUSTOMERS }), {
        server: 'database',
        tool: 'query',
        args: { sql: GB_CUSTOMERS },
      });
      expect(jsonOf(result)).toEqual(GB_ROWS);
      // The header is what is checked: on another tool it is a mismatch, not a missing token.
      await expectDenied(env, () => call(headerClient, 'database.update', { table: 'orders', id: 101, fields: { status: 'x' } }), 'tool_mismatch');
      // And the header client without the header is back to missing_token.
      await expectDenied(env, () => call(client, 'database.query', { sql: GB_CUSTOMERS }), 'missing_token');
    });
  }
});

describe.each(KINDS)('agents: authentication, auto_mint and token binding over %s', (kind) => {
  const keys = { alice: randomBytes(24).toString('base64url'), bob: randomBytes(24).toString('base64url') };
  let env: PolicyEnv;
  let proxy: Proxy;
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    env = createPolicyEnv(({ callLog }) => ({
      version: '0.2',
      default_policy: 'deny',
      servers: { database: exampleServer('database', callLog), payments: exampleServer('payments', callLog) },
      agents: {
        alice: { key_sha256: sha256Hex(keys.alice), auto_mint: true },
        bob: { key_sha256: sha256Hex(keys.bob) },
      },
      capabilities: READ_ONLY,
      rules: [
        { tool: 'database.query', capability: 'read-only', ttl: 300, agents: ['alice', 'bob'] },
        { tool: 'database.update', ttl: 60, agents: ['bob'], when: [{ arg: 'table', op: '==', value: 'orders' }] },
        { tool: 'payments.get_charge', ttl: 300, agents: ['bob'] },
      ],
    }));
    proxy = await openProxy(kind, env);
    // One at a time: the first `serve` creates the issuer key.
    alice = await proxy.connect({ agentKey: keys.alice });
    bob = await proxy.connect({ agentKey: keys.bob });
  });

  afterAll(async () => {
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  it('tools/list shows each agent only the tools some rule could grant it', async () => {
    expect(await toolNames(alice)).toEqual(['capframe.request_token', 'database.query']);
    expect(await toolNames(bob)).toEqual(['capframe.request_token', 'database.query', 'database.update', 'payments.get_charge']);
  });

  it('an unknown agent key, or none, is DENIED agent_unknown even with a valid token', async () => {
    const valid = await requestToken(alice, 'database.query');
    const unknownKey = randomBytes(24).toString('base64url');
    if (kind === 'http') {
      // Over HTTP the stranger gets no session at all: 401 before the MCP layer (test/http/sessions.test.ts).
      const before = env.calls().length;
      for (const key of [unknownKey, undefined]) {
        await expect(proxy.connect(key === undefined ? {} : { agentKey: key })).rejects.toThrow(/agent_unknown/);
      }
      expect(env.calls().length).toBe(before);
      return;
    }
    // Started together: over stdio each is its own `serve --stdio` process.
    const strangers = await Promise.all([proxy.connect({ agentKey: unknownKey }), proxy.connect()]);
    for (const stranger of strangers) {
      expect(await toolNames(stranger)).toEqual(['capframe.request_token']);
      await expectDenied(env, () => call(stranger, 'database.query', { sql: GB_CUSTOMERS }, valid.token), 'agent_unknown');
      await expectDenied(env, () => call(stranger, 'database.query', { sql: GB_CUSTOMERS }), 'agent_unknown');
      const issued = await call(stranger, 'capframe.request_token', { tool: 'database.query' });
      expectDenial(issued, 'agent_unknown');
    }
  });

  it('with auto_mint an authenticated agent calls without a token and gets the real result; without it, missing_token', async () => {
    const result = await expectForwarded(env, () => call(alice, 'database.query', { sql: GB_CUSTOMERS }), { server: 'database', tool: 'query', args: { sql: GB_CUSTOMERS } });
    expect(jsonOf(result)).toEqual(GB_ROWS);
    // auto_mint mints only what the policy grants: constraints still hold, other agents' tools stay shut.
    await expectDenied(env, () => call(alice, 'database.query', { sql: 'DELETE FROM orders' }), 'constraint_failed');
    const denied = await expectDenied(env, () => call(alice, 'database.update', { table: 'orders', id: 101, fields: { status: 'x' } }), 'agent_not_allowed');
    expect(textOf(denied)).toContain('"database.update" to agent "alice"');
    await expectDenied(env, () => call(bob, 'database.query', { sql: GB_CUSTOMERS }), 'missing_token');
  });

  it('a token minted for agent A presented by agent B is DENIED agent_not_allowed', async () => {
    const forAlice = mintCli(env, 'database.query', 'alice');
    await expectDenied(env, () => call(bob, 'database.query', { sql: GB_CUSTOMERS }, forAlice.token), 'agent_not_allowed');
    await expectForwarded(env, () => call(alice, 'database.query', { sql: GB_CUSTOMERS }, forAlice.token), { server: 'database', tool: 'query', args: { sql: GB_CUSTOMERS } });
    // A token with no agent at all is not bob's either.
    const anonymous = mint({ key: env.issuerKey(), tool: 'database.query', capability: 'read-only', ttl: 60 });
    await expectDenied(env, () => call(bob, 'database.query', { sql: GB_CUSTOMERS }, anonymous.token), 'agent_not_allowed');
  });

  it('an agent\'s own token (request_token) works, is checked for its tool, and carries the rule\'s constraints', async () => {
    const { token } = await requestToken(bob, 'database.update');
    const update = { table: 'orders', id: 104, fields: { status: 'shipped' } };
    const result = await expectForwarded(env, () => call(bob, 'database.update', update, token), { server: 'database', tool: 'update', args: update });
    expect(jsonOf(result)).toMatchObject({ updated: 'orders', row: { id: 104, status: 'shipped' } });
    await expectDenied(env, () => call(bob, 'database.update', { ...update, table: 'customers' }, token), 'constraint_failed');
    await expectDenied(env, () => call(bob, 'database.query', { sql: GB_CUSTOMERS }, token), 'tool_mismatch');
    await expectDenied(env, () => call(alice, 'database.update', update, token), 'agent_not_allowed');
  });

  if (kind === 'http') {
    it('the Capframe-Token header works with agent authentication', async () => {
      const forBob = await requestToken(bob, 'payments.get_charge');
      const bobWithHeader = await proxy.connect({ agentKey: keys.bob, tokenHeader: forBob.token });
      const result = await expectForwarded(env, () => call(bobWithHeader, 'payments.get_charge', { charge_id: 'ch_1002' }), {
        server: 'payments',
        tool: 'get_charge',
        args: { charge_id: 'ch_1002' },
      });
      expect(jsonOf(result)).toMatchObject({ id: 'ch_1002', amount: 19.99, currency: 'USD' });
      const aliceWithHeader = await proxy.connect({ agentKey: keys.alice, tokenHeader: forBob.token });
      await expectDenied(env, () => call(aliceWithHeader, 'payments.get_charge', { charge_id: 'ch_1002' }), 'agent_not_allowed');
    });

    it('POST /v1/tokens issues to the authenticated agent only', async () => {
      const post = (key: string | undefined, tool: string) =>
        fetch(`${proxy.http!.origin}/v1/tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key !== undefined && { authorization: `Bearer ${key}` }) },
          body: JSON.stringify({ tool }),
        });
      for (const key of [undefined, 'not-an-agent-key']) {
        const refused = await post(key, 'database.query');
        expect(refused.status).toBe(401);
        expect(await refused.json()).toMatchObject({ allowed: false, code: 'agent_unknown' });
      }
      const notAlices = await post(keys.alice, 'payments.get_charge');
      expect(notAlices.status).toBe(403);
      expect(await notAlices.json()).toMatchObject({ allowed: false, code: 'agent_not_allowed' });

      const issued = await post(keys.bob, 'payments.get_charge');
      expect(issued.status).toBe(200);
      const { token } = (await issued.json()) as { token: string };
      await expectForwarded(env, () => call(bob, 'payments.get_charge', { charge_id: 'ch_1001' }, token), {
        server: 'payments',
        tool: 'get_charge',
        args: { charge_id: 'ch_1001' },
      });
      await expectDenied(env, () => call(alice, 'payments.get_charge', { charge_id: 'ch_1001' }, token), 'agent_not_allowed');
    });
  }
});

/** What server-everything itself lists, asked directly (once per file). */
let everythingTools: Promise<Tool[]> | undefined;
function listEverythingDirectly(): Promise<Tool[]> {
  everythingTools ??= (async () => {
    const client = new Client({ name: 'capframe-e2e', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [everythingEntry(), 'stdio'], stderr: 'ignore' }));
    try {
      return (await client.listTools()).tools;
    } finally {
      await client.close();
    }
  })();
  return everythingTools;
}

describe.each(KINDS)('@modelcontextprotocol/server-everything as a real stdio upstream over %s', (kind) => {
  const deskKey = randomBytes(24).toString('base64url');
  let env: PolicyEnv;
  let proxy: Proxy;
  let desk: Client;

  beforeAll(async () => {
    env = createPolicyEnv(({ callLog }) => ({
      version: '0.2',
      default_policy: 'deny',
      servers: {
        // count-calls.mjs passes stdin/stdout through and logs each tools/call to CALL_LOG.
        everything: { command: process.execPath, args: [COUNT_CALLS, process.execPath, everythingEntry(), 'stdio'], env: { CALL_LOG: callLog }, timeout: 20 },
      },
      agents: { desk: { key_sha256: sha256Hex(deskKey), auto_mint: true } },
      rules: [
        { tool: 'everything.echo', ttl: 60 },
        { tool: 'everything.get-sum', ttl: 60, when: [{ arg: 'a', op: '<=', value: 1000 }] },
      ],
    }));
    proxy = await openProxy(kind, env);
    desk = await proxy.connect({ agentKey: deskKey });
  });

  afterAll(async () => {
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  it('its tools appear as everything.<tool>, only those a rule grants, with the upstream\'s definitions', async () => {
    const upstream = await listEverythingDirectly();
    const upstreamNames = upstream.map((t) => t.name);
    expect(upstreamNames).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-env']));
    expect(upstreamNames.length).toBeGreaterThan(5);

    const { tools } = await desk.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['capframe.request_token', 'everything.echo', 'everything.get-sum']);
    for (const name of ['echo', 'get-sum']) {
      const direct = upstream.find((t) => t.name === name)!;
      const proxied = tools.find((t) => t.name === `everything.${name}`)!;
      expect(proxied.description).toBe(direct.description);
      expect(proxied.inputSchema).toEqual(direct.inputSchema);
    }
  });

  it('an allowed call returns its real result', async () => {
    const echo = await expectForwarded(env, () => call(desk, 'everything.echo', { message: 'hello through capframe' }), {
      server: 'wrapped',
      tool: 'echo',
      args: { message: 'hello through capframe' },
    });
    expect(textOf(echo)).toBe('Echo: hello through capframe');

    const { token } = await requestToken(desk, 'everything.get-sum');
    const sum = await expectForwarded(env, () => call(desk, 'everything.get-sum', { a: 2, b: 3 }, token), { server: 'wrapped', tool: 'get-sum', args: { a: 2, b: 3 } });
    expect(textOf(sum)).toBe('The sum of 2 and 3 is 5.');
    await expectDenied(env, () => call(desk, 'everything.get-sum', { a: 2000, b: 3 }, token), 'constraint_failed');
  });

  it('the token travels to the upstream in _meta: the per-call one auto_mint made, or the one presented', async () => {
    const args = { message: 'who am I?' };
    await expectForwarded(env, () => call(desk, 'everything.echo', args), { server: 'wrapped', tool: 'echo', args });
    const forwarded = env.calls().at(-1)!.meta?.['capframe/token'];
    expect(forwarded).toEqual(expect.stringMatching(/^cf1\./));
    const checked = createVerifier({ keys: [env.issuerKey().publicKey] }).verify(forwarded as string, { tool: 'everything.echo', args });
    expect(checked).toMatchObject({ allowed: true, claims: { sub: 'desk', tool: 'everything.echo' } });
    expect(checked.claims!.exp - checked.claims!.iat).toBeLessThanOrEqual(60);

    const presented = await requestToken(desk, 'everything.echo');
    await expectForwarded(env, () => call(desk, 'everything.echo', args, presented.token), { server: 'wrapped', tool: 'echo', args });
    expect(env.calls().at(-1)!.meta?.['capframe/token']).toBe(presented.token);
  });

  it('a tool no rule grants is absent from tools/list and DENIED no_rule if called anyway', async () => {
    const names = (await desk.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain('everything.get-env');
    // An unmodified client (auto_mint): nothing to mint, so nothing is called.
    await expectDenied(env, () => call(desk, 'everything.get-env', {}), 'no_rule');
    // Asking for a token is refused the same way.
    expectDenial(await call(desk, 'capframe.request_token', { tool: 'everything.get-env' }), 'no_rule');
    // Even a correctly signed token for it does not help: no rule grants the tool.
    const signed = mint({ key: env.issuerKey(), tool: 'everything.get-env', agent: 'desk', ttl: 60 });
    await expectDenied(env, () => call(desk, 'everything.get-env', {}, signed.token), 'no_rule');
    // A token for a granted tool is no key to a neighbour.
    const echoToken = mint({ key: env.issuerKey(), tool: 'everything.echo', agent: 'desk', ttl: 60 });
    await expectDenied(env, () => call(desk, 'everything.get-env', {}, echoToken.token), 'tool_mismatch');
  });
});
