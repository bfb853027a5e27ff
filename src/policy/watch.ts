/**
 * Hot reload: watch a policy file and swap in each new valid version. An invalid
 * or unreadable new version is reported through `onError` and the running
 * policy stays in force (SPEC §3).
 *
 * The directory is watched, not the file, because editors and deploy tools
 * replace files by rename, which ends a watch on the old inode.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';

import { CapframeError } from '../errors.js';
import { loadPolicySync, parsePolicy } from './load.js';
import type { Policy } from './types.js';

/** Quiet period before a change is read: editors write in several steps. */
export const RELOAD_DEBOUNCE_MS = 100;

export interface PolicyWatcher {
  /** The policy in force. */
  current(): Policy;
  /** Re-reads the file now (e.g. on SIGHUP); resolves once it is applied or rejected. */
  reload(): Promise<void>;
  /** Stops watching. */
  close(): void;
}

/**
 * Loads `file` now (throwing if it is invalid) and keeps it current.
 *
 * @example
 * const w = watchPolicy('policy.yaml', {
 *   onReload: (p) => log.info(`policy reloaded: ${p.rules.length} rules`),
 *   onError: (e) => log.error(`policy not reloaded, keeping the running one: ${e.message}`),
 * });
 * process.on('SIGHUP', () => void w.reload());
 * w.current().decide({ tool: 'database.query', args: {} });
 */
export function watchPolicy(
  file: string,
  handlers: { onReload(policy: Policy): void; onError(error: Error): void },
): PolicyWatcher {
  const absolute = resolve(file);
  let policy = loadPolicySync(file);
  let lastText: string | undefined;
  try {
    lastText = readFileSync(absolute, 'utf8');
  } catch {
    lastText = undefined;
  }
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Reloads run one at a time; a change during a reload schedules one more.
  let running: Promise<void> | undefined;
  let again = false;

  async function readAndApply(): Promise<void> {
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (error) {
      // A file mid-replacement may be briefly missing; the next event retries.
      handlers.onError(new CapframeError('policy_not_found', `cannot read policy file ${file}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    if (closed || text === lastText) return;
    lastText = text;
    let next: Policy;
    try {
      next = parsePolicy(text, file);
    } catch (error) {
      handlers.onError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (closed) return;
    policy = next;
    handlers.onReload(next);
  }

  function reload(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await readAndApply();
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  const name = basename(absolute);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(absolute), { persistent: false }, (_event, changed) => {
      if (closed || (changed !== null && changed !== name)) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        void reload();
      }, RELOAD_DEBOUNCE_MS);
      timer.unref();
    });
    watcher.on('error', (error) => handlers.onError(error));
  } catch (error) {
    handlers.onError(error instanceof Error ? error : new Error(String(error)));
  }

  return {
    current: () => policy,
    reload,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
