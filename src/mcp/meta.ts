/**
 * Capframe's names in MCP messages (SPEC §5, §6): the `_meta` keys and HTTP headers
 * that carry tokens, proofs and decisions, and the denial every client sees. Shared
 * by the proxy, `capframeGuard` and agents, so it sits below all of them.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import type { DecisionCode } from '../verify/decision.js';

/** `params._meta` key of the capability token (`cf1.…`). */
export const TOKEN_META_KEY = 'capframe/token';
/** `params._meta` key of the holder proof for this call (`cfp1.…`). */
export const PROOF_META_KEY = 'capframe/proof';
/** `_meta` key of the decision on every result the proxy or a guard answers. */
export const DECISION_META_KEY = 'capframe/decision';
/** `_meta` key of what happened after an allowed call was forwarded and did not return the upstream's result. */
export const OUTCOME_META_KEY = 'capframe/outcome';
/** The proxy's tool for getting tokens (SPEC §6): `{tool, capability?, ttl?, holder_key?}`. */
export const REQUEST_TOKEN_TOOL = 'capframe.request_token';
/** HTTP header alternatives to the `_meta` keys (lower case, as Node reports them). */
export const TOKEN_HEADER = 'capframe-token';
export const PROOF_HEADER = 'capframe-proof';

/** The denial every client sees: an error result that names the code. */
export function denial(code: DecisionCode, reason: string): CallToolResult {
  return {
    content: [{ type: 'text', text: `DENIED ${code}: ${reason}` }],
    isError: true,
    _meta: { [DECISION_META_KEY]: { allowed: false, code, reason } },
  };
}
