import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { openAuditLog } from '../../src/audit/writer.js';
import { aggregate, statsReader } from '../../src/console/stats.js';
import { tempDir } from '../helpers.js';

describe('decision stats from the audit log', () => {
  it('counts per tool by decision and code, latency percentiles over decision lines, busiest first', async () => {
    const path = join(tempDir('capframe-stats-'), 'audit.log');
    const log = await openAuditLog(path);
    const line = (tool: string, decision: 'allow' | 'deny', code: string, latencyUs: number) =>
      log.append({ agent: 'bot', tool, decision, code, tokenId: null, latencyUs, reason: 'r' });
    for (let i = 1; i <= 20; i++) line('database.query', 'allow', 'ok', i * 10);
    line('database.query', 'deny', 'revoked', 5);
    const allowed = line('payments.refund', 'allow', 'ok', 100);
    log.append({ agent: 'bot', tool: 'payments.refund', decision: 'outcome', ofSeq: allowed.seq, code: 'upstream_timeout', tokenId: null, latencyUs: 9_000_000, reason: 'timeout' });
    await log.close();

    const stats = await statsReader(path)();
    expect(stats.lines).toBe(23);
    expect(stats.tools.map((t) => t.tool)).toEqual(['database.query', 'payments.refund']);
    expect(stats.tools[0]).toMatchObject({ allow: 20, deny: 1, outcome: 0, codes: { ok: 20, revoked: 1 }, p50: 100, max: 200 });
    expect(stats.tools[0]!.p95).toBe(190); // 21 values: 5, 10 … 200
    // The outcome line's upstream time is not decision latency.
    expect(stats.tools[1]).toMatchObject({ allow: 1, deny: 0, outcome: 1, p50: 100, max: 100 });
  });

  it('an empty or missing log has no figures', async () => {
    expect(aggregate([])).toEqual({ lines: 0, tools: [] });
    expect(await statsReader(join(tempDir('capframe-stats-'), 'none.log'))()).toEqual({ lines: 0, tools: [] });
  });
});
