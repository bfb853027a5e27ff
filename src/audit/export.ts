/**
 * `capframe audit export`: the audit log as raw JSON lines or as OCSF events, one per
 * line, optionally from a time or a `seq` on. Reads the file as a stream, so a large log
 * costs constant memory. A line that is not a valid audit record stops the export with
 * an error naming it: an export must not quietly leave lines out.
 */
import { createReadStream } from 'node:fs';

import { CapframeError } from '../errors.js';
import { sha256Hex } from './canonical-json.js';
import { LineSplitter } from './lines.js';
import { toOcsf } from './ocsf.js';
import { parseAuditLine, type AuditRecord } from './record.js';

export type ExportFormat = 'ocsf' | 'jsonl';

/** From where: a `seq` (that line and later ones) or a time (lines at or after it). */
export type ExportSince = { seq: number } | { time: number };

/**
 * Parses `--since`: a whole number is a `seq`, anything else must be a date or time
 * `Date.parse` reads (ISO 8601 recommended).
 *
 * @example
 * parseSince('120');                  // { seq: 120 }
 * parseSince('2026-11-21T15:00:00Z'); // { time: 1795532400000 }
 */
export function parseSince(text: string): ExportSince {
  if (/^\d+$/.test(text)) return { seq: Number(text) };
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw new CapframeError('invalid_argument', `--since expects a seq (a whole number) or a time such as 2026-11-21T15:00:00Z, got "${text}"`);
  return { time };
}

function included(record: AuditRecord, since: ExportSince | undefined): boolean {
  if (since === undefined) return true;
  return 'seq' in since ? record.seq >= since.seq : Date.parse(record.time) >= since.time;
}

/**
 * Writes the log at `path` to `write`, one line per record.
 *
 * @example
 * await exportAuditLog('.capframe/audit.log', { format: 'ocsf', since: { seq: 100 } }, (line) => process.stdout.write(line));
 */
export async function exportAuditLog(path: string, options: { format: ExportFormat; since?: ExportSince }, write: (text: string) => void): Promise<number> {
  const splitter = new LineSplitter();
  let lineNo = 0;
  let count = 0;
  const emit = (bytes: Buffer) => {
    lineNo++;
    const text = bytes.toString('utf8');
    const parsed = parseAuditLine(text);
    if (!parsed.ok) throw new CapframeError('audit_log_corrupt', `${path}: line ${lineNo} is not a valid audit record (${parsed.problem}); run \`capframe audit verify --log ${path}\``);
    if (!included(parsed.record, options.since)) return;
    write(options.format === 'jsonl' ? `${text}\n` : `${JSON.stringify(toOcsf(parsed.record, sha256Hex(bytes)))}\n`);
    count++;
  };
  try {
    for await (const chunk of createReadStream(path)) for (const line of splitter.push(chunk as Buffer)) emit(line);
  } catch (error) {
    if (error instanceof CapframeError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CapframeError(code === 'ENOENT' ? 'audit_log_not_found' : 'audit_log_failed', code === 'ENOENT' ? `audit log not found: ${path}` : `cannot read audit log ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (splitter.pending.length > 0) throw new CapframeError('audit_log_corrupt', `${path}: the last line is incomplete (no trailing newline); run \`capframe audit verify --log ${path}\``);
  return count;
}
