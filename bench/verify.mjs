// Token verification, native vs TypeScript in one run (SPEC §12 rows 1–4).
import { mint } from '../dist/token/mint.js';
import { signingKey } from '../dist/keys/keys.js';
import { jsBackend } from '../dist/backend/js.js';
import { loadNativeBackend } from '../dist/backend/native.js';
import { createVerifier } from '../dist/verify/verifier.js';
import { parsePolicy } from '../dist/policy/index.js';
import { measure } from './lib.mjs';

const key = signingKey(new Uint8Array(32).fill(11));
const POOL = 512;
const tokens = Array.from({ length: POOL }, (_, i) =>
  mint({ key, tool: 'database.query', agent: 'support-bot', capability: 'read-only', ttl: 3600, when: [{ arg: 'sql', op: 'matches', value: '^\\s*SELECT\\b' }] }).bytes,
);
const now = Date.now() / 1000;

function core(backend, cache = 0) {
  const c = backend.createVerifierCore(cache);
  c.addKey(key.publicKey);
  return c;
}

/** Fresh-token verify and batch verify on both backends; returns rows and ratios. */
export async function runVerifyBench() {
  let native;
  try {
    native = loadNativeBackend().backend;
  } catch (error) {
    console.error(`native addon not loaded (${error.message}); TypeScript rows only`);
  }
  const backends = native ? [native, jsBackend] : [jsBackend];
  const tasks = [];
  for (const b of backends) {
    // A zero-capacity cache keeps at most the last token, and the pool cycles, so every call is a miss.
    const c = core(b, 0);
    let i = 0;
    tasks.push({ name: `fresh verify (${b.name})`, fn: () => { if (c.verify(tokens[i++ % POOL], now) !== 0) throw new Error('verify failed'); } });
  }
  for (const b of backends) {
    const c = core(b, 0);
    const batch = Buffer.concat(tokens.slice(0, 64));
    const offsets = new Uint32Array(65);
    for (let j = 0; j < 64; j++) offsets[j + 1] = offsets[j] + tokens[j].length;
    tasks.push({ name: `batch verify 64, per token (${b.name})`, ops: 64, fn: () => c.verifyBatch(batch, offsets, now) });
  }
  const policy = parsePolicy(`capframe:
  version: "0.2"
  default_policy: deny
  capabilities:
    read-only:
      when: [{ arg: sql, op: matches, value: "^\\\\s*SELECT\\\\b" }]
  rules:
    - tool: "database.query"
      capability: "read-only"
      ttl: 300
`);
  for (const b of backends) {
    const verifier = createVerifier({ keys: [key.publicKey], backend: b });
    const printable = mint({ key, tool: 'database.query', agent: 'support-bot', capability: 'read-only', ttl: 3600, when: policy.grant({ tool: 'database.query' }).when }).token;
    const args = { sql: 'SELECT * FROM customers' };
    const call = { agent: 'support-bot', tool: 'database.query', args, token: undefined };
    tasks.push({
      name: `cache hit, full decision (${b.name})`,
      ops: 100,
      fn: () => {
        for (let j = 0; j < 100; j++) {
          const d = verifier.verify(printable, { tool: 'database.query', args });
          call.token = d.claims;
          if (!d.allowed || !policy.decide(call).allowed) throw new Error('denied');
        }
      },
    });
  }
  const rows = await measure(tasks);
  const get = (name) => rows.find((r) => r.name === name)?.median_ns;
  const ratios = native
    ? {
        fresh_native_over_js: get('fresh verify (native)') / get('fresh verify (js)'),
        batch_native_per_token_over_js_single: get('batch verify 64, per token (native)') / get('fresh verify (js)'),
      }
    : {};
  return { rows, ratios };
}

/** Revocation lookup among 1,000,000 revoked ids, and native memory per id. */
export async function runRevocationBench() {
  const N = 1_000_000;
  const ids = new Uint8Array(N * 16);
  const view = new DataView(ids.buffer);
  for (let i = 0; i < N; i++) {
    view.setUint32(i * 16, i, true);
    view.setUint32(i * 16 + 4, Math.imul(i, 2654435761) >>> 0, true);
    view.setUint32(i * 16 + 8, Math.imul(i ^ 0x5bd1e995, 40503) >>> 0, true);
  }
  // Lookups of revoked ids, 1,000 per call so the per-lookup figure is the lookup and
  // not the JS↔native boundary (inside verify there is none). 200 different batches
  // (200,000 distinct ids) rotate so the table does not sit in cache between calls.
  const BATCHES = 200;
  const probes = Array.from({ length: BATCHES }, (_, b) =>
    Buffer.concat(Array.from({ length: 1000 }, (_, i) => {
      const at = ((b * 1000 + i) * 7919) % N;
      return ids.subarray(at * 16, at * 16 + 16);
    })),
  );
  const rows = [];
  const memory = {};
  let native;
  try {
    native = loadNativeBackend().backend;
  } catch {}
  for (const b of native ? [native, jsBackend] : [jsBackend]) {
    globalThis.gc?.();
    const before = process.memoryUsage();
    const c = b.createVerifierCore(0);
    c.revokeMany(ids);
    globalThis.gc?.();
    const after = process.memoryUsage();
    const grown = b.name === 'native' ? after.rss - before.rss : after.heapUsed - before.heapUsed;
    memory[b.name] = grown / N;
    let next = 0;
    const [row] = await measure([
      { name: `revocation lookup, 1M revoked (${b.name})`, ops: 1000, fn: () => { if (c.countRevoked(probes[next++ % BATCHES]) !== 1000) throw new Error('miss'); } },
    ]);
    rows.push(row);
  }
  return { rows, bytes_per_id: memory };
}
