// `npm run load`: 100,000 proxied calls at concurrency 32 through `capframe serve`, a
// mix of allowed calls and calls the policy denies (constraint_failed), in front of the
// lean upstream. Passes when no call fails beyond the expected denials, the proxy's
// resident memory grows by less than 30 MB after warm-up and its open file descriptors
// do not grow. Writes bench/load-results.json.
//   npm run build:ts && node bench/load.mjs [--calls 100000] [--concurrency 32]
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { signingKey } from '../dist/keys/keys.js';
import { mint } from '../dist/token/mint.js';
import { load1, machine } from './lib.mjs';
import { generator, start, startServe } from './macro.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { calls: { type: 'string', default: '100000' }, concurrency: { type: 'string', default: '32' }, out: { type: 'string' } } });
const CALLS = Number(values.calls);
const C = Number(values.concurrency);
const WARMUP = Math.min(10_000, Math.round(CALLS / 10));
const MB = 1024 * 1024;

const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
/** What each descriptor is (socket:[…], a file path, …), to name what a growth is made of. */
const fdTargets = (pid) =>
  readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return 'closed';
    }
  });
// The keep-alive pool towards the upstream may still open a connection or two after the
// warm-up; a leak grows with the calls (tens of thousands here), not by a few.
const FD_SLACK = 4;

const dir = mkdtempSync(join(tmpdir(), 'capframe-load-'));
const procs = [];
let ok = false;
const result = { machine: machine(), date: new Date().toISOString(), load_average_1m: load1(), calls: CALLS, concurrency: C, warmup_calls: WARMUP };
try {
  const up = await start([join(HERE, 'upstream.mjs')], { ready: /listening (\S+)/ });
  procs.push(up.child);
  mkdirSync(join(dir, 'serve'));
  const serve = await startServe(
    join(dir, 'serve'),
    `capframe:\n  version: "0.2"\n  default_policy: deny\n  servers:\n    db: { url: "${up.match[1]}" }\n  rules:\n    - { tool: db.query, ttl: 3600, when: [{ arg: sql, op: starts_with, value: "SELECT " }] }\n`,
    'load',
  );
  procs.push(serve.child);
  const pid = serve.child.pid;
  const token = mint({ key: signingKey(readFileSync(join(dir, 'serve', '.capframe', 'issuer.key'), 'utf8')), tool: 'db.query', ttl: 3600 }).token;
  const gen = generator();
  procs.push(gen.child);
  await gen.ask({ cmd: 'open', target: 'serve', url: serve.url });
  // Three allowed calls, then one the constraint denies.
  const args = [{ sql: 'SELECT 1' }, { sql: 'SELECT * FROM t' }, { sql: 'SELECT 2' }, { sql: 'DELETE FROM t' }];
  const run = (calls) => gen.ask({ cmd: 'run', target: 'serve', tool: 'db.query', meta: { 'capframe/token': token }, concurrency: C, calls, args });

  const warm = await run(WARMUP);
  const at = { rss: rss(pid), fds: fds(pid) };
  const targetsAtWarmup = new Set(fdTargets(pid));
  const samples = [];
  const sampler = setInterval(() => samples.push({ rss: rss(pid), fds: fds(pid) }), 500);
  const main = await run(CALLS - WARMUP);
  clearInterval(sampler);
  const end = { rss: rss(pid), fds: fds(pid) };
  const newTargets = fdTargets(pid).filter((t) => !targetsAtWarmup.has(t));
  const all = [warm, main];
  const denied = all.reduce((n, r) => n + (r.codes.constraint_failed ?? 0), 0);
  const unexpected = all.reduce((n, r) => n + r.errors + r.isError, 0) - denied;
  Object.assign(result, {
    elapsed_s: (warm.elapsedMs + main.elapsedMs) / 1000,
    calls_per_s: CALLS / ((warm.elapsedMs + main.elapsedMs) / 1000),
    denied_constraint_failed: denied,
    expected_denials: Math.floor(CALLS / 4),
    unexpected_failures: unexpected,
    first_failure: warm.firstError ?? main.firstError,
    codes: Object.fromEntries([...new Set([...Object.keys(warm.codes), ...Object.keys(main.codes)])].map((k) => [k, (warm.codes[k] ?? 0) + (main.codes[k] ?? 0)])),
    rss_after_warmup_mb: at.rss / MB,
    rss_end_mb: end.rss / MB,
    rss_peak_mb: Math.max(...samples.map((s) => s.rss), end.rss) / MB,
    rss_growth_mb: (end.rss - at.rss) / MB,
    fds_after_warmup: at.fds,
    fds_end: end.fds,
    fds_peak: Math.max(...samples.map((s) => s.fds), end.fds),
    fds_new_kinds: [...new Set(newTargets.map((t) => t.replace(/\[\d+\]$/, '[…]')))],
  });
  ok = unexpected === 0 && denied >= Math.floor(CALLS / 4) - C && result.rss_growth_mb < 30 && end.fds <= at.fds + FD_SLACK;
  result.passed = ok;
} finally {
  for (const p of procs) p.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(result, null, 2));
writeFileSync(values.out ?? join(HERE, 'load-results.json'), `${JSON.stringify(result, null, 2)}\n`);
process.exit(ok ? 0 : 1);
