// The proxy under load (SPEC §12 rows 5–6): proxy CPU per proxied call, and proxied
// vs direct throughput against the same upstream at concurrency 16, in one run.
// The upstream is examples/servers/database.js over Streamable HTTP; the proxy is a
// real `capframe serve` child process; CPU comes from /proc/<pid>/stat.
// Run: npm run build:ts && node bench/proxy.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { signingKey } from '../dist/keys/keys.js';
import { mint } from '../dist/token/mint.js';
import { delegate } from '../dist/token/delegate.js';
import { createProof } from '../dist/token/proof.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CALLS = Number(process.env.PROXY_BENCH_CALLS ?? 2000);
const CONCURRENCY = 16;
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_SECOND; // utime + stime
}

function start(args, env, ready) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk) => {
      seen += chunk;
      const m = ready.exec(seen);
      if (m) resolve({ child, match: m });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${seen.slice(-500)}`)));
  });
}

async function connect(url, headers = {}) {
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

const SQL = { sql: 'SELECT * FROM customers WHERE id = 1' };

/** Runs CALLS calls with CONCURRENCY in flight; returns calls per second. `meta` is one `_meta`, or one per call. */
async function load(client, name, meta) {
  let next = 0;
  const worker = async () => {
    while (next < CALLS) {
      const i = next++;
      const m = Array.isArray(meta) ? meta[i] : meta;
      const r = await client.callTool({ name, arguments: SQL, ...(m && { _meta: m }) });
      if (r.isError) throw new Error(`call failed: ${JSON.stringify(r.content)}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return CALLS / ((performance.now() - t0) / 1000);
}

export async function runProxyBench() {
  const dir = mkdtempSync(join(tmpdir(), 'capframe-bench-'));
  const upstream = await start([join(ROOT, 'examples/servers/database.js'), '--http', '0'], {}, /127\.0\.0\.1:(\d+)/);
  const upstreamUrl = `http://127.0.0.1:${upstream.match[1]}/mcp`;
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `capframe:
  version: "0.2"
  default_policy: deny
  servers:
    database: { url: "${upstreamUrl}" }
  rules:
    - tool: database.query
      ttl: 3600
`);
  // PROXY_PROF=<dir> writes a V8 CPU profile of the proxy there.
  const profile = process.env.PROXY_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROXY_PROF}`] : [];
  const extra = process.env.PROXY_JSON === '1' ? ['--json-response'] : [];
  // PROXY_CONSOLE=1 serves the operator console too (nobody signed in): its cost on the call path.
  if (process.env.PROXY_CONSOLE === '1') extra.push('--console');
  const proxy = await start([...profile, join(ROOT, 'bin/capframe.js'), 'serve', '--policy', policy, '--port', '0', ...extra], { CAPFRAME_LOG_LEVEL: 'warn', CAPFRAME_ADMIN_KEY: 'bench-admin-key-0123456789' }, /serving (http:\S+)/);
  try {
    const direct = await connect(upstreamUrl);
    const proxied = await connect(proxy.match[1]);
    // No agents in this policy: the operator mints the token, as `capframe mint` would.
    const issuer = signingKey(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8'));
    const meta = { 'capframe/token': mint({ key: issuer, tool: 'database.query', ttl: 3600 }).token };
    // Issue 10: a depth-2 delegated token (root → two delegations, one bound each) with a
    // fresh holder proof per call. Without agents in the policy the proof alone proves
    // possession. Proofs are made before each round, so the client's signing is not timed.
    const holders = [0x31, 0x32, 0x33].map((b) => signingKey(new Uint8Array(32).fill(b)));
    let chained = mint({ key: issuer, tool: 'database.*', ttl: 3600, holderKey: holders[0].publicKey, when: [{ arg: 'sql', op: 'max_length', value: 200 }] }).token;
    for (let i = 1; i < holders.length; i++) {
      chained = delegate(chained, { key: holders[i - 1], tools: 'database.query', when: [{ arg: 'sql', op: 'starts_with', value: 'SELECT' }], to: holders[i].publicKey }).token;
    }
    const proved = () => Array.from({ length: CALLS }, () => ({ 'capframe/token': chained, 'capframe/proof': createProof({ token: chained, tool: 'database.query', args: SQL, key: holders.at(-1) }).proof }));
    // Warm every path, then alternate so drift on a shared machine hits them alike.
    await load(direct, 'query');
    await load(proxied, 'database.query', meta);
    await load(proxied, 'database.query', proved());
    const rounds = { direct: [], proxied: [], cpu: [], upstream_cpu: [], delegated: [], delegated_cpu: [] };
    for (let i = 0; i < 3; i++) {
      const up = cpuMicros(upstream.child.pid);
      rounds.direct.push(await load(direct, 'query'));
      rounds.upstream_cpu.push((cpuMicros(upstream.child.pid) - up) / CALLS);
      const before = cpuMicros(proxy.child.pid);
      rounds.proxied.push(await load(proxied, 'database.query', meta));
      rounds.cpu.push((cpuMicros(proxy.child.pid) - before) / CALLS);
      const proofs = proved();
      const beforeDelegated = cpuMicros(proxy.child.pid);
      rounds.delegated.push(await load(proxied, 'database.query', proofs));
      rounds.delegated_cpu.push((cpuMicros(proxy.child.pid) - beforeDelegated) / CALLS);
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    await direct.close();
    await proxied.close();
    // The decision path alone (authenticate → verify → policy → audit), as the audit log
    // records it per call: the part of the proxy's CPU that is Capframe's own work.
    const audit = readFileSync(join(dir, '.capframe', 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const plainId = audit.find((r) => r.decision === 'allow')?.token_id;
    const decisionUs = median(audit.filter((r) => r.decision === 'allow' && r.token_id === plainId).map((r) => r.latency_us));
    const delegatedUs = median(audit.filter((r) => r.decision === 'allow' && r.token_id !== plainId).map((r) => r.latency_us));
    return {
      calls_per_round: CALLS,
      concurrency: CONCURRENCY,
      direct_calls_per_s: median(rounds.direct),
      proxied_calls_per_s: median(rounds.proxied),
      proxied_over_direct: median(rounds.proxied) / median(rounds.direct),
      proxy_cpu_us_per_call: median(rounds.cpu),
      decision_path_us_median: decisionUs,
      delegated_calls_per_s: median(rounds.delegated),
      delegated_over_plain_token: median(rounds.delegated) / median(rounds.proxied),
      proxy_cpu_us_per_delegated_call: median(rounds.delegated_cpu),
      decision_path_delegated_us_median: delegatedUs,
      // For scale: what the upstream MCP server itself (same SDK) spends per direct call.
      upstream_cpu_us_per_direct_call: median(rounds.upstream_cpu),
      rounds,
    };
  } finally {
    proxy.child.kill('SIGTERM');
    upstream.child.kill('SIGTERM');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runProxyBench();
  console.log(JSON.stringify(r, null, 2));
}
