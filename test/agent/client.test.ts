/**
 * capframeClient against a real `capframe serve` with the official SDK client: token
 * caching and renewal, fresh proofs on every call, what is retried (a DENIED revoked or
 * expired call, once) and what never is (UPSTREAM_ERROR, an upstream's forged denial),
 * given tokens, delegation, and the programmer errors it refuses before sending.
 * The hostile fixture records each call's `_meta`, so the token and proof it received
 * are visible.
 */
import { join } from 'node:path';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { capframeClient, decisionOf, type ToolCallParams } from '../../src/agent/client.js';
import { CapframeError } from '../../src/errors.js';
import { generateKeyPair } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';
import { ROOT } from '../helpers.js';
import { agentsSection, testAgent } from '../proxy/delegation-helpers.js';
import { createPolicyEnv, expectDenial, openProxy, textOf, type PolicyEnv, type Proxy } from '../proxy/e2e-helpers.js';

const HOSTILE = join(ROOT, 'test', 'fixtures', 'hostile.js');
const bot = testAgent('bot');
const helper = testAgent('helper');
const other = testAgent('other');

describe('capframeClient through capframe serve', () => {
  let env: PolicyEnv;
  let proxy: Proxy;
  let botClient: Client;
  let helperClient: Client;
  let otherClient: Client;

  beforeAll(async () => {
    env = createPolicyEnv(({ callLog }) => ({
      version: '0.2',
      default_policy: 'deny',
      servers: { hostile: { command: process.execPath, args: [HOSTILE], env: { SERVER_NAME: 'hostile', CALL_LOG: callLog }, timeout: 20 } },
      agents: agentsSection([bot, helper, other]),
      rules: [
        { tool: 'hostile.echo', ttl: 60, agents: ['bot', 'helper', 'other'] },
        { tool: 'hostile.fail', ttl: 60, agents: ['bot'] },
        { tool: 'hostile.forge', ttl: 60, agents: ['bot'] },
        { tool: 'hostile.pid', ttl: 3, agents: ['bot'] },
      ],
    }));
    proxy = await openProxy('http', env, { serveEnv: { CAPFRAME_ADMIN_KEY: 'admin-key-for-tests' } });
    botClient = await proxy.connect({ agentKey: bot.apiKey });
    helperClient = await proxy.connect({ agentKey: helper.apiKey });
    otherClient = await proxy.connect({ agentKey: other.apiKey });
  }, 60_000);

  afterAll(async () => {
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  /** The SDK client, counting the calls made through it by tool name. */
  function counted(client: Client): { client: { callTool: Client['callTool'] }; requests: () => number; calls: (tool: string) => number } {
    const count = new Map<string, number>();
    return {
      client: {
        callTool: ((params: ToolCallParams, ...rest: unknown[]) => {
          count.set(params.name, (count.get(params.name) ?? 0) + 1);
          return (client.callTool as (...a: unknown[]) => ReturnType<Client['callTool']>)(params, ...rest);
        }) as Client['callTool'],
      },
      requests: () => count.get('capframe.request_token') ?? 0,
      calls: (tool) => count.get(tool) ?? 0,
    };
  }

  const echo = (n: number) => ({ name: 'hostile.echo', arguments: { n } });
  const metaOf = (i: number) => env.calls()[i]!.meta as Record<string, string>;

  it('one token per tool, reused; a fresh proof for the exact arguments on every call; the upstream receives both', async () => {
    const { client, requests } = counted(botClient);
    const agent = capframeClient(client, { holderKey: bot.holder.secretKey });
    expect(agent.publicKey).toBe(bot.publicHex);
    const before = env.calls().length;
    for (const n of [1, 2, 3]) {
      const result = (await agent.callTool(echo(n))) as CallToolResult;
      expect(result.isError ?? false, textOf(result)).toBe(false);
      expect(JSON.parse(textOf(result))).toEqual({ n });
    }
    expect(requests()).toBe(1);
    const seen = env.calls().slice(before);
    expect(seen.map((c) => c.args)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    const tokens = new Set(seen.map((_, i) => metaOf(before + i)['capframe/token']));
    const proofs = new Set(seen.map((_, i) => metaOf(before + i)['capframe/proof']));
    expect(tokens.size).toBe(1);
    expect(proofs.size).toBe(3);
    expect(await agent.tokenFor('hostile.echo')).toBe([...tokens][0]);
  });

  it('concurrent calls for one tool share a single request_token', async () => {
    const { client, requests } = counted(botClient);
    const agent = capframeClient(client, { holderKey: bot.holder.secretKey });
    const results = (await Promise.all([4, 5, 6, 7].map((n) => agent.callTool(echo(n))))) as CallToolResult[];
    expect(results.map((r) => r.isError ?? false)).toEqual([false, false, false, false]);
    expect(requests()).toBe(1);
  });

  it('a token the proxy says is revoked is dropped and replaced once; the denied call was not forwarded, so it runs exactly once', async () => {
    const { client, requests } = counted(botClient);
    const agent = capframeClient(client, { holderKey: bot.holder.secretKey });
    await agent.callTool(echo(8));
    const token = await agent.tokenFor('hostile.echo');
    const revoked = await fetch(`${proxy.http!.origin}/v1/revocations`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-key-for-tests', 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    expect(revoked.status).toBe(200);
    const before = env.calls().length;
    const result = (await agent.callTool(echo(9))) as CallToolResult;
    expect(result.isError ?? false, textOf(result)).toBe(false);
    expect(requests()).toBe(2);
    expect(env.calls().slice(before).map((c) => c.args)).toEqual([{ n: 9 }]);
    expect(await agent.tokenFor('hostile.echo')).not.toBe(token);
  });

  it('a cached token is renewed shortly before it expires, and one the proxy calls expired is replaced once', async () => {
    let offset = 0;
    const { client, requests } = counted(botClient);
    const agent = capframeClient(client, { holderKey: bot.holder.secretKey, clock: () => Date.now() + offset });
    await agent.callTool(echo(10));
    offset = 31_000; // within 30 s of the 60 s token's expiry
    await agent.callTool(echo(11));
    expect(requests()).toBe(2);

    // hostile.pid tokens live 3 s (a whole-second iat makes a 1 s token live anywhere from 0 to 1 s, which raced on a loaded machine). With the client's clock behind, it still thinks its token is fresh.
    offset = 0;
    await agent.callTool({ name: 'hostile.pid' });
    expect(requests()).toBe(3);
    const stale = await agent.tokenFor('hostile.pid');
    offset = -5_000;
    await new Promise((r) => setTimeout(r, 3_100));
    const before = env.calls().length;
    const result = (await agent.callTool({ name: 'hostile.pid' })) as CallToolResult;
    expect(result.isError ?? false, textOf(result)).toBe(false);
    expect(requests()).toBe(4);
    expect(await agent.tokenFor('hostile.pid')).not.toBe(stale);
    expect(env.calls().length).toBe(before + 1);
  });

  it('renewal goes by the token\'s own lifetime, not the expiry time read on a clock that differs from the proxy\'s', async () => {
    // 45 s behind the proxy (proofs still pass: within the 60 s window). A 3 s token is
    // renewed after half its life by the agent's clock, before the proxy would call it expired.
    const { client, requests, calls } = counted(botClient);
    const agent = capframeClient(client, { holderKey: bot.holder.secretKey, clock: () => Date.now() - 45_000 });
    expect(((await agent.callTool({ name: 'hostile.pid' })) as CallToolResult).isError ?? false).toBe(false);
    await new Promise((r) => setTimeout(r, 3_100));
    expect(((await agent.callTool({ name: 'hostile.pid' })) as CallToolResult).isError ?? false).toBe(false);
    expect(requests()).toBe(2);
    // No call was denied expired and retried.
    expect(calls('hostile.pid')).toBe(2);
  });

  it('never retries an UPSTREAM_ERROR (the call may have run) nor an upstream\'s forged denial', async () => {
    const { client, requests } = counted(botClient);
    const agent = capframeClient(client, { holderKey: bot.holder.secretKey });
    let before = env.calls().length;
    const failed = (await agent.callTool({ name: 'hostile.fail', arguments: {} })) as CallToolResult;
    expect(textOf(failed)).toMatch(/^UPSTREAM_ERROR upstream_error: /);
    expect(env.calls().length).toBe(before + 1);
    before = env.calls().length;
    const forged = (await agent.callTool({ name: 'hostile.forge', arguments: {} })) as CallToolResult;
    expect(textOf(forged)).toMatch(/^\[upstream\] DENIED revoked/);
    expect(decisionOf(forged)).toMatchObject({ allowed: true, code: 'ok' });
    expect(env.calls().length).toBe(before + 1);
    expect(requests()).toBe(2);
  });

  it('when the proxy grants no token, its denial is the result and nothing is forwarded; tokenFor and delegate throw not_granted', async () => {
    const agent = capframeClient(botClient, { holderKey: bot.holder.secretKey });
    const before = env.calls().length;
    expectDenial((await agent.callTool({ name: 'hostile.big', arguments: { bytes: 1 } })) as CallToolResult, 'no_rule');
    expect(env.calls().length).toBe(before);
    await expect(agent.tokenFor('hostile.big')).rejects.toMatchObject({ code: 'not_granted', message: expect.stringContaining('DENIED no_rule') });
    await expect(agent.delegate({ tools: 'hostile.big', to: helper.holder.publicKey })).rejects.toMatchObject({ code: 'not_granted' });
    // A holder key the policy does not list for the agent.
    const stranger = capframeClient(otherClient, { holderKey: generateKeyPair().secretKey });
    const refused = (await stranger.callTool(echo(12))) as CallToolResult;
    expectDenial(refused, 'agent_not_allowed');
    expect(textOf(refused)).toContain('is not one of agent "other"\'s holder_keys');
    expect(env.calls().length).toBe(before);
  });

  it('delegate: the child is usable by the sub-agent with its own key, within the added bound, and by nobody else', async () => {
    const agent = capframeClient(botClient, { holderKey: bot.holder.secretKey });
    const child = await agent.delegate({ tools: 'hostile.echo', when: [{ arg: 'n', op: '<=', value: 10 }], ttl: 30, to: helper.holder.publicKey, agent: 'helper' });
    expect(child.claims.sub).toBe('helper');
    expect(child.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 31_000);
    const sub = capframeClient(helperClient, { holderKey: helper.holder.secretKey, token: child.token });
    const before = env.calls().length;
    expect(((await sub.callTool(echo(10))) as CallToolResult).isError ?? false).toBe(false);
    expectDenial((await sub.callTool(echo(11))) as CallToolResult, 'constraint_failed');
    // A given token is never renewed: revoked stays revoked.
    await fetch(`${proxy.http!.origin}/v1/revocations`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-key-for-tests', 'content-type': 'application/json' },
      body: JSON.stringify({ id: child.parentId }),
    });
    expectDenial((await sub.callTool(echo(3))) as CallToolResult, 'revoked');
    expect(env.calls().slice(before).map((c) => c.args)).toEqual([{ n: 10 }]);
    // Someone else's key cannot even wrap it.
    expect(() => capframeClient(otherClient, { holderKey: other.holder.secretKey, token: child.token })).toThrow(/bound to another holder key/);
  });

  it('refuses programmer errors before sending anything', async () => {
    const agent = capframeClient(botClient, { holderKey: bot.holder.secretKey });
    const before = env.calls().length;
    await expect(agent.callTool({ name: 'hostile.echo', arguments: { n: Number.NaN } })).rejects.toBeInstanceOf(CapframeError);
    await expect(agent.callTool({ name: 'hostile.echo', arguments: { n: undefined } })).rejects.toThrow(/undefined/);
    await expect(agent.callTool({ name: '' })).rejects.toThrow(/params.name/);
    expect(env.calls().length).toBe(before);
    expect(() => capframeClient({} as never, { holderKey: bot.holder.secretKey })).toThrow(/callTool/);
    expect(() => capframeClient(botClient, { holderKey: bot.holder.secretKey, ttl: 0 })).toThrow(/ttl/);
    const unbound = mint({ key: generateKeyPair().secretKey, tool: 'hostile.echo', ttl: 60 }).token;
    expect(() => capframeClient(botClient, { holderKey: bot.holder.secretKey, token: unbound })).toThrow(/not bound to a holder key/);
  });
});
