/**
 * The agent side of holder-bound tokens (SPEC §5): `capframeClient` wraps an MCP SDK
 * `Client` connected to `capframe serve`. Each `callTool` presents a token bound to the
 * agent's holder key and a fresh proof for exactly the arguments sent; `delegate` hands
 * a sub-agent a narrower token, offline, that only the sub-agent's key can use.
 *
 * Nothing here decides anything: the proxy (or a guarded server) verifies every call.
 * A denial comes back as the tool result it always is (`DENIED <code>: …`), never as
 * an exception; exceptions mean programmer error or a broken connection.
 */
import { CapframeError } from '../errors.js';
import type { SigningKey } from '../keys/keys.js';
import { isRecord } from '../lib/is-record.js';
import { DECISION_META_KEY, PROOF_META_KEY, REQUEST_TOKEN_TOOL, TOKEN_META_KEY } from '../mcp/meta.js';
import { sameBytes } from '../token/chain.js';
import { decodeClaims, tokenId } from '../token/claims.js';
import { delegate as delegateToken } from '../token/delegate.js';
import type { MintedToken } from '../token/mint.js';
import { createProof, readBoundToken, toSigningKey } from '../token/proof.js';
import type { DecisionCode } from '../verify/decision.js';

/** The `tools/call` parameters every MCP SDK client takes. */
export interface ToolCallParams {
  name: string;
  arguments?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * What `capframeClient` needs of a client: `callTool(params, …)`, as the official SDK's
 * `Client` has it in 1.x (`callTool(params, resultSchema?, options?)`) and in 2.x
 * (`@modelcontextprotocol/client`: `callTool(params, options?)`). Whatever follows
 * `params` is passed through unchanged.
 */
export interface ToolCaller {
  // `any`: the SDKs' option types differ, and they are only passed through.
  callTool(params: ToolCallParams, ...rest: any[]): Promise<unknown>;
}

export interface CapframeClientOptions {
  /**
   * The agent's holder key, secret half: a 32-byte seed, PKCS#8 PEM, base64url seed or a
   * SigningKey (`generateKeyPair().secretKey`, `capframe keys generate --holder --out`).
   * Its public half goes in the policy under `agents.<name>.holder_keys`.
   */
  holderKey: Uint8Array | string | SigningKey;
  /**
   * A token given to this agent — typically delegated to it by its parent agent — used
   * for every call instead of asking the proxy (`capframe.request_token`). It must be
   * bound to `holderKey`. When it expires or is revoked, calls are denied: ask the parent.
   */
  token?: string;
  /** Lifetime in seconds to ask for with `capframe.request_token` (the policy caps it). */
  ttl?: number;
  /**
   * The audience holder proofs name. Only for a verifier that names one (a
   * `capframeGuard` with `audience`); `capframe serve` refuses proofs that name one.
   */
  audience?: string;
  /** Clock in milliseconds since the epoch; defaults to Date.now. For tests. */
  clock?: () => number;
}

export interface ClientDelegateOptions {
  /** The child's tools: an exact tool name or a `*` pattern, within the parent's. */
  tools: string;
  /** The sub-agent's public holder key (raw 32 bytes, hex or base64url). */
  to: Uint8Array | string;
  /** Constraints the child adds (`{arg, op, value}`); the parent's keep applying. */
  when?: readonly unknown[];
  /** Lifetime in seconds, capped at the parent's expiry. */
  ttl?: number;
  /** The sub-agent's name, for people and logs (the proxy goes by its holder key). */
  agent?: string;
  /** Restrict the child to one verifier (`aud`). */
  audience?: string;
  /**
   * The token to delegate from. Default: the token this client was given, or else a new
   * token for `tools` from `capframe.request_token` (with `ttl`, so the child can live
   * that long), which is the child's parent alone.
   */
  parent?: string;
}

/** A delegated token and the id of the token it was delegated from. */
export interface DelegatedToken extends MintedToken {
  parentId: string;
}

type Rest<F> = F extends (params: never, ...rest: infer R) => unknown ? R : never;

export interface CapframeClient<C extends ToolCaller> {
  /** The wrapped client, for everything else (listTools, resources, close). */
  readonly client: C;
  /** The holder key's public half in hex: what the policy lists in `holder_keys` and what a parent delegates `to`. */
  readonly publicKey: string;
  /**
   * Calls a tool through the proxy with a token bound to the holder key and a fresh proof
   * for exactly these arguments, in `_meta["capframe/token"]` and `_meta["capframe/proof"]`.
   * Tokens from `capframe.request_token` are cached per tool until shortly before they
   * expire; a call denied `revoked` or `expired` drops the cached token and is retried once
   * with a new one (a `DENIED` call was not forwarded, so the retry cannot run it twice).
   * Nothing else is retried: an `UPSTREAM_ERROR` call may have run.
   * If the proxy refuses a token, its denial is the result. Throws CapframeError for
   * arguments that are not I-JSON (no proof can cover them); nothing is sent then.
   */
  callTool(params: ToolCallParams, ...rest: Rest<C['callTool']>): ReturnType<C['callTool']>;
  /**
   * A narrower token for a sub-agent's key, made offline by this agent's holder key (the
   * proxy sees it only when the sub-agent uses it). Throws CapframeError when the parent
   * cannot be had (`not_granted`, with the proxy's reason) or the delegation is invalid.
   */
  delegate(options: ClientDelegateOptions): Promise<DelegatedToken>;
  /** The token a call of `tool` would present now (obtained and cached when needed). */
  tokenFor(tool: string): Promise<string>;
  /** Drops cached tokens: for one tool, or all. */
  forget(tool?: string): void;
}

interface CachedToken {
  token: string;
  /** Milliseconds since the epoch after which a new token is requested. */
  refreshAt: number;
}

/**
 * The decision the proxy (or a guard) wrote in a result's `_meta["capframe/decision"]`,
 * if any: `allowed: false` means the call was not forwarded.
 *
 * @example
 * const result = await agent.callTool({ name: 'payments.refund', arguments });
 * const decision = decisionOf(result);
 * if (decision?.allowed === false) console.warn(`not run: ${decision.code}: ${decision.reason}`);
 */
export function decisionOf(result: unknown): { allowed: boolean; code: DecisionCode; reason: string } | undefined {
  const decision = isRecord(result) && isRecord(result._meta) ? result._meta[DECISION_META_KEY] : undefined;
  if (!isRecord(decision) || typeof decision.allowed !== 'boolean' || typeof decision.code !== 'string') return undefined;
  return { allowed: decision.allowed, code: decision.code as DecisionCode, reason: typeof decision.reason === 'string' ? decision.reason : '' };
}

/** Longest a token is used before its expiry comes close: refreshed with this much left, or half its life if shorter. */
const REFRESH_MARGIN_MS = 30_000;
/** Denials after which a requested token is replaced once. */
const STALE_TOKEN: ReadonlySet<string> = new Set(['revoked', 'expired']);

/**
 * Wraps an MCP SDK `Client` connected to `capframe serve` so that every `callTool` carries a
 * token bound to `holderKey` and a fresh holder proof; see {@link CapframeClient}.
 *
 * The agent authenticates to the proxy as before (its API key, in the transport); the
 * policy lists the agent's public holder key under `agents.<name>.holder_keys`.
 *
 * @example
 * import { Client } from '@modelcontextprotocol/sdk/client/index.js';
 * import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
 * import { capframeClient, generateKeyPair } from 'capframe';
 *
 * const client = new Client({ name: 'planner', version: '1.0.0' });
 * await client.connect(new StreamableHTTPClientTransport(new URL('http://127.0.0.1:8080/mcp'),
 *   { requestInit: { headers: { Authorization: `Bearer ${process.env.PLANNER_KEY}` } } }));
 * const plannerKey = generateKeyPair(); // once; its publicKey (hex) goes under agents.planner.holder_keys
 * const planner = capframeClient(client, { holderKey: plannerKey.secretKey });
 * await planner.callTool({ name: 'payments.refund', arguments: { charge_id: 'ch_1001', amount: 15, currency: 'EUR', reason: 'late' } });
 *
 * // A sub-agent gets a narrower token for its own key …
 * const child = await planner.delegate({ tools: 'payments.refund', when: [{ arg: 'amount', op: '<=', value: 50 }], ttl: 300, to: executorPublicKey });
 * // … and uses it, over its own connection, with its own key:
 * const executor = capframeClient(executorClient, { holderKey: executorSecretKey, token: child.token });
 */
export function capframeClient<C extends ToolCaller>(client: C, options: CapframeClientOptions): CapframeClient<C> {
  if (client === null || typeof client !== 'object' || typeof (client as { callTool?: unknown }).callTool !== 'function') {
    throw new CapframeError('invalid_argument', 'capframeClient: expected an MCP SDK Client (an object with callTool)');
  }
  if (options === null || typeof options !== 'object') throw new CapframeError('invalid_argument', 'capframeClient: options must be an object with holderKey');
  const key = toSigningKey(options.holderKey, 'capframeClient');
  const publicKey = Buffer.from(key.publicKey).toString('hex');
  const given = options.token;
  if (given !== undefined) {
    const { token } = readBoundToken(given, 'capframeClient');
    if (!sameBytes(token.holder!, key.publicKey)) {
      throw new CapframeError('invalid_argument', `capframeClient: the given token is bound to another holder key, not ${publicKey}; delegate it to this key`);
    }
  }
  const { ttl, audience } = options;
  if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl <= 0)) {
    throw new CapframeError('invalid_argument', `capframeClient: ttl must be a positive whole number of seconds, got ${String(ttl)}`);
  }
  const clock = options.clock ?? Date.now;
  const cache = new Map<string, Promise<CachedToken>>();

  /**
   * A new token for `tool` bound to our key, or the proxy's denial (a tool result).
   * `lifetimeMs` is the token's own (exp − iat), so a clock that differs from the
   * proxy's does not shift when the token is renewed.
   */
  async function request(tool: string, lifetime: number | undefined): Promise<{ token: string; lifetimeMs: number } | { denied: unknown }> {
    const result = await client.callTool({
      name: REQUEST_TOKEN_TOOL,
      arguments: { tool, holder_key: publicKey, ...(lifetime !== undefined && { ttl: lifetime }) },
    });
    const issued = isRecord(result) && result.isError !== true && isRecord(result.structuredContent) ? result.structuredContent : undefined;
    if (issued === undefined) return { denied: result };
    if (typeof issued.token !== 'string') {
      throw new CapframeError('invalid_argument', `capframeClient: ${REQUEST_TOKEN_TOOL} answered without a token; is this client connected to capframe serve?`);
    }
    const { token } = readBoundToken(issued.token, 'capframeClient');
    if (!sameBytes(token.holder!, key.publicKey)) {
      throw new CapframeError('invalid_argument', `capframeClient: ${REQUEST_TOKEN_TOOL} issued a token bound to another holder key, not ${publicKey}`);
    }
    const claims = decodeClaims(token.payload);
    return { token: issued.token, lifetimeMs: Math.max(0, (claims.exp - claims.iat) * 1000) };
  }

  /** The cached token for `tool`, or a new one; a denial is not cached. */
  async function cachedToken(tool: string): Promise<{ token: string } | { denied: unknown }> {
    const hit = cache.get(tool);
    if (hit !== undefined) {
      const entry = await hit.catch(() => undefined);
      if (entry !== undefined && clock() < entry.refreshAt && cache.get(tool) === hit) return { token: entry.token };
      if (cache.get(tool) === hit) cache.delete(tool);
    }
    let denied: unknown;
    const pending = (async () => {
      const asked = clock();
      const got = await request(tool, ttl);
      if ('denied' in got) {
        denied = got.denied;
        throw new Error('denied');
      }
      return { token: got.token, refreshAt: asked + got.lifetimeMs - Math.min(REFRESH_MARGIN_MS, got.lifetimeMs / 2) };
    })();
    // Concurrent calls for the same tool share one request.
    cache.set(tool, pending);
    try {
      return { token: (await pending).token };
    } catch (error) {
      if (cache.get(tool) === pending) cache.delete(tool);
      if (denied !== undefined) return { denied };
      throw error;
    }
  }

  async function callTool(params: ToolCallParams, ...rest: unknown[]): Promise<unknown> {
    if (!isRecord(params) || typeof params.name !== 'string' || params.name === '') {
      throw new CapframeError('invalid_argument', 'capframeClient.callTool: params.name must be the tool name');
    }
    const tool = params.name;
    if (tool === REQUEST_TOKEN_TOOL) return client.callTool(params, ...rest);
    if (params.arguments !== undefined && !isRecord(params.arguments)) {
      throw new CapframeError('invalid_argument', 'capframeClient.callTool: params.arguments must be an object');
    }
    for (let attempt = 0; ; attempt++) {
      const got = given !== undefined ? { token: given } : await cachedToken(tool);
      if ('denied' in got) return got.denied;
      // Exactly what the SDK will send: params.arguments, or nothing (which the proxy reads as {}).
      const { proof } = createProof({ token: got.token, tool, args: params.arguments ?? {}, key, ...(audience !== undefined && { audience }), now: clock() });
      const result = await client.callTool({ ...params, _meta: { ...params._meta, [TOKEN_META_KEY]: got.token, [PROOF_META_KEY]: proof } }, ...rest);
      const decision = decisionOf(result);
      // Only a DENIED call is retried: it was not forwarded. A given token cannot be renewed here.
      if (given === undefined && attempt === 0 && decision?.allowed === false && STALE_TOKEN.has(decision.code)) {
        cache.delete(tool);
        continue;
      }
      return result;
    }
  }

  return {
    client,
    publicKey,
    // The wrapped client's own result type: the result is its callTool's, or the proxy's denial in the same shape.
    callTool: callTool as unknown as CapframeClient<C>['callTool'],
    async delegate(d) {
      if (d === null || typeof d !== 'object') throw new CapframeError('invalid_argument', 'capframeClient.delegate: options must be an object');
      let parent = d.parent ?? given;
      if (parent === undefined) {
        if (typeof d.tools !== 'string' || d.tools === '') throw new CapframeError('invalid_argument', 'capframeClient.delegate: tools must be a tool name or pattern');
        const got = await request(d.tools, d.ttl ?? ttl);
        if ('denied' in got) {
          const why = decisionOf(got.denied);
          throw new CapframeError('not_granted', `capframeClient.delegate: the proxy issued no token for ${d.tools}${why === undefined ? '' : `: DENIED ${why.code}: ${why.reason}`}`);
        }
        parent = got.token;
      }
      const child = delegateToken(parent, {
        key,
        tools: d.tools,
        to: d.to,
        now: Math.floor(clock() / 1000),
        ...(d.when !== undefined && { when: d.when }),
        ...(d.ttl !== undefined && { ttl: d.ttl }),
        ...(d.agent !== undefined && { agent: d.agent }),
        ...(d.audience !== undefined && { audience: d.audience }),
      });
      return { ...child, parentId: tokenId(readBoundToken(parent, 'capframeClient.delegate').token.cti) };
    },
    async tokenFor(tool) {
      if (given !== undefined) return given;
      const got = await cachedToken(tool);
      if ('denied' in got) {
        const why = decisionOf(got.denied);
        throw new CapframeError('not_granted', `capframeClient: the proxy issued no token for ${tool}${why === undefined ? '' : `: DENIED ${why.code}: ${why.reason}`}`);
      }
      return got.token;
    },
    forget(tool) {
      if (tool === undefined) cache.clear();
      else cache.delete(tool);
    },
  };
}
