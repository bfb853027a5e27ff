/**
 * Backend selection: native when the addon loads, else TypeScript.
 * `CAPFRAME_BACKEND=js|native` forces one; forcing native when it cannot load is an
 * error that says why (a silent fallback would hide a broken deployment).
 */
import { CapframeError } from '../errors.js';
import { jsBackend } from './js.js';
import { loadNativeBackend, type NativeInfo } from './native.js';
import type { Backend, BackendName } from './types.js';

export interface BackendStatus {
  name: BackendName;
  /** Why this backend is active, in a sentence. */
  reason: string;
  /** Present when the native addon is loaded. */
  native?: NativeInfo;
  /** Why the native addon did not load, when it did not. */
  nativeError?: string;
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
    const reason = forced === 'native' ? 'forced by CAPFRAME_BACKEND=native' : 'native addon loaded';
    return { backend, status: { name: 'native', reason, native: info } };
  } catch (error) {
    const why = (error as Error).message;
    if (forced === 'native') {
      throw new CapframeError('backend_unavailable', `CAPFRAME_BACKEND=native but the native addon cannot load: ${why}`);
    }
    return { backend: jsBackend, status: { name: 'js', reason: `fallback: ${why}`, nativeError: why } };
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
