import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { tokenId } from '../../token/claims.js';
import { ctiOfReference } from '../../verify/token-id.js';
import { openStore } from '../context.js';
import { out } from '../exit.js';
import type { SetExit } from './index.js';

export function registerRevoke(program: Command, setExit: SetExit): void {
  program
    .command('revoke')
    .description('revoke a token at once (also in a running `capframe serve`)')
    .requiredOption('--token <token|id>', 'a cf1. token or a tok_ id')
    .option('--policy <file>', 'policy file (locates the state directory)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .action(async (opts: { token: string; policy?: string; stateDir?: string }) => {
      let cti: Uint8Array;
      try {
        cti = ctiOfReference(opts.token);
      } catch (error) {
        throw new CapframeError('invalid_argument', `cannot revoke: ${(error as Error).message}`);
      }
      const { store } = await openStore(opts);
      const added = store.revoke(cti);
      out(`${added ? 'revoked' : 'already revoked'} ${tokenId(cti)}`);
      setExit(0);
    });
}
