import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { mint } from '../../token/mint.js';
import { parseWholeNumber } from '../args.js';
import { openStore } from '../context.js';
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
    .option('--json', 'print JSON')
    .action(async (opts: { policy: string; tool: string; capability?: string; agent?: string; ttl?: string; json?: boolean }) => {
      const ttl = opts.ttl === undefined ? undefined : parseWholeNumber(opts.ttl, '--ttl');
      const { store, policy } = await openStore({ policy: opts.policy });
      if (policy === undefined) throw new CapframeError('invalid_argument', '--policy is required');
      const agentNames = Object.keys(policy.agents);
      if (opts.agent !== undefined && agentNames.length > 0 && !agentNames.includes(opts.agent)) {
        err(`DENIED agent_unknown: agent "${opts.agent}" is not defined in ${opts.policy}`);
        setExit(EXIT_DENIED);
        return;
      }
      const request: { tool: string; capability?: string; agent?: string } = { tool: opts.tool };
      if (opts.capability !== undefined) request.capability = opts.capability;
      if (opts.agent !== undefined) request.agent = opts.agent;
      const grant = policy.grant(request);
      if ('allowed' in grant) {
        err(`DENIED ${grant.code}: cannot mint ${opts.tool}: ${grant.reason}`);
        setExit(EXIT_DENIED);
        return;
      }
      if (ttl !== undefined && ttl > grant.ttl) {
        err(`capframe: --ttl ${ttl} capped to ${grant.ttl}s by the rule at ${opts.policy}:${grant.rule.line}`);
      }
      const minted = mint({
        key: store.issuerKey(),
        tool: opts.tool,
        ttl: Math.min(ttl ?? grant.ttl, grant.ttl),
        ...(opts.agent !== undefined && { agent: opts.agent }),
        ...((grant.capability ?? opts.capability) !== undefined && { capability: grant.capability ?? opts.capability }),
        ...(grant.when.length > 0 && { when: grant.when }),
        ...(policy.issuer !== undefined && { issuer: policy.issuer }),
      });
      store.record(minted);
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
          }),
        );
      } else {
        out(minted.token);
        err(`minted ${minted.id} for ${opts.tool}, expires ${minted.expiresAt.toISOString()}`);
      }
      setExit(0);
    });
}
