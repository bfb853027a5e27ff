/**
 * Acceptance 3 of issue 12: an upstream's sampling, elicitation and roots requests during
 * agent A's call reach A's client and never agent B's (B's handlers are installed and
 * record nothing); with `relay` denying a kind, the upstream gets a JSON-RPC error and A's
 * call still fails cleanly with the upstream's own handling; each relay decision is
 * audited. Over an HTTP upstream (the request's own stream links it to the call) and a
 * stdio upstream (relayed only while exactly one request is in flight).
 *
 * The fixture runs with IGNORE_CLIENT_CAPABILITIES=1: it sends its requests even when the
 * proxy did not declare the capability, as a misbehaving upstream would.
 */
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CallToolResultSchema, CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CLI } from '../../helpers.js';
import { firstText, KEY_A, KEY_B, startSurface, surfaceClient, until, type Recorder, type SurfaceEnv, type UpstreamKind } from '../surface-helpers.js';

const RULES = [{ tool: 'conf.*', agents: ['a', 'b'] }];

describe.each<UpstreamKind>(['http', 'stdio'])('relayed requests, %s upstream', (upstream) => {
  let surface: SurfaceEnv;
  let a: { client: Client; seen: Recorder };
  let b: { client: Client; seen: Recorder };

  beforeAll(async () => {
    surface = await startSurface({
      upstream,
      server: { relay: { sampling: 'allow', elicitation: 'deny', roots: 'allow' } },
      fixtureEnv: { IGNORE_CLIENT_CAPABILITIES: '1' },
      rules: RULES,
    });
    a = await surfaceClient(surface.serve.url, KEY_A);
    b = await surfaceClient(surface.serve.url, KEY_B);
  }, 60_000);

  afterAll(async () => {
    await a?.client.close();
    await b?.client.close();
    await surface?.stop();
  });

  const nothingFor = (seen: Recorder) => expect({ sampling: seen.sampling, elicitation: seen.elicitation, roots: seen.roots }).toEqual({ sampling: [], elicitation: [], roots: [] });

  it("relays a sampling request during A's call to A's client only, and audits it", async () => {
    // The relay's audit line is written before the request reaches the client (as a call's before it reaches the upstream).
    let lineAtArrival: boolean | undefined;
    a.client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      lineAtArrival ??= surface.audit().some((l) => l.reason.startsWith('sampling/createMessage from upstream "conf" relayed'));
      a.seen.sampling.push(request.params);
      return { role: 'assistant', content: { type: 'text', text: `sampled for ${KEY_A.slice(0, 11)}` }, model: 'test-model', stopReason: 'endTurn' };
    });
    const result = await a.client.callTool({ name: 'conf.test_sampling', arguments: { prompt: 'hello from A' } });
    expect(firstText(result)).toBe('LLM response: sampled for cfk_agent_a');
    expect(a.seen.sampling).toHaveLength(1);
    expect(JSON.stringify(a.seen.sampling[0])).toContain('hello from A');
    nothingFor(b.seen);
    const line = await until('the relay decision in the audit log', () => surface.audit().find((l) => l.reason.startsWith('sampling/createMessage from upstream "conf" relayed')));
    expect(line).toMatchObject({ agent: 'a', tool: 'conf.test_sampling', decision: 'allow', code: 'ok' });
    expect(lineAtArrival).toBe(true);
    a.seen.sampling.length = 0;
  });

  it("relays roots/list to B's client during B's call, not to A's", async () => {
    const result = await b.client.callTool({ name: 'conf.test_roots', arguments: {} });
    expect(JSON.parse(firstText(result))).toEqual([{ uri: 'file:///home/agent_b', name: 'home' }]);
    expect(b.seen.roots).toHaveLength(1);
    nothingFor(a.seen);
    b.seen.roots.length = 0;
  });

  it('refuses what relay denies: the upstream gets a JSON-RPC error, the call fails cleanly, no client sees it', async () => {
    const before = surface.messages().length;
    const result = await a.client.callTool({ name: 'conf.test_elicitation', arguments: { message: 'may I?' } });
    // The fixture's own handling of the refusal: its tool fails with that error.
    expect(result.isError).toBe(true);
    expect(firstText(result)).toMatch(/^UPSTREAM_ERROR upstream_error: .*elicitation\/create is not relayed: the policy does not relay elicitation for this server/);
    const answer = await until('the fixture to log the answer to its elicitation', () =>
      surface
        .messages()
        .slice(before)
        .find((m) => m.method === 'response' && m.params?.error !== undefined),
    );
    expect(answer.params?.error).toMatchObject({ code: -32601 });
    nothingFor(a.seen);
    nothingFor(b.seen);
    const line = await until('the refusal in the audit log', () => surface.audit().find((l) => l.reason.startsWith('elicitation/create from upstream "conf"')));
    expect(line).toMatchObject({ agent: 'a', tool: 'conf.test_elicitation', decision: 'deny', code: 'denied_by_rule' });
  });

  it('refuses a request to a client that did not declare the capability', async () => {
    // Declares elicitation (which this server's relay denies) but not sampling.
    const bare = await surfaceClient(surface.serve.url, KEY_A, { elicitation: {} });
    try {
      const result = await bare.client.callTool({ name: 'conf.test_sampling', arguments: { prompt: 'x' } });
      expect(result.isError).toBe(true);
      expect(firstText(result)).toMatch(/sampling\/createMessage is not relayed: the calling client cannot receive it/);
      nothingFor(a.seen);
      nothingFor(b.seen);
    } finally {
      await bare.client.close();
    }
  });

  it('refuses a request that arrives with no call in flight', async () => {
    const before = surface.messages().length;
    expect(firstText(await a.client.callTool({ name: 'conf.test_unsolicited', arguments: { kind: 'sampling', delayMs: 300 } }))).toBe('sampling request scheduled');
    const outcome = await until('the fixture to log the unsolicited request', () =>
      surface
        .messages()
        .slice(before)
        .find((m) => m.method === 'fixture/unsolicited'),
    );
    expect(outcome.params).toMatchObject({ kind: 'sampling', error: { code: -32601 } });
    nothingFor(a.seen);
    nothingFor(b.seen);
    await until('the refusal in the audit log', () => surface.audit().find((l) => l.reason.startsWith('sampling/createMessage from upstream "conf" refused')));
  });

  if (upstream === 'http') {
    it("keeps concurrent calls of A and B apart: each session answers its own call's request", async () => {
      const [ra, rb] = await Promise.all([
        a.client.callTool({ name: 'conf.test_sampling', arguments: { prompt: 'from A' } }),
        b.client.callTool({ name: 'conf.test_sampling', arguments: { prompt: 'from B' } }),
      ]);
      expect(firstText(ra)).toBe('LLM response: sampled for cfk_agent_a');
      expect(firstText(rb)).toBe('LLM response: sampled for cfk_agent_b');
      expect(JSON.stringify(a.seen.sampling)).toContain('from A');
      expect(JSON.stringify(a.seen.sampling)).not.toContain('from B');
      expect(JSON.stringify(b.seen.sampling)).toContain('from B');
      expect(JSON.stringify(b.seen.sampling)).not.toContain('from A');
      a.seen.sampling.length = 0;
      b.seen.sampling.length = 0;
    });
  } else {
    it('never guesses over stdio: with two calls in flight the request is refused, and no client sees it', async () => {
      const slow = a.client.callTool({ name: 'conf.test_slow', arguments: { ms: 1500 } });
      // Wait until A's slow call has reached the upstream.
      await until('the slow call to reach the fixture', () => surface.messages().some((m) => m.method === 'tools/call' && (m.params as { name?: string })?.name === 'test_slow'));
      const result = await b.client.callTool({ name: 'conf.test_sampling', arguments: { prompt: 'while A waits' } });
      expect(result.isError).toBe(true);
      expect(firstText(result)).toMatch(/sampling\/createMessage is not relayed: no call that relays it is in flight on this upstream/);
      expect(firstText(await slow)).toMatch(/^waited \d+ ms$/);
      nothingFor(a.seen);
      nothingFor(b.seen);
    });
  }
});

describe('serve --stdio (one desktop client)', () => {
  let surface: SurfaceEnv;

  beforeAll(async () => {
    surface = await startSurface({ upstream: 'stdio', server: { relay: { sampling: 'allow' } }, rules: RULES });
  }, 60_000);

  afterAll(async () => {
    await surface?.stop();
  });

  it('relays a sampling request during a call to its client, and progress under its token', async () => {
    const client = new Client({ name: 'desktop', version: '1.0.0' }, { capabilities: { sampling: {} } });
    const sampled: unknown[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      sampled.push(request.params);
      return { role: 'assistant', content: { type: 'text', text: 'from the desktop' }, model: 'm' };
    });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'serve', '--policy', surface.env.policyFile, '--stdio', '--audit-log', join(surface.env.dir, 'audit-stdio.log')],
        cwd: surface.env.dir,
        env: { ...(process.env as Record<string, string>), CAPFRAME_AGENT_KEY: KEY_A },
        stderr: 'ignore',
      }),
    );
    try {
      expect(firstText(await client.callTool({ name: 'conf.test_sampling', arguments: { prompt: 'desk' } }))).toBe('LLM response: from the desktop');
      expect(sampled).toHaveLength(1);
      const progress: number[] = [];
      await client.request({ method: 'tools/call', params: { name: 'conf.test_tool_with_progress', arguments: {}, _meta: { progressToken: 7 } } }, CallToolResultSchema, {
        onprogress: (p) => void progress.push(p.progress),
      });
      // The SDK client over stdio may drop the last progress when it arrives in the same read
      // as the answer (it handles notifications a tick later); the first two always arrive.
      expect(progress.slice(0, 2)).toEqual([0, 50]);
    } finally {
      await client.close();
    }
  });
});
