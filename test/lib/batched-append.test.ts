import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { openBatchedAppend } from '../../src/lib/batched-append.js';
import { tempDir } from '../helpers.js';

describe('batched append', () => {
  it('a line is in the file when append() resolves; lines keep their order across turns', async () => {
    const path = join(tempDir(), 'sub', 'log.jsonl');
    const log = openBatchedAppend(path);
    await log.append('a\n');
    expect(readFileSync(path, 'utf8')).toBe('a\n');
    await Promise.all(['b\n', 'c\n', 'd\n'].map((l) => log.append(l)));
    await log.append('e\n');
    expect(readFileSync(path, 'utf8')).toBe('a\nb\nc\nd\ne\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await log.close();
  });

  it('flush() and close() write what is queued; appends after close are refused', async () => {
    const path = join(tempDir(), 'log');
    const log = openBatchedAppend(path);
    const pending = log.append('queued\n');
    await log.flush();
    expect(readFileSync(path, 'utf8')).toBe('queued\n');
    await pending;
    const last = log.append('last\n');
    await log.close();
    await last;
    expect(readFileSync(path, 'utf8')).toBe('queued\nlast\n');
    await expect(log.append('late\n')).rejects.toThrow(/closed/);
    await log.close(); // idempotent
  });

  it('a failed write rejects every append of its batch (the caller fails closed)', async () => {
    // /dev/full accepts opens and fails every write with ENOSPC.
    const log = openBatchedAppend('/dev/full');
    const results = await Promise.allSettled([log.append('x\n'), log.append('y\n')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason.message).toMatch(/\/dev\/full: write failed: .*ENOSPC/);
    await log.close().catch(() => undefined);
  });
});
