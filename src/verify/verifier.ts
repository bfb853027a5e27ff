/**
 * `createVerifier`: trusted keys, a revocation set and a verdict cache around the
 * active backend, plus the checks that need the claims (tool match, constraints).
 */
import { CapframeError } from '../errors.js';
import { activeBackend } from '../backend/select.js';
import type { Backend, BackendName, VerifierCore } from '../backend/types.js';
import { parsePublicKey } from '../keys/keys.js';
import { compileConstraints } from '../policy/constraints.js';
import type { CompiledConstraints } from '../policy/types.js';
import { compileToolPattern, type ToolMatcher } from '../policy/tool-pattern.js';
import { decodeClaims, tokenId, type Claims } from '../token/claims.js';
import { codeName, Malformed, malformed, reasonFor } from '../token/codes.js';
import { fromPrintable, PRINTABLE_PREFIX } from '../token/printable.js';
import { parseTokenId } from './token-id.js';
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
   * by the verifier that names that audience (a context without one refuses it).
   */
  audience?: string;
  /** The call's arguments; the token's `when` constraints must hold on them. */
  args?: unknown;
}

export interface Verifier {
  readonly backend: BackendName;
  /** Verifies one token (printable string or COSE bytes). Never throws on a bad token. */
  verify(token: string | Uint8Array | undefined | null, context?: VerifyContext): Decision;
  /** Verifies many tokens in one backend call. */
  verifyBatch(tokens: ReadonlyArray<string | Uint8Array>, context?: VerifyContext): Decision[];
  /** Revokes by `tok_` id or 16-byte cti; true when newly revoked. */
  revoke(id: string | Uint8Array): boolean;
  isRevoked(id: string | Uint8Array): boolean;
  addKey(publicKey: Uint8Array | string): Uint8Array;
  removeKey(kid: Uint8Array): boolean;
}

/** What the claims of a verified token compile to, memoised per token. */
interface TokenFacts {
  /** The COSE bytes, so a repeat presentation of a printable token skips base64 decoding. */
  bytes: Uint8Array;
  claims: Claims;
  id: string;
  expiresAt: Date;
  matchesTool: ToolMatcher;
  constraints: CompiledConstraints | Error | undefined;
}

/**
 * Creates a verifier.
 *
 * @example
 * const verifier = createVerifier({ keys: [issuerPublicKey] });
 * const decision = verifier.verify(token, { tool: 'database.query', args: { sql: 'SELECT 1' } });
 * if (!decision.allowed) console.log(`DENIED ${decision.code}: ${decision.reason}`);
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (options === null || typeof options !== 'object' || !Array.isArray(options.keys)) {
    throw new CapframeError('invalid_argument', 'createVerifier: options.keys must be an array of public keys');
  }
  const backend = options.backend ?? activeBackend();
  const capacity = options.cacheSize ?? 10_000;
  const core: VerifierCore = backend.createVerifierCore(capacity);
  const clock = options.clock ?? Date.now;
  /** Seconds since the epoch. A clock that is not a number would make every token unexpiring. */
  const now = (): number => {
    const ms = clock();
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new CapframeError('invalid_argument', `createVerifier: clock() returned ${String(ms)}, not milliseconds`);
    return ms / 1000;
  };
  // Decoded claims by token, so a repeat presentation skips CBOR decoding and
  // constraint compilation. It never skips the backend's checks.
  const facts = new Map<string | Uint8Array, TokenFacts>();

  for (const key of options.keys) core.addKey(parsePublicKey(key));
  for (const id of options.revoked ?? []) core.revoke(toCti(id));

  function factsFor(cacheKey: string, bytes: Uint8Array): TokenFacts {
    let f = facts.get(cacheKey);
    if (f !== undefined) return f;
    const claims = decodeClaims(payloadOf(bytes));
    let constraints: TokenFacts['constraints'];
    if (claims.when !== undefined) {
      try {
        constraints = compileConstraints(claims.when, 'token "when" claim');
      } catch (error) {
        constraints = error as Error;
      }
    }
    f = {
      bytes,
      claims,
      id: tokenId(claims.cti),
      expiresAt: new Date(claims.exp * 1000),
      matchesTool: compileToolPattern(claims.tool),
      constraints,
    };
    if (facts.size >= capacity) facts.clear();
    facts.set(cacheKey, f);
    return f;
  }

  function decide(result: number, cacheKey: string, bytes: Uint8Array, context: VerifyContext | undefined): Decision {
    const code = codeName(result);
    if (code === 'malformed_token' || code === 'bad_signature' || code === 'unknown_key') {
      return deny(code, reasonFor(result));
    }
    const f = factsFor(cacheKey, bytes);
    const known = { claims: f.claims, tokenId: f.id, expiresAt: f.expiresAt };
    if (code !== 'ok') return deny(code, `${reasonFor(result)} (${f.id})`, known);
    // Not verified here yet: a parent chain and a holder proof. Neither may pass unchecked.
    if (f.claims.prf !== undefined) return deny('delegation_invalid', `token ${f.id} is delegated, and delegation chains are not verified yet`, known);
    if (f.claims.cnf !== undefined && context !== undefined) return deny('bad_proof', `token ${f.id} is bound to a holder key; a call needs a holder proof`, known);
    if (context !== undefined && f.claims.aud !== undefined && context.audience !== f.claims.aud) {
      const here = context.audience === undefined ? 'this verifier names no audience' : `not "${context.audience}"`;
      return deny('tool_mismatch', `token is for audience "${f.claims.aud}", ${here}`, known);
    }
    if (context?.tool !== undefined && !f.matchesTool(context.tool)) {
      return deny('tool_mismatch', `token is for "${f.claims.tool}", not "${context.tool}"`, known);
    }
    if (f.constraints instanceof Error) {
      return deny('malformed_token', `token constraints are invalid: ${f.constraints.message}`, known);
    }
    if (f.constraints !== undefined && context !== undefined) {
      // A call context without arguments is checked against {}: a constraint on a
      // missing argument fails closed.
      const checked = f.constraints.check(context.args ?? {});
      if (!checked.ok) return deny('constraint_failed', checked.reason, known);
    }
    return { allowed: true, code: 'ok', reason: `valid token ${f.id} for ${f.claims.tool}`, ...known };
  }

  return {
    backend: backend.name,
    verify(token, context) {
      if (typeof token === 'string' && token.startsWith(PRINTABLE_PREFIX)) {
        // Repeat presentation: the bytes are known. The backend still decides.
        const known = facts.get(token);
        if (known !== undefined) return decide(core.verify(known.bytes, now()), token, known.bytes, context);
      }
      const input = readToken(token);
      if ('denied' in input) return input.denied;
      return decide(core.verify(input.bytes, now()), input.key, input.bytes, context);
    },
    verifyBatch(tokens, context) {
      const inputs = tokens.map(readToken);
      const good = inputs.filter((i): i is { bytes: Uint8Array; key: string } => !('denied' in i));
      const offsets = new Uint32Array(good.length + 1);
      good.forEach((g, i) => (offsets[i + 1] = offsets[i]! + g.bytes.length));
      const codes = core.verifyBatch(Buffer.concat(good.map((g) => g.bytes)), offsets, now());
      let next = 0;
      return inputs.map((i) => ('denied' in i ? i.denied : decide(codes[next]!, i.key, good[next++]!.bytes, context)));
    },
    revoke: (id) => core.revoke(toCti(id)),
    isRevoked: (id) => core.isRevoked(toCti(id)),
    addKey: (publicKey) => core.addKey(parsePublicKey(publicKey)),
    removeKey(kid) {
      facts.clear();
      return core.removeKey(kid);
    },
  };
}

/** The payload of a token the backend accepted: after tag, array head and protected header. */
function payloadOf(bytes: Uint8Array): Uint8Array {
  // d2 84 | 4d <13-byte protected> | a0 | payload bstr head …
  let at = 2 + 1 + bytes[2]! - 0x40 + 1;
  const ai = bytes[at]! & 0x1f;
  let len: number;
  if (ai < 24) {
    len = ai;
    at += 1;
  } else if (ai === 24) {
    len = bytes[at + 1]!;
    at += 2;
  } else {
    len = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    at += 3;
  }
  return bytes.subarray(at, at + len);
}

function readToken(token: unknown): { bytes: Uint8Array; key: string } | { denied: Decision } {
  if (token === undefined || token === null || token === '') {
    return { denied: deny('missing_token', 'no capability token was presented') };
  }
  if (typeof token === 'string') {
    const bytes = fromPrintable(token.trim());
    if (bytes === undefined) return { denied: deny('malformed_token', reasonFor(malformed(Malformed.NotPrintable))) };
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
