import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { BadCursor, fileLedger } from '../../src/console/ledger.js';
import { tempDir } from '../helpers.js';

function store() {
  const dir = tempDir('capframe-ledger-');
  return { dir, paths: { issuerKey: join(dir, 'issuer.key'), trustedKeys: join(dir, 'trusted.keys'), revocations: join(dir, 'revocations.log'), ledger: join(dir, 'tokens.jsonl') } };
}

const entry = (i: number) => ({ id: `tok_${String(i).padStart(22, 'A')}`, token: `cf1.secret-token-${i}`, tool: 'database.query', agent: 'bot', exp: 2000 + i, iat: 1000 + i });

describe('fileLedger', () => {
  it('lists issued tokens newest first, page by page, without the printable token', async () => {
    const s = store();
    writeFileSync(s.paths.ledger, Array.from({ length: 5 }, (_, i) => `${JSON.stringify(entry(i))}\n`).join(''));
    const ledger = fileLedger(s);
    const first = await ledger.issued({ limit: 2 });
    expect(first.items.map((t) => t.id)).toEqual([entry(4).id, entry(3).id]);
    expect(first.items[0]).toEqual({ id: entry(4).id, tool: 'database.query', agent: 'bot', iat: 1004, exp: 2004 });
    const second = await ledger.issued({ limit: 2, before: first.next! });
    const third = await ledger.issued({ limit: 2, before: second.next! });
    expect([...second.items, ...third.items].map((t) => t.id)).toEqual([entry(2).id, entry(1).id, entry(0).id]);
    expect(third.next).toBeUndefined();
    expect(JSON.stringify([first, second, third])).not.toContain('cf1.');
  });

  it('skips a torn last line and damaged lines; a missing file is an empty list', async () => {
    const s = store();
    const ledger = fileLedger(s);
    expect(await ledger.issued({ limit: 10 })).toEqual({ items: [] });
    expect(await ledger.revocations({ limit: 10 })).toEqual({ items: [] });
    writeFileSync(s.paths.ledger, `${JSON.stringify(entry(0))}\nnot json\n{"id":1}\n${JSON.stringify(entry(1))}\n{"id":"tok_torn`);
    expect((await ledger.issued({ limit: 10 })).items.map((t) => t.id)).toEqual([entry(1).id, entry(0).id]);
  });

  it('lists revocations newest first and refuses cursors it never handed out', async () => {
    const s = store();
    appendFileSync(s.paths.revocations, 'tok_AAAAAAAAAAAAAAAAAAAAAA 2026-01-01T00:00:00.000Z\ntok_BBBBBBBBBBBBBBBBBBBBBB 2026-01-02T00:00:00.000Z\n');
    const ledger = fileLedger(s);
    expect((await ledger.revocations({ limit: 10 })).items).toEqual([
      { id: 'tok_BBBBBBBBBBBBBBBBBBBBBB', time: '2026-01-02T00:00:00.000Z' },
      { id: 'tok_AAAAAAAAAAAAAAAAAAAAAA', time: '2026-01-01T00:00:00.000Z' },
    ]);
    for (const before of ['-1', '1e3', '99999', ' 1', '01']) await expect(ledger.revocations({ limit: 1, before })).rejects.toThrow(BadCursor);
  });
});
