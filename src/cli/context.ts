/** Where CLI commands find the policy and the state directory. */
import { resolve } from 'node:path';

import { loadPolicy } from '../policy/index.js';
import type { Policy } from '../policy/types.js';
import { openFileStore, type FileStore } from '../store/file-store.js';

export interface StoreOptions {
  policy?: string;
  stateDir?: string;
}

/**
 * The state directory: the policy's `state_dir` when `--policy` is given, else
 * `--state-dir`, else `CAPFRAME_STATE_DIR`, else `.capframe` in the working directory.
 */
export async function openStore(options: StoreOptions): Promise<{ store: FileStore; policy?: Policy }> {
  if (options.policy !== undefined) {
    const policy = await loadPolicy(options.policy);
    return { store: openFileStore(policy.stateDir), policy };
  }
  const dir = options.stateDir ?? process.env.CAPFRAME_STATE_DIR ?? '.capframe';
  return { store: openFileStore(resolve(dir)) };
}
