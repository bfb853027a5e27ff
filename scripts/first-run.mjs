// The README's first run: `npx capframe demo` in the current directory, timed until its
// banner; then a GET /healthz, and the demo (with its example servers) is stopped.
// Used by .ci/run in the fresh clone and by scripts/release-check.sh in fresh projects.
// Usage: node scripts/first-run.mjs [--max-seconds N]   (default: fail only after 60 s)
import { spawn } from 'node:child_process';

const i = process.argv.indexOf('--max-seconds');
const max = i === -1 ? 60 : Number(process.argv[i + 1]);
const start = performance.now();
const seconds = () => ((performance.now() - start) / 1000).toFixed(1);

// Its own process group, so stopping it stops npx, capframe and the example servers.
const demo = spawn('npx', ['capframe', 'demo', '--port', '0'], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
let firstLine;
const stop = () => {
  try {
    process.kill(-demo.pid, 'SIGTERM');
  } catch {
    // already gone
  }
};
const fail = (why) => {
  stop();
  console.error(`first run FAILED: ${why}\n--- demo output ---\n${log}`);
  process.exit(1);
};
const deadline = setTimeout(() => fail('no banner within 60 s'), 60_000);
demo.once('exit', (code) => fail(`capframe demo exited (${code}) before its banner`));
demo.stderr.on('data', async (chunk) => {
  log += chunk;
  firstLine ??= seconds();
  if (!log.includes('Stop with Ctrl-C')) return;
  demo.stderr.removeAllListeners('data');
  demo.removeAllListeners('exit');
  clearTimeout(deadline);
  const banner = seconds();
  const url = /serving (http:\S+)/.exec(log)?.[1];
  const health = url === undefined ? undefined : await fetch(new URL('/healthz', url)).catch(() => undefined);
  if (health?.ok !== true) fail(`GET /healthz on ${url} did not answer 200`);
  stop();
  console.log(`npx capframe demo: first output after ${firstLine} s, banner after ${banner} s, /healthz OK`);
  if (Number(banner) > max) fail(`the banner took ${banner} s, more than ${max} s`);
});
