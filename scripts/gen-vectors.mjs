// Regenerates test/vectors/tokens.json: the shared table both backends must agree on.
// Run after `npm run build:ts`:  node scripts/gen-vectors.mjs
// Every expected result below is stated by hand from SPEC §2; the backends are
// never asked what to expect.
import { createHash, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import { encodeCbor, Tagged } from '../dist/lib/cbor/encode.js';
import { signingKey } from '../dist/keys/keys.js';
import { signPayload } from '../dist/token/mint.js';
import { protectedHeader, sigStructure } from '../dist/token/cose.js';

const NOW = 1_800_000_000;
const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const cat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));

const issuer = signingKey(new Uint8Array(32).fill(7));
const other = signingKey(new Uint8Array(32).fill(9));
const IDENTITY = bytes('01' + '00'.repeat(31));
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

const cti = (n) => new Uint8Array(16).fill(n);
const revokedCti = cti(0xee);

/** A canonical claims map; `extra` entries are added or, with undefined, removed. */
function claims(extra = {}) {
  const base = new Map([
    [1, 'capframe'],
    [2, 'support-bot'],
    [4, NOW + 3600],
    [6, NOW - 100],
    [7, cti(1)],
    ['tool', 'database.query'],
  ]);
  for (const [k, v] of Object.entries(extra)) {
    const key = /^\d+$/.test(k) ? Number(k) : k;
    if (v === undefined) base.delete(key);
    else base.set(key, v);
  }
  return encodeCbor(base);
}

const signed = (payload, key = issuer) => signPayload(key, payload);

/** COSE_Sign1 assembled from raw parts, for envelopes the encoder would never produce. */
function envelope({ prefix = 'd284', protectedBytes = protectedHeader(issuer.kid), unprotected = 'a0', payload, signature }) {
  const bstr = (b) => cat(encodeCbor(b).subarray(0, encodeCbor(b).length - b.length), b);
  const sig = signature ?? new Uint8Array(sign(null, sigStructure(protectedBytes, payload), issuer.object));
  return cat(bytes(prefix), bstr(protectedBytes), bytes(unprotected), bstr(payload), bstr(sig));
}

function flip(token, index) {
  const t = new Uint8Array(token);
  t[index] ^= 0x01;
  return t;
}

// Ed25519 arithmetic for the strictness vectors (signatures OpenSSL alone would accept).
const le = (b) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
const toLe = (n) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
function secretScalar(seed) {
  const h = createHash('sha512').update(seed).digest();
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
  return le(h.subarray(0, 32));
}
function challenge(R, A, M) {
  return le(createHash('sha512').update(R).update(A).update(M).digest()) % L;
}

const valid = signed(claims());
const nest = (n) => (n === 0 ? 1 : [nest(n - 1)]);
/** Claims whose `when` value (the last entry, in canonical order) is the raw CBOR `h`. */
const rawWhen = (h) => {
  const c = claims({ when: [] });
  return cat(c.subarray(0, c.length - 1), bytes(h));
};
const issEntry = claims().subarray(1, 11); // 01 68 "capframe"
const cases = [];
const add = (name, token, expect, detail) => cases.push({ name, token: hex(token), expect, ...(detail && { detail }) });

add('valid minimal token', valid, 'ok');
add('valid with capability, audience and constraints', signed(claims({ 3: 'mcp', cap: 'read-only', when: [{ arg: 'sql', op: 'matches', value: '^SELECT' }, { arg: 'limit', op: '<=', value: 0.5 }, { arg: 'region', op: 'in', value: ['eu', 'us'] }] })), 'ok');
add('valid with nbf in the past', signed(claims({ 5: NOW - 10 })), 'ok');
add('valid without sub', signed(claims({ 2: undefined })), 'ok');
add('valid with cnf holder key', signed(claims({ 8: new Map([[1, new Map([[1, 1], [-1, 6], [-2, new Uint8Array(32).fill(3)]])]]) })), 'ok');
add('valid with float32 constraint value', signed(claims({ when: [{ arg: 'x', op: '<', value: 65536.5 }] })), 'ok');
add('valid with 16 levels of nesting', signed(claims({ when: nest(15) })), 'ok');
add('expired one second ago', signed(claims({ 4: NOW - 1 })), 'expired');
add('expires exactly now', signed(claims({ 4: NOW })), 'expired');
add('not yet valid', signed(claims({ 5: NOW + 60 })), 'not_yet_valid');
add('revoked', signed(claims({ 7: revokedCti })), 'revoked');
add('signed by an untrusted key', signed(claims(), other), 'unknown_key');
add('issuer kid but signed by another key', envelope({ payload: claims(), signature: new Uint8Array(sign(null, sigStructure(protectedHeader(issuer.kid), claims()), other.object)) }), 'bad_signature');
add('one byte flipped in the tool claim', flip(valid, valid.length - 64 - 3), 'bad_signature');
add('one byte flipped in R', flip(valid, valid.length - 60), 'bad_signature');
add('one byte flipped in S', flip(valid, valid.length - 10), 'bad_signature');
add('one byte flipped in the kid', flip(valid, 10), 'unknown_key');
add('truncated by one byte', valid.subarray(0, valid.length - 1), 'malformed_token', 'Truncated');
add('truncated to half', valid.subarray(0, valid.length >> 1), 'malformed_token', 'Truncated');
add('empty', new Uint8Array(0), 'malformed_token', 'Truncated');
add('trailing byte', cat(valid, [0x00]), 'malformed_token', 'TrailingBytes');
add('oversize (8193 bytes)', cat(valid, new Uint8Array(8193 - valid.length)), 'malformed_token', 'TooLarge');
add('oversize claim, validly signed', signed(claims({ cap: 'x'.repeat(8200) })), 'malformed_token', 'TooLarge');
add('wrong tag (98, COSE_Sign)', cat([0xd8, 0x62], valid.subarray(1)), 'malformed_token', 'UnexpectedTag');
add('no tag', valid.subarray(1), 'malformed_token', 'WrongType');
add('tag 18 in a non-shortest head', cat([0xd8, 0x12], valid.subarray(1)), 'malformed_token', 'NonShortest');
add('algorithm ES256 instead of EdDSA', envelope({ protectedBytes: encodeCbor(new Map([[1, -7], [4, issuer.kid]])), payload: claims() }), 'malformed_token', 'UnsupportedAlg');
add('extra protected header parameter', envelope({ protectedBytes: encodeCbor(new Map([[1, -8], [3, 'text/plain'], [4, issuer.kid]])), payload: claims() }), 'malformed_token', 'BadHeader');
add('kid of 7 bytes', envelope({ protectedBytes: encodeCbor(new Map([[1, -8], [4, issuer.kid.subarray(0, 7)]])), payload: claims() }), 'malformed_token', 'BadHeader');
add('missing kid', envelope({ protectedBytes: encodeCbor(new Map([[1, -8]])), payload: claims() }), 'malformed_token', 'BadHeader');
add('unprotected header not empty', envelope({ unprotected: 'a10401', payload: claims() }), 'malformed_token', 'BadHeader');
add('detached payload (nil)', cat(bytes('d2844d'), protectedHeader(issuer.kid), bytes('a0f65840'), new Uint8Array(64)), 'malformed_token', 'WrongType');
add('signature of 63 bytes', cat(valid.subarray(0, valid.length - 66), [0x58, 0x3f], valid.subarray(valid.length - 63)), 'malformed_token', 'WrongType');
add('array of 3 items', cat(bytes('d283'), valid.subarray(2, valid.length - 66)), 'malformed_token', 'WrongType');
add('indefinite-length outer array', cat(bytes('d29f'), valid.subarray(2), [0xff]), 'malformed_token', 'IndefiniteLength');
// Re-signed payloads: the signature is good, the encoding is not.
add('repeated claim key out of order', signed(cat(bytes('a7'), claims().subarray(1), bytes('0102'))), 'malformed_token', 'UnsortedKeys');
add('duplicate claim key', signed(cat(bytes('a7'), issEntry, issEntry, claims().subarray(1 + issEntry.length))), 'malformed_token', 'DuplicateKey');
add('unsorted claim keys', signed(bytes('a2' + '0463' + '616263' + '0163' + '616263')), 'malformed_token', 'UnsortedKeys');
add('indefinite-length claims map', signed(cat([0xbf], claims().subarray(1), [0xff])), 'malformed_token', 'IndefiniteLength');
add('indefinite-length text claim', signed(bytes('a164746f6f6c7f6164ff')), 'malformed_token', 'IndefiniteLength');
add('non-shortest integer (iat in 8 bytes)', signed(bytes('a101' + '1b' + '0000000000000001')), 'malformed_token', 'NonShortest');
add('non-shortest float (0.5 as float64)', signed(rawWhen('81fb3fe0000000000000')), 'malformed_token', 'NonShortest');
add('non-shortest float (1.5 as float32)', signed(rawWhen('81fa3fc00000')), 'malformed_token', 'NonShortest');
add('NaN constraint value', signed(rawWhen('81f97e00')), 'malformed_token', 'InvalidCbor');
add('infinite constraint value', signed(rawWhen('81f97c00')), 'malformed_token', 'InvalidCbor');
add('undefined simple value', signed(rawWhen('81f7')), 'malformed_token', 'InvalidCbor');
add('tag inside the payload', signed(rawWhen('81c11a00000001')), 'malformed_token', 'UnexpectedTag');
add('17 levels of nesting', signed(claims({ when: nest(16) })), 'malformed_token', 'TooDeep');
add('invalid UTF-8 in the tool claim', signed(fixToolBytes(claims(), bytes('ff'))), 'malformed_token', 'InvalidUtf8');
add('unknown integer claim (9)', signed(claims({ 9: 1 })), 'malformed_token', 'UnknownClaim');
add('unknown text claim', signed(claims({ admin: true })), 'malformed_token', 'UnknownClaim');
add('missing exp', signed(claims({ 4: undefined })), 'malformed_token', 'MissingClaim');
add('missing tool', signed(claims({ tool: undefined })), 'malformed_token', 'MissingClaim');
add('missing iss', signed(claims({ 1: undefined })), 'malformed_token', 'MissingClaim');
add('cti of 8 bytes', signed(claims({ 7: new Uint8Array(8) })), 'malformed_token', 'WrongType');
add('exp as text', signed(claims({ 4: 'tomorrow' })), 'malformed_token', 'WrongType');
add('exp negative', signed(claims({ 4: -5 })), 'malformed_token', 'WrongType');
add('exp above 2^53', signed(cat(bytes('a1041b0020000000000000'))), 'malformed_token', 'WrongType');
add('empty tool', signed(claims({ tool: '' })), 'malformed_token', 'WrongType');
add('claims are an array', signed(encodeCbor([1, 2])), 'malformed_token', 'WrongType');
add('byte string declaring 65536 bytes', bytes('d2845a00010000'), 'malformed_token', 'Truncated');
add('a lone break byte', bytes('ff'), 'malformed_token', 'InvalidCbor');
add('random bytes', bytes('8a1b2c3d4e5f60718293a4b5c6d7e8f9'), 'malformed_token', 'UnexpectedTag');

// Strictness: each of these passes a cofactorless, non-strict Ed25519 check.
{
  const payload = claims({ 7: cti(2) });
  const M = sigStructure(protectedHeader(issuer.kid), payload);
  const sig = new Uint8Array(sign(null, M, issuer.object));
  const S = le(sig.subarray(32));
  add('non-canonical S (S + L)', envelope({ payload, signature: cat(sig.subarray(0, 32), toLe(S + L)) }), 'bad_signature');
  const k = challenge(IDENTITY, issuer.publicKey, M);
  const a = secretScalar(new Uint8Array(32).fill(7));
  add('small-order R (identity) with S = k·a', envelope({ payload, signature: cat(IDENTITY, toLe((k * a) % L)) }), 'bad_signature');
}
{
  // The identity as a trusted key: R = identity, S = 0 satisfies [S]B = R + [k]A.
  const kid = createHash('sha256').update(IDENTITY).digest().subarray(0, 8);
  const protectedBytes = encodeCbor(new Map([[1, -8], [4, new Uint8Array(kid)]]));
  add('small-order public key (identity) with R = identity, S = 0', envelope({ protectedBytes, payload: claims(), signature: cat(IDENTITY, new Uint8Array(32)) }), 'bad_signature');
}

/** Replaces the tool claim's text bytes with `raw` (for invalid UTF-8). */
function fixToolBytes(payload, raw) {
  const marker = Buffer.from('64746f6f6c6e64617461626173652e7175657279', 'hex'); // "tool" "database.query"
  const at = Buffer.from(payload).indexOf(marker);
  return cat(payload.subarray(0, at), bytes('64746f6f6c61'), raw, payload.subarray(at + marker.length));
}

// RFC 8032 §7.1 test vectors, plus strictness cases on raw messages.
const rfc8032 = [
  { name: 'RFC 8032 TEST 1', secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', public_key: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', message: '', signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b' },
  { name: 'RFC 8032 TEST 2', secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', public_key: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', message: '72', signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00' },
  { name: 'RFC 8032 TEST 3', secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', public_key: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', message: 'af82', signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a' },
];
const ed25519 = [];
for (const v of rfc8032) {
  const key = signingKey(bytes(v.secret));
  if (hex(key.publicKey) !== v.public_key) throw new Error(`${v.name}: public key mismatch`);
  if (hex(sign(null, bytes(v.message), key.object)) !== v.signature) throw new Error(`${v.name}: signature mismatch`);
  ed25519.push({ name: v.name, public_key: v.public_key, message: v.message, signature: v.signature, valid: true });
  ed25519.push({ name: `${v.name}, last signature bit flipped`, public_key: v.public_key, message: v.message, signature: hex(flip(bytes(v.signature), 63)), valid: false });
  ed25519.push({ name: `${v.name}, message extended`, public_key: v.public_key, message: v.message + '00', signature: v.signature, valid: false });
}
{
  const v = rfc8032[0];
  const S = le(bytes(v.signature).subarray(32));
  ed25519.push({ name: 'RFC 8032 TEST 1 with S + L', public_key: v.public_key, message: v.message, signature: v.signature.slice(0, 64) + hex(toLe(S + L)), valid: false });
  ed25519.push({ name: 'identity public key, R = identity, S = 0', public_key: hex(IDENTITY), message: '', signature: hex(IDENTITY) + '00'.repeat(32), valid: false });
  ed25519.push({ name: 'order-2 public key (y = -1)', public_key: 'ec' + 'ff'.repeat(30) + '7f', message: '', signature: hex(IDENTITY) + '00'.repeat(32), valid: false });
  ed25519.push({ name: 'non-canonical identity (y = p + 1)', public_key: 'ee' + 'ff'.repeat(30) + '7f', message: '', signature: hex(IDENTITY) + '00'.repeat(32), valid: false });
  const a = secretScalar(bytes(v.secret));
  const k = challenge(IDENTITY, bytes(v.public_key), new Uint8Array(0));
  ed25519.push({ name: 'TEST 1 key, small-order R with S = k·a', public_key: v.public_key, message: '', signature: hex(IDENTITY) + hex(toLe((k * a) % L)), valid: false });
}

const doc = {
  description: 'Capframe token vectors (SPEC §2, §9). Both backends must return exactly `expect` (and `detail` for malformed tokens). Generated by scripts/gen-vectors.mjs.',
  now: NOW,
  trusted_keys: [hex(issuer.publicKey), hex(IDENTITY)],
  untrusted_key: hex(other.publicKey),
  revoked: [hex(revokedCti)],
  tokens: cases,
  ed25519,
};
writeFileSync(new URL('../test/vectors/tokens.json', import.meta.url), `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${cases.length} token vectors and ${ed25519.length} Ed25519 vectors`);
