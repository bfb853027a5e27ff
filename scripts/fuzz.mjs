// `npm run fuzz [-- --cases N] [--seed S] [--target token,chain,policy,jsonrpc]`: runs each
// fuzz target (scripts/fuzz/targets.mjs) for N cases (default 1,000,000) and prints the
// count, the time and any failure with its seed and case number; exits 1 on a failure.
// The token and chain targets run on both backends at once (differential); run the whole
// thing once more with CAPFRAME_BACKEND=js for the proxy path on the TypeScript backend.
import { parseArgs } from 'node:util';

import { TARGETS } from './fuzz/targets.mjs';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '1000000' }, seed: { type: 'string', default: '1' }, target: { type: 'string', default: Object.keys(TARGETS).join(',') } } });
const cases = Number(values.cases);
let failed = false;
for (const name of values.target.split(',')) {
  const target = TARGETS[name];
  if (target === undefined) throw new Error(`no fuzz target "${name}" (${Object.keys(TARGETS).join(', ')})`);
  const t0 = performance.now();
  const r = await target({ cases, seed: Number(values.seed) * 1000 + Object.keys(TARGETS).indexOf(name) });
  const s = (performance.now() - t0) / 1000;
  console.log(`${name}: ${r.cases} cases in ${s.toFixed(1)} s (${Math.round(r.cases / s)}/s), backend ${process.env.CAPFRAME_BACKEND ?? 'default'}: ${r.failures.length === 0 ? 'clean' : `${r.failures.length} FAILURES`}${r.forwarded !== undefined ? `; ${r.forwarded} calls forwarded` : ''}`);
  for (const f of r.failures) console.log(`  seed ${f.seed} case ${f.case}: ${f.what}\n    input ${f.input}`);
  if (r.failures.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
