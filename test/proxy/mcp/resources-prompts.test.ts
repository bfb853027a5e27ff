/**
 * Acceptance 2 of issue 12: with a restrictive policy, a resource or prompt the agent may
 * not see is absent from its lists and refused on read/get, the denial is in the audit
 * log, and the upstream never receives the read or get (the fixture's MESSAGE_LOG). Also:
 * resources are named `<server>:<uri>`, decided like calls (resource tokens, auto_mint,
 * constraints on `{uri}`, URIs judged only in normal form), and prompt arguments meet the
 * rule's constraints.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MAX_SUBSCRIPTIONS_PER_SESSION } from '../../../src/proxy/mcp/resources.js';
import { mint } from '../../../src/token/mint.js';
import { connectHttp } from '../e2e-helpers.js';
import { KEY_A, KEY_B, startSurface, surfaceClient, until, type SurfaceEnv } from '../surface-helpers.js';

const DENIED = -32003;

/** The JSON-RPC error a client request failed with (its message without the SDK's `MCP error <code>:` prefix). */
async function failure(work: Promise<unknown>): Promise<{ code: number; message: string; data: unknown }> {
  try {
    await work;
  } catch (error) {
    if (error instanceof McpError) return { code: error.code, message: error.message.replace(/^MCP error -?\d+: /, ''), data: error.data };
    throw error;
  }
  throw new Error('expected the request to fail');
}

describe('resources and prompts under a restrictive policy', () => {
  let surface: SurfaceEnv;
  let a: Awaited<ReturnType<typeof surfaceClient>>;
  let b: Awaited<ReturnType<typeof surfaceClient>>;

  beforeAll(async () => {
    surface = await startSurface({
      upstream: 'http',
      rules: [
        { tool: 'conf.*' },
        { resource: 'conf:test://static-text', agents: ['a'] },
        { resource: 'conf:test://template/*' },
        { resource: 'conf:test://template/secret/*', effect: 'deny' },
        { prompt: 'conf.test_simple_prompt' },
        { prompt: 'conf.test_prompt_with_arguments', agents: ['a'], when: [{ arg: 'arg1', op: 'in', value: ['paris', 'park'] }] },
      ],
    });
    a = await surfaceClient(surface.serve.url, KEY_A);
    b = await surfaceClient(surface.serve.url, KEY_B);
  }, 60_000);

  afterAll(async () => {
    await a?.client.close();
    await b?.client.close();
    await surface?.stop();
  });

  const upstreamGot = (method: string, match: (params: Record<string, unknown>) => boolean) => surface.messages().some((m) => m.method === method && m.params !== null && match(m.params));

  it('lists only what each agent may read, under <server>:<uri>', async () => {
    expect((await a.client.listResources()).resources.map((r) => r.uri)).toEqual(['conf:test://static-text']);
    expect((await b.client.listResources()).resources).toEqual([]);
    for (const c of [a, b]) {
      expect((await c.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual(['conf:test://template/{id}/data']);
    }
  });

  it('reads an allowed resource, under the proxy-owned _meta and the name the client used', async () => {
    const result = await a.client.readResource({ uri: 'conf:test://static-text' });
    expect(result.contents).toEqual([{ uri: 'conf:test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' }]);
    expect(result._meta?.['capframe/decision']).toMatchObject({ allowed: true, code: 'ok', token: expect.stringMatching(/^tok_/) });
    const line = await until('the allow line', () => surface.audit().find((l) => l.tool === 'conf:test://static-text' && l.decision === 'allow'));
    expect(line).toMatchObject({ agent: 'a', code: 'ok' });
    expect(upstreamGot('resources/read', (p) => p.uri === 'test://static-text')).toBe(true);
  });

  it('refuses a resource no rule allows: absent from the list, denied, audited, never sent upstream', async () => {
    const error = await failure(a.client.readResource({ uri: 'conf:test://static-binary' }));
    expect(error.code).toBe(DENIED);
    expect(error.message).toMatch(/^DENIED no_rule: no allow rule grants "conf:test:\/\/static-binary"/);
    expect(error.data).toEqual({ 'capframe/decision': { allowed: false, code: 'no_rule', reason: expect.any(String) } });
    await until('the deny line', () => surface.audit().find((l) => l.tool === 'conf:test://static-binary' && l.decision === 'deny' && l.code === 'no_rule' && l.agent === 'a'));
    expect(upstreamGot('resources/read', (p) => p.uri === 'test://static-binary')).toBe(false);
  });

  it("refuses another agent's resource, and a deny rule inside an allowed template", async () => {
    expect((await failure(b.client.readResource({ uri: 'conf:test://static-text' }))).message).toMatch(/DENIED agent_not_allowed/);
    expect((await failure(a.client.readResource({ uri: 'conf:test://template/secret/data' }))).message).toMatch(/DENIED denied_by_rule/);
    const ok = await b.client.readResource({ uri: 'conf:test://template/42/data' });
    expect(JSON.parse(String((ok.contents[0] as { text: string }).text))).toMatchObject({ id: '42' });
    expect(upstreamGot('resources/read', (p) => p.uri === 'test://template/secret/data')).toBe(false);
    await until('the deny lines', () => surface.audit().filter((l) => l.decision === 'deny' && (l.code === 'agent_not_allowed' || l.code === 'denied_by_rule')).length >= 2);
  });

  it('never judges or forwards a URI out of normal form, nor one of an unknown server', async () => {
    for (const uri of ['conf:test://template/x/../secret/data', 'conf:test://template/%73ecret/data', 'conf:TEST://template/1/data']) {
      const error = await failure(a.client.readResource({ uri }));
      expect(error.message, uri).toMatch(/^DENIED constraint_failed: resource "conf:.*" is refused: /);
    }
    expect((await failure(a.client.readResource({ uri: 'nope:test://static-text' }))).message).toMatch(/^DENIED no_rule: resources\/read: no upstream serves "nope:test:\/\/static-text"/);
    expect((await failure(a.client.readResource({ uri: 'test://static-text' }))).message).toMatch(/^DENIED no_rule/);
    expect(upstreamGot('resources/read', (p) => String(p.uri).includes('..') || String(p.uri).includes('%') || String(p.uri).startsWith('TEST'))).toBe(false);
  });

  it('reads with a resource token, never with a tool token', async () => {
    // Not "conf:test://template/*": a pattern token must not reach the denied template/secret/*.
    const denied = await a.client.callTool({ name: 'capframe.request_token', arguments: { tool: 'conf:test://template/*' } });
    expect(denied.content).toEqual([{ type: 'text', text: expect.stringMatching(/^DENIED denied_by_rule/) }]);
    const issued = await a.client.callTool({ name: 'capframe.request_token', arguments: { tool: 'conf:test://template/7/*' } });
    const resourceToken = (issued.structuredContent as { token: string }).token;
    const ok = await a.client.readResource({ uri: 'conf:test://template/7/data', _meta: { 'capframe/token': resourceToken } });
    expect(ok._meta?.['capframe/decision']).toMatchObject({ allowed: true, token: (issued.structuredContent as { id: string }).id });

    const tool = await a.client.callTool({ name: 'capframe.request_token', arguments: { tool: 'conf.*' } });
    const toolToken = (tool.structuredContent as { token: string }).token;
    const error = await failure(a.client.readResource({ uri: 'conf:test://template/8/data', _meta: { 'capframe/token': toolToken } }));
    // (A "*" tool token passes the verifier's glob, then the resource rules refuse it: test/policy/resources-prompts.test.ts.)
    expect(error.message).toMatch(/^DENIED tool_mismatch: token tok_\S+ is for "conf\.\*", not "conf:test:\/\/template\/8\/data"/);
    expect(upstreamGot('resources/read', (p) => p.uri === 'test://template/8/data')).toBe(false);
  });

  it('bounds the subscriptions one session may hold', async () => {
    const c = await surfaceClient(surface.serve.url, KEY_B);
    try {
      for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_SESSION; i++) await c.client.subscribeResource({ uri: `conf:test://template/${i}/data` });
      await expect(c.client.subscribeResource({ uri: 'conf:test://template/over/data' })).rejects.toThrow(/already holds 256 resource subscriptions/);
      await c.client.unsubscribeResource({ uri: 'conf:test://template/0/data' });
      await c.client.subscribeResource({ uri: 'conf:test://template/over/data' });
    } finally {
      await c.client.close();
    }
  }, 120_000);

  it('bounds the subscriptions of concurrent subscribes too, and subscribes one URI once', async () => {
    const c = await surfaceClient(surface.serve.url, KEY_B);
    const uri = (i: number) => `conf:test://template/c${i}/data`;
    try {
      // Sent together: each is checked against the bound before any has been answered upstream.
      const settled = await Promise.allSettled(Array.from({ length: MAX_SUBSCRIPTIONS_PER_SESSION + 20 }, (_, i) => c.client.subscribeResource({ uri: uri(i) })));
      expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(MAX_SUBSCRIPTIONS_PER_SESSION);
      expect(settled.filter((r) => r.status === 'rejected').every((r) => /already holds 256 resource subscriptions/.test(String((r as PromiseRejectedResult).reason)))).toBe(true);
      const subscribedUpstream = () => surface.messages().filter((m) => m.method === 'resources/subscribe' && /^test:\/\/template\/c\d+\/data$/.test(String(m.params?.uri))).length;
      expect(subscribedUpstream()).toBe(MAX_SUBSCRIPTIONS_PER_SESSION);
      // The same URI twice at once is one subscription: one unsubscribe withdraws it upstream.
      await c.client.unsubscribeResource({ uri: uri(0) });
      await c.client.unsubscribeResource({ uri: uri(1) });
      await Promise.all([c.client.subscribeResource({ uri: uri(1000) }), c.client.subscribeResource({ uri: uri(1000) })]);
      await c.client.unsubscribeResource({ uri: uri(1000) });
      await until('the upstream unsubscribe', () => surface.messages().some((m) => m.method === 'resources/unsubscribe' && m.params?.uri === 'test://template/c1000/data'));
    } finally {
      await c.client.close();
    }
  }, 120_000);

  it('lists only the prompts each agent may get', async () => {
    expect((await a.client.listPrompts()).prompts.map((p) => p.name).sort()).toEqual(['conf.test_prompt_with_arguments', 'conf.test_simple_prompt']);
    expect((await b.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['conf.test_simple_prompt']);
  });

  it('gets an allowed prompt and refuses the rest, audited, never sent upstream', async () => {
    const simple = await b.client.getPrompt({ name: 'conf.test_simple_prompt' });
    expect(simple.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }]);
    expect(simple._meta?.['capframe/decision']).toMatchObject({ allowed: true, code: 'ok' });

    const image = await failure(a.client.getPrompt({ name: 'conf.test_prompt_with_image' }));
    expect(image.code).toBe(DENIED);
    expect(image.message).toMatch(/^DENIED no_rule: prompt: no rule allows "conf\.test_prompt_with_image"/);
    expect((await failure(b.client.getPrompt({ name: 'conf.test_prompt_with_arguments', arguments: { arg1: 'paris', arg2: 'x' } }))).message).toMatch(/^DENIED agent_not_allowed/);
    expect((await failure(a.client.getPrompt({ name: 'conf.test_prompt_with_arguments', arguments: { arg1: 'hacker', arg2: 'x' } }))).message).toMatch(/^DENIED constraint_failed: prompt: rule at line \d+: arg1/);
    const ok = await a.client.getPrompt({ name: 'conf.test_prompt_with_arguments', arguments: { arg1: 'park', arg2: 'x' } });
    expect(JSON.stringify(ok.messages)).toContain("arg1='park'");

    await until('the prompt deny lines', () => surface.audit().filter((l) => l.decision === 'deny' && l.reason.startsWith('prompt: ')).length >= 3);
    expect(upstreamGot('prompts/get', (p) => p.name === 'test_prompt_with_image')).toBe(false);
    expect(upstreamGot('prompts/get', (p) => (p.arguments as Record<string, unknown> | undefined)?.arg1 === 'hacker')).toBe(false);
  });

  it('completes arguments only of prompts and templates the caller can see', async () => {
    const visible = await a.client.complete({ ref: { type: 'ref/prompt', name: 'conf.test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'pa' } });
    expect(visible.completion.values).toEqual(['paris', 'park', 'party']);
    const template = await b.client.complete({ ref: { type: 'ref/resource', uri: 'conf:test://template/{id}/data' }, argument: { name: 'id', value: '4' } });
    expect(template.completion.values).toEqual(['42']);
    expect((await failure(b.client.complete({ ref: { type: 'ref/prompt', name: 'conf.test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'pa' } }))).message).toMatch(
      /no prompt "conf\.test_prompt_with_arguments"/,
    );
  });
});

describe('resources in capability mode (no agents): the token alone authorizes a read', () => {
  let surface: SurfaceEnv;

  beforeAll(async () => {
    surface = await startSurface({ upstream: 'stdio', rules: [{ resource: 'conf:test://static-*' }], noAgents: true });
  }, 60_000);

  afterAll(async () => {
    await surface?.stop();
  });

  it('denies a read without a token and allows one with a resource token, on either backend', async () => {
    const client = await connectHttp(surface.serve.url);
    try {
      expect((await failure(client.readResource({ uri: 'conf:test://static-text' }))).message).toMatch(/^DENIED missing_token/);
      const { token } = mint({ key: surface.env.issuerKey(), tool: 'conf:test://static-*', ttl: 60 });
      const ok = await client.readResource({ uri: 'conf:test://static-text', _meta: { 'capframe/token': token } });
      expect(ok.contents[0]).toMatchObject({ uri: 'conf:test://static-text', text: 'This is the content of the static text resource.' });
      const other = mint({ key: surface.env.issuerKey(), tool: 'conf:test://static-binary', ttl: 60 });
      expect((await failure(client.readResource({ uri: 'conf:test://static-text', _meta: { 'capframe/token': other.token } }))).message).toMatch(/^DENIED tool_mismatch/);
    } finally {
      await client.close();
    }
  });
});
