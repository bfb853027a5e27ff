// `npm test`: builds and type-checks the TypeScript (src and tests), then runs the whole suite once per backend —
// native (when the addon is built) and TypeScript — and prints one closing line.
// CAPFRAME_REQUIRE_NATIVE=1 (set by CI) fails when the native addon is missing.
// Extra arguments go to vitest, e.g. `npm test -- test/token`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = {}) =>
  spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

const tsc = join(root, 'node_modules/typescript/bin/tsc');
if (run(process.execPath, [tsc, '-p', 'tsconfig.json']) !== 0) {
  console.error('capframe: TypeScript build failed');
  process.exit(1);
}
// The tests are TypeScript too, held to the same strict settings.
if (run(process.execPath, [tsc, '-p', 'tsconfig.test.json']) !== 0) {
  console.error('capframe: type errors in src/ or test/');
  process.exit(1);
}

const { nativeAddonPath } = await import('../dist/backend/native.js');
const backends = nativeAddonPath() === undefined ? ['js'] : ['native', 'js'];
if (backends.length === 1) {
  const msg = 'native addon not built; testing the TypeScript backend only';
  if (process.env.CAPFRAME_REQUIRE_NATIVE === '1') {
    console.error(`capframe: ${msg}, but CAPFRAME_REQUIRE_NATIVE=1`);
    process.exit(1);
  }
  console.error(`capframe: ${msg}`);
}

const out = mkdtempSync(join(tmpdir(), 'capframe-test-'));
let passed = 0;
let failed = 0;
let status = 0;
for (const backend of backends) {
  console.log(`\n=== backend: ${backend} ===`);
  const report = join(out, `${backend}.json`);
  const vitest = join(root, 'node_modules/vitest/vitest.mjs');
  const code = run(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...process.argv.slice(2)], {
    CAPFRAME_BACKEND: backend,
  });
  try {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    // A file whose setup failed has no failed test but is a failure: count it.
    const brokenFiles = r.testResults.filter((f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed')).length;
    passed += r.numPassedTests;
    failed += r.numFailedTests + brokenFiles;
    console.log(`backend ${backend}: ${r.numPassedTests} passed, ${r.numFailedTests} failed${brokenFiles > 0 ? `, ${brokenFiles} test file(s) failed outside any test (setup)` : ''}`);
  } catch {
    failed += 1;
    console.log(`backend ${backend}: no test report (vitest exited ${code})`);
  }
  if (code !== 0) status = 1;
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(status || (failed > 0 ? 1 : 0));
