/**
 * The OpenID AuthZEN Authorization API 1.0 on `serve` (SPEC §14): `POST
 * /access/v1/evaluation`, `POST /access/v1/evaluations` and `GET
 * /.well-known/authzen-configuration`. Decisions come from the proxy's own path
 * (Enforcer.decideCall) and are audited with `via: "authzen"`; nothing is forwarded.
 *
 * Callers (PEPs) authenticate with `Authorization: Bearer`: CAPFRAME_ADMIN_KEY or the key
 * of an agent with `pdp: true`; anything else is 401 before the body is read. Errors
 * that concern the whole payload answer with the spec's status codes (400, 401, 500) and
 * an error message string; a denial is 200 with `decision: false`. docs/authzen.md has
 * the mapping.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { evaluate, evaluateAll } from '../../authzen/evaluate.js';
import { BadRequest, parseEvaluationRequest, parseEvaluationsRequest } from '../../authzen/request.js';
import { authenticatePep, bearerOf } from '../../proxy/auth.js';
import { NOT_JSON, discardBody, readJson, sendJson } from '../body.js';
import type { RouteFamily } from '../context.js';

export const EVALUATION_PATH = '/access/v1/evaluation';
export const EVALUATIONS_PATH = '/access/v1/evaluations';
export const AUTHZEN_CONFIGURATION_PATH = '/.well-known/authzen-configuration';

/** The request's X-Request-ID, echoed on the answer (§10.1.4), when it is a sane header value. */
function requestId(req: IncomingMessage): Record<string, string> {
  const id = req.headers['x-request-id'];
  return typeof id === 'string' && id.length <= 256 && /^[\x21-\x7e][\x20-\x7e]*$/.test(id) ? { 'x-request-id': id } : {};
}

/** An error answer: the status and an error message string (§10.1.3). */
function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(message), 'cache-control': 'no-store', ...headers });
  res.end(message);
}

function isJsonContentType(value: string | undefined): boolean {
  return value !== undefined && /^application\/json\s*(?:;|$)/i.test(value.trim());
}

/**
 * The PDP's base URL: `CAPFRAME_PUBLIC_URL` when set (behind a TLS-terminating proxy,
 * this is what PEPs use), else `http://<Host>` (the Host header already passed the
 * DNS-rebinding guard).
 */
function baseUrl(req: IncomingMessage): string {
  const configured = process.env.CAPFRAME_PUBLIC_URL;
  if (configured !== undefined && configured !== '') return configured.replace(/\/+$/, '');
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

export const authzenRoutes: RouteFamily = ({ rt, options }) => {
  const decide = rt.enforcer.decideCall.bind(rt.enforcer);

  /** Authenticates and reads the body; answers itself (and returns undefined) on any refusal. */
  async function admit(req: IncomingMessage, res: ServerResponse): Promise<{ body: unknown; headers: Record<string, string> } | undefined> {
    const headers = requestId(req);
    const pep = authenticatePep(rt.policy(), bearerOf(req.headers.authorization), process.env.CAPFRAME_ADMIN_KEY);
    if (pep.kind === 'rejected') {
      rt.metrics.httpRefused.labels('pdp_unauthenticated').inc();
      sendError(res, 401, `Unauthorized: ${pep.reason}`, {
        ...headers,
        'www-authenticate': req.headers.authorization === undefined ? 'Bearer realm="capframe-pdp"' : 'Bearer realm="capframe-pdp", error="invalid_token"',
      });
      discardBody(req);
      return undefined;
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      sendError(res, 400, 'Bad Request: Content-Type must be application/json', headers);
      discardBody(req);
      return undefined;
    }
    const body = await readJson(req, options.maxBodyBytes);
    if (body === NOT_JSON) {
      sendError(res, 400, 'Bad Request: the body is not JSON', headers);
      return undefined;
    }
    return { body, headers };
  }

  return [
    {
      method: 'POST',
      path: EVALUATION_PATH,
      handler: async (req, res) => {
        const admitted = await admit(req, res);
        if (admitted === undefined) return;
        try {
          const evaluation = parseEvaluationRequest(admitted.body);
          sendJson(res, 200, await evaluate(decide, rt.policy(), evaluation), { ...admitted.headers, 'cache-control': 'no-store' });
        } catch (error) {
          if (!(error instanceof BadRequest)) throw error;
          sendError(res, 400, `Bad Request: ${error.message}`, admitted.headers);
        }
      },
    },
    {
      method: 'POST',
      path: EVALUATIONS_PATH,
      handler: async (req, res) => {
        const admitted = await admit(req, res);
        if (admitted === undefined) return;
        try {
          const parsed = parseEvaluationsRequest(admitted.body);
          const answer =
            'single' in parsed
              ? await evaluate(decide, rt.policy(), parsed.single)
              : { evaluations: await evaluateAll(decide, rt.policy, parsed.evaluations, parsed.semantic) };
          sendJson(res, 200, answer, { ...admitted.headers, 'cache-control': 'no-store' });
        } catch (error) {
          if (!(error instanceof BadRequest)) throw error;
          sendError(res, 400, `Bad Request: ${error.message}`, admitted.headers);
        }
      },
    },
    {
      method: 'GET',
      path: AUTHZEN_CONFIGURATION_PATH,
      handler: (req, res) => {
        const base = baseUrl(req);
        sendJson(
          res,
          200,
          { policy_decision_point: base, access_evaluation_endpoint: `${base}${EVALUATION_PATH}`, access_evaluations_endpoint: `${base}${EVALUATIONS_PATH}` },
          { 'cache-control': 'public, max-age=300', vary: 'host' },
        );
      },
    },
  ];
};
