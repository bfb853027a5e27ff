/**
 * `createVerifier`: trusted keys, a revocation set and a verdict cache around the
 * active backend, plus the checks that need the claims (narrowing of a delegation
 * chain, tool match, constraints) and the replay check of holder proofs.
 *
 * The order of a decision (the first failure wins):
 *
 *   1. the token is present and printable (missing_token, malformed_token);
 *   2. the backend: the whole chain parsed, signed, current and not revoked
 *      (malformed_token, delegation_invalid, unknown_key, bad_signature, expired,
 *      not_yet_valid, revoked) — and, when a proof is presented, the proof;
 *   3. the narrowing of each delegation (delegation_invalid) and the constraints'
 *      own validity (malformed_token);
 *   4. without a call context: `ok`, except that a holder-bound token is
 *      `bad_proof` — it is valid, but nothing may be done with it without a proof;
 *   5. the holder proof, for a holder-bound token (bad_proof);
 *   6. every link's audience and tool (tool_mismatch);
 *   7. every link's constraints, root first (constraint_failed);
 *   8. the proof's nonce, claimed last so that a denied call never burns it (replay).
 */
import { CapframeError } from '../errors.js';
import { activeBackend } from '../backend/select.js';
import type { Backend, BackendName, VerifierCore } from '../backend/types.js';
import { parsePublicKey } from '../keys/keys.js';
import { encodeBase64url } from '../lib/base64url.js';
import { follow, openRevocationSource, type FeedTarget, type Following } from '../store/follow.js';
import { createMemoryNonceStore, type NonceStore } from '../store/nonces.js';
import type { OnStoreFailure, RevocationSource } from '../store/types.js';
import { checkMaxDepth, DEFAULT_MAX_DEPTH } from '../token/chain.js';
import { Code, codeName, describeLink, detailName, linkOf, Malformed, malformed, pack, ProofFailure, reasonFor } from '../token/codes.js';
import { fromPrintable, PRINTABLE_PREFIX } from '../token/printable.js';
import { proofArgsHash, PROOF_SKEW_MS } from '../token/proof-format.js';
import { readProof } from '../token/proof.js';
import { parseTokenId } from './token-id.js';
import { tokenFacts, type TokenFacts } from './token-facts.js';
import { deny, type Decision } from './decision.js';

export interface VerifierOptions {
  /** Trusted issuer public keys (raw 32 bytes, hex or base64url). Several allow rotation. */
  keys: ReadonlyArray<Uint8Array | string>;
  /** Revoked token ids (`tok_…` strings or 16-byte cti values). */
  revoked?: Iterable<Uint8Array | string>;
  /** Verdict cache size in tokens (default 10,000). */
  cacheSize?: number;
  /** Clock in milliseconds since the epoch; defaults to Date.now. */
  clock?: () => number;
  /** Backend to use; defaults to the active one (see `backend`). */
  backend?: Backend;
  /**
   * Where holder-proof nonces are remembered, so each proof is accepted once.
   * Default: an in-memory store of this verifier's own. `verify` needs a store that
   * answers synchronously; `verifyAsync` takes either kind (e.g. Redis).
   */
  nonceStore?: NonceStore;
  /** Delegations accepted below the root token (default 4, at most 16; 0 refuses delegated tokens). */
  maxDepth?: number;
  /**
   * Follow a store's revocations, so a `capframe revoke` (or `POST /v1/revocations` on
   * any proxy) reaches this verifier too: a state directory (the embedded store's log,
   * watched), a `redis://`/`rediss://` URL (pub/sub, with a resync after every
   * reconnect), or a store from `openStore()`. Until every existing revocation is
   * loaded — and while the feed is down — every call is denied `internal_error`
   * (see `onStoreFailure`). `await verifier.ready()` before serving; `verifier.close()` stops.
   */
  revocations?: string | RevocationSource;
  /**
   * While a followed feed is down after it loaded: 'deny' (default) denies every call,
   * 'use_cached' keeps verifying against the last revocation set it knew.
   */
  onStoreFailure?: OnStoreFailure;
}

/**
 * What a call would do with the token. Without a context, `verify` answers whether
 * the token itself is valid; with one, the tool must match and the token's
 * constraints must hold on `args` (missing `args` counts as `{}`).
 */
export interface VerifyContext {
  /** The tool being called; the token's `tool` claim must match it. */
  tool?: string;
  /**
   * Who is verifying. A token with an `aud` claim is accepted in a call context only
   * by the verifier that names that audience (a context without one refuses it); a
   * proof must name this audience when the verifier names one, and none otherwise.
   */
  audience?: string;
  /** The call's arguments, exactly as they will be forwarded; the token's `when` constraints must hold on them. */
  args?: unknown;
  /**
   * The holder proof for this call (`_meta["capframe/proof"]`, a `cfp1.` string or
   * COSE bytes). Required for a holder-bound token, refused for any other.
   */
  proof?: string | Uint8Array;
}

export interface Verifier {
  readonly backend: BackendName;
  /** Delegations this verifier accepts below the root. */
  readonly maxDepth: number;
  /**
   * Verifies one token (printable string or COSE bytes). Never throws on a bad token.
   * Needs a nonce store that answers synchronously (the default one does).
   */
  verify(token: string | Uint8Array | undefined | null, context?: VerifyContext): Decision;
  /** `verify`, awaiting the nonce store: for asynchronous stores (e.g. Redis). Never rejects on a bad token. */
  verifyAsync(token: string | Uint8Array | undefined | null, context?: VerifyContext): Promise<Decision>;
  /**
   * `verifyAsync` in two stages, for a caller with checks of its own after the token's
   * (the proxy's agent and policy checks): `decision` is steps 1–7, and `claim()` claims
   * a holder proof's nonce (step 8) and resolves to the final decision (`decision`
   * itself when there is nothing to claim). Call `claim()` once, last, and only when the
   * call will otherwise go ahead: then a call the caller denies never burns its nonce.
   * Never rejects on a bad token.
   *
   * @example
   * const staged = verifier.verifyStaged(token, { tool, args, proof });
   * if (!staged.decision.allowed) return deny(staged.decision);
   * if (!myOwnChecks(staged.decision)) return deny(…);   // the proof stays usable
   * const final = await staged.claim();                  // `replay` if seen before
   */
  verifyStaged(token: string | Uint8Array | undefined | null, context?: VerifyContext): StagedDecision;
  /** Verifies many tokens in one backend call. Holder-bound tokens need proofs, which a batch cannot carry: they are `bad_proof`. */
  verifyBatch(tokens: ReadonlyArray<string | Uint8Array>, context?: Omit<VerifyContext, 'proof'>): Decision[];
  /** Revokes by `tok_` id or 16-byte cti; true when newly revoked. Every token delegated from it is revoked with it. */
  revoke(id: string | Uint8Array): boolean;
  isRevoked(id: string | Uint8Array): boolean;
  addKey(publicKey: Uint8Array | string): Uint8Array;
  removeKey(kid: Uint8Array): boolean;
  /** Revoked ids this verifier knows. */
  revokedCount(): number;
  /** Resolves once every followed revocation feed has loaded (at once when none is followed). */
  ready(): Promise<void>;
  /** Stops following revocation feeds (closing the connections it opened for them). Idempotent. */
  close(): Promise<void>;
}

/** The verifier's side of revocation feeds (see `followRevocations`). */
interface FeedSide {
  target(): FeedTarget;
  attach(following: Following): void;
}

const feedSides = new WeakMap<Verifier, FeedSide>();

/** @internal How `followRevocations` reaches a verifier. */
export function feedSideOf(verifier: Verifier): FeedSide {
  const side = feedSides.get(verifier);
  if (side === undefined) throw new CapframeError('invalid_argument', 'followRevocations: expected a verifier from createVerifier()');
  return side;
}

/** What `verifyStaged` answers: the decision before the nonce, and the step that claims it. */
export interface StagedDecision {
  decision: Decision;
  claim(): Promise<Decision>;
}

/** A decision that is `ok` once the proof's nonce is claimed. */
interface PendingNonce {
  decision: Decision;
  nonceKey: string;
  ttlMs: number;
}

/**
 * Creates a verifier.
 *
 * @example
 * const verifier = createVerifier({ keys: [issuerPublicKey] });
 * const decision = verifier.verify(token, { tool: 'database.query', args: { sql: 'SELECT 1' } });
 * if (!decision.allowed) console.log(`DENIED ${decision.code}: ${decision.reason}`);
 *
 * @example
 * // A holder-bound or delegated token: the call carries a proof by the holder key.
 * const proof = createProof({ token, tool: 'payments.refund', args: { amount: 20 }, key: holderSecretKey }).proof;
 * verifier.verify(token, { tool: 'payments.refund', args: { amount: 20 }, proof }); // ok once; `replay` after
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (options === null || typeof options !== 'object' || !Array.isArray(options.keys)) {
    throw new CapframeError('invalid_argument', 'createVerifier: options.keys must be an array of public keys');
  }
  const backend = options.backend ?? activeBackend();
  const capacity = options.cacheSize ?? 10_000;
  const maxDepth = checkMaxDepth(options.maxDepth ?? DEFAULT_MAX_DEPTH);
  const core: VerifierCore = backend.createVerifierCore(capacity, maxDepth);
  const clock = options.clock ?? Date.now;
  const nonceStore = options.nonceStore ?? createMemoryNonceStore({ clock });
  if (typeof nonceStore?.claim !== 'function') throw new CapframeError('invalid_argument', 'createVerifier: options.nonceStore must have a claim(key, ttlMs) method');
  /** Milliseconds since the epoch. A clock that is not a number would make every token unexpiring. */
  const nowMs = (): number => {
    const ms = clock();
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new CapframeError('invalid_argument', `createVerifier: clock() returned ${String(ms)}, not milliseconds`);
    return ms;
  };
  // Decoded claims by token, so a repeat presentation skips CBOR decoding and
  // constraint compilation. It never skips the backend's checks.
  const facts = new Map<string | Uint8Array, TokenFacts>();
  const nonce = new Uint8Array(16);
  /**
   * Bumped by every revocation and key change. A token the backend accepted at this
   * generation, presented again before any of its links expires (or before its nbf),
   * cannot have a different answer from the backend: the repeat skips the call into it.
   * Any revocation or key change since, or any time limit reached, goes to the backend.
   */
  let generation = 0;

  for (const key of options.keys) core.addKey(parsePublicKey(key));
  for (const id of options.revoked ?? []) core.revoke(toCti(id));

  // Revocation feeds: each may block every call (fail closed) until it is current.
  const blocks = new Map<object, string>();
  /** The reason every call is denied now, or undefined. Read on every call: keep it a plain variable. */
  let blocked: string | undefined;
  const followings: Following[] = [];
  const side: FeedSide = {
    target() {
      const key = {};
      return {
        revokeMany: (ids) => {
          // A revocation from the feed invalidates the repeat fast path like any other.
          generation++;
          core.revokeMany(ids);
        },
        block(reason) {
          if (reason === undefined) blocks.delete(key);
          else blocks.set(key, reason);
          blocked = blocks.values().next().value;
        },
      };
    },
    attach: (following) => void followings.push(following),
  };
  const onStoreFailure = options.onStoreFailure ?? 'deny';
  if (onStoreFailure !== 'deny' && onStoreFailure !== 'use_cached') {
    throw new CapframeError('invalid_argument', `createVerifier: onStoreFailure must be 'deny' or 'use_cached', got ${String(onStoreFailure)}`);
  }
  if (options.revocations !== undefined) {
    const given = options.revocations;
    const source = typeof given === 'string' ? openRevocationSource(given) : given;
    if (typeof source?.followRevocations !== 'function') {
      throw new CapframeError('invalid_argument', 'createVerifier: options.revocations must be a state directory, a redis:// URL or a store from openStore()');
    }
    const owned = typeof given === 'string' ? (source as RevocationSource & { close(): Promise<void> }) : undefined;
    followings.push(follow(side.target(), source, { onStoreFailure }, owned === undefined ? undefined : () => owned.close()));
  }

  function factsFor(cacheKey: string, bytes: Uint8Array): TokenFacts {
    let f = facts.get(cacheKey);
    if (f !== undefined) return f;
    f = tokenFacts(bytes);
    if (facts.size >= capacity) facts.clear();
    facts.set(cacheKey, f);
    return f;
  }

  /** Step 2: the backend's packed answer, with the proof's when one is presented. */
  function runBackend(bytes: Uint8Array, context: VerifyContext | undefined, now: number): { result: number; proofProblem?: Decision } {
    const proofInput = context?.proof;
    if (proofInput === undefined) return { result: core.verify(bytes, now / 1000) };
    const proof = readProof(proofInput);
    let argsHash: Uint8Array | undefined;
    let proofProblem: Decision | undefined;
    try {
      argsHash = proofArgsHash(context!.args ?? {});
    } catch (error) {
      if (!(error instanceof CapframeError)) throw error;
      proofProblem = deny('constraint_failed', `the call's arguments are not I-JSON, so no proof can cover them: ${error.message}`);
    }
    if (proof === undefined) proofProblem ??= deny('bad_proof', reasonFor(pack(Code.bad_proof, ProofFailure.NotPrintable)), { detail: 'NotPrintable' });
    if (proof === undefined || argsHash === undefined) return { result: core.verify(bytes, now / 1000), proofProblem: proofProblem! };
    return { result: core.verifyProof(bytes, proof, context!.tool ?? '', argsHash, context!.audience, now, nonce) };
  }

  /** Steps 2–8 for a readable token, from the backend's answer; the nonce (step 8) is left to the caller. */
  function decideFrom(result: number, proofProblem: Decision | undefined, cacheKey: string, bytes: Uint8Array, context: VerifyContext | undefined, now: number): Decision | PendingNonce {
    const proofInput = context?.proof;
    const code = codeName(result);
    if (code === 'malformed_token' || code === 'bad_signature' || code === 'unknown_key' || code === 'delegation_invalid') {
      // No claims to show: the chain did not verify. A delegated token's failure names its link.
      const link = linkOf(result);
      const chained = link > 0 || code === 'delegation_invalid';
      const detail = detailName(result);
      return deny(code, chained ? `${reasonFor(result)} (delegation link ${link}, ${describeLink(link)})` : reasonFor(result), {
        ...(detail !== undefined && { detail }),
        ...(chained && { link }),
      });
    }
    const f = factsFor(cacheKey, bytes);
    if (result === Code.ok) f.okAt = generation;
    const known = f.known;
    const delegated = f.links.length > 1;
    const at = (link: number) => (delegated ? { ...known, link } : known);
    /** `(tok_…)`, and for a delegated token which link that is. */
    const which = (link: number) => (delegated ? `(${f.links[link]!.id}, delegation link ${link}, ${describeLink(link)})` : `(${known.tokenId})`);
    if (code !== 'ok' && code !== 'bad_proof') return deny(code, `${reasonFor(result)} ${which(linkOf(result))}`, at(linkOf(result)));

    // Step 3.
    if (f.narrowing !== undefined) {
      return deny('delegation_invalid', `${reasonFor(f.narrowing)} ${which(linkOf(f.narrowing))}`, { ...at(linkOf(f.narrowing)), detail: detailName(f.narrowing)! });
    }
    if (f.badConstraints !== undefined) {
      return deny('malformed_token', `token constraints are invalid: ${f.badConstraints.error.message} ${which(f.badConstraints.link)}`, at(f.badConstraints.link));
    }

    // Step 4.
    const bound = known.holderKey !== undefined;
    if (context === undefined) {
      if (bound) {
        return deny('bad_proof', `token ${known.tokenId} is valid and bound to a holder key: a call needs a holder proof (verify with { tool, args, proof })`, { ...known, detail: 'Missing' });
      }
      return ok(f);
    }

    // Step 5.
    const badProof = (packed: number) => deny('bad_proof', `${reasonFor(packed)} (${known.tokenId})`, { ...known, detail: detailName(packed)! });
    if (bound) {
      if (proofInput === undefined) return badProof(pack(Code.bad_proof, ProofFailure.Missing));
      if (proofProblem !== undefined) return { ...known, ...proofProblem };
      if (code === 'bad_proof') return badProof(result);
    } else if (proofInput !== undefined) {
      return badProof(pack(Code.bad_proof, ProofFailure.NotBound));
    }

    // Step 6.
    for (let i = f.links.length - 1; i >= 0; i--) {
      const aud = f.links[i]!.claims.aud;
      if (aud !== undefined && context.audience !== aud) {
        const here = context.audience === undefined ? 'this verifier names no audience' : `not "${context.audience}"`;
        return deny('tool_mismatch', `token is for audience "${aud}", ${here} ${which(i)}`, at(i));
      }
    }
    if (context.tool !== undefined) {
      for (let i = f.links.length - 1; i >= 0; i--) {
        const link = f.links[i]!;
        if (!link.matchesTool(context.tool)) return deny('tool_mismatch', delegated ? `token is for "${link.claims.tool}", not "${context.tool}" ${which(i)}` : `token ${link.id} is for "${link.claims.tool}", not "${context.tool}"`, at(i));
      }
    }

    // Step 7. A call context without arguments is checked against {}: a constraint
    // on a missing argument fails closed.
    for (let i = f.links.length - 1; i >= 0; i--) {
      const constraints = f.links[i]!.constraints as Exclude<TokenFacts['links'][number]['constraints'], Error>;
      if (constraints === undefined) continue;
      const checked = constraints.check(context.args ?? {});
      if (!checked.ok) return deny('constraint_failed', delegated ? `${checked.reason} ${which(i)}` : checked.reason, at(i));
    }

    if (!bound) return ok(f);
    // Step 8 is the caller's: remember the nonce while the proof could be accepted
    // (its skew window, twice over for verifiers whose clocks differ) or until the
    // token expires, whichever is sooner.
    const ttlMs = Math.max(1, Math.ceil(Math.min(2 * PROOF_SKEW_MS, known.claims.exp * 1000 - now)));
    return { decision: ok(f), nonceKey: `${encodeBase64url(known.claims.cti)}.${encodeBase64url(nonce)}`, ttlMs };
  }

  function ok(f: TokenFacts): Decision {
    const what = f.links.length > 1 ? `delegated token ${f.known.tokenId} (depth ${f.links.length - 1})` : `token ${f.known.tokenId}`;
    return { allowed: true, code: 'ok', reason: `valid ${what} for ${f.known.claims.tool}`, ...f.known };
  }

  function evaluate(cacheKey: string, bytes: Uint8Array, context: VerifyContext | undefined, now: number): Decision | PendingNonce {
    const { result, proofProblem } = runBackend(bytes, context, now);
    return decideFrom(result, proofProblem, cacheKey, bytes, context, now);
  }

  /** True when every link is within its time bounds at `now` (ms), as the backend checks them. */
  function current(f: TokenFacts, now: number): boolean {
    const seconds = now / 1000;
    for (const link of f.links) {
      const c = link.claims;
      if (seconds >= c.exp || (c.nbf !== undefined && seconds < c.nbf)) return false;
    }
    return true;
  }

  /** Steps 1–7 for any input; a pending nonce for a bound token that passed them. */
  function start(token: string | Uint8Array | undefined | null, context: VerifyContext | undefined): Decision | PendingNonce {
    if (blocked !== undefined) return deny('internal_error', blocked);
    const now = nowMs();
    if (typeof token === 'string' && token.startsWith(PRINTABLE_PREFIX)) {
      // Repeat presentation: the bytes are known.
      const seen = facts.get(token);
      if (seen !== undefined) {
        // Nothing the backend's answer rests on has changed (no revocation, no key change,
        // every link still current): its answer is OK again. Proofs always go to it.
        if (seen.okAt === generation && context?.proof === undefined && current(seen, now)) return decideFrom(Code.ok, undefined, token, seen.bytes, context, now);
        return evaluate(token, seen.bytes, context, now);
      }
    }
    const input = readToken(token);
    if ('denied' in input) return input.denied;
    return evaluate(input.key, input.bytes, context, now);
  }

  function claimed(pending: PendingNonce, fresh: boolean): Decision {
    return fresh
      ? pending.decision
      : deny('replay', `holder proof was already used (nonce seen within its ${PROOF_SKEW_MS / 1000} s window) (${pending.decision.tokenId})`, aboutToken(pending.decision));
  }

  function storeFailed(pending: PendingNonce, error: unknown): Decision {
    const why = error instanceof Error ? error.message : String(error);
    return deny('internal_error', `the nonce store failed, so the proof's freshness is unknown: ${why}`, aboutToken(pending.decision));
  }

  async function claimAsync(r: PendingNonce): Promise<Decision> {
    try {
      const fresh = await nonceStore.claim(r.nonceKey, r.ttlMs);
      if (typeof fresh !== 'boolean') throw new Error(`claim() answered ${typeof fresh}, not a boolean`);
      return claimed(r, fresh);
    } catch (error) {
      return storeFailed(r, error);
    }
  }

  const verifier: Verifier = {
    backend: backend.name,
    maxDepth,
    verify(token, context) {
      const r = start(token, context);
      if (!('nonceKey' in r)) return r;
      let fresh: boolean | Promise<boolean>;
      try {
        fresh = nonceStore.claim(r.nonceKey, r.ttlMs);
      } catch (error) {
        return storeFailed(r, error);
      }
      if (typeof fresh !== 'boolean') {
        Promise.resolve(fresh).catch(() => undefined);
        return deny('internal_error', 'this verifier\'s nonce store answers asynchronously: call verifyAsync', aboutToken(r.decision));
      }
      return claimed(r, fresh);
    },
    async verifyAsync(token, context) {
      const r = start(token, context);
      if (!('nonceKey' in r)) return r;
      return claimAsync(r);
    },
    verifyStaged(token, context) {
      const r = start(token, context);
      if (!('nonceKey' in r)) return { decision: r, claim: () => Promise.resolve(r) };
      let claim: Promise<Decision> | undefined;
      // Claimed at most once, however often claim() is called.
      return { decision: r.decision, claim: () => (claim ??= claimAsync(r)) };
    },
    verifyBatch(tokens, context) {
      if (context !== undefined && (context as VerifyContext).proof !== undefined) {
        throw new CapframeError('invalid_argument', 'verifyBatch: a proof belongs to one token; verify holder-bound tokens one by one');
      }
      if (blocked !== undefined) {
        const reason = blocked;
        return tokens.map(() => deny('internal_error', reason));
      }
      const now = nowMs();
      const inputs = tokens.map(readToken);
      const good = inputs.filter((i): i is { bytes: Uint8Array; key: string } => !('denied' in i));
      const offsets = new Uint32Array(good.length + 1);
      good.forEach((g, i) => (offsets[i + 1] = offsets[i]! + g.bytes.length));
      const codes = core.verifyBatch(Buffer.concat(good.map((g) => g.bytes)), offsets, now / 1000);
      let next = 0;
      return inputs.map((i) => {
        if ('denied' in i) return i.denied;
        const index = next++;
        // The backend's answer for this token, then the claim checks; no proof, so
        // no nonce: a bound token stops at step 4 or 5.
        const r = decideFrom(codes[index]!, undefined, i.key, good[index]!.bytes, context, now);
        return 'nonceKey' in r ? deny('internal_error', 'unreachable: a batch verified a holder proof') : r;
      });
    },
    revoke(id) {
      generation++;
      return core.revoke(toCti(id));
    },
    isRevoked: (id) => core.isRevoked(toCti(id)),
    addKey(publicKey) {
      generation++;
      return core.addKey(parsePublicKey(publicKey));
    },
    removeKey(kid) {
      generation++;
      facts.clear();
      return core.removeKey(kid);
    },
    revokedCount: () => core.revokedCount(),
    async ready() {
      await Promise.all(followings.map((f) => f.ready));
    },
    async close() {
      const all = followings.splice(0);
      await Promise.all(all.map((f) => f.close()));
    },
  };
  feedSides.set(verifier, side);
  return verifier;
}

/** What a denial after a verified token still says about it. */
function aboutToken(d: Decision): Partial<Decision> {
  const { claims, tokenId, expiresAt, chain, holderKey } = d;
  return { claims, tokenId, expiresAt, chain, ...(holderKey !== undefined && { holderKey }) } as Partial<Decision>;
}

function readToken(token: unknown): { bytes: Uint8Array; key: string } | { denied: Decision } {
  if (token === undefined || token === null || token === '') {
    return { denied: deny('missing_token', 'no capability token was presented') };
  }
  if (typeof token === 'string') {
    const bytes = fromPrintable(token.trim());
    if (bytes === undefined) return { denied: deny('malformed_token', reasonFor(malformed(Malformed.NotPrintable)), { detail: 'NotPrintable' }) };
    return { bytes, key: token.trim() };
  }
  if (token instanceof Uint8Array) {
    return { bytes: token, key: `b:${Buffer.from(token.buffer, token.byteOffset, token.byteLength).toString('latin1')}` };
  }
  throw new CapframeError('invalid_argument', `verify: token must be a string or Uint8Array, got ${typeof token}`);
}

function toCti(id: string | Uint8Array): Uint8Array {
  if (typeof id === 'string') return parseTokenId(id);
  if (!(id instanceof Uint8Array) || id.length !== 16) {
    throw new CapframeError('invalid_argument', 'a token id is a tok_… string or 16 bytes');
  }
  return id;
}
