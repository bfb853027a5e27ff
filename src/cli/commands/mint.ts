import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { keyId } from '../../lib/ed25519.js';
import { mintGranted } from '../../token/mint-granted.js';
import { parseWholeNumber } from '../args.js';
import { withStore } from '../context.js';
import { holderOption } from '../key-file.js';
import { EXIT_DENIED, err, out } from '../exit.js';
import type { SetExit } from './index.js';

export function registerMint(program: Command, setExit: SetExit): void {
  program
    .command('mint')
    .description('mint a capability token that a policy rule grants')
    .requiredOption('--policy <file>', 'policy file')
    .requiredOption('--tool <name>', 'tool name, e.g. database.query')
    .option('--capability <name>', 'capability the token carries')
    .option('--agent <name>', 'agent the token is for (the sub claim)')
    .option('--ttl <seconds>', 'lifetime in seconds (capped by the rule)')
    .option('--holder <public key>', 'bind the token to this holder key (hex or base64url, from `keys generate --holder`): every call then needs a proof by it')
    .option('--json', 'print JSON')
    .action(async (opts: { policy: string; tool: string; capability?: string; agent?: string; ttl?: string; holder?: string; json?: boolean }) => {
      const ttl = opts.ttl === undefined ? undefined : parseWholeNumber(opts.ttl, '--ttl');
      const holderKey = opts.holder === undefined ? undefined : holderOption(opts.holder);
      await withStore({ policy: opts.policy }, async ({ keys, store, policy }) => {
        if (policy === undefined) throw new CapframeError('invalid_argument', '--policy is required');
        const agentNames = Object.keys(policy.agents);
        if (opts.agent !== undefined && agentNames.length > 0 && !agentNames.includes(opts.agent)) {
          err(`DENIED agent_unknown: agent "${opts.agent}" is not defined in ${opts.policy}`);
          setExit(EXIT_DENIED);
          return;
        }
        const result = mintGranted(policy, () => keys.issuerKey(), {
          tool: opts.tool,
          ...(opts.agent !== undefined && { agent: opts.agent }),
          ...(opts.capability !== undefined && { capability: opts.capability }),
          ...(ttl !== undefined && { ttl }),
          ...(holderKey !== undefined && { holderKey }),
        });
        if ('allowed' in result) {
          err(`DENIED ${result.code}: cannot mint ${opts.tool}: ${result.reason}`);
          setExit(EXIT_DENIED);
          return;
        }
        const { minted, grant } = result;
        if (ttl !== undefined && ttl > grant.ttl) {
          err(`capframe: --ttl ${ttl} capped to ${grant.ttl}s by the rule at ${opts.policy}:${grant.rule.line}`);
        }
        // Recorded before it is printed: a token the ledger does not know is never handed out.
        await store.record(minted);
        if (opts.json === true) {
          out(
            JSON.stringify({
              token: minted.token,
              id: minted.id,
              tool: minted.claims.tool,
              capability: minted.claims.cap ?? null,
              agent: minted.claims.sub ?? null,
              expires_at: minted.expiresAt.toISOString(),
              when: minted.claims.when ?? [],
              holder_kid: holderKey === undefined ? null : Buffer.from(keyId(holderKey)).toString('hex'),
            }),
          );
        } else {
          out(minted.token);
          const bound = holderKey === undefined ? '' : `, bound to holder key ${Buffer.from(keyId(holderKey)).toString('hex')}`;
          err(`minted ${minted.id} for ${opts.tool}${bound}, expires ${minted.expiresAt.toISOString()}`);
        }
        setExit(0);
      });
    });
}

