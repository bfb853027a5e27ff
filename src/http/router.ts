/**
 * A small method + path table for the HTTP side of `capframe serve`. Each route family
 * lives in its own file under `routes/` and returns its routes; the server registers
 * each family with one line. The router owns what every route shares: the guard that
 * runs first, 404/405, 413 for oversized bodies and 500 that says nothing of internals.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Logger } from '../proxy/log.js';
import { BodyTooLarge, discardBody, sendJson } from './body.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface Route {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
  /** Exact path, without query string. */
  path: string;
  handler: Handler;
  /**
   * Open until the client leaves (an SSE stream), so not in-flight work that a
   * shutdown must wait for.
   */
  longLived?: boolean;
}

export interface RouterOptions {
  /** Runs before anything else on every request, known route or not; true when it answered. */
  guard?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Counts a request as in flight until it settles (SIGTERM drains them). */
  track: (work: Promise<unknown>) => void;
  log: Logger;
  /** The body limit routes read with, named in the 413 answer. */
  maxBodyBytes: number;
}

/**
 * A request listener for `routes`.
 *
 * @example
 * const listener = createRouter([{ method: 'GET', path: '/healthz', handler: (req, res) => sendJson(res, 200, { status: 'ok' }) }],
 *   { track: () => undefined, log, maxBodyBytes: 1 << 20 });
 * createServer(listener).listen(8080);
 */
export function createRouter(routes: Iterable<Route>, options: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const table = new Map<string, Map<string, Route>>();
  for (const route of routes) {
    let methods = table.get(route.path);
    if (methods === undefined) table.set(route.path, (methods = new Map()));
    if (methods.has(route.method)) throw new Error(`two routes for ${route.method} ${route.path}`);
    methods.set(route.method, route);
  }
  const { guard, track, log, maxBodyBytes } = options;

  async function run(route: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await route.handler(req, res);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        // No `connection: close`: see discardBody.
        sendJson(res, 413, { error: `request body larger than ${maxBodyBytes} bytes` });
        discardBody(req);
        return;
      }
      log.error('http handler error', { method: route.method, path: route.path, error: (error as Error).message });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.end();
    }
  }

  return (req, res) => {
    if (guard !== undefined && guard(req, res)) {
      discardBody(req);
      return;
    }
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const methods = table.get(path);
    const route = methods?.get(req.method ?? '');
    if (route === undefined) {
      if (methods === undefined) sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
      else {
        const allowed = [...methods.keys()].join(', ');
        sendJson(res, 405, { error: `${req.method} is not allowed on ${path}; use ${allowed}` }, { allow: allowed });
      }
      discardBody(req);
      return;
    }
    const work = run(route, req, res);
    if (route.longLived !== true) track(work);
  };
}
