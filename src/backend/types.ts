/**
 * What a verification backend does. Two implement it — the Rust addon
 * (`native.ts`) and pure TypeScript (`js.ts`) — and must return identical results
 * for every input (test/vectors/ checks this).
 *
 * `verify` returns a packed result: the code (see `token/codes.ts`) in the low byte,
 * the malformed-token detail in the next. Only verified-OK tokens are cached, by
 * their exact bytes; a cache hit still re-checks expiry, nbf and revocation.
 */
export interface VerifierCore {
  /** Trusts a raw 32-byte Ed25519 public key; returns its 8-byte key id. Throws on a non-point. */
  addKey(publicKey: Uint8Array): Uint8Array;
  removeKey(kid: Uint8Array): boolean;
  /** Adds a 16-byte token id to the revocation set; true when it was new. */
  revoke(cti: Uint8Array): boolean;
  /** Adds the ids in a 16-byte-aligned concatenation; returns how many were new. */
  revokeMany(ids: Uint8Array): number;
  isRevoked(cti: Uint8Array): boolean;
  /** How many ids of a 16-byte-aligned concatenation are revoked (one call for a whole chain). */
  countRevoked(ids: Uint8Array): number;
  revokedCount(): number;
  clearCache(): void;
  /** Decode + strict verify + expiry + revocation at `now` (seconds since the epoch). */
  verify(token: Uint8Array, now: number): number;
  /** Token i is `tokens[offsets[i]..offsets[i+1]]`; one packed result per token. */
  verifyBatch(tokens: Uint8Array, offsets: Uint32Array, now: number): Uint32Array;
}

export type BackendName = 'native' | 'js';

export interface Backend {
  readonly name: BackendName;
  createVerifierCore(cacheCapacity?: number): VerifierCore;
  /** Raw strict Ed25519 verification (RFC 8032 vectors). */
  ed25519VerifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

/** Default size of the verdict cache, in tokens. */
export const DEFAULT_CACHE_CAPACITY = 10_000;
