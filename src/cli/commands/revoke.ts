import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { tokenId } from '../../token/claims.js';
import { claimedExpiry, ctiOfReference } from '../../verify/token-id.js';
import { withStore } from '../context.js';
import { out } from '../exit.js';
import type { SetExit } from './index.js';

export function registerRevoke(program: Command, setExit: SetExit): void {
  program
    .command('revoke')
    .description('revoke a token at once (also in every running `capframe serve` and following service)')
    .requiredOption('--token <token|id>', 'a cf1. token or a tok_ id')
    .option('--policy <file>', 'policy file (locates the state directory and the store)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print JSON')
    .action(async (opts: { token: string; policy?: string; stateDir?: string; json?: boolean }) => {
      let cti: Uint8Array;
      try {
        cti = ctiOfReference(opts.token);
      } catch (error) {
        throw new CapframeError('invalid_argument', `cannot revoke: ${(error as Error).message}`);
      }
      const exp = claimedExpiry(opts.token);
      // A store that cannot be reached fails here (exit 1): never a success that did not happen.
      await withStore(opts, async ({ store }) => {
        const id = tokenId(cti);
        // A token minted elsewhere (another instance, another state directory) must still be
        // revocable here, so an unknown id is revoked too; saying so catches a mistyped id
        // or the wrong --policy / --state-dir.
        const issuedHere = (await store.findToken(id)) !== undefined;
        const added = await store.revoke(cti, exp === undefined ? {} : { exp });
        if (opts.json === true) {
          const where = store.kind === 'file' ? { state_dir: store.location } : { store: store.location };
          out(JSON.stringify({ id, revoked: true, already_revoked: !added, issued_by_this_store: issuedHere, ...where }));
        } else {
          const note = issuedHere ? '' : ` (not issued by this store: ${store.location} has no record of it; revoked anyway, in case it was minted elsewhere)`;
          out(`${added ? 'revoked' : 'already revoked'} ${id}${note}`);
        }
        setExit(0);
      });
    });
}
