import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { MalformedError } from '../../lib/cbor/validate.js';
import { tokenId } from '../../token/claims.js';
import { reasonFor, malformed } from '../../token/codes.js';
import { parseToken } from '../../token/parse.js';
import { fromPrintable } from '../../token/printable.js';
import { parseTokenId } from '../../verify/token-id.js';
import { openStore } from '../context.js';
import { out } from '../exit.js';
import type { SetExit } from './index.js';

/** The cti of a `tok_` id or of a printable token. */
function ctiOf(input: string): Uint8Array {
  const text = input.trim();
  if (text.startsWith('tok_')) return parseTokenId(text);
  const bytes = fromPrintable(text);
  if (bytes === undefined) throw new CapframeError('invalid_argument', 'not a capframe token or tok_ id');
  try {
    return parseToken(bytes).cti;
  } catch (error) {
    if (error instanceof MalformedError) {
      throw new CapframeError('invalid_argument', `cannot revoke: ${reasonFor(malformed(error.detail))}`);
    }
    throw error;
  }
}

export function registerRevoke(program: Command, setExit: SetExit): void {
  program
    .command('revoke')
    .description('revoke a token at once (also in a running `capframe serve`)')
    .requiredOption('--token <token|id>', 'a cf1. token or a tok_ id')
    .option('--policy <file>', 'policy file (locates the state directory)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .action(async (opts: { token: string; policy?: string; stateDir?: string }) => {
      const cti = ctiOf(opts.token);
      const { store } = await openStore(opts);
      const added = store.revoke(cti);
      out(`${added ? 'revoked' : 'already revoked'} ${tokenId(cti)}`);
      setExit(0);
    });
}
