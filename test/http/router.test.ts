/** The router on a real node:http server: the guard first, 404/405, 413, 500 without internals, tracking. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { readBody, sendJson } from '../../src/http/body.js';
import { createRouter, type Route } from '../../src/http/router.js';
import type { Logger } from '../../src/proxy/log.js';
import { raw } from './raw.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function recordingLog(): Logger & { lines: { msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  const add = (msg: string, fields?: Record<string, unknown>) => void lines.push({ msg, ...(fields !== undefined && { fields }) });
  return { lines, debug: add, info: add, warn: add, error: add };
}

async function serve(routes: Route[], options: { guard?: Parameters<typeof createRouter>[1]['guard']; track?: (work: Promise<unknown>) => void; log?: Logger } = {}): Promise<string> {
  const listener = createRouter(routes, { track: options.track ?? (() => undefined), log: options.log ?? recordingLog(), maxBodyBytes: 64, ...(options.guard && { guard: options.guard }) });
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const echo: Route = {
  method: 'POST',
  path: '/echo',
  handler: async (req, res) => sendJson(res, 200, { got: (await readBody(req, 64)).toString('utf8') }),
};

describe('createRouter', () => {
  it('routes by method and exact path, ignoring the query; 404 for an unknown path, 405 with Allow for a known one', async () => {
    const base = await serve([echo, { method: 'GET', path: '/echo', handler: (_req, res) => sendJson(res, 200, { get: true }) }]);
    expect((await raw(base, { path: '/echo?x=1', body: 'hi' })).messages).toEqual([{ got: '"hi"' }]);
    expect((await raw(base, { path: '/echo' })).messages).toEqual([{ get: true }]);
    expect(await raw(base, { path: '/nope' })).toMatchObject({ status: 404, messages: [{ error: 'no route for GET /nope' }] });
    expect(await raw(base, { path: '/echo/', body: 1 })).toMatchObject({ status: 404 });
    const del = await raw(base, { path: '/echo', method: 'DELETE' });
    expect(del).toMatchObject({ status: 405, messages: [{ error: 'DELETE is not allowed on /echo; use POST, GET' }] });
    expect(del.headers.allow).toBe('POST, GET');
  });

  it('refuses two routes for the same method and path', () => {
    expect(() => createRouter([echo, echo], { track: () => undefined, log: recordingLog(), maxBodyBytes: 1 })).toThrow('two routes for POST /echo');
  });

  it('answers 413 for a body over the limit and keeps serving on the same connection', async () => {
    const base = await serve([echo]);
    const big = await raw(base, { path: '/echo', body: 'x'.repeat(100) });
    expect(big).toMatchObject({ status: 413, messages: [{ error: 'request body larger than 64 bytes' }] });
    expect((await raw(base, { path: '/echo', body: 'ok' })).status).toBe(200);
  });

  it('answers 500 without the error text, and logs it', async () => {
    const log = recordingLog();
    const base = await serve([{ method: 'GET', path: '/boom', handler: () => Promise.reject(new Error('ENOENT /etc/secret-path')) }], { log });
    const answer = await raw(base, { path: '/boom' });
    expect(answer).toMatchObject({ status: 500, messages: [{ error: 'internal error' }] });
    expect(answer.text).not.toContain('secret');
    expect(log.lines).toContainEqual({ msg: 'http handler error', fields: { method: 'GET', path: '/boom', error: 'ENOENT /etc/secret-path' } });
  });

  it('runs the guard before routing, on every path, known or not', async () => {
    let handled = 0;
    const base = await serve([{ method: 'GET', path: '/ok', handler: (_req, res) => void (handled++, sendJson(res, 200, {})) }], {
      guard: (req, res) => {
        if (req.headers['x-refuse'] === undefined) return false;
        sendJson(res, 403, { error: 'refused' });
        return true;
      },
    });
    for (const path of ['/ok', '/unknown']) expect((await raw(base, { path, headers: { 'x-refuse': '1' } })).status).toBe(403);
    expect(handled).toBe(0);
    expect((await raw(base, { path: '/ok' })).status).toBe(200);
    expect(handled).toBe(1);
  });

  it('tracks requests as in-flight work, except long-lived ones', async () => {
    const tracked: Promise<unknown>[] = [];
    const base = await serve(
      [
        { method: 'GET', path: '/short', handler: (_req, res) => sendJson(res, 200, {}) },
        { method: 'GET', path: '/stream', handler: (_req, res) => sendJson(res, 200, {}), longLived: true },
      ],
      { track: (work) => void tracked.push(work) },
    );
    await raw(base, { path: '/stream' });
    expect(tracked).toHaveLength(0);
    await raw(base, { path: '/short' });
    expect(tracked).toHaveLength(1);
  });
});
