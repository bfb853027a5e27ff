/**
 * The metrics `capframe serve` exposes on `/metrics` (SPEC §6), on prom-client with
 * Node's default process metrics (`process_*`, `nodejs_*`).
 *
 * prom-client replaced a hand-written registry: bench/metrics.mjs measures the per-call
 * cost (a labelled counter increment and a histogram observation per decision) of both,
 * a few hundred nanoseconds for prom-client, well under the 2 µs the issue allowed.
 * Keep the handle of a labelled child (`labels(...)`) where a path records often.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram } from 'prom-client';

/** Content-Type for the `/metrics` response (text format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds (`le`), strictly increasing, finite; `+Inf` is implied. */
  buckets: readonly number[];
}

/**
 * The registry behind `/metrics`: prom-client's, with the small API the proxy's parts
 * register through (so a part adds a metric in one place) and collectors that run
 * before each scrape.
 *
 * @example
 * const registry = new MetricsRegistry();
 * const hits = registry.counter({ name: 'app_hits_total', help: 'Hits.', labelNames: ['path'] });
 * hits.labels('/').inc();
 * res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE).end(await registry.render());
 */
export class MetricsRegistry {
  /** prom-client's registry (for anything this wrapper does not offer). */
  readonly prom = new Registry();
  private readonly collectors: (() => void)[] = [];

  /** Adds Node's default process metrics (CPU, memory, event loop lag, handles, GC). */
  withDefaultMetrics(): this {
    collectDefaultMetrics({ register: this.prom });
    return this;
  }

  /**
   * Runs `collect` before every render, for values cheaper to read on demand than to
   * track (e.g. how many tools are withheld under the current policy).
   */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return new Counter<L>({ name: opts.name, help: opts.help, labelNames: opts.labelNames ?? [], registers: [this.prom] });
  }

  gauge<L extends string = never>(opts: MetricOptions<L>): Gauge<L> {
    return new Gauge<L>({ name: opts.name, help: opts.help, labelNames: opts.labelNames ?? [], registers: [this.prom] });
  }

  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return new Histogram<L>({ name: opts.name, help: opts.help, labelNames: opts.labelNames ?? [], buckets: [...opts.buckets], registers: [this.prom] });
  }

  /** The exposition text (format 0.0.4), after running the collectors. */
  async render(): Promise<string> {
    for (const collect of this.collectors) collect();
    return this.prom.metrics();
  }
}

/** Decision latency buckets (seconds): decisions take microseconds, so the range starts at 1 µs. */
export const DECISION_LATENCY_BUCKETS = [
  0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01,
] as const;

/** Upstream call buckets (seconds): tool calls take milliseconds to many seconds. */
export const UPSTREAM_CALL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** The proxy's metrics (SPEC §6): decisions by code, latency histograms, upstream health. */
export interface CapframeMetrics {
  registry: MetricsRegistry;
  decisions: Counter<'code' | 'decision'>;
  decisionLatency: Histogram;
  upstreamCall: Histogram<'server'>;
  upstreamUp: Gauge<'server'>;
  /** Allowed calls that did not end with the upstream's result, by outcome code (`upstream_unavailable`: never sent). */
  upstreamFailures: Counter<'server' | 'code'>;
  /** Upstream tools not served: screened as poisoned (and not allowed), or with an invalid MCP name. */
  toolsWithheld: Gauge<'server'>;
  revokedTokens: Gauge;
  /** Requests refused at the HTTP edge before any MCP handling, by reason. */
  httpRefused: Counter<'reason'>;
  /** Open MCP sessions. */
  sessionsOpen: Gauge;
  /** Audit lines an `audit.sinks` receiver took, by sink (`<type> <scheme>://<host>`). */
  auditSinkDelivered: Counter<'sink'>;
  /** Failed deliveries to a sink (each retried; the lines wait in the audit log). */
  auditSinkFailures: Counter<'sink'>;
  /** Audit lines a sink skipped because they are not valid records. */
  auditSinkSkipped: Counter<'sink'>;
  /** Audit lines written and not yet delivered to a sink. */
  auditSinkLag: Gauge<'sink'>;
  /** Whether the store answers and its revocation feed is current (1) or not (0), by kind. */
  storeUp: Gauge<'kind'>;
  /** Times the store's connection came back after a loss. */
  storeReconnects: Counter<'kind'>;
  /** The exposition text for `/metrics`. */
  render(): Promise<string>;
}

/**
 * Creates the registry `capframe serve` exposes on `/metrics`.
 *
 * @example
 * const metrics = createCapframeMetrics();
 * const denyMissing = metrics.decisions.labels('missing_token', 'deny'); // keep the handle
 * denyMissing.inc();
 * metrics.decisionLatency.observe(latencyUs / 1e6);
 */
export function createCapframeMetrics(): CapframeMetrics {
  const registry = new MetricsRegistry().withDefaultMetrics();
  return {
    registry,
    decisions: registry.counter({
      name: 'capframe_decisions_total',
      help: 'Authorization decisions on tools/call, by reason code and outcome.',
      labelNames: ['code', 'decision'],
    }),
    decisionLatency: registry.histogram({
      name: 'capframe_decision_latency_seconds',
      help: 'Time to decide a tools/call (authenticate, verify token, evaluate policy), in seconds.',
      buckets: DECISION_LATENCY_BUCKETS,
    }),
    upstreamCall: registry.histogram({
      name: 'capframe_upstream_call_seconds',
      help: 'Duration of forwarded tool calls, by upstream server, in seconds.',
      labelNames: ['server'],
      buckets: UPSTREAM_CALL_BUCKETS,
    }),
    upstreamUp: registry.gauge({
      name: 'capframe_upstream_up',
      help: 'Whether the upstream MCP server is connected (1) or not (0).',
      labelNames: ['server'],
    }),
    upstreamFailures: registry.counter({
      name: 'capframe_upstream_failures_total',
      help: 'Allowed tools/call that did not end with the upstream result, by server and outcome code (upstream_unavailable: not sent; the others: sent, may have run).',
      labelNames: ['server', 'code'],
    }),
    toolsWithheld: registry.gauge({
      name: 'capframe_tools_withheld',
      help: 'Upstream tools not served: definitions screened as poisoned and not allowed by screen.allow, or names that are not valid MCP tool names.',
      labelNames: ['server'],
    }),
    revokedTokens: registry.gauge({
      name: 'capframe_revoked_tokens',
      help: 'Number of revoked token ids known to this instance.',
    }),
    httpRefused: registry.counter({
      name: 'capframe_http_refused_total',
      help: 'HTTP requests refused before any MCP handling, by reason (origin, host, unauthenticated, session_not_found, session_limit_*).',
      labelNames: ['reason'],
    }),
    sessionsOpen: registry.gauge({
      name: 'capframe_sessions_open',
      help: 'Open MCP sessions.',
    }),
    auditSinkDelivered: registry.counter({
      name: 'capframe_audit_sink_delivered_total',
      help: 'Audit lines delivered to an audit sink, by sink.',
      labelNames: ['sink'],
    }),
    auditSinkFailures: registry.counter({
      name: 'capframe_audit_sink_failures_total',
      help: 'Failed deliveries to an audit sink, by sink; each is retried, the lines wait in the audit log.',
      labelNames: ['sink'],
    }),
    auditSinkSkipped: registry.counter({
      name: 'capframe_audit_sink_skipped_total',
      help: 'Audit lines an audit sink skipped because they are not valid audit records, by sink.',
      labelNames: ['sink'],
    }),
    auditSinkLag: registry.gauge({
      name: 'capframe_audit_sink_lag_lines',
      help: 'Audit lines written and not yet delivered to an audit sink, by sink.',
      labelNames: ['sink'],
    }),
    storeUp: registry.gauge({
      name: 'capframe_store_up',
      help: 'Whether the store (file or redis) answers and its revocation feed is current (1) or not (0).',
      labelNames: ['kind'],
    }),
    storeReconnects: registry.counter({
      name: 'capframe_store_reconnects_total',
      help: 'Times the connection to the store came back after it was lost (redis).',
      labelNames: ['kind'],
    }),
    render: () => registry.render(),
  };
}

