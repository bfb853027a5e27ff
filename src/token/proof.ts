/**
 * Making holder proofs (SPEC §5): the holder of a bound token signs, for each call,
 * the token's cti, the tool, the SHA-256 of the arguments' RFC 8785 canonical JSON,
 * the time in milliseconds, a fresh 16-byte nonce and optionally the audience.
 * The format is stated in `proof-format.ts`.
 */
import { randomBytes } from 'node:crypto';

import { CapframeError } from '../errors.js';
import { signingKey, type SigningKey } from '../keys/keys.js';
import { decodeBase64url, encodeBase64url } from '../lib/base64url.js';
import { MalformedError } from '../lib/cbor/validate.js';
import { encodeCbor } from '../lib/cbor/encode.js';
import { keyId } from '../lib/ed25519.js';
import { sameBytes } from './chain.js';
import { malformed, reasonFor } from './codes.js';
import { signPayload } from './mint.js';
import { parseToken, type ParsedToken } from './parse.js';
import { fromPrintable } from './printable.js';
import { MAX_PROOF_BYTES, PROOF_PREFIX, proofArgsHash, ProofKey } from './proof-format.js';

export interface ProofOptions {
  /** The holder-bound (or delegated) token the call presents: `cf1.…` or COSE bytes. */
  token: string | Uint8Array;
  /** The tool called, exactly as the verifier will see it (e.g. `payments.refund`). */
  tool: string;
  /** The call's arguments, exactly as they will be sent (JSON data; `undefined` means `{}`). */
  args?: unknown;
  /** The holder's secret key: 32-byte seed, PKCS#8 PEM, base64url seed, or a SigningKey. */
  key: Uint8Array | string | SigningKey;
  /** The verifier the proof is for; a verifier that names an audience requires it. */
  audience?: string;
  /** Override the clock (milliseconds since the epoch); for tests. */
  now?: number;
}

export interface CreatedProof {
  /** Printable form, `cfp1.…`: send it as `_meta["capframe/proof"]` or a `Capframe-Proof` header. */
  proof: string;
  /** COSE_Sign1 bytes. */
  bytes: Uint8Array;
  /** Milliseconds since the epoch. */
  iat: number;
  nonce: Uint8Array;
}

/**
 * Makes a proof for one call with a holder-bound token. Use each proof once: a
 * verifier accepts a nonce once, within 60 s of `iat`.
 *
 * @example
 * const { proof } = createProof({ token, tool: 'payments.refund', args: { amount: 20 }, key: holder.secretKey });
 * await client.callTool({ name: 'payments.refund', arguments: { amount: 20 }, _meta: { 'capframe/token': token, 'capframe/proof': proof } });
 */
export function createProof(options: ProofOptions): CreatedProof {
  if (options === null || typeof options !== 'object') throw new CapframeError('invalid_argument', 'createProof: options must be an object');
  const { tool, audience } = options;
  if (typeof tool !== 'string' || tool === '') throw new CapframeError('invalid_argument', 'createProof: tool must be a non-empty string');
  if (audience !== undefined && (typeof audience !== 'string' || audience === '')) {
    throw new CapframeError('invalid_argument', 'createProof: audience must be a non-empty string when given');
  }
  const { token } = readBoundToken(options.token, 'createProof');
  const key = toSigningKey(options.key, 'createProof');
  if (!sameBytes(key.publicKey, token.holder!)) {
    throw new CapframeError(
      'invalid_argument',
      `createProof: this key (kid ${hex(key.kid)}) is not the token's holder key (kid ${hex(keyId(token.holder!))})`,
    );
  }
  const argsHash = proofArgsHash(options.args ?? {});
  const iat = Math.floor(options.now ?? Date.now());
  if (!Number.isSafeInteger(iat) || iat < 0) throw new CapframeError('invalid_argument', `createProof: now must be milliseconds since the epoch, got ${String(options.now)}`);
  const nonce = new Uint8Array(randomBytes(16));
  const payload = encodeCbor(
    new Map<number, unknown>([
      [ProofKey.cti, token.cti],
      [ProofKey.tool, tool],
      [ProofKey.args, argsHash],
      [ProofKey.iat, iat],
      [ProofKey.nonce, nonce],
      [ProofKey.aud, audience],
    ]),
  );
  const bytes = signPayload(key, payload);
  if (bytes.length > MAX_PROOF_BYTES) {
    throw new CapframeError('invalid_argument', `createProof: the proof would be ${bytes.length} bytes, over the ${MAX_PROOF_BYTES}-byte limit (shorten the tool name or audience)`);
  }
  return { proof: PROOF_PREFIX + encodeBase64url(bytes), bytes, iat, nonce };
}

/** The COSE bytes of a proof given as `cfp1.…` text or bytes; undefined when it is neither. */
export function readProof(proof: string | Uint8Array): Uint8Array | undefined {
  if (proof instanceof Uint8Array) return proof;
  if (typeof proof !== 'string') return undefined;
  const text = proof.trim();
  if (!text.startsWith(PROOF_PREFIX)) return undefined;
  return decodeBase64url(text.slice(PROOF_PREFIX.length));
}

/** A token read strictly (not verified) that must be holder-bound, with its bytes; CapframeError otherwise. */
export function readBoundToken(input: string | Uint8Array, where: string): { bytes: Uint8Array; token: ParsedToken } {
  const bytes = typeof input === 'string' ? fromPrintable(input.trim()) : input instanceof Uint8Array ? input : undefined;
  if (bytes === undefined) throw new CapframeError('invalid_argument', `${where}: token must be a cf1. token string or its bytes`);
  let parsed: ParsedToken;
  try {
    parsed = parseToken(bytes);
  } catch (error) {
    if (error instanceof MalformedError) throw new CapframeError('invalid_argument', `${where}: not a readable token: ${reasonFor(malformed(error.detail))}`);
    throw error;
  }
  if (parsed.holder === undefined) {
    throw new CapframeError('invalid_argument', `${where}: the token is not bound to a holder key (no cnf); mint it with a holder key`);
  }
  return { bytes, token: parsed };
}

export function toSigningKey(key: Uint8Array | string | SigningKey, where: string): SigningKey {
  if (key === null || key === undefined) throw new CapframeError('invalid_argument', `${where}: key (the holder's secret key) is required`);
  return typeof key === 'object' && !(key instanceof Uint8Array) ? key : signingKey(key);
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
