/**
 * Issue 11, acceptance 2 through the proxies: a holder proof accepted by instance A and
 * replayed against instance B is `replay`, and the upstream ran the call once.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createProof, generateKeyPair, mint } from '../../src/index.js';
import { PROOF_META_KEY, TOKEN_META_KEY } from '../../src/mcp/meta.js';
import { killAllServed } from '../proxy/faults-helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from '../store/redis-server.js';
import { createFleet, outcome, type Fleet, type Instance } from './fleet-helpers.js';

let redis: RedisServer;
let fleet: Fleet;
let a: Instance;
let b: Instance;
beforeAll(async () => {
  redis = await startRedis();
  fleet = createFleet(redis.url);
  [a, b] = await Promise.all([fleet.serve('a'), fleet.serve('b')]);
}, 60_000);
afterAll(async () => {
  killAllServed();
  await stopAllRedis();
});

describe('acceptance 2: one proof, one call, across the fleet', () => {
  it('a proof accepted by A is `replay` on B (and on A again); the upstream ran it once', async () => {
    const holder = generateKeyPair();
    const t = mint({ key: fleet.issuer.secretKey, tool: 'database.query', ttl: 300, holderKey: holder.publicKey });
    const args = { sql: 'SELECT name FROM customers WHERE id = 2' };
    const meta = { [TOKEN_META_KEY]: t.token, [PROOF_META_KEY]: createProof({ token: t.token, tool: 'database.query', args, key: holder.secretKey }).proof };
    const call = async (i: Instance) => outcome((await i.client.callTool({ name: 'database.query', arguments: args, _meta: meta })) as CallToolResult);
    const before = fleet.upstreamCalls();
    expect(await call(a)).toBe('ok');
    expect(await call(b)).toBe('replay');
    expect(await call(a)).toBe('replay');
    expect(fleet.upstreamCalls() - before).toBe(1);
  }, 60_000);
});
