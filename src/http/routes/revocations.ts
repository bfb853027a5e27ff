/** `POST /v1/revocations` (admin key): revokes a token through the running server. */
import { sameSecret } from '../../lib/same-secret.js';
import { tokenId } from '../../token/claims.js';
import { bearerOf } from '../../proxy/auth.js';
import { NOT_JSON, discardBody, readJson, sendJson } from '../body.js';
import type { RouteFamily } from '../context.js';

export const revocationRoutes: RouteFamily = ({ rt, options }) => [
  {
    method: 'POST',
    path: '/v1/revocations',
    handler: async (req, res) => {
      if (!sameSecret(bearerOf(req.headersDistinct.authorization), process.env.CAPFRAME_ADMIN_KEY)) {
        sendJson(res, 401, { error: 'POST /v1/revocations needs Authorization: Bearer <CAPFRAME_ADMIN_KEY>' }, { 'www-authenticate': 'Bearer realm="capframe-admin"' });
        discardBody(req);
        return;
      }
      const parsed = (await readJson(req, options.maxBodyBytes)) as { id?: unknown; token?: unknown } | null | typeof NOT_JSON;
      if (parsed === NOT_JSON) {
        sendJson(res, 400, { error: 'body must be JSON: {id: "tok_…"} or {token: "cf1.…"}' });
        return;
      }
      const ref = parsed?.id ?? parsed?.token;
      const cti = typeof ref === 'string' ? rt.ctiOf(ref) : undefined;
      if (cti === undefined) {
        sendJson(res, 400, { error: 'body must name a token: {id: "tok_…"} or {token: "cf1.…"}' });
        return;
      }
      const added = rt.revoke(cti);
      sendJson(res, 200, { revoked: tokenId(cti), new: added });
    },
  },
];
