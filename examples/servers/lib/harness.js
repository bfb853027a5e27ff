// Shared plumbing for the example MCP servers: transport selection (stdio or
// Streamable HTTP), the CALL_LOG call counter, and TOOL_DESCRIPTION_SUFFIX.
// Each example file only declares its tools; everything here is the same for all.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/** Text result helper: `{ content: [{ type: 'text', text }] }`. */
export function text(value, isError = false) {
  const body = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return { content: [{ type: 'text', text: body }], ...(isError ? { isError: true } : {}) };
}

/**
 * Builds an McpServer whose tools come from `defineTools(register)`; `register`
 * is `server.registerTool` with TOOL_DESCRIPTION_SUFFIX appended to every
 * description (tests use it to simulate a drifted tool definition).
 */
function buildServer(name, version, defineTools) {
  const server = new McpServer({ name: `capframe-example-${name}`, version });
  const suffix = process.env.TOOL_DESCRIPTION_SUFFIX ?? '';
  const register = (toolName, config, handler) =>
    server.registerTool(toolName, { ...config, description: `${config.description ?? ''}${suffix}` }, handler);
  defineTools(register);
  return server;
}

/**
 * Appends one JSON line per tools/call to $CALL_LOG, synchronously and before the
 * server dispatches it: tests count these lines to prove a denied call never
 * reached the upstream. Wrapping the transport (not the handler) also counts
 * calls whose arguments fail validation.
 */
function countCalls(transport, serverName) {
  const file = process.env.CALL_LOG;
  if (!file) return;
  const dispatch = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if (message && message.method === 'tools/call') {
      const line = { server: serverName, tool: message.params?.name, args: message.params?.arguments ?? {} };
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    }
    dispatch?.(message, extra);
  };
}

/**
 * Starts the server: stdio by default, or Streamable HTTP on 127.0.0.1:<port>/mcp
 * with `--http <port>` (stateless: a fresh McpServer + transport per request, so
 * tool state must live at module level, outside `defineTools`).
 */
export async function runServer({ name, version = '1.0.0', defineTools }) {
  const argv = process.argv.slice(2);
  const httpFlag = argv.indexOf('--http');
  if (httpFlag === -1) {
    const server = buildServer(name, version, defineTools);
    const transport = new StdioServerTransport();
    await server.connect(transport);
    countCalls(transport, name);
    return;
  }
  const port = Number(argv[httpFlag + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`${name}: --http needs a port number\n`);
    process.exit(1);
  }
  const http = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    if (req.method !== 'POST') {
      // Stateless mode has no standalone SSE stream or session to delete.
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    const server = buildServer(name, version, defineTools);
    // MCP_JSON_RESPONSE=1 answers POSTs with plain JSON instead of an SSE stream.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: process.env.MCP_JSON_RESPONSE === '1' });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      countCalls(transport, name);
      await transport.handleRequest(req, res);
    } catch (error) {
      process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`);
      if (!res.headersSent) res.writeHead(500).end();
    }
  });
  http.listen(port, '127.0.0.1', () => {
    const address = http.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    // One line on stderr so a test or script can learn the port when it asked for 0.
    process.stderr.write(`${name}: listening on http://127.0.0.1:${actual}/mcp\n`);
  });
}
