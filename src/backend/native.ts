/**
 * The Rust addon (native/), found the napi-rs way. In order:
 *   1. the prebuilt platform package for this exact target (`capframe-linux-x64-gnu`,
 *      an optional dependency of the published package), at Capframe's own version;
 *   2. a local build, `native/capframe-native.<target>.node` (`npm run build:native` in a
 *      checkout, `capframe build-native` in an installed package);
 *   3. nothing: select.ts falls back to the TypeScript backend.
 * The binding's shape is declared here by hand — it is the contract with
 * native/src/lib.rs — so the package type-checks on machines that cannot build it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { CapframeError } from '../errors.js';
import { isRecord } from '../lib/is-record.js';
import { PACKAGE_ROOT, packageInfo } from '../lib/package-info.js';
import { nativeTarget } from './platform-target.js';
import { checkMaxDepth, DEFAULT_MAX_DEPTH } from '../token/chain.js';
import { DEFAULT_CACHE_CAPACITY, type Backend, type VerifierCore } from './types.js';

interface NativeBinding {
  NativeVerifier: new (cacheCapacity?: number, maxDepth?: number) => VerifierCore;
  ed25519VerifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  nativeInfo(): { crateVersion: string; napiVersion: number };
}

/** `napi.binaryName` in package.json: the addon file is `<binaryName>.<target>.node`. */
export const ADDON_BINARY_NAME = 'capframe-native';

/** Where an addon came from: the platform package, or a build in native/. */
export type AddonSource = 'package' | 'local';

export interface NativeInfo {
  source: AddonSource;
  /** The `.node` file that was loaded. */
  path: string;
  /** `capframe-linux-x64-gnu@0.1.0` when the addon came from the platform package. */
  package?: string;
  crateVersion: string;
  napiVersion: number;
}

/** A place the loader looked without loading an addon from it. */
export interface AddonMiss {
  source: AddonSource;
  /** The package name, or the file path. */
  where: string;
  /** True when something is there but did not load (wrong version, broken file, …). */
  present: boolean;
  reason: string;
}

export interface NativeSearch {
  /** This machine's napi-rs target (`linux-x64-gnu`), or undefined where napi-rs has none. */
  target: string | undefined;
  /** The platform package this target would use, e.g. `capframe-linux-x64-gnu`. */
  packageName: string | undefined;
  /** The local build this target would use. */
  localPath: string | undefined;
  /** What was tried and did not load, in order. */
  misses: AddonMiss[];
  loaded?: { binding: NativeBinding; info: NativeInfo };
}

export interface NativeSearchOptions {
  /** Default: this process's target. */
  target?: string;
  /** Package name prefix; the platform package is `<name>-<target>`. Default: Capframe's name. */
  name?: string;
  /** The platform package must have exactly this version. Default: Capframe's version. */
  version?: string;
  /** A file the platform package is resolved from, as Node would. Default: this module. */
  resolveFrom?: string;
  /** Where local builds are. Default: the package's native/. */
  nativeDir?: string;
  /** Which places to try. Default: both, package first. */
  sources?: AddonSource[];
}

function asBinding(loaded: unknown): NativeBinding | undefined {
  if (!isRecord(loaded)) return undefined;
  const ok = typeof loaded.NativeVerifier === 'function' && typeof loaded.ed25519VerifyStrict === 'function' && typeof loaded.nativeInfo === 'function';
  return ok ? (loaded as unknown as NativeBinding) : undefined;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

type Attempt = { loaded: { binding: NativeBinding; info: NativeInfo } } | { miss: AddonMiss };

/** Loads a `.node` (or a package whose main is one) and checks it is Capframe's addon. */
function loadBinding(require: NodeJS.Require, id: string): { binding: NativeBinding; crateVersion: string; napiVersion: number } {
  const binding = asBinding(require(id));
  if (binding === undefined) throw new Error('not a Capframe addon');
  return { binding, ...binding.nativeInfo() };
}

function fromPackage(require: NodeJS.Require, packageName: string, version: string): Attempt {
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${packageName}/package.json`);
  } catch {
    return { miss: { source: 'package', where: packageName, present: false, reason: 'not installed' } };
  }
  const where = `${packageName} (${dirname(manifestPath)})`;
  try {
    const manifest: unknown = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const found = isRecord(manifest) ? manifest.version : undefined;
    // A platform package from another release may not match this TypeScript's
    // contract with the addon; the release pins them together, so insist on it.
    if (found !== version) throw new Error(`version ${String(found)} installed, ${version} required`);
    const path = require.resolve(packageName);
    const { binding, crateVersion, napiVersion } = loadBinding(require, packageName);
    return { loaded: { binding, info: { source: 'package', path, package: `${packageName}@${version}`, crateVersion, napiVersion } } };
  } catch (error) {
    return { miss: { source: 'package', where, present: true, reason: message(error) } };
  }
}

function fromLocalBuild(require: NodeJS.Require, path: string): Attempt {
  if (!existsSync(path)) return { miss: { source: 'local', where: path, present: false, reason: 'not built' } };
  try {
    const { binding, crateVersion, napiVersion } = loadBinding(require, path);
    return { loaded: { binding, info: { source: 'local', path, crateVersion, napiVersion } } };
  } catch (error) {
    return { miss: { source: 'local', where: path, present: true, reason: message(error) } };
  }
}

/**
 * Looks for the addon in the order above and loads the first that works. Loading is
 * for the life of the process (Node cannot unload an addon).
 *
 * @example
 * const { target, loaded, misses } = searchNativeAddon();
 * loaded?.info.source // 'package' | 'local'
 */
export function searchNativeAddon(options: NativeSearchOptions = {}): NativeSearch {
  const target = options.target ?? nativeTarget();
  if (target === undefined) return { target, packageName: undefined, localPath: undefined, misses: [] };
  const packageName = `${options.name ?? packageInfo().name}-${target}`;
  const localPath = join(options.nativeDir ?? join(PACKAGE_ROOT, 'native'), `${ADDON_BINARY_NAME}.${target}.node`);
  const version = options.version ?? packageInfo().version;
  const require = createRequire(options.resolveFrom ?? import.meta.url);
  const sources = options.sources ?? ['package', 'local'];
  const misses: AddonMiss[] = [];
  for (const source of ['package', 'local'] as const) {
    if (!sources.includes(source)) continue;
    const attempt = source === 'package' ? fromPackage(require, packageName, version) : fromLocalBuild(require, localPath);
    if ('loaded' in attempt) return { target, packageName, localPath, misses, loaded: attempt.loaded };
    misses.push(attempt.miss);
  }
  return { target, packageName, localPath, misses };
}

let defaultSearch: NativeSearch | undefined;

/** The search for this process, done once. */
export function nativeAddonSearch(): NativeSearch {
  defaultSearch ??= searchNativeAddon();
  return defaultSearch;
}

/** The addon file the native backend would load, or undefined when none loads. */
export function nativeAddonPath(): string | undefined {
  return nativeAddonSearch().loaded?.info.path;
}

/** One line saying why no addon loaded, e.g. for `CAPFRAME_BACKEND=native`. */
export function describeMisses(search: NativeSearch): string {
  if (search.target === undefined) return `no native addon exists for ${process.platform}-${process.arch}`;
  return search.misses.map((miss) => `${miss.where}: ${miss.reason}`).join('; ');
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

/** Loads the addon, or throws an Error saying where it looked and why nothing loaded. */
export function loadNativeBackend(): { backend: Backend; info: NativeInfo } {
  const search = nativeAddonSearch();
  if (search.loaded === undefined) throw new Error(describeMisses(search));
  const { binding, info } = search.loaded;
  const backend: Backend = {
    name: 'native',
    createVerifierCore: (cacheCapacity = DEFAULT_CACHE_CAPACITY, maxDepth = DEFAULT_MAX_DEPTH) =>
      withTypedErrors(new binding.NativeVerifier(cacheCapacity, checkMaxDepth(maxDepth))),
    ed25519VerifyStrict: (publicKey, message, signature) => binding.ed25519VerifyStrict(publicKey, message, signature),
  };
  return { backend, info };
}
