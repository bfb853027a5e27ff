import type { Command } from 'commander';

import { keyId } from '../../lib/ed25519.js';
import { fromPrintable } from '../../token/printable.js';
import { createVerifier, type VerifyContext } from '../../verify/verifier.js';
import { parseJsonOption } from '../args.js';
import { chainLines, chainView, failedLink } from '../chain-format.js';
import { withStore } from '../context.js';
import { EXIT_DENIED, out } from '../exit.js';
import { decisionJson, formatDecision } from '../format.js';
import { resolveToken } from '../resolve-token.js';
import type { SetExit } from './index.js';

interface VerifyOpts {
  token: string;
  tool?: string;
  args?: string;
  proof?: string;
  audience?: string;
  policy?: string;
  stateDir?: string;
  json?: boolean;
}

export function registerVerify(program: Command, setExit: SetExit): void {
  program
    .command('verify')
    .description('check a token (and with --tool/--args/--proof, one call): prints OK or DENIED <code>: <reason>, and a delegated token\'s whole chain')
    .requiredOption('--token <token|id>', 'a cf1. token or a tok_ id from the ledger')
    .option('--tool <name>', 'check a call of this tool')
    .option('--args <json>', 'the call\'s arguments as JSON; its constraints must hold on them')
    .option('--proof <proof>', 'the holder proof for the call (from `capframe proof`), for a holder-bound token')
    .option('--audience <name>', 'verify as this audience')
    .option('--policy <file>', 'policy file (locates the state directory and the store; its max_delegation_depth applies)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print JSON')
    .action(async (opts: VerifyOpts) => {
      // A tok_ id and the revocations come from the store (the ledger and revocation set in Redis, or the state directory).
      const { token, verifier } = await withStore(opts, async ({ keys, store, policy }) => ({
        token: await resolveToken(store, opts.token),
        verifier: createVerifier({
          keys: keys.trustedKeys(),
          revoked: await store.revokedIds(),
          ...(policy !== undefined && { maxDepth: policy.maxDelegationDepth }),
        }),
      }));
      const call = opts.tool !== undefined || opts.args !== undefined || opts.proof !== undefined || opts.audience !== undefined;
      const context: VerifyContext | undefined = call
        ? {
            ...(opts.tool !== undefined && { tool: opts.tool }),
            ...(opts.args !== undefined && { args: parseJsonOption(opts.args, '--args') }),
            ...(opts.proof !== undefined && { proof: opts.proof }),
            ...(opts.audience !== undefined && { audience: opts.audience }),
          }
        : undefined;
      const decision = verifier.verify(token, context);
      // Without a call, bad_proof is the verifier's answer for a holder-bound token
      // that verified in every other respect: what it lacks is a proof per call, which
      // is not this question. (The proxy, guards and verify() still require one.)
      const holderBound = decision.holderKey !== undefined;
      const inspected = !call && decision.code === 'bad_proof' && holderBound;
      const valid = decision.allowed || inspected;
      const bytes = fromPrintable(token.trim());
      const links = bytes === undefined ? [] : chainView(bytes);
      const failed = valid ? null : failedLink(decision);
      const holder = holderBound ? Buffer.from(keyId(decision.holderKey!)).toString('hex') : null;

      if (opts.json === true) {
        const base = JSON.parse(decisionJson(decision)) as Record<string, unknown>;
        out(JSON.stringify({ ...base, valid, holder_kid: holder, failed_link: failed, chain: links.slice().reverse() }));
      } else {
        out(inspected ? `${formatDecision({ ...decision, allowed: true, code: 'ok' })} holder=${holder} (holder-bound: each call needs a proof by this key)` : formatDecision(decision));
        if (links.length > 1 || holderBound) for (const line of chainLines(links, failed)) out(line);
      }
      setExit(valid ? 0 : EXIT_DENIED);
    });
}
