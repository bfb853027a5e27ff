import { readFileSync } from 'node:fs';
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { canonicalJson, sha256Hex } from '../../src/audit/canonical-json.js';
import { GENESIS_PREV, MAX_AUDIT_LINE_BYTES_WRITTEN } from '../../src/audit/record.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { MAX_NAME_CHARS, MAX_REASON_CHARS, openAuditLog } from '../../src/audit/writer.js';
import { CapframeError } from '../../src/errors.js';
import { entry, tempDir, writeLog } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await cleanup();
});

async function fileLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

describe('openAuditLog', () => {
  it('writes one JSON object per line, fields in order, chained by the previous line’s bytes', async () => {
    const path = join(dir, 'state', 'audit.log'); // parent directory is created
    const log = await openAuditLog(path);
    const first = log.append(entry(1, { time: new Date('2026-01-02T03:04:05.678Z') }));
    const second = log.append(entry(2, { latencyUs: 12.6 }));
    expect(log.lastSeq).toBe(2);
    await log.close();

    const lines = await fileLines(path);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      '{"time":"2026-01-02T03:04:05.678Z","seq":1,"agent":"agent-1","tool":"database.query","decision":"deny",' +
        `"code":"missing_token","token_id":null,"args_sha256":"${sha256Hex('{"limit":1,"sql":"SELECT 1"}')}",` +
        `"latency_us":11,"reason":"no capability token presented","prev":"${GENESIS_PREV}"}`,
    );
    expect(JSON.parse(lines[0]!)).toEqual(first);
    const rec2 = JSON.parse(lines[1]!) as Record<string, unknown>;
    expect(rec2).toEqual(second);
    expect(Object.keys(rec2)).toEqual([
      'time', 'seq', 'agent', 'tool', 'decision', 'code', 'token_id', 'args_sha256', 'latency_us', 'reason', 'prev',
    ]);
    expect(rec2.seq).toBe(2);
    expect(rec2.prev).toBe(sha256Hex(Buffer.from(lines[0]!, 'utf8')));
    expect(rec2.latency_us).toBe(13);
    expect(rec2.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(rec2.token_id).toBe('tok_000002');
    expect('args' in rec2).toBe(false);
    expect(log.head).toBe(sha256Hex(lines[1]!));
  });

  it('logs canonical arguments after args_sha256 only with logArgs', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path, { logArgs: true });
    log.append(entry(1, { args: { z: [1, 2.50], a: 'é\n' } }));
    await log.close();
    const [line] = await fileLines(path);
    expect(line).toContain(
      `"args_sha256":"${sha256Hex(canonicalJson({ a: 'é\n', z: [1, 2.5] }))}","args":{"a":"é\\n","z":[1,2.5]},"latency_us":11,`,
    );
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 1 });
  });

  it('fingerprints a decision whose arguments are not I-JSON, and says so; a line with no arguments has no hash', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path, { logArgs: true });
    const lone = log.append(entry(1, { args: { s: 'lone \ud800 surrogate' } }));
    const infinite = log.append(entry(3, { args: { n: Infinity } }));
    const none = log.append(entry(5, { args: undefined }));
    const given = log.append(entry(7, { args: undefined, argsSha256: 'ab'.repeat(32) }));
    await log.close();
    // Never null for arguments that exist: the hash of "!" + a marked form, which no
    // canonical JSON (and so no forwarded call) can share.
    expect(lone.args_sha256).toBe(sha256Hex('!{"s":"lone \\ud800 surrogate"}'));
    expect(infinite.args_sha256).toBe(sha256Hex('!{"n":"\\u0000not I-JSON: Infinity"}'));
    expect(infinite.args_sha256).not.toBe(sha256Hex(canonicalJson({ n: '\u0000not I-JSON: Infinity' })));
    expect(lone.reason).toBe('no capability token presented [arguments are not I-JSON; args_sha256 is of their marked form]');
    expect('args' in lone).toBe(false);
    expect(none.args_sha256).toBeNull();
    expect(given.args_sha256).toBe('ab'.repeat(32));
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 4 });
  });

  it('bounds every line: long names and reasons are cut, oversized logged arguments are left out with their size', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path, { logArgs: true });
    // Worst case for the field limits: every character escapes to six bytes (\u001f).
    const control = '\u001f'.repeat(100_000);
    const hostile = log.append({ agent: control, tool: control, decision: 'deny', code: control, tokenId: control, args: { x: 1 }, latencyUs: 1, reason: control });
    const big = { blob: 'x'.repeat(20_000) };
    const large = log.append(entry(2, { args: big }));
    const small = log.append(entry(4, { args: { sql: 'SELECT 1' } }));
    await log.close();
    const lines = await fileLines(path);
    for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_AUDIT_LINE_BYTES_WRITTEN);
    expect(hostile.tool).toBe(`${control.slice(0, MAX_NAME_CHARS)}…`);
    expect(hostile.agent).toHaveLength(MAX_NAME_CHARS + 1);
    expect(hostile.reason).toHaveLength(MAX_REASON_CHARS + 1);
    expect(Buffer.byteLength(lines[0]!)).toBeGreaterThan(6000); // the limits are what bounds it, not luck
    // The arguments that did not fit: hash kept, size noted, key order stable.
    expect(large.args_sha256).toBe(sha256Hex(canonicalJson(big)));
    expect('args' in large).toBe(false);
    expect(large.args_omitted).toBe(Buffer.byteLength(canonicalJson(big)));
    expect(Object.keys(JSON.parse(lines[1]!) as object)).toEqual([
      'time', 'seq', 'agent', 'tool', 'decision', 'code', 'token_id', 'args_sha256', 'args_omitted', 'latency_us', 'reason', 'prev',
    ]);
    expect(small.args).toEqual({ sql: 'SELECT 1' });
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 3 });
  });

  it('records an outcome line that points at its decision line, in the same chain', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path, { logArgs: true });
    const decided = log.append(entry(2, { args: { refund: 10 } }));
    log.append(entry(3));
    const outcome = log.append({
      agent: decided.agent,
      tool: decided.tool,
      decision: 'outcome',
      ofSeq: decided.seq,
      code: 'upstream_timeout',
      tokenId: decided.token_id,
      argsSha256: decided.args_sha256,
      latencyUs: 5_000_000,
      reason: 'upstream "payments" did not answer in time; the call was sent and may have run',
    });
    expect(() => log.append({ ...entry(4), decision: 'outcome', ofSeq: 99 })).toThrow(/ofSeq/);
    await log.close();
    const lines = await fileLines(path);
    expect(lines).toHaveLength(3);
    expect(Object.keys(JSON.parse(lines[2]!) as object)).toEqual([
      'time', 'seq', 'agent', 'tool', 'decision', 'code', 'token_id', 'args_sha256', 'of_seq', 'latency_us', 'reason', 'prev',
    ]);
    expect(outcome).toMatchObject({ seq: 3, decision: 'outcome', of_seq: 1, args_sha256: decided.args_sha256, code: 'upstream_timeout' });
    expect('args' in outcome).toBe(false); // the decision line has them
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 3 });
  });

  it('creates the file with mode 0600', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 1);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('continues seq and the chain across reopen', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 3);
    const before = await fileLines(path);
    const log = await openAuditLog(path);
    expect(log.lastSeq).toBe(3);
    expect(log.head).toBe(sha256Hex(before[2]!));
    const next = log.append(entry(4));
    await log.close();
    expect(next.seq).toBe(4);
    expect(next.prev).toBe(sha256Hex(before[2]!));
    // A third session on a log whose only record came from an earlier one.
    const single = join(dir, 'single.log');
    await writeLog(single, 1);
    const again = await openAuditLog(single);
    expect(again.append(entry(2)).seq).toBe(2);
    await again.close();
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 4, lastSeq: 4 });
    expect(await verifyAuditLog(single)).toMatchObject({ ok: true, lines: 2 });
  });

  it('refuses to extend a log whose tail is truncated or does not chain, and leaves it untouched', async () => {
    const truncated = join(dir, 'truncated.log');
    await writeLog(truncated, 3);
    const whole = await readFile(truncated);
    await writeFile(truncated, whole.subarray(0, whole.length - 20));
    await expect(openAuditLog(truncated)).rejects.toMatchObject({
      code: 'audit_log_corrupt',
      message: expect.stringContaining('last line is incomplete (no trailing newline)'),
    });
    expect((await readFile(truncated)).length).toBe(whole.length - 20);

    const swapped = join(dir, 'swapped.log');
    await writeLog(swapped, 3);
    const lines = await fileLines(swapped);
    await writeFile(swapped, `${[lines[0], lines[2], lines[1]].join('\n')}\n`);
    await expect(openAuditLog(swapped)).rejects.toMatchObject({
      code: 'audit_log_corrupt',
      message: expect.stringContaining('its last two lines do not chain'),
    });

    const garbage = join(dir, 'garbage.log');
    await writeFile(garbage, 'hello\n');
    await expect(openAuditLog(garbage)).rejects.toMatchObject({
      code: 'audit_log_corrupt',
      message: expect.stringContaining('its last line: not valid JSON'),
    });

    const notFirst = join(dir, 'not-first.log');
    await writeLog(notFirst, 2);
    await writeFile(notFirst, `${(await fileLines(notFirst))[1]}\n`);
    await expect(openAuditLog(notFirst)).rejects.toThrow(/only line is not a first line/);
  });

  it('finds the tail of a log whose last lines are longer than the read chunk', async () => {
    const path = join(dir, 'big.log');
    const log = await openAuditLog(path, { logArgs: true });
    for (let i = 1; i <= 3; i++) log.append(entry(i, { args: { blob: 'x'.repeat(150_000 + i) } }));
    await log.close();
    const reopened = await openAuditLog(path);
    expect(reopened.lastSeq).toBe(3);
    reopened.append(entry(4));
    await reopened.close();
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 4 });
  });

  it('keeps 10,000 appends in order, interleaved with flushes', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path);
    const flushes: Promise<void>[] = [];
    for (let i = 1; i <= 10_000; i++) {
      log.append(entry(i));
      if (i % 1000 === 0) flushes.push(log.flush());
      // Let writes start between bursts so batching and new appends interleave.
      if (i % 257 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(flushes);
    await log.close();
    const lines = await fileLines(path);
    expect(lines).toHaveLength(10_000);
    lines.forEach((line, i) => {
      const record = JSON.parse(line) as { seq: number; latency_us: number };
      expect(record.seq).toBe(i + 1);
      expect(record.latency_us).toBe(10 + i + 1);
    });
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 10_000 });
  });

  it('flush() makes every earlier append visible in the file', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path);
    for (let i = 1; i <= 50; i++) log.append(entry(i));
    await log.flush();
    expect(await fileLines(path)).toHaveLength(50);
    log.append(entry(51));
    await log.flush();
    expect(await fileLines(path)).toHaveLength(51);
    await log.close();
  });

  it('append after close throws, and close is idempotent', async () => {
    const log = await openAuditLog(join(dir, 'audit.log'));
    await log.close();
    await log.close();
    expect(() => log.append(entry(1))).toThrow(CapframeError);
    expect(() => log.append(entry(1))).toThrow(/is closed/);
  });

  it('a log that another writer extended with a bad line is refused on the next open', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 2);
    await appendFile(path, '{"seq":3}\n');
    await expect(openAuditLog(path)).rejects.toThrow(/missing field "time"/);
  });

  it('writes the lines of one event-loop turn together at its end; written() waits for that write', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path, { syncIntervalMs: 0 });
    for (let i = 1; i <= 1000; i++) log.append(entry(i));
    // Queued, not yet written: the decision path did not make a syscall per line.
    expect(readFileSync(path, 'utf8')).toBe('');
    const written = log.written();
    expect(log.written()).toBe(written); // one promise for the whole turn
    await written;
    // In the kernel before any fsync: what a kill -9 of the process cannot take back.
    expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(1001);
    await log.written(); // nothing pending: resolves at once
    log.append(entry(1001));
    await new Promise((r) => setImmediate(r));
    expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(1002);
    await log.close();
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 1001 });
  });

  it('a failed write rejects written() and every later append', async () => {
    const log = await openAuditLog('/dev/full', { syncIntervalMs: 0 });
    log.append(entry(1));
    await expect(log.written()).rejects.toMatchObject({ code: 'audit_log_failed', message: expect.stringMatching(/write failed/) });
    expect(() => log.append(entry(2))).toThrow(/write failed/);
    await expect(log.written()).rejects.toThrow(/write failed/);
    await expect(log.close()).rejects.toThrow(/write failed/);
  });

  it('fsyncs on its own within syncIntervalMs', async () => {
    const path = join(dir, 'audit.log');
    const log = await openAuditLog(path, { syncIntervalMs: 20 });
    log.append(entry(1));
    await log.written();
    // flush() joins or starts an fsync; with the timer it has little left to do.
    await new Promise((r) => setTimeout(r, 60));
    await log.flush();
    await log.close();
    expect(await fileLines(path)).toHaveLength(1);
  });

  it('with recoverTornTail, keeps a log torn by a crash unchanged and starts a chain naming its last good line', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 3);
    const lines = await fileLines(path);
    const torn = `${lines.join('\n')}\n${lines[2]!.slice(0, 40)}`;
    await writeFile(path, torn);
    // Refused without the option, as before.
    await expect(openAuditLog(path)).rejects.toMatchObject({ code: 'audit_log_corrupt' });

    const log = await openAuditLog(path, { recoverTornTail: true });
    expect(log.recovered).toMatchObject({ lastSeq: 3, head: sha256Hex(lines[2]!), tornBytes: 40 });
    const kept = log.recovered!.renamedTo;
    expect(kept).toMatch(/audit\.log\.damaged-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/);
    expect(await readFile(kept, 'utf8')).toBe(torn);
    expect(await verifyAuditLog(kept)).toMatchObject({ ok: false, line: 4, problem: expect.stringMatching(/incomplete/) });
    expect(log.lastSeq).toBe(1);
    log.append(entry(2));
    await log.close();

    const fresh = await fileLines(path);
    const first = JSON.parse(fresh[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      seq: 1,
      decision: 'restart',
      code: 'audit_log_damaged',
      previous_log: kept.split('/').pop(),
      previous_seq: 3,
      previous_head: sha256Hex(lines[2]!),
      prev: GENESIS_PREV,
    });
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 2, lastSeq: 2 });
    expect((await readdir(dir)).filter((f) => f.includes('damaged'))).toHaveLength(1);
  });

  it('with recoverTornTail, still refuses a log whose complete lines do not chain', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 3);
    const lines = await fileLines(path);
    await writeFile(path, `${[lines[0], lines[2], lines[1]].join('\n')}\n{"ti`);
    await expect(openAuditLog(path, { recoverTornTail: true })).rejects.toMatchObject({ code: 'audit_log_corrupt', message: expect.stringContaining('do not chain') });
    expect((await readdir(dir)).filter((f) => f.includes('damaged'))).toHaveLength(0);
  });

  it('a restart line anywhere but first is refused by verify', async () => {
    const path = join(dir, 'audit.log');
    await writeLog(path, 1);
    await writeFile(path, `${(await readFile(path, 'utf8')).trim()}\n`);
    const log = await openAuditLog(path);
    log.append(entry(2));
    await log.close();
    const [one, two] = await fileLines(path);
    const restart = JSON.stringify({ ...JSON.parse(two!), decision: 'restart' });
    await writeFile(path, `${one}\n${restart}\n`);
    expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 2 });
  });
});
