/**
 * The `via` field of decision lines asked for by a front end that does not forward (the
 * AuthZEN PDP): written where the writer puts it, read back strictly, and logs without it
 * (every log written before it existed) still verify.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { parseAuditLine } from '../../src/audit/record.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { openAuditLog } from '../../src/audit/writer.js';
import { entry, tempDir, writeLog } from './helpers.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('audit lines with via', () => {
  it('puts via after the arguments and before latency_us, and the chain verifies with old and new lines mixed', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const path = join(t.dir, 'audit.log');
    await writeLog(path, 3); // lines as every earlier version wrote them
    for (const logArgs of [false, true]) {
      const log = await openAuditLog(path, { logArgs });
      const record = log.append(entry(4, { via: 'authzen' }));
      log.append(entry(5));
      await log.close();
      const keys = Object.keys(record);
      expect(keys.indexOf('via')).toBe(keys.indexOf('latency_us') - 1);
    }
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines.filter((l) => l.includes('"via":"authzen"'))).toHaveLength(2);
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 7 });
  });

  it('refuses via on an outcome line, in the wrong place, or with a value that is not a front-end name', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const path = join(t.dir, 'audit.log');
    const log = await openAuditLog(path);
    log.append(entry(2, { via: 'authzen' }));
    await log.close();
    const line = (await readFile(path, 'utf8')).trimEnd();
    expect(parseAuditLine(line).ok).toBe(true);
    const obj = JSON.parse(line) as Record<string, unknown>;
    const rewrite = (o: Record<string, unknown>) => JSON.stringify(o);
    expect(parseAuditLine(rewrite({ ...obj, via: 'Auth Zen' }))).toMatchObject({ ok: false, problem: expect.stringContaining('"via"') });
    const { via, ...rest } = obj;
    expect(parseAuditLine(rewrite({ via, ...rest }))).toMatchObject({ ok: false, problem: expect.stringContaining('order') });
    const outcome = { ...rest, decision: 'outcome' } as Record<string, unknown>;
    const { latency_us, reason, prev, ...head } = outcome;
    expect(parseAuditLine(rewrite({ ...head, of_seq: 1, via, latency_us, reason, prev })).ok).toBe(false);
  });
});
