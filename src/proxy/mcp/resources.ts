/**
 * Resources under policy (SPEC §6): `resources/list` and `resources/templates/list`
 * filtered to what the caller could read; `resources/read` and `resources/subscribe`
 * decided like a tool call — `<server>:<uri>` with args `{uri}`, a resource token or
 * auto_mint, the resource rules, rate limit, audit — and a read forwarded only when
 * allowed; `resources/unsubscribe` releases the session's own subscription.
 */
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type ReadResourceResult,
} from '@modelcontextprotocol/sdk/types.js';

import type { AuditRecord } from '../../audit/record.js';
import { DECISION_META_KEY, TOKEN_META_KEY } from '../../mcp/meta.js';
import { isRecord } from '../../lib/is-record.js';
import { truncate } from '../../lib/truncate.js';
import { MAX_RESOURCE_URI_LENGTH } from '../../policy/resource-name.js';
import { ownedMeta, type Caller, type Forward } from '../enforce.js';
import { RpcError } from '../rpc-error.js';
import { asUpstreamFailure, deniedError, upstreamFailure } from './errors.js';
import { page } from './paginate.js';
import { callContext } from './relay.js';
import type { ProxySession } from './session.js';
import { fingerprintOf, visibleResources, visibleTemplates, type Viewer } from './visible.js';

/** Subscriptions one session may hold at once: each costs the proxy (and, the first per URI, the upstream) state. */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 256;

/** The resource a URI a client used names, or a denial (audited) when none. */
function resolve(session: ProxySession, caller: Caller, wire: unknown, method: string): { server: string; uri: string; qualified: string } {
  const { upstreams, enforcer } = session.deps;
  const target = typeof wire === 'string' && wire.length <= MAX_RESOURCE_URI_LENGTH + 200 ? upstreams.resolveResource(wire) : undefined;
  if (target !== undefined) return target;
  const shown = typeof wire === 'string' ? truncate(wire, 300) : String(typeof wire);
  const reason = `${method}: no upstream serves ${JSON.stringify(shown)}; resource URIs are "<server>:<uri>" as resources/list shows them`;
  try {
    enforcer.record(
      { allowed: false, code: 'no_rule', reason, agent: caller.auth.kind === 'agent' ? caller.auth.agent : null, tokenId: null },
      typeof wire === 'string' ? wire : '(no uri)',
      { uri: wire },
      process.hrtime.bigint(),
    );
  } catch {
    // Denied either way.
  }
  throw deniedError('no_rule', reason);
}

/** Authorizes a request on a resource (audited): the forward and its decision line when allowed, else the denial to throw. */
async function authorize(session: ProxySession, caller: Caller, target: { uri: string; qualified: string }, meta: unknown): Promise<{ forward: Forward; decided: AuditRecord }> {
  const { verdict, decided, forward } = await session.deps.enforcer.authorize(caller, target.qualified, { uri: target.uri }, meta);
  if (forward === undefined || decided === undefined) throw deniedError(verdict.code, verdict.reason);
  return { forward, decided };
}

export function registerResources(session: ProxySession): void {
  const { server, deps } = session;
  const viewer = (extra: Parameters<ProxySession['callerOf']>[0]): Viewer | undefined => {
    const { auth } = session.callerOf(extra);
    return auth.kind === 'rejected' ? undefined : { agent: auth.kind === 'agent' ? auth.agent : undefined };
  };

  /** Both lists, and the fingerprint list_changed compares (resources and templates change together). */
  const lists = (v: Viewer | undefined) => {
    if (v === undefined) return { resources: [], templates: [] };
    const resources = visibleResources(deps.upstreams, deps.policy(), v);
    const templates = visibleTemplates(deps.upstreams, deps.policy(), v);
    session.fingerprints.set('resources', fingerprintOf([resources, templates]));
    return { resources, templates };
  };

  server.setRequestHandler(ListResourcesRequestSchema, (request, extra) => {
    const { items, nextCursor } = page(lists(viewer(extra)).resources, request.params?.cursor);
    return { resources: items, ...(nextCursor !== undefined && { nextCursor }) };
  });

  server.setRequestHandler(ListResourceTemplatesRequestSchema, (request, extra) => {
    const { items, nextCursor } = page(lists(viewer(extra)).templates, request.params?.cursor);
    return { resourceTemplates: items, ...(nextCursor !== undefined && { nextCursor }) };
  });

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const caller = session.callerOf(extra);
    const target = resolve(session, caller, request.params.uri, 'resources/read');
    const { forward, decided } = await authorize(session, caller, target, request.params._meta);
    const started = performance.now();
    let result: Record<string, unknown>;
    try {
      result = await deps.upstreams.request(
        forward.server,
        'resources/read',
        { uri: target.uri, _meta: { [TOKEN_META_KEY]: forward.token } },
        callContext(session, extra, { server: forward.server, name: target.qualified }),
      );
    } catch (error) {
      const failure = asUpstreamFailure(error);
      deps.enforcer.recordOutcome(decided, failure.code === 'not_sent' ? 'upstream_unavailable' : failure.code, `resources/read: ${truncate(failure.message, 300)}`, started);
      throw upstreamFailure(failure, forward.server);
    }
    return readResult(session, forward, result);
  });

  /**
   * This session's subscribes waiting for the upstream, by resource name: they count against
   * the bound, and a second subscribe of the same resource joins the first (the session
   * holds one subscription per resource, so one unsubscribe withdraws it).
   */
  const subscribing = new Map<string, Promise<void>>();

  server.setRequestHandler(SubscribeRequestSchema, async (request, extra) => {
    const caller = session.callerOf(extra);
    const target = resolve(session, caller, request.params.uri, 'resources/subscribe');
    await authorize(session, caller, target, request.params._meta);
    if (!session.subscriptions.has(target.qualified)) {
      const pending = subscribing.get(target.qualified);
      if (pending !== undefined) {
        await pending;
        return {};
      }
      if (session.subscriptions.size + subscribing.size >= MAX_SUBSCRIPTIONS_PER_SESSION) {
        throw new RpcError(ErrorCode.InvalidRequest, `this session already holds ${MAX_SUBSCRIPTIONS_PER_SESSION} resource subscriptions; unsubscribe from one first`);
      }
      const work = (async () => {
        try {
          await deps.upstreams.subscribe(target.server, target.uri);
        } catch (error) {
          throw upstreamFailure(asUpstreamFailure(error), target.server);
        }
        // The session may have closed while the upstream answered: then nothing holds it.
        if (session.isClosed) void deps.upstreams.unsubscribe(target.server, target.uri);
        else session.subscriptions.set(target.qualified, { server: target.server, uri: target.uri, shown: request.params.uri });
      })();
      subscribing.set(target.qualified, work);
      try {
        await work;
      } finally {
        subscribing.delete(target.qualified);
      }
    }
    return {};
  });

  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    // Only this session's own subscription is released; anything else is a no-op.
    const target = deps.upstreams.resolveResource(request.params.uri);
    const held = target === undefined ? undefined : session.subscriptions.get(target.qualified);
    if (target !== undefined && held !== undefined) {
      session.subscriptions.delete(target.qualified);
      await deps.upstreams.unsubscribe(held.server, held.uri);
    }
    return {};
  });
}

/** A read result as the client gets it: `_meta` owned by the proxy, each content's URI under the name the client uses. */
function readResult(session: ProxySession, forward: Forward, result: Record<string, unknown>): ReadResourceResult {
  const contents = Array.isArray(result.contents) ? result.contents : [];
  return {
    ...result,
    contents: contents.map((c: unknown) => {
      if (!isRecord(c) || typeof c.uri !== 'string') return c;
      const shown = session.deps.upstreams.showUri(forward.server, c.uri);
      return shown === undefined ? c : { ...c, uri: shown };
    }),
    _meta: ownedMeta(result._meta, { [DECISION_META_KEY]: forward.meta }),
  } as ReadResourceResult;
}
