/**
 * UpstreamPool.catalog(): every tool a server listed, served or not, with its pin state —
 * what the operator console shows — against real upstream processes.
 */
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { listServer } from '../../src/discover/discover.js';
import { lockEntries, type LockFile } from '../../src/discover/lock.js';
import { createLogger } from '../../src/proxy/log.js';
import { UpstreamPool } from '../../src/proxy/upstreams.js';
import { toolsView } from '../../src/console/tools-view.js';
import { ROOT } from '../helpers.js';

const log = createLogger({ write: () => undefined });
const database = { command: process.execPath, args: [join(ROOT, 'examples', 'servers', 'database.js')] };
const hostile = { command: process.execPath, args: [join(ROOT, 'test', 'fixtures', 'hostile.js')] };
const pools: UpstreamPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function pool(...args: ConstructorParameters<typeof UpstreamPool>): UpstreamPool {
  const p = new UpstreamPool(...args);
  pools.push(p);
  return p;
}

describe('UpstreamPool.catalog', () => {
  it('pin state from the lock: locked, drifted, not in the lock, and locked tools no longer listed', async () => {
    const listed = await listServer('database', database, { timeoutMs: 15_000 });
    const query = listed.tools.find((t) => t.name === 'query')!;
    const update = listed.tools.find((t) => t.name === 'update')!;
    const lock: LockFile = {
      version: 1,
      algorithm: 'sha256',
      canonicalization: 'RFC 8785',
      tools: lockEntries('database', [query, { ...update, description: 'what was reviewed' }, { name: 'gone', inputSchema: { type: 'object' } }]),
    };
    const p = pool({ database, hostile }, { cwd: ROOT, defaultTimeoutMs: 15_000, lock, log });
    await p.start();
    const [db, host] = p.catalog();
    expect(db).toMatchObject({ server: 'database', up: true, restarts: 0, lockedMissing: ['gone'] });
    const byName = Object.fromEntries(db!.tools.map((t) => [t.name, t]));
    expect(byName.query).toMatchObject({ status: 'served', pin: 'locked' });
    expect(byName.query!.definition?.description).toBe(query.description);
    expect(byName.update).toMatchObject({ status: 'held', pin: 'drifted', reason: expect.stringMatching(/changed since it was locked \(description\)/) });
    expect(byName.update!.definition).toBeUndefined();
    // A server the lock does not know: every tool held back until reviewed.
    expect(host!.tools.length).toBeGreaterThan(0);
    expect(host!.tools.every((t) => t.status === 'held' && t.pin === 'not_in_lock')).toBe(true);
  });

  it('screening without a lock: poisoned definitions withheld, reviewed ones served with their findings named; the view escapes hidden characters', async () => {
    const p = pool({ hostile }, { cwd: ROOT, defaultTimeoutMs: 15_000, log, screen: () => ({ tools: true, allow: ['hostile.reviewed'] }) });
    await p.start();
    const tools = Object.fromEntries(p.catalog()[0]!.tools.map((t) => [t.name, t]));
    expect(tools.echo).toMatchObject({ status: 'served', pin: 'no_lock' });
    expect(tools.echo).not.toHaveProperty('reason');
    expect(tools.poisoned).toMatchObject({ status: 'withheld', reason: expect.stringMatching(/CF-PROMPT-001/) });
    expect(tools.hidden).toMatchObject({ status: 'withheld', reason: expect.stringMatching(/CF-UNICODE-001/) });
    expect(tools.reviewed?.status).toBe('served');
    expect(tools.reviewed?.reason).toMatch(/screened/);

    const view = toolsView(p.catalog()).servers[0]!;
    const hidden = view.tools.find((t) => t.name === 'hostile.hidden')!;
    expect(hidden.description).toContain('\\u{200b}');
    expect(hidden.description).not.toMatch(/[\u200B\u202E]/);
    expect(hidden.findings.map((f) => f.rule)).toContain('CF-UNICODE-001');
    expect(view.tools.find((t) => t.name === 'hostile.poisoned')!.risk).toBe('high');
  });
});
