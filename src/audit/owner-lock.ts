/**
 * One writer per audit log: two processes appending to one file would interleave
 * two hash chains. `<log>.lock` holds the owner's pid; a lock whose process is gone
 * is stale and taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

import { CapframeError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock for `logPath` or throws naming the process that holds it; returns the release function. */
export function lockAuditLog(logPath: string): () => void {
  const lock = `${logPath}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => rmSync(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CapframeError('audit_log_failed', `cannot lock ${logPath}: ${(error as Error).message}`);
      }
      const owner = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      if (Number.isSafeInteger(owner) && owner > 0 && alive(owner)) {
        throw new CapframeError(
          'audit_log_failed',
          `audit log ${logPath} is in use by process ${owner}; give each capframe process its own log (serve --audit-log <file>, or audit.path in the policy)`,
        );
      }
      rmSync(lock, { force: true }); // stale: its owner is gone
    }
  }
  throw new CapframeError('audit_log_failed', `cannot lock ${logPath}: another process keeps taking the lock`);
}
