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

try {
  const { runDecideBench } = await import('./decide.mjs');
  const rows = await runDecideBench();
  printTable('Policy decide (50 rules)', rows);
  results.sections.decide = { rows };
} catch (error) {
  console.log(`\n(decide benchmark unavailable: ${error.message})`);
}

writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote bench/results.json');
