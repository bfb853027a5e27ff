/** MCP sessions are bounded: past --max-sessions a new session gets 503, and closing one frees its place. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.js';
import { killAllServed, startServe } from './faults-helpers.js';

afterAll(() => killAllServed());

describe('session limit', () => {
  it('refuses a session beyond --max-sessions with 503 and admits one again after a session ends', async () => {
    const dir = tempDir('capframe-sessions-');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'capframe:\n  version: "0.2"\n  default_policy: deny\n  rules: []\n');
    const served = await startServe(policy, { args: ['--max-sessions', '2'] });
    const open = async () => {
      const transport = new StreamableHTTPClientTransport(new URL(served.url));
      const client = new Client({ name: 'sessions-test', version: '1' });
      await client.connect(transport);
      return { client, transport };
    };
    const first = await open();
    await open();
    await expect(open()).rejects.toThrow(/503|too many open sessions/);
    await first.transport.terminateSession();
    await first.client.close();
    const again = await open();
    expect((await again.client.listTools()).tools.map((t) => t.name)).toEqual(['capframe.request_token']);
    expect(await served.stop()).toMatchObject({ code: 0 });
  });
});
