import type { Command } from 'commander';

import { createVerifier } from '../../verify/verifier.js';
import { openStore } from '../context.js';
import { EXIT_DENIED, out } from '../exit.js';
import { decisionJson, formatDecision } from '../format.js';
import { resolveToken } from '../resolve-token.js';
import type { SetExit } from './index.js';

export function registerVerify(program: Command, setExit: SetExit): void {
  program
    .command('verify')
    .description('check a token: prints OK with its scope and expiry, or DENIED <code>: <reason>')
    .requiredOption('--token <token|id>', 'a cf1. token or a tok_ id from the ledger')
    .option('--policy <file>', 'policy file (locates the state directory)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print JSON')
    .action(async (opts: { token: string; policy?: string; stateDir?: string; json?: boolean }) => {
      const { store } = await openStore(opts);
      const token = resolveToken(store, opts.token);
      const verifier = createVerifier({ keys: store.trustedKeys(), revoked: store.revokedIds() });
      const decision = verifier.verify(token);
      out(opts.json === true ? decisionJson(decision) : formatDecision(decision));
      setExit(decision.allowed ? 0 : EXIT_DENIED);
    });
}
