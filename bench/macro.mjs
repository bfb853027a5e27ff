// Macro rows (SPEC §12): proxy CPU per call and throughput of `capframe serve` against
// the floor (bench/floor.mjs), both in front of the lean upstream (bench/upstream.mjs),
// at concurrency 1 and 16, with a token presented and with `auto_mint`. Every server is
// its own process; the load generator (bench/load-gen.mjs) is another, and reports its
// own CPU. Rounds alternate the targets so drift on a shared machine hits them alike;
// each ratio is taken per round, then the median over rounds.
//   npm run build:ts && node bench/macro.mjs
// Env: MACRO_ROUNDS (3), MACRO_MS (2500 per run), PROXY_PROF=<dir> (a V8 CPU profile of
// each serve process there), PROXY_CONSOLE=1 (serve the operator console too, nobody
// signed in: its cost on the call path).
import { fork, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { signingKey } from '../dist/keys/keys.js';
import { delegate } from '../dist/token/delegate.js';
import { mint } from '../dist/token/mint.js';
import { createProof } from '../dist/token/proof.js';
import { load1, median, processCpuNs } from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const ROUNDS = Number(process.env.MACRO_ROUNDS ?? 3);
const RUN_MS = Number(process.env.MACRO_MS ?? 2500);

/** Starts a process and resolves with it and the first match of `ready` on its output. */
export function start(args, { env = {}, ready, ipc = false }) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk) => {
      seen += chunk;
      const m = ready.exec(seen);
      if (m) resolve({ child, match: m });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${seen.slice(-800)}`)));
  });
}

export function generator() {
  const child = fork(join(HERE, 'load-gen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending;
  child.on('message', (m) => pending?.(m));
  return {
    child,
    ask(msg) {
      return new Promise((resolve, reject) => {
        pending = (m) => (m.ok ? resolve(m) : reject(new Error(m.error)));
        child.send(msg);
      });
    },
  };
}

export async function startServe(dir, policy, label) {
  writeFileSync(join(dir, 'policy.yaml'), policy);
  const prof = process.env.PROXY_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROXY_PROF}`, `--cpu-prof-name=${label}.cpuprofile`] : [];
  const consoleArgs = process.env.PROXY_CONSOLE === '1' ? ['--console'] : [];
  const s = await start([...prof, join(ROOT, 'bin/capframe.js'), 'serve', '--policy', join(dir, 'policy.yaml'), '--port', '0', ...consoleArgs], {
    env: { CAPFRAME_LOG_LEVEL: 'warn', CAPFRAME_ADMIN_KEY: 'bench-admin-key-0123456789' },
    ready: /serving (http:\S+)/,
  });
  return { child: s.child, url: s.match[1] };
}

export async function runMacroBench() {
  const dir = mkdtempSync(join(tmpdir(), 'capframe-macro-'));
  const procs = [];
  try {
    const up = await start([join(HERE, 'upstream.mjs')], { ready: /listening (\S+)/ });
    procs.push(up.child);
    const upstreamUrl = up.match[1];
    const floor = await start([join(HERE, 'floor.mjs'), upstreamUrl], { ready: /listening (\S+)/ });
    procs.push(floor.child);

    const tokenDir = join(dir, 'token');
    const autoDir = join(dir, 'auto');
    for (const d of [tokenDir, autoDir]) rmSync(d, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(tokenDir);
    mkdirSync(autoDir);
    const server = `  servers:\n    db: { url: "${upstreamUrl}" }\n`;
    const tokenServe = await startServe(tokenDir, `capframe:\n  version: "0.2"\n  default_policy: deny\n${server}  rules:\n    - { tool: db.query, ttl: 3600 }\n`, 'token');
    procs.push(tokenServe.child);
    const agentKey = randomBytes(24).toString('base64url');
    const keySha = createHash('sha256').update(agentKey).digest('hex');
    const autoServe = await startServe(autoDir, `capframe:\n  version: "0.2"\n  default_policy: deny\n  auto_mint: true\n  agents:\n    bot: { key_sha256: "${keySha}" }\n${server}  rules:\n    - { tool: db.query, ttl: 3600 }\n`, 'auto_mint');
    procs.push(autoServe.child);
    const issuer = signingKey(readFileSync(join(tokenDir, '.capframe', 'issuer.key'), 'utf8'));
    const token = mint({ key: issuer, tool: 'db.query', ttl: 3600 }).token;
    // Issue 10's row: a depth-2 delegated token (root → two delegations, each bound) with a
    // fresh holder proof per call, made before each run so the client's signing is not timed.
    const holders = [0x31, 0x32, 0x33].map((b) => signingKey(new Uint8Array(32).fill(b)));
    let chained = mint({ key: issuer, tool: 'db.*', ttl: 3600, holderKey: holders[0].publicKey, when: [{ arg: 'sql', op: 'max_length', value: 200 }] }).token;
    for (let i = 1; i < holders.length; i++) chained = delegate(chained, { key: holders[i - 1], tools: 'db.query', when: [{ arg: 'sql', op: 'starts_with', value: 'SELECT' }], to: holders[i].publicKey }).token;
    const SQL = { sql: 'SELECT * FROM customers WHERE id = 1' };
    const proofs = (n) => Array.from({ length: n }, () => ({ 'capframe/token': chained, 'capframe/proof': createProof({ token: chained, tool: 'db.query', args: SQL, key: holders.at(-1) }).proof }));

    const gen = generator();
    procs.push(gen.child);
    const targets = {
      direct: { url: upstreamUrl, tool: 'query', pid: undefined },
      floor: { url: floor.match[1], tool: 'query', pid: floor.child.pid },
      token: { url: tokenServe.url, tool: 'db.query', meta: { 'capframe/token': token }, pid: tokenServe.child.pid },
      auto_mint: { url: autoServe.url, tool: 'db.query', headers: { authorization: `Bearer ${agentKey}` }, pid: autoServe.child.pid },
      delegated: { url: tokenServe.url, tool: 'db.query', pid: tokenServe.child.pid },
    };
    for (const [name, t] of Object.entries(targets)) await gen.ask({ cmd: 'open', target: name, url: t.url, headers: t.headers ?? {} });

    const DELEGATED_CALLS = Number(process.env.MACRO_DELEGATED_CALLS ?? 1500);
    const runOne = async (name, concurrency, durationMs) => {
      const t = targets[name];
      const delegated = name === 'delegated';
      const metas = delegated ? proofs(DELEGATED_CALLS) : undefined;
      const before = t.pid === undefined ? 0 : processCpuNs(t.pid);
      const upBefore = processCpuNs(up.child.pid);
      const r = await gen.ask({ cmd: 'run', target: name, tool: t.tool, meta: t.meta, metas, concurrency, ...(delegated ? { calls: DELEGATED_CALLS } : { durationMs }) });
      if (r.errors > 0 || r.isError > 0) throw new Error(`${name} c=${concurrency}: ${r.errors} errors, ${r.isError} isError results (${JSON.stringify(r.codes)}); first: ${r.firstError}`);
      const cpuNs = t.pid === undefined ? 0 : processCpuNs(t.pid) - before;
      return {
        calls: r.calls,
        calls_per_s: r.calls / (r.elapsedMs / 1000),
        cpu_us_per_call: cpuNs / 1000 / r.calls,
        upstream_cpu_us_per_call: (processCpuNs(up.child.pid) - upBefore) / 1000 / r.calls,
        generator_cpu_us_per_call: r.cpuUs / r.calls,
        generator_busy: r.cpuUs / 1000 / r.elapsedMs,
      };
    };

    // Warm-up: JIT, connections, caches.
    for (const name of Object.keys(targets)) await runOne(name, 16, 1500);

    // The delegated row is informational (no target) and runs at c=16 only.
    const names = Object.keys(targets).filter((n) => n !== 'delegated');
    const runs = {};
    const load = [];
    for (let round = 0; round < ROUNDS; round++) {
      load.push(load1());
      for (const c of [16, 1]) {
        // Rotate the order each round.
        const order = names.map((_, i) => names[(i + round) % names.length]);
        for (const name of order) ((runs[`${name}@${c}`] ??= [])).push(await runOne(name, c, RUN_MS));
      }
      ((runs['delegated@16'] ??= [])).push(await runOne('delegated', 16));
    }

    const rows = [];
    const ratios = {};
    for (const c of [16, 1]) {
      for (const name of names) {
        const rs = runs[`${name}@${c}`];
        rows.push({
          name: `${name}, c=${c}`,
          calls_per_s: median(rs.map((r) => r.calls_per_s)),
          cpu_us_per_call: name === 'direct' ? null : median(rs.map((r) => r.cpu_us_per_call)),
          upstream_cpu_us_per_call: median(rs.map((r) => r.upstream_cpu_us_per_call)),
          generator_cpu_us_per_call: median(rs.map((r) => r.generator_cpu_us_per_call)),
          generator_busy: median(rs.map((r) => r.generator_busy)),
          rounds: rs,
        });
      }
      if (c === 16) {
        const rs = runs['delegated@16'];
        rows.push({
          name: 'delegated depth 2 + proof, c=16',
          calls_per_s: median(rs.map((r) => r.calls_per_s)),
          cpu_us_per_call: median(rs.map((r) => r.cpu_us_per_call)),
          upstream_cpu_us_per_call: median(rs.map((r) => r.upstream_cpu_us_per_call)),
          generator_cpu_us_per_call: median(rs.map((r) => r.generator_cpu_us_per_call)),
          generator_busy: median(rs.map((r) => r.generator_busy)),
          rounds: rs,
        });
      }
      for (const name of ['token', 'auto_mint']) {
        const per = runs[`${name}@${c}`].map((r, i) => ({ cpu: r.cpu_us_per_call / runs[`floor@${c}`][i].cpu_us_per_call, tput: r.calls_per_s / runs[`floor@${c}`][i].calls_per_s }));
        ratios[`${name}_cpu_over_floor_c${c}`] = median(per.map((p) => p.cpu));
        ratios[`${name}_throughput_over_floor_c${c}`] = median(per.map((p) => p.tput));
      }
    }
    for (const p of procs) p.kill('SIGTERM');
    return { rounds: ROUNDS, run_ms: RUN_MS, load_average_1m: load, rows, ratios };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    // Let serve write its CPU profile on SIGTERM before the directory goes.
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runMacroBench();
  for (const row of r.rows) console.log(`${row.name.padEnd(16)} ${row.calls_per_s.toFixed(0).padStart(7)} calls/s  proxy ${row.cpu_us_per_call?.toFixed(1) ?? '-'} µs/call  upstream ${row.upstream_cpu_us_per_call.toFixed(1)}  generator ${row.generator_cpu_us_per_call.toFixed(1)} µs/call (busy ${(row.generator_busy * 100).toFixed(0)}%)`);
  console.log(r.ratios, 'load', r.load_average_1m);
}
