/**
 * Why a forwarded call produced no result of its own. The line between `not_sent` and
 * everything else is the line between DENIED and UPSTREAM_ERROR (SPEC §6): a call that
 * never left the proxy is denied (`upstream_unavailable`); a call that was sent may have
 * run, and the agent is told so.
 */

/** Outcome codes of a call that was forwarded and did not end with the upstream's result. */
export const UPSTREAM_ERROR_CODES = [
  /** The upstream answered with a JSON-RPC error: it received the call. */
  'upstream_error',
  /** No answer within the server's `timeout`. */
  'upstream_timeout',
  /** The connection or child process went away before the answer. */
  'upstream_disconnected',
  /** The answer was larger than the server's `max_result_bytes`. */
  'result_too_large',
  /** The answer was not a well-formed tools/call result. */
  'malformed_result',
  /** The client cancelled the call after it was sent; the upstream was told (`notifications/cancelled`). */
  'cancelled',
] as const;

export type UpstreamErrorCode = (typeof UPSTREAM_ERROR_CODES)[number];

/**
 * A failed upstream call. `code` is `not_sent` when the request provably never reached
 * the upstream (no connection, a closed transport), else one of UPSTREAM_ERROR_CODES.
 * `status` is the HTTP status, when there was one; `rpc` the upstream's own JSON-RPC
 * error (code and message), when it answered with one, so it can be passed on as it was.
 */
export class UpstreamCallError extends Error {
  constructor(
    message: string,
    readonly code: UpstreamErrorCode | 'not_sent',
    readonly status?: number,
    readonly rpc?: { code: number | undefined; message: string | undefined },
  ) {
    super(message);
    this.name = 'UpstreamCallError';
  }
}
