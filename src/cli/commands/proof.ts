import type { Command } from 'commander';

import { createProof } from '../../token/proof.js';
import { parseJsonOption } from '../args.js';
import { out } from '../exit.js';
import { readKeyFile } from '../key-file.js';
import type { SetExit } from './index.js';

export function registerProof(program: Command, setExit: SetExit): void {
  program
    .command('proof')
    .description('sign a holder proof for one call with a holder-bound token (send it as _meta["capframe/proof"])')
    .requiredOption('--token <token>', 'the holder-bound (or delegated) cf1. token the call presents')
    .requiredOption('--key <file>', 'the holder key file (from `keys generate --holder --out <file>`)')
    .requiredOption('--tool <name>', 'the tool called, e.g. payments.refund')
    .option('--args <json>', 'the call\'s arguments as JSON, exactly as sent', '{}')
    .option('--audience <name>', 'the verifier the proof is for (required by verifiers that name an audience)')
    .option('--json', 'print JSON')
    .action((opts: { token: string; key: string; tool: string; args: string; audience?: string; json?: boolean }) => {
      const made = createProof({
        token: opts.token,
        key: readKeyFile(opts.key, '--key'),
        tool: opts.tool,
        args: parseJsonOption(opts.args, '--args'),
        ...(opts.audience !== undefined && { audience: opts.audience }),
      });
      if (opts.json === true) {
        out(JSON.stringify({ proof: made.proof, iat: new Date(made.iat).toISOString(), nonce: Buffer.from(made.nonce).toString('hex') }));
      } else {
        out(made.proof);
      }
      setExit(0);
    });
}
