/**
 * An MCP client of the SDK's next generation (`@modelcontextprotocol/client` 2.x) through
 * serve: in its default negotiation (`legacy`) and in `auto` (whose `server/discover`
 * probe serve refuses, so it falls back to 2025-11-25), it lists and calls tools, reads
 * resources and gets prompts. A client pinned to 2026-07-28 cannot connect: serve does not
 * speak that revision yet (docs/mcp-surface.md says what is missing).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KEY_A, startSurface, type SurfaceEnv } from '../surface-helpers.js';

describe('a v2 SDK client through serve', () => {
  let surface: SurfaceEnv;

  beforeAll(async () => {
    surface = await startSurface({ upstream: 'stdio', rules: [{ tool: 'conf.*' }, { resource: 'conf:test://static-text' }, { prompt: 'conf.test_simple_prompt' }] });
  }, 60_000);

  afterAll(async () => {
    await surface?.stop();
  });

  const connect = async (mode: 'legacy' | 'auto' | { pin: string }) => {
    const client = new Client({ name: 'v2-test', version: '1.0.0' }, { versionNegotiation: { mode } });
    await client.connect(new StreamableHTTPClientTransport(new URL(surface.serve.url), { requestInit: { headers: { authorization: `Bearer ${KEY_A}` } } }));
    return client;
  };

  it.each(['legacy', 'auto'] as const)('lists and calls a tool, reads a resource and gets a prompt (%s negotiation)', async (mode) => {
    const client = await connect(mode);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toContain('conf.test_simple_text');
      const result = await client.callTool({ name: 'conf.test_simple_text', arguments: {} });
      expect(result.content).toEqual([{ type: 'text', text: 'This is a simple text response for testing.' }]);
      const denied = await client.callTool({ name: 'conf.nope', arguments: {} });
      expect(denied.isError).toBe(true);
      expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['conf:test://static-text']);
      expect((await client.readResource({ uri: 'conf:test://static-text' })).contents).toHaveLength(1);
      expect((await client.getPrompt({ name: 'conf.test_simple_prompt' })).messages).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('cannot connect pinned to 2026-07-28', async () => {
    await expect(connect({ pin: '2026-07-28' })).rejects.toThrow();
  });
});
