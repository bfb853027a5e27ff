// Shared benchmark plumbing: tinybench runs, per-operation medians, and tables.
import { cpus, totalmem } from 'node:os';

import { Bench } from 'tinybench';

/** One line naming the machine, printed with every table. */
export function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}-${process.arch}`;
}

/**
 * Runs tasks and returns rows of per-operation nanoseconds. A task may perform
 * `ops` operations per call, so sub-microsecond work is not drowned by the timer.
 */
export async function measure(tasks, { time = 1000, warmupTime = 200 } = {}) {
  const bench = new Bench({ time, warmupTime });
  for (const t of tasks) bench.add(t.name, t.fn);
  await bench.run();
  return bench.tasks.map((task, i) => {
    const ops = tasks[i].ops ?? 1;
    const latency = task.result.latency;
    return {
      name: task.name,
      median_ns: (latency.p50 * 1e6) / ops,
      p99_ns: (latency.p99 * 1e6) / ops,
      mean_ns: (latency.mean * 1e6) / ops,
      samples: latency.samples.length,
    };
  });
}

const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

/** Prints rows as a fixed-width table. */
export function printTable(title, rows) {
  console.log(`\n${title}`);
  const header = ['task', 'median', 'p99', 'samples'];
  const body = rows.map((r) => [r.name, fmt(r.median_ns), fmt(r.p99_ns), String(r.samples)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}
