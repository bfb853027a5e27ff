/**
 * Issue 10, acceptance 1 and 2 through `capframe serve` (a real child process, over
 * Streamable HTTP and over stdio) with the official SDK client: holder-bound tokens
 * from `capframe.request_token`, per-call proofs, delegation chains, and every attack
 * on them — each denied with its code, and the payments server's CALL_LOG shows that
 * no denied call reached it. Also: the agent/holder-key rule, `holder_key` validation,
 * the Capframe-Proof header, and max_delegation_depth read per call across a reload.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PROOF_META_KEY, TOKEN_META_KEY } from '../../src/mcp/meta.js';
import { delegate } from '../../src/token/delegate.js';
import { mint } from '../../src/token/mint.js';
import { createProof } from '../../src/token/proof.js';
import { agentsSection, callMeta, forgedProof, printable, proved, requestBound, testAgent, type TestAgent } from './delegation-helpers.js';
import {
  createPolicyEnv,
  exampleServer,
  expectDenied,
  expectForwarded,
  openProxy,
  textOf,
  type PolicyEnv,
  type Proxy,
  type TransportKind,
} from './e2e-helpers.js';

const REFUND = 'payments.refund';
const GET_CHARGE = 'payments.get_charge';
/** ch_1003 holds 2,500 USD: enough for every refund these tests make. */
const refund = (amount: number) => ({ charge_id: 'ch_1003', amount, currency: 'USD', reason: 'delegation test' });
const forwardedRefund = (amount: number) => ({ server: 'payments', tool: 'refund', args: refund(amount) });
const kidHex = (kid: Uint8Array) => Buffer.from(kid).toString('hex');

const planner = testAgent('planner');
const executor = testAgent('executor');
const sub = testAgent('sub-executor');
const mallory = testAgent('mallory');
const AGENTS = [planner, executor, sub, mallory];

function policyBody(callLog: string, maxDepth = 2): Record<string, unknown> {
  const everyone = AGENTS.map((a) => a.name);
  return {
    version: '0.2',
    default_policy: 'deny',
    max_delegation_depth: maxDepth,
    servers: { payments: exampleServer('payments', callLog) },
    agents: agentsSection(AGENTS),
    rules: [
      { tool: REFUND, ttl: 600, agents: everyone, when: [{ arg: 'amount', op: '<=', value: 200 }] },
      { tool: GET_CHARGE, ttl: 600, agents: ['planner'] },
    ],
  };
}

describe.each<TransportKind>(['http', 'stdio'])('holder proofs and delegation through serve over %s', (kind) => {
  let env: PolicyEnv;
  let proxy: Proxy;
  const clients = new Map<TestAgent, Client>();
  /** The planner's root token for payments.refund (amount <= 200), bound to the planner's key. */
  let root: { token: string; id: string; holder_key: string };
  /** root → executor (amount <= 50) → sub-executor (amount <= 20). */
  let t1: ReturnType<typeof delegate>;
  let t2: ReturnType<typeof delegate>;

  beforeAll(async () => {
    env = createPolicyEnv(({ callLog }) => policyBody(callLog));
    proxy = await openProxy(kind, env);
    for (const agent of AGENTS) clients.set(agent, await proxy.connect({ agentKey: agent.apiKey }));
    root = await requestBound(clients.get(planner)!, REFUND, planner.publicHex);
    t1 = delegate(root.token, { key: planner.holder.secretKey, tools: REFUND, when: [{ arg: 'amount', op: '<=', value: 50 }], ttl: 300, to: executor.holder.publicKey, agent: 'executor' });
    t2 = delegate(t1.token, { key: executor.holder.secretKey, tools: REFUND, when: [{ arg: 'amount', op: '<=', value: 20 }], ttl: 120, to: sub.holder.publicKey });
  }, 60_000);

  afterAll(async () => {
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  const as = (agent: TestAgent) => clients.get(agent)!;

  it('request_token with holder_key issues a token bound to it; a call with a fresh proof is forwarded once, the same proof again is replay', async () => {
    expect(root.holder_key).toBe(planner.publicHex);
    const meta = proved(root.token, planner.holder.secretKey, REFUND, refund(15));
    await expectForwarded(env, () => callMeta(as(planner), REFUND, refund(15), meta), forwardedRefund(15));
    const replayed = await expectDenied(env, () => callMeta(as(planner), REFUND, refund(15), meta), 'replay');
    expect(textOf(replayed)).toContain(root.id);
    await expect.poll(() => auditLines(env).filter((l) => l.code === 'replay').map((l) => [l.decision, l.agent, l.token_id]), { timeout: 10_000 }).toEqual([['deny', 'planner', root.id]]);
  });

  describe('acceptance 1: a stolen bound token', () => {
    it('without a proof → bad_proof, for the holder itself and for a thief', async () => {
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(15), { [TOKEN_META_KEY]: root.token }), 'bad_proof');
      await expectDenied(env, () => callMeta(as(mallory), REFUND, refund(15), { [TOKEN_META_KEY]: root.token }), 'bad_proof');
      await expectDenied(env, () => callMeta(as(mallory), REFUND, refund(15), { [TOKEN_META_KEY]: t2.token }), 'bad_proof');
      // Audited like any denial, under the presented (leaf) token's id.
      await expect.poll(() => auditLines(env).some((l) => l.code === 'bad_proof' && l.agent === 'mallory' && l.token_id === t2.id), { timeout: 10_000 }).toBe(true);
    });

    it('with a proof by another key → bad_proof', async () => {
      const args = refund(15);
      const forged = { [TOKEN_META_KEY]: root.token, [PROOF_META_KEY]: forgedProof(root.token, mallory.holder.secretKey, REFUND, args) };
      const denied = await expectDenied(env, () => callMeta(as(mallory), REFUND, args, forged), 'bad_proof');
      expect(textOf(denied)).toMatch(/not by the token's holder key/);
      // Mallory's own bound token's proof, presented with the planner's token.
      const hers = await requestBound(as(mallory), REFUND, mallory.publicHex);
      const swapped = { [TOKEN_META_KEY]: root.token, [PROOF_META_KEY]: createProof({ token: hers.token, tool: REFUND, args, key: mallory.holder.secretKey }).proof };
      await expectDenied(env, () => callMeta(as(mallory), REFUND, args, swapped), 'bad_proof');
      // A delegated token: the proof must be by the last link's key, not an ancestor's.
      const byParent = { [TOKEN_META_KEY]: t2.token, [PROOF_META_KEY]: forgedProof(t2.token, executor.holder.secretKey, REFUND, args) };
      await expectDenied(env, () => callMeta(as(sub), REFUND, args, byParent), 'bad_proof');
    });

    it('with a proof for other arguments or another tool → bad_proof', async () => {
      const other = proved(root.token, planner.holder.secretKey, REFUND, refund(15));
      expect(textOf(await expectDenied(env, () => callMeta(as(planner), REFUND, refund(150), other), 'bad_proof'))).toMatch(/other arguments/);
      // The same arguments with a key added, or in another key order with another value.
      await expectDenied(env, () => callMeta(as(planner), REFUND, { ...refund(15), note: 'x' }, proved(root.token, planner.holder.secretKey, REFUND, refund(15))), 'bad_proof');
      const forTool = proved(root.token, planner.holder.secretKey, GET_CHARGE, refund(15));
      expect(textOf(await expectDenied(env, () => callMeta(as(planner), REFUND, refund(15), forTool), 'bad_proof'))).toMatch(/another tool/);
    });

    it('with a proof older than the 60 s skew window, or from the future → bad_proof', async () => {
      const old = proved(root.token, planner.holder.secretKey, REFUND, refund(15), { now: Date.now() - 61_000 });
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(15), old), 'bad_proof');
      const ahead = proved(root.token, planner.holder.secretKey, REFUND, refund(15), { now: Date.now() + 61_000 });
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(15), ahead), 'bad_proof');
      // Within the window it is fine, either way.
      const late = proved(root.token, planner.holder.secretKey, REFUND, refund(16), { now: Date.now() - 30_000 });
      await expectForwarded(env, () => callMeta(as(planner), REFUND, refund(16), late), forwardedRefund(16));
    });

    it('with a valid proof (token and key both stolen) by another authenticated agent → agent_not_allowed, and the proof stays usable by its holder', async () => {
      const meta = proved(root.token, planner.holder.secretKey, REFUND, refund(17));
      const denied = await expectDenied(env, () => callMeta(as(mallory), REFUND, refund(17), meta), 'agent_not_allowed');
      expect(textOf(denied)).toContain('"planner", not "mallory"');
      // The thief's denial did not burn the nonce: the holder's own call goes through, once.
      await expectForwarded(env, () => callMeta(as(planner), REFUND, refund(17), meta), forwardedRefund(17));
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(17), meta), 'replay');
      // A delegated token with its holder's key, presented by an agent that does not hold that key.
      const subMeta = proved(t2.token, sub.holder.secretKey, REFUND, refund(5));
      const notHeld = await expectDenied(env, () => callMeta(as(executor), REFUND, refund(5), subMeta), 'agent_not_allowed');
      expect(textOf(notHeld)).toContain(`bound to holder key ${sub.publicHex}, which is not one of agent "executor"'s holder_keys`);
      await expectForwarded(env, () => callMeta(as(sub), REFUND, refund(5), subMeta), forwardedRefund(5));
    });

    it('a proof for a token that is not bound, or that is not a proof → bad_proof', async () => {
      const plain = await as(planner).callTool({ name: 'capframe.request_token', arguments: { tool: REFUND } });
      const token = (plain.structuredContent as { token: string }).token;
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(5), { [TOKEN_META_KEY]: token, [PROOF_META_KEY]: forgedProof(token, planner.holder.secretKey, REFUND, refund(5)) }), 'bad_proof');
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(5), { [TOKEN_META_KEY]: root.token, [PROOF_META_KEY]: 'cfp1.AAAA' }), 'bad_proof');
      await expectDenied(env, () => callMeta(as(planner), REFUND, refund(5), { [TOKEN_META_KEY]: root.token, [PROOF_META_KEY]: { not: 'a string' } }), 'bad_proof');
    });
  });

  describe('acceptance 2: delegation', () => {
    it('each level is held to every bound above it: 15 everywhere, 30 not for the sub-executor, 150 only for the planner', async () => {
      const at = (agent: TestAgent, token: string, amount: number) => () => callMeta(as(agent), REFUND, refund(amount), proved(token, agent.holder.secretKey, REFUND, refund(amount)));
      await expectForwarded(env, at(sub, t2.token, 15), forwardedRefund(15));
      const thirty = await expectDenied(env, at(sub, t2.token, 30), 'constraint_failed');
      expect(textOf(thirty)).toMatch(/delegation link 0/);
      await expectForwarded(env, at(executor, t1.token, 30), forwardedRefund(30));
      await expectDenied(env, at(executor, t1.token, 150), 'constraint_failed');
      await expectForwarded(env, at(planner, root.token, 150), forwardedRefund(150));
      // The audit log names the leaf token and says it was delegated from the root.
      const audit = auditText(env);
      expect(audit).toContain(`"token_id":"${t2.id}"`);
      expect(audit).toMatch(new RegExp(`delegated token, depth 2, root ${root.id}`));
    });

    it('a child naming a tool outside its parent\'s → delegation_invalid', async () => {
      const hex = kidHex(planner.holder.kid);
      const wider = mint({ key: planner.holder.secretKey, issuer: hex, tool: 'payments.*', ttl: 60, holderKey: executor.holder.publicKey, parent: bytesOf(root.token) });
      await expectDenied(env, () => callMeta(as(executor), GET_CHARGE, { charge_id: 'ch_1003' }, proved(wider.token, executor.holder.secretKey, GET_CHARGE, { charge_id: 'ch_1003' })), 'delegation_invalid');
      await expectDenied(env, () => callMeta(as(executor), REFUND, refund(5), proved(wider.token, executor.holder.secretKey, REFUND, refund(5))), 'delegation_invalid');
    });

    it('a child loosening its parent\'s bound: the call beyond the parent\'s bound → constraint_failed', async () => {
      const looser = delegate(t1.token, { key: executor.holder.secretKey, tools: REFUND, when: [{ arg: 'amount', op: '<=', value: 500 }], to: sub.holder.publicKey });
      const denied = await expectDenied(env, () => callMeta(as(sub), REFUND, refund(100), proved(looser.token, sub.holder.secretKey, REFUND, refund(100))), 'constraint_failed');
      expect(textOf(denied)).toMatch(/delegation link 1/);
      await expectForwarded(env, () => callMeta(as(sub), REFUND, refund(40), proved(looser.token, sub.holder.secretKey, REFUND, refund(40))), forwardedRefund(40));
    });

    it('a child expiring after its parent → delegation_invalid', async () => {
      const outliving = mint({ key: executor.holder.secretKey, issuer: kidHex(executor.holder.kid), tool: REFUND, ttl: 3600, holderKey: sub.holder.publicKey, parent: bytesOf(t1.token) });
      const denied = await expectDenied(env, () => callMeta(as(sub), REFUND, refund(5), proved(outliving.token, sub.holder.secretKey, REFUND, refund(5))), 'delegation_invalid');
      expect(textOf(denied)).toMatch(/expires after its parent/);
    });

    it('a chain deeper than max_delegation_depth (2) → delegation_invalid', async () => {
      const t3 = delegate(t2.token, { key: sub.holder.secretKey, tools: REFUND, to: executor.holder.publicKey });
      const denied = await expectDenied(env, () => callMeta(as(executor), REFUND, refund(5), proved(t3.token, executor.holder.secretKey, REFUND, refund(5))), 'delegation_invalid');
      expect(textOf(denied)).toContain('is 3 deep; this policy accepts at most 2 (max_delegation_depth)');
    });

    it('a link signed by the wrong key → delegation_invalid; a link with a bad signature → bad_signature', async () => {
      // Mallory signs a child of the planner's token, naming herself as issuer.
      const bySomeoneElse = mint({ key: mallory.holder.secretKey, issuer: kidHex(mallory.holder.kid), tool: REFUND, ttl: 60, holderKey: mallory.holder.publicKey, parent: bytesOf(root.token) });
      await expectDenied(env, () => callMeta(as(mallory), REFUND, refund(5), proved(bySomeoneElse.token, mallory.holder.secretKey, REFUND, refund(5))), 'delegation_invalid');
      // The same child with the planner's key id and issuer, still signed by Mallory.
      const claimed = mint({ key: mallory.holder.secretKey, issuer: kidHex(planner.holder.kid), tool: REFUND, ttl: 60, holderKey: mallory.holder.publicKey, parent: bytesOf(root.token) });
      const bytes = Buffer.from(bytesOf(claimed.token));
      bytes.set(planner.holder.kid, bytes.indexOf(Buffer.from(mallory.holder.kid)));
      await expectDenied(env, () => callMeta(as(mallory), REFUND, refund(5), proved(printable(bytes), mallory.holder.secretKey, REFUND, refund(5))), 'bad_signature');
      // A valid child with one signature bit flipped.
      const flipped = Buffer.from(bytesOf(t2.token));
      flipped[flipped.length - 1]! ^= 1;
      await expectDenied(env, () => callMeta(as(sub), REFUND, refund(5), proved(printable(flipped), sub.holder.secretKey, REFUND, refund(5))), 'bad_signature');
    });

    it('a link spliced from another chain → bad_signature (prf swapped) or delegation_invalid (grafted)', async () => {
      // Two parents of the same holder and the same length; the child of one, re-pointed at the other.
      const a = delegate(root.token, { key: planner.holder.secretKey, tools: REFUND, when: [{ arg: 'amount', op: '<=', value: 30 }], ttl: 300, to: executor.holder.publicKey });
      const b = delegate(root.token, { key: planner.holder.secretKey, tools: REFUND, when: [{ arg: 'amount', op: '<=', value: 90 }], ttl: 300, to: executor.holder.publicKey });
      expect(b.bytes.length).toBe(a.bytes.length);
      const child = Buffer.from(delegate(a.token, { key: executor.holder.secretKey, tools: REFUND, to: sub.holder.publicKey }).bytes);
      const at = child.indexOf(Buffer.from(a.bytes));
      const spliced = Buffer.concat([child.subarray(0, at), b.bytes, child.subarray(at + a.bytes.length)]);
      await expectDenied(env, () => callMeta(as(sub), REFUND, refund(50), proved(printable(spliced), sub.holder.secretKey, REFUND, refund(50))), 'bad_signature');
      // Grafted: the executor signs a child under Mallory's token, which binds her key, not his.
      const hers = await requestBound(as(mallory), REFUND, mallory.publicHex);
      const grafted = mint({ key: executor.holder.secretKey, issuer: kidHex(executor.holder.kid), tool: REFUND, ttl: 60, holderKey: sub.holder.publicKey, parent: bytesOf(hers.token) });
      await expectDenied(env, () => callMeta(as(sub), REFUND, refund(5), proved(grafted.token, sub.holder.secretKey, REFUND, refund(5))), 'delegation_invalid');
    });

    it('a delegated token never grants more than the policy grants the authenticated agent', async () => {
      // A root for payments.* minted by the operator to the planner; only the planner may read charges.
      const wide = mint({ key: env.issuerKey(), tool: 'payments.*', agent: 'planner', ttl: 300, holderKey: planner.holder.publicKey });
      const args = { charge_id: 'ch_1003' };
      await expectForwarded(env, () => callMeta(as(planner), GET_CHARGE, args, proved(wide.token, planner.holder.secretKey, GET_CHARGE, args)), { server: 'payments', tool: 'get_charge', args });
      const child = delegate(wide.token, { key: planner.holder.secretKey, tools: GET_CHARGE, to: executor.holder.publicKey });
      const denied = await expectDenied(env, () => callMeta(as(executor), GET_CHARGE, args, proved(child.token, executor.holder.secretKey, GET_CHARGE, args)), 'agent_not_allowed');
      expect(textOf(denied)).toContain('"executor"');
    });
  });
});

/** The COSE bytes of a printable token. */
function bytesOf(token: string): Uint8Array {
  return Buffer.from(token.slice(4), 'base64url');
}

/** Every decision line of every audit log in this env. */
function auditLines(env: PolicyEnv): { decision: string; code: string; agent: string | null; token_id: string | null }[] {
  return auditText(env).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { decision: string; code: string; agent: string | null; token_id: string | null });
}

/** Every audit log in this env: serve's, and one per `serve --stdio` process. */
function auditText(env: PolicyEnv): string {
  const files = [join(env.stateDir, 'audit.log'), ...readdirSync(env.dir).filter((f) => /^audit-stdio-\d+\.log$/.test(f)).map((f) => join(env.dir, f))];
  return files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('');
}

describe('over HTTP: POST /v1/tokens with holder_key, the Capframe-Proof header, and max_delegation_depth read per call', () => {
  let env: PolicyEnv;
  let proxy: Proxy;

  beforeAll(async () => {
    env = createPolicyEnv(({ callLog }) => policyBody(callLog));
    proxy = await openProxy('http', env);
  }, 60_000);

  afterAll(async () => {
    if (proxy !== undefined) expect(await proxy.stop()).toBe(0);
    env?.remove();
  });

  const postToken = (agent: TestAgent, body: unknown) =>
    fetch(`${proxy.http!.origin}/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.apiKey}` },
      body: JSON.stringify(body),
    });

  it('POST /v1/tokens binds the token to holder_key; a bad key or one the agent does not hold is a clear 403', async () => {
    const ok = await postToken(planner, { tool: REFUND, holder_key: planner.publicHex });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { token: string; holder_key: string };
    expect(body.holder_key).toBe(planner.publicHex);
    // base64url is accepted too, and names the same key.
    const b64 = (await (await postToken(planner, { tool: REFUND, holder_key: Buffer.from(planner.holder.publicKey).toString('base64url') })).json()) as { holder_key: string };
    expect(b64.holder_key).toBe(planner.publicHex);

    const cases: [unknown, string, RegExp][] = [
      ['zz', 'malformed_token', /holder_key is not usable: .*32 bytes/],
      ['00'.repeat(32), 'malformed_token', /holder_key is not usable: not a usable Ed25519 holder key/],
      [42, 'malformed_token', /holder_key must be the hex or base64url Ed25519 public key/],
      [mallory.publicHex, 'agent_not_allowed', new RegExp(`holder_key ${mallory.publicHex} is not one of agent "planner"'s holder_keys`)],
    ];
    for (const [key, code, reason] of cases) {
      const r = await postToken(planner, { tool: REFUND, holder_key: key });
      expect(r.status).toBe(403);
      const denied = (await r.json()) as { code: string; reason: string };
      expect(denied.code).toBe(code);
      expect(denied.reason).toMatch(reason);
    }
  });

  it('the proof may come in the Capframe-Proof header (and the token in Capframe-Token)', async () => {
    const headers: Record<string, string> = {};
    const client = new Client({ name: 'header-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(proxy.http!.url), {
        requestInit: { headers: { authorization: `Bearer ${planner.apiKey}` } },
        // Per-request headers: the SDK's own are fixed per transport.
        fetch: (url, init) => {
          const merged = new Headers(init?.headers);
          for (const [name, value] of Object.entries(headers)) merged.set(name, value);
          return fetch(url, { ...init, headers: merged });
        },
      }),
    );
    try {
      const { token } = await requestBound(client, REFUND, planner.publicHex);
      const args = refund(7);
      headers['capframe-token'] = token;
      headers['capframe-proof'] = createProof({ token, tool: REFUND, args, key: planner.holder.secretKey }).proof;
      await expectForwarded(env, () => client.callTool({ name: REFUND, arguments: args }) as never, forwardedRefund(7));
      await expectDenied(env, () => client.callTool({ name: REFUND, arguments: args }) as never, 'replay');
      headers['capframe-proof'] = createProof({ token, tool: REFUND, args, key: planner.holder.secretKey }).proof;
      await expectDenied(env, () => client.callTool({ name: REFUND, arguments: refund(8) }) as never, 'bad_proof');
    } finally {
      await client.close();
    }
  });

  it('lowering max_delegation_depth in a running serve refuses deeper chains from the next call on', async () => {
    const client = await proxy.connect({ agentKey: planner.apiKey });
    const subClient = await proxy.connect({ agentKey: sub.apiKey });
    const { token } = await requestBound(client, REFUND, planner.publicHex);
    const c1 = delegate(token, { key: planner.holder.secretKey, tools: REFUND, to: executor.holder.publicKey });
    const c2 = delegate(c1.token, { key: executor.holder.secretKey, tools: REFUND, to: sub.holder.publicKey });
    await expectForwarded(env, () => callMeta(subClient, REFUND, refund(3), proved(c2.token, sub.holder.secretKey, REFUND, refund(3))), forwardedRefund(3));

    const reloads = () => (proxy.http!.stderr().match(/"msg":"policy reloaded"/g) ?? []).length;
    const before = reloads();
    writeFileSync(env.policyFile, readFileSync(env.policyFile, 'utf8').replace('max_delegation_depth: 2', 'max_delegation_depth: 1'));
    const deadline = Date.now() + 15_000;
    while (reloads() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(reloads(), 'serve did not reload the policy').toBeGreaterThan(before);

    const denied = await expectDenied(env, () => callMeta(subClient, REFUND, refund(3), proved(c2.token, sub.holder.secretKey, REFUND, refund(3))), 'delegation_invalid');
    expect(textOf(denied)).toContain('at most 1 (max_delegation_depth)');
  });
});
