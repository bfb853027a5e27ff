// Per-call cost of /metrics recording (issue 14): a labelled counter increment plus a
// histogram observation, what the enforcer does per decision, with prom-client (what
// ships) and with the hand-written registry it replaced, read from git history and
// transpiled here, so the comparison uses the real old code.
// Run: npm run build:ts && node bench/metrics.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createCapframeMetrics } from '../dist/proxy/metrics.js';
import { measure } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The last commit whose src/proxy/metrics.ts is the hand-written registry. */
const HAND_WRITTEN_AT = '3140932';
const N = 1000;

async function handWritten() {
  try {
    const source = execFileSync('git', ['show', `${HAND_WRITTEN_AT}:src/proxy/metrics.ts`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const ts = (await import('typescript')).default;
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = join(mkdtempSync(join(tmpdir(), 'capframe-bench-metrics-')), 'hand-written-metrics.mjs');
    writeFileSync(file, js);
    return (await import(pathToFileURL(file).href)).createCapframeMetrics();
  } catch {
    return undefined; // not a git checkout: prom-client alone
  }
}

export async function runMetricsBench() {
  const prom = createCapframeMetrics();
  const old = await handWritten();
  const promHandle = prom.decisions.labels('ok', 'allow');
  const tasks = [
    { name: 'prom-client: labels(code, decision).inc() + observe()', ops: N, fn: () => { for (let i = 0; i < N; i++) { prom.decisions.labels('ok', 'allow').inc(); prom.decisionLatency.observe(0.000012); } } },
    { name: 'prom-client: kept handle .inc() + observe()', ops: N, fn: () => { for (let i = 0; i < N; i++) { promHandle.inc(); prom.decisionLatency.observe(0.000012); } } },
  ];
  if (old !== undefined) {
    tasks.push({ name: 'hand-written: labels(code, decision).inc() + observe()', ops: N, fn: () => { for (let i = 0; i < N; i++) { old.decisions.labels('ok', 'allow').inc(); old.decisionLatency.observe(0.000012); } } });
  }
  const rows = await measure(tasks);
  const promNs = rows[0].median_ns;
  const oldNs = old === undefined ? undefined : rows[2].median_ns;
  return { rows, prom_client_ns_per_call: promNs, hand_written_ns_per_call: oldNs, limit_ns: 2000, within_limit: promNs <= 2000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import('./lib.mjs');
  const r = await runMetricsBench();
  printTable('Metrics recording per decision', r.rows);
  console.log(`  prom-client ${r.prom_client_ns_per_call.toFixed(0)} ns per call (limit 2000 ns)${r.hand_written_ns_per_call === undefined ? '' : `; hand-written ${r.hand_written_ns_per_call.toFixed(0)} ns`}`);
}
