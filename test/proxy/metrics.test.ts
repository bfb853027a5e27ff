import { describe, expect, it } from 'vitest';

import {
  DECISION_LATENCY_BUCKETS,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  UPSTREAM_CALL_BUCKETS,
  createCapframeMetrics,
  escapeLabelValue,
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
 * A strict line-by-line parser for text format 0.0.4: every line must be a HELP, a TYPE
 * or a sample with properly quoted and escaped label values; anything else fails.
 */
function parseExposition(text: string): Exposition {
  expect(text.endsWith('\n')).toBe(true);
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] };
  for (const line of text.slice(0, -1).split('\n')) {
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
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    expect(Number.isNaN(value) && raw !== 'NaN', `bad value ${raw}`).toBe(false);
    out.samples.push({ name: m![1]!, labels, value });
  }
  return out;
}

function find(exp: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exp.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
}

describe('MetricsRegistry', () => {
  it('renders counters, gauges and histograms with HELP and TYPE before their samples', () => {
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

    const text = metrics.render();
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
    expect(find(exp, `${name}_bucket`, { le: '0.0000025' })).toBe(0);
    expect(find(exp, `${name}_bucket`, { le: '0.000005' })).toBe(1);
    expect(find(exp, `${name}_bucket`, { le: '0.000025' })).toBe(2);
    expect(find(exp, `${name}_bucket`, { le: '0.01' })).toBe(2);
    expect(find(exp, `${name}_bucket`, { le: '+Inf' })).toBe(3);
    expect(find(exp, `${name}_count`)).toBe(3);
    expect(find(exp, `${name}_sum`)).toBeCloseTo(5.000024, 9);
    const buckets = exp.samples.filter((s) => s.name === `${name}_bucket`);
    expect(buckets.map((s) => s.labels.le)).toEqual([...DECISION_LATENCY_BUCKETS.map(String), '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);

    // Labelled histogram: `le` comes after the metric's own labels.
    expect(text).toContain('capframe_upstream_call_seconds_bucket{server="database",le="0.05"} 1\n');
    expect(text).toContain('capframe_upstream_call_seconds_bucket{server="database",le="0.025"} 0\n');
    expect(find(exp, 'capframe_upstream_call_seconds_count', { server: 'database' })).toBe(1);
    expect(exp.samples.filter((s) => s.name === 'capframe_upstream_call_seconds_bucket')).toHaveLength(
      UPSTREAM_CALL_BUCKETS.length + 1,
    );

    // HELP and TYPE precede the first sample of each metric.
    const lines = text.split('\n');
    const typeAt = lines.indexOf('# TYPE capframe_upstream_up gauge');
    expect(lines[typeAt - 1]).toMatch(/^# HELP capframe_upstream_up /);
    expect(lines[typeAt + 1]).toBe('capframe_upstream_up{server="database"} 1');
  });

  it('a bucket bound is inclusive (le means <=)', () => {
    const registry = new MetricsRegistry();
    const h = registry.histogram({ name: 'h_seconds', help: 'h', buckets: [1, 2] });
    h.observe(1);
    h.observe(2.0000001);
    h.observe(NaN); // ignored
    const exp = parseExposition(registry.render());
    expect(find(exp, 'h_seconds_bucket', { le: '1' })).toBe(1);
    expect(find(exp, 'h_seconds_bucket', { le: '2' })).toBe(1);
    expect(find(exp, 'h_seconds_bucket', { le: '+Inf' })).toBe(2);
    expect(find(exp, 'h_seconds_count')).toBe(2);
  });

  it('escapes label values and HELP text', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter({ name: 'odd_total', help: 'back\\slash and\nnewline', labelNames: ['server'] });
    const nasty = 'a"b\\c\nd} e="f"';
    c.inc({ server: nasty });
    const text = registry.render();
    expect(text).toContain('# HELP odd_total back\\\\slash and\\nnewline\n');
    expect(text).toContain('odd_total{server="a\\"b\\\\c\\nd} e=\\"f\\""} 1\n');
    const exp = parseExposition(text);
    expect(exp.samples[0]!.labels).toEqual({ server: nasty });
    expect(exp.help.get('odd_total')).toBe('back\\slash and\nnewline');
    expect(escapeLabelValue('plain')).toBe('plain');
  });

  it('keeps one child per label combination and returns the same handle', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter({ name: 'x_total', help: 'x', labelNames: ['a', 'b'] });
    const handle = c.labels('1', '2');
    expect(c.labels('1', '2')).toBe(handle);
    handle.inc();
    c.inc({ a: '1', b: '2' }, 2);
    c.inc({ a: '2', b: '1' });
    expect(c.get({ a: '1', b: '2' })).toBe(3);
    const exp = parseExposition(registry.render());
    expect(exp.samples.map((s) => [s.labels, s.value])).toEqual([
      [{ a: '1', b: '2' }, 3],
      [{ a: '2', b: '1' }, 1],
    ]);
  });

  it('renders an unlabelled metric as 0 before it is recorded, a labelled one with no samples', () => {
    const registry = new MetricsRegistry();
    registry.counter({ name: 'a_total', help: 'a' });
    registry.gauge({ name: 'b', help: 'b', labelNames: ['server'] });
    registry.histogram({ name: 'c_seconds', help: 'c', buckets: [0.1] });
    const text = registry.render();
    expect(text).toBe(
      [
        '# HELP a_total a',
        '# TYPE a_total counter',
        'a_total 0',
        '# HELP b b',
        '# TYPE b gauge',
        '# HELP c_seconds c',
        '# TYPE c_seconds histogram',
        'c_seconds_bucket{le="0.1"} 0',
        'c_seconds_bucket{le="+Inf"} 0',
        'c_seconds_sum 0',
        'c_seconds_count 0',
        '',
      ].join('\n'),
    );
    parseExposition(text);
  });

  it('gauges go up and down and print special values the Prometheus way', () => {
    const registry = new MetricsRegistry();
    const g = registry.gauge({ name: 'g', help: 'g' });
    g.inc(5);
    g.dec(2);
    expect(g.get()).toBe(3);
    g.set(Infinity);
    expect(registry.render()).toContain('\ng +Inf\n');
    g.set(-Infinity);
    expect(registry.render()).toContain('\ng -Inf\n');
  });

  it('rejects invalid definitions and uses', () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter({ name: 'bad-name', help: '' })).toThrow(/metric name/);
    expect(() => registry.counter({ name: 'ok_total', help: '', labelNames: ['__reserved'] })).toThrow(/label name/);
    expect(() => registry.histogram({ name: 'h', help: '', labelNames: ['le'], buckets: [1] })).toThrow(/le/);
    expect(() => registry.histogram({ name: 'h2', help: '', buckets: [2, 1] })).toThrow(/increase/);
    expect(() => registry.histogram({ name: 'h3', help: '', buckets: [1, Infinity] })).toThrow(/finite/);
    registry.counter({ name: 'dup_total', help: '' });
    expect(() => registry.counter({ name: 'dup_total', help: '' })).toThrow(/twice/);
    const c = registry.counter({ name: 'c_total', help: '', labelNames: ['code'] });
    expect(() => c.inc({ code: 'x' }, -1)).toThrow(/non-negative/);
    expect(() => c.labels('a', 'b')).toThrow(/1 label values/);
    expect(() => c.inc()).toThrow(/needs labels/);
  });

  it('exposes the content type of format 0.0.4', () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('recording through a kept handle is cheap', () => {
    const metrics = createCapframeMetrics();
    const handle = metrics.decisions.labels('ok', 'allow');
    const n = 1_000_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      handle.inc();
      metrics.decisionLatency.observe(0.00001);
    }
    const perOpNs = Number(process.hrtime.bigint() - start) / n;
    expect(metrics.decisions.get({ code: 'ok', decision: 'allow' })).toBe(n);
    // Generous bound (CI machines vary): string building per call would be far slower.
    expect(perOpNs).toBeLessThan(500);
  });
});
