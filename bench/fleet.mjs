// A fleet on Redis (SPEC §12 "Revocation seen by a second instance", issue 11):
//   - propagation: a revocation made through instance A (POST /v1/revocations) until
//     instance B denies the token, p50/p99 over REVOCATIONS revocations, measured from
//     the moment the POST is sent by a client polling B as fast as it answers;
//   - load time of a fresh instance with 100,000 and 1,000,000 revoked ids in Redis;
//   - Redis commands per proxied call (MONITOR), by kind of call: revocation checks add
//     none (they are local after the push); what auto_mint and rate limits add.
// Needs redis-server (Debian: apt-get install -y redis-server); without it the rows say
// "not measured". Run: npm run build:ts && node bench/fleet.mjs
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Redis } from 'ioredis';

import { generateKeyPair } from '../dist/keys/keys.js';
import { encodeBase64url } from '../dist/lib/base64url.js';
import { RATE_LIMIT_SCRIPT, REVOKE_SCRIPT, TRIM_SCRIPT } from '../dist/store/redis-scripts.js';
import { mint } from '../dist/token/mint.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const REVOCATIONS = Number(process.env.FLEET_BENCH_REVOCATIONS ?? 200);
const LOAD_SIZES = (process.env.FLEET_BENCH_LOAD ?? '100000,1000000').split(',').map(Number);
const CALLS = Number(process.env.FLEET_BENCH_CALLS ?? 200);
const ADMIN = 'bench-admin-key';
const AGENT_KEYS = { bot: 'cfk_bench_bot_key', limited: 'cfk_bench_limited_key' };
const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const sha1 = (text) => createHash('sha1').update(text).digest('hex');

function redisInstalled() {
  return spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startRedis(dir) {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if (client.status === 'wait') await client.connect();
      if ((await client.ping()) === 'PONG') break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start: ${error.message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { port, url: `redis://127.0.0.1:${port}`, child, client };
}

function start(args, env) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let partial = '';
  const onData = (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const text of parts) {
      const at = performance.now();
      try {
        lines.push({ at, ...JSON.parse(text) });
      } catch {
        lines.push({ at, text });
      }
    }
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  return { child, lines };
}

async function serve(policy, env, started = performance.now()) {
  const p = start([join(ROOT, 'bin/capframe.js'), 'serve', '--policy', policy, '--port', '0', '--audit-log', `${policy}.audit.log`], env);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const line = p.lines.find((l) => typeof l.text === 'string' && l.text.startsWith('capframe: serving '));
    if (line) return { ...p, url: line.text.slice('capframe: serving '.length).trim(), readyMs: line.at - started };
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not start: ${p.lines.slice(-5).map((l) => l.text ?? l.msg).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function policyText({ store, prefix, upstream, stateDir }) {
  return `capframe:
  version: "0.2"
  default_policy: deny
  state_dir: ${JSON.stringify(stateDir)}
  store: ${JSON.stringify(store)}
  redis: { prefix: ${JSON.stringify(prefix)} }
  servers:
    database: { url: ${JSON.stringify(upstream)} }
  agents:
    bot: { key_sha256: ${sha256(AGENT_KEYS.bot)}, auto_mint: true }
    limited: { key_sha256: ${sha256(AGENT_KEYS.limited)} }
  rules:
    - tool: database.query
      agents: [bot]
      ttl: 3600
    - tool: database.query
      agents: [limited]
      ttl: 3600
      rate_limit: { calls: 1000000, per: 60 }
`;
}

/** An MCP session on `url` for `agent`, and a raw JSON tools/call on it (the proxy's fast path). */
async function session(url, agent) {
  const headers = { authorization: `Bearer ${AGENT_KEYS[agent]}` };
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(transport);
  let id = 0;
  return {
    client,
    async call(token) {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': transport.sessionId,
          'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'database.query', arguments: { sql: 'SELECT id FROM customers WHERE id = 1' }, ...(token && { _meta: { 'capframe/token': token } }) } }),
      });
      const body = await res.json();
      const text = body.result?.content?.[0]?.text ?? JSON.stringify(body);
      return body.result?.isError ? (/^DENIED (\w+)/.exec(text)?.[1] ?? text) : 'ok';
    },
  };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

async function propagation(a, b, issuer) {
  const onB = await session(b.url, 'bot');
  const times = [];
  for (let i = 0; i < REVOCATIONS; i++) {
    const t = mint({ key: issuer, tool: 'database.query', agent: 'bot', ttl: 3600 });
    if ((await onB.call(t.token)) !== 'ok') throw new Error('a fresh token was not allowed on B');
    const t0 = performance.now();
    const posted = fetch(`${a.url.replace(/\/mcp$/, '')}/v1/revocations`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: t.id }) });
    for (;;) {
      const code = await onB.call(t.token);
      if (code === 'revoked') break;
      if (code !== 'ok') throw new Error(`B answered ${code}`);
      if (performance.now() - t0 > 10_000) throw new Error('B never saw the revocation');
    }
    times.push(performance.now() - t0);
    if ((await posted).status !== 200) throw new Error('POST /v1/revocations failed');
  }
  await onB.client.close();
  return { revocations: REVOCATIONS, p50_ms: pct(times, 50), p99_ms: pct(times, 99), max_ms: Math.max(...times) };
}

async function loadTime(redis, dir, upstream, env, size) {
  const prefix = `load${size}:`;
  const drop = Date.now() + 3600_000;
  for (let i = 0; i < size; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(size, i + 10_000); j++) {
      const cti = Buffer.alloc(16);
      cti.writeUInt32BE(j, 0);
      cti.writeUInt32BE(size, 4);
      batch.push(drop, `tok_${cti.toString('base64url')}`);
    }
    await redis.client.zadd(`${prefix}revoked`, ...batch);
  }
  const policy = join(dir, `load-${size}.yaml`);
  writeFileSync(policy, policyText({ store: redis.url, prefix, upstream, stateDir: join(dir, `state-load-${size}`) }));
  const started = performance.now();
  const c = await serve(policy, env, started);
  const loaded = c.lines.find((l) => l.msg === 'revocation feed current');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${c.child.pid}/status`, 'utf8'))?.[1] ?? 0);
  c.child.kill('SIGTERM');
  await redis.client.del(`${prefix}revoked`);
  return { revoked: size, loaded: loaded?.revoked ?? null, load_ms: loaded?.load_ms ?? null, start_to_listening_ms: Math.round(c.readyMs), rss_mb: Math.round(rssKb / 1024) };
}

/** Redis commands a proxied call causes, by command (MONITOR sees every one). */
async function roundTrips(redis, b, issuer) {
  const shas = { [sha1(REVOKE_SCRIPT)]: 'revoke script', [sha1(TRIM_SCRIPT)]: 'trim script', [sha1(RATE_LIMIT_SCRIPT)]: 'rate-limit script' };
  const monitor = await redis.client.duplicate().monitor();
  let seen = [];
  // Commands a script runs show up with source "lua": they are part of the script's one round trip.
  monitor.on('monitor', (_time, args, source) => {
    if (source !== 'lua') seen.push(args);
  });
  const kinds = {
    'token presented, no rate limit': { agent: 'bot', token: () => mint({ key: issuer, tool: 'database.query', agent: 'bot', ttl: 3600 }).token },
    'token presented, rate-limited rule': { agent: 'limited', token: () => mint({ key: issuer, tool: 'database.query', agent: 'limited', ttl: 3600 }).token },
    'auto_mint (no token)': { agent: 'bot', token: () => undefined },
  };
  const out = {};
  for (const [name, kind] of Object.entries(kinds)) {
    const s = await session(b.url, kind.agent);
    const token = kind.token();
    await s.call(token); // warm
    await new Promise((r) => setTimeout(r, 100));
    seen = [];
    for (let i = 0; i < CALLS; i++) if ((await s.call(token)) !== 'ok') throw new Error(`${name}: a call was denied`);
    await new Promise((r) => setTimeout(r, 100));
    const counted = {};
    for (const args of seen) {
      const cmd = String(args[0]).toLowerCase();
      if (cmd === 'ping' || cmd === 'info' || cmd === 'monitor') continue; // the subscriber's liveness check, not the call path
      const label = cmd === 'evalsha' ? (shas[String(args[1])] ?? cmd) : cmd === 'eval' ? (shas[sha1(String(args[1]))] ?? cmd) : cmd;
      if (label === 'trim script') continue; // periodic, not per call
      counted[label] = (counted[label] ?? 0) + 1;
    }
    out[name] = { per_call: Object.values(counted).reduce((x, y) => x + y, 0) / CALLS, commands: Object.fromEntries(Object.entries(counted).map(([k, v]) => [k, v / CALLS])) };
    await s.client.close();
  }
  monitor.disconnect();
  return out;
}

export async function runFleetBench() {
  if (!redisInstalled()) return { not_measured: 'redis-server not installed (Debian: apt-get install -y redis-server)' };
  const dir = mkdtempSync(join(tmpdir(), 'capframe-fleet-bench-'));
  const redis = await startRedis(dir);
  const upstream = start([join(ROOT, 'examples/servers/database.js'), '--http', '0'], {});
  const procs = [upstream];
  try {
    let upstreamUrl;
    for (const deadline = Date.now() + 20_000; !upstreamUrl; ) {
      const m = upstream.lines.map((l) => /127\.0\.0\.1:(\d+)/.exec(l.text ?? l.msg ?? '')).find(Boolean);
      if (m) upstreamUrl = `http://127.0.0.1:${m[1]}/mcp`;
      else if (Date.now() > deadline) throw new Error('the database example did not start');
      else await new Promise((r) => setTimeout(r, 20));
    }
    const issuer = generateKeyPair();
    const env = { CAPFRAME_ISSUER_KEY: encodeBase64url(issuer.secretKey), CAPFRAME_ADMIN_KEY: ADMIN, CAPFRAME_LOG_LEVEL: 'info' };
    const policies = ['a', 'b'].map((name) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, policyText({ store: redis.url, prefix: 'bench:', upstream: upstreamUrl, stateDir: join(dir, `state-${name}`) }));
      return file;
    });
    const [a, b] = await Promise.all(policies.map((p) => serve(p, env)));
    procs.push(a, b);
    const result = { propagation: await propagation(a, b, issuer.secretKey), round_trips: await roundTrips(redis, b, issuer.secretKey), load: [] };
    for (const size of LOAD_SIZES) result.load.push(await loadTime(redis, dir, upstreamUrl, env, size));
    return result;
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    redis.client.disconnect();
    redis.child.kill('SIGTERM');
  }
}

/** Prints the fleet rows. */
export function printFleet(r) {
  console.log('\nFleet on Redis (two `capframe serve` instances, one redis-server, same machine)');
  if (r.not_measured) {
    console.log(`  not measured: ${r.not_measured}`);
    return;
  }
  const p = r.propagation;
  console.log(`  revocation through A seen by B: p50 ${p.p50_ms.toFixed(1)} ms, p99 ${p.p99_ms.toFixed(1)} ms, max ${p.max_ms.toFixed(1)} ms over ${p.revocations} (target p99 <= 100 ms)`);
  for (const l of r.load) console.log(`  fresh instance with ${l.revoked.toLocaleString('en')} revoked ids: loaded in ${l.load_ms} ms, listening ${l.start_to_listening_ms} ms after start, RSS ${l.rss_mb} MB`);
  for (const [name, t] of Object.entries(r.round_trips)) {
    const detail = Object.entries(t.commands).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    console.log(`  Redis commands per call, ${name}: ${t.per_call.toFixed(2)}${detail ? ` (${detail})` : ''}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runFleetBench();
  printFleet(r);
  console.log(JSON.stringify(r, null, 2));
}
