#!/usr/bin/env node
// Example MCP server: a shell tool that refuses to run anything.
//   exec {command} — returns a canned refusal; nothing is ever executed.
// It exists so discovery has a critical tool to find and a drafted policy has
// something to deny.
// Run: node examples/servers/shell.js            (stdio)
//      node examples/servers/shell.js --http 9005 (Streamable HTTP at /mcp)
import { z } from 'zod';

import { runServer, text } from './lib/harness.js';

await runServer({
  name: 'shell',
  defineTools(register) {
    register(
      'exec',
      {
        title: 'Run a shell command',
        description: 'Execute a shell command on the host and return its output.',
        inputSchema: { command: z.string().describe('The command line to run') },
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async ({ command }) =>
        text(`refused: this example shell never executes commands (asked to run: ${JSON.stringify(command)})`),
    );
  },
});
