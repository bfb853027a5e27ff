/**
 * The example MCP servers, run as real child processes over stdio and
 * Streamable HTTP: their tools, their behaviour, the CALL_LOG call counter and
 * TOOL_DESCRIPTION_SUFFIX.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { connectUpstream, listAllTools, type Upstream } from '../../src/mcp/connect.js';
import { ROOT, tempDir } from '../helpers.js';

const SERVERS = join(ROOT, 'examples', 'servers');
const open: Upstream[] = [];

async function start(name: string, env: Record<string, string> = {}): Promise<Upstream> {
  const up = await connectUpstream(name, { command: process.execPath, args: [join(SERVERS, `${name}.js`)], env }, { timeoutMs: 10_000 });
  open.push(up);
  return up;
}

async function call(up: Upstream, tool: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
  const result = (await up.client.callTool({ name: tool, arguments: args })) as { content: { type: string; text: string }[]; isError?: boolean };
  return { text: result.content.map((c) => c.text).join(''), isError: result.isError === true };
}

function logLines(file: string): { server: string; tool: string; args: Record<string, unknown> }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { server: string; tool: string; args: Record<string, unknown> });
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((u) => u.close()));
});

describe('example servers over stdio', () => {
  it.each([
    ['database', ['query', 'update']],
    ['payments', ['get_charge', 'refund']],
    ['filesystem', ['read_file', 'write_file']],
    ['http', ['fetch']],
    ['shell', ['exec']],
  ])('%s lists %j with realistic annotations', async (name, expected) => {
    const up = await start(name);
    const tools = await listAllTools(up.client);
    expect(tools.map((t) => t.name)).toEqual(expected);
    for (const t of tools) {
      expect(t.description).toBeTruthy();
      expect(typeof t.annotations?.readOnlyHint).toBe('boolean');
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    if (name === 'database') {
      expect(byName.query?.annotations?.readOnlyHint).toBe(true);
      expect(byName.update?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    }
    if (name === 'shell') expect(byName.exec?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, openWorldHint: true });
    if (name === 'http') expect(byName.fetch?.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: true });
  });

  it('database: answers SELECTs through its small parser and refuses anything else', async () => {
    const db = await start('database');
    const rows = JSON.parse((await call(db, 'query', { sql: "SELECT name FROM customers WHERE country = 'GB' ORDER BY name" })).text);
    expect(rows).toEqual([{ name: 'Ada Lovelace' }, { name: 'Alan Turing' }]);
    expect(JSON.parse((await call(db, 'query', { sql: 'select count(*) from orders where total > 20;' })).text)).toEqual([{ count: 2 }]);
    expect(JSON.parse((await call(db, 'query', { sql: 'SELECT * FROM orders ORDER BY total DESC LIMIT 1' })).text)[0].id).toBe(103);
    expect(JSON.parse((await call(db, 'query', { sql: "SELECT email FROM customers WHERE name LIKE 'gr%'" })).text)).toEqual([{ email: 'grace@example.com' }]);
    for (const sql of ['DELETE FROM orders', 'SELECT * FROM orders; DROP TABLE orders', 'SELECT * FROM secrets', 'SELECT nope FROM orders']) {
      const r = await call(db, 'query', { sql });
      expect(r.isError, sql).toBe(true);
      expect(r.text).toMatch(/^query error: /);
    }
  });

  it('database: update changes one row and refuses unknown columns and the id', async () => {
    const db = await start('database');
    expect((await call(db, 'update', { table: 'orders', id: 101, fields: { status: 'shipped' } })).isError).toBe(false);
    expect(JSON.parse((await call(db, 'query', { sql: 'SELECT status FROM orders WHERE id = 101' })).text)).toEqual([{ status: 'shipped' }]);
    expect((await call(db, 'update', { table: 'orders', id: 101, fields: { id: 5 } })).isError).toBe(true);
    expect((await call(db, 'update', { table: 'orders', id: 101, fields: { hacked: true } })).isError).toBe(true);
    expect((await call(db, 'update', { table: 'orders', id: 999, fields: { status: 'x' } })).text).toBe('no row with id 999 in orders');
  });

  it('payments: refunds within what is left on the charge, in its currency', async () => {
    const pay = await start('payments');
    const ok = await call(pay, 'refund', { charge_id: 'ch_1001', amount: 20, currency: 'EUR', reason: 'late delivery' });
    expect(JSON.parse(ok.text)).toMatchObject({ refund_id: 're_1', amount: 20, status: 'succeeded' });
    expect(JSON.parse((await call(pay, 'get_charge', { charge_id: 'ch_1001' })).text).refunded).toBe(20);
    expect((await call(pay, 'refund', { charge_id: 'ch_1001', amount: 101, currency: 'EUR', reason: 'x' })).text).toMatch(/only 100 left/);
    expect((await call(pay, 'refund', { charge_id: 'ch_1001', amount: 1, currency: 'USD', reason: 'x' })).isError).toBe(true);
    expect((await call(pay, 'refund', { charge_id: 'ch_1001', amount: -5, currency: 'EUR', reason: 'x' })).isError).toBe(true);
  });

  it('filesystem: reads and writes inside its sandbox only', async () => {
    const dir = tempDir();
    const sandbox = join(dir, 'sandbox');
    mkdirSync(sandbox);
    writeFileSync(join(dir, 'outside.txt'), 'secret');
    symlinkSync(dir, join(sandbox, 'link'));
    const fs = await start('filesystem', { SANDBOX_DIR: sandbox });
    expect((await call(fs, 'write_file', { path: 'notes/a.txt', content: 'hello' })).text).toBe('wrote 5 bytes to notes/a.txt');
    expect(readFileSync(join(sandbox, 'notes', 'a.txt'), 'utf8')).toBe('hello');
    expect((await call(fs, 'read_file', { path: 'notes/a.txt' })).text).toBe('hello');
    expect((await call(fs, 'read_file', { path: join(sandbox, 'notes/a.txt') })).text).toBe('hello');
    for (const path of ['../outside.txt', join(dir, 'outside.txt'), 'link/outside.txt', 'notes/../../outside.txt']) {
      const r = await call(fs, 'read_file', { path });
      expect(r.isError, path).toBe(true);
      expect(r.text).not.toContain('secret');
    }
    expect((await call(fs, 'write_file', { path: 'link/evil.txt', content: 'x' })).isError).toBe(true);
    expect(existsSync(join(dir, 'evil.txt'))).toBe(false);
  });

  it('http: describes the request it would make and touches no network', async () => {
    const http = await start('http');
    const started = Date.now();
    const r = JSON.parse((await call(http, 'fetch', { url: 'https://unresolvable-host.invalid/path?q=1' })).text);
    expect(r).toMatchObject({ simulated: true, status: 200, request: { method: 'GET', origin: 'https://unresolvable-host.invalid' } });
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await call(http, 'fetch', { url: 'not a url' })).isError).toBe(true);
  });

  it('shell: refuses every command and runs nothing', async () => {
    const dir = tempDir();
    const marker = join(dir, 'should-not-exist');
    const shell = await start('shell');
    const r = await call(shell, 'exec', { command: `touch ${marker}` });
    expect(r.text).toMatch(/^refused: /);
    expect(existsSync(marker)).toBe(false);
  });

  it('CALL_LOG gets one line per tools/call, written before the work, even for invalid arguments', async () => {
    const log = join(tempDir(), 'calls.jsonl');
    const db = await start('database', { CALL_LOG: log });
    const pay = await start('payments', { CALL_LOG: log });
    await listAllTools(db.client);
    expect(logLines(log)).toEqual([]);
    await call(db, 'query', { sql: 'SELECT 1 FROM nowhere' });
    await call(pay, 'refund', { charge_id: 'bad', amount: 'lots' });
    expect(logLines(log)).toEqual([
      { server: 'database', tool: 'query', args: { sql: 'SELECT 1 FROM nowhere' } },
      { server: 'payments', tool: 'refund', args: { charge_id: 'bad', amount: 'lots' } },
    ]);
  });

  it('TOOL_DESCRIPTION_SUFFIX is appended to every description', async () => {
    const plain = await listAllTools((await start('payments')).client);
    const drifted = await listAllTools((await start('payments', { TOOL_DESCRIPTION_SUFFIX: ' (v2)' })).client);
    expect(drifted.map((t) => t.description)).toEqual(plain.map((t) => `${t.description} (v2)`));
  });
});

describe('example servers over Streamable HTTP (--http <port>)', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  async function serveHttp(name: string, env: Record<string, string> = {}): Promise<string> {
    const child = spawn(process.execPath, [join(SERVERS, `${name}.js`), '--http', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      let buffered = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(buffered);
        if (m?.[1]) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`${name} exited ${code}: ${buffered}`)));
    });
  }

  it('serves the same tools at /mcp on 127.0.0.1, keeps state across requests, and logs calls', async () => {
    const log = join(tempDir(), 'calls.jsonl');
    const url = await serveHttp('payments', { CALL_LOG: log });
    const up = await connectUpstream('payments', { url }, { timeoutMs: 10_000 });
    open.push(up);
    expect(up.transport).toBe('http');
    expect((await listAllTools(up.client)).map((t) => t.name)).toEqual(['get_charge', 'refund']);
    await call(up, 'refund', { charge_id: 'ch_1002', amount: 5, currency: 'USD', reason: 'x' });
    expect(JSON.parse((await call(up, 'get_charge', { charge_id: 'ch_1002' })).text).refunded).toBe(5);
    expect(logLines(log).map((l) => l.tool)).toEqual(['refund', 'get_charge']);
    expect((await fetch(url)).status).toBe(405);
    expect((await fetch(url.replace('/mcp', '/other'), { method: 'POST' })).status).toBe(404);
  });

  it('refuses a bad port', async () => {
    const child = spawn(process.execPath, [join(SERVERS, 'shell.js'), '--http', 'nope'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('--http needs a port number');
  });
});
