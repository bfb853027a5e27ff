// A lean Streamable HTTP MCP upstream on plain node:http, for the macro benchmarks:
// `initialize` (with a session id), `notifications/initialized`, `tools/list` with one
// tool, and `tools/call` answered at once — no SDK, so its own cost does not hide the
// proxy's. Prints `listening <url>` on stdout.
//   node bench/upstream.mjs [port]
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const TOOL = { name: 'query', description: 'Answers at once.', inputSchema: { type: 'object', properties: { sql: { type: 'string' } } } };
const VERSION = '2025-06-18';
let calls = 0;

function send(res, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(405, { allow: 'POST, DELETE' }).end();
    return;
  }
  if (req.method === 'DELETE') {
    res.writeHead(200).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let m;
    try {
      m = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (m.method === 'tools/call') {
      calls++;
      send(res, { jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'ok' }] } });
    } else if (m.method === 'initialize') {
      const result = { protocolVersion: m.params?.protocolVersion ?? VERSION, capabilities: { tools: {} }, serverInfo: { name: 'lean-upstream', version: '1.0.0' } };
      send(res, { jsonrpc: '2.0', id: m.id, result }, { 'mcp-session-id': randomUUID() });
    } else if (m.method === 'tools/list') {
      send(res, { jsonrpc: '2.0', id: m.id, result: { tools: [TOOL] } });
    } else if (m.id === undefined) {
      res.writeHead(202).end(); // a notification
    } else {
      send(res, { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `no method ${m.method}` } });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}/mcp\n`);
});
process.on('message', (msg) => {
  if (msg === 'calls') process.send({ calls });
});
process.on('SIGTERM', () => process.exit(0));
