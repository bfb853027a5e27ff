/**
 * A small Prometheus registry (text exposition format 0.0.4) with no dependencies.
 *
 * Recording is the hot path (every tools/call), rendering is not: a labelled child is found
 * by walking nested Maps keyed by the label values, so recording builds no strings, and
 * `labels(...)` returns a handle callers can keep to skip even that lookup.
 */

/** Content-Type for the `/metrics` response. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NO_VALUES: readonly string[] = [];

type Labels<L extends string> = Readonly<Record<L, string>>;

interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

/** Finds or creates the child for one combination of label values, without building a key. */
class ChildTable<C> {
  private readonly root = new Map<string, unknown>();
  /** Children in creation order, with their label values, for rendering. */
  readonly entries: { values: readonly string[]; child: C }[] = [];

  constructor(
    private readonly depth: number,
    private readonly create: () => C,
  ) {}

  get(values: readonly string[]): C {
    if (values.length !== this.depth) throw new Error(`expected ${this.depth} label values, got ${values.length}`);
    if (this.depth === 0) {
      const only = this.entries[0];
      if (only !== undefined) return only.child;
      return this.add(values);
    }
    let level = this.root;
    for (let i = 0; i < this.depth - 1; i++) {
      const value = values[i] as string;
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const last = values[this.depth - 1] as string;
    const found = level.get(last) as C | undefined;
    if (found !== undefined) return found;
    const child = this.add(values);
    level.set(last, child);
    return child;
  }

  private add(values: readonly string[]): C {
    for (const value of values) {
      if (typeof value !== 'string') throw new Error('label values must be strings');
    }
    const child = this.create();
    this.entries.push({ values: [...values], child });
    return child;
  }
}

abstract class Metric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly table: ChildTable<C>;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';

  constructor(opts: MetricOptions<L>, create: () => C) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name "${opts.name}"`);
    const labelNames = opts.labelNames ?? [];
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) {
        throw new Error(`invalid label name "${label}" for ${opts.name}`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`duplicate label name for ${opts.name}`);
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = labelNames;
    this.table = new ChildTable(labelNames.length, create);
  }

  /**
   * The child for these label values, in `labelNames` order; keep it to record with no
   * lookup at all.
   */
  labels(...values: string[]): C {
    return this.table.get(values);
  }

  protected child(labels: Labels<L> | undefined): C {
    if (this.labelNames.length === 0) return this.table.get(NO_VALUES);
    if (labels === undefined) throw new Error(`${this.name} needs labels ${this.labelNames.join(', ')}`);
    // A small fixed-size array per call; values are looked up, never concatenated.
    const values = new Array<string>(this.labelNames.length);
    for (let i = 0; i < this.labelNames.length; i++) values[i] = labels[this.labelNames[i] as L];
    return this.table.get(values);
  }

  /** Appends this metric's HELP, TYPE and sample lines. */
  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    lines.push(`# TYPE ${this.name} ${this.type}`);
    // An unlabelled metric always has its one sample, 0 until recorded.
    if (this.labelNames.length === 0 && this.table.entries.length === 0) this.table.get(NO_VALUES);
    for (const { values, child } of this.table.entries) this.renderChild(lines, labelText(this.labelNames, values), child);
  }

  protected abstract renderChild(lines: string[], labels: string, child: C): void;
}

/** A counter's value for one label combination. */
export class CounterChild {
  value = 0;

  /** Adds `n` (default 1); counters only go up. */
  inc(n = 1): void {
    if (!(n >= 0)) throw new Error(`counter increment must be non-negative, got ${n}`);
    this.value += n;
  }
}

/** A monotonically increasing count, e.g. decisions by code. */
export class Counter<L extends string = never> extends Metric<L, CounterChild> {
  readonly type = 'counter';

  constructor(opts: MetricOptions<L>) {
    super(opts, () => new CounterChild());
  }

  /**
   * Adds `n` (default 1) for these labels; unlabelled counters take just `n`.
   *
   * @example
   * decisions.inc({ code: 'missing_token', decision: 'deny' });
   * requests.inc();
   */
  inc(n?: number): void;
  inc(labels: Labels<L>, n?: number): void;
  inc(labelsOrN?: Labels<L> | number, n = 1): void {
    if (typeof labelsOrN === 'number' || labelsOrN === undefined) this.child(undefined).inc(labelsOrN ?? 1);
    else this.child(labelsOrN).inc(n);
  }

  /** Current value for these labels (0 if never recorded). */
  get(labels?: Labels<L>): number {
    return this.child(labels).value;
  }

  protected renderChild(lines: string[], labels: string, child: CounterChild): void {
    lines.push(`${this.name}${labels} ${formatNumber(child.value)}`);
  }
}

/** A gauge's value for one label combination. */
export class GaugeChild {
  value = 0;

  set(v: number): void {
    this.value = v;
  }

  inc(n = 1): void {
    this.value += n;
  }

  dec(n = 1): void {
    this.value -= n;
  }
}

/** A value that goes up and down, e.g. upstream health or the revoked-token count. */
export class Gauge<L extends string = never> extends Metric<L, GaugeChild> {
  readonly type = 'gauge';

  constructor(opts: MetricOptions<L>) {
    super(opts, () => new GaugeChild());
  }

  /**
   * @example
   * upstreamUp.set({ server: 'database' }, 1);
   * revokedTokens.set(1042);
   */
  set(value: number): void;
  set(labels: Labels<L>, value: number): void;
  set(labelsOrValue: Labels<L> | number, value?: number): void {
    if (typeof labelsOrValue === 'number') this.child(undefined).set(labelsOrValue);
    else this.child(labelsOrValue).set(value ?? 0);
  }

  inc(n?: number): void;
  inc(labels: Labels<L>, n?: number): void;
  inc(labelsOrN?: Labels<L> | number, n = 1): void {
    if (typeof labelsOrN === 'number' || labelsOrN === undefined) this.child(undefined).inc(labelsOrN ?? 1);
    else this.child(labelsOrN).inc(n);
  }

  dec(n?: number): void;
  dec(labels: Labels<L>, n?: number): void;
  dec(labelsOrN?: Labels<L> | number, n = 1): void {
    if (typeof labelsOrN === 'number' || labelsOrN === undefined) this.child(undefined).dec(labelsOrN ?? 1);
    else this.child(labelsOrN).dec(n);
  }

  get(labels?: Labels<L>): number {
    return this.child(labels).value;
  }

  protected renderChild(lines: string[], labels: string, child: GaugeChild): void {
    lines.push(`${this.name}${labels} ${formatNumber(child.value)}`);
  }
}

/** One label combination of a histogram: per-bucket counts (not yet cumulative), sum, count. */
export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: Float64Array) {
    // One slot per finite bound plus the +Inf overflow slot.
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one observation (seconds, for the latency histograms). */
  observe(value: number): void {
    if (Number.isNaN(value)) return; // Would poison _sum forever.
    const bounds = this.bounds;
    let i = 0;
    // Few buckets: a linear scan beats a binary search here.
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i] = this.counts[i]! + 1;
    this.sum += value;
    this.count += 1;
  }
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds (`le`), strictly increasing, finite; `+Inf` is implied. */
  buckets: readonly number[];
}

/** Observations counted into fixed buckets, e.g. decision latency in seconds. */
export class Histogram<L extends string = never> extends Metric<L, HistogramChild> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  private readonly leText: readonly string[];

  constructor(opts: HistogramOptions<L>) {
    const bounds = Float64Array.from(opts.buckets);
    super(opts, () => new HistogramChild(bounds));
    if ((opts.labelNames ?? []).includes('le' as L)) throw new Error(`histogram ${opts.name} cannot use the label "le"`);
    if (opts.buckets.length === 0) throw new Error(`histogram ${opts.name} needs buckets`);
    for (let i = 0; i < opts.buckets.length; i++) {
      const b = opts.buckets[i] as number;
      if (!Number.isFinite(b)) throw new Error(`histogram ${opts.name}: bucket bounds must be finite (+Inf is implied)`);
      if (i > 0 && !(b > (opts.buckets[i - 1] as number))) {
        throw new Error(`histogram ${opts.name}: bucket bounds must increase`);
      }
    }
    this.buckets = [...opts.buckets];
    this.leText = [...opts.buckets.map(formatNumber), '+Inf'];
  }

  /**
   * @example
   * decisionLatency.observe(0.000012);
   * upstreamCall.observe({ server: 'database' }, 0.042);
   */
  observe(value: number): void;
  observe(labels: Labels<L>, value: number): void;
  observe(labelsOrValue: Labels<L> | number, value?: number): void {
    if (typeof labelsOrValue === 'number') this.child(undefined).observe(labelsOrValue);
    else this.child(labelsOrValue).observe(value ?? Number.NaN);
  }

  protected renderChild(lines: string[], labels: string, child: HistogramChild): void {
    // `le` goes last inside the braces; the other labels keep their order.
    const open = labels === '' ? '{' : `${labels.slice(0, -1)},`;
    let cumulative = 0;
    for (let i = 0; i < this.leText.length; i++) {
      cumulative += child.counts[i] as number;
      lines.push(`${this.name}_bucket${open}le="${this.leText[i]}"} ${formatNumber(cumulative)}`);
    }
    lines.push(`${this.name}_sum${labels} ${formatNumber(child.sum)}`);
    lines.push(`${this.name}_count${labels} ${formatNumber(child.count)}`);
  }
}

/**
 * Holds metrics in registration order and renders them for `/metrics`.
 *
 * @example
 * const registry = new MetricsRegistry();
 * const hits = registry.counter({ name: 'app_hits_total', help: 'Hits.', labelNames: ['path'] });
 * hits.inc({ path: '/' });
 * res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE).end(registry.render());
 */
export class MetricsRegistry {
  private readonly metrics: Metric<string, unknown>[] = [];
  private readonly collectors: (() => void)[] = [];

  /**
   * Runs `collect` before every render, for values cheaper to read on demand than to
   * track (e.g. how many tools are withheld under the current policy).
   */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return this.add(new Counter(opts));
  }

  gauge<L extends string = never>(opts: MetricOptions<L>): Gauge<L> {
    return this.add(new Gauge(opts));
  }

  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram(opts));
  }

  private add<M extends Metric<string, unknown>>(metric: M): M {
    if (this.metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.metrics.push(metric);
    return metric;
  }

  /** The exposition text: HELP and TYPE for every metric, then its samples; ends with "\n". */
  render(): string {
    for (const collect of this.collectors) collect();
    const lines: string[] = [];
    for (const metric of this.metrics) metric.render(lines);
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
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
  /** Whether the store answers and its revocation feed is current (1) or not (0), by kind. */
  storeUp: Gauge<'kind'>;
  /** Times the store's connection came back after a loss. */
  storeReconnects: Counter<'kind'>;
  render(): string;
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
  const registry = new MetricsRegistry();
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

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  const parts = names.map((name, i) => `${name}="${escapeLabelValue(values[i] as string)}"`);
  return `{${parts.join(',')}}`;
}

/** Label values escape backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '"' ? '\\"' : '\\n'));
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (ch) => (ch === '\\' ? '\\\\' : '\\n'));
}

/** Go-style float text: `+Inf`, `-Inf`, `NaN`, otherwise the shortest round-trip form. */
function formatNumber(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}
