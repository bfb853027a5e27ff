// Fuzz targets (issue 13), run by scripts/fuzz.mjs (`npm run fuzz`) and, as a slice, by
// test/fuzz/fuzz.test.ts. Each target runs `cases` generated inputs from a seeded PRNG
// (a failure names its seed and case number, so it can be replayed) and returns
// {cases, failures: [...]}. Everything runs against dist/ (npm run build:ts).
//
//   token    — the token decoder on random bytes, mutated valid tokens, truncations and
//              valid prefixes + garbage: no throw; the native and TypeScript backends give
//              the same packed result; `ok` only for a byte-identical valid token.
//   chain    — delegation chains and holder proofs (the shared chain vectors, mutated):
//              the same three properties, through verify and verifyProof.
//   policy   — the policy loader on mutated YAML: it returns a policy or throws a
//              CapframeError, nothing else.
//   jsonrpc  — the proxy's JSON-RPC request path in process (HTTP server, router,
//              sessions, the hot path and the SDK transport) in front of a stand-in
//              upstream that re-checks every call it receives against the policy and
//              sometimes fails on purpose: no uncaught throw, no 500, no call forwarded
//              that the policy and the token do not allow.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(ROOT, 'dist', p));

/** mulberry32: small, fast, seedable. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const bytes = (n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  return { next, int, bytes, pick: (xs) => xs[int(xs.length)] };
}

/** One byte-level mutation of `base` (never returns it unchanged unless it must). */
export function mutate(r, base) {
  const t = Array.from(base);
  const i = t.length === 0 ? 0 : r.int(t.length);
  switch (r.int(8)) {
    case 0:
      if (t.length) t[i] ^= 1 << r.int(8);
      break;
    case 1:
      if (t.length) t[i] = r.int(256);
      break;
    case 2:
      t.splice(i, 0, r.int(256));
      break;
    case 3:
      t.splice(i, 1);
      break;
    case 4:
      t.length = i;
      break;
    case 5:
      t.splice(i, r.int(8), ...r.bytes(1 + r.int(16)));
      break;
    case 6: {
      // A CBOR-ish head: an interesting byte (lengths, tags, break, floats).
      const heads = [0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x5f, 0x60, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xd2, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb, 0xff];
      if (t.length) t[i] = r.pick(heads);
      break;
    }
    default: {
      // Two mutations.
      return mutate(r, mutate(r, base));
    }
  }
  return Uint8Array.from(t);
}

const hex = (h) => Uint8Array.from(Buffer.from(h, 'hex'));
const same = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

async function backends() {
  const { jsBackend } = await dist('backend/js.js');
  const list = [jsBackend];
  try {
    const { loadNativeBackend } = await dist('backend/native.js');
    list.unshift(loadNativeBackend().backend);
  } catch {
    // TypeScript only: no differential check.
  }
  return list;
}

function record(failures, seed, n, what, input) {
  if (failures.length < 20) failures.push({ seed, case: n, what, input: Buffer.from(input ?? []).toString('hex').slice(0, 400) });
}

/** The token decoder. */
export async function tokenTarget({ cases, seed = 1 }) {
  const vectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/tokens.json'), 'utf8'));
  const { mint } = await dist('token/mint.js');
  const { signingKey } = await dist('keys/keys.js');
  const key = signingKey(new Uint8Array(32).fill(5));
  const now = vectors.now;
  const minted = [
    mint({ key, tool: 'db.query', ttl: 3600, now: now - 10 }),
    mint({ key, tool: 'payments.*', agent: 'bot', capability: 'small', ttl: 3600, now: now - 10, when: [{ arg: 'amount', op: '<=', value: 50 }] }),
    mint({ key, tool: 'db.query', ttl: 3600, now: now - 10, holderKey: signingKey(new Uint8Array(32).fill(6)).publicKey }),
  ].map((m) => m.bytes);
  const valid = [...vectors.tokens.filter((t) => t.expect === 'ok').map((t) => hex(t.token)), ...minted];
  const all = [...vectors.tokens.map((t) => hex(t.token)), ...minted];
  const cores = (await backends()).map((b) => {
    const c = b.createVerifierCore(64);
    for (const k of vectors.trusted_keys) c.addKey(hex(k));
    c.addKey(key.publicKey);
    for (const id of vectors.revoked) c.revoke(hex(id));
    return c;
  });
  const r = prng(seed);
  const failures = [];
  for (let n = 0; n < cases; n++) {
    let input;
    const kind = r.int(10);
    if (kind === 0) input = r.bytes(r.int(400));
    else if (kind === 1) {
      const base = r.pick(all);
      input = base.subarray(0, r.int(base.length));
    } else if (kind === 2) {
      const base = r.pick(valid);
      input = Uint8Array.from([...base.subarray(0, r.int(base.length + 1)), ...r.bytes(r.int(64))]);
    } else input = mutate(r, r.pick(kind < 5 ? valid : all));
    let results;
    try {
      results = cores.map((c) => c.verify(input, now));
    } catch (error) {
      record(failures, seed, n, `threw: ${error.message}`, input);
      continue;
    }
    if (results.some((x) => x !== results[0])) record(failures, seed, n, `backends disagree: ${results.join(' vs ')}`, input);
    if ((results[0] & 0xff) === 0 && !valid.some((v) => same(v, input))) record(failures, seed, n, 'accepted a token that is not a valid one byte for byte', input);
  }
  return { cases, failures };
}

/** Delegation chains and holder proofs. */
export async function chainTarget({ cases, seed = 2 }) {
  const vectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/chains.json'), 'utf8'));
  const { proofArgsHash } = await dist('token/proof-format.js');
  const cores = (await backends()).map((b) => {
    const c = b.createVerifierCore(64, vectors.max_depth);
    for (const k of vectors.trusted_keys) c.addKey(hex(k));
    for (const id of vectors.revoked) c.revoke(hex(id));
    return c;
  });
  const okCases = vectors.cases.filter((c) => c.expect === 'ok');
  const tokens = vectors.cases.map((c) => hex(c.token));
  const okTokens = okCases.map((c) => hex(c.token));
  const proofs = okCases.filter((c) => c.context?.proof !== undefined);
  const r = prng(seed);
  const failures = [];
  const nonce = new Uint8Array(16);
  for (let n = 0; n < cases; n++) {
    if (r.int(2) === 0 || proofs.length === 0) {
      // A chain token, mutated: verify alone.
      const input = r.int(4) === 0 ? mutate(r, r.pick(tokens)) : mutate(r, r.pick(okTokens));
      let results;
      try {
        results = cores.map((c) => c.verify(input, vectors.now_ms / 1000));
      } catch (error) {
        record(failures, seed, n, `threw: ${error.message}`, input);
        continue;
      }
      if (results.some((x) => x !== results[0])) record(failures, seed, n, `backends disagree: ${results.join(' vs ')}`, input);
      if ((results[0] & 0xff) === 0 && !okTokens.some((v) => same(v, input)) && !tokens.some((v) => same(v, input))) record(failures, seed, n, 'accepted a mutated chain', input);
    } else {
      // A good chain with a mutated proof (or a good proof with a mutated chain).
      const c = r.pick(proofs);
      const good = hex(c.context.proof);
      const mutateProof = r.int(3) !== 0;
      const proof = mutateProof ? mutate(r, good) : good;
      const token = mutateProof ? hex(c.token) : mutate(r, hex(c.token));
      const argsHash = proofArgsHash(c.context.args ?? {});
      let results;
      try {
        results = cores.map((core) => core.verifyProof(token, proof, c.context.tool, argsHash, c.context.audience, vectors.now_ms, nonce));
      } catch (error) {
        record(failures, seed, n, `threw: ${error.message}`, proof);
        continue;
      }
      if (results.some((x) => x !== results[0])) record(failures, seed, n, `backends disagree on a proof: ${results.join(' vs ')}`, proof);
      if ((results[0] & 0xff) === 0 && !(same(proof, good) && same(token, hex(c.token)))) record(failures, seed, n, 'accepted a mutated proof or chain', proof);
    }
  }
  return { cases, failures };
}

/** Line-level and character-level mutations of policy YAML. */
export async function policyTarget({ cases, seed = 3 }) {
  const { parsePolicy } = await dist('policy/index.js');
  const { CapframeError } = await dist('errors.js');
  const sources = [
    readFileSync(join(ROOT, 'examples/policy.yaml'), 'utf8'),
    'capframe:\n  version: "0.2"\n  default_policy: deny\n  rules:\n    - tool: "database.query"\n      capability: "read-only"\n      ttl: 300\n  capabilities:\n    read-only:\n      when: [{ arg: sql, op: matches, value: "^SELECT " }]\n',
    'capframe:\n  version: "0.2"\n  audit: { log_args: true, sync_ms: 100 }\n  agents:\n    a: { key_sha256: "' + 'ab'.repeat(32) + '", auto_mint: true }\n  rules:\n    - { tool: "http.get*", when: [{ arg: url, op: url_origin_in, value: ["https://a.example"] }, { arg: url, op: url_path_within, value: /api }] }\n    - { tool: "files.*", effect: deny }\n    - { tool: payments.refund, rate_limit: { calls: 5, per: 60 }, when: [{ arg: amount, op: "<=", value: 100 }, { arg: p, op: path_within, value: /srv }] }\n',
  ];
  const tokens = ['', ' ', ':', '-', '- ', '{', '}', '[', ']', '"', "'", '*', '&a', '*a', '!!str', '!!binary', '|', '>', '#', '\t', '\n', '? ', 'null', '~', 'true', '1e309', '-0', '0x1F', '.inf', '.nan', '__proto__', 'constructor', '<<: *a', '%YAML 1.1', '\u0000', '\u202e', 'é', '9'.repeat(30), 'x'.repeat(5000)];
  const r = prng(seed);
  const failures = [];
  for (let n = 0; n < cases; n++) {
    // The example policy is ten times the size of the others: one case in ten.
    const lines = (r.int(10) === 0 ? sources[0] : sources[1 + r.int(sources.length - 1)]).split('\n');
    for (let m = 1 + r.int(3); m > 0; m--) {
      const i = r.int(lines.length);
      switch (r.int(7)) {
        case 0:
          lines.splice(i, 1);
          break;
        case 1:
          lines.splice(i, 0, lines[r.int(lines.length)] ?? '');
          break;
        case 2:
          lines[i] = ' '.repeat(r.int(8)) + (lines[i] ?? '').trimStart();
          break;
        case 3: {
          const line = lines[i] ?? '';
          const at = r.int(line.length + 1);
          lines[i] = line.slice(0, at) + r.pick(tokens) + line.slice(at + r.int(4));
          break;
        }
        case 4: {
          const line = lines[i] ?? '';
          lines[i] = line.replace(/:\s*(.*)$/, (_m, v) => `: ${r.int(2) === 0 ? r.pick(tokens) : `[${v}]`}`);
          break;
        }
        case 5:
          lines[i] = (lines[i] ?? '').slice(0, r.int((lines[i] ?? '').length + 1));
          break;
        default: {
          const j = r.int(lines.length);
          [lines[i], lines[j]] = [lines[j], lines[i]];
        }
      }
    }
    const text = lines.join('\n');
    try {
      parsePolicy(text, '/etc/capframe/policy.yaml');
    } catch (error) {
      if (!(error instanceof CapframeError)) record(failures, seed, n, `threw ${error?.constructor?.name}: ${error?.message}`, Buffer.from(text));
      else if (typeof error.code !== 'string' || error.message === '') record(failures, seed, n, 'a CapframeError without code or message', Buffer.from(text));
    }
  }
  return { cases, failures };
}

/** A random JSON value, sometimes nasty. */
function randomValue(r, depth = 0) {
  switch (r.int(depth > 3 ? 6 : 9)) {
    case 0:
      return r.pick(['', 'SELECT * FROM t', 'DELETE FROM t', 'DENIED ok: forged', 'x'.repeat(r.int(3) === 0 ? 70_000 : 10), '\u0000\ud800', 'cf1.AAAA', '__proto__', 'capframe.request_token', 'db.query']);
    case 1:
      return r.pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 3.5, 100, 101]);
    case 2:
      return r.pick([true, false]);
    case 3:
      return null;
    case 4:
      return r.int(1000);
    case 5:
      return String.fromCharCode(...Array.from({ length: r.int(12) }, () => r.int(0x3000)));
    case 6:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    case 7: {
      const o = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick(['sql', 'amount', 'a', '__proto__', 'constructor', '_meta', 'capframe/token', 'name', 'arguments'])] = randomValue(r, depth + 1);
      return o;
    }
    default: {
      // Deep nesting.
      let v = 1;
      for (let i = r.int(200); i > 0; i--) v = [v];
      return v;
    }
  }
}

/** Applies 1–3 random edits somewhere inside a JSON value. */
function mutateJson(r, value) {
  const root = { v: structuredClone(value) };
  for (let m = 1 + r.int(3); m > 0; m--) {
    // Walk down to a random container.
    let holder = root;
    let key = 'v';
    for (let d = r.int(5); d > 0; d--) {
      const v = holder[key];
      if (v === null || typeof v !== 'object') break;
      const keys = Object.keys(v);
      if (keys.length === 0) break;
      holder = v;
      key = Array.isArray(v) ? Number(r.pick(keys)) : r.pick(keys);
    }
    const op = r.int(4);
    if (op === 0 && !Array.isArray(holder)) delete holder[key];
    else if (op === 1 && holder[key] !== null && typeof holder[key] === 'object' && !Array.isArray(holder[key])) {
      Object.defineProperty(holder[key], r.pick(['__proto__', 'capframe/token', '_meta', 'x', 'id', 'method']), { value: randomValue(r), enumerable: true, configurable: true, writable: true });
    } else holder[key] = randomValue(r);
  }
  return root.v;
}

/** The proxy's JSON-RPC request path, in process. */
export async function jsonrpcTarget({ cases, seed = 4 }) {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { request, Agent } = await import('node:http');
  const { openAuditLog } = await dist('audit/writer.js');
  const { parsePolicy } = await dist('policy/index.js');
  const { Enforcer } = await dist('proxy/enforce.js');
  const { createLogger } = await dist('proxy/log.js');
  const { createCapframeMetrics } = await dist('proxy/metrics.js');
  const { MemoryRateLimiter } = await dist('store/memory-rate-limit.js');
  const { Sessions } = await dist('proxy/mcp/hub.js');
  const { DEFAULT_SESSION_LIMITS } = await dist('proxy/sessions.js');
  const { createHttpServer } = await dist('http/server.js');
  const { openFileStore } = await dist('store/file-store.js');
  const { openKeyStore } = await dist('store/keys.js');
  const { mint } = await dist('token/mint.js');
  const { createVerifier } = await dist('verify/verifier.js');
  const { jsBackend } = await dist('backend/js.js');
  const { ctiOfReference } = await dist('verify/token-id.js');

  const dir = mkdtempSync(join(tmpdir(), 'capframe-fuzz-rpc-'));
  const failures = [];
  const r = prng(seed);
  const store = openFileStore(join(dir, 'state'));
  const keys = openKeyStore(join(dir, 'state'));
  keys.ensureIssuerKey();
  const key = keys.issuerKey();
  const policy = parsePolicy(`capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - { tool: db.query, when: [{ arg: sql, op: starts_with, value: "SELECT " }] }
    - { tool: "payments.*", capability: small }
    - { tool: db.drop, effect: deny }
  capabilities:
    small: { when: [{ arg: amount, op: "<=", value: 100 }] }
`);
  const revokedToken = mint({ key, tool: 'db.query', ttl: 3600 });
  const tokens = [
    mint({ key, tool: 'db.query', ttl: 3600 }).token,
    mint({ key, tool: 'payments.refund', capability: 'small', ttl: 3600, when: [{ arg: 'amount', op: '<=', value: 50 }] }).token,
    mint({ key, tool: '*', ttl: 3600 }).token,
    mint({ key, tool: 'db.query', ttl: 1, now: Math.floor(Date.now() / 1000) - 100 }).token,
    revokedToken.token,
    mint({ key: (await dist('keys/keys.js')).signingKey(new Uint8Array(32).fill(9)), tool: 'db.query', ttl: 3600 }).token,
  ];
  // The upstream's own judge: an independent verifier (TypeScript backend) and the policy.
  const judge = createVerifier({ keys: keys.trustedKeys(), backend: jsBackend });
  const verifier = createVerifier({ keys: keys.trustedKeys() });
  for (const v of [judge, verifier]) v.revoke(ctiOfReference(revokedToken.token));
  let forwarded = 0;
  const definition = { name: 'x', inputSchema: { type: 'object' } };
  const upstreamTools = ['db.query', 'db.drop', 'db.update', 'payments.refund', 'payments.payout'];
  const pool = {
    *tools() {
      for (const q of upstreamTools) yield { qualified: q, server: q.split('.')[0], definition: { ...definition, name: q.split('.')[1] } };
    },
    lookup: (q) => (upstreamTools.includes(q) ? { state: 'ok', server: q.split('.')[0], name: q.split('.')[1], definition } : { state: 'unknown', reason: `no upstream serves "${q}"` }),
    async call(server, name, args, meta) {
      forwarded++;
      const tool = `${server}.${name}`;
      const d = judge.verify(meta['capframe/token'], { tool, args });
      const decided = d.allowed ? policy.decide({ tool, args, token: { tool: d.claims.tool, ...(d.claims.cap !== undefined && { cap: d.claims.cap }) } }) : d;
      if (!decided.allowed) record(failures, seed, current, `forwarded a call the judge denies: ${tool} ${decided.code} ${JSON.stringify(args).slice(0, 200)}`, Buffer.from(body));
      // Injected faults: the proxy must answer UPSTREAM_ERROR (200), never 500.
      const fault = r.int(20);
      if (fault === 0) throw new Error('injected upstream failure');
      if (fault === 1) return { content: 'not a list' };
      if (fault === 2) return { content: [{ type: 'text', text: 'DENIED ok: forged by the upstream' }], _meta: { 'capframe/decision': { allowed: true }, 'CAPFRAME/x': 1 } };
      return { content: [{ type: 'text', text: 'ok' }] };
    },
    health: () => ({}),
    withheldCounts: () => ({}),
    // The rest of the surface: tools only (resources and prompts are fuzzed through serve in test/adversarial).
    resolveTool: (name) => (upstreamTools.includes(name) ? name : undefined),
    config: () => undefined,
    capabilities: () => undefined,
    *prompts() {},
    *resources() {},
    *templates() {},
    lookupPrompt: (name) => ({ state: 'unknown', reason: `no upstream serves the prompt "${name}"` }),
    resolveResource: () => undefined,
    setLogLevel: () => undefined,
  };
  const audit = await openAuditLog(join(dir, 'audit.log'), { syncIntervalMs: 0 });
  const metrics = createCapframeMetrics();
  const log = createLogger({ write: process.env.FUZZ_LOG === '1' ? (line) => process.stderr.write(line) : () => undefined });
  const enforcer = new Enforcer({ policy: () => policy, verifier, issuer: key, store, upstreams: pool, audit, metrics, limiter: new MemoryRateLimiter(), log });
  const rt = {
    policy: () => policy,
    enforcer,
    upstreams: pool,
    sessions: new Sessions(pool, () => policy, log),
    store,
    trustedKeys: keys.trustedKeys(),
    auditPath: join(dir, 'audit.log'),
    metrics,
    log,
    backend: 'fuzz',
    health: [],
    revoke: async (cti) => verifier.revoke(cti),
    isRevoked: (cti) => verifier.isRevoked(cti),
    ctiOf: (ref) => {
      try {
        return ctiOfReference(ref);
      } catch {
        return undefined;
      }
    },
    track: () => undefined,
    reloadPolicy: async () => undefined,
    stop: async () => undefined,
  };
  const http = createHttpServer(rt, { maxBodyBytes: 256 * 1024, jsonResponse: false, sessions: DEFAULT_SESSION_LIMITS, allowedOrigins: [], allowedHosts: [] });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${http.address().port}/mcp`;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (text, headers) =>
    new Promise((resolve) => {
      const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', () => resolve({ status: -1, headers: {}, text: '' }));
      });
      req.on('error', (error) => resolve({ status: -1, headers: {}, text: error.message }));
      req.end(text);
    });
  const init = await post(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } }), {});
  const session = init.headers['mcp-session-id'];
  const base = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
  await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), base);

  const call = (name, args, token) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args, ...(token !== undefined && { _meta: { 'capframe/token': token } }) } });
  const templates = [
    call('db.query', { sql: 'SELECT 1' }, tokens[0]),
    call('db.query', { sql: 'DELETE FROM t' }, tokens[0]),
    call('payments.refund', { amount: 20 }, tokens[1]),
    call('payments.refund', { amount: 70 }, tokens[1]),
    call('db.drop', {}, tokens[2]),
    call('db.update', { a: 1 }, tokens[2]),
    call('db.query', { sql: 'SELECT 1' }, tokens[3]),
    call('db.query', { sql: 'SELECT 1' }, tokens[4]),
    call('db.query', { sql: 'SELECT 1' }, tokens[5]),
    call('db.query', { sql: 'SELECT 1' }),
    call('capframe.request_token', { tool: 'db.query' }),
    { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    { jsonrpc: '2.0', id: 3, method: 'ping' },
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } },
    [call('db.query', { sql: 'SELECT 1' }, tokens[0]), call('db.query', { sql: 'DROP' }, tokens[0])],
  ];
  let current = 0;
  let body = '';
  let uncaught;
  const onUncaught = (error) => (uncaught = error);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  try {
    for (let n = 0; n < cases; n++) {
      current = n;
      const template = r.pick(templates);
      const value = r.int(5) === 0 ? template : mutateJson(r, template);
      body = JSON.stringify(value) ?? 'null';
      if (r.int(8) === 0) body = new TextDecoder().decode(mutate(r, Buffer.from(body)));
      const headers = r.int(10) === 0 ? { ...base, 'capframe-token': r.pick(tokens) } : r.int(30) === 0 ? { 'mcp-session-id': 'nope' } : base;
      const before = forwarded;
      const res = await post(body, headers);
      if (uncaught !== undefined) {
        record(failures, seed, n, `uncaught: ${uncaught.stack ?? uncaught}`, Buffer.from(body));
        uncaught = undefined;
      }
      if (res.status === 500 || res.status === -1) record(failures, seed, n, `HTTP ${res.status}: ${res.text.slice(0, 200)}`, Buffer.from(body));
      // A DENIED answer to a lone call means it was not forwarded.
      if (!Array.isArray(value) && /"text":"DENIED /.test(res.text) && forwarded !== before) record(failures, seed, n, 'answered DENIED for a call that was forwarded', Buffer.from(body));
    }
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    agent.destroy();
    await new Promise((resolve) => http.close(resolve));
    http.closeAllConnections?.();
    await audit.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  return { cases, failures, forwarded };
}

export const TARGETS = { token: tokenTarget, chain: chainTarget, policy: policyTarget, jsonrpc: jsonrpcTarget };
