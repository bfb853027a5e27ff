/**
 * The state `capframe serve`, the CLI and following services share (SPEC §7), behind
 * one interface with two implementations: the embedded file store (one host) and the
 * Redis store (a fleet). Keys are not here: the issuer private key stays in the state
 * directory or `CAPFRAME_ISSUER_KEY` whatever the store (see keys.ts).
 */
import type { MintedToken } from '../token/mint.js';
import type { NonceStore } from './nonces.js';

export type StoreKind = 'file' | 'redis';

/** What a store does when it cannot reach its backend (`on_store_failure`). */
export type OnStoreFailure = 'deny' | 'use_cached';

/** One issued token as the ledger records it. */
export interface LedgerEntry {
  id: string;
  token: string;
  tool: string;
  agent?: string;
  capability?: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  iat: number;
}

export interface RevokeOptions {
  /**
   * The expiry (seconds since the epoch) the token claims, when the caller has the token
   * itself. A store that forgets revocations (Redis) keeps one until the token's expiry
   * plus grace: the expiry its ledger recorded when the token is known there, else the
   * longest lifetime the policy grants from now. `exp` can only lengthen that (it is
   * read from a token nobody verified), for tokens minted outside the policy.
   */
  exp?: number;
}

/** Receives a revocation feed: the current set first, then every new revocation. */
export interface RevocationHandlers {
  /**
   * Revoked ids as a concatenation of 16-byte cti values (the initial set in large
   * batches, then pushes). An id may come more than once; applying it again is harmless.
   */
  onRevoked(ids: Uint8Array): void;
  /**
   * `current: true` once everything revoked so far has been delivered (and again after
   * a resync); `false`, with the reason, while revocations may be missed (disconnected,
   * not loaded yet, unreadable log).
   */
  onState(current: boolean, reason?: string): void;
}

export interface RevocationFollow {
  /** Resolves the first time the feed is current. Never rejects; may never resolve while the backend stays down. */
  readonly ready: Promise<void>;
  /** Stops following. */
  close(): Promise<void>;
}

/** The part of a store a verifier follows: `createVerifier({ revocations: store })`. */
export interface RevocationSource {
  readonly kind: StoreKind;
  /** Where it is, safe to print: the state directory, or the Redis URL without its password. */
  readonly location: string;
  followRevocations(handlers: RevocationHandlers): RevocationFollow;
}

/** `calls` calls per `per` seconds. */
export interface RateLimit {
  calls: number;
  per: number;
}

/**
 * A sliding-window rate limiter. `take` records a call if the window has room and
 * answers true, else false; it answers synchronously (in memory) or with a promise
 * (Redis). It throws (rejects) when it cannot tell: the caller denies.
 */
export interface RateLimiter {
  take(key: string, limit: RateLimit): boolean | Promise<boolean>;
}

export interface StoreHealth {
  kind: StoreKind;
  /** Safe to print: no password. */
  location: string;
  /** The store answers and the revocation feed is current. */
  up: boolean;
  /** When `up` last changed (ISO 8601), or when the store was opened. */
  since: string;
  /** What is wrong while down. */
  reason?: string;
  /** Times the connection came back after it was lost (Redis). */
  reconnects: number;
}

/** A minimal structured logger (the proxy's `Logger` fits). */
export interface StoreLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface Store extends RevocationSource {
  /**
   * Records a revocation; resolves once it is durable (file: fsynced; Redis: acknowledged
   * by the server, and published to every follower). True when it was not revoked before.
   * Rejects when it could not be recorded: never report a revocation that did not happen.
   */
  revoke(cti: Uint8Array, options?: RevokeOptions): Promise<boolean>;
  /** Every revocation in force now. */
  revokedIds(): Promise<Uint8Array[]>;
  /**
   * Records an issued token so a `tok_` id can be looked up. Resolves once it is written
   * (file: handed to the OS, fsynced within ~100 ms; Redis: stored).
   */
  record(minted: MintedToken): Promise<void>;
  /** The ledger entry for a `tok_` id, if the store has it. */
  findToken(id: string): Promise<LedgerEntry | undefined>;
  /** Replay nonces of holder proofs. */
  readonly nonces: NonceStore;
  /** Rate-limit windows. */
  readonly limiter: RateLimiter;
  health(): StoreHealth;
  /** Flushes and disconnects. Idempotent. */
  close(): Promise<void>;
}

