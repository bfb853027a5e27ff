import type { Command } from 'commander';

import type { ServeOptions } from '../../proxy/serve.js';
import { err } from '../exit.js';
import type { SetExit } from './index.js';

/** Collects a repeatable option's values. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerServe(program: Command, setExit: SetExit): void {
  program
    .command('serve')
    .description('run the MCP proxy that enforces the policy on every tools/call')
    .requiredOption('--policy <file>', 'policy file')
    .option('--port <n>', 'HTTP port (0 picks a free one)')
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--stdio', 'serve one MCP client over stdin/stdout instead of HTTP (agent key from CAPFRAME_AGENT_KEY)')
    .option('--max-body <bytes>', 'largest request body accepted; larger gets 413', String(1024 * 1024))
    .option('--json-response', 'answer POSTs with JSON instead of SSE streams')
    .option('--max-sessions <n>', 'open MCP sessions at most, all clients together', '10000')
    .option('--max-sessions-per-agent <n>', 'open MCP sessions per agent at most', '32')
    .option('--max-anonymous-sessions <n>', 'open MCP sessions at most when the policy defines no agents', '64')
    .option('--session-handshake-timeout <seconds>', 'close a session that sends nothing after its initialize', '30')
    .option('--session-idle-timeout <seconds>', 'close a session idle this long', '1800')
    .option('--allowed-origin <origin>', 'accept browser requests from this Origin (repeatable; loopback origins are accepted on a loopback listener)', collect, [])
    .option('--allowed-host <host>', 'accept this Host header (repeatable; loopback names are always accepted)', collect, [])
    .option('--console', 'serve the operator console under /console (sign-in with CAPFRAME_ADMIN_KEY)')
    .option('--console-secure-cookie', "mark the console's session cookie Secure on a loopback listener too (TLS terminated in front)")
    .option('--audit-log <file>', "audit log (default: the policy's audit.path, else <state_dir>/audit.log); one process per log")
    .action(async (opts: ServeOptions) => {
      // Loaded when serving, not at start-up: the proxy brings the MCP SDK.
      const { serve } = await import('../../proxy/serve.js');
      await serve(opts, (url) => {
        err(`capframe: serving ${url}`);
        if (opts.console === true) err(`capframe: console ${url.replace(/\/mcp$/, '/console/')}`);
      });
      setExit(0);
      // Keep running: the HTTP server or stdio transport holds the event loop open.
    });
}
