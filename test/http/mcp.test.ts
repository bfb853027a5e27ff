/**
 * Sessions belong to the agent that opened them (SPEC §6, issue 8 item 1), against a real
 * `capframe serve` child with a real upstream that logs every tools/call it receives:
 * another agent holding the session id gets exactly what an unknown session gets (404),
 * on POST (fast path and SDK path, single and batch), GET (the SSE stream) and DELETE; a
 * request with no or an unknown key gets 401 with WWW-Authenticate; nothing of the
 * intruder's reaches the upstream.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.js';
import { EXAMPLE_SERVERS, killAllServed, NODE, q, startServe, textOf, upstreamCalls, type Served } from '../proxy/faults-helpers.js';
import { openSession, raw, rawHead } from './raw.js';

const ALICE = 'cfk_alice-session-owner';
const BOB = 'cfk_bob-session-intruder';
const sha = (key: string) => createHash('sha256').update(key).digest('hex');

const sql = (id: number) => ({ sql: `SELECT name FROM customers WHERE id = ${id}` });
const ALICE_SQL = sql(1); // Ada Lovelace
const BOB_SQL = sql(2); // Grace Hopper
const INTRUDER_SQL = sql(3); // only ever sent on someone else's session: must never reach the upstream
const NOT_FOUND = { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null };

const callQuery = (id: number, args: { sql: string }) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'database.query', arguments: args } });
/**
 * A batch with ids from+1..from+3. The agents reuse each other's ids at the same time; an
 * agent never reuses its own in-flight ids on one session (JSON-RPC forbids that).
 */
const batch = (args: { sql: string }, from = 0) => [callQuery(from + 1, args), { jsonrpc: '2.0', id: from + 2, method: 'tools/list' }, callQuery(from + 3, args)];

let dir: string;
let calls: string;
let served: Served;

beforeAll(async () => {
  dir = tempDir('capframe-http-mcp-');
  calls = join(dir, 'calls.log');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `capframe:
  version: "0.2"
  default_policy: deny
  auto_mint: true
  agents:
    alice: { key_sha256: "${sha(ALICE)}" }
    bob: { key_sha256: "${sha(BOB)}" }
  servers:
    database: { command: ${NODE}, args: [${q(join(EXAMPLE_SERVERS, 'database.js'))}], env: { CALL_LOG: ${q(calls)} } }
  rules:
    - { tool: database.query, ttl: 60 }
`,
  );
  served = await startServe(policy);
});

afterAll(() => {
  killAllServed();
  rmSync(dir, { recursive: true, force: true });
});

/** The SDK client of `key`, optionally on an existing session id (as a client resuming one would). */
async function sdkClient(key: string | undefined, sessionId?: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(served.url), {
    ...(key !== undefined && { requestInit: { headers: { authorization: `Bearer ${key}` } } }),
    ...(sessionId !== undefined && { sessionId }),
  });
  const client = new Client({ name: 'session-owner-test', version: '1' });
  await client.connect(transport);
  return { client, transport };
}

function names(messages: unknown[]): string[] {
  // Each tools/call answer is [{"name": …}] as text; tools/list answers are skipped.
  return (messages as { id: number; result?: CallToolResult & { tools?: unknown } }[])
    .filter((m) => m.result?.tools === undefined)
    .map((m) => (JSON.parse(textOf(m.result)) as { name: string }[])[0]!.name);
}

describe('sessions belong to the agent that opened them', () => {
  it('two agents firing concurrent batches with the same JSON-RPC ids: each gets only its own answers, the intruder 404', async () => {
    const aliceSession = await openSession(served.base, ALICE);
    const bobSession = await openSession(served.base, BOB);
    const before = upstreamCalls(calls).length;

    const rounds = 8;
    const fired = await Promise.all(
      Array.from({ length: rounds }, (_, i) => [
        raw(served.base, { key: ALICE, session: aliceSession, body: batch(ALICE_SQL, 10 * i) }),
        raw(served.base, { key: BOB, session: bobSession, body: batch(BOB_SQL, 10 * i) }),
        // Bob on Alice's session with the very ids she has in flight, batch (SDK path) and
        // single (fast path) — on an unbound session the transport would route answers by id.
        raw(served.base, { key: BOB, session: aliceSession, body: i % 2 === 0 ? batch(INTRUDER_SQL, 10 * i) : callQuery(10 * i + 1, INTRUDER_SQL) }),
        // And Alice on Bob's.
        raw(served.base, { key: ALICE, session: bobSession, body: callQuery(10 * i + 3, INTRUDER_SQL) }),
      ]).flat(),
    );
    for (let i = 0; i < rounds; i++) {
      const [alice, bob, bobOnAlice, aliceOnBob] = fired.slice(i * 4, i * 4 + 4) as [typeof fired[0], typeof fired[0], typeof fired[0], typeof fired[0]];
      expect(alice.status, alice.text).toBe(200);
      expect(alice.headers['content-type']).toBe('text/event-stream'); // a batch goes through the SDK: SSE by default
      expect(alice.messages.map((m) => (m as { id: number }).id).sort((a, b) => a - b)).toEqual([10 * i + 1, 10 * i + 2, 10 * i + 3]);
      expect(names(alice.messages)).toEqual(['Ada Lovelace', 'Ada Lovelace']);
      expect(bob.status, bob.text).toBe(200);
      expect(bob.messages.map((m) => (m as { id: number }).id).sort((a, b) => a - b)).toEqual([10 * i + 1, 10 * i + 2, 10 * i + 3]);
      expect(names(bob.messages)).toEqual(['Grace Hopper', 'Grace Hopper']);
      for (const intruder of [bobOnAlice, aliceOnBob]) {
        expect(intruder.status).toBe(404);
        expect(intruder.messages).toEqual([NOT_FOUND]);
      }
    }
    // Exactly the owners' calls reached the upstream; none of the intruders'.
    const seen = upstreamCalls(calls).slice(before);
    expect(seen.filter((c) => c.args.sql === ALICE_SQL.sql)).toHaveLength(2 * rounds);
    expect(seen.filter((c) => c.args.sql === BOB_SQL.sql)).toHaveLength(2 * rounds);
    expect(seen.filter((c) => c.args.sql === INTRUDER_SQL.sql)).toEqual([]);
    expect(seen).toHaveLength(4 * rounds);
  });

  it('another agent answers like an unknown session: same status, same body, on POST, GET and DELETE', async () => {
    const aliceSession = await openSession(served.base, ALICE);
    const unknown = '3f1e0d2c-0000-4000-8000-000000000000';
    for (const session of [aliceSession, unknown]) {
      const post = await raw(served.base, { key: BOB, session, body: callQuery(7, INTRUDER_SQL) });
      const get = await rawHead(served.base, { key: BOB, session });
      const del = await raw(served.base, { key: BOB, session, method: 'DELETE' });
      expect([post.status, get.status, del.status]).toEqual([404, 404, 404]);
      expect([post.text, get.text, del.text].map((t) => JSON.parse(t) as unknown)).toEqual([NOT_FOUND, NOT_FOUND, NOT_FOUND]);
    }
    // The owner's own GET stream opens, and the session survived Bob's DELETE.
    expect((await rawHead(served.base, { key: ALICE, session: aliceSession })).status).toBe(200);
    const mine = await raw(served.base, { key: ALICE, session: aliceSession, body: callQuery(8, ALICE_SQL) });
    expect(mine.status).toBe(200);
    expect(mine.headers['content-type']).toBe('application/json'); // a lone tools/call: the fast path's plain JSON
    expect(names(mine.messages)).toEqual(['Ada Lovelace']);
    // Only the owner ends it.
    expect((await raw(served.base, { key: ALICE, session: aliceSession, method: 'DELETE' })).status).toBe(200);
    expect((await raw(served.base, { key: ALICE, session: aliceSession, body: callQuery(9, ALICE_SQL) })).status).toBe(404);
    expect(upstreamCalls(calls).filter((c) => c.args.sql === INTRUDER_SQL.sql)).toEqual([]);
  });

  it('SDK clients: the intruder reusing the owner\'s session id is refused and cannot end it; the owner keeps working', async () => {
    const alice = await sdkClient(ALICE);
    const aliceSession = alice.transport.sessionId!;
    expect(aliceSession).toMatch(/^[0-9a-f-]{36}$/);
    const bob = await sdkClient(BOB, aliceSession);
    await expect(bob.client.callTool({ name: 'database.query', arguments: INTRUDER_SQL })).rejects.toThrow(/404|Session not found/);
    await expect(bob.client.listTools()).rejects.toThrow(/404|Session not found/);
    await expect(bob.transport.terminateSession()).rejects.toThrow(/Failed to terminate session: Not Found/);

    const r = (await alice.client.callTool({ name: 'database.query', arguments: ALICE_SQL })) as CallToolResult;
    expect(r.isError, textOf(r)).not.toBe(true);
    expect(JSON.parse(textOf(r))).toEqual([{ name: 'Ada Lovelace' }]);
    expect((await alice.client.listTools()).tools.map((t) => t.name)).toContain('database.query');
    expect(upstreamCalls(calls).filter((c) => c.args.sql === INTRUDER_SQL.sql)).toEqual([]);
    await alice.client.close();
    await bob.client.close().catch(() => undefined);
  });

  it('no key, or an unknown one, is a 401 with WWW-Authenticate: Bearer, before any session exists', async () => {
    const aliceSession = await openSession(served.base, ALICE);
    const before = upstreamCalls(calls).length;
    const cases = [
      raw(served.base, { body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } }),
      raw(served.base, { key: 'cfk_not-in-this-policy', body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} } }),
      raw(served.base, { session: aliceSession, body: callQuery(1, INTRUDER_SQL) }),
      raw(served.base, { key: 'cfk_not-in-this-policy', session: aliceSession, body: batch(INTRUDER_SQL) }),
      raw(served.base, { session: aliceSession, method: 'DELETE' }),
      raw(served.base, { path: '/', session: aliceSession, method: 'GET' }),
    ];
    for (const answer of await Promise.all(cases)) {
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="capframe"/);
      expect(answer.messages).toEqual([
        { jsonrpc: '2.0', error: { code: -32001, message: expect.stringMatching(/^agent_unknown: .*Authorization: Bearer <agent API key>/) }, id: null },
      ]);
      expect(answer.headers['mcp-session-id']).toBeUndefined();
    }
    // An unknown key says so (RFC 6750 invalid_token); no key just asks for one.
    const [none, wrong] = await Promise.all([raw(served.base, { body: {} }), raw(served.base, { key: 'cfk_nope', body: {} })]);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="capframe"');
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="capframe", error="invalid_token"');
    // Authentication comes before reading a body: a 2 MiB one from a stranger is a 401, not a 413.
    const big = await raw(served.base, { body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(2 * 1024 * 1024) } } });
    expect(big.status).toBe(401);
    // Alice's session is untouched and nothing reached the upstream.
    expect((await raw(served.base, { key: ALICE, session: aliceSession, body: callQuery(1, ALICE_SQL) })).status).toBe(200);
    expect(upstreamCalls(calls).slice(before).map((c) => c.args)).toEqual([ALICE_SQL]);
    // An SDK client without a key cannot connect at all.
    await expect(sdkClient(undefined)).rejects.toThrow(/agent_unknown/);
  });
});

describe('without agents (pure capability mode)', () => {
  it('sessions are anonymous: whoever holds the session id may use it (and --json-response answers batches as JSON)', async () => {
    const capDir = tempDir('capframe-http-mcp-open-');
    try {
      const policy = join(capDir, 'policy.yaml');
      writeFileSync(policy, 'capframe:\n  version: "0.2"\n  default_policy: deny\n  rules: []\n');
      const open = await startServe(policy, { args: ['--json-response'] });
      const session = await openSession(open.base);
      // Any Authorization header is beside the point here: the token authorizes each call.
      const other = await raw(open.base, { key: 'cfk_whatever', session, body: [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' }] });
      expect(other.status).toBe(200);
      expect(other.headers['content-type']).toBe('application/json');
      const [answers] = other.messages as { result: { tools: { name: string }[] } }[][];
      expect(answers!.map((a) => a.result.tools.map((t) => t.name))).toEqual([['capframe.request_token'], ['capframe.request_token']]);
      expect((await open.stop()).code).toBe(0);
    } finally {
      rmSync(capDir, { recursive: true, force: true });
    }
  });
});
