// Micro rows (SPEC §12), one process per scenario, rounds alternating between them:
// public `verify()` of a fresh token with a call context on the native and TypeScript
// backends, against `jose` (EdDSA JWT, key cached), `@biscuit-auth/biscuit-wasm` (token
// + an authorizer with one fact and one check) and raw node:crypto Ed25519 verify (the
// primitive floor); batch verify; repeat presentation; revocation lookup among 1,000,000.
// Each ratio is taken per round and the median over rounds reported.
//   npm run build:ts && node --expose-gc bench/micro.mjs
import { fork } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { SignJWT } from 'jose';

import { signingKey } from '../dist/keys/keys.js';
import { loadNativeBackend } from '../dist/backend/native.js';
import { mint } from '../dist/token/mint.js';
import { median } from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.MICRO_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.MICRO_MS ?? 300);
const TOOL = 'database.query';
const WHEN = [{ arg: 'sql', op: 'matches', value: '^SELECT ' }];

function worker(scenario, poolFile, env = {}, execArgv = []) {
  const child = fork(join(HERE, 'micro-worker.mjs'), [scenario, poolFile], { env: { ...process.env, ...env }, execArgv: ['--expose-gc', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox = [];
  let waiting;
  child.on('message', (m) => (waiting ? (waiting(m), (waiting = undefined)) : inbox.push(m)));
  child.on('exit', (code) => code !== 0 && code !== null && waiting?.({ error: `${scenario} exited ${code}` }));
  const next = () => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiting = r)));
  return {
    child,
    next,
    async run(task, ms) {
      child.send({ task, ms });
      const m = await next();
      if (m.error) throw new Error(m.error);
      return m;
    },
  };
}

async function pool(dir) {
  const seed = new Uint8Array(32).fill(11);
  const key = signingKey(seed);
  const x = Buffer.from(key.publicKey).toString('base64url');
  const jwk = { kty: 'OKP', crv: 'Ed25519', x, d: Buffer.from(seed).toString('base64url') };
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  // More tokens than the verdict cache holds (10,000), so each verify() is a first one.
  const tokens = Array.from({ length: 12_000 }, () => mint({ key, tool: TOOL, agent: 'support-bot', ttl: 3600, when: WHEN }).token);
  const repeat = mint({ key, tool: TOOL, agent: 'support-bot', ttl: 3600, when: WHEN }).token;
  const now = Math.floor(Date.now() / 1000);
  const jwts = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => new SignJWT({ tool: TOOL, sub: 'support-bot', jti: String(i) }).setProtectedHeader({ alg: 'EdDSA' }).setIssuedAt(now).setExpirationTime(now + 3600).sign(privateKey)),
  );
  // The primitive floor signs what a token's signature covers (a Sig_structure of the same size).
  const raw = tokens.slice(0, 1000).map((t) => {
    const bytes = Buffer.from(t.slice(4), 'base64url');
    const message = bytes.subarray(0, bytes.length - 64);
    return [message.toString('hex'), sign(null, message, privateKey).toString('hex')];
  });
  const file = join(dir, 'pool.json');
  writeFileSync(file, JSON.stringify({ publicKey: Buffer.from(key.publicKey).toString('hex'), tokens, repeat, jwts, jwkPublic: { kty: 'OKP', crv: 'Ed25519', x }, raw }));
  return file;
}

/** Runs `tasks` ([label, worker, task]) in turn, ROUNDS times; returns rows and per-round medians. */
async function alternate(tasks, ms = ROUND_MS) {
  const perRound = tasks.map(() => []);
  const last = tasks.map(() => undefined);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < tasks.length; i++) {
      const [, w, task] = tasks[(i + r) % tasks.length];
      const row = await w.run(task, ms);
      perRound[(i + r) % tasks.length].push(row.median_ns);
      last[(i + r) % tasks.length] = row;
    }
  }
  const rows = tasks.map(([label], i) => ({ name: label, median_ns: median(perRound[i]), p99_ns: last[i].p99_ns, rounds_ns: perRound[i] }));
  return { rows, perRound };
}

const ratioOf = (a, b) => median(a.map((x, i) => x / b[i]));

export async function runMicroBench() {
  const dir = mkdtempSync(join(tmpdir(), 'capframe-micro-'));
  let hasNative = true;
  try {
    loadNativeBackend();
  } catch {
    hasNative = false;
  }
  const workers = [];
  try {
    const poolFile = await pool(dir);
    const start = (...args) => {
      const w = worker(...args);
      workers.push(w);
      return w;
    };
    const native = hasNative ? start('capframe', poolFile, { CAPFRAME_BACKEND: 'native' }) : undefined;
    const js = start('capframe', poolFile, { CAPFRAME_BACKEND: 'js' });
    const jose = start('jose', poolFile);
    const biscuit = start('biscuit', poolFile, {}, ['--experimental-wasm-modules', '--no-warnings']);
    const crypto = start('crypto', poolFile);
    for (const w of workers) {
      const m = await w.next();
      if (!m.ready) throw new Error(`worker did not start: ${JSON.stringify(m)}`);
    }
    const capframe = [...(native ? [['native', native]] : []), ['js', js]];

    const fresh = await alternate([
      ...capframe.map(([n, w]) => [`verify() fresh token, call context (${n})`, w, 'verify_fresh']),
      ['jose jwtVerify, EdDSA JWT, cached key', jose, 'verify_fresh'],
      ['biscuit-wasm token + authorizer (1 fact, 1 check)', biscuit, 'verify_fresh'],
      ['node:crypto Ed25519 verify (primitive floor)', crypto, 'verify_fresh'],
    ], 400);
    const repeat = await alternate([
      ...capframe.map(([n, w]) => [`verify() repeat presentation, call context (${n})`, w, 'verify_repeat']),
      ...capframe.map(([n, w]) => [`proxy decision, repeat: verifier.verify + policy.decide (${n})`, w, 'decision_repeat']),
    ]);
    const batch = await alternate(capframe.flatMap(([n, w]) => [[`backend verify, fresh token (${n})`, w, 'core_fresh'], [`backend batch verify 64, per token (${n})`, w, 'core_batch64']]));

    // Revocation: a process per backend, so its memory figure is its own.
    const revocation = [];
    const bytesPerId = {};
    for (const [n, env] of [...(hasNative ? [['native', { CAPFRAME_BACKEND: 'native' }]] : []), ['js', { CAPFRAME_BACKEND: 'js' }]]) {
      const w = start('revocation', poolFile, env);
      bytesPerId[n] = (await w.next()).bytes_per_id;
      await w.next(); // ready
      revocation.push([`revocation lookup, 1,000,000 revoked (${n})`, w, 'lookup']);
    }
    const rev = await alternate(revocation);

    const f = fresh.perRound;
    const results = { rows: [...fresh.rows, ...repeat.rows, ...batch.rows, ...rev.rows], bytes_per_id: bytesPerId, targets: [] };
    const target = (name, value, op, limit, unit = '×') => results.targets.push({ name, value, target: `${op} ${limit}${unit === '×' ? ' ×' : ` ${unit}`}`, met: op === '≤' ? value <= limit : value >= limit, unit });
    if (native) {
      target('verify() fresh, native / TS', ratioOf(f[0], f[1]), '≤', 0.45);
      target('verify() fresh, native / jose', ratioOf(f[0], f[2]), '≤', 0.2);
      target('verify() fresh, native / biscuit-wasm', ratioOf(f[0], f[3]), '≤', 0.12);
      results.info = { verify_fresh_native_over_node_crypto: ratioOf(f[0], f[4]) };
      target('verify() repeat presentation, call context (native), median', repeat.rows[0].median_ns / 1000, '≤', 1, 'µs');
      target('batch verify 64, per token / native single', ratioOf(batch.perRound[1], batch.perRound[0]), '≤', 0.5);
      target('revocation lookup, 1M revoked (native), median', rev.rows[0].median_ns / 1000, '≤', 0.2, 'µs');
      target('revocation memory per id (native)', bytesPerId.native, '≤', 48, 'B');
    }
    return results;
  } finally {
    for (const w of workers) w.child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runMicroBench();
  for (const row of r.rows) console.log(`${row.name.padEnd(72)} ${(row.median_ns / 1000).toFixed(3).padStart(10)} µs`);
  for (const t of r.targets) console.log(`${t.met ? 'met ' : 'MISS'} ${t.name}: ${t.value.toFixed(3)} (target ${t.target})`);
  console.log(r.info, r.bytes_per_id);
}
