/** `capframe audit export` as a real child process: raw JSON lines and OCSF, --since by seq and by time, refusals. */
import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { openAuditLog } from '../../src/audit/writer.js';
import { cli } from '../helpers.js';
import { entry, tempDir } from './helpers.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function sampleLog(): Promise<string> {
  const t = await tempDir();
  cleanup = t.cleanup;
  const path = join(t.dir, 'audit.log');
  const log = await openAuditLog(path);
  for (let i = 1; i <= 4; i++) log.append(entry(i, { time: new Date(Date.UTC(2026, 10, 21, 15, 0, i)) }));
  log.append({ agent: 'agent-1', tool: 'database.query', decision: 'outcome', ofSeq: 4, code: 'upstream_timeout', tokenId: null, argsSha256: null, latencyUs: 1000, reason: 'timed out', time: new Date(Date.UTC(2026, 10, 21, 15, 0, 5)) });
  log.append(entry(6, { via: 'authzen', time: new Date(Date.UTC(2026, 10, 21, 15, 0, 6)) }));
  await log.close();
  return path;
}

describe('capframe audit export', () => {
  it('--format jsonl prints the lines byte for byte; --since picks by seq or time', async () => {
    const path = await sampleLog();
    const raw = await readFile(path, 'utf8');
    const all = cli(['audit', 'export', '--format', 'jsonl', '--log', path]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe(raw);
    const lines = raw.split('\n');
    expect(cli(['audit', 'export', '--format', 'jsonl', '--log', path, '--since', '5']).stdout).toBe(`${lines[4]}\n${lines[5]}\n`);
    expect(cli(['audit', 'export', '--format', 'jsonl', '--log', path, '--since', '2026-11-21T15:00:04Z']).stdout).toBe(`${lines[3]}\n${lines[4]}\n${lines[5]}\n`);
  });

  it('--format ocsf prints one API Activity event per line, keyed by the line hash', async () => {
    const path = await sampleLog();
    const raw = (await readFile(path, 'utf8')).trimEnd().split('\n');
    const r = cli(['audit', 'export', '--format', 'ocsf', '--log', path]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(events).toHaveLength(6);
    events.forEach((e, i) => {
      expect(e.class_uid).toBe(6003);
      expect(e.type_uid).toBe(600399);
      expect(e.metadata.sequence).toBe(i + 1);
      expect(e.metadata.uid).toBe(createHash('sha256').update(raw[i]!).digest('hex'));
      expect(e.time).toBe(Date.UTC(2026, 10, 21, 15, 0, i + 1));
    });
    expect(events[0]).toMatchObject({ status_id: 2, disposition: 'Blocked', status_code: 'missing_token' }); // entry(1) is a denial
    expect(events[1]).toMatchObject({ status_id: 1, disposition: 'Allowed', status_code: 'ok', actor: { user: { name: 'agent-2' } }, api: { operation: 'tools/call', service: { name: 'database' } } });
    expect(events[4]).toMatchObject({ activity_name: 'tools/call outcome', status_code: 'upstream_timeout', metadata: { correlation_uid: '4' }, unmapped: { of_seq: 4 } });
    expect(events[4]).not.toHaveProperty('disposition');
    expect(events[5]).toMatchObject({ unmapped: { via: 'authzen' }, actor: { app_name: 'capframe authzen' } });
  });

  it('refuses a bad format, a bad --since, a missing log and a log with an invalid line (naming it)', async () => {
    const path = await sampleLog();
    expect(cli(['audit', 'export', '--format', 'csv', '--log', path]).code).not.toBe(0);
    const since = cli(['audit', 'export', '--format', 'ocsf', '--log', path, '--since', 'yesterday-ish']);
    expect(since.code).not.toBe(0);
    expect(since.stderr).toMatch(/--since expects a seq/);
    expect(cli(['audit', 'export', '--format', 'ocsf', '--log', `${path}.missing`]).stderr).toMatch(/audit log not found/);
    await appendFile(path, '{"not":"a record"}\n');
    const bad = cli(['audit', 'export', '--format', 'jsonl', '--log', path]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/line 7 is not a valid audit record/);
  });
});
