/** `POST /v1/tokens`: an authenticated agent gets a token, as with `capframe.request_token`. */
import { authenticate, bearerOf } from '../../proxy/auth.js';
import { NOT_JSON, discardBody, readJson, sendJson } from '../body.js';
import type { RouteFamily } from '../context.js';

export const tokenRoutes: RouteFamily = ({ rt, options }) => [
  {
    method: 'POST',
    path: '/v1/tokens',
    handler: async (req, res) => {
      const auth = authenticate(rt.policy(), bearerOf(req.headersDistinct.authorization));
      if (auth.kind !== 'agent') {
        // Before the body is read, and not audited: as on the MCP endpoint, a caller without
        // an agent key costs nothing that grows (the refusal's words are the Enforcer's).
        const refused = rt.enforcer.issue({ auth }, undefined);
        rt.metrics.httpRefused.labels('unauthenticated').inc();
        sendJson(res, 401, { allowed: false, code: 'agent_unknown', reason: refused.outcome.reason }, { 'www-authenticate': 'Bearer realm="capframe"' });
        discardBody(req);
        return;
      }
      const args = await readJson(req, options.maxBodyBytes);
      if (args === NOT_JSON) {
        sendJson(res, 400, { error: 'body must be JSON: {tool, capability?, ttl?, holder_key?}' });
        return;
      }
      const issued = rt.enforcer.issueOverHttp({ auth }, args);
      if (issued.ok) sendJson(res, 200, issued.body);
      else sendJson(res, 403, { allowed: false, code: issued.code, reason: issued.reason });
    },
  },
];
