/**
 * The upstream MCP servers behind the proxy: one live connection each, what they serve
 * (tools, prompts, resources, resource templates, re-listed when they announce a change),
 * the names clients see them by (src/proxy/exposure.ts), pinning against
 * `capframe.lock.json`, and reconnection with backoff when a server goes away — while the
 * other servers keep working.
 *
 * One connection serves every client session, so what an upstream says about a request
 * must find the session that made it (SPEC §6). Over Streamable HTTP the upstream sends it
 * on the request's own stream and the link is exact (src/proxy/http-upstream-request.ts).
 * Over stdio nothing in the messages links a `sampling/createMessage` or a log message to
 * the call that caused it, so the proxy never guesses: it is relayed only while exactly
 * one request is in flight on that upstream and that request relays; otherwise the
 * upstream gets a JSON-RPC error and the log message is dropped. Progress is exact on
 * both: each request gets a progress token of its own.
 */
import {
  CallToolResultSchema,
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
  ProgressNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ResultSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
  type LoggingLevel,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type ServerCapabilities,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';

import { canonicalJson } from '../audit/canonical-json.js';
import { compareToLock, type LockFile } from '../discover/lock.js';
import { isRecord } from '../lib/is-record.js';
import { MAX_PASSED_DEPTH, nestedDeeperThan } from '../lib/json-depth.js';
import { connectUpstream, listAll, listAllTools, maxResultBytes, upstreamTimeoutMs, type ListMethod, type Upstream, type UpstreamConfig } from '../mcp/connect.js';
import { NotSentError, RefusedAnswer } from '../mcp/stdio-transport.js';
import { MAX_RESOURCE_URI_LENGTH, resourceUriProblem } from '../policy/resource-name.js';
import { DEFAULT_RELAY, type RelayKind } from '../policy/types.js';
import type { CallContext, RelayedRequest } from './call-context.js';
import { Exposure, type ServedNames } from './exposure.js';
import { RpcError, rpcErrorOf } from './rpc-error.js';
import { requestOverHttp, type StreamAnswer, type StreamHandlers, type StreamMessage } from './http-upstream-request.js';
import type { Logger } from './log.js';
import { DEFAULT_SCREEN, isWithheld, screenDefinition, screenPrompt, screenResource, withheldReason, type ScreenedKind, type ScreenSettings } from './screen.js';
import { isValidToolName } from './tool-name.js';
import { UpstreamCallError } from './upstream-error.js';

/** Where a `<server>.<tool>` (or `<server>:<uri>`) name stands. */
export type ToolStatus =
  | { state: 'ok'; server: string; name: string; definition?: Tool }
  | { state: 'unavailable'; server: string; reason: string }
  | { state: 'changed'; server: string; reason: string }
  | { state: 'withheld'; server: string; reason: string }
  | { state: 'unknown'; reason: string };

/** The lists an upstream serves and announces changes of. */
export type ListKind = 'tools' | 'prompts' | 'resources';

/** At most this many prompts, resources and resource templates are kept per server (each). */
export const MAX_LISTED = 10_000;
/** A prompt, resource or template entry larger than this (as JSON) is not served. */
export const MAX_ENTRY_BYTES = 64 * 1024;

/** Progress tokens the proxy hands to stdio upstreams. */
let progressTokens = 0;

/** The relay methods and the kind of each. */
const RELAY_KINDS: Readonly<Record<string, RelayKind>> = { 'sampling/createMessage': 'sampling', 'elicitation/create': 'elicitation', 'roots/list': 'roots' };

/** Which relay kind a server-to-client method is, if it is one. */
export function relayKindOf(method: string): RelayKind | undefined {
  return Object.hasOwn(RELAY_KINDS, method) ? RELAY_KINDS[method] : undefined;
}

/** A server's relay settings with the defaults filled in. */
export function relaySettings(config: UpstreamConfig | undefined): Record<RelayKind, 'allow' | 'deny'> {
  return { ...DEFAULT_RELAY, ...(config?.relay ?? {}) };
}

/** The client capabilities the proxy announces to an upstream: what its relay settings may pass on (form elicitation only). */
function relayCapabilities(config: UpstreamConfig): ClientCapabilities {
  const relay = relaySettings(config);
  return {
    ...(relay.sampling === 'allow' && { sampling: {} }),
    ...(relay.elicitation === 'allow' && { elicitation: {} }),
    ...(relay.roots === 'allow' && { roots: {} }),
  };
}

/** One request in flight on an upstream: the relaying it allows, if any. */
interface InFlight {
  ctx: CallContext | undefined;
}

/** A listed entry withheld by screening: why. */
type Flags = Map<string, string>;

interface ServerState {
  name: string;
  config: UpstreamConfig;
  upstream?: Upstream;
  capabilities?: ServerCapabilities;
  /** Tools to serve, by MCP name. */
  tools: Map<string, Tool>;
  /** Tools whose definition drifted from the lock or that the lock does not know. */
  held: Map<string, string>;
  /** Served tools the screening found poisoned, with the reason; withheld unless `screen.allow` names them. */
  flagged: Flags;
  /** Tools never served because `<server>.<tool>` is not a valid MCP tool name, or the definition nests too deep to pass on. */
  misnamed: number;
  prompts: Map<string, Prompt>;
  promptFlags: Flags;
  /** Resources by URI, templates by URI template. */
  resources: Map<string, Resource>;
  templates: Map<string, ResourceTemplate>;
  resourceFlags: Flags;
  templateFlags: Flags;
  up: boolean;
  lastError?: string;
  restarts: number;
  attempt: number;
  timer?: NodeJS.Timeout;
  inflight: Set<InFlight>;
  /** A re-list running per kind, and whether another was asked for meanwhile. */
  relisting: Partial<Record<ListKind, Promise<void>>>;
  relistAgain: Set<ListKind>;
  /** The log level last set on this upstream. */
  logLevel?: LoggingLevel;
  /** Requests in flight that asked for progress, by the progress token the proxy gave them (stdio). */
  progress: Map<string, CallContext>;
}

export interface UpstreamPoolOptions {
  /** Base directory for stdio servers (the policy file's directory). */
  cwd: string;
  /** Handshake and per-call timeout when a server sets none, in ms. */
  defaultTimeoutMs: number;
  lock?: LockFile;
  log: Logger;
  /** Called when a server goes up or down. */
  onChange?: (server: string, up: boolean) => void;
  /** Called after a server's list of `kind` was re-listed (it announced a change) or the server came up or went down. */
  onListChanged?: (kind: ListKind, server: string) => void;
  /** Called when a server announces that a resource it serves changed (`notifications/resources/updated`). */
  onResourceUpdated?: (server: string, uri: string) => void;
  /** Called when the pool refuses an upstream's request that no call in flight can relay (for the audit log). */
  onRelayRefused?: (entry: { server: string; method: string; reason: string }) => void;
  /** The policy's `screen:` settings, read when lists are built and names looked up (default: screen, allow nothing). */
  screen?: () => ScreenSettings;
  /** First reconnect delay, doubled per failure up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** One tool a server listed, served or not, as the operator console shows it. */
export interface CatalogTool {
  /** The MCP tool name as the server spells it. */
  name: string;
  /** As listed; absent for a tool the lock holds back (its definition is not kept). */
  definition?: Tool;
  /**
   * `served`: in tools/list; `withheld`: screened as poisoned and not allowed;
   * `held`: drifted from the lock or not in it.
   */
  status: 'served' | 'withheld' | 'held';
  /** Why it is withheld or held, or the screening findings a `screen.allow` entry overrides. */
  reason?: string;
  /** `locked`: matches its lock entry; `drifted` / `not_in_lock`: held; `no_lock`: nothing is pinned. */
  pin: 'locked' | 'drifted' | 'not_in_lock' | 'no_lock';
}

/** One server in {@link UpstreamPool.catalog}. */
export interface CatalogServer {
  server: string;
  up: boolean;
  restarts: number;
  /** Why it is down (one line), when it is. */
  lastError?: string;
  tools: CatalogTool[];
  /** Locked tools of this server it no longer lists. */
  lockedMissing: string[];
}

export interface ServerHealth {
  up: boolean;
  tools: number;
  restarts: number;
  pid?: number;
}

/** A served entry as a client sees it: the shown name, the policy name and the upstream's definition. */
export interface Shown<T> {
  /** The name (or URI) the client sees. */
  shown: string;
  /** The name rules decide on: `<server>.<name>`, `<server>:<uri>`, or for a template `<server>:<uri template>`. */
  qualified: string;
  server: string;
  definition: T;
}

export class UpstreamPool {
  private readonly servers = new Map<string, ServerState>();
  private closed = false;
  private exposureCache: Exposure | undefined;
  /** Resource subscriptions held upstream: `<server>\0<uri>` → how many sessions hold it. */
  private readonly subscriptions = new Map<string, number>();
  /** The log level sessions asked for, applied to every upstream that logs. */
  private wantedLogLevel: LoggingLevel | undefined;

  constructor(
    configs: Record<string, UpstreamConfig>,
    private readonly options: UpstreamPoolOptions,
  ) {
    for (const [name, config] of Object.entries(configs)) this.servers.set(name, this.state(name, config));
  }

  private state(name: string, config: UpstreamConfig): ServerState {
    return {
      name,
      config,
      tools: new Map(),
      held: new Map(),
      flagged: new Map(),
      misnamed: 0,
      prompts: new Map(),
      promptFlags: new Map(),
      resources: new Map(),
      templates: new Map(),
      resourceFlags: new Map(),
      templateFlags: new Map(),
      up: false,
      restarts: 0,
      attempt: 0,
      inflight: new Set(),
      relisting: {},
      relistAgain: new Set(),
      progress: new Map(),
    };
  }

  /** True once the pool is closed or `s` was replaced or removed by `reconfigure`: its connection must not be used or renewed. */
  private retired(s: ServerState): boolean {
    return this.closed || this.servers.get(s.name) !== s;
  }

  /** Stops a server `reconfigure` took out of the pool: no reconnect, child stopped. */
  private async retire(s: ServerState): Promise<void> {
    clearTimeout(s.timer);
    s.up = false;
    await s.upstream?.close();
  }

  /** Connects every server in parallel; one that fails is retried in the background. */
  async start(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => this.connect(s)));
  }

  // --- names -----------------------------------------------------------------------------

  /** Who shows what under which name, rebuilt after any list changes. */
  exposure(): Exposure {
    if (this.exposureCache !== undefined) return this.exposureCache;
    const names: ServedNames[] = [...this.servers.values()].map((s) => ({
      server: s.name,
      mode: s.config.names ?? 'qualified',
      tools: s.tools.keys(),
      prompts: s.prompts.keys(),
      servesResources: s.capabilities?.resources !== undefined,
      resources: s.resources.keys(),
      templates: s.templates.keys(),
    }));
    const exposure = new Exposure(names);
    for (const c of exposure.collisions) {
      this.options.log.warn('name withheld: more than one server claims it (shadowing)', { kind: c.kind, name: c.name.slice(0, 300), servers: c.servers });
    }
    this.exposureCache = exposure;
    return exposure;
  }

  private changed(): void {
    this.exposureCache = undefined;
  }

  /** The qualified name a client's tool name stands for, or undefined when none does. */
  resolveTool(name: string): string | undefined {
    const e = this.exposure().tool(name);
    return e === undefined ? undefined : `${e.server}.${e.name}`;
  }

  /** The tools to show: served by an up server, not withheld by screening or shadowing. */
  *tools(): Generator<Shown<Tool>> {
    const screen = this.screenSettings();
    const exposure = this.exposure();
    for (const s of this.servers.values()) {
      if (!s.up) continue;
      for (const [name, definition] of s.tools) {
        const qualified = `${s.name}.${name}`;
        if (s.flagged.has(name) && isWithheld(screen, qualified)) continue;
        const shown = exposure.shown('tool', s.name, name);
        if (shown !== undefined) yield { shown, qualified, server: s.name, definition };
      }
    }
  }

  /** The prompts to show. */
  *prompts(): Generator<Shown<Prompt>> {
    const screen = this.screenSettings();
    const exposure = this.exposure();
    for (const s of this.servers.values()) {
      if (!s.up) continue;
      for (const [name, definition] of s.prompts) {
        const qualified = `${s.name}.${name}`;
        if (s.promptFlags.has(name) && isWithheld(screen, qualified, 'prompt')) continue;
        const shown = exposure.shown('prompt', s.name, name);
        if (shown !== undefined) yield { shown, qualified, server: s.name, definition };
      }
    }
  }

  /** The resources to show. */
  *resources(): Generator<Shown<Resource>> {
    yield* this.listedResources('resource');
  }

  /** The resource templates to show; `qualified` is `<server>:<uri template>`. */
  *templates(): Generator<Shown<ResourceTemplate>> {
    yield* this.listedResources('template');
  }

  private *listedResources<K extends 'resource' | 'template'>(kind: K): Generator<Shown<K extends 'resource' ? Resource : ResourceTemplate>> {
    const screen = this.screenSettings();
    const exposure = this.exposure();
    for (const s of this.servers.values()) {
      if (!s.up) continue;
      const entries = (kind === 'resource' ? s.resources : s.templates) as Map<string, K extends 'resource' ? Resource : ResourceTemplate>;
      const flags = kind === 'resource' ? s.resourceFlags : s.templateFlags;
      for (const [uri, definition] of entries) {
        const qualified = `${s.name}:${uri}`;
        if (flags.has(uri) && isWithheld(screen, qualified, 'resource')) continue;
        const shown = exposure.shownUri(kind, s.name, uri);
        if (shown !== undefined) yield { shown, qualified, server: s.name, definition };
      }
    }
  }

  /** Tools not served per server: screened out (and not allowed) or with an invalid MCP name. For /metrics. */
  withheldCounts(): Record<string, number> {
    const screen = this.screenSettings();
    const out: Record<string, number> = {};
    for (const s of this.servers.values()) {
      let count = s.misnamed;
      for (const name of s.flagged.keys()) if (isWithheld(screen, `${s.name}.${name}`)) count += 1;
      out[s.name] = count;
    }
    return out;
  }

  /**
   * Resolves a `<server>.<tool>` name, or a resource name `<server>:<uri>` (whose state
   * is the server's: a URI need not be listed to be read). Server names are the policy's
   * keys; tool names may contain dots.
   */
  lookup(qualified: string): ToolStatus {
    const colon = qualified.indexOf(':');
    const dot = qualified.indexOf('.');
    const cut = colon > 0 && (dot === -1 || colon < dot) ? colon : dot;
    const s = cut > 0 ? this.servers.get(qualified.slice(0, cut)) : undefined;
    if (s === undefined) return { state: 'unknown', reason: `no upstream server serves "${qualified.slice(0, 300)}"` };
    const name = qualified.slice(cut + 1);
    if (!s.up) return { state: 'unavailable', server: s.name, reason: `upstream "${s.name}" is unavailable${s.lastError ? `: ${s.lastError}` : ''}` };
    if (cut === colon) return this.lookupResource(s, name);
    const held = s.held.get(name);
    if (held !== undefined) return { state: 'changed', server: s.name, reason: held };
    const definition = s.tools.get(name);
    if (definition === undefined) return { state: 'unknown', reason: `upstream "${s.name}" has no tool "${name}"` };
    if (s.flagged.size > 0) {
      const flagged = s.flagged.get(name);
      if (flagged !== undefined && isWithheld(this.screenSettings(), qualified)) return { state: 'withheld', server: s.name, reason: flagged };
    }
    return { state: 'ok', server: s.name, name, definition };
  }

  private lookupResource(s: ServerState, uri: string): ToolStatus {
    if (s.capabilities?.resources === undefined) return { state: 'unknown', reason: `upstream "${s.name}" serves no resources` };
    const flagged = s.resourceFlags.get(uri);
    if (flagged !== undefined && isWithheld(this.screenSettings(), `${s.name}:${uri}`, 'resource')) return { state: 'withheld', server: s.name, reason: flagged };
    return { state: 'ok', server: s.name, name: uri };
  }

  /** Where a prompt name a client used stands: the server and the upstream's name, or why not. */
  lookupPrompt(shown: string): ToolStatus & { qualified?: string } {
    const e = this.exposure().prompt(shown);
    if (e === undefined) return { state: 'unknown', reason: `no upstream server serves a prompt ${JSON.stringify(shown.slice(0, 200))}` };
    const s = this.servers.get(e.server);
    const qualified = `${e.server}.${e.name}`;
    if (s === undefined || !s.up) return { state: 'unavailable', server: e.server, reason: `upstream "${e.server}" is unavailable${s?.lastError ? `: ${s.lastError}` : ''}`, qualified };
    const flagged = s.promptFlags.get(e.name);
    if (flagged !== undefined && isWithheld(this.screenSettings(), qualified, 'prompt')) return { state: 'withheld', server: e.server, reason: flagged, qualified };
    if (!s.prompts.has(e.name)) return { state: 'unknown', reason: `upstream "${e.server}" has no prompt ${JSON.stringify(e.name.slice(0, 200))}`, qualified };
    return { state: 'ok', server: e.server, name: e.name, qualified };
  }

  /** The server and upstream URI a URI a client used stands for, or undefined when none. */
  resolveResource(wire: string): { server: string; uri: string; qualified: string } | undefined {
    const e = this.exposure().resource(wire);
    return e === undefined ? undefined : { server: e.server, uri: e.name, qualified: `${e.server}:${e.name}` };
  }

  /** The URI a client sees for `uri` of `server`, or undefined when it is not exposed. */
  showUri(server: string, uri: string): string | undefined {
    return this.exposure().shownUri('resource', server, uri);
  }

  /** A server's configuration, as the policy gives it. */
  config(server: string): UpstreamConfig | undefined {
    return this.servers.get(server)?.config;
  }

  /** What an up server declared it serves. */
  capabilities(server: string): ServerCapabilities | undefined {
    const s = this.servers.get(server);
    return s?.up === true ? s.capabilities : undefined;
  }

  // --- requests --------------------------------------------------------------------------

  /**
   * Calls a tool on its upstream within the server's timeout and `max_result_bytes`.
   * Throws an UpstreamCallError: `not_sent` when the call provably did not leave the
   * proxy (server down, transport closed), else what became of the sent call.
   */
  async call(server: string, name: string, args: Record<string, unknown>, meta: Record<string, unknown>, ctx?: CallContext): Promise<CallToolResult> {
    return (await this.request(server, 'tools/call', { name, arguments: args, _meta: meta }, ctx)) as CallToolResult;
  }

  /**
   * Sends one request of a client session to an upstream (`tools/call`, `resources/read`,
   * `prompts/get`, `completion/complete`, …) and returns its result object, relaying what
   * the upstream says about it through `ctx`. Throws like {@link call}.
   */
  async request(server: string, method: string, params: Record<string, unknown>, ctx?: CallContext): Promise<Record<string, unknown>> {
    const s = this.servers.get(server);
    const upstream = s?.upstream;
    if (s === undefined || upstream === undefined || !s.up) throw new UpstreamCallError(`upstream "${server}" is unavailable`, 'not_sent');
    const timeout = upstreamTimeoutMs(s.config, this.options.defaultTimeoutMs);
    if (upstream.http !== undefined) {
      try {
        return await requestOverHttp(upstream.http, method, params, {
          timeoutMs: timeout,
          maxResultBytes: maxResultBytes(s.config),
          ...(ctx !== undefined && { handlers: this.streamHandlers(s, ctx) }),
          ...(ctx?.signal !== undefined && { signal: ctx.signal }),
          onProblem: (message) => this.options.log.warn('upstream exchange problem', { server, message }),
        });
      } catch (error) {
        // 404 on a session we negotiated: the upstream restarted and forgot it.
        if (error instanceof UpstreamCallError && error.status === 404) this.lost(s, upstream, 'session expired (HTTP 404)');
        throw error;
      }
    }
    // The SDK would report a closed client as a plain "Not connected" Error: check first.
    if (upstream.client.transport === undefined) throw new UpstreamCallError(`upstream "${server}" is not connected`, 'not_sent');
    const entry: InFlight = { ctx };
    // A progress token of the proxy's own, unique on this connection. (Not the SDK's
    // onprogress: it drops the progress that arrives just before the answer.)
    const progressToken = ctx?.onProgress === undefined ? undefined : `capframe-p-${++progressTokens}`;
    const sent = progressToken === undefined ? params : { ...params, _meta: { ...(isRecord(params._meta) ? params._meta : {}), progressToken } };
    s.inflight.add(entry);
    if (progressToken !== undefined) s.progress.set(progressToken, ctx!);
    try {
      // request(), not callTool(): the proxy passes results through; validating them
      // against the tool's output schema is the agent's client's business.
      return (await upstream.client.request({ method, params: sent } as never, method === 'tools/call' ? CallToolResultSchema : ResultSchema, {
        timeout,
        ...(ctx?.signal !== undefined && { signal: ctx.signal }),
      })) as Record<string, unknown>;
    } catch (error) {
      throw stdioFailure(error, ctx?.signal);
    } finally {
      // Notifications that came before the answer have been handled by now (the SDK
      // dispatches them before it resolves the request).
      s.inflight.delete(entry);
      if (progressToken !== undefined) s.progress.delete(progressToken);
    }
  }

  /** How the messages on an HTTP request's own stream reach the session that made it. */
  private streamHandlers(s: ServerState, ctx: CallContext): StreamHandlers {
    const pending = new Map<string | number, AbortController>();
    return {
      ...(ctx.onProgress !== undefined && { onProgress: (params: Record<string, unknown>) => ctx.onProgress!(withoutToken(params)) }),
      onNotification: (message: StreamMessage) => {
        if (message.method === 'notifications/message') {
          const parsed = LoggingMessageNotificationSchema.safeParse(message);
          if (parsed.success) ctx.onLog?.(parsed.data.params);
        } else if (message.method === 'notifications/cancelled') {
          // The upstream gave up one of its own requests: stop waiting for the client's answer.
          const id = message.params?.requestId;
          if (typeof id === 'string' || typeof id === 'number') pending.get(id)?.abort(new Error('cancelled by the upstream'));
        } else {
          this.onUpstreamNotification(s, message);
        }
      },
      onRequest: async (message: StreamMessage): Promise<StreamAnswer> => {
        const controller = new AbortController();
        pending.set(message.id!, controller);
        try {
          return { result: await this.relay(s, ctx, { method: message.method, ...(message.params !== undefined && { params: message.params }) }, controller.signal) };
        } catch (error) {
          return { error: rpcErrorOf(error) };
        } finally {
          pending.delete(message.id!);
        }
      },
    };
  }

  /** Hands an upstream's request to the session of the call it belongs to; refuses when there is none. */
  private relay(s: ServerState, ctx: CallContext | undefined, request: RelayedRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (ctx?.onRequest === undefined) {
      const reason =
        ctx === undefined
          ? 'no call that relays it is in flight on this upstream (over stdio: exactly one must be)'
          : 'the calling client cannot receive it (it declared no capability this server may relay to it)';
      this.options.onRelayRefused?.({ server: s.name, method: request.method, reason });
      return Promise.reject(new RpcError(ErrorCode.MethodNotFound, `capframe: ${request.method} is not relayed: ${reason}`));
    }
    return ctx.onRequest(request, signal);
  }

  /** The one request in flight on a stdio upstream, when there is exactly one. */
  private soleRequest(s: ServerState): CallContext | undefined {
    if (s.inflight.size !== 1) return undefined;
    for (const entry of s.inflight) return entry.ctx;
    return undefined;
  }

  // --- subscriptions and logging ---------------------------------------------------------

  /**
   * Holds a subscription to `uri` on `server` for one more session: the first one is sent
   * upstream (`resources/subscribe`); later ones only count. Throws when the upstream
   * refuses (the count is not kept) or does not support subscriptions.
   */
  async subscribe(server: string, uri: string): Promise<void> {
    const s = this.servers.get(server);
    if (s === undefined || !s.up || s.upstream === undefined) throw new UpstreamCallError(`upstream "${server}" is unavailable`, 'not_sent');
    if (s.capabilities?.resources?.subscribe !== true) throw new UpstreamCallError(`upstream "${server}" does not support resource subscriptions`, 'not_sent');
    const key = `${server}\u0000${uri}`;
    const count = this.subscriptions.get(key) ?? 0;
    this.subscriptions.set(key, count + 1);
    if (count > 0) return;
    try {
      await this.own(s, (client, timeout) => client.subscribeResource({ uri }, { timeout }));
    } catch (error) {
      this.release(key);
      throw error instanceof UpstreamCallError ? error : stdioFailure(error);
    }
  }

  /** Gives up one session's subscription to `uri`; the last one is withdrawn upstream. */
  async unsubscribe(server: string, uri: string): Promise<void> {
    const key = `${server}\u0000${uri}`;
    if (!this.release(key)) return;
    const s = this.servers.get(server);
    if (s === undefined || !s.up) return;
    await this.own(s, (client, timeout) => client.unsubscribeResource({ uri }, { timeout })).catch((error: unknown) =>
      this.options.log.warn('resources/unsubscribe failed upstream', { server, error: (error as Error).message }),
    );
  }

  /** Drops one hold on a subscription; true when it was the last. */
  private release(key: string): boolean {
    const count = this.subscriptions.get(key);
    if (count === undefined) return false;
    if (count > 1) {
      this.subscriptions.set(key, count - 1);
      return false;
    }
    this.subscriptions.delete(key);
    return true;
  }

  /**
   * The log level every upstream that logs should send at: the most verbose any session
   * asked for (each session's own level filters what it receives). Undefined leaves the
   * upstreams as they are.
   */
  setLogLevel(level: LoggingLevel | undefined): void {
    this.wantedLogLevel = level;
    for (const s of this.servers.values()) void this.applyLogLevel(s);
  }

  private async applyLogLevel(s: ServerState): Promise<void> {
    const level = this.wantedLogLevel;
    if (level === undefined || !s.up || s.capabilities?.logging === undefined || s.logLevel === level) return;
    s.logLevel = level;
    await this.own(s, (client, timeout) => client.setLoggingLevel(level, { timeout })).catch((error: unknown) => {
      delete s.logLevel;
      this.options.log.warn('logging/setLevel failed upstream', { server: s.name, error: (error as Error).message });
    });
  }

  /** A request of the proxy's own on an upstream, counted in flight (it relays nothing). */
  private async own<T>(s: ServerState, work: (client: Upstream['client'], timeout: number) => Promise<T>): Promise<T> {
    const upstream = s.upstream;
    if (upstream === undefined) throw new UpstreamCallError(`upstream "${s.name}" is unavailable`, 'not_sent');
    const entry: InFlight = { ctx: undefined };
    s.inflight.add(entry);
    try {
      return await work(upstream.client, upstreamTimeoutMs(s.config, this.options.defaultTimeoutMs));
    } finally {
      s.inflight.delete(entry);
    }
  }

  // --- health and configuration ----------------------------------------------------------

  /**
   * Every tool each server last listed, served or not, with its pin state: what the
   * operator console shows. Tools of a server that is down are its last listing.
   */
  catalog(): CatalogServer[] {
    const screen = this.screenSettings();
    const lock = this.options.lock;
    return [...this.servers.values()].map((s) => {
      const tools: CatalogTool[] = [];
      for (const [name, definition] of s.tools) {
        const flagged = s.flagged.get(name);
        const withheld = flagged !== undefined && isWithheld(screen, `${s.name}.${name}`);
        tools.push({ name, definition, status: withheld ? 'withheld' : 'served', ...(flagged !== undefined && { reason: flagged }), pin: lock === undefined ? 'no_lock' : 'locked' });
      }
      for (const [name, reason] of s.held) {
        tools.push({ name, status: 'held', reason, pin: lock !== undefined && Object.hasOwn(lock.tools, `${s.name}.${name}`) ? 'drifted' : 'not_in_lock' });
      }
      const listed = new Set([...s.tools.keys(), ...s.held.keys()]);
      const lockedMissing = s.up && lock !== undefined ? Object.values(lock.tools).filter((e) => e.server === s.name && !listed.has(e.tool)).map((e) => e.tool) : [];
      return { server: s.name, up: s.up, restarts: s.restarts, ...(s.lastError !== undefined && { lastError: s.lastError }), tools, lockedMissing };
    });
  }

  health(): Record<string, ServerHealth> {
    const out: Record<string, ServerHealth> = {};
    for (const s of this.servers.values()) {
      out[s.name] = {
        up: s.up,
        tools: s.tools.size,
        restarts: s.restarts,
        ...(s.upstream?.pid !== undefined && { pid: s.upstream.pid }),
      };
    }
    return out;
  }

  /**
   * Applies a reloaded policy's `servers` block: a server only in `configs` is
   * started, one no longer in it is stopped (its tools disappear at once, calls
   * to them answer `no_rule`), and one whose configuration changed in any field
   * is restarted (its tools answer `upstream_unavailable` until it is back).
   * Unchanged servers keep their connection. Each change is logged. Resolves once
   * removed servers are stopped and added or restarted ones have had their first
   * connection attempt; a failed one keeps retrying with backoff, as at start.
   *
   * @example
   * watchPolicy(file, { onReload: (p) => void pool.reconfigure(p.servers), onError });
   */
  async reconfigure(configs: Record<string, UpstreamConfig>): Promise<{ added: string[]; removed: string[]; restarted: string[] }> {
    const result = { added: [] as string[], removed: [] as string[], restarted: [] as string[] };
    if (this.closed) return result;
    const { log } = this.options;
    const stopping: Promise<void>[] = [];
    const starting: ServerState[] = [];
    // The map changes synchronously, so a second reload that arrives while this one
    // awaits sees the new set and diffs against it.
    for (const [name, old] of [...this.servers]) {
      const config = Object.hasOwn(configs, name) ? configs[name] : undefined;
      if (config !== undefined && canonicalJson(config) === canonicalJson(old.config)) continue;
      this.servers.delete(name);
      stopping.push(this.retire(old));
      if (config === undefined) {
        result.removed.push(name);
        log.info('upstream removed by policy reload; stopping it', { server: name, pid: old.upstream?.pid });
        this.options.onChange?.(name, false);
      } else {
        const next = this.state(name, config);
        next.restarts = old.restarts + 1;
        this.servers.set(name, next);
        starting.push(next);
        result.restarted.push(name);
        log.info('upstream changed by policy reload; restarting it', { server: name, pid: old.upstream?.pid, changed: changedFields(old.config, config) });
      }
    }
    for (const [name, config] of Object.entries(configs)) {
      if (this.servers.has(name)) continue;
      const next = this.state(name, config);
      this.servers.set(name, next);
      starting.push(next);
      result.added.push(name);
      log.info('upstream added by policy reload; starting it', { server: name });
    }
    this.changed();
    for (const name of result.removed) this.announceAll(name);
    await Promise.all(stopping);
    await Promise.all(starting.map((state) => this.connect(state)));
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.servers.values()].map(async (s) => {
        clearTimeout(s.timer);
        s.up = false;
        await s.upstream?.close();
      }),
    );
  }

  // --- connection ------------------------------------------------------------------------

  private async connect(s: ServerState): Promise<void> {
    const { log } = this.options;
    const timeoutMs = upstreamTimeoutMs(s.config, this.options.defaultTimeoutMs);
    try {
      const upstream = await connectUpstream(s.name, s.config, {
        timeoutMs,
        cwd: this.options.cwd,
        capabilities: relayCapabilities(s.config),
        onStderr: (text) => log.debug('upstream stderr', { server: s.name, text: text.trimEnd().slice(0, 2000) }),
      });
      if (this.retired(s)) {
        await upstream.close();
        return;
      }
      this.listen(s, upstream);
      const capabilities = upstream.client.getServerCapabilities() ?? {};
      const tools = await listAllTools(upstream.client, { timeoutMs });
      if (this.retired(s)) {
        await upstream.close();
        return;
      }
      s.upstream = upstream;
      s.capabilities = capabilities;
      this.setTools(s, tools);
      // Prompts and resources are listed as well; one that fails leaves that list empty, not the server down.
      await Promise.all([this.relistNow(s, 'prompts', false), this.relistNow(s, 'resources', false)]);
      if (this.retired(s)) {
        await upstream.close();
        return;
      }
      s.up = true;
      s.attempt = 0;
      delete s.lastError;
      delete s.logLevel;
      this.changed();
      // A stdio child that dies closes the transport: mark the server down and reconnect.
      upstream.client.onclose = () => this.lost(s, upstream, 'connection closed');
      // E.g. an oversized or malformed message that names no request: dropped, and said so.
      upstream.client.onerror = (error) => log.debug('upstream protocol error', { server: s.name, error: error.message.slice(0, 300) });
      log.info('upstream connected', {
        server: s.name,
        transport: upstream.transport,
        pid: upstream.pid,
        tools: s.tools.size,
        held: s.held.size,
        prompts: s.prompts.size,
        resources: s.resources.size,
        templates: s.templates.size,
      });
      this.options.onChange?.(s.name, true);
      this.announceAll(s.name);
      void this.applyLogLevel(s);
      void this.resubscribe(s);
    } catch (error) {
      if (this.retired(s)) return;
      s.up = false;
      // The first line says what failed; the rest is the child's stderr, for the operator's
      // log only: agents see lastError in denials, and stderr can quote configuration.
      const [first = '', ...stderr] = (error as Error).message.split('\n');
      s.lastError = first;
      log.error('upstream unavailable', { server: s.name, error: first, ...(stderr.length > 0 && { stderr: stderr.map((l) => l.replace(/^ {2}stderr: /, '')) }) });
      this.options.onChange?.(s.name, false);
      this.schedule(s);
    }
  }

  /** Handlers for what an upstream sends outside any request of a session (and, over stdio, inside one). */
  private listen(s: ServerState, upstream: Upstream): void {
    const { client } = upstream;
    const stdio = upstream.http === undefined;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => this.relist(s, 'tools'));
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => this.relist(s, 'prompts'));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => this.relist(s, 'resources'));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => this.resourceUpdated(s, n.params.uri));
    client.setNotificationHandler(ProgressNotificationSchema, (n) => {
      const { progressToken, ...rest } = n.params;
      s.progress.get(String(progressToken))?.onProgress?.(rest);
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      // Over HTTP a request's log messages come on its own stream; here they are not tied to
      // one. Over stdio they are, when exactly one request is in flight.
      const ctx = stdio ? this.soleRequest(s) : undefined;
      if (ctx?.onLog !== undefined) ctx.onLog(n.params);
      else this.options.log.debug('upstream log message not relayed: no single request it belongs to', { server: s.name });
    });
    // Every request: sampling, elicitation and roots only reach a session through a call in
    // flight; anything else (and anything the capabilities did not announce) is refused.
    client.fallbackRequestHandler = async (request, extra: RequestHandlerExtra<never, never>) => {
      const relayed: RelayedRequest = { method: request.method, ...(isRecord(request.params) && { params: request.params }) };
      if (relayKindOf(request.method) === undefined) {
        this.options.onRelayRefused?.({ server: s.name, method: request.method, reason: 'the proxy relays no such request' });
        throw new RpcError(ErrorCode.MethodNotFound, `capframe: ${request.method} is not relayed`);
      }
      return this.relay(s, stdio ? this.soleRequest(s) : undefined, relayed, extra.signal) as never;
    };
  }

  /** A notification from a request's stream that concerns the server as a whole. */
  private onUpstreamNotification(s: ServerState, message: StreamMessage): void {
    switch (message.method) {
      case 'notifications/tools/list_changed':
        return this.relist(s, 'tools');
      case 'notifications/prompts/list_changed':
        return this.relist(s, 'prompts');
      case 'notifications/resources/list_changed':
        return this.relist(s, 'resources');
      case 'notifications/resources/updated': {
        const uri = message.params?.uri;
        if (typeof uri === 'string') this.resourceUpdated(s, uri);
        return;
      }
      default:
        this.options.log.debug('upstream notification not relayed', { server: s.name, method: message.method.slice(0, 100) });
    }
  }

  private resourceUpdated(s: ServerState, uri: string): void {
    if (uri.length > MAX_RESOURCE_URI_LENGTH || this.retired(s)) return;
    this.options.onResourceUpdated?.(s.name, uri);
  }

  /** Re-lists `kind` after the upstream announced a change: one at a time per kind, coalescing bursts. */
  private relist(s: ServerState, kind: ListKind): void {
    if (this.retired(s) || !s.up) return;
    if (s.relisting[kind] !== undefined) {
      s.relistAgain.add(kind);
      return;
    }
    const run = async (): Promise<void> => {
      // A short pause gathers a burst of announcements into one re-list.
      await new Promise((resolve) => setTimeout(resolve, 50).unref());
      do {
        s.relistAgain.delete(kind);
        await this.relistNow(s, kind, true);
      } while (s.relistAgain.has(kind) && !this.retired(s) && s.up);
    };
    s.relisting[kind] = run().finally(() => delete s.relisting[kind]);
  }

  /** Lists `kind` from the upstream now and applies it; a failure keeps the previous list. */
  private async relistNow(s: ServerState, kind: ListKind, announce: boolean): Promise<void> {
    const upstream = s.upstream;
    if (upstream === undefined) return;
    const timeoutMs = upstreamTimeoutMs(s.config, this.options.defaultTimeoutMs);
    try {
      if (kind === 'tools') {
        const tools = await this.own(s, (client) => listAllTools(client, { timeoutMs }));
        if (s.upstream !== upstream) return;
        this.setTools(s, tools);
      } else if (kind === 'prompts') {
        if (s.capabilities?.prompts === undefined) return;
        const prompts = await this.listKind(s, 'prompts/list', timeoutMs);
        if (s.upstream !== upstream) return;
        this.setPrompts(s, prompts);
      } else {
        if (s.capabilities?.resources === undefined) return;
        const [resources, templates] = await Promise.all([this.listKind(s, 'resources/list', timeoutMs), this.listKind(s, 'resources/templates/list', timeoutMs)]);
        if (s.upstream !== upstream) return;
        this.setResources(s, resources, templates);
      }
    } catch (error) {
      this.options.log.warn(`${kind} could not be listed; the previous list stays`, { server: s.name, error: (error as Error).message.slice(0, 300) });
      return;
    }
    this.changed();
    if (announce) {
      this.options.log.info('upstream list re-listed after it announced a change', { server: s.name, kind });
      this.options.onListChanged?.(kind, s.name);
    }
  }

  private async listKind(s: ServerState, method: ListMethod, timeoutMs: number): Promise<unknown[]> {
    const { items, truncated } = await this.own(s, (client) => listAll(client, method, { timeoutMs, maxItems: MAX_LISTED }));
    if (truncated) this.options.log.warn(`${method}: more than ${MAX_LISTED} entries; the rest are not served`, { server: s.name });
    return items;
  }

  private announceAll(server: string): void {
    for (const kind of ['tools', 'prompts', 'resources'] as const) this.options.onListChanged?.(kind, server);
  }

  private async resubscribe(s: ServerState): Promise<void> {
    if (s.capabilities?.resources?.subscribe !== true) return;
    for (const key of this.subscriptions.keys()) {
      const [server, uri] = key.split('\u0000') as [string, string];
      if (server !== s.name) continue;
      await this.own(s, (client, timeout) => client.subscribeResource({ uri }, { timeout })).catch((error: unknown) =>
        this.options.log.warn('resources/subscribe failed after reconnecting', { server, error: (error as Error).message }),
      );
    }
  }

  /** Marks a server down after its connection failed, and reconnects with backoff. */
  private lost(s: ServerState, upstream: Upstream, reason: string): void {
    if (this.closed || s.upstream !== upstream || !s.up) return;
    s.up = false;
    s.lastError = reason;
    this.options.log.warn('upstream went away', { server: s.name, pid: upstream.pid, reason });
    this.options.onChange?.(s.name, false);
    this.announceAll(s.name);
    this.schedule(s);
  }

  private schedule(s: ServerState): void {
    if (this.retired(s)) return;
    const base = this.options.backoffMs ?? 250;
    const delay = Math.min(base * 2 ** s.attempt, this.options.maxBackoffMs ?? 10_000);
    s.attempt += 1;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.restarts += 1;
      const previous = s.upstream;
      delete s.upstream;
      void previous?.close().finally(() => this.connect(s));
      if (previous === undefined) void this.connect(s);
    }, delay);
    s.timer.unref();
  }

  // --- lists -----------------------------------------------------------------------------

  /**
   * Applies the lock (drifted or unknown tools are held back, with the reason), leaves
   * out tools whose `<server>.<tool>` is not a valid MCP tool name, and screens the rest:
   * a poisoned definition is flagged, and withheld unless `screen.allow` names it.
   */
  private setTools(s: ServerState, tools: Tool[]): void {
    s.tools = new Map();
    s.held = new Map();
    s.flagged = new Map();
    s.misnamed = 0;
    const { log } = this.options;
    const lock = this.options.lock;
    const diff = lock === undefined ? undefined : compareToLock(lock, s.name, tools);
    const changed = new Map(diff?.changed.map((c) => [c.tool, c.fields]) ?? []);
    const added = new Set(diff?.added ?? []);
    for (const tool of tools) {
      const qualified = `${s.name}.${tool.name}`;
      const fields = changed.get(qualified);
      if (!isValidToolName(qualified)) {
        // No agent could call it: the proxy refuses names outside the MCP rules.
        s.misnamed += 1;
        log.warn('tool not served: its name is not a valid MCP tool name', { server: s.name, tool: JSON.stringify(tool.name.slice(0, 200)) });
      } else if (nestedDeeperThan(tool, MAX_PASSED_DEPTH)) {
        // Serving it would break tools/list for every agent: JSON.stringify overflows the stack.
        s.misnamed += 1;
        log.warn(`tool not served: its definition is nested deeper than ${MAX_PASSED_DEPTH} levels`, { tool: qualified });
      } else if (fields !== undefined) {
        const reason = `definition of ${qualified} changed since it was locked (${fields.join(', ')}); review it and re-run \`capframe discover --lock\``;
        s.held.set(tool.name, reason);
        log.warn('tool definition drifted from the lock', { tool: qualified, fields });
      } else if (added.has(qualified)) {
        s.held.set(tool.name, `${qualified} is not in capframe.lock.json; review it and re-run \`capframe discover --lock\``);
        log.warn('tool not in the lock is not served', { tool: qualified });
      } else {
        s.tools.set(tool.name, tool);
        this.screen(s.flagged, 'tool', tool.name, qualified, screenDefinition(s.name, tool));
      }
    }
  }

  private setPrompts(s: ServerState, items: unknown[]): void {
    const prompts = new Map<string, Prompt>();
    const flags: Flags = new Map();
    let skipped = 0;
    for (const item of items) {
      const p = item as Prompt;
      const qualified = `${s.name}.${p.name}`;
      if (!isValidToolName(qualified) || prompts.has(p.name) || tooLarge(item)) {
        skipped += 1;
        continue;
      }
      prompts.set(p.name, p);
      this.screen(flags, 'prompt', p.name, qualified, screenPrompt(s.name, p));
    }
    if (skipped > 0) this.options.log.warn('prompts not served: names that are not valid MCP names, duplicates or entries over 64 KiB', { server: s.name, count: skipped });
    s.prompts = prompts;
    s.promptFlags = flags;
  }

  private setResources(s: ServerState, resourceItems: unknown[], templateItems: unknown[]): void {
    const resources = new Map<string, Resource>();
    const templates = new Map<string, ResourceTemplate>();
    const resourceFlags: Flags = new Map();
    const templateFlags: Flags = new Map();
    let skipped = 0;
    for (const item of resourceItems) {
      const r = item as Resource;
      // A URI that cannot be judged (not in normal form) could never be read: not listed.
      if (resourceUriProblem(r.uri) !== undefined || resources.has(r.uri) || tooLarge(item)) {
        skipped += 1;
        continue;
      }
      resources.set(r.uri, r);
      this.screen(resourceFlags, 'resource', r.uri, `${s.name}:${r.uri}`, screenResource(s.name, r));
    }
    for (const item of templateItems) {
      const t = item as ResourceTemplate;
      if (t.uriTemplate.length > MAX_RESOURCE_URI_LENGTH || /[\x00-\x20\x7f]/.test(t.uriTemplate) || templates.has(t.uriTemplate) || tooLarge(item)) {
        skipped += 1;
        continue;
      }
      templates.set(t.uriTemplate, t);
      this.screen(templateFlags, 'resource', t.uriTemplate, `${s.name}:${t.uriTemplate}`, screenResource(s.name, t));
    }
    if (skipped > 0) this.options.log.warn('resources not served: URIs not in normal form, over 4096 characters, duplicates or entries over 64 KiB', { server: s.name, count: skipped });
    s.resources = resources;
    s.templates = templates;
    s.resourceFlags = resourceFlags;
    s.templateFlags = templateFlags;
  }

  /** Flags a screened definition and logs whether it is withheld. */
  private screen(flags: Flags, kind: ScreenedKind, key: string, qualified: string, findings: ReturnType<typeof screenDefinition>): void {
    if (findings.length === 0) return;
    flags.set(key, withheldReason(qualified, findings));
    const rules = findings.map((f) => f.rule);
    const name = qualified.slice(0, 300);
    if (isWithheld(this.screenSettings(), qualified, kind)) {
      this.options.log.warn(`${kind} withheld: its definition was screened as poisoned`, { [kind]: name, rules, detail: findings.map((f) => f.detail) });
    } else {
      this.options.log.info(`${kind} served despite screening findings`, { [kind]: name, rules, by: 'screen settings' });
    }
  }

  private screenSettings(): ScreenSettings {
    return this.options.screen?.() ?? DEFAULT_SCREEN;
  }
}

/** An entry whose JSON exceeds {@link MAX_ENTRY_BYTES}. */
function tooLarge(item: unknown): boolean {
  try {
    return JSON.stringify(item).length > MAX_ENTRY_BYTES;
  } catch {
    return true;
  }
}

function withoutToken(params: Record<string, unknown>): Record<string, unknown> {
  const { progressToken: _token, ...rest } = params;
  return rest;
}


/** What became of a request on a stdio upstream, from the SDK client's error. */
function stdioFailure(error: unknown, signal?: AbortSignal): UpstreamCallError {
  if (error instanceof UpstreamCallError) return error;
  if (signal?.aborted === true) return new UpstreamCallError('the client cancelled the request', 'cancelled');
  if (error instanceof NotSentError) return new UpstreamCallError(error.message, 'not_sent');
  if (error instanceof McpError) {
    if (error.data instanceof RefusedAnswer) return new UpstreamCallError(error.data.reason, error.data.code);
    if (error.code === ErrorCode.RequestTimeout) return new UpstreamCallError('no answer within the timeout', 'upstream_timeout');
    if (error.code === ErrorCode.ConnectionClosed) return new UpstreamCallError('the connection closed before the answer', 'upstream_disconnected');
    return new UpstreamCallError(error.message, 'upstream_error', undefined, { code: error.code, message: error.message.replace(/^MCP error -?\d+: /, '') });
  }
  const message = error instanceof Error ? error.message : String(error);
  // Protocol.request rejects this way, before sending, when its transport is gone.
  if (error instanceof Error && message === 'Not connected') return new UpstreamCallError('the upstream is not connected', 'not_sent');
  // A result that failed the CallToolResult schema (a ZodError), or anything else the answer caused.
  return new UpstreamCallError(`the answer is not a valid result: ${message.slice(0, 300)}`, 'malformed_result');
}

/** Top-level keys of a server entry that differ (names only: values such as env may be secrets). */
function changedFields(before: UpstreamConfig, after: UpstreamConfig): string[] {
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k] ?? null) !== canonicalJson(b[k] ?? null)).sort();
}
