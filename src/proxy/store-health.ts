/**
 * The store's part of `/healthz` and `/metrics`. /healthz is unauthenticated: it shows
 * the store's kind, whether it is up and since when, and what calls get meanwhile —
 * never its address or an error text.
 */
import type { OnStoreFailure, Store } from '../store/types.js';
import type { HealthContributor } from './health.js';
import type { CapframeMetrics } from './metrics.js';

export interface StoreHealthDetail {
  kind: 'file' | 'redis';
  up: boolean;
  since: string;
  /** While down: `denying` (every call is denied) or `cached` (served from the last known revocations). */
  serving?: 'denying' | 'cached';
  reconnects: number;
}

/** The store under `store` in /healthz: `ok` false (503 `degraded`) while it is down. */
export function storeHealth(store: Store, onStoreFailure: () => OnStoreFailure): HealthContributor {
  return {
    name: 'store',
    check() {
      const h = store.health();
      const detail: StoreHealthDetail = { kind: h.kind, up: h.up, since: h.since, reconnects: h.reconnects };
      if (!h.up) detail.serving = onStoreFailure() === 'use_cached' ? 'cached' : 'denying';
      return { ok: h.up, detail };
    },
  };
}

/** Keeps `capframe_store_up` and `capframe_store_reconnects_total` current at every scrape. */
export function collectStoreMetrics(store: Store, metrics: CapframeMetrics): void {
  let reconnects = 0;
  metrics.registry.onCollect(() => {
    const h = store.health();
    metrics.storeUp.labels(h.kind).set(h.up ? 1 : 0);
    if (h.reconnects > reconnects) metrics.storeReconnects.labels(h.kind).inc(h.reconnects - reconnects);
    reconnects = h.reconnects;
  });
}
