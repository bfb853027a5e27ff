/**
 * What `/healthz` reports, gathered from contributors: the upstreams today, the store
 * later. Each says whether its part is healthy and what an operator may see about it —
 * /healthz is unauthenticated, so no pids, command lines or error texts (an error can
 * quote a command line).
 */
import type { UpstreamPool } from './upstreams.js';

export interface HealthCheck {
  ok: boolean;
  /** Shown under the contributor's name; plain data, nothing secret. */
  detail: unknown;
}

/** One part of the runtime that can be down. Add one to `Runtime.health` to have /healthz report it. */
export interface HealthContributor {
  readonly name: string;
  check(): HealthCheck;
}

/** When each named part last went up or down. */
export class StateSince {
  private readonly since = new Map<string, { up: boolean; at: string }>();

  /** Records `up` for `name`; the time only moves when the state changes. */
  mark(name: string, up: boolean): void {
    if (this.since.get(name)?.up !== up) this.since.set(name, { up, at: new Date().toISOString() });
  }

  get(name: string): string | undefined {
    return this.since.get(name)?.at;
  }
}

/** Per upstream: up, how many tools it serves, restarts, and since when it is up (or down). */
export function upstreamHealth(pool: UpstreamPool, since: StateSince): HealthContributor {
  return {
    name: 'upstreams',
    check() {
      let ok = true;
      const detail: Record<string, { up: boolean; tools: number; restarts: number; since?: string }> = {};
      for (const [name, h] of Object.entries(pool.health())) {
        ok &&= h.up;
        // Field by field: whatever else the pool reports (pid, errors) stays private.
        const at = since.get(name);
        detail[name] = { up: h.up, tools: h.tools, restarts: h.restarts, ...(at !== undefined && { since: at }) };
      }
      return { ok, detail };
    },
  };
}
