/** src/mcp/connect.ts against real child processes and a real HTTP server. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { connectUpstream, listAllTools, upstreamTimeoutMs } from '../../src/mcp/connect.js';
import { tempDir } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const toolsServer = (env: Record<string, string> = {}) => ({ command: process.execPath, args: [join(FIXTURES, 'tools-server.js')], env });
const manyTools = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `t${i}`, inputSchema: { type: 'object' } }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function failure(promise: Promise<unknown>): Promise<CapframeError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CapframeError);
    expect((error as CapframeError).code).toBe('upstream_unavailable');
    return error as CapframeError;
  }
  throw new Error('expected a failure');
}

describe('connectUpstream over stdio', () => {
  it('starts the child in opts.cwd, resolves a relative cwd against it, and passes only the configured env', async () => {
    const base = realpathSync(tempDir());
    mkdirSync(join(base, 'sub'));
    process.env.CAPFRAME_TEST_PARENT_SECRET = 'leak';
    try {
      for (const [cwd, expected] of [[undefined, base], ['sub', join(base, 'sub')]] as const) {
        const up = await connectUpstream(
          'fx',
          { ...toolsServer({ FIXTURE_ECHO_ENV: 'CAPFRAME_TEST_PARENT_SECRET' }), ...(cwd ? { cwd } : {}) },
          { timeoutMs: 10_000, cwd: base },
        );
        const r = (await up.client.callTool({ name: 'x', arguments: {} })) as { content: { text: string }[] };
        const echoed = JSON.parse(r.content[0]?.text ?? '{}') as { cwd: string; env: string | null };
        expect(echoed.cwd).toBe(expected);
        expect(echoed.env).toBeNull();
        await up.close();
      }
    } finally {
      delete process.env.CAPFRAME_TEST_PARENT_SECRET;
    }
  });

  it('pipes the child stderr (kept as a tail and streamed), never inherits it', async () => {
    const chunks: string[] = [];
    const up = await connectUpstream('fx', toolsServer({ FIXTURE_STDERR: 'hello from stderr\n' }), { timeoutMs: 10_000, onStderr: (c) => chunks.push(c) });
    await listAllTools(up.client);
    await new Promise((r) => setTimeout(r, 50));
    expect(up.stderrTail()).toContain('hello from stderr');
    expect(chunks.join('')).toContain('hello from stderr');
    expect(up.pid).toBeGreaterThan(0);
    await up.close();
    await up.close();
    expect(alive(up.pid ?? 0)).toBe(false);
  });

  it('names a command that does not exist', async () => {
    const e = await failure(connectUpstream('ghost', { command: '/nonexistent/capframe-test-cmd' }, { timeoutMs: 5000 }));
    expect(e.message).toBe('server "ghost" (`/nonexistent/capframe-test-cmd`): command not found');
  });

  it('reports a child that exits during initialize with its stderr, after the line that says what failed', async () => {
    const e = await failure(connectUpstream('crash', { command: process.execPath, args: [join(FIXTURES, 'crash-server.js')] }, { timeoutMs: 5000 }));
    expect(e.message).toMatch(/^server "crash" \(.*crash-server\.js`\): the server exited or closed the connection during initialize\n {2}stderr: fatal: cannot open database file$/);
  });

  it('reports the last lines of a long stderr (at most 10, trimmed, terminal escapes removed), not just the last one', async () => {
    const e = await failure(
      connectUpstream('crash', { command: process.execPath, args: [join(FIXTURES, 'crash-server.js')], env: { CRASH_TRACE: '1' } }, { timeoutMs: 5000 }),
    );
    const [first, ...rest] = e.message.split('\n');
    expect(first).toMatch(/^server "crash" \(.*\): the server exited or closed the connection during initialize$/);
    expect(rest).toEqual(Array.from({ length: 10 }, (_, i) => `  stderr: at frame${i + 5} (/srv/app/db.js:${i + 5}:7)`));
    expect(e.message).not.toContain('\x1b');
  });

  it('keeps the error line and the frames just above the crash when the trace is short', async () => {
    const { lastStderrLines } = await import('../../src/mcp/connect.js');
    expect(lastStderrLines('banner\n\x1b[31mred\x1b[0m\n\tError: boom  \n    at main (s.js:1:1)\n\n')).toEqual(['banner', 'red', 'Error: boom', 'at main (s.js:1:1)']);
    // Bounded in bytes too: ten 240-character lines would be 2.4 KB; about 1 KiB is kept.
    const long = lastStderrLines(`${'x'.repeat(300)}\n`.repeat(10));
    expect(long.length).toBeLessThan(10);
    expect(long.join('').length).toBeLessThanOrEqual(1024);
    expect(long.every((l) => l.length === 240 && l.endsWith('...'))).toBe(true);
    // A full 4 KiB tail starts mid-line: that fragment is dropped.
    expect(lastStderrLines(`${'y'.repeat(4091)}\nlast`)).toEqual(['last']);
    expect(lastStderrLines('')).toEqual([]);
  });

  it('times out a server that never answers, and kills it even though it ignores SIGTERM', async () => {
    const pidFile = join(tempDir(), 'pid');
    const started = Date.now();
    const e = await failure(
      connectUpstream('silent', { command: process.execPath, args: [join(FIXTURES, 'silent-server.js')], env: { PID_FILE: pidFile } }, {
        timeoutMs: 500,
        closeGraceMs: 200,
      }),
    );
    expect(e.message).toMatch(/^server "silent" .*: no answer to initialize within 0\.5s$/);
    expect(Date.now() - started).toBeLessThan(2000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });
});

describe('listAllTools', () => {
  it('follows nextCursor across pages', async () => {
    const up = await connectUpstream('fx', toolsServer({ FIXTURE_TOOLS: JSON.stringify(manyTools(7)), FIXTURE_PAGE_SIZE: '3' }), { timeoutMs: 10_000 });
    try {
      expect((await listAllTools(up.client)).map((t) => t.name)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
      await expect(listAllTools(up.client, { maxPages: 2 })).rejects.toThrow('tools/list did not finish within 2 pages');
    } finally {
      await up.close();
    }
  });

  it('stops on a cursor that repeats', async () => {
    const up = await connectUpstream('fx', toolsServer({ FIXTURE_LOOP_CURSOR: '1' }), { timeoutMs: 10_000 });
    try {
      await expect(listAllTools(up.client)).rejects.toThrow('tools/list pagination loops: cursor "again" was returned twice');
    } finally {
      await up.close();
    }
  });
});

describe('connectUpstream over Streamable HTTP', () => {
  const seen: IncomingHttpHeaders[] = [];
  let server: Server;
  let url = '';

  afterAll(() => server?.close());

  it('connects with the configured headers', async () => {
    server = createServer(async (req, res) => {
      seen.push(req.headers);
      const mcp = new McpServer({ name: 'h', version: '1' });
      mcp.registerTool('ping', { description: 'Ping.', annotations: { readOnlyHint: true } }, async () => ({ content: [{ type: 'text', text: 'pong' }] }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void transport.close());
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
    const up = await connectUpstream('h', { url, headers: { 'x-api-key': 'k-123' } }, { timeoutMs: 5000 });
    expect((await listAllTools(up.client)).map((t) => t.name)).toEqual(['ping']);
    await up.close();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((h) => h['x-api-key'] === 'k-123')).toBe(true);
  });

  it('names refused connections and bad URLs', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await failure(connectUpstream('down', { url: `http://127.0.0.1:${port}/mcp` }, { timeoutMs: 3000 }));
    expect(e.message).toMatch(/^server "down" \(http:\/\/127\.0\.0\.1:\d+\/mcp\): connection refused$/);
    const bad = await failure(connectUpstream('bad', { url: 'ftp://example.com/mcp' }, { timeoutMs: 3000 }));
    expect(bad.message).toBe('server "bad": url must be http:// or https://, got ftp:');
  });

  it('reads a server timeout in seconds', () => {
    expect(upstreamTimeoutMs({ url: 'http://x', timeout: 2.5 }, 10_000)).toBe(2500);
    expect(upstreamTimeoutMs({ command: 'node' }, 10_000)).toBe(10_000);
  });
});
