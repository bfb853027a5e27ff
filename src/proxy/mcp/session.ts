/**
 * One client session of the proxy: its SDK `Server`, who it belongs to, and the state the
 * proxy keeps for it alone (SPEC §6) — its log level, its resource subscriptions, what
 * its lists looked like when last announced, the fast-path calls it may cancel, and the
 * budget that bounds what is relayed to it.
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';

import type { Policy } from '../../policy/types.js';
import type { AuthResult } from '../auth.js';
import { callerWith, type Caller, type Enforcer } from '../enforce.js';
import type { Logger } from '../log.js';
import type { ListKind, UpstreamPool } from '../upstreams.js';

export interface SessionDeps {
  enforcer: Enforcer;
  upstreams: UpstreamPool;
  policy: () => Policy;
  log: Logger;
  /** Where sessions register for list changes, resource updates and log levels. */
  hub: SessionHub;
  /** Authentication for transports without per-request auth (stdio), evaluated per request. */
  defaultAuth?: () => AuthResult;
}

/** What a session registry does for the sessions in it (src/proxy/mcp/hub.ts). */
export interface SessionHub {
  add(session: ProxySession): void;
  remove(session: ProxySession): void;
  /** A session's log level changed. */
  levelsChanged(): void;
}

/** The request parts handlers read: who is calling, from the transport. */
export interface ExtraWithAuth {
  authInfo?: AuthInfo;
  requestInfo?: { headers: Record<string, string | string[] | undefined> };
}

/** A resource subscription a session holds, under the names it is known by. */
export interface Subscription {
  server: string;
  uri: string;
  /** The URI the client subscribed with, which updates are announced under. */
  shown: string;
}

/**
 * Relayed notifications per session: a bucket of {@link RELAY_BURST}, refilled at
 * {@link RELAY_PER_SECOND}. An upstream flooding a session loses the excess, counted and
 * logged, instead of filling the proxy's memory with a backlog.
 */
export const RELAY_BURST = 1000;
export const RELAY_PER_SECOND = 200;

export class ProxySession {
  /** The level the client set with `logging/setLevel`; until then it receives no log messages. */
  logLevel: LoggingLevel | undefined;
  /** Subscriptions by resource name (`<server>:<uri>`). */
  readonly subscriptions = new Map<string, Subscription>();
  /** A fingerprint of each list as last announced, to tell whether a change touched it. */
  readonly fingerprints = new Map<ListKind, string>();
  /** Tool calls answered on the HTTP fast path, by JSON-RPC id: `notifications/cancelled` aborts them. */
  readonly fastCalls = new Map<string | number, AbortController>();
  /** Relayed requests (sampling, elicitation, roots) awaiting this client's answer. */
  pendingRelays = 0;
  private tokens = RELAY_BURST;
  private refilled = Date.now();
  private dropped = 0;
  private closed = false;

  constructor(
    readonly server: Server,
    readonly deps: SessionDeps,
    /** The agent the session belongs to (HTTP), or undefined (anonymous, or stdio: see {@link auth}). */
    readonly owner: string | undefined,
  ) {}

  /** The caller of one request: its authentication (from the transport, or the stdio default) and any token header. */
  callerOf(extra: ExtraWithAuth): Caller {
    const auth = (extra.authInfo?.extra?.capframe as AuthResult | undefined) ?? this.deps.defaultAuth?.() ?? { kind: 'rejected', reason: 'no authentication' };
    return callerWith(auth, extra.requestInfo?.headers);
  }

  /** Who the session is, outside any request (for announcing list changes): the owner, or the stdio default. */
  agent(): { visible: boolean; agent: string | undefined } {
    if (this.owner !== undefined) return { visible: Object.hasOwn(this.deps.policy().agents, this.owner), agent: this.owner };
    const auth = this.deps.defaultAuth?.() ?? { kind: 'open' as const };
    if (auth.kind === 'rejected') return { visible: false, agent: undefined };
    return { visible: true, agent: auth.kind === 'agent' ? auth.agent : undefined };
  }

  /** Takes one unit of the relay budget; false (and counted) when the session has used it up. */
  takeRelay(): boolean {
    const now = Date.now();
    this.tokens = Math.min(RELAY_BURST, this.tokens + ((now - this.refilled) / 1000) * RELAY_PER_SECOND);
    this.refilled = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    if (this.dropped++ % 1000 === 0) {
      this.deps.log.warn('relayed notifications dropped: the session is over its budget', { burst: RELAY_BURST, per_second: RELAY_PER_SECOND, dropped: this.dropped });
    }
    return false;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Forgets the session: its subscriptions are released upstream and its log level no longer counts. */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    for (const controller of this.fastCalls.values()) controller.abort(new Error('the session closed'));
    this.fastCalls.clear();
    for (const sub of this.subscriptions.values()) void this.deps.upstreams.unsubscribe(sub.server, sub.uri);
    this.subscriptions.clear();
    this.deps.hub.remove(this);
  }
}
