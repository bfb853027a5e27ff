/**
 * A hostile upstream against the new surface (test/fixtures/hostile-surface.mjs): forged
 * `capframe/` _meta on read and prompt results, poisoned prompt and resource definitions,
 * a resource list of 100,000 entries and URIs that are huge, out of normal form or
 * claim another server's prefix, a flood of log messages about a call, and a storm of
 * list_changed announcements. (Requests sent with no call in flight: relay.test.ts.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ROOT } from '../../helpers.js';
import { createPolicyEnv, sha256Hex, startServe, type PolicyEnv, type ServeProcess } from '../e2e-helpers.js';
import { FIXTURE, KEY_A, KEY_B, surfaceClient, until } from '../surface-helpers.js';
import { MAX_LISTED } from '../../../src/proxy/upstreams.js';
import { RELAY_BURST } from '../../../src/proxy/mcp/session.js';

const HOSTILE = join(ROOT, 'test', 'fixtures', 'hostile-surface.mjs');

describe('a hostile upstream behind serve', () => {
  let env: PolicyEnv;
  let serve: ServeProcess;
  let hostileLog: string;
  let otherLog: string;

  const lines = (file: string) =>
    existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { method: string; params: Record<string, unknown> | null })
      : [];

  beforeAll(async () => {
    env = createPolicyEnv(({ dir }) => {
      hostileLog = join(dir, 'hostile.log');
      otherLog = join(dir, 'other.log');
      return {
        version: '0.2',
        agents: { a: { key_sha256: sha256Hex(KEY_A), auto_mint: true }, b: { key_sha256: sha256Hex(KEY_B), auto_mint: true } },
        servers: {
          hostile: { command: process.execPath, args: [HOSTILE], env: { HOSTILE_LOG: hostileLog, RESOURCE_COUNT: '100000' }, timeout: 60 },
          other: { command: process.execPath, args: [FIXTURE, '--stdio'], env: { MESSAGE_LOG: otherLog } },
        },
        screen: { allow: ['hostile.hidden'] },
        rules: [{ tool: 'hostile.*' }, { resource: 'hostile:*' }, { resource: 'other:*' }, { prompt: 'hostile.*' }],
      };
    });
    serve = await startServe(env, { timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await serve?.stop();
    env?.remove();
  });

  it('owns capframe/ _meta on read and prompt results: forged keys removed (any case), others kept', async () => {
    const { client } = await surfaceClient(serve.url, KEY_A);
    try {
      const read = await client.readResource({ uri: 'hostile:hostile://forge' });
      expect(read._meta).toEqual({ 'upstream/trace': 'kept', 'capframe/decision': { allowed: true, code: 'ok', token: expect.stringMatching(/^tok_/), rule: expect.any(Number) } });
      const prompt = await client.getPrompt({ name: 'hostile.forge' });
      expect(prompt._meta).toEqual({ 'upstream/trace': 'kept', 'capframe/decision': { allowed: true, code: 'ok', token: null, rule: expect.any(Number) } });
    } finally {
      await client.close();
    }
  });

  it('withholds poisoned prompts and resource entries unless screen.allow names them; a get or read of one is denied and not sent', async () => {
    const { client } = await surfaceClient(serve.url, KEY_A);
    try {
      expect((await client.listPrompts()).prompts.map((p) => p.name).sort()).toEqual(['hostile.clean', 'hostile.forge', 'hostile.hidden']);
      await expect(client.getPrompt({ name: 'hostile.poisoned' })).rejects.toThrow(/DENIED denied_by_rule: prompt: hostile\.poisoned is withheld because its definition was screened: CF-PROMPT-001/);
      expect(lines(hostileLog).some((l) => l.method === 'prompts/get' && l.params?.name === 'poisoned')).toBe(false);
      await expect(client.readResource({ uri: 'hostile:hostile://poisoned' })).rejects.toThrow(/DENIED denied_by_rule: hostile:hostile:\/\/poisoned is withheld/);
      expect(lines(hostileLog).some((l) => l.method === 'resources/read' && l.params?.uri === 'hostile://poisoned')).toBe(false);
      // Completion follows the lists: nothing to complete on a withheld entry, while a listed one is routed.
      const complete = (uri: string) => client.complete({ ref: { type: 'ref/resource', uri }, argument: { name: 'x', value: '' } });
      await expect(complete('hostile:hostile://poisoned')).rejects.toThrow(/no resource "hostile:hostile:\/\/poisoned" to complete an argument of/);
      expect((await complete('hostile:hostile://forge')).completion.values).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('bounds a list of 100,000 resources, leaves out URIs it could never judge, and pages what it serves', async () => {
    const { client } = await surfaceClient(serve.url, KEY_A);
    try {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await client.listResources(cursor === undefined ? {} : { cursor });
        seen.push(...page.resources.map((r) => r.uri));
        cursor = page.nextCursor;
        pages += 1;
        expect(page.resources.length).toBeLessThanOrEqual(500);
      } while (cursor !== undefined && pages < 100);
      const fromHostile = seen.filter((u) => u.startsWith('hostile:'));
      expect(fromHostile.length).toBeLessThanOrEqual(MAX_LISTED);
      // The first entries (forge, poisoned, long, dots, claimed) take 5 places; poisoned is withheld, long and dots never judged.
      expect(fromHostile.filter((u) => u.startsWith('hostile:hostile://item/')).length).toBe(MAX_LISTED - 5);
      expect(seen.some((u) => u.includes('/long/') || u.includes('..'))).toBe(false);
      expect(serve.stderr()).toMatch(/more than 10000 entries; the rest are not served/);
      await expect(client.listResources({ cursor: 'not-a-cursor' })).rejects.toThrow(McpError);
    } finally {
      await client.close();
    }
  });

  it("keeps a URI that claims another server's prefix with the server that listed it", async () => {
    const { client } = await surfaceClient(serve.url, KEY_A);
    try {
      const read = await client.readResource({ uri: 'hostile:other:test://claimed' });
      expect(read.contents[0]).toMatchObject({ text: 'contents of other:test://claimed' });
      expect(lines(hostileLog).some((l) => l.method === 'resources/read' && l.params?.uri === 'other:test://claimed')).toBe(true);
      expect(lines(otherLog).some((l) => l.method === 'resources/read')).toBe(false);
    } finally {
      await client.close();
    }
  });

  it("bounds a flood of log messages per session, and the other session gets none of them", async () => {
    const a = await surfaceClient(serve.url, KEY_A);
    const b = await surfaceClient(serve.url, KEY_B);
    try {
      await a.client.setLoggingLevel('debug');
      await b.client.setLoggingLevel('debug');
      const started = Date.now();
      const result = await a.client.callTool({ name: 'hostile.flood', arguments: { count: 50_000 } }, undefined, { timeout: 120_000 });
      expect(result.content).toEqual([{ type: 'text', text: 'flooded 50000' }]);
      const seconds = (Date.now() - started) / 1000;
      await until('some flood messages for A', () => a.seen.logs.length > 0);
      // The bucket (RELAY_BURST, refilled at 200/s) bounds what A receives.
      expect(a.seen.logs.length).toBeLessThanOrEqual(RELAY_BURST + Math.ceil(seconds * 200) + 10);
      expect(a.seen.logs.length).toBeLessThan(50_000);
      expect(b.seen.logs).toEqual([]);
      expect(serve.stderr()).toMatch(/relayed notifications dropped: the session is over its budget/);
      // The proxy still answers both sessions.
      expect((await b.client.listTools()).tools.length).toBeGreaterThan(1);
    } finally {
      await a.client.close();
      await b.client.close();
    }
  }, 180_000);

  it('coalesces a storm of list_changed announcements into a few re-lists', async () => {
    const { client } = await surfaceClient(serve.url, KEY_A);
    try {
      const before = lines(hostileLog).filter((l) => l.method === 'tools/list').length;
      await client.callTool({ name: 'hostile.spam', arguments: { count: 2000 } });
      await until('a re-list', () => lines(hostileLog).filter((l) => l.method === 'tools/list').length > before);
      await new Promise((r) => setTimeout(r, 500));
      expect(lines(hostileLog).filter((l) => l.method === 'tools/list').length - before).toBeLessThan(50);
    } finally {
      await client.close();
    }
  });
});
