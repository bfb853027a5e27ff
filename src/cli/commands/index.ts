import type { Command } from 'commander';

import { registerAgents } from './agents.js';
import { registerAudit } from './audit.js';
import { registerBuildNative } from './build-native.js';
import { registerDelegate } from './delegate.js';
import { registerDemo } from './demo.js';
import { registerDiscover } from './discover.js';
import { registerDoctor } from './doctor.js';
import { registerInit } from './init.js';
import { registerKeys } from './keys.js';
import { registerMint } from './mint.js';
import { registerPolicy } from './policy.js';
import { registerProof } from './proof.js';
import { registerRevoke } from './revoke.js';
import { registerServe } from './serve.js';
import { registerVerify } from './verify.js';

/** Lets an action set the process exit code (0 OK, 2 denied, 1 error). */
export type SetExit = (code: number) => void;

/**
 * Every CLI command lives in its own file under src/cli/commands/ and exports a
 * `register*` function; this list is the whole CLI.
 */
export function registerCommands(program: Command, setExit: SetExit): void {
  registerInit(program, setExit);
  registerKeys(program, setExit);
  registerMint(program, setExit);
  registerPolicy(program, setExit);
  registerVerify(program, setExit);
  registerProof(program, setExit);
  registerDelegate(program, setExit);
  registerRevoke(program, setExit);
  registerServe(program, setExit);
  registerAgents(program, setExit);
  registerDemo(program, setExit);
  registerDoctor(program, setExit);
  registerBuildNative(program, setExit);
  registerAudit(program, setExit);
  registerDiscover(program, setExit);
}
