#!/usr/bin/env node
// planner → executor → sub-executor through `capframe serve`, with capframeClient.
//
//   npm run build:ts && node examples/agents/run.mjs [--dir <dir>] [--json]
//
// Writes a copy of policy.yaml with fresh agent API keys and holder keys into <dir> (a
// temp dir by default), starts `capframe serve` on it in front of the payments example
// server, and runs three agents, each over its own connection with its own API key:
//
//   planner       gets a token for payments.refund from the proxy (amount <= 200, the
//                 policy's bound), bound to its holder key, and delegates amount <= 50
//                 to the executor's key;
//   executor      uses that token with its own key, and delegates amount <= 20 to the
//                 sub-executor's key;
//   sub-executor  uses that one.
//
// Each tries refunds of 15, 30 and 150. Every call carries a fresh holder proof; the
// proxy checks the whole chain, the proof and the policy, and forwards what passes.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parseDocument } from 'yaml';

// Inside this repository the package refers to itself by name (its dist/ build);
// elsewhere `npm install capframe` provides it.
import { capframeClient, decisionOf, generateKeyPair } from 'capframe';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CLI = fileURLToPath(new URL('../../bin/capframe.js', import.meta.url));
const PAYMENTS = fileURLToPath(new URL('../servers/payments.js', import.meta.url));
const AGENTS = ['planner', 'executor', 'sub-executor'];
const TOOL = 'payments.refund';
const AMOUNTS = [15, 30, 150];
/** ch_1003 holds 2,500 USD: room for every refund below. */
const refund = (amount) => ({ charge_id: 'ch_1003', amount, currency: 'USD', reason: `agents example: refund ${amount}` });

/** policy.yaml with this run's keys, the payments server by absolute path and a CALL_LOG. */
function writePolicy(dir, agents) {
  const doc = parseDocument(readFileSync(join(HERE, 'policy.yaml'), 'utf8'));
  for (const [name, agent] of Object.entries(agents)) {
    doc.setIn(['capframe', 'agents', name, 'key_sha256'], createHash('sha256').update(agent.apiKey).digest('hex'));
    doc.setIn(['capframe', 'agents', name, 'holder_keys'], [Buffer.from(agent.holder.publicKey).toString('hex')]);
  }
  const callLog = join(dir, 'calls.log');
  doc.setIn(['capframe', 'servers', 'payments'], { command: process.execPath, args: [PAYMENTS], env: { CALL_LOG: callLog }, timeout: 30 });
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, doc.toString());
  return { policy, callLog };
}

/** `capframe serve --port 0`, resolved with its URL once it listens. */
function startServe(policy) {
  const child = spawn(process.execPath, [CLI, 'serve', '--policy', policy, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /^capframe: serving (http:\/\/\S+)$/m.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`capframe serve exited with ${code}:\n${stderr}`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  return { url, stop };
}

/** One agent's MCP connection to the proxy, authenticated with its API key. */
async function connect(url, name, apiKey) {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${apiKey}` } } }));
  return client;
}

/**
 * Runs the example; resolves with each attempt's outcome and the path of the payments
 * server's CALL_LOG (one line per call that reached it).
 */
export async function runAgentsExample({ dir, print = () => {} } = {}) {
  const agents = Object.fromEntries(AGENTS.map((name) => [name, { apiKey: `cfk_${randomBytes(24).toString('base64url')}`, holder: generateKeyPair() }]));
  const { policy, callLog } = writePolicy(dir, agents);
  const serve = startServe(policy);
  const clients = [];
  const outcomes = [];
  try {
    const url = await serve.url;
    print(`capframe serve on ${url}\n`);
    const open = async (name, options) => {
      const client = await connect(url, name, agents[name].apiKey);
      clients.push(client);
      return capframeClient(client, { holderKey: agents[name].holder.secretKey, ...options });
    };
    const attempt = async (name, agent) => {
      for (const amount of AMOUNTS) {
        const result = await agent.callTool({ name: TOOL, arguments: refund(amount) });
        const decision = decisionOf(result);
        const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
        const allowed = decision?.allowed === true && result.isError !== true;
        outcomes.push({ agent: name, amount, allowed, code: decision?.code ?? null, text });
        print(`${name.padEnd(13)} refund ${String(amount).padStart(3)}  ${allowed ? `OK      ${JSON.parse(text).refund_id}` : text}\n`);
      }
    };

    // The planner: tokens come from the proxy (capframe.request_token with its holder key).
    const planner = await open('planner', { ttl: 600 });
    await attempt('planner', planner);

    // The planner hands the executor a narrower token for the executor's key, offline.
    const forExecutor = await planner.delegate({
      tools: TOOL,
      when: [{ arg: 'amount', op: '<=', value: 50 }],
      ttl: 300,
      to: agents.executor.holder.publicKey,
      agent: 'executor',
    });
    const executor = await open('executor', { token: forExecutor.token });
    await attempt('executor', executor);

    // The executor narrows it again for the sub-executor.
    const forSub = await executor.delegate({
      tools: TOOL,
      when: [{ arg: 'amount', op: '<=', value: 20 }],
      ttl: 120,
      to: agents['sub-executor'].holder.publicKey,
      agent: 'sub-executor',
    });
    const subExecutor = await open('sub-executor', { token: forSub.token });
    await attempt('sub-executor', subExecutor);
    return { outcomes, callLog };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await serve.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--dir');
  const dir = at === -1 ? mkdtempSync(join(tmpdir(), 'capframe-agents-')) : args[at + 1];
  const json = args.includes('--json');
  try {
    const result = await runAgentsExample({ dir, print: json ? undefined : (line) => process.stdout.write(line) });
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    if (at === -1) rmSync(dir, { recursive: true, force: true });
  }
}
