/**
 * Per-tool decision counts and latency for the console's charts, from the audit log's
 * last lines: the log is the record of every decision, so the charts need no counter on
 * the proxy's call path and agree with what `capframe audit tail` shows.
 */
import { isUtf8 } from 'node:buffer';
import { open, stat } from 'node:fs/promises';

import { readTail } from '../audit/lines.js';
import { parseAuditLine, type AuditRecord } from '../audit/record.js';

export interface ToolStats {
  tool: string;
  allow: number;
  deny: number;
  /** Outcome lines: forwarded calls that ended without the upstream's result. */
  outcome: number;
  /** Count per code over decision lines. */
  codes: Record<string, number>;
  /** Decision latency in µs over decision lines. */
  p50: number;
  p95: number;
  max: number;
}

export interface DecisionStats {
  /** Lines the figures are computed over (the log's last ones). */
  lines: number;
  from?: string;
  to?: string;
  tools: ToolStats[];
}

/** Lines read from the end of the log for the charts. */
export const STATS_LINES = 2000;
/** Tools charted at most (the busiest). */
export const STATS_TOOLS = 30;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/**
 * Aggregates records per tool, busiest first.
 *
 * @example
 * aggregate(records).tools[0]; // { tool: 'database.query', allow: 12, deny: 3, codes: { ok: 12, revoked: 3 }, p50: 140, … }
 */
export function aggregate(records: readonly AuditRecord[]): DecisionStats {
  const byTool = new Map<string, { stats: ToolStats; latencies: number[] }>();
  for (const r of records) {
    // A restart line (a new chain after a torn log) is no decision.
    if (r.decision === 'restart') continue;
    const tool = r.tool ?? '(none)';
    let entry = byTool.get(tool);
    if (entry === undefined) {
      entry = { stats: { tool, allow: 0, deny: 0, outcome: 0, codes: Object.create(null) as Record<string, number>, p50: 0, p95: 0, max: 0 }, latencies: [] };
      byTool.set(tool, entry);
    }
    if (r.decision === 'outcome') {
      entry.stats.outcome += 1;
      continue;
    }
    entry.stats[r.decision] += 1;
    entry.stats.codes[r.code] = (entry.stats.codes[r.code] ?? 0) + 1;
    entry.latencies.push(r.latency_us);
  }
  const tools = [...byTool.values()].map(({ stats, latencies }) => {
    latencies.sort((a, b) => a - b);
    return { ...stats, codes: { ...stats.codes }, p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), max: latencies.at(-1) ?? 0 };
  });
  tools.sort((a, b) => b.allow + b.deny - (a.allow + a.deny) || (a.tool < b.tool ? -1 : 1));
  const out: DecisionStats = { lines: records.length, tools: tools.slice(0, STATS_TOOLS) };
  if (records.length > 0) {
    out.from = records[0]!.time;
    out.to = records.at(-1)!.time;
  }
  return out;
}

/**
 * The figures over the audit log's last {@link STATS_LINES} lines, recomputed only when
 * the file changed.
 *
 * @example
 * const stats = statsReader('.capframe/audit.log');
 * await stats(); // { lines: 42, tools: [...] }
 */
export function statsReader(path: string): () => Promise<DecisionStats> {
  let cached: { key: string; value: DecisionStats } | undefined;
  let running: Promise<DecisionStats> | undefined;
  const compute = async (): Promise<DecisionStats> => {
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lines: 0, tools: [] };
      throw error;
    }
    const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
    if (cached?.key === key) return cached.value;
    const handle = await open(path, 'r');
    try {
      const tail = await readTail(handle, info.size, STATS_LINES);
      const records: AuditRecord[] = [];
      for (const bytes of tail.lines) {
        if (!isUtf8(bytes)) continue;
        const parsed = parseAuditLine(bytes.toString('utf8'));
        if (parsed.ok) records.push(parsed.record);
      }
      const value = aggregate(records);
      cached = { key, value };
      return value;
    } finally {
      await handle.close();
    }
  };
  // Concurrent requests share one read.
  return () => (running ??= compute().finally(() => (running = undefined)));
}
