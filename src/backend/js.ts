/**
 * The TypeScript backend: node:crypto Ed25519 with cached KeyObjects, a strict
 * CBOR validator, and a Set of revoked ids. Twin of `native/src/verifier.rs`; the
 * order of checks is part of the contract: parse (malformed_token) → key id
 * (unknown_key) → strict Ed25519 (bad_signature) → exp (expired) → nbf
 * (not_yet_valid) → revocation (revoked).
 */
import { CapframeError } from '../errors.js';
import { isValidPoint, keyId, prepareKey, verifyStrict, type PreparedKey } from '../lib/ed25519.js';
import { MalformedError } from '../lib/cbor/validate.js';
import { Code, malformed } from '../token/codes.js';
import { sigStructure } from '../token/cose.js';
import { parseToken } from '../token/parse.js';
import { DEFAULT_CACHE_CAPACITY, type Backend, type VerifierCore } from './types.js';

/** Map keys for byte strings: latin1 maps each byte to one UTF-16 unit, losslessly. */
function bytesKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

interface Verdict {
  exp: number;
  nbf: number | undefined;
  cti: string;
}

class JsVerifierCore implements VerifierCore {
  private readonly keys = new Map<string, PreparedKey>();
  private readonly revoked = new Set<string>();
  private readonly cache = new Map<string, Verdict>();

  constructor(private readonly cacheCapacity: number) {}

  addKey(publicKey: Uint8Array): Uint8Array {
    if (publicKey.length !== 32) throw new CapframeError('invalid_key', 'public key must be 32 bytes');
    if (!isValidPoint(publicKey)) throw new CapframeError('invalid_key', 'public key is not a valid Ed25519 point');
    const kid = keyId(publicKey);
    this.keys.set(bytesKey(kid), prepareKey(new Uint8Array(publicKey)));
    return kid;
  }

  removeKey(kid: Uint8Array): boolean {
    const removed = this.keys.delete(bytesKey(kid));
    // Cached verdicts may rest on that key.
    if (removed) this.cache.clear();
    return removed;
  }

  revoke(cti: Uint8Array): boolean {
    if (cti.length !== 16) throw new CapframeError('invalid_argument', 'token id (cti) must be 16 bytes');
    const key = bytesKey(cti);
    if (this.revoked.has(key)) return false;
    this.revoked.add(key);
    return true;
  }

  revokeMany(ids: Uint8Array): number {
    if (ids.length % 16 !== 0) throw new CapframeError('invalid_argument', 'revocation list length must be a multiple of 16');
    let added = 0;
    for (let i = 0; i < ids.length; i += 16) if (this.revoke(ids.subarray(i, i + 16))) added++;
    return added;
  }

  isRevoked(cti: Uint8Array): boolean {
    if (cti.length !== 16) throw new CapframeError('invalid_argument', 'token id (cti) must be 16 bytes');
    return this.revoked.has(bytesKey(cti));
  }

  countRevoked(ids: Uint8Array): number {
    if (ids.length % 16 !== 0) throw new CapframeError('invalid_argument', 'id list length must be a multiple of 16');
    let n = 0;
    for (let i = 0; i < ids.length; i += 16) if (this.revoked.has(bytesKey(ids.subarray(i, i + 16)))) n++;
    return n;
  }

  revokedCount(): number {
    return this.revoked.size;
  }

  clearCache(): void {
    this.cache.clear();
  }

  verify(token: Uint8Array, now: number): number {
    const cacheKey = bytesKey(token);
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) return this.timeAndRevocation(hit, now);
    let parsed;
    try {
      parsed = parseToken(token);
    } catch (error) {
      if (error instanceof MalformedError) return malformed(error.detail);
      throw error;
    }
    const key = this.keys.get(bytesKey(parsed.kid));
    if (key === undefined) return Code.unknown_key;
    if (!verifyStrict(key, sigStructure(parsed.protectedBytes, parsed.payload), parsed.signature)) {
      return Code.bad_signature;
    }
    const verdict = { exp: parsed.exp, nbf: parsed.nbf, cti: bytesKey(parsed.cti) };
    const code = this.timeAndRevocation(verdict, now);
    if (code === Code.ok) {
      // Bounded memory with no bookkeeping; a cold cache only costs speed.
      if (this.cache.size >= this.cacheCapacity) this.cache.clear();
      this.cache.set(cacheKey, verdict);
    }
    return code;
  }

  verifyBatch(tokens: Uint8Array, offsets: Uint32Array, now: number): Uint32Array {
    const codes = new Uint32Array(Math.max(0, offsets.length - 1));
    for (let i = 0; i < codes.length; i++) {
      const start = offsets[i]!;
      const end = offsets[i + 1]!;
      if (end < start || end > tokens.length) throw new CapframeError('invalid_argument', 'batch offsets out of range');
      codes[i] = this.verify(tokens.subarray(start, end), now);
    }
    return codes;
  }

  private timeAndRevocation(v: Verdict, now: number): number {
    if (now >= v.exp) return Code.expired;
    if (v.nbf !== undefined && now < v.nbf) return Code.not_yet_valid;
    if (this.revoked.has(v.cti)) return Code.revoked;
    return Code.ok;
  }
}

export const jsBackend: Backend = {
  name: 'js',
  createVerifierCore: (cacheCapacity = DEFAULT_CACHE_CAPACITY) => new JsVerifierCore(cacheCapacity),
  ed25519VerifyStrict(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64 || !isValidPoint(publicKey)) return false;
    return verifyStrict(prepareKey(publicKey), message, signature);
  },
};
