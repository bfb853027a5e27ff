/** The embedded store: its on-disk formats and guarantees, and following its revocation log. */
import { appendFileSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { generateKeyPair, mint } from '../../src/index.js';
import { openFileStore } from '../../src/store/file-store.js';
import { parseTokenId } from '../../src/verify/token-id.js';
import { tempDir } from '../helpers.js';

const cti = (n: number) => new Uint8Array(16).fill(n);

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('embedded file store', () => {
  it('appends revocations once each, fsynced, 0600, and reads them back in order', async () => {
    const store = openFileStore(tempDir());
    expect(await store.revoke(cti(1))).toBe(true);
    expect(await store.revoke(cti(2))).toBe(true);
    expect(await store.revoke(cti(1))).toBe(false);
    expect((await store.revokedIds()).map((x) => x[0])).toEqual([1, 2]);
    const lines = readFileSync(store.paths.revocations, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    // The on-disk format is unchanged: `tok_… <ISO time>`.
    expect(lines[0]).toMatch(/^tok_AQEBAQEBAQEBAQEBAQEBAQ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(statSync(store.paths.revocations).mode & 0o077).toBe(0);
    await store.close();
  });

  it('refuses a revocation log it cannot read, naming file and line (fail closed)', async () => {
    const store = openFileStore(tempDir());
    await store.revoke(cti(1));
    appendFileSync(store.paths.revocations, 'garbage line\n');
    await expect(store.revokedIds()).rejects.toThrow(new RegExp(`${store.paths.revocations.replace(/[.]/g, '\\.')}:2: not a revocation line`));
  });

  it('records issued tokens (written when record resolves) and finds them by id, ignoring a torn last line', async () => {
    const store = openFileStore(tempDir());
    const pair = generateKeyPair();
    const t = mint({ key: pair.secretKey, tool: 'database.query', agent: 'bot', ttl: 60 });
    await store.record(t);
    // Handed to the OS before record() resolved: another process reading the file sees it now.
    expect(readFileSync(store.paths.ledger, 'utf8')).toContain(t.id);
    appendFileSync(store.paths.ledger, '{"id":"tok_torn');
    expect(await store.findToken(t.id)).toMatchObject({ id: t.id, token: t.token, tool: 'database.query', agent: 'bot', exp: t.claims.exp });
    expect(await store.findToken('tok_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    await store.close();
    expect(statSync(store.paths.ledger).mode & 0o077).toBe(0);
  });

  it('batches ledger lines of one event-loop turn into whole lines, and close() flushes them', async () => {
    const store = openFileStore(tempDir());
    const pair = generateKeyPair();
    const minted = Array.from({ length: 500 }, () => mint({ key: pair.secretKey, tool: 'database.query', ttl: 60 }));
    await Promise.all(minted.map((t) => store.record(t)));
    await store.close();
    const lines = readFileSync(store.paths.ledger, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(minted.map((t) => t.id));
    await expect(store.record(minted[0]!)).rejects.toThrow(/closed/);
  });

  it('a follower gets the existing revocations, then each new one from another process, and is current', async () => {
    const dir = tempDir();
    const writer = openFileStore(dir);
    await writer.revoke(cti(1));
    const reader = openFileStore(dir, { pollMs: 50 });
    const seen: number[] = [];
    const states: boolean[] = [];
    const follow = reader.followRevocations({
      onRevoked: (ids) => {
        for (let i = 0; i < ids.length; i += 16) seen.push(ids[i]!);
      },
      onState: (current) => states.push(current),
    });
    await follow.ready;
    expect(seen).toEqual([1]);
    expect(reader.health()).toMatchObject({ kind: 'file', up: true });
    await writer.revoke(cti(2));
    await until(() => seen.includes(2), 'the new revocation');
    await follow.close();
    expect(states).toEqual([false, true]);
  });

  it('an unreadable line makes the feed not current, naming file and line, until the log is replaced', async () => {
    const dir = tempDir();
    const store = openFileStore(dir, { pollMs: 50 });
    await store.revoke(cti(1));
    appendFileSync(store.paths.revocations, 'garbage\n');
    const reasons: (string | undefined)[] = [];
    const follow = store.followRevocations({ onRevoked: () => undefined, onState: (current, reason) => reasons.push(current ? 'current' : reason) });
    expect(reasons.at(-1)).toMatch(/revocations\.log:2: not a revocation line: "garbage"/);
    expect(store.health()).toMatchObject({ up: false });
    // Repaired by replacing the file: read again from the start, current again.
    const fixed = join(dir, 'fixed.log');
    writeFileSync(fixed, `${readFileSync(store.paths.revocations, 'utf8').split('\n')[0]}\n`);
    renameSync(fixed, store.paths.revocations);
    await until(() => reasons.at(-1) === 'current', 'the repaired log');
    await follow.close();
  });

  it('nonces and rate limits are this process\'s own (memory)', async () => {
    const store = openFileStore(tempDir());
    expect(store.nonces.claim('n', 1000)).toBe(true);
    expect(store.nonces.claim('n', 1000)).toBe(false);
    const limit = { calls: 2, per: 60 };
    expect([store.limiter.take('k', limit), store.limiter.take('k', limit), store.limiter.take('k', limit)]).toEqual([true, true, false]);
    expect(parseTokenId('tok_AQEBAQEBAQEBAQEBAQEBAQ')).toEqual(cti(1));
  });
});
