import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { AuditRecord } from '../../src/audit/record.js';
import { tailAuditLog } from '../../src/audit/tail.js';
import { openAuditLog } from '../../src/audit/writer.js';
import { entry, tempDir, writeLog } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await cleanup();
});

interface Seen {
  record: AuditRecord | null;
  line: string;
}

/** Collects what a tail reports. */
function collector(): { seen: Seen[]; onRecord: (record: AuditRecord | null, line: string) => void } {
  const seen: Seen[] = [];
  return { seen, onRecord: (record, line) => seen.push({ record, line }) };
}

/** Waits until `predicate` holds, polling; fails after `ms`. */
async function until(predicate: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('tailAuditLog', () => {
  it('reports the last N lines in order, parsed and raw', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 25);
    const raw = (await readFile(path, 'utf8')).slice(0, -1).split('\n');
    const { seen, onRecord } = collector();
    await tailAuditLog(path, { lines: 3, onRecord });
    expect(seen.map((s) => s.record?.seq)).toEqual([23, 24, 25]);
    expect(seen.map((s) => s.line)).toEqual(raw.slice(22));

    const all = collector();
    await tailAuditLog(path, { lines: 100, onRecord: all.onRecord });
    expect(all.seen).toHaveLength(25);
    const none = collector();
    await tailAuditLog(path, { lines: 0, onRecord: none.onRecord });
    expect(none.seen).toEqual([]);
    const dflt = collector();
    await tailAuditLog(path, { onRecord: dflt.onRecord });
    expect(dflt.seen.map((s) => s.record?.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  });

  it('reports an invalid line with a null record and skips an unterminated last line', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 2);
    await appendFile(path, 'not json\n{"partial":');
    const { seen, onRecord } = collector();
    await tailAuditLog(path, { lines: 2, onRecord });
    expect(seen.map((s) => s.record?.seq ?? null)).toEqual([2, null]);
    expect(seen[1]!.line).toBe('not json');
  });

  it('throws audit_log_not_found without follow', async () => {
    const path = join(dir, 'missing.log');
    await expect(tailAuditLog(path, { onRecord: () => undefined })).rejects.toMatchObject({
      code: 'audit_log_not_found',
      message: `audit log not found: ${path}`,
    });
  });

  it('follows lines appended after it started, and stops on abort', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 5);
    const { seen, onRecord } = collector();
    const stop = new AbortController();
    const done = tailAuditLog(path, { follow: true, lines: 2, onRecord, signal: stop.signal, pollIntervalMs: 1000 });
    await until(() => seen.length === 2);

    const log = await openAuditLog(path);
    log.append(entry(6));
    log.append(entry(7));
    await log.flush();
    await until(() => seen.length === 4);
    log.append(entry(8));
    await log.close();
    await until(() => seen.length === 5);
    stop.abort();
    await done;
    expect(seen.map((s) => s.record?.seq)).toEqual([4, 5, 6, 7, 8]);
  });

  it('waits for a log that does not exist yet (nor its directory), then follows it', async () => {
    const path = join(dir, 'later', 'audit.log');
    const { seen, onRecord } = collector();
    const stop = new AbortController();
    const done = tailAuditLog(path, { follow: true, onRecord, signal: stop.signal, pollIntervalMs: 20 });
    await new Promise((r) => setTimeout(r, 100));
    await writeLog(path, 3); // creates the directory and the file
    await until(() => seen.length === 3);
    stop.abort();
    await done;
    expect(seen.map((s) => s.record?.seq)).toEqual([1, 2, 3]);
  });

  it('reports a line written in two pieces once, when complete', async () => {
    const path = join(dir, 'audit.log');
    await writeFile(path, '');
    const { seen, onRecord } = collector();
    const stop = new AbortController();
    const done = tailAuditLog(path, { follow: true, onRecord, signal: stop.signal, pollIntervalMs: 20 });
    const other = join(dir, 'source.log');
    await writeLog(other, 1);
    const line = await readFile(other, 'utf8');
    await appendFile(path, line.slice(0, 40));
    await new Promise((r) => setTimeout(r, 150));
    expect(seen).toEqual([]);
    await appendFile(path, line.slice(40));
    await until(() => seen.length === 1);
    stop.abort();
    await done;
    expect(seen[0]!.line).toBe(line.slice(0, -1));
    expect(seen[0]!.record?.seq).toBe(1);
  });

  it('starts over when the log is replaced or truncated', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 3);
    const { seen, onRecord } = collector();
    const stop = new AbortController();
    const done = tailAuditLog(path, { follow: true, lines: 1, onRecord, signal: stop.signal, pollIntervalMs: 20 });
    await until(() => seen.length === 1);

    const fresh = join(dir, 'fresh.log');
    await writeLog(fresh, 2);
    await rename(fresh, path);
    await until(() => seen.length === 3);
    expect(seen.map((s) => s.record?.seq)).toEqual([3, 1, 2]);

    await writeFile(path, ''); // truncated in place
    const again = join(dir, 'again.log');
    await writeLog(again, 1);
    await new Promise((r) => setTimeout(r, 100));
    await appendFile(path, await readFile(again));
    await until(() => seen.length === 4);
    stop.abort();
    await done;
    expect(seen.map((s) => s.record?.seq)).toEqual([3, 1, 2, 1]);
  });

  it('rejects a bad line count and resolves at once when already aborted', async () => {
    const path = join(dir, 'audit.log');
    await mkdir(dir, { recursive: true });
    await writeLog(path, 1);
    await expect(tailAuditLog(path, { lines: -1, onRecord: () => undefined })).rejects.toThrow(/non-negative/);
    const stop = new AbortController();
    stop.abort();
    const { seen, onRecord } = collector();
    await tailAuditLog(path, { follow: true, lines: 5, onRecord, signal: stop.signal });
    expect(seen).toHaveLength(1);
  });
});
