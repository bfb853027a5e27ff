/**
 * `capframe demo`, the README's "run the main job" command: the example policy in
 * front of the example servers, answering a real SDK client with the printed key.
 */
import { spawn } from 'node:child_process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';

import { CLI, tempDir } from '../helpers.js';
import { poll } from '../proxy/faults-helpers.js';
import { alive, connectedPids, occupyPort, runToExit } from '../proxy/lifecycle-helpers.js';

const text = (r: CallToolResult) => (r.content[0] as { text: string }).text;

describe('capframe demo', () => {
  it('serves the example policy; support-bot works unmodified (auto_mint) and is held to the policy', async () => {
    const dir = tempDir('capframe-demo-');
    const child = spawn(process.execPath, [CLI, 'demo', '--port', '0', '--dir', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        let seen = '';
        child.stderr.on('data', (d: Buffer) => {
          seen += d.toString();
          if (/Stop with Ctrl-C/.test(seen)) resolve(seen);
        });
        child.once('exit', (code) => reject(new Error(`demo exited ${code}: ${seen}`)));
      });
      const url = /serving (http:\S+)/.exec(banner)![1]!;
      const key = /^\s+support-bot\s+(cfk_\S+)$/m.exec(banner)![1]!;

      const client = new Client({ name: 'demo-test', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('database.query');
      expect(names).not.toContain('shell.exec');

      const rows = (await client.callTool({ name: 'database.query', arguments: { sql: 'SELECT name FROM customers WHERE id = 1' } })) as CallToolResult;
      expect(rows.isError, text(rows)).not.toBe(true);
      expect(JSON.parse(text(rows))).toEqual([{ name: 'Ada Lovelace' }]);
      const drop = (await client.callTool({ name: 'database.query', arguments: { sql: 'DROP TABLE customers' } })) as CallToolResult;
      expect(text(drop)).toMatch(/^DENIED constraint_failed: /);
      const shell = (await client.callTool({ name: 'shell.exec', arguments: { command: 'id' } })) as CallToolResult;
      expect(text(shell)).toMatch(/^DENIED denied_by_rule: /);
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('on a taken port: one clear line, exit 1, and the five example servers it started are stopped', async () => {
    const { port, server } = await occupyPort();
    try {
      const r = await runToExit(['demo', '--port', String(port), '--dir', tempDir('capframe-demo-')]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'))).toEqual([
        `capframe: cannot listen on 127.0.0.1:${port}: port in use (EADDRINUSE); pick another --port`,
      ]);
      const pids = connectedPids(r.stderr);
      expect([...pids.keys()].sort()).toEqual(['database', 'filesystem', 'http', 'payments', 'shell']);
      await poll(() => ([...pids.values()].every((pid) => !alive(pid)) ? true : undefined), 'the example servers to be gone', 5000);
    } finally {
      server.close();
    }
  }, 60_000);
});
