// Delegation chains with holder proofs (issue 10): a depth-3 chain (root + 3
// delegations) presented with a fresh proof per call, through createVerifier on
// each backend — fresh (every chain seen for the first time) and repeated (the
// same chain again: no chain signature is re-checked, the proof always is).
import { mint } from '../dist/token/mint.js';
import { delegate } from '../dist/token/delegate.js';
import { createProof } from '../dist/token/proof.js';
import { signingKey } from '../dist/keys/keys.js';
import { jsBackend } from '../dist/backend/js.js';
import { loadNativeBackend } from '../dist/backend/native.js';
import { createMemoryNonceStore } from '../dist/store/nonces.js';
import { createVerifier } from '../dist/verify/verifier.js';
import { measure } from './lib.mjs';

const issuer = signingKey(new Uint8Array(32).fill(11));
const holders = [0x21, 0x22, 0x23, 0x24].map((s) => signingKey(new Uint8Array(32).fill(s)));
const TOOL = 'payments.refund';
const ARGS = { amount: 15, currency: 'EUR', order: 'A-1042' };

/** A root bound to holders[0], delegated three times; every link adds a bound. */
function chain() {
  let token = mint({ key: issuer, tool: 'payments.*', ttl: 3600, holderKey: holders[0].publicKey, when: [{ arg: 'amount', op: '<=', value: 200 }] }).token;
  for (let i = 1; i <= 3; i++) {
    token = delegate(token, { key: holders[i - 1], tools: TOOL, when: [{ arg: 'amount', op: '<=', value: 200 - 50 * i }, { arg: 'currency', op: 'in', value: ['EUR', 'USD'] }], to: holders[i].publicKey }).token;
  }
  return token;
}

const proofFor = (token) => createProof({ token, tool: TOOL, args: ARGS, key: holders[3] }).proof;

/**
 * A memory nonce store whose keys change each time a proof pool wraps, so the
 * benchmark can reuse proofs while paying the store's real cost on every call.
 */
function roundStore() {
  const inner = createMemoryNonceStore({ max: 10_000_000 });
  let round = 0;
  return { next: () => round++, claim: (key, ttl) => inner.claim(`${key}.${round}`, ttl) };
}

export async function runDelegationBench() {
  let native;
  try {
    native = loadNativeBackend().backend;
  } catch (error) {
    console.error(`native addon not loaded (${error.message}); TypeScript rows only`);
  }
  const backends = native ? [native, jsBackend] : [jsBackend];
  const FRESH = 256;
  const chains = Array.from({ length: FRESH }, chain);
  const freshProofs = chains.map(proofFor);
  const one = chains[0];
  const REPEAT = 1024;
  const repeatProofs = Array.from({ length: REPEAT }, () => proofFor(one));
  const bytes = Buffer.from(one.slice(4), 'base64url').length;

  const tasks = [];
  for (const b of backends) {
    // A verdict cache smaller than the pool: every presentation is a first one.
    const store = roundStore();
    const verifier = createVerifier({ keys: [issuer.publicKey], backend: b, cacheSize: 16, nonceStore: store });
    let i = 0;
    tasks.push({
      name: `depth-3 chain + proof, fresh (${b.name})`,
      fn: () => {
        const k = i++ % FRESH;
        if (k === 0) store.next();
        const d = verifier.verify(chains[k], { tool: TOOL, args: ARGS, proof: freshProofs[k] });
        if (!d.allowed) throw new Error(`denied: ${d.code} ${d.reason}`);
      },
    });
  }
  for (const b of backends) {
    const store = roundStore();
    const verifier = createVerifier({ keys: [issuer.publicKey], backend: b, nonceStore: store });
    let i = 0;
    tasks.push({
      name: `depth-3 chain + proof, repeated (${b.name})`,
      fn: () => {
        const k = i++ % REPEAT;
        if (k === 0) store.next();
        const d = verifier.verify(one, { tool: TOOL, args: ARGS, proof: repeatProofs[k] });
        if (!d.allowed) throw new Error(`denied: ${d.code} ${d.reason}`);
      },
    });
  }
  for (const b of backends) {
    // The backend alone: the chain walk with its four signatures, no proof, no claims.
    const core = b.createVerifierCore(0);
    core.addKey(issuer.publicKey);
    const raw = chains.map((t) => Buffer.from(t.slice(4), 'base64url'));
    let i = 0;
    const now = Date.now() / 1000;
    tasks.push({ name: `depth-3 chain, backend verify only, fresh (${b.name})`, fn: () => { if (core.verify(raw[i++ % FRESH], now) !== 0) throw new Error('verify failed'); } });
  }
  const rows = await measure(tasks);
  const get = (name) => rows.find((r) => r.name === name)?.median_ns;
  const ratios = native
    ? {
        chain_proof_fresh_native_over_js: get('depth-3 chain + proof, fresh (native)') / get('depth-3 chain + proof, fresh (js)'),
        chain_proof_repeated_native_over_js: get('depth-3 chain + proof, repeated (native)') / get('depth-3 chain + proof, repeated (js)'),
        chain_backend_fresh_native_over_js: get('depth-3 chain, backend verify only, fresh (native)') / get('depth-3 chain, backend verify only, fresh (js)'),
      }
    : {};
  return { rows, ratios, chain_bytes: bytes };
}
