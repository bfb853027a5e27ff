/**
 * A request to a Streamable HTTP upstream against a hand-written server: events without
 * data (SEP-1699 priming events) are skipped, a stream the upstream closes after an event
 * id is resumed with Last-Event-ID, the upstream's own requests on the stream are answered
 * and posted back, progress is matched by the request's own token, and cancelling posts
 * notifications/cancelled.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import type { HttpSession } from '../../src/mcp/connect.js';
import { requestOverHttp } from '../../src/proxy/http-upstream-request.js';

interface Seen {
  method: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server?.closeAllConnections();
  server = undefined;
});

/** A server that hands each request (with its parsed body) to `handle`; resolves with a session for it. */
async function upstream(handle: (seen: Seen, res: ServerResponse, all: Seen[]) => void): Promise<{ session: HttpSession; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString('utf8')));
    req.on('end', () => {
      const entry = { method: req.method ?? '', headers: req.headers, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
      seen.push(entry);
      handle(entry, res, seen);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { session: { url: new URL(`http://127.0.0.1:${port}/mcp`), headers: {}, sessionId: () => 'sess-1', protocolVersion: () => '2025-11-25' }, seen };
}

const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });
const event = (res: ServerResponse, data: unknown, id?: string) => res.write(`${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
const options = { timeoutMs: 10_000, maxResultBytes: 1 << 20 };

describe('requestOverHttp', () => {
  it('skips a priming event (an id and a retry, no data) and reads the answer after it', async () => {
    const { session } = await upstream(({ body }, res) => {
      sse(res);
      res.write('id: ev-0\nretry: 100\ndata: \n\n');
      event(res, { jsonrpc: '2.0', id: body!.id, result: { content: [{ type: 'text', text: 'ok' }] } }, 'ev-1');
      res.end();
    });
    expect(await requestOverHttp(session, 'tools/call', { name: 't', arguments: {} }, options)).toEqual({ content: [{ type: 'text', text: 'ok' }] });
  });

  it('resumes a stream the upstream closed after an event id, with Last-Event-ID', async () => {
    let id: unknown;
    const { session, seen } = await upstream(({ method, headers, body }, res) => {
      if (method === 'POST') {
        id = body!.id;
        sse(res);
        res.write('id: ev-7\nretry: 50\ndata: \n\n');
        res.end(); // closed before the answer (SEP-1699 polling)
        return;
      }
      expect(headers['last-event-id']).toBe('ev-7');
      expect(headers['mcp-session-id']).toBe('sess-1');
      sse(res);
      event(res, { jsonrpc: '2.0', id, result: { resumed: true } }, 'ev-8');
      res.end();
    });
    expect(await requestOverHttp(session, 'resources/read', { uri: 'x://y' }, options)).toEqual({ resumed: true });
    expect(seen.map((s) => s.method)).toEqual(['POST', 'GET']);
  });

  it("answers the upstream's own request on the stream and posts the answer back; matches progress by the request's token", async () => {
    const progress: unknown[] = [];
    const { session, seen } = await upstream(({ method, body }, res, all) => {
      if (method === 'POST' && body?.method === 'tools/call') {
        sse(res);
        const token = (body.params as { _meta: { progressToken: string } })._meta.progressToken;
        event(res, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'someone-else', progress: 1 } });
        event(res, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 2, total: 3 } });
        event(res, { jsonrpc: '2.0', id: 'up-1', method: 'sampling/createMessage', params: { maxTokens: 5, messages: [] } });
        // The answer follows once the proxy posted its answer to up-1.
        const wait = setInterval(() => {
          if (all.some((s) => s.body?.id === 'up-1')) {
            clearInterval(wait);
            event(res, { jsonrpc: '2.0', id: body.id, result: { content: [] } });
            res.end();
          }
        }, 10);
        return;
      }
      res.writeHead(202).end(); // the posted answer
    });
    const result = await requestOverHttp(session, 'tools/call', { name: 't', arguments: {} }, {
      ...options,
      handlers: {
        onProgress: (p) => void progress.push(p),
        onRequest: async (m) => ({ result: { echoed: m.method } }),
      },
    });
    expect(result).toEqual({ content: [] });
    expect(progress).toEqual([{ progressToken: expect.stringMatching(/^capframe-/), progress: 2, total: 3 }]);
    expect(seen.find((s) => s.body?.id === 'up-1')?.body).toEqual({ jsonrpc: '2.0', id: 'up-1', result: { echoed: 'sampling/createMessage' } });
  });

  it('refuses the upstream\'s request when the call has no handler for it', async () => {
    const { session, seen } = await upstream(({ method, body }, res, all) => {
      if (method === 'POST' && body?.method === 'tools/call') {
        sse(res);
        event(res, { jsonrpc: '2.0', id: 9, method: 'roots/list' });
        const wait = setInterval(() => {
          if (all.some((s) => s.body?.id === 9)) {
            clearInterval(wait);
            event(res, { jsonrpc: '2.0', id: body.id, result: { content: [] } });
            res.end();
          }
        }, 10);
        return;
      }
      res.writeHead(202).end();
    });
    await requestOverHttp(session, 'tools/call', { name: 't' }, options);
    expect(seen.find((s) => s.body?.id === 9)?.body).toMatchObject({ error: { code: -32601 } });
  });

  it('posts notifications/cancelled and fails with "cancelled" when the caller aborts a sent request', async () => {
    const { session, seen } = await upstream(({ method, body }, res) => {
      if (body?.method === 'tools/call') {
        sse(res);
        res.write(': waiting\n\n');
        return; // never answers
      }
      res.writeHead(202).end();
      void method;
    });
    const controller = new AbortController();
    const pending = requestOverHttp(session, 'tools/call', { name: 'slow' }, { ...options, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 200));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'cancelled' });
    const sent = seen.find((s) => s.body?.method === 'tools/call')!.body!.id;
    for (let i = 0; i < 100 && !seen.some((s) => s.body?.method === 'notifications/cancelled'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen.find((s) => s.body?.method === 'notifications/cancelled')?.body).toMatchObject({ params: { requestId: sent } });
  });
});
