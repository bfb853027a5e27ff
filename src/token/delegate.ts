/**
 * Offline delegation (SPEC §5): the holder of a bound token makes a narrower child
 * token for a sub-agent, with no call to the issuer. The child
 *
 *   - is signed by the parent's holder key (its `kid` is that key's id, its `iss` the
 *     key id in lowercase hex),
 *   - carries the parent token's bytes in `"prf"`,
 *   - names a tool pattern within the parent's,
 *   - carries only the constraints it adds (every link's constraints apply to every
 *     call, so nothing the parent bounds can be loosened),
 *   - expires no later than the parent,
 *   - and names the sub-agent's key in its own `cnf`, so the sub-agent proves each
 *     call (and may delegate further).
 *
 * `docs/delegation.md` states the whole format and how verifiers check it.
 */
import { CapframeError } from '../errors.js';
import { parseHolderKey, type SigningKey } from '../keys/keys.js';
import { compileConstraints } from '../policy/constraints.js';
import { issuerOfDelegated, MAX_DEPTH_LIMIT, readChain, sameBytes } from './chain.js';
import { decodeClaims } from './claims.js';
import { mint, type MintedToken } from './mint.js';
import { readBoundToken, toSigningKey } from './proof.js';
import { toolSubset } from './tool-subset.js';

export interface DelegateOptions {
  /** The parent's holder key — the secret half of the key its `cnf` names: seed, PKCS#8 PEM, base64url seed or a SigningKey. */
  key: Uint8Array | string | SigningKey;
  /** The child's tools: an exact tool name or a `*` pattern, within the parent's. */
  tools: string;
  /** Constraints the child adds (`{arg, op, value}`, SPEC §4). The parent's keep applying. */
  when?: readonly unknown[];
  /** Lifetime in seconds, capped at the parent's expiry. Default: until the parent expires. */
  ttl?: number;
  /** The sub-agent's public key (raw 32 bytes, hex or base64url): the child's `cnf`. */
  to: Uint8Array | string;
  /** The sub-agent's id, the child's `sub` claim (for people and logs; verifiers go by `to`). */
  agent?: string;
  /** Restrict the child to one verifier (`aud`); every link's audience applies. */
  audience?: string;
  /** Override the clock (seconds since the epoch); for tests. */
  now?: number;
}

/**
 * Delegates a narrower token to a sub-agent, offline.
 *
 * @example
 * // The executor holds a bound token for payments.refund with amount <= 50 …
 * const child = delegate(executorToken, {
 *   key: executorHolderKey,
 *   tools: 'payments.refund',
 *   when: [{ arg: 'amount', op: '<=', value: 20 }],
 *   ttl: 120,
 *   to: subExecutorPublicKey,
 * });
 * // … and the sub-executor calls with child.token and a proof by its own key.
 */
export function delegate(parent: string | Uint8Array, options: DelegateOptions): MintedToken {
  if (options === null || typeof options !== 'object') throw new CapframeError('invalid_argument', 'delegate: options must be an object');
  const { bytes, token: link } = readBoundToken(parent, 'delegate');
  const key = toSigningKey(options.key, 'delegate');
  if (!sameBytes(key.publicKey, link.holder!)) {
    throw new CapframeError('invalid_argument', `delegate: this key (kid ${hex(key.kid)}) is not the parent token's holder key; only its holder can delegate it`);
  }
  const parentClaims = decodeClaims(link.payload);
  const { tools } = options;
  if (typeof tools !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(tools)) {
    throw new CapframeError('invalid_argument', 'delegate: tools must be a tool name or pattern (1–256 printable characters, no spaces)');
  }
  if (!toolSubset(tools, parentClaims.tool)) {
    throw new CapframeError('invalid_argument', `delegate: tools "${tools}" are not within the parent's "${parentClaims.tool}"`);
  }
  const to = parseHolderKey(options.to);
  if (options.when !== undefined) {
    if (!Array.isArray(options.when)) throw new CapframeError('invalid_argument', 'delegate: when must be a list of constraints');
    compileConstraints(options.when, 'delegate: when');
  }
  const now = Math.floor(options.now ?? Date.now() / 1000);
  const left = parentClaims.exp - now;
  if (left <= 0) throw new CapframeError('invalid_argument', `delegate: the parent token expired at ${new Date(parentClaims.exp * 1000).toISOString()}`);
  if (options.ttl !== undefined && (!Number.isSafeInteger(options.ttl) || options.ttl <= 0)) {
    throw new CapframeError('invalid_argument', `delegate: ttl must be a positive whole number of seconds, got ${String(options.ttl)}`);
  }
  const depth = readChain(link.prf ?? new Uint8Array(0)).length + 1;
  if (depth > MAX_DEPTH_LIMIT) throw new CapframeError('invalid_argument', `delegate: the child would be ${depth} delegations deep; no verifier accepts more than ${MAX_DEPTH_LIMIT}`);
  return mint({
    key,
    tool: tools,
    ttl: Math.min(options.ttl ?? left, left),
    holderKey: to,
    parent: bytes,
    issuer: issuerOfDelegated(key.kid),
    now,
    ...(options.agent !== undefined && { agent: options.agent }),
    ...(options.audience !== undefined && { audience: options.audience }),
    ...(options.when !== undefined && options.when.length > 0 && { when: options.when }),
  });
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
