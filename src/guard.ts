/**
 * `capframeGuard`: makes an MCP server built with the official SDK verify the
 * capability token on every `tools/call` before the tool runs (SPEC §11).
 *
 * The seam is the low-level `Server`'s request-handler table: the `tools/call`
 * entry is wrapped when the guard is applied and again whenever anything installs a
 * new one (`McpServer` installs its handler lazily, on the first `registerTool`), so
 * tools registered before or after the guard are covered alike. A
 * `fallbackRequestHandler` that would answer `tools/call` is wrapped too.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import { CapframeError } from './errors.js';
import { isRecord } from './lib/is-record.js';
import { denial, PROOF_META_KEY, TOKEN_META_KEY } from './mcp/meta.js';
import type { NonceStore } from './store/nonces.js';
import type { OnStoreFailure, RevocationSource } from './store/types.js';
import { deny, type Decision } from './verify/decision.js';
import { createVerifier, type Verifier } from './verify/verifier.js';

export interface GuardOptions {
  /**
   * Trusted issuer public keys (raw 32 bytes, hex or base64url): the public half of
   * the key `capframe serve`/`capframe mint` signs with. Give `keys` or `verifier`.
   */
  keys?: ReadonlyArray<Uint8Array | string>;
  /** Token ids (`tok_…` or 16-byte cti) to treat as revoked from the start. */
  revoked?: Iterable<Uint8Array | string>;
  /**
   * Follow a store's revocations (SPEC §7): a state directory, a `redis://`/`rediss://`
   * URL, or a store from `openStore()`. A token revoked anywhere (`capframe revoke`,
   * `POST /v1/revocations` on any proxy) is denied here from the next call on. Until the
   * existing revocations are loaded, and while the feed is down, every call is denied
   * `internal_error` (see `onStoreFailure`). The feed stops when the server is closed.
   */
  revocations?: string | RevocationSource;
  /** While the revocation feed is down after it loaded: 'deny' (default) or 'use_cached'. */
  onStoreFailure?: OnStoreFailure;
  /**
   * A verifier you own, instead of `keys`/`revoked`/`revocations`/`nonceStore`/`maxDepth`: call
   * `verifier.revoke(id)` and the guarded server denies that token — and every token
   * delegated from it — on its next call.
   */
  verifier?: Verifier;
  /**
   * Where holder-proof nonces are remembered (default: in memory, for this server).
   * Asynchronous stores (Redis) work too: the guard awaits them.
   */
  nonceStore?: NonceStore;
  /** Delegations accepted below the root token (default 4). */
  maxDepth?: number;
  /**
   * Prepended to the MCP tool name before matching the token's `tool` claim. Tokens
   * name `<server>.<tool>` while the proxy forwards the upstream's own tool name, so a
   * server known to capframe as `database` sets `prefix: 'database.'`. Default `''`.
   */
  prefix?: string;
  /**
   * This server's audience: tokens with an `aud` claim must name it (others are
   * refused), and so must holder proofs (a proof naming no audience is refused).
   */
  audience?: string;
  /**
   * Called with every decision, allowed or denied, before the tool runs or the denial
   * is returned. If it throws, the call is denied (`internal_error`): a decision that
   * cannot be recorded is not acted on.
   */
  onDecision?(decision: Decision & { tool: string }): void;
}

/** What the SDK's `Protocol` keeps per method; `_requestHandlers` is not public API. */
type RawHandler = (request: unknown, extra: unknown) => Promise<unknown>;
interface ProtocolInternals {
  _requestHandlers?: unknown;
  fallbackRequestHandler?: RawHandler;
  close?: () => Promise<void>;
}

const TOOLS_CALL = 'tools/call';
const GUARDED = Symbol.for('capframe.guarded');

/**
 * Guards every `tools/call` of an SDK `McpServer` or low-level `Server`: the token in
 * `params._meta["capframe/token"]` must verify against the trusted keys and allow
 * `<prefix><tool name>` with the call's arguments. A denied call never reaches the
 * tool handler; the client gets the proxy's denial (`isError: true`, text
 * `DENIED <code>: <reason>`, `_meta["capframe/decision"]`). Returns `server` itself.
 *
 * A holder-bound token needs a proof for this very call in
 * `params._meta["capframe/proof"]`, made by its holder for `<prefix><tool name>` and
 * these arguments; each proof is accepted once (`replay` after). A delegated token
 * is verified with its whole chain, every link's constraints applied.
 * The token's constraints are checked on the arguments as received, before the
 * SDK validates them against the tool's input schema; a schema that transforms or
 * defaults values can hand the tool something the token never saw.
 * This checks the token only; the policy is `capframe serve`'s job.
 *
 * @example
 * import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
 * import { capframeGuard } from 'capframe';
 *
 * const server = capframeGuard(new McpServer({ name: 'database', version: '1.0.0' }), {
 *   keys: [process.env.CAPFRAME_PUBLIC_KEY!],
 *   prefix: 'database.',
 * });
 * server.registerTool('query', { inputSchema: { sql: z.string() } }, async ({ sql }) => run(sql));
 *
 * @example
 * // Revocation everywhere: follow the store's feed (Redis pub/sub or the state directory's log).
 * capframeGuard(server, { keys: [publicKey], revocations: process.env.CAPFRAME_REDIS_URL ?? '.capframe', prefix: 'database.' });
 *
 * @example
 * // Revocation by hand: own the verifier.
 * const verifier = createVerifier({ keys: [publicKey] });
 * capframeGuard(server, { verifier });
 * verifier.revoke('tok_…'); // denied from the next call on
 */
export function capframeGuard<T extends McpServer | Server>(server: T, options: GuardOptions): T {
  const verifier = verifierOf(options);
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') throw new CapframeError('invalid_argument', 'capframeGuard: options.prefix must be a string');
  const onDecision = options.onDecision;
  if (onDecision !== undefined && typeof onDecision !== 'function') {
    throw new CapframeError('invalid_argument', 'capframeGuard: options.onDecision must be a function');
  }

  const protocol = lowLevelServer(server);
  const handlers = protocol._requestHandlers;
  if (!(handlers instanceof Map)) {
    // Refuse rather than serve unguarded on an SDK whose internals moved.
    throw new CapframeError(
      'invalid_argument',
      'capframeGuard: this @modelcontextprotocol/sdk version keeps its request handlers where the guard cannot reach them; the server was not guarded',
    );
  }
  if ((handlers as Map<string, RawHandler> & { [GUARDED]?: true })[GUARDED] === true) {
    throw new CapframeError('invalid_argument', 'capframeGuard: this server is already guarded');
  }

  /** The decision for one raw JSON-RPC `tools/call` request. Never rejects, except with the SDK's invalid-params error. */
  async function decide(request: unknown): Promise<Decision & { tool: string }> {
    const params = isRecord(request) && isRecord(request.params) ? request.params : undefined;
    const name = params?.name;
    if (typeof name !== 'string') {
      // Same answer the SDK gives to a malformed request; no tool is looked up.
      throw new McpError(ErrorCode.InvalidParams, 'Invalid tools/call request: params.name must be a string');
    }
    const tool = prefix + name;
    try {
      const args = params!.arguments;
      if (args !== undefined && !isRecord(args)) {
        throw new McpError(ErrorCode.InvalidParams, 'Invalid tools/call request: params.arguments must be an object');
      }
      const meta = params!._meta;
      const token = isRecord(meta) ? meta[TOKEN_META_KEY] : undefined;
      if (token === undefined || token === null || token === '') {
        return { ...deny('missing_token', `no capability token was presented in _meta["${TOKEN_META_KEY}"] for ${tool}`), tool };
      }
      if (typeof token !== 'string') {
        return { ...deny('malformed_token', `_meta["${TOKEN_META_KEY}"] must be a cf1. token string, got ${describe(token)}`), tool };
      }
      const proof = isRecord(meta) ? meta[PROOF_META_KEY] : undefined;
      if (proof !== undefined && typeof proof !== 'string') {
        return { ...deny('bad_proof', `_meta["${PROOF_META_KEY}"] must be a cfp1. proof string, got ${describe(proof)}`), tool };
      }
      const decision = await verifier.verifyAsync(token, {
        tool,
        args: args ?? {},
        ...(proof !== undefined && { proof }),
        ...(options.audience !== undefined && { audience: options.audience }),
      });
      return { ...decision, tool };
    } catch (error) {
      if (error instanceof McpError) throw error;
      return { ...deny('internal_error', 'internal error while verifying the token; the call was not run'), tool };
    }
  }

  function guard(next: RawHandler): RawHandler {
    if ((next as RawHandler & { [GUARDED]?: true })[GUARDED] === true) return next;
    const guarded: RawHandler = async (request, extra) => {
      let decision = await decide(request);
      if (onDecision !== undefined) {
        try {
          onDecision(decision);
        } catch {
          decision = { ...deny('internal_error', 'the onDecision callback failed; the call was not run'), tool: decision.tool };
        }
      }
      if (!decision.allowed) return denial(decision.code, decision.reason) satisfies CallToolResult;
      return next(request, extra);
    };
    Object.defineProperty(guarded, GUARDED, { value: true });
    return guarded;
  }

  // Every handler the SDK installs goes through Map#set on this table, whichever
  // class in the chain installs it; wrap the tools/call entry on the way in.
  const table = handlers as Map<string, RawHandler>;
  const set = table.set;
  Object.defineProperty(table, 'set', {
    configurable: true,
    writable: true,
    value(method: string, handler: RawHandler) {
      return set.call(table, method, method === TOOLS_CALL && typeof handler === 'function' ? guard(handler) : handler);
    },
  });
  Object.defineProperty(table, GUARDED, { value: true });
  const existing = table.get(TOOLS_CALL);
  if (existing !== undefined) table.set(TOOLS_CALL, existing);

  // A fallback handler sees every method without its own entry, tools/call included.
  let fallback = protocol.fallbackRequestHandler;
  const guardFallback = (handler: RawHandler | undefined): RawHandler | undefined => {
    if (handler === undefined) return undefined;
    const guardedCall = guard(handler);
    return (request, extra) => (isRecord(request) && request.method === TOOLS_CALL ? guardedCall(request, extra) : handler(request, extra));
  };
  let guardedFallback = guardFallback(fallback);
  Object.defineProperty(protocol, 'fallbackRequestHandler', {
    configurable: true,
    enumerable: true,
    get: () => guardedFallback,
    set(handler: RawHandler | undefined) {
      fallback = handler;
      guardedFallback = guardFallback(fallback);
    },
  });

  if (options.verifier === undefined && options.revocations !== undefined) stopFeedOnClose(protocol, verifier);

  return server;
}

/** Closing the server stops the revocation feed the guard opened (its connections would keep the process alive). */
function stopFeedOnClose(protocol: ProtocolInternals, verifier: Verifier): void {
  const close = protocol.close;
  if (typeof close !== 'function') return;
  protocol.close = async function (this: unknown) {
    try {
      await close.call(this);
    } finally {
      await verifier.close();
    }
  };
}

function verifierOf(options: GuardOptions): Verifier {
  if (options === null || typeof options !== 'object') {
    throw new CapframeError('invalid_argument', 'capframeGuard: options must be an object with keys or verifier');
  }
  if (options.verifier !== undefined) {
    if (options.keys !== undefined || options.revoked !== undefined || options.revocations !== undefined || options.onStoreFailure !== undefined || options.nonceStore !== undefined || options.maxDepth !== undefined) {
      throw new CapframeError('invalid_argument', 'capframeGuard: pass either options.verifier or options.keys/revoked/revocations/onStoreFailure/nonceStore/maxDepth, not both');
    }
    if (typeof options.verifier?.verifyAsync !== 'function') {
      throw new CapframeError('invalid_argument', 'capframeGuard: options.verifier must come from createVerifier()');
    }
    return options.verifier;
  }
  if (!Array.isArray(options.keys) || options.keys.length === 0) {
    throw new CapframeError('invalid_argument', 'capframeGuard: options.keys must list at least one trusted public key (or pass options.verifier)');
  }
  return createVerifier({
    keys: options.keys,
    ...(options.revoked !== undefined && { revoked: options.revoked }),
    ...(options.revocations !== undefined && { revocations: options.revocations }),
    ...(options.onStoreFailure !== undefined && { onStoreFailure: options.onStoreFailure }),
    ...(options.nonceStore !== undefined && { nonceStore: options.nonceStore }),
    ...(options.maxDepth !== undefined && { maxDepth: options.maxDepth }),
  });
}

/** The low-level SDK `Server` of an `McpServer`, or the `Server` itself. */
function lowLevelServer(server: McpServer | Server): ProtocolInternals {
  const candidate: unknown = isObject(server) && 'server' in server && isObject(server.server) ? server.server : server;
  if (!isObject(candidate) || typeof (candidate as { setRequestHandler?: unknown }).setRequestHandler !== 'function') {
    throw new CapframeError('invalid_argument', 'capframeGuard: expected an McpServer or Server from @modelcontextprotocol/sdk');
  }
  return candidate as ProtocolInternals;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return 'bytes';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
