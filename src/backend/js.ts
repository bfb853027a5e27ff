/**
 * The TypeScript backend: node:crypto Ed25519 with cached KeyObjects, a strict
 * CBOR validator, and a Set of revoked ids. Twin of `native/src/verifier.rs`; the
 * order of checks is part of the contract:
 *
 *   1. the chain's structure, every link parsed (`token/chain.ts`: malformed_token,
 *      delegation_invalid);
 *   2. the root's key id names a trusted key (unknown_key);
 *   3. strict Ed25519, the root with the trusted key, then each child with its
 *      parent's holder key, root to presented token (bad_signature);
 *   4. per link, root to presented token: exp (expired), nbf (not_yet_valid),
 *      revocation (revoked).
 *
 * For a single token that is: parse → unknown_key → bad_signature → expired →
 * not_yet_valid → revoked. The holder proof (`verifyProof`) comes after all of it.
 */
import { CapframeError } from '../errors.js';
import { isValidPoint, keyId, prepareKey, verifyStrict, type PreparedKey } from '../lib/ed25519.js';
import { checkMaxDepth, DEFAULT_MAX_DEPTH, parseChain, sameBytes } from '../token/chain.js';
import { Code, pack, ProofFailure } from '../token/codes.js';
import { sigStructure } from '../token/cose.js';
import { parseProof, PROOF_SKEW_MS } from '../token/proof-format.js';
import { DEFAULT_CACHE_CAPACITY, type Backend, type VerifierCore } from './types.js';

/** Map keys for byte strings: latin1 maps each byte to one UTF-16 unit, losslessly. */
function bytesKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** What a link needs for the re-checks on a cache hit. */
interface LinkTimes {
  exp: number;
  nbf: number | undefined;
  cti: string;
}

interface Verdict {
  /** Every link, presented token first. */
  links: LinkTimes[];
  /** The presented token's cti and holder key (its `cnf`), for proofs. */
  cti: Uint8Array;
  holder: Uint8Array | undefined;
  /** The holder key prepared and its key id, on the first proof, then reused. */
  holderKey?: { prepared: PreparedKey | undefined; kid: Uint8Array };
}

const textEncoder = new TextEncoder();


/** A holder key ready to verify with, or undefined when node:crypto will not take it (it then verifies nothing). */
function prepareHolderKey(holder: Uint8Array): PreparedKey | undefined {
  try {
    return prepareKey(new Uint8Array(holder));
  } catch {
    return undefined;
  }
}

class JsVerifierCore implements VerifierCore {
  private readonly keys = new Map<string, PreparedKey>();
  private readonly revoked = new Set<string>();
  private readonly cache = new Map<string, Verdict>();

  constructor(
    private readonly cacheCapacity: number,
    private readonly maxDepth: number,
  ) {}

  addKey(publicKey: Uint8Array): Uint8Array {
    if (publicKey.length !== 32) throw new CapframeError('invalid_key', 'public key must be 32 bytes');
    if (!isValidPoint(publicKey)) throw new CapframeError('invalid_key', 'public key is not a valid Ed25519 point');
    const kid = keyId(publicKey);
    this.keys.set(bytesKey(kid), prepareKey(new Uint8Array(publicKey)));
    return kid;
  }

  removeKey(kid: Uint8Array): boolean {
    const removed = this.keys.delete(bytesKey(kid));
    // Cached verdicts may rest on that key.
    if (removed) this.cache.clear();
    return removed;
  }

  revoke(cti: Uint8Array): boolean {
    if (cti.length !== 16) throw new CapframeError('invalid_argument', 'token id (cti) must be 16 bytes');
    const key = bytesKey(cti);
    if (this.revoked.has(key)) return false;
    this.revoked.add(key);
    return true;
  }

  revokeMany(ids: Uint8Array): number {
    if (ids.length % 16 !== 0) throw new CapframeError('invalid_argument', 'revocation list length must be a multiple of 16');
    let added = 0;
    for (let i = 0; i < ids.length; i += 16) if (this.revoke(ids.subarray(i, i + 16))) added++;
    return added;
  }

  isRevoked(cti: Uint8Array): boolean {
    if (cti.length !== 16) throw new CapframeError('invalid_argument', 'token id (cti) must be 16 bytes');
    return this.revoked.has(bytesKey(cti));
  }

  countRevoked(ids: Uint8Array): number {
    if (ids.length % 16 !== 0) throw new CapframeError('invalid_argument', 'id list length must be a multiple of 16');
    let n = 0;
    for (let i = 0; i < ids.length; i += 16) if (this.revoked.has(bytesKey(ids.subarray(i, i + 16)))) n++;
    return n;
  }

  revokedCount(): number {
    return this.revoked.size;
  }

  clearCache(): void {
    this.cache.clear();
  }

  verify(token: Uint8Array, now: number): number {
    return this.check(token, now).code;
  }

  verifyBatch(tokens: Uint8Array, offsets: Uint32Array, now: number): Uint32Array {
    const codes = new Uint32Array(Math.max(0, offsets.length - 1));
    for (let i = 0; i < codes.length; i++) {
      const start = offsets[i]!;
      const end = offsets[i + 1]!;
      if (end < start || end > tokens.length) throw new CapframeError('invalid_argument', 'batch offsets out of range');
      codes[i] = this.verify(tokens.subarray(start, end), now);
    }
    return codes;
  }

  verifyProof(token: Uint8Array, proof: Uint8Array, tool: string, argsHash: Uint8Array, audience: string | undefined, nowMs: number, nonceOut: Uint8Array): number {
    if (nonceOut.length !== 16) throw new CapframeError('invalid_argument', 'nonceOut must be 16 bytes');
    const { code, verdict } = this.check(token, nowMs / 1000);
    if (code !== Code.ok) return code;
    const failed = (why: ProofFailure) => pack(Code.bad_proof, why);
    const holder = verdict!.holder;
    if (holder === undefined) return failed(ProofFailure.NotBound);
    const p = parseProof(proof);
    if (typeof p === 'number') return failed(p);
    const holderKey = (verdict!.holderKey ??= { prepared: prepareHolderKey(holder), kid: keyId(holder) });
    // Cheap comparisons first, so junk proofs cost no signature check.
    if (!sameBytes(p.kid, holderKey.kid)) return failed(ProofFailure.WrongKey);
    if (!sameBytes(p.cti, verdict!.cti)) return failed(ProofFailure.WrongToken);
    if (!sameBytes(p.tool, textEncoder.encode(tool))) return failed(ProofFailure.WrongTool);
    if (!sameBytes(p.argsHash, argsHash)) return failed(ProofFailure.WrongArgs);
    if (Math.abs(nowMs - p.iat) > PROOF_SKEW_MS) return failed(ProofFailure.Stale);
    if (p.aud !== undefined) {
      if (audience === undefined) return failed(ProofFailure.UnexpectedAudience);
      if (!sameBytes(p.aud, textEncoder.encode(audience))) return failed(ProofFailure.WrongAudience);
    } else if (audience !== undefined) {
      return failed(ProofFailure.MissingAudience);
    }
    if (holderKey.prepared === undefined || !verifyStrict(holderKey.prepared, sigStructure(p.protectedBytes, p.payload), p.signature)) return failed(ProofFailure.BadSignature);
    nonceOut.set(p.nonce);
    return Code.ok;
  }

  /** The packed result and, when OK, the verdict (cached or new). */
  private check(token: Uint8Array, now: number): { code: number; verdict?: Verdict } {
    const cacheKey = bytesKey(token);
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) {
      const code = this.timeAndRevocation(hit.links, now);
      return code === Code.ok ? { code, verdict: hit } : { code };
    }
    const links = parseChain(token, this.maxDepth);
    if (typeof links === 'number') return { code: links };
    const last = links.length - 1;
    const root = links[last]!;
    const key = this.keys.get(bytesKey(root.kid));
    if (key === undefined) return { code: pack(Code.unknown_key, 0, last) };
    if (!verifyStrict(key, sigStructure(root.protectedBytes, root.payload), root.signature)) return { code: pack(Code.bad_signature, 0, last) };
    for (let i = last - 1; i >= 0; i--) {
      // parseChain saw that every parent names a holder key, canonical and not of small order.
      const signer = prepareHolderKey(links[i + 1]!.holder!);
      const link = links[i]!;
      if (signer === undefined || !verifyStrict(signer, sigStructure(link.protectedBytes, link.payload), link.signature)) {
        return { code: pack(Code.bad_signature, 0, i) };
      }
    }
    const verdict: Verdict = {
      links: links.map((l) => ({ exp: l.exp, nbf: l.nbf, cti: bytesKey(l.cti) })),
      cti: new Uint8Array(links[0]!.cti),
      holder: links[0]!.holder === undefined ? undefined : new Uint8Array(links[0]!.holder),
    };
    const code = this.timeAndRevocation(verdict.links, now);
    if (code !== Code.ok) return { code };
    // Bounded memory with no bookkeeping; a cold cache only costs speed.
    if (this.cache.size >= this.cacheCapacity) this.cache.clear();
    this.cache.set(cacheKey, verdict);
    return { code, verdict };
  }

  /** Expiry, nbf and revocation of every link, from the root down to the presented token. */
  private timeAndRevocation(links: LinkTimes[], now: number): number {
    for (let i = links.length - 1; i >= 0; i--) {
      const v = links[i]!;
      if (now >= v.exp) return pack(Code.expired, 0, i);
      if (v.nbf !== undefined && now < v.nbf) return pack(Code.not_yet_valid, 0, i);
      if (this.revoked.has(v.cti)) return pack(Code.revoked, 0, i);
    }
    return Code.ok;
  }
}

export const jsBackend: Backend = {
  name: 'js',
  createVerifierCore: (cacheCapacity = DEFAULT_CACHE_CAPACITY, maxDepth = DEFAULT_MAX_DEPTH) => new JsVerifierCore(cacheCapacity, checkMaxDepth(maxDepth)),
  ed25519VerifyStrict(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64 || !isValidPoint(publicKey)) return false;
    return verifyStrict(prepareKey(publicKey), message, signature);
  },
};
