import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openAuditLog, type AuditEntry, type AuditLogOptions } from '../../src/audit/writer.js';

/** A fresh temporary directory; remove it with the returned cleanup. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'capframe-audit-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A plausible decision; `i` makes each one distinct. */
export function entry(i: number, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    agent: i % 3 === 0 ? null : `agent-${i % 4}`,
    tool: 'database.query',
    decision: i % 2 === 0 ? 'allow' : 'deny',
    code: i % 2 === 0 ? 'ok' : 'missing_token',
    tokenId: i % 2 === 0 ? `tok_${String(i).padStart(6, '0')}` : null,
    args: { sql: `SELECT ${i}`, limit: i },
    latencyUs: 10 + i,
    reason: i % 2 === 0 ? 'allowed by rule database.query' : 'no capability token presented',
    ...overrides,
  };
}

/** Writes `n` records with the real writer and closes the log. */
export async function writeLog(path: string, n: number, opts: AuditLogOptions = {}): Promise<void> {
  const log = await openAuditLog(path, opts);
  for (let i = 1; i <= n; i++) log.append(entry(i));
  await log.close();
}
