/**
 * What comes back to a session while one of its requests runs upstream (SPEC §6): the
 * request's progress (under the client's own progress token), its log messages (at or
 * above the session's level), and the upstream's own requests — `sampling/createMessage`,
 * `elicitation/create`, `roots/list` — relayed to this client when it declared the
 * capability and the server's `relay:` allows it, each one audited. Everything is sent on
 * the request's own stream, so it reaches this session and no other.
 */
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  ListRootsResultSchema,
  LoggingLevelSchema,
  type LoggingLevel,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';

import { isRecord } from '../../lib/is-record.js';
import type { RelayKind } from '../../policy/types.js';
import type { CallContext, RelayedRequest } from '../call-context.js';
import { ownedMeta, type Verdict } from '../enforce.js';
import { RpcError } from '../rpc-error.js';
import { relayKindOf, relaySettings } from '../upstreams.js';
import type { ProxySession } from './session.js';

/** Relayed requests one session may have waiting for its client at once; more are refused. */
export const MAX_PENDING_RELAYS = 16;
/** Relayed notifications (progress, log messages) per request at most; the rest are dropped. */
export const MAX_RELAYED_PER_REQUEST = 10_000;

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const RESULT_SCHEMAS = { sampling: CreateMessageResultSchema, elicitation: ElicitResultSchema, roots: ListRootsResultSchema } as const;
/** The client capability each relay kind needs. */
const CLIENT_CAPABILITY = { sampling: 'sampling', elicitation: 'elicitation', roots: 'roots' } as const;

/** Index of a level in severity order (debug lowest). */
export function severity(level: unknown): number {
  return LoggingLevelSchema.options.indexOf(level as LoggingLevel);
}

/** Params with `capframe/*` keys removed from their `_meta`: the namespace is the proxy's, whoever receives it. */
function ownedParams(params: Record<string, unknown> | undefined): Record<string, unknown> {
  if (params === undefined) return {};
  if (!isRecord(params._meta)) return params;
  return { ...params, _meta: ownedMeta(params._meta, {}) };
}

export interface RelayTarget {
  /** The upstream the request went to. */
  server: string;
  /** What the request names, as audited (`<server>.<tool>`, `<server>:<uri>`, `<server>.<prompt>`). */
  name: string;
}

/**
 * The CallContext for one request of `session`, handled with `extra` (the SDK's
 * per-request handle: its own stream, its cancellation signal, its `_meta`).
 */
export function callContext(session: ProxySession, extra: Extra, target: RelayTarget): CallContext {
  const progressToken = extra._meta?.progressToken;
  let relayed = 0;
  const send = (notification: ServerNotification): void => {
    if (session.isClosed || extra.signal.aborted) return;
    if (relayed >= MAX_RELAYED_PER_REQUEST || !session.takeRelay()) return;
    relayed += 1;
    extra.sendNotification(notification).catch(() => undefined);
  };
  return {
    signal: extra.signal,
    ...(progressToken !== undefined && {
      onProgress: (params: Record<string, unknown>) => {
        if (typeof params.progress !== 'number') return;
        send({ method: 'notifications/progress', params: { ...ownedParams(params), progressToken } } as ServerNotification);
      },
    }),
    onLog: (params) => {
      const level = session.logLevel;
      // No level set: the client never asked for log messages, so it gets none.
      if (level === undefined || severity(params.level) < severity(level)) return;
      send({ method: 'notifications/message', params: ownedParams(params) } as ServerNotification);
    },
    onRequest: (request, signal) => relayRequest(session, extra, target, request, signal),
  };
}

/** Decides, audits and relays one upstream request to the client; rejects with the error the upstream gets. */
async function relayRequest(session: ProxySession, extra: Extra, target: RelayTarget, request: RelayedRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
  const { enforcer, upstreams } = session.deps;
  const kind = relayKindOf(request.method);
  const caller = session.callerOf(extra);
  const agent = caller.auth.kind === 'agent' ? caller.auth.agent : null;
  const started = process.hrtime.bigint();
  const refuse = (code: Verdict['code'], reason: string): never => {
    const verdict: Verdict = { allowed: false, code, reason: `${request.method} from upstream "${target.server}": ${reason}`, agent, tokenId: null };
    try {
      enforcer.record(verdict, target.name, request.params ?? {}, started);
    } catch {
      // Refused either way.
    }
    throw new RpcError(ErrorCode.MethodNotFound, `capframe: ${request.method} is not relayed: ${reason}`);
  };
  if (kind === undefined) return refuse('no_rule', 'the proxy relays no such request');
  const settings = relaySettings(upstreams.config(target.server));
  if (settings[kind] !== 'allow') return refuse('denied_by_rule', `the policy does not relay ${kind} for this server (servers.${target.server}.relay.${kind}: deny)`);
  const capabilities = session.server.getClientCapabilities();
  if (capabilities?.[CLIENT_CAPABILITY[kind]] === undefined) return refuse('no_rule', `the calling client did not declare the ${kind} capability`);
  if (kind === 'elicitation' && request.params?.mode === 'url') return refuse('no_rule', 'URL-mode elicitation is not relayed');
  if (session.pendingRelays >= MAX_PENDING_RELAYS) return refuse('rate_limited', `the client already has ${MAX_PENDING_RELAYS} relayed requests waiting`);
  enforcer.record(
    { allowed: true, code: 'ok', reason: `${request.method} from upstream "${target.server}" relayed to the calling session (relay.${kind}: allow)`, agent, tokenId: null },
    target.name,
    request.params ?? {},
    started,
  );
  session.pendingRelays += 1;
  try {
    // As for a forwarded call: the line is in the kernel before the request leaves.
    await enforcer.auditWritten();
    const timeout = relayTimeoutMs(session, target.server);
    return (await extra.sendRequest({ method: request.method, params: ownedParams(request.params) } as ServerRequest, RESULT_SCHEMAS[kind as RelayKind], {
      signal: AbortSignal.any([signal, extra.signal]),
      timeout,
    })) as Record<string, unknown>;
  } finally {
    session.pendingRelays -= 1;
  }
}

/** A relayed request waits as long as the call it belongs to may take. */
function relayTimeoutMs(session: ProxySession, server: string): number {
  const timeout = session.deps.upstreams.config(server)?.timeout;
  return typeof timeout === 'number' && timeout > 0 ? timeout * 1000 : 30_000;
}
