/**
 * What reaches a session outside the answers to its requests, through serve with the SDK
 * client, over HTTP and stdio upstreams — and that the other session sees none of it:
 * progress under the client's own token, cancellation of the upstream request (only of
 * one's own requests), log messages filtered by each session's own level, list_changed
 * when a session's visible list changed, and resource updates for the sessions
 * subscribed.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

import { firstText, KEY_A, KEY_B, startSurface, surfaceClient, until, type Recorder, type SurfaceEnv, type UpstreamKind } from '../surface-helpers.js';

describe.each<UpstreamKind>(['http', 'stdio'])('notifications through serve, %s upstream', (upstream) => {
  let surface: SurfaceEnv;
  let a: { client: Client; seen: Recorder };
  let b: { client: Client; seen: Recorder };
  const errors = { a: [] as string[], b: [] as string[] };

  beforeAll(async () => {
    surface = await startSurface({
      upstream,
      rules: [{ tool: 'conf.*' }, { resource: 'conf:test://watched-resource' }, { prompt: 'conf.*', agents: ['a'] }],
    });
    a = await surfaceClient(surface.serve.url, KEY_A);
    b = await surfaceClient(surface.serve.url, KEY_B);
    a.client.onerror = (e) => void errors.a.push(e.message);
    b.client.onerror = (e) => void errors.b.push(e.message);
  }, 60_000);

  afterAll(async () => {
    await a?.client.close();
    await b?.client.close();
    await surface?.stop();
  });

  const messages = (method: string) => surface.messages().filter((m) => m.method === method);

  it("relays progress under the client's own token to that client only", async () => {
    const progressA: number[] = [];
    const progressB: number[] = [];
    const [ra, rb] = await Promise.all([
      a.client.request({ method: 'tools/call', params: { name: 'conf.test_tool_with_progress', arguments: {}, _meta: { progressToken: 'same-token' } } }, CallToolResultSchema, {
        onprogress: (p) => void progressA.push(p.progress),
      }),
      b.client.callTool({ name: 'conf.test_simple_text', arguments: {} }),
    ]);
    expect(firstText(ra)).toBe('Progress test completed.');
    expect(firstText(rb)).toBe('This is a simple text response for testing.');
    expect(progressA).toEqual([0, 50, 100]);
    expect(progressB).toEqual([]);
    // The upstream saw the proxy's own token, never the client's.
    const sent = messages('tools/call').find((m) => (m.params as { name?: string }).name === 'test_tool_with_progress');
    expect(JSON.stringify(sent?.params)).not.toContain('same-token');
    expect(errors.b.filter((e) => e.includes('progress'))).toEqual([]);
  });

  it('cancels the upstream request when the client cancels its call; another session cannot', async () => {
    const before = messages('fixture/cancelled').length;
    const controller = new AbortController();
    const call = a.client.callTool({ name: 'conf.test_slow', arguments: { ms: 25_000 } }, undefined, { signal: controller.signal, timeout: 60_000 });
    await until('the slow call to reach the fixture', () => messages('tools/call').some((m) => (m.params as { arguments?: { ms?: number } }).arguments?.ms === 25_000));
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    const cancelled = await until('the fixture to stop the call', () => messages('fixture/cancelled').slice(before)[0]);
    expect((cancelled.params as { afterMs: number }).afterMs).toBeLessThan(20_000);
    await until('the cancelled outcome in the audit log', () => surface.audit().find((l) => l.decision === 'outcome' && l.code === 'cancelled' && l.agent === 'a'));

    // B names the id of A's next call in its own notifications/cancelled: A's call runs on.
    const slow = a.client.callTool({ name: 'conf.test_slow', arguments: { ms: 1200 } });
    await until('the second slow call to reach the fixture', () => messages('tools/call').some((m) => (m.params as { arguments?: { ms?: number } }).arguments?.ms === 1200));
    for (let id = 0; id < 50; id++) await b.client.notification({ method: 'notifications/cancelled', params: { requestId: id, reason: 'not mine' } });
    expect(firstText(await slow)).toMatch(/^waited \d+ ms$/);
    expect(messages('fixture/cancelled').slice(before)).toHaveLength(1);
  });

  it("filters log messages by each session's own level; a session without a level gets none", async () => {
    await a.client.setLoggingLevel('info');
    await b.client.setLoggingLevel('error');
    const c = await surfaceClient(surface.serve.url, KEY_A);
    try {
      await a.client.callTool({ name: 'conf.test_tool_with_logging', arguments: {} });
      await until('three log messages for A', () => a.seen.logs.length >= 3);
      expect(a.seen.logs.map((l) => (l as { data: string }).data)).toEqual(['Tool execution started', 'Tool processing data', 'Tool execution completed']);
      await b.client.callTool({ name: 'conf.test_tool_with_logging', arguments: {} });
      await c.client.callTool({ name: 'conf.test_tool_with_logging', arguments: {} });
      // A positive control after B's and C's calls: A's next call's messages arrive, and B and C still have none.
      await a.client.callTool({ name: 'conf.test_tool_with_logging', arguments: {} });
      await until('six log messages for A', () => a.seen.logs.length >= 6);
      expect(a.seen.logs).toHaveLength(6);
      expect(b.seen.logs).toEqual([]);
      expect(c.seen.logs).toEqual([]);
      // The upstream was asked for the most verbose level any session set.
      expect(messages('logging/setLevel').map((m) => m.params?.level)).toContain('info');
      expect(messages('logging/setLevel').map((m) => m.params?.level)).not.toContain('error');
    } finally {
      await c.client.close();
    }
  });

  it('announces a list change to the sessions whose visible list changed, and only to them', async () => {
    expect((await a.client.listPrompts()).prompts.map((p) => p.name)).not.toContain('conf.test_dynamic_prompt');
    expect((await b.client.listPrompts()).prompts).toEqual([]);
    a.seen.listChanged.length = 0;
    b.seen.listChanged.length = 0;
    await b.client.callTool({ name: 'conf.test_trigger_list_changed', arguments: { kind: 'prompts' } });
    await until('A to hear that its prompts changed', () => a.seen.listChanged.includes('prompts'));
    expect((await a.client.listPrompts()).prompts.map((p) => p.name)).toContain('conf.test_dynamic_prompt');
    // A positive control for B: its tools do change.
    await b.client.listTools();
    await b.client.callTool({ name: 'conf.test_trigger_list_changed', arguments: { kind: 'tools' } });
    await until('B to hear that its tools changed', () => b.seen.listChanged.includes('tools'));
    expect(b.seen.listChanged).not.toContain('prompts');
    expect((await b.client.listTools()).tools.map((t) => t.name)).toContain('conf.test_dynamic_tool');
  });

  it("tells a session its prompts changed when a policy reload changes what it may see, and not the session it did not touch", async () => {
    expect((await b.client.listPrompts()).prompts).toEqual([]);
    await a.client.listPrompts();
    b.seen.listChanged.length = 0;
    a.seen.listChanged.length = 0;
    const doc = parse(readFileSync(surface.env.policyFile, 'utf8')) as { capframe: { rules: unknown[] } };
    doc.capframe.rules.push({ prompt: 'conf.test_simple_prompt', agents: ['b'] });
    writeFileSync(surface.env.policyFile, stringify(doc));
    await until('B to hear that its prompts changed', () => b.seen.listChanged.includes('prompts'));
    expect((await b.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['conf.test_simple_prompt']);
    expect(a.seen.listChanged).not.toContain('prompts');
  });

  it('sends a resource update to the subscribed session only, under the URI it subscribed with', async () => {
    await a.client.subscribeResource({ uri: 'conf:test://watched-resource' });
    await b.client.callTool({ name: 'conf.test_update_resource', arguments: {} });
    await until('A to hear of the update', () => a.seen.updated.length >= 1);
    expect(a.seen.updated).toEqual(['conf:test://watched-resource']);
    expect(b.seen.updated).toEqual([]);
    // A unsubscribes, B subscribes: the next update reaches B, and A hears no more.
    await a.client.unsubscribeResource({ uri: 'conf:test://watched-resource' });
    await b.client.subscribeResource({ uri: 'conf:test://watched-resource' });
    await a.client.callTool({ name: 'conf.test_update_resource', arguments: {} });
    await until('B to hear of the update', () => b.seen.updated.length >= 1);
    expect(a.seen.updated).toEqual(['conf:test://watched-resource']);
    // A resource the policy does not let B read cannot be subscribed to.
    await expect(b.client.subscribeResource({ uri: 'conf:test://static-text' })).rejects.toThrow(/DENIED no_rule/);
  });
});
