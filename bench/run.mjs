// `npm run bench`: every benchmark, native and TypeScript side by side in one run.
// Prints tables naming the machine and writes bench/results.json.
// Run with `node --expose-gc bench/run.mjs` for steadier memory figures (npm run bench does).
import { writeFileSync } from 'node:fs';

import { machine, printTable } from './lib.mjs';
import { runRevocationBench, runVerifyBench } from './verify.mjs';

const results = { machine: machine(), date: new Date().toISOString(), sections: {} };
console.log(`capframe benchmarks — ${results.machine}`);

const verify = await runVerifyBench();
printTable('Token verification (per operation)', verify.rows);
for (const [k, v] of Object.entries(verify.ratios)) console.log(`  ${k}: ${v.toFixed(3)}`);
results.sections.verify = verify;

const revocation = await runRevocationBench();
printTable('Revocation set', revocation.rows);
for (const [k, v] of Object.entries(revocation.bytes_per_id)) console.log(`  memory per revoked id (${k}): ${v.toFixed(1)} bytes`);
results.sections.revocation = revocation;

const delegation = await (await import('./delegation.mjs')).runDelegationBench();
printTable(`Delegation: depth-3 chain (${delegation.chain_bytes} bytes) with a holder proof per call`, delegation.rows);
for (const [k, v] of Object.entries(delegation.ratios)) console.log(`  ${k}: ${v.toFixed(3)}`);
results.sections.delegation = delegation;

try {
  const { runDecideBench } = await import('./decide.mjs');
  const rows = await runDecideBench();
  printTable('Policy decide (50 rules)', rows);
  results.sections.decide = { rows };
} catch (error) {
  console.log(`\n(decide benchmark unavailable: ${error.message})`);
}

try {
  const { runProxyBench } = await import('./proxy.mjs');
  const proxy = await runProxyBench();
  console.log(`\nProxy (database example over Streamable HTTP, ${proxy.calls_per_round} calls per round, concurrency ${proxy.concurrency}, median of 3 rounds)`);
  console.log(`  direct:  ${proxy.direct_calls_per_s.toFixed(0)} calls/s`);
  console.log(`  proxied: ${proxy.proxied_calls_per_s.toFixed(0)} calls/s  (ratio ${proxy.proxied_over_direct.toFixed(3)}, target >= 0.85)`);
  console.log(`  proxy process CPU per call: ${proxy.proxy_cpu_us_per_call.toFixed(0)} us (HTTP both ways included); decision path median: ${proxy.decision_path_us_median} us`);
  console.log(`  upstream process CPU per direct call, for scale: ${proxy.upstream_cpu_us_per_direct_call.toFixed(0)} us`);
  console.log(`  delegated (depth 2) + fresh proof per call: ${proxy.delegated_calls_per_s.toFixed(0)} calls/s (${proxy.delegated_over_plain_token.toFixed(3)} x the plain token), proxy CPU ${proxy.proxy_cpu_us_per_delegated_call.toFixed(0)} us per call, decision path median ${proxy.decision_path_delegated_us_median} us`);
  results.sections.proxy = proxy;
} catch (error) {
  console.log(`\n(proxy benchmark failed: ${error.message})`);
}

writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote bench/results.json');
