/**
 * The HTTP listener of `capframe serve`: the DNS-rebinding guard on every request, then
 * the route families below. A new family is one file under `routes/` and one line in
 * ROUTE_FAMILIES.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Runtime } from '../proxy/runtime.js';
import { sendJson } from './body.js';
import type { HttpContext, HttpOptions, RouteFamily } from './context.js';
import { createOriginGuard, isLoopbackAddress } from './origin.js';
import { createRouter } from './router.js';
import { consoleRoutes } from './routes/console.js';
import { healthRoutes } from './routes/health.js';
import { mcpRoutes } from './routes/mcp.js';
import { metricsRoutes } from './routes/metrics.js';
import { revocationRoutes } from './routes/revocations.js';
import { tokenRoutes } from './routes/tokens.js';

export type { HttpOptions } from './context.js';

const ROUTE_FAMILIES: readonly RouteFamily[] = [
  mcpRoutes, // POST|GET|DELETE / and /mcp
  healthRoutes, // GET /healthz
  metricsRoutes, // GET /metrics
  tokenRoutes, // POST /v1/tokens
  revocationRoutes, // POST /v1/revocations
  consoleRoutes, // /console, /console/api/*, /console/assets/* (with --console)
];

/**
 * The HTTP server for a runtime (not yet listening).
 *
 * @example
 * const http = createHttpServer(rt, { maxBodyBytes: 1 << 20, jsonResponse: false, sessions: DEFAULT_SESSION_LIMITS, allowedOrigins: [], allowedHosts: [] });
 * http.listen(8080, '127.0.0.1');
 */
export function createHttpServer(rt: Runtime, options: HttpOptions): HttpServer {
  const cleanups: (() => void)[] = [];
  const ctx: HttpContext = { rt, options, onClose: (cleanup) => cleanups.push(cleanup) };
  const routes = ROUTE_FAMILIES.flatMap((family) => family(ctx));

  // Loopback until the listener says otherwise: the strict reading until then.
  let loopback = true;
  const refusal = createOriginGuard({ loopback: () => loopback, policy: rt.policy, origins: options.allowedOrigins, hosts: options.allowedHosts });
  const listener = createRouter(routes, {
    track: rt.track,
    log: rt.log,
    maxBodyBytes: options.maxBodyBytes,
    guard: (req, res) => {
      const reason = refusal(req);
      if (reason === undefined) return false;
      rt.metrics.httpRefused.labels(reason.startsWith('Origin') ? 'origin' : 'host').inc();
      rt.log.debug('request refused: DNS-rebinding guard', { reason });
      sendJson(res, 403, { error: `forbidden: ${reason}` });
      return true;
    },
  });

  const http = createServer(listener);
  http.on('listening', () => {
    const address = http.address() as AddressInfo | string | null;
    loopback = typeof address === 'object' && address !== null && isLoopbackAddress(address.address);
  });
  http.on('close', () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  return http;
}
