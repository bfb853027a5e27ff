/**
 * Adversarial suite, tokens (issue 8, acceptance 1): `capframe.request_token` called with
 * hostile arguments, and calls presenting tokens that are truncated, re-encoded, re-signed,
 * someone else's, for another tool, out of their validity window, revoked, or signed by
 * the issuer but broader than the policy — through a real `capframe serve` with the
 * official SDK client. No agent here has auto_mint: the token decides.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateKeyPair } from '../../src/keys/keys.js';
import { mint, type MintOptions } from '../../src/token/mint.js';
import { expectDenial, expectNothingForwarded, expectToolResult, startEdge, textOf, type Edge, type ToolExpect } from './harness.js';

const ADMIN_KEY = 'adversarial-admin-key-0123456789';
let edge: Edge;
let alice: Client;
let bob: Client;
let carol: Client;

beforeAll(async () => {
  edge = await startEdge({
    servers: { t: { timeout: 15, env: { ECHO_TOOLS: 'read,write' } } },
    autoMint: false,
    env: { CAPFRAME_ADMIN_KEY: ADMIN_KEY },
    rules: [
      '- { tool: t.read, ttl: 60, agents: [alice, carol] }',
      '- { tool: t.write, ttl: 60, agents: [alice], when: [{ arg: n, op: "<=", value: 5 }] }',
      '- { tool: "t.*", ttl: 30, agents: [bob] }',
    ],
  });
  [alice, bob, carol] = await Promise.all([edge.client('alice'), edge.client('bob'), edge.client('carol')]);
}, 90_000);

afterAll(async () => edge?.stop());

const callTool = (client: Client, name: string, args: Record<string, unknown>, token?: unknown) =>
  client.callTool({ name, arguments: args, ...(token !== undefined && { _meta: { 'capframe/token': token } }) }) as Promise<CallToolResult>;

async function requestToken(client: Client, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name: 'capframe.request_token', arguments: args })) as CallToolResult;
}

async function tokenFor(client: Client, tool: string): Promise<string> {
  const r = await requestToken(client, { tool });
  if (r.isError === true) throw new Error(`request_token ${tool}: ${textOf(r)}`);
  return (r.structuredContent as { token: string }).token;
}

const sentinel = async (marker: number) => callTool(alice, 't.read', { sentinel: marker }, await tokenFor(alice, 't.read'));

/** A token minted by hand with the issuer's key: what a leaked key or a bug in minting could produce. */
const minted = (options: Partial<MintOptions>) => mint({ key: edge.issuerKey(), tool: 't.read', ttl: 60, agent: 'alice', ...options }).token;

describe('capframe.request_token with hostile arguments', () => {
  const rows: [string, Record<string, unknown>, ToolExpect][] = [
    ['ttl negative', { tool: 't.read', ttl: -1 }, { denied: 'malformed_token' }],
    ['ttl zero', { tool: 't.read', ttl: 0 }, { denied: 'malformed_token' }],
    ['ttl a fraction', { tool: 't.read', ttl: 1.5 }, { denied: 'malformed_token' }],
    ['ttl a string', { tool: 't.read', ttl: '60' }, { denied: 'malformed_token' }],
    ['ttl null', { tool: 't.read', ttl: null }, { denied: 'malformed_token' }],
    ['ttl beyond 2^53', { tool: 't.read', ttl: 2 ** 60 }, { denied: 'malformed_token' }],
    ['tool "*"', { tool: '*' }, { denied: 'no_rule' }],
    ['tool "t.*": only bob\'s rule covers it', { tool: 't.*' }, { denied: 'agent_not_allowed' }],
    ['tool "t.r*"', { tool: 't.r*' }, { denied: 'agent_not_allowed' }],
    ['tool with an RTL override', { tool: 't.read\u202e' }, { denied: 'malformed_token' }],
    ['tool with a zero-width space', { tool: 't.re\u200bad' }, { denied: 'malformed_token' }],
    ['tool of 129 characters', { tool: `t.${'r'.repeat(127)}` }, { denied: 'malformed_token' }],
    ['tool of 200,000 characters', { tool: `t.${'r'.repeat(200_000)}` }, { denied: 'malformed_token' }],
    ['tool empty', { tool: '' }, { denied: 'malformed_token' }],
    ['tool a list', { tool: ['t.read'] }, { denied: 'malformed_token' }],
    ['tool missing', {}, { denied: 'malformed_token' }],
    ['a capability no rule grants', { tool: 't.read', capability: 'admin' }, { denied: 'no_rule' }],
    ['capability a number', { tool: 't.read', capability: 5 }, { denied: 'malformed_token' }],
    ['a tool granted to another agent only', { tool: 't.write' }, { denied: 'agent_not_allowed' }],
  ];
  for (const [name, args, want] of rows) {
    it(name, () => {
      // t.write is alice's; carol asks for it in the last row, alice in the others.
      const who = name.startsWith('a tool granted') ? carol : alice;
      return expectToolResult(edge, () => requestToken(who, args), want, sentinel, { server: 't', tool: 'read' });
    });
  }

  it('a huge ttl is capped by the rule: the token expires within 60 s', async () => {
    const r = await requestToken(alice, { tool: 't.read', ttl: 1e9 });
    expect(r.isError ?? false, textOf(r)).toBe(false);
    const { expires_at } = r.structuredContent as { expires_at: string };
    expect(Date.parse(expires_at) - Date.now()).toBeLessThanOrEqual(61_000);
  });

  it('asking for a token on behalf of bob still issues it to alice', async () => {
    const token = (await requestToken(alice, { tool: 't.read', agent: 'bob' })).structuredContent as { token: string };
    await expectToolResult(edge, () => callTool(bob, 't.read', { x: 1 }, token.token), { denied: 'agent_not_allowed' }, sentinel, { server: 't', tool: 'read' });
  });

  it('the refused name is quoted, cut, and audited short', async () => {
    const r = await requestToken(alice, { tool: `t.${'r'.repeat(200_000)}` });
    expect(textOf(r).length).toBeLessThan(400);
    expect(textOf(r)).toMatch(/^DENIED malformed_token: "t\.r{62}…" is not a tool name or pattern/);
  });
});

describe('tokens presented on a call', () => {
  let good: string;
  beforeAll(async () => {
    good = await tokenFor(alice, 't.read');
  });
  const b64 = (token: string) => Buffer.from(token.slice(4), 'base64url');
  const printable = (bytes: Buffer) => `cf1.${bytes.toString('base64url')}`;
  const flipped = (token: string, at: (length: number) => number) => {
    const bytes = b64(token);
    const i = at(bytes.length);
    bytes[i] = bytes[i]! ^ 0x01;
    return printable(bytes);
  };

  const rows: [string, () => unknown, ToolExpect][] = [
    ['a valid token is forwarded', () => good, { forwarded: { ok: true } }],
    ['truncated by 8 characters', () => good.slice(0, -8), { denied: 'malformed_token' }],
    ['only the prefix "cf1."', () => 'cf1.', { denied: 'malformed_token' }],
    ['base64 padding added', () => `${good}==`, { denied: 'malformed_token' }],
    ['a "+" where base64url has none', () => `${good.slice(0, 20)}+${good.slice(21)}`, { denied: 'malformed_token' }],
    ['trailing data after a dot', () => `${good}.extra`, { denied: 'malformed_token' }],
    ['one more base64 character', () => `${good}A`, { denied: 'malformed_token' }],
    ['one trailing byte', () => printable(Buffer.concat([b64(good), Buffer.from([0])])), { denied: 'malformed_token' }],
    // The verifier trims surrounding whitespace (pasted tokens): the same bytes, the same token.
    ['surrounding whitespace is the same token', () => ` ${good}\n`, { forwarded: { ok: true } }],
    ['whitespace inside the token', () => `${good.slice(0, 30)} ${good.slice(30)}`, { denied: 'malformed_token' }],
    ['the prefix in upper case', () => `CF1.${good.slice(4)}`, { denied: 'malformed_token' }],
    ['another version prefix', () => `cf2.${good.slice(4)}`, { denied: 'malformed_token' }],
    ['9 KiB of base64', () => `cf1.${'A'.repeat(12_000)}`, { denied: 'malformed_token' }],
    ['the last signature byte flipped', () => flipped(good, (n) => n - 1), { denied: 'bad_signature' }],
    ['signed by a key the policy does not trust', () => mint({ key: generateKeyPair().secretKey, tool: 't.read', ttl: 60, agent: 'alice' }).token, { denied: 'unknown_key' }],
    ['expired an hour ago', () => minted({ now: Math.floor(Date.now() / 1000) - 3600 }), { denied: 'expired' }],
    ['not valid for another hour', () => minted({ notBefore: Math.floor(Date.now() / 1000) + 3600 }), { denied: 'not_yet_valid' }],
    ['issued to no agent', () => mint({ key: edge.issuerKey(), tool: 't.read', ttl: 60 }).token, { denied: 'agent_not_allowed' }],
    ['issued to an agent the policy does not define', () => minted({ agent: 'mallory' }), { denied: 'agent_not_allowed' }],
    ['issued to alice, presented by bob', () => good, { denied: 'agent_not_allowed' }],
    ['for t.read, used on t.write', () => good, { denied: 'tool_mismatch' }],
    ['under a capability no rule grants', () => minted({ capability: 'admin' }), { denied: 'no_rule' }],
    ['issuer-signed for t.write without the rule\'s constraint: the policy still holds', () => minted({ tool: 't.write' }), { denied: 'constraint_failed' }],
    ['issuer-signed for "*", used on t.write: no broader than the policy', () => minted({ tool: '*' }), { denied: 'constraint_failed' }],
    ['holder-bound, with no proof', () => minted({ holderKey: generateKeyPair().publicKey }), { denied: 'bad_proof' }],
  ];
  for (const [name, token, want] of rows) {
    it(name, () => {
      const client = name.includes('presented by bob') ? bob : alice;
      const tool = name.includes('t.write') ? 't.write' : 't.read';
      const args = tool === 't.write' ? { n: 100 } : { ok: true };
      return expectToolResult(edge, () => callTool(client, tool, args, token()), want, sentinel, { server: 't', tool: 'read' });
    });
  }

  it('revoked through POST /v1/revocations while serve runs: revoked at once', async () => {
    const token = await tokenFor(alice, 't.read');
    await expectToolResult(edge, () => callTool(alice, 't.read', { before: 'revocation' }, token), { forwarded: { before: 'revocation' } }, sentinel, { server: 't', tool: 'read' });
    const res = await fetch(`${edge.base}/v1/revocations`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(res.status).toBe(200);
    await expectToolResult(edge, () => callTool(alice, 't.read', { after: 'revocation' }, token), { denied: 'revoked' }, sentinel, { server: 't', tool: 'read' });
  });

  it('revocation with a wrong or doubled admin key is refused, and the token keeps working', async () => {
    const token = await tokenFor(alice, 't.read');
    for (const authorization of [`Bearer ${ADMIN_KEY}x`, `bearer ${ADMIN_KEY.slice(1)}`]) {
      const res = await fetch(`${edge.base}/v1/revocations`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      expect(res.status).toBe(401);
    }
    await expectToolResult(edge, () => callTool(alice, 't.read', { still: 'valid' }, token), { forwarded: { still: 'valid' } }, sentinel, { server: 't', tool: 'read' });
  });

  it('bob\'s pattern token t.* reaches his tools, but not a withheld one, and not for alice', async () => {
    const pattern = await tokenFor(bob, 't.*');
    await expectToolResult(edge, () => callTool(bob, 't.read', { via: 'pattern' }, pattern), { forwarded: { via: 'pattern' } }, sentinel, { server: 't', tool: 'read' });
    const withheld = await expectNothingForwarded(edge, () => callTool(bob, 't.p_ignore', {}, pattern), sentinel);
    expectDenial(withheld, 'denied_by_rule');
    expect(textOf(withheld)).toContain('CF-PROMPT-001');
    await expectToolResult(edge, () => callTool(alice, 't.read', { x: 1 }, pattern), { denied: 'agent_not_allowed' }, sentinel, { server: 't', tool: 'read' });
  });
});
