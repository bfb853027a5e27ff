import { Command, CommanderError } from 'commander';

import { CapframeError } from '../errors.js';
import { packageInfo } from '../lib/package-info.js';
import { EXIT_ERROR, err } from './exit.js';
import { registerCommands } from './commands/index.js';

/**
 * Runs the CLI and resolves to the process exit code. Errors become one line on
 * stderr naming what was wrong; stack traces only with CAPFRAME_DEBUG=1.
 */
export async function main(argv: string[]): Promise<number> {
  // `capframe … | head` closes the pipe early; that is not an error worth a trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  let exitCode = 0;
  const program = new Command('capframe')
    .description('Capability tokens and a default-deny policy for MCP tool calls')
    .version(packageInfo().version, '-V, --version', 'print the version')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      // Commander's own messages start with "error: "; keep them to one clear line.
      outputError: (text, write) => write(`capframe: ${text.replace(/^error: /, '').trimEnd()}\n`),
    });
  registerCommands(program, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and version exit through here with code 0; commander printed them already.
    return error.exitCode === 0 ? 0 : EXIT_ERROR;
  }
  if (process.env.CAPFRAME_DEBUG === '1' && error instanceof Error) err(error.stack ?? error.message);
  if (error instanceof CapframeError) {
    err(`capframe: ${error.message}`);
  } else {
    err(`capframe: internal error: ${error instanceof Error ? error.message : String(error)}`);
  }
  return EXIT_ERROR;
}
