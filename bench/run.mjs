// `npm run bench`: every benchmark against its target (SPEC §12), in one run of a few
// minutes. Micro rows (bench/micro.mjs) and macro rows (bench/macro.mjs) each run every
// scenario in its own process, alternating rounds; the delegation and decide rows run in
// child processes too. Prints the README table (with the machine and how loaded it was)
// and writes bench/results.json.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { load1, machine } from './lib.mjs';
import { runMacroBench } from './macro.mjs';
import { runMicroBench } from './micro.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const started = Date.now();
const results = { machine: machine(), date: new Date().toISOString(), load_average_1m_at_start: load1(), sections: {}, targets: [] };
console.log(`capframe benchmarks — ${results.machine}; load average ${results.load_average_1m_at_start}`);

const fmt = (v, unit) => (unit === '×' ? `${v.toFixed(3)} ×` : unit === 'µs' ? `${v.toFixed(3)} µs` : `${v.toFixed(1)} ${unit}`);

console.log('\nmicro rows…');
const micro = await runMicroBench();
results.sections.micro = micro;
results.targets.push(...micro.targets);
for (const r of micro.rows) console.log(`  ${r.name.padEnd(74)} ${(r.median_ns / 1000).toFixed(3).padStart(10)} µs`);

console.log('\nmacro rows…');
const macro = await runMacroBench();
results.sections.macro = macro;
const r = macro.ratios;
const push = (name, value, op, limit) => results.targets.push({ name, value, target: `${op} ${limit} ×`, met: op === '≤' ? value <= limit : value >= limit, unit: '×' });
push('proxy CPU per call, token presented, c=16 / floor', r.token_cpu_over_floor_c16, '≤', 1.15);
push('proxy CPU per call, auto_mint, c=16 / floor', r.auto_mint_cpu_over_floor_c16, '≤', 1.3);
push('throughput, token presented, c=16 / floor', r.token_throughput_over_floor_c16, '≥', 0.9);
push('throughput, auto_mint, c=16 / floor', r.auto_mint_throughput_over_floor_c16, '≥', 0.85);
for (const row of macro.rows) {
  console.log(`  ${row.name.padEnd(16)} ${row.calls_per_s.toFixed(0).padStart(7)} calls/s, proxy ${row.cpu_us_per_call === null ? '   -  ' : row.cpu_us_per_call.toFixed(1).padStart(6)} µs/call, upstream ${row.upstream_cpu_us_per_call.toFixed(1)} µs/call, load generator ${row.generator_cpu_us_per_call.toFixed(1)} µs/call (${(row.generator_busy * 100).toFixed(0)}% of a core)`);
}
console.log(`  c=1: token ${r.token_cpu_over_floor_c1.toFixed(2)} × floor CPU, ${r.token_throughput_over_floor_c1.toFixed(2)} × throughput; auto_mint ${r.auto_mint_cpu_over_floor_c1.toFixed(2)} ×, ${r.auto_mint_throughput_over_floor_c1.toFixed(2)} ×`);

// The other sections (delegation, policy decide, metrics, AuthZEN over HTTP, the Redis
// fleet), each in a process of its own. The fleet needs redis-server on PATH.
for (const [name, file, fn] of [
  ['delegation', 'delegation.mjs', 'runDelegationBench'],
  ['decide', 'decide.mjs', 'runDecideBench'],
  ['metrics', 'metrics.mjs', 'runMetricsBench'],
  ['authzen', 'authzen.mjs', 'runAuthzenBench'],
  ['fleet', 'fleet.mjs', 'runFleetBench'],
]) {
  // Their own progress output goes to stderr (shown); stdout carries only the result.
  const code = `console.log = console.error; const m = await import(${JSON.stringify(join(HERE, file))}); const r = await m.${fn}(); process.stdout.write(JSON.stringify(r));`;
  console.log(`\n${name} rows…`);
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  if (out.status !== 0) {
    console.log(`(${name} rows failed, exit ${out.status})`);
    continue;
  }
  const section = JSON.parse(out.stdout);
  results.sections[name] = section;
  const rows = Array.isArray(section) ? section : section.rows;
  for (const row of rows ?? []) console.log(`  ${row.name.padEnd(74)} ${(row.median_ns / 1000).toFixed(3).padStart(10)} µs`);
  if (section.propagation !== undefined) console.log(`  revocation propagation over ${section.propagation.revocations}: p50 ${section.propagation.p50_ms.toFixed(1)} ms, p99 ${section.propagation.p99_ms.toFixed(1)} ms`);
  if (section.not_measured !== undefined) console.log(`  not measured: ${section.not_measured}`);
  for (const l of section.load ?? []) console.log(`  fresh instance, ${l.revoked} revoked ids: load ${l.load_ms} ms, start to listening ${l.start_to_listening_ms} ms, RSS ${l.rss_mb} MB`);
}

results.load_average_1m_at_end = load1();
results.seconds = Math.round((Date.now() - started) / 1000);
console.log(`\n${results.machine}; load average ${results.load_average_1m_at_start} → ${results.load_average_1m_at_end}; ${results.seconds} s\n`);
console.log('| What | Measured | Target | Met |');
console.log('|---|---|---|---|');
for (const t of results.targets) console.log(`| ${t.name} | ${fmt(t.value, t.unit)} | ${t.target} | ${t.met ? 'yes' : '**no**'} |`);
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote bench/results.json');
