import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { keyId } from '../../lib/ed25519.js';
import { delegate } from '../../token/delegate.js';
import { parseJsonOption, parseWholeNumber } from '../args.js';
import { err, out } from '../exit.js';
import { holderOption, readKeyFile } from '../key-file.js';
import type { SetExit } from './index.js';

export function registerDelegate(program: Command, setExit: SetExit): void {
  program
    .command('delegate')
    .description('delegate a narrower token to a sub-agent, offline: signed by your holder key, bound to theirs')
    .requiredOption('--token <token>', 'the parent cf1. token, bound to your holder key')
    .requiredOption('--key <file>', 'your holder key file (the key the parent token is bound to)')
    .requiredOption('--tool <pattern>', 'the tools the child may call: a name or * pattern within the parent\'s')
    .requiredOption('--to <public key>', 'the sub-agent\'s holder public key (hex or base64url, from `keys generate --holder`)')
    .option('--when <json>', 'constraints the child adds, as a JSON list, e.g. \'[{"arg":"amount","op":"<=","value":20}]\'')
    .option('--ttl <seconds>', 'lifetime in seconds (capped at the parent\'s expiry; default: until the parent expires)')
    .option('--agent <name>', 'the sub-agent\'s name (the child\'s sub claim, for people and logs)')
    .option('--audience <name>', 'restrict the child to one verifier (aud)')
    .option('--json', 'print JSON')
    .action((opts: { token: string; key: string; tool: string; to: string; when?: string; ttl?: string; agent?: string; audience?: string; json?: boolean }) => {
      const when = opts.when === undefined ? undefined : parseJsonOption(opts.when, '--when');
      if (when !== undefined && !Array.isArray(when)) {
        throw new CapframeError('invalid_argument', '--when must be a JSON list of constraints, e.g. \'[{"arg":"amount","op":"<=","value":20}]\'');
      }
      const to = holderOption(opts.to, '--to');
      const child = delegate(opts.token, {
        key: readKeyFile(opts.key, '--key'),
        tools: opts.tool,
        to,
        ...(when !== undefined && { when }),
        ...(opts.ttl !== undefined && { ttl: parseWholeNumber(opts.ttl, '--ttl') }),
        ...(opts.agent !== undefined && { agent: opts.agent }),
        ...(opts.audience !== undefined && { audience: opts.audience }),
      });
      const holder = Buffer.from(keyId(to)).toString('hex');
      if (opts.json === true) {
        out(
          JSON.stringify({
            token: child.token,
            id: child.id,
            tool: child.claims.tool,
            holder_kid: holder,
            agent: child.claims.sub ?? null,
            expires_at: child.expiresAt.toISOString(),
            when: child.claims.when ?? [],
            bytes: child.bytes.length,
          }),
        );
      } else {
        out(child.token);
        err(`delegated ${child.id} for ${child.claims.tool} to holder key ${holder}, expires ${child.expiresAt.toISOString()} (${child.bytes.length} bytes)`);
      }
      setExit(0);
    });
}
