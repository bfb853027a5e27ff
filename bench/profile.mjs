// A CPU profile of one macro target under load, for finding what to trim:
//   npm run build:ts && node bench/profile.mjs token|auto_mint|floor [seconds] [outdir]
// Writes <outdir>/<target>.cpuprofile (open in Chrome DevTools) and prints the top
// self-time entries of the busy part.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { signingKey } from '../dist/keys/keys.js';
import { mint } from '../dist/token/mint.js';
import { generator, start, startServe } from './macro.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const [target = 'token', seconds = '8', out = join(tmpdir(), 'capframe-profile')] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'capframe-prof-'));
const procs = [];
const prof = ['--cpu-prof', `--cpu-prof-dir=${out}`, `--cpu-prof-name=${target}.cpuprofile`];
try {
  const up = await start([join(HERE, 'upstream.mjs')], { ready: /listening (\S+)/ });
  procs.push(up.child);
  const gen = generator();
  procs.push(gen.child);
  let t;
  let proc;
  if (target === 'floor') {
    const f = await start([...prof, join(HERE, 'floor.mjs'), up.match[1]], { ready: /listening (\S+)/ });
    proc = f.child;
    t = { url: f.match[1], tool: 'query' };
  } else {
    process.env.PROXY_PROF = out;
    mkdirSync(join(dir, 's'));
    const key = randomBytes(24).toString('base64url');
    const agents = target === 'auto_mint' ? `  auto_mint: true\n  agents:\n    bot: { key_sha256: "${createHash('sha256').update(key).digest('hex')}" }\n` : '';
    const s = await startServe(join(dir, 's'), `capframe:\n  version: "0.2"\n  default_policy: deny\n${agents}  servers:\n    db: { url: "${up.match[1]}" }\n  rules:\n    - { tool: db.query, ttl: 3600 }\n`, target);
    proc = s.child;
    const token = mint({ key: signingKey(readFileSync(join(dir, 's', '.capframe', 'issuer.key'), 'utf8')), tool: 'db.query', ttl: 3600 }).token;
    t = target === 'auto_mint' ? { url: s.url, tool: 'db.query', headers: { authorization: `Bearer ${key}` } } : { url: s.url, tool: 'db.query', meta: { 'capframe/token': token } };
  }
  procs.push(proc);
  await gen.ask({ cmd: 'open', target, url: t.url, headers: t.headers ?? {} });
  const r = await gen.ask({ cmd: 'run', target, tool: t.tool, meta: t.meta, concurrency: 16, durationMs: Number(seconds) * 1000 });
  console.log(`${r.calls} calls, ${r.errors} errors, ${(r.calls / (r.elapsedMs / 1000)).toFixed(0)} calls/s`);
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
const file = join(out, readdirSync(out).find((f) => f.startsWith(target)));
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
let busy = 0;
p.samples.forEach((id, i) => {
  const f = byId.get(id).callFrame;
  if (f.functionName === '(idle)') return;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
  busy += p.timeDeltas[i] ?? 0;
});
console.log(`${file}: busy ${(busy / 1000).toFixed(0)} ms`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 35)) console.log(`${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
