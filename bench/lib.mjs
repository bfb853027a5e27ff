// Shared benchmark plumbing: tinybench runs, per-operation medians, tables, the
// machine's name, and per-process CPU time from /proc.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

import { Bench } from 'tinybench';

/** The CPU model as /proc/cpuinfo names it (os.cpus() where there is no /proc). */
export function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {}
  return cpus()[0]?.model ?? 'unknown CPU';
}

/** One line naming the machine, printed with every table. */
export function machine() {
  return `${cpuModel()}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}-${process.arch}`;
}

/** The 1-minute load average, to say how quiet the machine was. */
export const load1 = () => Number(loadavg()[0].toFixed(2));

/**
 * CPU time of a whole process (every thread: main, libuv pool, V8 helpers) in
 * nanoseconds, from /proc/<pid>/task/<tid>/schedstat (nanosecond resolution); falls
 * back to /proc/<pid>/stat (10 ms ticks).
 */
export function processCpuNs(pid) {
  const tasks = `/proc/${pid}/task`;
  if (existsSync(`${tasks}/${pid}/schedstat`)) {
    let sum = 0;
    for (const tid of readdirSync(tasks)) {
      try {
        sum += Number(readFileSync(`${tasks}/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {} // a thread that just ended
    }
    return sum;
  }
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e9) / 100;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

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
