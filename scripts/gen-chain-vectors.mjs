// Regenerates test/vectors/chains.json: delegation chains and holder proofs both
// backends must decide identically (SPEC §5, §9; docs/delegation.md).
// Run after `npm run build:ts`:  node scripts/gen-chain-vectors.mjs
// Every expected result below is stated by hand from docs/delegation.md; the
// backends are never asked what to expect.
import { createHash, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import { encodeCbor, Tagged } from '../dist/lib/cbor/encode.js';
import { canonicalJson } from '../dist/lib/canonical-json.js';
import { signingKey } from '../dist/keys/keys.js';
import { signPayload } from '../dist/token/mint.js';
import { protectedHeader, sigStructure } from '../dist/token/cose.js';
import { parseToken } from '../dist/token/parse.js';

const NOW = 1_800_000_000;
const NOW_MS = NOW * 1000;
const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const cat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));

const key = (seed) => signingKey(new Uint8Array(32).fill(seed));
const issuer = key(7);
const planner = key(0x11);
const executor = key(0x12);
const sub = key(0x13);
const subsub = key(0x14);
const deeper = [key(0x15), key(0x16), key(0x17)];
const stranger = key(0x19);
const untrustedIssuer = key(9);
const kidHex = (k) => hex(k.kid);

const cti = (n) => new Uint8Array(16).fill(n);
let nextCti = 0x20;
const freshCti = () => cti(nextCti++);

/** `cnf` for a raw 32-byte key. */
const cnfOf = (x) => new Map([[1, new Map([[1, 1], [-1, 6], [-2, x]])]]);
const PAY = 'payments.refund';
const le = (n) => cat(Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn)));

/**
 * Claims in canonical order. `holder` is a SigningKey (bound to its public key) or
 * raw cnf via `cnf`; `parent` is a token's bytes (its holder signs this one unless
 * `signer` says otherwise).
 */
function claims({ iss, sub: agent, aud, exp = NOW + 3600, nbf, iat = NOW - 100, id = freshCti(), holder, cnf, tool = PAY, cap, when, prf, extra = {} }) {
  const m = new Map([
    [1, iss],
    [2, agent],
    [3, aud],
    [4, exp],
    [5, nbf],
    [6, iat],
    [7, id],
    [8, cnf ?? (holder ? cnfOf(holder.publicKey) : undefined)],
    ['cap', cap],
    ['prf', prf],
    ['tool', tool],
    ['when', when],
  ]);
  for (const [k, v] of Object.entries(extra)) m.set(/^-?\d+$/.test(k) ? Number(k) : k, v);
  return encodeCbor(m);
}

/** COSE_Sign1 of `payload` under the kid of `kidOf`, signed by `signer`. */
function cose(payload, signer, kidOf = signer) {
  if (kidOf === signer) return signPayload(signer, payload);
  const protectedBytes = protectedHeader(kidOf.kid);
  const signature = new Uint8Array(sign(null, sigStructure(protectedBytes, payload), signer.object));
  return encodeCbor(new Tagged(18, [protectedBytes, new Map(), payload, signature]));
}

/** A root token signed by the issuer. */
const root = (opts = {}) => cose(claims({ iss: 'capframe', holder: planner, ...opts }), opts.signer ?? issuer);
/** A child of `parent` signed by `by` (the parent's holder), bound to `to`. */
function child(parent, by, to, opts = {}) {
  const signer = opts.signer ?? by;
  return cose(claims({ iss: kidHex(by), exp: NOW + 600, holder: to, prf: parent, ...opts }), signer, opts.kidOf ?? by);
}

const argsHash = (args) => new Uint8Array(createHash('sha256').update(canonicalJson(args)).digest());
/** A holder proof; `extra` entries are added or, with undefined, removed. */
function proof({ token, by, kidOf = by, tool = PAY, args = {}, iat = NOW_MS - 1000, nonce = cti(0x5a), aud, ctiOverride, extra = {}, raw }) {
  const tokenCti = ctiOverride ?? parseToken(token).cti;
  const m = new Map([[1, tokenCti], [2, tool], [3, argsHash(args)], [4, iat], [5, nonce], [6, aud]]);
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) m.delete(Number(k));
    else m.set(Number(k), v);
  }
  return cose(raw ?? encodeCbor(m), by, kidOf);
}

const cases = [];
/**
 * A case: verify `token` with `context` (tool, args, audience, proof) on a fresh
 * verifier at NOW_MS. `then` is the answer when the same call is verified again.
 */
function add(name, token, expect, { detail, link, context, then, verifier } = {}) {
  const c = { name, token: hex(token), expect };
  if (detail !== undefined) c.detail = detail;
  if (link !== undefined) c.link = link;
  if (context !== undefined) {
    c.context = { ...context };
    if (context.proof instanceof Uint8Array) c.context.proof = hex(context.proof);
  }
  if (then !== undefined) c.then = then;
  if (verifier !== undefined) c.verifier = verifier;
  cases.push(c);
}
const call = (token, by, args = { amount: 15 }, more = {}) => ({ tool: PAY, args, proof: proof({ token, by, args, ...more }) });

// The planner (200) → executor (50) → sub-executor (20) chain of acceptance 4.
const bound200 = [{ arg: 'amount', op: '<=', value: 200 }];
const t0 = root({ when: bound200, sub: 'planner' });
const t1 = child(t0, planner, executor, { when: [{ arg: 'amount', op: '<=', value: 50 }], sub: 'executor' });
const t2 = child(t1, executor, sub, { when: [{ arg: 'amount', op: '<=', value: 20 }], sub: 'sub-executor', exp: NOW + 300 });

add('root bound to the planner, proof by the planner', t0, 'ok', { context: call(t0, planner) });
add('depth 1, proof by the executor', t1, 'ok', { context: call(t1, executor) });
add('depth 2, proof by the sub-executor', t2, 'ok', { context: call(t2, sub) });
for (const [label, token, by, amounts] of [
  ['planner', t0, planner, [[15, 'ok'], [30, 'ok'], [150, 'ok'], [201, 'constraint_failed', 0]]],
  ['executor', t1, executor, [[15, 'ok'], [30, 'ok'], [150, 'constraint_failed', 0]]],
  ['sub-executor', t2, sub, [[15, 'ok'], [30, 'constraint_failed', 0], [150, 'constraint_failed', 1]]],
]) {
  for (const [amount, expect, link] of amounts) {
    add(`amount ${amount} for the ${label} (bounds 200 → 50 → 20)`, token, expect, { context: call(token, by, { amount }), ...(link !== undefined && { link }) });
  }
}
{
  let chain = root({ holder: planner, when: bound200 });
  const holders = [planner, executor, sub, subsub, ...deeper];
  for (let i = 1; i <= 5; i++) {
    chain = child(chain, holders[i - 1], holders[i], { when: [{ arg: 'amount', op: '<=', value: 200 - i }], exp: NOW + 600 - i });
    if (i === 4) add('depth 4 with constraints on every link (the default limit)', chain, 'ok', { context: call(chain, holders[4]) });
    if (i === 5) add('depth 5: deeper than the limit', chain, 'delegation_invalid', { detail: 'TooDeep', link: 4, context: call(chain, holders[5]) });
  }
  add('depth 5 where the verifier allows 5', chain, 'ok', { context: call(chain, holders[5]), verifier: { max_depth: 5 } });
  const one = child(root(), planner, executor);
  add('depth 1 where the verifier allows none', one, 'delegation_invalid', { detail: 'TooDeep', link: 0, context: call(one, executor), verifier: { max_depth: 0 } });
}
{
  const c = child(root({ tool: 'payments.*' }), planner, executor);
  add('child with a pattern within its parent (payments.* → payments.refund)', c, 'ok', { context: call(c, executor) });
}
{
  const c = child(root({ tool: 'payments.*' }), planner, executor, { tool: 'payments.ref*' });
  add('child with a narrower pattern (payments.* → payments.ref*)', c, 'ok', { context: call(c, executor) });
}

// Acceptance 1: a stolen bound token.
add('bound token without a proof', t1, 'bad_proof', { detail: 'Missing', context: { tool: PAY, args: { amount: 15 } } });
add('bound token, no call context (valid, but nothing may be done without a proof)', t1, 'bad_proof', { detail: 'Missing' });
add('proof by another key, under its own kid', t1, 'bad_proof', { detail: 'WrongKey', context: call(t1, stranger) });
add('proof under the holder\'s kid, signed by another key', t1, 'bad_proof', { detail: 'BadSignature', context: call(t1, stranger, { amount: 15 }, { kidOf: executor }) });
add('proof by an earlier link\'s holder (the executor for the sub-executor\'s token)', t2, 'bad_proof', { detail: 'WrongKey', context: call(t2, executor) });
add('proof made for other arguments', t1, 'bad_proof', { detail: 'WrongArgs', context: { tool: PAY, args: { amount: 15 }, proof: proof({ token: t1, by: executor, args: { amount: 14 } }) } });
{
  const wide = child(root({ tool: 'payments.*' }), planner, executor, { tool: 'payments.*' });
  add('proof made for another tool', wide, 'bad_proof', { detail: 'WrongTool', context: { tool: PAY, args: {}, proof: proof({ token: wide, by: executor, tool: 'payments.charge' }) } });
}
add('proof made for another token', t1, 'bad_proof', { detail: 'WrongToken', context: { tool: PAY, args: {}, proof: proof({ token: t1, by: executor, ctiOverride: cti(0x99) }) } });
add('proof 60 s old', t1, 'ok', { context: call(t1, executor, { amount: 1 }, { iat: NOW_MS - 60_000 }) });
add('proof 60.001 s old', t1, 'bad_proof', { detail: 'Stale', context: call(t1, executor, { amount: 1 }, { iat: NOW_MS - 60_001 }) });
add('proof 60.001 s in the future', t1, 'bad_proof', { detail: 'Stale', context: call(t1, executor, { amount: 1 }, { iat: NOW_MS + 60_001 }) });
add('the same proof twice', t1, 'ok', { context: call(t1, executor), then: 'replay' });
add('proof naming an audience, verifier naming none', t1, 'bad_proof', { detail: 'UnexpectedAudience', context: call(t1, executor, { amount: 1 }, { aud: 'payments-svc' }) });
add('proof naming no audience, verifier naming one', t1, 'bad_proof', { detail: 'MissingAudience', context: { ...call(t1, executor), audience: 'payments-svc' } });
add('proof for another audience', t1, 'bad_proof', { detail: 'WrongAudience', context: { ...call(t1, executor, { amount: 1 }, { aud: 'other-svc' }), audience: 'payments-svc' } });
add('proof for this audience', t1, 'ok', { context: { ...call(t1, executor, { amount: 1 }, { aud: 'payments-svc' }), audience: 'payments-svc' } });
{
  const unbound = root({ holder: undefined });
  add('proof presented with a token that is not bound', unbound, 'bad_proof', { detail: 'NotBound', context: { tool: PAY, args: {}, proof: proof({ token: unbound, by: planner }) } });
}
// Malformed proofs.
const proofCtx = (p) => ({ tool: PAY, args: {}, proof: p });
{
  const good = proof({ token: t1, by: executor });
  add('proof over 1 KiB', t1, 'bad_proof', { detail: 'TooLarge', context: proofCtx(proof({ token: t1, by: executor, extra: { 6: 'a'.repeat(1100) } })) });
  add('proof without its tag', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(good.subarray(1)) });
  add('proof with a trailing byte', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(cat(good, [0])) });
  add('proof with an unknown key (7)', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(proof({ token: t1, by: executor, extra: { 7: 1 } })) });
  add('proof with a 15-byte nonce', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(proof({ token: t1, by: executor, nonce: new Uint8Array(15) })) });
  add('proof without a nonce', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(proof({ token: t1, by: executor, extra: { 5: undefined } })) });
  add('proof with iat as text', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(proof({ token: t1, by: executor, extra: { 4: 'now' } })) });
  const raw = encodeCbor(new Map([[1, parseToken(t1).cti], [2, PAY], [3, argsHash({})], [4, NOW_MS - 1000], [5, cti(0x5a)]]));
  const nonShortest = cat(raw.subarray(0, 1), [0x18, 0x01], raw.subarray(2)); // key 1 written as 18 01
  add('proof with a non-shortest integer', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(proof({ token: t1, by: executor, raw: nonShortest })) });
  add('a token presented as its own proof', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(t1) });
  add('a child token signed by the holder, presented as a proof', t1, 'bad_proof', { detail: 'Malformed', context: proofCtx(child(t1, executor, sub)) });
  add('proof that is not printable (cf1. prefix)', t1, 'bad_proof', { detail: 'NotPrintable', context: { tool: PAY, args: {}, proof_text: `cf1.${Buffer.from(good).toString('base64url')}` } });
}

// Acceptance 2: delegation attacks.
add('child naming a tool outside the parent\'s (payments.refund → payments.*)', child(t0, planner, executor, { tool: 'payments.*' }), 'delegation_invalid', { detail: 'ToolNotSubset', link: 0 });
add('child naming another tool (payments.refund → payments.charge)', child(t0, planner, executor, { tool: 'payments.charge' }), 'delegation_invalid', { detail: 'ToolNotSubset', link: 0 });
add('child data*.query under database.*', child(root({ tool: 'database.*' }), planner, executor, { tool: 'data*.query' }), 'delegation_invalid', { detail: 'ToolNotSubset', link: 0 });
add('grandchild naming a tool its grandparent lacks', child(child(t0, planner, executor), executor, sub, { tool: 'payments.*' }), 'delegation_invalid', { detail: 'ToolNotSubset', link: 0 });
{
  const loose = child(t0, planner, executor, { when: [{ arg: 'amount', op: '<=', value: 500 }] });
  add('child loosening its parent\'s bound (500 under 200): 300 is beyond the parent\'s', loose, 'constraint_failed', { link: 1, context: call(loose, executor, { amount: 300 }) });
  add('child loosening its parent\'s bound (500 under 200): 150 is within both', loose, 'ok', { context: call(loose, executor, { amount: 150 }) });
}
add('child expiring one second after its parent', child(root({ exp: NOW + 600 }), planner, executor, { exp: NOW + 601 }), 'delegation_invalid', { detail: 'OutlivesParent', link: 0 });
{
  const c = child(root({ exp: NOW + 600 }), planner, executor, { exp: NOW + 600 });
  add('child expiring with its parent', c, 'ok', { context: call(c, executor) });
}
add('link with its parent holder\'s kid, signed by another key', child(t0, planner, executor, { signer: stranger, kidOf: planner }), 'bad_signature', { link: 0 });
add('link signed by a stranger under its own kid', child(t0, stranger, executor), 'delegation_invalid', { detail: 'WrongSigner', link: 0 });
add('child signed by the issuer key, not the holder', child(t0, issuer, executor), 'delegation_invalid', { detail: 'WrongSigner', link: 0 });
{
  // The planner holds two tokens of equal length; a child of one is re-pointed at the other.
  const narrow = root({ when: [{ arg: 'amount', op: '<=', value: 5 }] });
  const wide = root({ when: [{ arg: 'amount', op: '<=', value: 9 }] });
  if (narrow.length !== wide.length) throw new Error('splice vector needs equal-length parents');
  const c = Buffer.from(child(narrow, planner, executor));
  const at = c.indexOf(Buffer.from(narrow));
  const spliced = cat(c.subarray(0, at), wide, c.subarray(at + narrow.length));
  add('spliced: prf swapped for another parent of the same holder, signature kept', spliced, 'bad_signature', { link: 0 });
  const otherChain = child(root({ holder: stranger }), stranger, executor);
  const grafted = child(otherChain, planner, sub); // signed by the planner, whose key otherChain does not bind
  add('spliced: a link grafted under another chain\'s parent', grafted, 'delegation_invalid', { detail: 'WrongSigner', link: 0 });
}
add('child whose iss is not its signer\'s kid', child(t0, planner, executor, { iss: 'capframe' }), 'delegation_invalid', { detail: 'WrongIssuer', link: 0 });
add('child whose iss is the kid in upper case', child(t0, planner, executor, { iss: kidHex(planner).toUpperCase() }), 'delegation_invalid', { detail: 'WrongIssuer', link: 0 });
add('child with prf but no holder key', child(t0, planner, executor, { holder: undefined }), 'delegation_invalid', { detail: 'ChildUnbound', link: 0 });
add('child of a parent with no holder key', child(root({ holder: undefined }), planner, executor), 'delegation_invalid', { detail: 'ParentUnbound', link: 0 });
add('child naming another capability', child(root({ cap: 'read-only' }), planner, executor, { cap: 'admin' }), 'delegation_invalid', { detail: 'CapabilityChanged', link: 0 });
add('grandchild naming a capability its grandparent does not', child(child(root({ cap: 'read-only' }), planner, executor), executor, sub, { cap: 'admin' }), 'delegation_invalid', { detail: 'CapabilityChanged', link: 0 });
{
  const c = child(root({ cap: 'read-only' }), planner, executor, { cap: 'read-only' });
  add('child repeating its parent\'s capability', c, 'ok', { context: call(c, executor) });
}
{
  const aud = child(t0, planner, executor, { aud: 'payments-svc' });
  add('child restricted to an audience, verifier naming none', aud, 'tool_mismatch', { link: 0, context: call(aud, executor) });
  add('child restricted to an audience, verifier naming it', aud, 'ok', { context: { ...call(aud, executor, { amount: 1 }, { aud: 'payments-svc' }), audience: 'payments-svc' } });
}
add('root from an untrusted issuer', child(root({ signer: untrustedIssuer }), planner, executor), 'unknown_key', { link: 1 });
{
  const tampered = cat(t0);
  tampered[tampered.length - 70] ^= 1;
  add('root tampered under a good child', child(tampered, planner, executor), 'bad_signature', { link: 1 });
}

// Acceptance 3: revocation and time, per link.
const revokedRoot = root({ id: cti(0xe1) });
const revokedMiddle = child(root(), planner, executor, { id: cti(0xe2) });
add('root revoked: its child', child(revokedRoot, planner, executor), 'revoked', { link: 1, context: call(child(revokedRoot, planner, executor), executor) });
add('root revoked: its grandchild', child(child(revokedRoot, planner, executor), executor, sub), 'revoked', { link: 2 });
add('parent revoked: its child', child(revokedMiddle, executor, sub), 'revoked', { link: 1 });
add('revoked token itself', revokedMiddle, 'revoked', { link: 0 });
add('parent expired (and so its child)', child(root({ exp: NOW - 1 }), planner, executor, { exp: NOW - 1 }), 'expired', { link: 1 });
add('parent not yet valid', child(root({ nbf: NOW + 60 }), planner, executor), 'not_yet_valid', { link: 1 });
add('child not yet valid', child(root(), planner, executor, { nbf: NOW + 60 }), 'not_yet_valid', { link: 0 });

// Acceptance 5: malformed cnf and prf, refused before any signature work.
const cnfCase = (name, cnf) => add(name, cose(claims({ iss: 'capframe', cnf }), issuer), 'malformed_token', { detail: 'BadHolderKey' });
cnfCase('cnf as an array', [1, 1, 6, planner.publicKey]);
cnfCase('cnf as text', 'ed25519');
cnfCase('cnf with a second top-level member', new Map([[1, cnfOf(planner.publicKey).get(1)], [2, 1]]));
cnfCase('cnf under key 3 instead of 1', new Map([[3, cnfOf(planner.publicKey).get(1)]]));
cnfCase('COSE_Key with an extra member (kid)', new Map([[1, new Map([[1, 1], [2, planner.kid], [-1, 6], [-2, planner.publicKey]])]]));
cnfCase('COSE_Key kty EC2', new Map([[1, new Map([[1, 2], [-1, 6], [-2, planner.publicKey]])]]));
cnfCase('COSE_Key crv X25519', new Map([[1, new Map([[1, 1], [-1, 4], [-2, planner.publicKey]])]]));
cnfCase('COSE_Key x of 31 bytes', cnfOf(planner.publicKey.subarray(0, 31)));
cnfCase('COSE_Key x of 33 bytes', cnfOf(cat(planner.publicKey, [0])));
cnfCase('COSE_Key x as text', cnfOf(hex(planner.publicKey)));
cnfCase('COSE_Key x the identity (small order)', cnfOf(cat([1], new Uint8Array(31))));
cnfCase('COSE_Key x of order 8', cnfOf(bytes('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')));
cnfCase('COSE_Key x of order 4 with the sign bit', cnfOf(cat(new Uint8Array(31), [0x80])));
cnfCase('COSE_Key x non-canonical (y = p + 2)', cnfOf(le(2n ** 255n - 17n)));
cnfCase('COSE_Key x non-canonical (y = 2^255 - 1)', cnfOf(le(2n ** 255n - 1n)));
{
  // y = 2 is not on the curve: parsed (canonical, not small order), but no signature verifies under it.
  const notPoint = cat([2], new Uint8Array(31));
  const kidOfNotPoint = new Uint8Array(createHash('sha256').update(notPoint).digest().subarray(0, 8));
  const parent = root({ cnf: cnfOf(notPoint) });
  const fake = { kid: kidOfNotPoint, publicKey: notPoint, object: stranger.object };
  const c = cose(claims({ iss: hex(kidOfNotPoint), exp: NOW + 600, holder: executor, prf: parent }), stranger, fake);
  add('parent bound to a key that is not a curve point', c, 'bad_signature', { link: 0 });
  add('token bound to a key that is not a curve point, with a proof', parent, 'bad_proof', { detail: 'BadSignature', context: proofCtx(proof({ token: parent, by: stranger, kidOf: fake })) });
}
add('prf as text', cose(claims({ iss: kidHex(planner), holder: executor, extra: { prf: 'cf1.abc' } }), planner), 'malformed_token', { detail: 'WrongType', link: 0 });
add('prf empty', child(new Uint8Array(0), planner, executor), 'malformed_token', { detail: 'Truncated', link: 1 });
add('prf not a token (a map)', child(bytes('a10102'), planner, executor), 'malformed_token', { detail: 'WrongType', link: 1 });
add('prf with a trailing byte', child(cat(t0, [0]), planner, executor), 'malformed_token', { detail: 'TrailingBytes', link: 1 });
add('prf a truncated token', child(t0.subarray(0, t0.length - 1), planner, executor), 'malformed_token', { detail: 'Truncated', link: 1 });
{
  const bigWhen = [{ arg: 'note', op: 'not_in', value: Array.from({ length: 39 }, (_, i) => `${i}`.padEnd(200, 'x')) }];
  const big = root({ when: bigWhen });
  const over = child(big, planner, executor);
  if (big.length > 8192 || over.length <= 8192) throw new Error(`oversize vector sizes: parent ${big.length}, child ${over.length}`);
  add('a chain over 8 KiB in all (its parent fits alone)', over, 'malformed_token', { detail: 'TooLarge', link: 0 });
  add('that parent alone', big, 'bad_proof', { detail: 'Missing', context: { tool: PAY, args: { note: 'y' } } });
}

const doc = {
  description:
    'Capframe delegation-chain and holder-proof vectors (SPEC §5, §9; docs/delegation.md). Each case is verified on a fresh createVerifier at now_ms with trusted_keys and revoked (and `verifier` options when given); both backends must return exactly `expect` (and `detail`, `link`); `then` is the answer for the same call made again. Generated by scripts/gen-chain-vectors.mjs.',
  now_ms: NOW_MS,
  trusted_keys: [hex(issuer.publicKey)],
  revoked: [hex(cti(0xe1)), hex(cti(0xe2))],
  max_depth: 4,
  cases,
};
writeFileSync(new URL('../test/vectors/chains.json', import.meta.url), `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${cases.length} chain and proof vectors`);
