/**
 * Backend selection: native when the addon loads (platform package, then a local
 * build; see native.ts), else TypeScript.
 * `CAPFRAME_BACKEND=js|native` forces one; forcing native when it cannot load is an
 * error that says why (a silent fallback would hide a broken deployment).
 */
import { CapframeError } from '../errors.js';
import { jsBackend } from './js.js';
import { loadNativeBackend, nativeAddonSearch, type NativeInfo, type NativeSearch } from './native.js';
import type { Backend, BackendName } from './types.js';

export interface BackendStatus {
  name: BackendName;
  /** Why this backend is active, in a sentence. */
  reason: string;
  /** Present when the native addon is loaded. */
  native?: NativeInfo;
  /** Why the native addon did not load, when it did not. */
  nativeError?: string;
  /** Where the loader looked, when it looked (not with CAPFRAME_BACKEND=js). */
  nativeSearch?: Omit<NativeSearch, 'loaded'>;
}

/** The search without the loaded binding, which stays private to the backend. */
function searched(): Omit<NativeSearch, 'loaded'> {
  const { target, packageName, localPath, misses } = nativeAddonSearch();
  return { target, packageName, localPath, misses };
}

function loadedFrom(info: NativeInfo): string {
  return info.source === 'package' ? `native addon loaded from ${info.package}` : 'native addon loaded from a local build in native/';
}

let selected: { backend: Backend; status: BackendStatus } | undefined;

function select(): { backend: Backend; status: BackendStatus } {
  const forced = process.env.CAPFRAME_BACKEND ?? '';
  if (forced !== '' && forced !== 'js' && forced !== 'native') {
    throw new CapframeError('backend_unavailable', `CAPFRAME_BACKEND must be "js" or "native", got "${forced}"`);
  }
  if (forced === 'js') {
    return { backend: jsBackend, status: { name: 'js', reason: 'forced by CAPFRAME_BACKEND=js' } };
  }
  try {
    const { backend, info } = loadNativeBackend();
    const reason = forced === 'native' ? `forced by CAPFRAME_BACKEND=native; ${loadedFrom(info)}` : loadedFrom(info);
    return { backend, status: { name: 'native', reason, native: info, nativeSearch: searched() } };
  } catch (error) {
    const why = (error as Error).message;
    if (forced === 'native') {
      throw new CapframeError('backend_unavailable', `CAPFRAME_BACKEND=native but the native addon cannot load: ${why}`);
    }
    return { backend: jsBackend, status: { name: 'js', reason: `fallback: ${why}`, nativeError: why, nativeSearch: searched() } };
  }
}

/** The active backend, chosen once per process. */
export function activeBackend(): Backend {
  selected ??= select();
  return selected.backend;
}

/** Which backend is active and why (what `capframe doctor` prints). */
export function backendStatus(): BackendStatus {
  selected ??= select();
  return selected.status;
}
