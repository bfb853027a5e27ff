/**
 * What a verification backend does. Two implement it — the Rust addon
 * (`native.ts`) and pure TypeScript (`js.ts`) — and must return identical results
 * for every input (test/vectors/ checks this).
 *
 * `verify` returns a packed result (see `token/codes.ts`): the code in the low byte,
 * a detail in the next, the delegation-chain link in the third. A delegated token is
 * verified with its whole chain in the one call (`token/chain.ts` states the order).
 * Only verified-OK tokens are cached, by their exact bytes; a cache hit still
 * re-checks expiry, nbf and revocation of every link of the chain.
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
  /** Decode + chain walk + strict verify + expiry + revocation at `now` (seconds since the epoch). */
  verify(token: Uint8Array, now: number): number;
  /**
   * `verify(token, nowMs / 1000)` and then, when that is OK, the holder proof for a
   * call of `tool` whose arguments hash (SHA-256 of their canonical JSON) to
   * `argsHash`, at a verifier naming `audience` (or none). On OK the proof's 16-byte
   * nonce is written to `nonceOut`; claiming it is the caller's job.
   */
  verifyProof(token: Uint8Array, proof: Uint8Array, tool: string, argsHash: Uint8Array, audience: string | undefined, nowMs: number, nonceOut: Uint8Array): number;
  /** Token i is `tokens[offsets[i]..offsets[i+1]]`; one packed result per token. */
  verifyBatch(tokens: Uint8Array, offsets: Uint32Array, now: number): Uint32Array;
}

export type BackendName = 'native' | 'js';

export interface Backend {
  readonly name: BackendName;
  /** `maxDepth`: delegations accepted below the root (default 4, at most 16). */
  createVerifierCore(cacheCapacity?: number, maxDepth?: number): VerifierCore;
  /** Raw strict Ed25519 verification (RFC 8032 vectors). */
  ed25519VerifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

/** Default size of the verdict cache, in tokens. */
export const DEFAULT_CACHE_CAPACITY = 10_000;
