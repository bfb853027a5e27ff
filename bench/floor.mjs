// The floor (SPEC §12): a minimal Node forwarder in front of the lean upstream — read
// the body, JSON parse + stringify, forward over a keep-alive agent, return the answer.
// What any JSON-aware proxy must at least do; Capframe's CPU per call is measured
// against it. Prints `listening <url>` on stdout.
//   node bench/floor.mjs <upstream url>
import { Agent, createServer, request } from 'node:http';

const upstream = new URL(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      res.writeHead(400).end();
      return;
    }
    const headers = { 'content-type': 'application/json', accept: req.headers.accept ?? 'application/json', 'content-length': Buffer.byteLength(body) };
    if (req.headers['mcp-session-id'] !== undefined) headers['mcp-session-id'] = req.headers['mcp-session-id'];
    if (req.headers['mcp-protocol-version'] !== undefined) headers['mcp-protocol-version'] = req.headers['mcp-protocol-version'];
    const up = request(upstream, { method: req.method, headers, agent }, (answer) => {
      const parts = [];
      answer.on('data', (c) => parts.push(c));
      answer.on('end', () => {
        const out = Buffer.concat(parts);
        const head = { 'content-type': answer.headers['content-type'] ?? 'application/json', 'content-length': out.length };
        if (answer.headers['mcp-session-id'] !== undefined) head['mcp-session-id'] = answer.headers['mcp-session-id'];
        res.writeHead(answer.statusCode, head);
        res.end(out);
      });
    });
    up.on('error', () => res.writeHead(502).end());
    up.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}/mcp\n`);
});
process.on('SIGTERM', () => process.exit(0));
