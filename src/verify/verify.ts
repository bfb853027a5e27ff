/** `verify()`: one-call verification for services holding only the public key. */
import { createMemoryNonceStore, type NonceStore } from '../store/nonces.js';
import { createVerifier, type Verifier, type VerifyContext } from './verifier.js';
import type { Decision } from './decision.js';

export interface VerifyOptions extends VerifyContext {
  /** Trusted issuer public key(s): raw 32 bytes, hex or base64url. */
  keys: ReadonlyArray<Uint8Array | string>;
  /** Revoked token ids, when the caller tracks them. */
  revoked?: Iterable<Uint8Array | string>;
  /**
   * Where holder-proof nonces are remembered (synchronous stores only). Default: one
   * in-memory store shared by every `verify()` call in this process, so a proof is
   * accepted once however the calls are made.
   */
  nonceStore?: NonceStore;
  /** Delegations accepted below the root (default 4). */
  maxDepth?: number;
}

// Verifiers by key set and depth, so repeated calls reuse cached KeyObjects and verdicts.
const verifiers = new Map<string, Verifier>();
let sharedNonces: NonceStore | undefined;

function verifierId(keys: ReadonlyArray<Uint8Array | string>, maxDepth: number | undefined): string {
  return `${maxDepth ?? ''}|${keys.map((k) => (typeof k === 'string' ? k : Buffer.from(k).toString('hex'))).join(',')}`;
}

/**
 * The keys of the last call, copied, so a caller passing the same keys again (the usual
 * case, often in a new array each time) skips building their id: comparing 32 bytes is
 * cheaper than hex-encoding them. Bytes are compared, so a key changed in place is a
 * different key.
 */
let last: { held: (Uint8Array | string)[]; maxDepth: number | undefined; verifier: Verifier } | undefined;

function sameAsLast(keys: ReadonlyArray<Uint8Array | string>, maxDepth: number | undefined): Verifier | undefined {
  if (last === undefined || !Array.isArray(keys) || last.maxDepth !== maxDepth || keys.length !== last.held.length) return undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const h = last.held[i]!;
    if (typeof k === 'string' ? k !== h : typeof h === 'string' || !(k instanceof Uint8Array) || !sameBytes(k, h)) return undefined;
  }
  return last.verifier;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verifies a token and, when `tool`/`args`/`proof` are given, that it allows this
 * call. A holder-bound (or delegated) token needs `proof`, made by its holder for
 * exactly this tool and these arguments. Returns a decision; throws only on
 * programmer error (bad options).
 *
 * @example
 * import { verify } from 'capframe';
 * const d = verify(token, { keys: [issuerPublicKey], tool: 'payments.refund', args: { amount: 20 }, proof });
 * if (!d.allowed) throw new Error(`DENIED ${d.code}: ${d.reason}`);
 */
export function verify(token: string | Uint8Array | undefined | null, options: VerifyOptions): Decision {
  const { keys, revoked, nonceStore, maxDepth } = options;
  // The options carry the call context (tool, args, audience, proof) themselves.
  const hasContext = options.tool !== undefined || options.args !== undefined || options.audience !== undefined || options.proof !== undefined;
  const context = hasContext ? options : undefined;
  if (revoked !== undefined || nonceStore !== undefined) {
    const nonces = nonceStore ?? (sharedNonces ??= createMemoryNonceStore());
    return createVerifier({ keys, cacheSize: 1, nonceStore: nonces, ...(revoked !== undefined && { revoked }), ...(maxDepth !== undefined && { maxDepth }) }).verify(token, context);
  }
  const again = sameAsLast(keys, maxDepth);
  if (again !== undefined) return again.verify(token, context);
  const id = verifierId(keys ?? [], maxDepth);
  let verifier = verifiers.get(id);
  if (verifier === undefined) {
    verifier = createVerifier({ keys, nonceStore: (sharedNonces ??= createMemoryNonceStore()), ...(maxDepth !== undefined && { maxDepth }) });
    if (verifiers.size >= 16) verifiers.clear();
    verifiers.set(id, verifier);
  }
  if (Array.isArray(keys)) last = { held: keys.map((k) => (typeof k === 'string' ? k : Uint8Array.from(k))), maxDepth, verifier };
  return verifier.verify(token, context);
}
