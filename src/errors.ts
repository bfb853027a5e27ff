/**
 * The one error class Capframe throws. `code` is stable and meant for programs;
 * `message` is for people and names what was wrong and where.
 *
 * Bad tokens never throw: verification returns a decision. CapframeError signals
 * programmer or configuration error (bad arguments, unreadable files, invalid policy).
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'invalid_key'
  | 'invalid_policy'
  | 'policy_not_found'
  | 'not_granted'
  | 'store_error'
  | 'store_unavailable'
  | 'backend_unavailable'
  | 'unknown_token'
  | 'upstream_unavailable'
  | 'invalid_lock'
  | 'audit_log_not_found'
  | 'audit_log_corrupt'
  | 'audit_log_failed';

export class CapframeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CapframeError';
    this.code = code;
  }
}
