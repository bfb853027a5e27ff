import { describe, expect, it } from 'vitest';

import {
  DECISION_LATENCY_BUCKETS,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  UPSTREAM_CALL_BUCKETS,
  createCapframeMetrics,
} from '../../src/proxy/metrics.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/**
 * A strict line-by-line parser for text format 0.0.4: every line must be empty, a HELP, a
 * TYPE or a sample with properly quoted and escaped label values; anything else fails.
 */
function parseExposition(text: string): Exposition {
  expect(text.endsWith('\n')).toBe(true);
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] };
  for (const line of text.slice(0, -1).split('\n')) {
    // Empty lines are allowed and ignored (prom-client separates metric families with one).
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      out.help.set(m[1]!, m[2]!.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\')));
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      expect(out.type.has(m[1]!), `second TYPE for ${m[1]}`).toBe(false);
      out.type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/.exec(line);
    expect(m, `not a valid exposition line: ${JSON.stringify(line)}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const pair of (m![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"/g)) {
      expect(labels[pair[1]!], `duplicate label ${pair[1]}`).toBeUndefined();
      labels[pair[1]!] = pair[2]!.replace(/\\([\\"n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m![3]!;
    // prom-client writes NaN as "Nan" (for event-loop stats before the first sample);
    // Prometheus reads float text with Go's ParseFloat, which takes NaN in any case.
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    expect(Number.isNaN(value) && raw.toLowerCase() !== 'nan', `bad value ${raw}`).toBe(false);
    out.samples.push({ name: m![1]!, labels, value });
  }
  return out;
}

function find(exp: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exp.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
}

describe('the /metrics registry (prom-client)', () => {
  it('renders counters, gauges and histograms with HELP and TYPE before their samples', async () => {
    const metrics = createCapframeMetrics();
    metrics.decisions.inc({ code: 'missing_token', decision: 'deny' });
    metrics.decisions.inc({ code: 'missing_token', decision: 'deny' });
    metrics.decisions.labels('ok', 'allow').inc(3);
    metrics.decisionLatency.observe(0.000004);
    metrics.decisionLatency.observe(0.00002);
    metrics.decisionLatency.observe(5);
    metrics.upstreamCall.observe({ server: 'database' }, 0.042);
    metrics.upstreamUp.set({ server: 'database' }, 1);
    metrics.upstreamUp.set({ server: 'payments' }, 0);
    metrics.revokedTokens.set(7);

    const text = await metrics.render();
    const exp = parseExposition(text);
    expect(find(exp, 'capframe_decisions_total', { code: 'missing_token', decision: 'deny' })).toBe(2);
    expect(find(exp, 'capframe_decisions_total', { code: 'ok', decision: 'allow' })).toBe(3);
    expect(exp.type.get('capframe_decisions_total')).toBe('counter');
    expect(exp.type.get('capframe_decision_latency_seconds')).toBe('histogram');
    expect(exp.type.get('capframe_upstream_up')).toBe('gauge');
    expect(exp.help.get('capframe_revoked_tokens')).toMatch(/revoked/);
    expect(find(exp, 'capframe_upstream_up', { server: 'database' })).toBe(1);
    expect(find(exp, 'capframe_upstream_up', { server: 'payments' })).toBe(0);
    expect(find(exp, 'capframe_revoked_tokens')).toBe(7);

    // Histogram buckets are cumulative, end with +Inf = _count, and _sum adds the values.
    const name = 'capframe_decision_latency_seconds';
    const le = (bound: number) => exp.samples.find((s) => s.name === `${name}_bucket` && Number(s.labels.le) === bound)?.value;
    expect(le(0.0000025)).toBe(0);
    expect(le(0.000005)).toBe(1);
    expect(le(0.000025)).toBe(2);
    expect(le(0.01)).toBe(2);
    expect(find(exp, `${name}_bucket`, { le: '+Inf' })).toBe(3);
    expect(find(exp, `${name}_count`)).toBe(3);
    expect(find(exp, `${name}_sum`)).toBeCloseTo(5.000024, 9);
    const buckets = exp.samples.filter((s) => s.name === `${name}_bucket`);
    expect(buckets.map((s) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)))).toEqual([...DECISION_LATENCY_BUCKETS, Infinity]);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);

    // Labelled histogram: `le` comes with the metric's own labels.
    expect(exp.samples.find((s) => s.name === 'capframe_upstream_call_seconds_bucket' && s.labels.le === '0.05')).toMatchObject({ labels: { server: 'database' }, value: 1 });
    expect(exp.samples.find((s) => s.name === 'capframe_upstream_call_seconds_bucket' && s.labels.le === '0.025')).toMatchObject({ value: 0 });
    expect(find(exp, 'capframe_upstream_call_seconds_count', { server: 'database' })).toBe(1);
    expect(exp.samples.filter((s) => s.name === 'capframe_upstream_call_seconds_bucket')).toHaveLength(UPSTREAM_CALL_BUCKETS.length + 1);

    // HELP and TYPE precede the first sample of each metric.
    const lines = text.split('\n');
    const typeAt = lines.indexOf('# TYPE capframe_upstream_up gauge');
    expect(lines[typeAt - 1]).toMatch(/^# HELP capframe_upstream_up /);
    expect(lines[typeAt + 1]).toBe('capframe_upstream_up{server="database"} 1');
  });

  it("includes Node's default process metrics", async () => {
    const exp = parseExposition(await createCapframeMetrics().render());
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(exp.type.has(name), name).toBe(true);
    }
  });

  it('keeps every capframe metric name, type and label set', async () => {
    const metrics = createCapframeMetrics();
    const exp = parseExposition(await metrics.render());
    const expected: Record<string, string> = {
      capframe_decisions_total: 'counter',
      capframe_decision_latency_seconds: 'histogram',
      capframe_upstream_call_seconds: 'histogram',
      capframe_upstream_up: 'gauge',
      capframe_upstream_failures_total: 'counter',
      capframe_tools_withheld: 'gauge',
      capframe_revoked_tokens: 'gauge',
      capframe_http_refused_total: 'counter',
      capframe_sessions_open: 'gauge',
      capframe_audit_sink_delivered_total: 'counter',
      capframe_audit_sink_failures_total: 'counter',
      capframe_audit_sink_skipped_total: 'counter',
      capframe_audit_sink_lag_lines: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) expect(exp.type.get(name), name).toBe(type);
    // Unlabelled metrics have their one sample from the start.
    expect(find(exp, 'capframe_revoked_tokens')).toBe(0);
    expect(find(exp, 'capframe_sessions_open')).toBe(0);
  });

  it('escapes label values and HELP text', async () => {
    const registry = new MetricsRegistry();
    const c = registry.counter({ name: 'odd_total', help: 'back\\slash and\nnewline', labelNames: ['server'] });
    const nasty = 'a"b\\c\nd} e="f"';
    c.inc({ server: nasty });
    const text = await registry.render();
    expect(text).toContain('# HELP odd_total back\\\\slash and\\nnewline\n');
    expect(text).toContain('odd_total{server="a\\"b\\\\c\\nd} e=\\"f\\""} 1\n');
    const exp = parseExposition(text);
    expect(exp.samples[0]!.labels).toEqual({ server: nasty });
    expect(exp.help.get('odd_total')).toBe('back\\slash and\nnewline');
  });

  it('runs collectors before each render', async () => {
    const registry = new MetricsRegistry();
    const g = registry.gauge({ name: 'g', help: 'g', labelNames: ['server'] });
    let n = 0;
    registry.onCollect(() => g.labels('a').set(++n));
    expect(find(parseExposition(await registry.render()), 'g', { server: 'a' })).toBe(1);
    expect(find(parseExposition(await registry.render()), 'g', { server: 'a' })).toBe(2);
  });

  it('rejects invalid definitions and uses', () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter({ name: 'bad-name', help: 'x' })).toThrow();
    expect(() => registry.histogram({ name: 'h', help: 'x', labelNames: ['le'], buckets: [1] })).toThrow(/le/);
    registry.counter({ name: 'dup_total', help: 'x' });
    expect(() => registry.counter({ name: 'dup_total', help: 'x' })).toThrow(/already been registered/);
    const c = registry.counter({ name: 'c_total', help: 'x', labelNames: ['code'] });
    expect(() => c.inc({ code: 'x' }, -1)).toThrow(/not possible to decrease/);
  });

  it('exposes the content type of format 0.0.4', () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
