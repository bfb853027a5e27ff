/**
 * `names: upstream` through serve: a transparent single-server deployment shows the
 * upstream's own names and decides and audits them under `<server>.<name>`; two such
 * servers that claim the same names get neither served (shadowing, logged).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createPolicyEnv, sha256Hex, startServe, type PolicyEnv, type ServeProcess } from '../e2e-helpers.js';
import { FIXTURE, firstText, KEY_A, surfaceClient, until } from '../surface-helpers.js';

function fixture(names: 'upstream' | 'qualified') {
  return { command: process.execPath, args: [FIXTURE, '--stdio'], names };
}

async function serveWith(servers: Record<string, unknown>): Promise<{ env: PolicyEnv; serve: ServeProcess }> {
  const env = createPolicyEnv(() => ({
    version: '0.2',
    agents: { a: { key_sha256: sha256Hex(KEY_A), auto_mint: true } },
    servers,
    rules: [{ tool: '*' }, { resource: '*:*' }, { prompt: '*' }],
  }));
  return { env, serve: await startServe(env) };
}

describe('one server under its own names', () => {
  let env: PolicyEnv;
  let serve: ServeProcess;

  beforeAll(async () => {
    ({ env, serve } = await serveWith({ conf: fixture('upstream') }));
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    env?.remove();
  });

  it('lists and calls own names, decided and audited as <server>.<name>', async () => {
    const { client } = await surfaceClient(serve.url, KEY_A, {});
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('test_simple_text');
      expect(names).toContain('capframe.request_token');
      expect(names.some((n) => n.startsWith('conf.'))).toBe(false);
      expect(firstText(await client.callTool({ name: 'test_simple_text', arguments: {} }))).toBe('This is a simple text response for testing.');
      // The qualified name is the same tool.
      expect(firstText(await client.callTool({ name: 'conf.test_simple_text', arguments: {} }))).toBe('This is a simple text response for testing.');
      const allowed = () =>
        readFileSync(join(env.stateDir, 'audit.log'), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { tool: string; decision: string })
          .filter((l) => l.tool === 'conf.test_simple_text' && l.decision === 'allow');
      await until('both calls in the audit log under the qualified name', () => allowed().length === 2);

      expect((await client.listResources()).resources.map((r) => r.uri)).toContain('test://static-text');
      expect((await client.readResource({ uri: 'test://static-text' })).contents[0]).toMatchObject({ uri: 'test://static-text' });
      expect((await client.listPrompts()).prompts.map((p) => p.name)).toContain('test_simple_prompt');
      expect((await client.getPrompt({ name: 'test_simple_prompt' })).messages).toHaveLength(1);
    } finally {
      await client.close();
    }
  });
});

describe('two servers under their own names, claiming the same names', () => {
  let env: PolicyEnv;
  let serve: ServeProcess;

  beforeAll(async () => {
    ({ env, serve } = await serveWith({ one: fixture('upstream'), two: fixture('upstream') }));
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    env?.remove();
  });

  it('serves neither under the contested name, logs the shadowing, and keeps the qualified names', async () => {
    const { client } = await surfaceClient(serve.url, KEY_A, {});
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['capframe.request_token']);
      expect((await client.listPrompts()).prompts).toEqual([]);
      expect((await client.listResources()).resources).toEqual([]);
      const denied = await client.callTool({ name: 'test_simple_text', arguments: {} });
      expect(firstText(denied)).toMatch(/^DENIED no_rule/);
      expect(firstText(await client.callTool({ name: 'two.test_simple_text', arguments: {} }))).toBe('This is a simple text response for testing.');
      await expect(client.readResource({ uri: 'test://static-text' })).rejects.toThrow(/DENIED no_rule/);
      expect(serve.stderr()).toMatch(/name withheld: more than one server claims it \(shadowing\).*"name":"test_simple_text".*"servers":\["one","two"\]/);
    } finally {
      await client.close();
    }
  });
});
