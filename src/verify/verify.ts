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
  const { keys, revoked, nonceStore, maxDepth, ...context } = options;
  const hasContext = context.tool !== undefined || context.args !== undefined || context.audience !== undefined || context.proof !== undefined;
  const nonces = nonceStore ?? (sharedNonces ??= createMemoryNonceStore());
  if (revoked !== undefined || nonceStore !== undefined) {
    return createVerifier({ keys, cacheSize: 1, nonceStore: nonces, ...(revoked !== undefined && { revoked }), ...(maxDepth !== undefined && { maxDepth }) }).verify(
      token,
      hasContext ? context : undefined,
    );
  }
  const id = verifierId(keys ?? [], maxDepth);
  let verifier = verifiers.get(id);
  if (verifier === undefined) {
    verifier = createVerifier({ keys, nonceStore: nonces, ...(maxDepth !== undefined && { maxDepth }) });
    if (verifiers.size >= 16) verifiers.clear();
    verifiers.set(id, verifier);
  }
  return verifier.verify(token, hasContext ? context : undefined);
}
