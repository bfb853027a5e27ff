/**
 * The audit chain's status for the console: `verifyAuditLog` over the whole log, run on
 * request, at most once per interval (it reads every line), shared by concurrent requests.
 */
import { stat } from 'node:fs/promises';

import { verifyAuditLog, type AuditVerification } from '../audit/verify.js';
import { CapframeError } from '../errors.js';

export type AuditStatus = (AuditVerification | { ok: false; line: 0; problem: string }) & {
  /** When this verification ran (ISO 8601). */
  checked_at: string;
  path: string;
  bytes: number;
};

/** A writer may be mid-append when the check reaches the end: such a last line is checked again after this delay. */
const SETTLE_MS = 300;

/**
 * @example
 * const status = auditStatusReader('.capframe/audit.log');
 * await status();        // { ok: true, lines: 1200, lastSeq: 1200, head: '…', checked_at: '…' }
 */
export function auditStatusReader(path: string, options: { minIntervalMs?: number } = {}): (refresh?: boolean) => Promise<AuditStatus> {
  const minInterval = options.minIntervalMs ?? 5000;
  let last: { at: number; size: number; value: AuditStatus } | undefined;
  let running: Promise<AuditStatus> | undefined;

  const once = async (): Promise<AuditStatus> => {
    const at = Date.now();
    let bytes = 0;
    try {
      bytes = (await stat(path)).size;
      let result = await verifyAuditLog(path);
      if (!result.ok && /incomplete/.test(result.problem)) {
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        result = await verifyAuditLog(path);
      }
      return { ...result, checked_at: new Date(at).toISOString(), path, bytes };
    } catch (error) {
      const problem = error instanceof CapframeError ? error.message : `cannot verify: ${(error as Error).message}`;
      return { ok: false, line: 0, problem, checked_at: new Date(at).toISOString(), path, bytes };
    }
  };

  return async (refresh = false) => {
    if (running !== undefined) return running;
    if (last !== undefined && Date.now() - last.at < minInterval) {
      // Within the interval a cached answer stands unless the log grew and a refresh is asked for.
      const size = await stat(path).then((s) => s.size, () => -1);
      if (!refresh || size === last.size) return last.value;
    }
    running = once().then((value) => {
      last = { at: Date.now(), size: value.bytes, value };
      return value;
    });
    try {
      return await running;
    } finally {
      running = undefined;
    }
  };
}
