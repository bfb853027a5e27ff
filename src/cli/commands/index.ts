import type { Command } from 'commander';

import { registerAudit } from './audit.js';
import { registerDiscover } from './discover.js';
import { registerPolicy } from './policy.js';

/** Lets an action set the process exit code (0 OK, 2 denied, 1 error). */
export type SetExit = (code: number) => void;

/**
 * Every CLI command lives in its own file under src/cli/commands/ and exports a
 * `register*` function; this list is the whole CLI.
 */
export function registerCommands(program: Command, setExit: SetExit): void {
  void program;
  void setExit;
  registerPolicy(program, setExit);
  registerAudit(program, setExit);
  registerDiscover(program, setExit);
}
