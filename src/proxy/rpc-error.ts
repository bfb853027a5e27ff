/**
 * A JSON-RPC error to answer with, sent as it is. The SDK sends a failed handler's
 * `code`, `message` and `data`; an `McpError` would prefix its message with
 * `MCP error <code>:`, and that prefix would pile up at every hop through the proxy.
 */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/**
 * The code, message and data of any error, for a JSON-RPC answer: an error with a numeric
 * `code` keeps it (its message without the SDK's `MCP error <code>:` prefix), anything
 * else is an internal error.
 *
 * @example
 * rpcErrorOf(new McpError(-32601, 'no')); // { code: -32601, message: 'no' }
 */
export function rpcErrorOf(error: unknown): { code: number; message: string; data?: unknown } {
  const e = error as { code?: unknown; message?: unknown; data?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message.replace(/^MCP error -?\d+: /, '') : String(error);
  if (typeof e?.code === 'number' && Number.isSafeInteger(e.code)) return { code: e.code, message, ...(e.data !== undefined && { data: e.data }) };
  return { code: -32603, message: `capframe: ${message}` };
}
