/**
 * The Rust addon (native/), loaded from the file the napi-rs build writes for this
 * platform. The binding's shape is declared here by hand — it is the contract with
 * native/src/lib.rs — so the package type-checks on machines that cannot build it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { CapframeError } from '../errors.js';
import { checkMaxDepth, DEFAULT_MAX_DEPTH } from '../token/chain.js';
import { DEFAULT_CACHE_CAPACITY, type Backend, type VerifierCore } from './types.js';

interface NativeBinding {
  NativeVerifier: new (cacheCapacity?: number, maxDepth?: number) => VerifierCore;
  ed25519VerifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  nativeInfo(): { crateVersion: string; napiVersion: number };
}

export interface NativeInfo {
  path: string;
  crateVersion: string;
  napiVersion: number;
}

const nativeDir = fileURLToPath(new URL('../../native/', import.meta.url));

/** The addon built for this platform, e.g. `capframe-native.linux-x64-gnu.node`. */
export function nativeAddonPath(): string | undefined {
  if (!existsSync(nativeDir)) return undefined;
  const prefix = `capframe-native.${process.platform}-${process.arch}`;
  const file = readdirSync(nativeDir).find((name) => name.startsWith(prefix) && name.endsWith('.node'));
  return file === undefined ? undefined : nativeDir + file;
}

/**
 * The addon reports bad arguments as plain Errors; callers get the same CapframeError
 * codes as from the TypeScript backend (a key that is not a point is `invalid_key`).
 */
function withTypedErrors(core: VerifierCore): VerifierCore {
  const typed = <A extends unknown[], R>(code: 'invalid_key' | 'invalid_argument', fn: (...args: A) => R) => (...args: A): R => {
    try {
      return fn(...args);
    } catch (error) {
      throw new CapframeError(code, (error as Error).message);
    }
  };
  return {
    addKey: typed('invalid_key', (pk: Uint8Array) => core.addKey(pk)),
    removeKey: (kid) => core.removeKey(kid),
    revoke: typed('invalid_argument', (cti: Uint8Array) => core.revoke(cti)),
    revokeMany: typed('invalid_argument', (ids: Uint8Array) => core.revokeMany(ids)),
    isRevoked: typed('invalid_argument', (cti: Uint8Array) => core.isRevoked(cti)),
    countRevoked: typed('invalid_argument', (ids: Uint8Array) => core.countRevoked(ids)),
    revokedCount: () => core.revokedCount(),
    clearCache: () => core.clearCache(),
    verify: (token, now) => core.verify(token, now),
    verifyProof: typed('invalid_argument', (token: Uint8Array, proof: Uint8Array, tool: string, argsHash: Uint8Array, audience: string | undefined, nowMs: number, nonceOut: Uint8Array) =>
      core.verifyProof(token, proof, tool, argsHash, audience, nowMs, nonceOut),
    ),
    verifyBatch: typed('invalid_argument', (tokens: Uint8Array, offsets: Uint32Array, now: number) => core.verifyBatch(tokens, offsets, now)),
  };
}

/** Loads the addon, or throws an Error saying why it cannot be loaded. */
export function loadNativeBackend(): { backend: Backend; info: NativeInfo } {
  const path = nativeAddonPath();
  if (path === undefined) {
    throw new Error(`the native addon is not built (no capframe-native.${process.platform}-${process.arch}*.node in ${nativeDir}); run \`npm run build:native\` with cargo installed`);
  }
  const binding = createRequire(import.meta.url)(path) as NativeBinding;
  const { crateVersion, napiVersion } = binding.nativeInfo();
  const backend: Backend = {
    name: 'native',
    createVerifierCore: (cacheCapacity = DEFAULT_CACHE_CAPACITY, maxDepth = DEFAULT_MAX_DEPTH) =>
      withTypedErrors(new binding.NativeVerifier(cacheCapacity, checkMaxDepth(maxDepth))),
    ed25519VerifyStrict: (publicKey, message, signature) => binding.ed25519VerifyStrict(publicKey, message, signature),
  };
  return { backend, info: { path, crateVersion, napiVersion } };
}
