// Remote verification (the seed's "remote verification" row, issue 14): one AuthZEN
// evaluation over HTTP with keep-alive against a real `capframe serve`, next to a local
// `verify()` of the same token with the same call context, in one run.
// Run: npm run build:ts && node bench/authzen.mjs
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { signingKey } from '../dist/keys/keys.js';
import { mint } from '../dist/token/mint.js';
import { createVerifier } from '../dist/verify/verifier.js';
import { measure } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PEP_KEY = 'cfk_bench-pep';

function startServe(policy) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/capframe.js'), 'serve', '--policy', policy, '--port', '0'], { cwd: ROOT, env: { ...process.env, CAPFRAME_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr.on('data', (chunk) => {
      seen += chunk;
      const m = /serving (http:\/\/[^/\s]+)/.exec(seen);
      if (m) resolve({ child, base: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${seen.slice(-400)}`)));
  });
}

export async function runAuthzenBench() {
  const dir = mkdtempSync(join(tmpdir(), 'capframe-bench-authzen-'));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `capframe:
  version: "0.2"
  agents:
    gateway: { key_sha256: "${createHash('sha256').update(PEP_KEY).digest('hex')}", pdp: true }
    bot: { key_sha256: "${createHash('sha256').update('cfk_bot').digest('hex')}" }
  rules:
    - { tool: database.query, agents: [bot], ttl: 3600, when: [{ arg: sql, op: starts_with, value: "SELECT " }] }
`);
  const served = await startServe(policy);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const key = signingKey(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8'));
    const token = mint({ key, tool: 'database.query', agent: 'bot', ttl: 3600 }).token;
    const args = { sql: 'SELECT * FROM customers WHERE id = 1' };
    const body = JSON.stringify({
      subject: { type: 'agent', id: 'bot' },
      action: { name: 'tools/call' },
      resource: { type: 'mcp_tool', id: 'database.query', properties: { arguments: args } },
      context: { token },
    });
    const url = new URL('/access/v1/evaluation', served.base);
    const evaluate = () =>
      new Promise((resolve, reject) => {
        const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${PEP_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => (text.startsWith('{"decision":true') ? resolve() : reject(new Error(`not permitted: ${res.statusCode} ${text}`))));
        });
        req.once('error', reject);
        req.end(body);
      });
    await evaluate();
    const verifier = createVerifier({ keys: [key.publicKey] });
    const local = () => {
      const d = verifier.verify(token, { tool: 'database.query', args });
      if (!d.allowed) throw new Error(d.reason);
    };
    const rows = await measure(
      [
        { name: 'AuthZEN evaluation over HTTP (keep-alive, token + policy + audit)', fn: evaluate },
        { name: 'local verify() of the same token (verdict cache warm)', fn: local },
      ],
      { time: 2000, warmupTime: 300 },
    );
    return { rows, remote_over_local: rows[0].median_ns / rows[1].median_ns };
  } finally {
    agent.destroy();
    served.child.kill('SIGTERM');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import('./lib.mjs');
  const r = await runAuthzenBench();
  printTable('Remote (AuthZEN) vs local decision', r.rows);
  console.log(`  remote / local: ${r.remote_over_local.toFixed(0)}x`);
}
