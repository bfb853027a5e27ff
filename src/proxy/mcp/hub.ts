/**
 * The live client sessions, for what reaches them outside their own requests (SPEC §6):
 *
 * - list changes: after an upstream re-lists (and re-screens) a list, or goes up or down,
 *   or the policy reloads, each session whose visible list differs from the one it last
 *   fetched gets `notifications/<kind>/list_changed`; others hear nothing;
 * - resource updates: `notifications/resources/updated` goes to the sessions subscribed
 *   to that resource that may still read it, under the URI each subscribed with;
 * - log levels: the most verbose level any session set is what upstreams send at.
 */
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';

import type { Policy } from '../../policy/types.js';
import type { Logger } from '../log.js';
import type { ListKind, UpstreamPool } from '../upstreams.js';
import { severity } from './relay.js';
import type { ProxySession, SessionHub } from './session.js';
import { fingerprintOf, visiblePrompts, visibleResources, visibleTemplates, visibleTools, type Viewer } from './visible.js';

/**
 * A fingerprint of what `viewer` sees of `kind`: two differ when the list a client would
 * fetch differs (names or definitions).
 *
 * @example
 * session.fingerprints.set('tools', listFingerprint(pool, policy, 'tools', { agent: 'support-bot' }));
 */
export function listFingerprint(pool: UpstreamPool, policy: Policy, kind: ListKind, viewer: Viewer): string {
  const list =
    kind === 'tools'
      ? visibleTools(pool, policy, viewer)
      : kind === 'prompts'
        ? visiblePrompts(pool, policy, viewer)
        : [visibleResources(pool, policy, viewer), visibleTemplates(pool, policy, viewer)];
  return fingerprintOf(list);
}

export class Sessions implements SessionHub {
  private readonly all = new Set<ProxySession>();

  constructor(
    private readonly upstreams: UpstreamPool,
    private readonly policy: () => Policy,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.all.size;
  }

  add(session: ProxySession): void {
    this.all.add(session);
  }

  remove(session: ProxySession): void {
    if (this.all.delete(session) && session.logLevel !== undefined) this.levelsChanged();
  }

  levelsChanged(): void {
    let level: LoggingLevel | undefined;
    for (const s of this.all) if (s.logLevel !== undefined && (level === undefined || severity(s.logLevel) < severity(level))) level = s.logLevel;
    this.upstreams.setLogLevel(level);
  }

  /** `kind` may have changed for some viewers: tell each session whose list did. */
  listChanged(kind: ListKind): void {
    const policy = this.policy();
    const byViewer = new Map<string, string>();
    for (const session of this.all) {
      const last = session.fingerprints.get(kind);
      // A session that never fetched the list learns it fresh when it does.
      if (last === undefined || session.isClosed) continue;
      const who = session.agent();
      const key = who.visible ? `a:${who.agent ?? ''}` : 'none';
      let now = byViewer.get(key);
      if (now === undefined) {
        now = who.visible ? listFingerprint(this.upstreams, policy, kind, { agent: who.agent }) : '';
        byViewer.set(key, now);
      }
      if (now === last) continue;
      session.fingerprints.set(kind, now);
      const send = kind === 'tools' ? session.server.sendToolListChanged() : kind === 'prompts' ? session.server.sendPromptListChanged() : session.server.sendResourceListChanged();
      void send.catch((error: unknown) => this.log.debug('list_changed not delivered', { kind, error: (error as Error).message }));
    }
  }

  /** Every list may have changed (the policy reloaded). */
  allListsChanged(): void {
    for (const kind of ['tools', 'prompts', 'resources'] as const) this.listChanged(kind);
  }

  /** An upstream announced that `uri` changed: the sessions subscribed to it that may still read it hear of it. */
  resourceUpdated(server: string, uri: string): void {
    const qualified = `${server}:${uri}`;
    const policy = this.policy();
    for (const session of this.all) {
      const sub = session.subscriptions.get(qualified);
      if (sub === undefined || session.isClosed) continue;
      const who = session.agent();
      if (!who.visible || !policy.resources.couldGrant(qualified, who.agent)) continue;
      if (!session.takeRelay()) continue;
      void session.server.sendResourceUpdated({ uri: sub.shown }).catch((error: unknown) => this.log.debug('resources/updated not delivered', { error: (error as Error).message }));
    }
  }
}
