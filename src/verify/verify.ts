/** `verify()`: one-call verification for services holding only the public key. */
import { createVerifier, type Verifier, type VerifyContext } from './verifier.js';
import type { Decision } from './decision.js';

export interface VerifyOptions extends VerifyContext {
  /** Trusted issuer public key(s): raw 32 bytes, hex or base64url. */
  keys: ReadonlyArray<Uint8Array | string>;
  /** Revoked token ids, when the caller tracks them. */
  revoked?: Iterable<Uint8Array | string>;
}

// Verifiers by key set, so repeated calls reuse cached KeyObjects and verdicts.
const verifiers = new Map<string, Verifier>();

function keySetId(keys: ReadonlyArray<Uint8Array | string>): string {
  return keys.map((k) => (typeof k === 'string' ? k : Buffer.from(k).toString('hex'))).join(',');
}

/**
 * Verifies a token and, when `tool`/`args` are given, that it allows this call.
 * Returns a decision; throws only on programmer error (bad options).
 *
 * @example
 * import { verify } from 'capframe';
 * const d = verify(token, { keys: [issuerPublicKey], tool: 'payments.refund', args: { amount: 20 } });
 * if (!d.allowed) throw new Error(`DENIED ${d.code}: ${d.reason}`);
 */
export function verify(token: string | Uint8Array | undefined | null, options: VerifyOptions): Decision {
  const { keys, revoked, ...context } = options;
  const hasContext = context.tool !== undefined || context.args !== undefined || context.audience !== undefined;
  if (revoked !== undefined) {
    return createVerifier({ keys, revoked, cacheSize: 1 }).verify(token, hasContext ? context : undefined);
  }
  const id = keySetId(keys ?? []);
  let verifier = verifiers.get(id);
  if (verifier === undefined) {
    verifier = createVerifier({ keys });
    if (verifiers.size >= 16) verifiers.clear();
    verifiers.set(id, verifier);
  }
  return verifier.verify(token, hasContext ? context : undefined);
}
