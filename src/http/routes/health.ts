/** `GET /healthz`: 200 `ok` while every part of the runtime is healthy, else 503 `degraded`. */
import { sendJson } from '../body.js';
import type { RouteFamily } from '../context.js';

export const healthRoutes: RouteFamily = ({ rt }) => [
  {
    method: 'GET',
    path: '/healthz',
    handler: (_req, res) => {
      let ok = true;
      const body: Record<string, unknown> = { status: 'ok', backend: rt.backend };
      for (const contributor of rt.health) {
        const check = contributor.check();
        ok &&= check.ok;
        body[contributor.name] = check.detail;
      }
      if (!ok) body.status = 'degraded';
      sendJson(res, ok ? 200 : 503, body, { 'cache-control': 'no-store' });
    },
  },
];
