/**
 * What the claims of a verified token (and of every link of its delegation chain)
 * compile to: decoded once per token and memoised by the verifier, so a repeat
 * presentation skips CBOR decoding, constraint compilation and the narrowing checks.
 *
 * The narrowing of a delegation chain is checked here, in TypeScript, for both
 * backends: each child's tool pattern must be provably within its parent's
 * (`token/tool-subset.ts`), and a child naming a capability must name its parent
 * chain's. A child's constraints need no check: every link's constraints are
 * applied to every call, so a child can add bounds and never remove one.
 */
import { compileConstraints } from '../policy/constraints.js';
import { compileToolPattern, type ToolMatcher } from '../policy/tool-pattern.js';
import type { CompiledConstraints } from '../policy/types.js';
import { MAX_DEPTH_LIMIT } from '../token/chain.js';
import { decodeClaims, tokenId, type Claims } from '../token/claims.js';
import { Code, Delegation, pack } from '../token/codes.js';
import { toolSubset } from '../token/tool-subset.js';

export interface LinkFacts {
  claims: Claims;
  id: string;
  matchesTool: ToolMatcher;
  /** Compiled `when`, or the error that made it invalid, or undefined without one. */
  constraints: CompiledConstraints | Error | undefined;
}

export interface TokenFacts {
  /** The COSE bytes, so a repeat presentation of a printable token skips base64 decoding. */
  bytes: Uint8Array;
  /** Every link, the presented token first. */
  links: LinkFacts[];
  /** What every decision about this token carries. */
  known: { claims: Claims; tokenId: string; expiresAt: Date; chain: readonly Claims[]; holderKey?: Uint8Array };
  /** The packed `delegation_invalid` result of the first narrowing a child breaks. */
  narrowing?: number;
  /** The first link (root first) whose constraints do not compile. */
  badConstraints?: { link: number; error: Error };
  /** The verifier's revocation-and-key generation at which the backend last answered OK for this token. */
  okAt?: number;
}

/**
 * The payload of a token the backend has accepted, read without re-validating: it
 * is exactly `d2 84 4d <protected, 13 bytes> a0 <payload bstr> <signature>`.
 */
function payloadOf(bytes: Uint8Array): Uint8Array {
  let at = 2 + 1 + 13 + 1;
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

/** The raw key of a decoded `cnf` (`{1: {1: 1, -1: 6, -2: x}}`), which the backend checked. */
function holderOf(cnf: unknown): Uint8Array | undefined {
  const x = cnf instanceof Map ? (cnf.get(1) as Map<number, unknown> | undefined)?.get(-2) : undefined;
  return x instanceof Uint8Array ? new Uint8Array(x) : undefined;
}

/** Compiled `when` claims and tool patterns, shared by the tokens that carry the same ones (all tokens minted from one grant). */
const MEMO_LIMIT = 1024;
const compiledWhen = new Map<string, LinkFacts['constraints']>();
const compiledTools = new Map<string, ToolMatcher>();

function memo<T>(map: Map<string, T>, key: string, make: () => T): T {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    if (map.size >= MEMO_LIMIT) map.clear();
    map.set(key, value);
  }
  return value;
}

/**
 * A `when` claim compiled, or the error it does not compile with. Keyed by its JSON: two
 * claims with the same JSON (the claim's values are JSON values: no NaN, and -0 compares
 * like 0) are the same constraints. A compiled set keeps no state between calls.
 */
function constraintsOf(when: unknown[]): LinkFacts['constraints'] {
  return memo(compiledWhen, JSON.stringify(when), () => {
    try {
      return compileConstraints(when, 'token "when" claim');
    } catch (error) {
      return error as Error;
    }
  });
}

/**
 * Decodes and compiles a token the backend has verified — only such a token: its
 * links are read at known offsets, not parsed strictly again.
 */
export function tokenFacts(bytes: Uint8Array): TokenFacts {
  const decoded: Claims[] = [];
  for (let link: Uint8Array | undefined = bytes; link !== undefined && decoded.length <= MAX_DEPTH_LIMIT; ) {
    const claims = decodeClaims(payloadOf(link));
    decoded.push(claims);
    link = claims.prf;
  }
  const links = decoded.map(
    (claims): LinkFacts => ({
      claims,
      id: tokenId(claims.cti),
      matchesTool: memo(compiledTools, claims.tool, () => compileToolPattern(claims.tool)),
      constraints: claims.when === undefined ? undefined : constraintsOf(claims.when),
    }),
  );
  const leaf = links[0]!;
  const holder = holderOf(leaf.claims.cnf);
  const facts: TokenFacts = {
    bytes,
    links,
    known: {
      claims: leaf.claims,
      tokenId: leaf.id,
      expiresAt: new Date(leaf.claims.exp * 1000),
      chain: Object.freeze(links.map((l) => l.claims)),
      ...(holder !== undefined && { holderKey: new Uint8Array(holder) }),
    },
  };
  const narrowing = firstBrokenNarrowing(links);
  if (narrowing !== undefined) facts.narrowing = narrowing;
  for (let i = links.length - 1; i >= 0; i--) {
    const c = links[i]!.constraints;
    if (c instanceof Error) {
      facts.badConstraints = { link: i, error: c };
      break;
    }
  }
  return facts;
}

/** From the presented token up: tools within the parent's, then the capability. */
function firstBrokenNarrowing(links: LinkFacts[]): number | undefined {
  for (let i = 0; i + 1 < links.length; i++) {
    const child = links[i]!.claims;
    const parent = links[i + 1]!.claims;
    if (!toolSubset(child.tool, parent.tool)) return pack(Code.delegation_invalid, Delegation.ToolNotSubset, i);
    const inherited = links.slice(i + 1).find((l) => l.claims.cap !== undefined)?.claims.cap;
    if (child.cap !== undefined && inherited !== undefined && child.cap !== inherited) {
      return pack(Code.delegation_invalid, Delegation.CapabilityChanged, i);
    }
  }
  return undefined;
}

/**
 * The capability a chain carries: the first `cap` from the presented token up (a
 * child may only repeat its parent chain's).
 */
export function chainCapability(chain: readonly Claims[]): string | undefined {
  return chain.find((c) => c.cap !== undefined)?.cap;
}
