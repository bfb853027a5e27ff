import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { sha256Hex } from '../../src/audit/canonical-json.js';
import { GENESIS_PREV } from '../../src/audit/record.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { openAuditLog } from '../../src/audit/writer.js';
import { entry, tempDir, writeLog } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let path: string;
/** The 10 lines of a valid log, without their "\n". */
let lines: string[];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  path = join(dir, 'audit.log');
  await writeLog(path, 10);
  lines = (await readFile(path, 'utf8')).slice(0, -1).split('\n');
});
afterEach(async () => {
  await cleanup();
});

async function rewrite(newLines: string[], trailingNewline = true): Promise<void> {
  await writeFile(path, newLines.join('\n') + (trailingNewline ? '\n' : ''));
}

/** Replaces the first occurrence of `from` in line `k` (1-based) by `to`, same length. */
function edit(k: number, from: string, to: string): string[] {
  const copy = [...lines];
  const line = copy[k - 1]!;
  expect(line.includes(from)).toBe(true);
  copy[k - 1] = line.replace(from, to);
  return copy;
}

describe('verifyAuditLog', () => {
  it('accepts an intact log and reports its head', async () => {
    expect(await verifyAuditLog(path)).toEqual({
      ok: true,
      lines: 10,
      lastSeq: 10,
      head: sha256Hex(lines[9]!),
    });
  });

  it('accepts an empty log', async () => {
    await writeFile(path, '');
    expect(await verifyAuditLog(path)).toEqual({ ok: true, lines: 0, lastSeq: 0, head: GENESIS_PREV });
  });

  it('throws audit_log_not_found for a missing file', async () => {
    const missing = join(dir, 'nope.log');
    await expect(verifyAuditLog(missing)).rejects.toMatchObject({
      code: 'audit_log_not_found',
      message: `audit log not found: ${missing}`,
    });
  });

  describe('an edited line k is reported as k', () => {
    it('one byte of the reason in a middle line (JSON still valid)', async () => {
      await rewrite(edit(5, 'no capability', 'no capabilitY'));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 5,
        problem: 'line 6 records a different hash for this line: this line was modified',
      });
    });

    it('one byte of the second-to-last line', async () => {
      await rewrite(edit(9, '"latency_us":19', '"latency_us":18'));
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 9 });
    });

    it('one byte of the first line', async () => {
      await rewrite(edit(1, 'agent-1', 'agent-2'));
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 1 });
    });

    it('a byte that breaks the JSON', async () => {
      await rewrite(edit(4, '"seq":4,', '"seq":4;'));
      expect(await verifyAuditLog(path)).toEqual({ ok: false, line: 4, problem: 'not valid JSON' });
    });

    it('its prev hash', async () => {
      const prev = (JSON.parse(lines[6]!) as { prev: string }).prev;
      const flipped = (prev[0] === 'a' ? 'b' : 'a') + prev.slice(1);
      await rewrite(edit(7, prev, flipped));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 7,
        problem: 'prev does not match the hash of line 6, and line 8 does not chain to this line: this line was modified',
      });
    });

    it('the prev of the first line', async () => {
      await rewrite(edit(1, GENESIS_PREV, `1${GENESIS_PREV.slice(1)}`));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 1,
        problem: 'prev is not 64 zeros: the first line was modified',
      });
    });

    it('its seq', async () => {
      await rewrite(edit(6, '"seq":6,', '"seq":8,'));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 6,
        problem: 'seq is 8, expected 6, though prev matches the line before: this line was modified',
      });
    });

    it('a field of the last line, caught by the record checks', async () => {
      await rewrite(edit(10, '"decision":"allow"', '"decision":"allaw"'));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 10,
        problem: 'field "decision" is not "allow", "deny", "outcome" or "restart"',
      });
    });

    it('logged arguments of the last line, caught by args_sha256', async () => {
      const logged = join(dir, 'args.log');
      const log = await openAuditLog(logged, { logArgs: true });
      log.append(entry(1));
      log.append(entry(2));
      await log.close();
      const text = await readFile(logged, 'utf8');
      await writeFile(logged, text.replace('"sql":"SELECT 2"', '"sql":"SELECT 3"'));
      expect(await verifyAuditLog(logged)).toEqual({
        ok: false,
        line: 2,
        problem: 'field "args" does not match "args_sha256"',
      });
    });

    it('the last line re-serialized: whitespace, reordered keys, re-escaped text, duplicate keys', async () => {
      const last = JSON.parse(lines[9]!) as Record<string, unknown>;
      const variants: [string, string][] = [
        [`${lines[9]!} `, 'not in the exact form the writer produces (whitespace, escapes or duplicate keys changed)'],
        [JSON.stringify(last, null, 1).replace(/\n/g, ''), 'not in the exact form the writer produces (whitespace, escapes or duplicate keys changed)'],
        [JSON.stringify({ seq: last.seq, ...last }), 'fields are not in the order the writer uses'],
        [lines[9]!.replace('"tool":"database.query"', '"tool":"database\\u002equery"'), 'not in the exact form the writer produces (whitespace, escapes or duplicate keys changed)'],
        [lines[9]!.replace('"decision":"allow"', '"decision":"deny","decision":"allow"'), 'not in the exact form the writer produces (whitespace, escapes or duplicate keys changed)'],
      ];
      for (const [variant, problem] of variants) {
        expect(variant).not.toBe(lines[9]);
        await rewrite([...lines.slice(0, 9), variant]);
        expect({ variant, result: await verifyAuditLog(path) }).toEqual({ variant, result: { ok: false, line: 10, problem } });
      }
    });

    it('an unknown field or invalid UTF-8', async () => {
      await rewrite(edit(3, '"agent"', '"agenX"'));
      expect(await verifyAuditLog(path)).toEqual({ ok: false, line: 3, problem: 'unknown field "agenX"' });
      const bytes = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
      const at = bytes.indexOf('capability token', bytes.indexOf('"seq":5,'));
      bytes[at] = 0xff;
      await writeFile(path, bytes);
      expect(await verifyAuditLog(path)).toEqual({ ok: false, line: 5, problem: 'not valid UTF-8' });
    });
  });

  describe('outcome lines and omitted arguments (a log written since outcomes exist)', () => {
    async function mixedLog(): Promise<string[]> {
      const log = await openAuditLog(path, { logArgs: true });
      const decided = log.append(entry(2));
      log.append({ agent: decided.agent, tool: decided.tool, decision: 'outcome', ofSeq: decided.seq, code: 'upstream_timeout', tokenId: decided.token_id, argsSha256: decided.args_sha256, latencyUs: 9, reason: 'may have run' });
      log.append(entry(4, { args: { blob: 'y'.repeat(10_000) } }));
      log.append(entry(5));
      await log.close();
      return (await readFile(path, 'utf8')).slice(0, -1).split('\n');
    }

    it('a log mixing old-style lines, outcome lines and omitted arguments verifies', async () => {
      const all = await mixedLog();
      expect(all).toHaveLength(14);
      expect(all[11]).toContain('"decision":"outcome"');
      expect(all[12]).toContain('"args_omitted":');
      expect(await verifyAuditLog(path)).toMatchObject({ ok: true, lines: 14, lastSeq: 14 });
    });

    it('an outcome pointing forward or on the wrong kind of line, and a bad args_omitted, are caught on the last line', async () => {
      const all = await mixedLog();
      const outcome = all[11]!;
      const omitted = all[12]!;
      // [line number, edited line, problem]; each edit is made the last line of the log.
      const variants: [number, string, string][] = [
        [12, outcome.replace('"of_seq":11', '"of_seq":12'), 'field "of_seq" is not the seq of an earlier line'],
        [12, outcome.replace('"decision":"outcome"', '"decision":"allow"'), 'field "of_seq" does not belong on a "allow" line'],
        [12, outcome.replace(/"of_seq":11,/, ''), 'missing field "of_seq"'],
        [13, omitted.replace(/"args_sha256":"[0-9a-f]{64}"/, '"args_sha256":null'), 'field "args_omitted" without an "args_sha256"'],
        [13, omitted.replace(/"args_omitted":\d+/, '"args_omitted":-1'), 'field "args_omitted" is not a non-negative integer'],
      ];
      for (const [k, variant, problem] of variants) {
        expect(variant).not.toBe(all[k - 1]);
        await writeFile(path, `${[...all.slice(0, k - 1), variant].join('\n')}\n`);
        expect({ variant, result: await verifyAuditLog(path) }).toEqual({ variant, result: { ok: false, line: k, problem } });
      }
    });
  });

  describe('a deleted line is reported where the chain breaks', () => {
    it('a middle line', async () => {
      await rewrite(lines.filter((_, i) => i !== 3)); // line 4 removed: old line 5 is now line 4
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 4,
        problem: 'chain broken: seq jumps from 3 to 5 and prev does not match line 3: line(s) deleted before this line',
      });
    });

    it('several middle lines', async () => {
      await rewrite([...lines.slice(0, 2), ...lines.slice(6)]);
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 3, problem: expect.stringContaining('from 2 to 7') });
    });

    it('the first line', async () => {
      await rewrite(lines.slice(1));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 1,
        problem: 'first line has seq 2 and does not start the chain: lines were deleted from the start',
      });
    });

    it('the last line cannot be detected by the chain alone, but changes the head', async () => {
      await rewrite(lines.slice(0, 9));
      expect(await verifyAuditLog(path)).toEqual({ ok: true, lines: 9, lastSeq: 9, head: sha256Hex(lines[8]!) });
    });
  });

  describe('swapped lines are reported at the first of them', () => {
    it('two middle lines', async () => {
      await rewrite([...lines.slice(0, 3), lines[4]!, lines[3]!, ...lines.slice(5)]);
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 4,
        problem: 'lines out of order: seq 5 follows seq 3 and line 5 has seq 4',
      });
    });

    it('the last two lines', async () => {
      await rewrite([...lines.slice(0, 8), lines[9]!, lines[8]!]);
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 9, problem: expect.stringContaining('out of order') });
    });

    it('the first two lines', async () => {
      await rewrite([lines[1]!, lines[0]!, ...lines.slice(2)]);
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 1 });
    });

    it('a line moved back', async () => {
      await rewrite([...lines.slice(0, 2), lines[6]!, ...lines.slice(2, 6), ...lines.slice(7)]);
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 3 });
    });
  });

  describe('a truncated last line is reported as that line', () => {
    it('cut in the middle', async () => {
      const text = `${lines.join('\n')}\n`;
      await writeFile(path, text.slice(0, text.length - 30));
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 10,
        problem: 'line is incomplete (no trailing newline): the log was truncated',
      });
    });

    it('only its newline removed', async () => {
      await rewrite(lines, false);
      expect(await verifyAuditLog(path)).toMatchObject({ ok: false, line: 10, problem: expect.stringContaining('incomplete') });
    });
  });

  describe('inserted and duplicated lines', () => {
    it('a forged line that chains to its predecessor is reported as the forged line', async () => {
      const forged = JSON.parse(lines[3]!) as Record<string, unknown>;
      forged.reason = 'forged';
      forged.decision = 'allow';
      const forgedLine = JSON.stringify(forged); // same seq and prev as line 4: chains to line 3
      await rewrite([...lines.slice(0, 3), forgedLine, ...lines.slice(3)]);
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 4,
        problem: 'line 5 chains to line 3 with the same seq 4: this line was inserted',
      });
    });

    it('a repeated line', async () => {
      await rewrite([...lines.slice(0, 6), lines[4]!, ...lines.slice(6)]);
      expect(await verifyAuditLog(path)).toEqual({
        ok: false,
        line: 7,
        problem: 'seq 5 does not follow seq 6: lines reordered or duplicated',
      });
    });

    it('an empty line', async () => {
      await rewrite([...lines.slice(0, 2), '', ...lines.slice(2)]);
      expect(await verifyAuditLog(path)).toEqual({ ok: false, line: 3, problem: 'not valid JSON' });
    });
  });

  describe('properties over random logs', () => {
    const logs = new Map<number, string[]>();
    async function logOf(n: number): Promise<string[]> {
      let cached = logs.get(n);
      if (cached === undefined) {
        const p = join(dir, `gen-${n}.log`);
        await writeLog(p, n);
        cached = (await readFile(p, 'utf8')).slice(0, -1).split('\n');
        logs.set(n, cached);
      }
      return cached;
    }
    const check = async (newText: string | Buffer): Promise<unknown> => {
      await writeFile(path, newText);
      return verifyAuditLog(path);
    };

    it('changing any one byte of any line but the last reports that line', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 2, max: 12 }),
          fc.nat(),
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          async (n, lineSeed, offsetSeed, delta) => {
            const log = await logOf(n);
            const k = (lineSeed % (n - 1)) + 1; // 1..n-1
            const bytes = Buffer.from(`${log.join('\n')}\n`, 'utf8');
            let start = 0;
            for (let i = 0; i < k - 1; i++) start += Buffer.byteLength(log[i]!) + 1;
            const at = start + (offsetSeed % Buffer.byteLength(log[k - 1]!));
            bytes[at] = (bytes[at]! + delta) % 256;
            const result = await check(bytes);
            expect(result).toMatchObject({ ok: false, line: k });
          },
        ),
        { numRuns: 300 },
      );
    });

    it('deleting any line but the last reports the line that follows the gap', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 2, max: 12 }), fc.nat(), async (n, seed) => {
          const log = await logOf(n);
          const k = (seed % (n - 1)) + 1;
          const result = await check(`${log.filter((_, i) => i !== k - 1).join('\n')}\n`);
          expect(result).toMatchObject({ ok: false, line: k });
        }),
        { numRuns: 100 },
      );
    });

    it('swapping any two adjacent lines reports the first of them', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 2, max: 12 }), fc.nat(), async (n, seed) => {
          const log = [...(await logOf(n))];
          const k = (seed % (n - 1)) + 1;
          [log[k - 1], log[k]] = [log[k]!, log[k - 1]!];
          const result = await check(`${log.join('\n')}\n`);
          expect(result).toMatchObject({ ok: false, line: k });
        }),
        { numRuns: 100 },
      );
    });
  });

  it('streams a large log', async () => {
    const big = join(dir, 'big.log');
    const log = await openAuditLog(big, { logArgs: true });
    for (let i = 1; i <= 3000; i++) log.append(entry(i, { args: { pad: 'p'.repeat(i % 700) } }));
    await log.close();
    expect(await verifyAuditLog(big)).toMatchObject({ ok: true, lines: 3000, lastSeq: 3000 });
  });
});
