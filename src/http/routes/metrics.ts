/** `GET /metrics`: the Prometheus text exposition. */
import { PROMETHEUS_CONTENT_TYPE } from '../../proxy/metrics.js';
import type { RouteFamily } from '../context.js';

export const metricsRoutes: RouteFamily = ({ rt }) => [
  {
    method: 'GET',
    path: '/metrics',
    handler: (_req, res) => {
      const text = rt.metrics.render();
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
  },
];
