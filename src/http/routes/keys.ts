/**
 * `GET /.well-known/capframe-keys`: the issuer keys this server trusts, as a JWK Set
 * (RFC 7517, OKP/Ed25519 keys of RFC 8037), so verifiers in any language fetch them
 * instead of copying files. No authentication: these are public keys.
 *
 * The body is built once, from the keys the runtime loaded (the ones its verifier
 * trusts), never per request; a set that cannot be built whole is a 500, never an empty
 * or partial set a verifier would cache.
 */
import { publicJwks } from '../../keys/jwks.js';
import { sendJson } from '../body.js';
import type { RouteFamily } from '../context.js';

export const CAPFRAME_KEYS_PATH = '/.well-known/capframe-keys';
export const JWK_SET_CONTENT_TYPE = 'application/jwk-set+json';

/** The JWK Set body for these keys, or why there is none. */
export function jwkSetBody(keys: readonly Uint8Array[]): { body: string } | { error: string } {
  if (keys.length === 0) return { error: 'no trusted keys are loaded' };
  try {
    return { body: JSON.stringify(publicJwks(keys)) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

export const keyRoutes: RouteFamily = ({ rt }) => {
  const built = jwkSetBody(rt.trustedKeys);
  if ('error' in built) rt.log.error(`${CAPFRAME_KEYS_PATH} cannot be served`, { error: built.error });
  return [
    {
      method: 'GET',
      path: CAPFRAME_KEYS_PATH,
      handler: (_req, res) => {
        if ('error' in built) {
          sendJson(res, 500, { error: 'the key set is not available' }, { 'cache-control': 'no-store' });
          return;
        }
        res.writeHead(200, { 'content-type': JWK_SET_CONTENT_TYPE, 'content-length': Buffer.byteLength(built.body), 'cache-control': 'public, max-age=300' });
        res.end(built.body);
      },
    },
  ];
};
