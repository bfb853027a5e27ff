// One micro-benchmark scenario per process (bench/micro.mjs forks one per scenario and
// alternates rounds between them): `capframe` (on the backend CAPFRAME_BACKEND names),
// `jose`, `biscuit`, `crypto` (the primitive floor) and `revocation`.
// Protocol: the parent sends {task, ms}; the worker runs that task for `ms` with tinybench
// and answers {median_ns, p99_ns, samples}. On start it answers {ready: [task names]}.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { measure } from './lib.mjs';

const scenario = process.argv[2];
const pool = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const TOOL = 'database.query';
const ARGS = { sql: 'SELECT * FROM customers' };
const tasks = {};

if (scenario === 'capframe') {
  const { verify, createVerifier } = await import('../dist/index.js');
  const { activeBackend } = await import('../dist/backend/select.js');
  const { parsePolicy } = await import('../dist/policy/index.js');
  const publicKey = Uint8Array.from(Buffer.from(pool.publicKey, 'hex'));
  const fresh = pool.tokens;
  let i = 0;
  // Public verify(), a token not seen before each call (the pool is larger than the cache).
  tasks.verify_fresh = () => {
    const d = verify(fresh[i++ % fresh.length], { keys: [publicKey], tool: TOOL, args: ARGS });
    if (!d.allowed) throw new Error(`${d.code}: ${d.reason}`);
  };
  const repeat = pool.repeat;
  const OPS = 100;
  tasks.verify_repeat = {
    ops: OPS,
    fn: () => {
      for (let j = 0; j < OPS; j++) {
        const d = verify(repeat, { keys: [publicKey], tool: TOOL, args: ARGS });
        if (!d.allowed) throw new Error(`${d.code}: ${d.reason}`);
      }
    },
  };
  // What the proxy does per repeat call: createVerifier's verify, then the policy.
  const policy = parsePolicy(`capframe:\n  version: "0.2"\n  default_policy: deny\n  rules:\n    - { tool: "${TOOL}", ttl: 300, when: [{ arg: sql, op: starts_with, value: "SELECT " }] }\n`);
  const verifier = createVerifier({ keys: [publicKey] });
  const call = { tool: TOOL, args: ARGS, token: undefined };
  tasks.decision_repeat = {
    ops: OPS,
    fn: () => {
      for (let j = 0; j < OPS; j++) {
        const d = verifier.verify(repeat, { tool: TOOL, args: ARGS });
        call.token = { tool: d.claims.tool };
        if (!d.allowed || !policy.decide(call).allowed) throw new Error('denied');
      }
    },
  };
  // The backend alone: one fresh token, and 64 in one batch call.
  const core = activeBackend().createVerifierCore(0);
  core.addKey(publicKey);
  const bytes = fresh.slice(0, 4096).map((t) => Buffer.from(t.slice(4), 'base64url'));
  const now = Date.now() / 1000;
  let k = 0;
  tasks.core_fresh = () => {
    if (core.verify(bytes[k++ % bytes.length], now) !== 0) throw new Error('verify failed');
  };
  const batches = Array.from({ length: 64 }, (_, b) => {
    const slice = bytes.slice(b * 64, b * 64 + 64);
    const offsets = new Uint32Array(65);
    slice.forEach((t, j) => (offsets[j + 1] = offsets[j] + t.length));
    return { buf: Buffer.concat(slice), offsets };
  });
  let b = 0;
  tasks.core_batch64 = {
    ops: 64,
    fn: () => {
      const { buf, offsets } = batches[b++ % batches.length];
      const codes = core.verifyBatch(buf, offsets, now);
      if (codes[0] !== 0 || codes[63] !== 0) throw new Error('batch failed');
    },
  };
} else if (scenario === 'jose') {
  const { jwtVerify } = await import('jose');
  const publicKey = createPublicKey({ key: pool.jwkPublic, format: 'jwk' });
  let i = 0;
  tasks.verify_fresh = async () => {
    const { payload } = await jwtVerify(pool.jwts[i++ % pool.jwts.length], publicKey, { algorithms: ['EdDSA'] });
    if (payload.tool !== TOOL) throw new Error('wrong tool');
  };
} else if (scenario === 'biscuit') {
  const { Biscuit, KeyPair } = await import('@biscuit-auth/biscuit-wasm');
  // Its own tokens, one per fresh call: a right and a unique id each.
  const keys = new KeyPair();
  const root = keys.getPublicKey();
  const biscuits = Array.from({ length: 256 }, (_, i) => {
    const builder = Biscuit.builder();
    builder.addCode(`right("${TOOL}"); token_id(${i});`);
    return builder.build(keys.getPrivateKey()).toBase64();
  });
  pool.biscuits = biscuits;
  const limits = { max_time_micro: 10_000_000, max_facts: 1000, max_iterations: 100 };
  let i = 0;
  tasks.verify_fresh = () => {
    const token = Biscuit.fromBase64(pool.biscuits[i++ % pool.biscuits.length], root);
    const authorizer = token.getAuthorizer();
    authorizer.addCode(`operation("${TOOL}"); check if operation($op), right($op); allow if true;`);
    const ok = authorizer.authorizeWithLimits(limits);
    authorizer.free();
    token.free();
    if (ok !== 0) throw new Error('not authorized');
  };
} else if (scenario === 'crypto') {
  const publicKey = createPublicKey({ key: pool.jwkPublic, format: 'jwk' });
  const signed = pool.raw.map(([m, s]) => [Buffer.from(m, 'hex'), Buffer.from(s, 'hex')]);
  let i = 0;
  tasks.verify_fresh = () => {
    const [m, s] = signed[i++ % signed.length];
    if (!cryptoVerify(null, m, publicKey, s)) throw new Error('bad');
  };
} else if (scenario === 'revocation') {
  const { activeBackend } = await import('../dist/backend/select.js');
  const backend = activeBackend();
  const N = 1_000_000;
  const ids = new Uint8Array(N * 16);
  const view = new DataView(ids.buffer);
  for (let i = 0; i < N; i++) {
    view.setUint32(i * 16, i, true);
    view.setUint32(i * 16 + 4, Math.imul(i, 2654435761) >>> 0, true);
    view.setUint32(i * 16 + 8, Math.imul(i ^ 0x5bd1e995, 40503) >>> 0, true);
  }
  // 1,000 lookups per call so the figure is the lookup, not the JS↔native boundary (inside
  // verify there is none); 200 batches of distinct ids rotate so the table is not in cache.
  const probes = Array.from({ length: 200 }, (_, b) =>
    Buffer.concat(Array.from({ length: 1000 }, (_, i) => {
      const at = ((b * 1000 + i) * 7919) % N;
      return ids.subarray(at * 16, at * 16 + 16);
    })),
  );
  globalThis.gc?.();
  const before = process.memoryUsage();
  const core = backend.createVerifierCore(0);
  core.revokeMany(ids);
  globalThis.gc?.();
  const after = process.memoryUsage();
  const grown = backend.name === 'native' ? after.rss - before.rss : after.heapUsed - before.heapUsed;
  process.send({ bytes_per_id: grown / N });
  let next = 0;
  tasks.lookup = {
    ops: 1000,
    fn: () => {
      if (core.countRevoked(probes[next++ % probes.length]) !== 1000) throw new Error('miss');
    },
  };
}

process.on('message', async ({ task, ms }) => {
  const t = tasks[task];
  const [row] = await measure([{ name: task, ...(typeof t === 'function' ? { fn: t } : t) }], { time: ms, warmupTime: Math.min(200, ms / 2) });
  process.send(row);
});
process.send({ ready: Object.keys(tasks) });
