/**
 * Which `tools/call`s the HTTP route answers itself as plain JSON (the hot path) and which
 * go the SDK's SSE way, because something must come back to the client while they run:
 * a progress token, a log level the session set, or an upstream that may send a request
 * the client declared it can receive. A plain call can be cancelled too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KEY_A, startSurface, until, type SurfaceEnv } from '../proxy/surface-helpers.js';
import { INITIALIZE, raw } from './raw.js';

const call = (id: number, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta !== undefined && { _meta: meta }) },
});

/** A session opened by hand, declaring `capabilities`. */
async function open(base: string, capabilities: Record<string, unknown>): Promise<string> {
  const init = await raw(base, { key: KEY_A, body: { ...INITIALIZE, params: { ...INITIALIZE.params, capabilities } } });
  const id = init.headers['mcp-session-id'] as string;
  await raw(base, { key: KEY_A, session: id, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  return id;
}

describe('the tools/call fast path', () => {
  let surface: SurfaceEnv;
  let base: string;

  beforeAll(async () => {
    surface = await startSurface({ upstream: 'http', server: { relay: { sampling: 'allow' } }, rules: [{ tool: 'conf.*' }] });
    base = surface.serve.origin;
  }, 60_000);

  afterAll(async () => {
    await surface?.stop();
  });

  it('answers a plain call as JSON, and a call with a progress token as SSE carrying the progress', async () => {
    const session = await open(base, {});
    const plain = await raw(base, { key: KEY_A, session, body: call(1, 'conf.test_simple_text') });
    expect(plain.headers['content-type']).toMatch(/^application\/json/);
    expect(plain.messages).toEqual([{ jsonrpc: '2.0', id: 1, result: expect.objectContaining({ content: [{ type: 'text', text: 'This is a simple text response for testing.' }] }) }]);

    const progress = await raw(base, { key: KEY_A, session, body: call(2, 'conf.test_tool_with_progress', {}, { progressToken: 'p-1' }) });
    expect(progress.headers['content-type']).toMatch(/^text\/event-stream/);
    const notes = progress.messages.filter((m) => (m as { method?: string }).method === 'notifications/progress') as { params: { progressToken: string; progress: number } }[];
    expect(notes.map((n) => [n.params.progressToken, n.params.progress])).toEqual([
      ['p-1', 0],
      ['p-1', 50],
      ['p-1', 100],
    ]);
  });

  it('streams once the session set a log level', async () => {
    const session = await open(base, {});
    await raw(base, { key: KEY_A, session, body: { jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'info' } } });
    const answer = await raw(base, { key: KEY_A, session, body: call(2, 'conf.test_tool_with_logging') });
    expect(answer.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(answer.messages.filter((m) => (m as { method?: string }).method === 'notifications/message')).toHaveLength(3);
  });

  it('streams for a client that can receive what the server relays, and stays plain for one that cannot', async () => {
    const sampling = await open(base, { sampling: {} });
    expect((await raw(base, { key: KEY_A, session: sampling, body: call(1, 'conf.test_simple_text') })).headers['content-type']).toMatch(/^text\/event-stream/);
    // Roots are not relayed for this server (the default), so a client that only declares roots gets nothing while a call runs.
    const roots = await open(base, { roots: {} });
    expect((await raw(base, { key: KEY_A, session: roots, body: call(1, 'conf.test_simple_text') })).headers['content-type']).toMatch(/^application\/json/);
  });

  it('cancels a plain call on notifications/cancelled for its id', async () => {
    const session = await open(base, {});
    const before = surface.messages().filter((m) => m.method === 'fixture/cancelled').length;
    const slow = raw(base, { key: KEY_A, session, body: call(7, 'conf.test_slow', { ms: 25_000 }) });
    await until('the slow call to reach the fixture', () => surface.messages().some((m) => m.method === 'tools/call' && (m.params as { arguments?: { ms?: number } }).arguments?.ms === 25_000));
    const cancel = await raw(base, { key: KEY_A, session, body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'no longer needed' } } });
    expect(cancel.status).toBe(202);
    const answer = await slow;
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.stringify(answer.messages)).toMatch(/UPSTREAM_ERROR cancelled: the client cancelled the call after it was sent to upstream \\"conf\\"/);
    await until('the fixture to stop the call', () => surface.messages().filter((m) => m.method === 'fixture/cancelled').length > before);
  });
});
