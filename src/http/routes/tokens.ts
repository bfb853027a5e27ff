/** `POST /v1/tokens`: an authenticated agent gets a token, as with `capframe.request_token`. */
import { authenticate, bearerOf } from '../../proxy/auth.js';
import { NOT_JSON, readJson, sendJson } from '../body.js';
import type { RouteFamily } from '../context.js';

export const tokenRoutes: RouteFamily = ({ rt, options }) => [
  {
    method: 'POST',
    path: '/v1/tokens',
    handler: async (req, res) => {
      const args = await readJson(req, options.maxBodyBytes);
      if (args === NOT_JSON) {
        sendJson(res, 400, { error: 'body must be JSON: {tool, capability?, ttl?}' });
        return;
      }
      const auth = authenticate(rt.policy(), bearerOf(req.headers.authorization));
      const issued = await rt.enforcer.issueOverHttp({ auth }, args);
      if (issued.ok) sendJson(res, 200, issued.body);
      else if (issued.code === 'agent_unknown') sendJson(res, 401, { allowed: false, code: issued.code, reason: issued.reason }, { 'www-authenticate': 'Bearer realm="capframe"' });
      else sendJson(res, 403, { allowed: false, code: issued.code, reason: issued.reason });
    },
  },
];
