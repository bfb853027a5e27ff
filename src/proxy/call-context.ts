/**
 * What a request from a client session carries on its way to an upstream, so that what
 * the upstream says about it comes back to that session and no other (SPEC §6): progress,
 * log messages and the upstream's own requests (`sampling/createMessage`,
 * `elicitation/create`, `roots/list`) made while it runs, and the client's cancellation.
 *
 * The session side builds one per request (src/proxy/mcp/relay.ts); the upstream pool
 * routes by it (src/proxy/upstreams.ts). A request without one (the HTTP fast path, the
 * proxy's own list requests) relays nothing.
 */
import type { LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';

/** An upstream's request to the client, as the proxy received it. */
export interface RelayedRequest {
  method: string;
  params?: Record<string, unknown>;
}

export interface CallContext {
  /** Aborted when the client cancels the request: the upstream request is cancelled too. */
  signal?: AbortSignal;
  /** Progress the upstream reports for this request (without its progress token); set only when the client asked for progress. */
  onProgress?(params: Record<string, unknown>): void;
  /** A log message the upstream sent about this request. */
  onLog?(params: LoggingMessageNotification['params']): void;
  /**
   * A request the upstream sent while this one ran. Resolves with the client's result, or
   * rejects with an `McpError` (the proxy's refusal or the client's own error), which
   * goes back to the upstream as a JSON-RPC error. Unset: every such request is refused.
   */
  onRequest?(request: RelayedRequest, signal: AbortSignal): Promise<Record<string, unknown>>;
}
