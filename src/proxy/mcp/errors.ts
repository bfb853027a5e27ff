/**
 * How a request that is not a tool call is refused or fails (resources, prompts,
 * completion, subscriptions): as a JSON-RPC error, never as a result. The same two
 * meanings as for calls (README, "DENIED vs UPSTREAM_ERROR"):
 *
 * - `DENIED <code>: <reason>`, error code {@link DENIED_ERROR_CODE}, `data["capframe/decision"]`:
 *   the request was not forwarded.
 * - an upstream's own JSON-RPC error is passed on with its code and message, and
 *   `data["capframe/outcome"]`; any other failure after the request was sent is
 *   `UPSTREAM_ERROR <code>: <reason>` with code -32603.
 */
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';

import { DECISION_META_KEY, OUTCOME_META_KEY } from '../../mcp/meta.js';
import type { DecisionCode } from '../../verify/decision.js';
import { RpcError } from '../rpc-error.js';
import { UpstreamCallError } from '../upstream-error.js';

/** JSON-RPC error code of a denial: in the range JSON-RPC leaves to implementations, unused by MCP. */
export const DENIED_ERROR_CODE = -32003;

/**
 * The error for a request the proxy did not forward.
 *
 * @example
 * throw deniedError('no_rule', 'no rule allows "docs:file:///etc/passwd"');
 */
export function deniedError(code: DecisionCode, reason: string): RpcError {
  return new RpcError(DENIED_ERROR_CODE, `DENIED ${code}: ${reason}`, { [DECISION_META_KEY]: { allowed: false, code, reason } });
}

/** The error for a forwarded request that did not end with the upstream's result; `not_sent` is a denial. */
export function upstreamFailure(failure: UpstreamCallError, server: string): RpcError {
  if (failure.code === 'not_sent') return deniedError('upstream_unavailable', `upstream "${server}" is unavailable (${failure.message.slice(0, 300)}); the request was not forwarded`);
  const reason = `upstream "${server}": ${failure.message.slice(0, 300)}`;
  const outcome = { [OUTCOME_META_KEY]: { code: failure.code, reason } };
  if (failure.code === 'upstream_error' && failure.rpc?.code !== undefined) {
    // The upstream's own answer (e.g. -32002 resource not found): passed on as it was.
    return new RpcError(failure.rpc.code, failure.rpc.message ?? 'error', outcome);
  }
  return new RpcError(ErrorCode.InternalError, `UPSTREAM_ERROR ${failure.code}: ${reason}`, outcome);
}

/** Any failure of a forwarded request, as an UpstreamCallError. */
export function asUpstreamFailure(error: unknown): UpstreamCallError {
  return error instanceof UpstreamCallError ? error : new UpstreamCallError(error instanceof Error ? error.message : String(error), 'upstream_error');
}
