// The load generator: a separate process (forked, driven over IPC) so the proxy's CPU is
// measured alone, with keep-alive connections and pre-serialised requests so that it is
// not the bottleneck. It reports its own CPU per call and how busy it was.
//
// Messages: {cmd: 'open', target, url, headers} opens an MCP session (initialize +
// notifications/initialized); {cmd: 'run', target, tool, meta, concurrency, durationMs |
// calls, args?, metas?} sends tools/call requests and answers {calls, errors, isError,
// elapsedMs, cpuUs, codes}. `args` may be a list of argument objects used in turn (mixed
// loads); `metas` one `_meta` per call (fresh holder proofs).
import { Agent, request } from 'node:http';

const targets = new Map();
let nextId = 1;

function post(t, body, extraHeaders = {}) {
  return new Promise((resolve, reject) => {
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': Buffer.byteLength(body),
      ...t.headers,
      ...extraHeaders,
    };
    const req = request(t.url, { method: 'POST', headers, agent: t.agent }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC message of a JSON or SSE answer. */
function messageOf(answer) {
  if ((answer.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    const data = answer.text.split('\n').find((l) => l.startsWith('data:'));
    return data === undefined ? undefined : JSON.parse(data.slice(5));
  }
  return JSON.parse(answer.text);
}

async function open({ target, url, headers = {} }) {
  const t = { url: new URL(url), headers: { ...headers }, agent: new Agent({ keepAlive: true, maxSockets: 64 }) };
  const init = await post(t, JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'capframe-load', version: '1' } } }));
  const m = messageOf(init);
  if (init.status !== 200 || m?.result === undefined) throw new Error(`initialize on ${url}: HTTP ${init.status} ${init.text.slice(0, 300)}`);
  const session = init.headers['mcp-session-id'];
  if (session !== undefined) t.headers['mcp-session-id'] = session;
  t.headers['mcp-protocol-version'] = m.result.protocolVersion;
  await post(t, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  targets.set(target, t);
  return { session };
}

async function run({ target, tool, meta, metas, concurrency, durationMs, calls: total, args = [{ sql: 'SELECT * FROM customers WHERE id = 1' }] }) {
  const t = targets.get(target);
  // Pre-serialised halves; only the id changes per request.
  // `metas`: one _meta per call (holder proofs are single-use), with args[0].
  const bodies = (metas ?? args).map((x) => {
    const a = metas === undefined ? x : args[0];
    const m = metas === undefined ? meta : x;
    return ['{"jsonrpc":"2.0","id":', `,"method":"tools/call","params":${JSON.stringify({ name: tool, arguments: a, ...(m !== undefined && { _meta: m }) })}}`];
  });
  let calls = 0;
  let errors = 0;
  let isError = 0;
  const codes = {};
  let firstError;
  const deadline = durationMs === undefined ? Infinity : performance.now() + durationMs;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let issued = 0;
  const worker = async () => {
    while (performance.now() < deadline && (total === undefined || issued < total)) {
      const n = issued++;
      const [head, tail] = bodies[n % bodies.length];
      try {
        const r = await post(t, `${head}${nextId++}${tail}`);
        if (r.status !== 200 || !r.text.includes('"result"')) {
          errors++;
          firstError ??= `HTTP ${r.status} ${r.text.slice(0, 300)}`;
        } else if (r.text.includes('"isError":true')) {
          isError++;
          const code = /DENIED (\w+)|UPSTREAM_ERROR (\w+)/.exec(r.text);
          const key = code?.[1] ?? code?.[2] ?? 'isError';
          codes[key] = (codes[key] ?? 0) + 1;
        }
      } catch (error) {
        errors++;
        firstError ??= error.message;
      }
      calls++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { calls, errors, isError, codes, firstError, elapsedMs, cpuUs: cpu.user + cpu.system };
}

process.on('message', async (msg) => {
  try {
    const result = msg.cmd === 'open' ? await open(msg) : await run(msg);
    process.send({ ok: true, ...result });
  } catch (error) {
    process.send({ ok: false, error: error.message });
  }
});
