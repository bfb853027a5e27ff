import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { loadPolicy } from '../../policy/index.js';
import { openKeyStore } from '../../store/keys.js';
import { err, out } from '../exit.js';
import { shellQuote } from '../shell-quote.js';
import type { SetExit } from './index.js';

/** The seed policy of SPEC §1, byte for byte; `init` writes it inside {@link STARTER_POLICY}. */
export const SEED_POLICY = `capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - tool: "database.query"
      capability: "read-only"
      ttl: 300
    - tool: "payments.refund"
      capability: "admin"
      ttl: 60
`;

/**
 * What plain `init` writes: the seed's lines unchanged (so it decides exactly like
 * the seed), with commented examples of the sections a real policy needs spliced in
 * before `rules:`. Uncommented, each example is valid as written except the
 * agent's `key_sha256`, which `capframe agents add` prints.
 */
export const STARTER_POLICY = `# Capframe policy, written by \`capframe init\`. Default deny: a call no rule allows is denied.
#   capframe policy check <this file>                 validate it; errors name file:line:column
#   capframe serve --policy <this file> --port 8080   the MCP proxy (MCP clients use http://127.0.0.1:8080/mcp)
${SEED_POLICY.replace(
  '  rules:\n',
  `
  # Upstream MCP servers; their tools appear as "<server>.<tool>". A stdio server runs
  # in this file's directory unless it sets cwd. Uncomment and adapt:
  # servers:
  #   database: { command: node, args: [database-server.js], env: { DB_URL: "file:demo.db" } }   # stdio
  #   payments: { url: "http://127.0.0.1:9000/mcp", timeout: 30 }                                 # Streamable HTTP

  # Agents that must authenticate with Authorization: Bearer <API key>. Without agents,
  # anyone holding a valid token may call. \`capframe agents add support-bot\` creates a
  # key and prints the line to paste here:
  # agents:
  #   support-bot: { key_sha256: "<64 hex digits from capframe agents add>" }

  # Named argument constraints that rules refer to with capability:. A capability that
  # is named but not defined (like "admin" below) is a label with no extra constraints.
  # capabilities:
  #   read-only:                    # one SELECT statement, nothing else
  #     when:
  #       - { arg: sql, op: matches, value: "^[ \\\\t\\\\r\\\\n]*(?:SELECT|select)[ \\\\t\\\\r\\\\n]" }
  #       - { arg: sql, op: not_matches, value: ";[ \\\\t\\\\r\\\\n]*[^ \\\\t\\\\r\\\\n]" }
  #       - { arg: sql, op: max_length, value: 2000 }

  rules:
`,
)}`;

interface InitOptions {
  policy: string;
  force?: boolean;
  fromDiscovery?: boolean;
  out?: string;
  timeout?: string;
}

/** The policy text to write: the seed, or a draft from the servers `--policy` names. */
async function policyText(opts: InitOptions): Promise<string> {
  if (opts.fromDiscovery !== true) return STARTER_POLICY;
  if (!existsSync(resolve(opts.policy))) {
    throw new CapframeError('invalid_argument', `--from-discovery reads the servers of ${opts.policy}, which does not exist; write one with a servers: block first`);
  }
  const seconds = opts.timeout === undefined ? undefined : Number(opts.timeout);
  if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0)) {
    throw new CapframeError('invalid_argument', `--timeout must be a positive number of seconds, got "${opts.timeout}"`);
  }
  // Loaded only here: discovery brings the MCP SDK, which plain init never needs.
  const { draftPolicyFromServers } = await import('../../discover/index.js');
  return draftPolicyFromServers(opts.policy, {
    ...(seconds !== undefined && { timeoutMs: seconds * 1000 }),
    onProgress: (event) => {
      if (event.phase === 'failed') err(`capframe: ${event.server} did not answer (${event.error ?? 'unknown error'}); its tools are not in the draft`);
    },
  });
}

export function registerInit(program: Command, setExit: SetExit): void {
  program
    .command('init')
    .description('write a starting policy and an issuer key')
    .requiredOption('--policy <file>', 'policy file to create (with --from-discovery: the policy whose servers are discovered)')
    .option('--force', 'overwrite an existing policy file')
    .option('--from-discovery', 'draft a least-privilege policy from the tools of the servers in --policy')
    .option('--out <file>', 'with --from-discovery, write the draft here instead of over --policy')
    .option('--timeout <s>', 'with --from-discovery, seconds to wait for each server')
    .action(async (opts: InitOptions) => {
      const target = resolve(opts.out ?? opts.policy);
      const shown = opts.out ?? opts.policy;
      if (existsSync(target) && opts.force !== true) {
        throw new CapframeError(
          'invalid_argument',
          `${shown} already exists; pass --force to overwrite it${opts.fromDiscovery === true && opts.out === undefined ? ' (or --out <file> for the draft)' : ''}`,
        );
      }
      const text = await policyText(opts);
      try {
        writeFileSync(target, text);
      } catch (error) {
        throw new CapframeError('invalid_argument', `cannot write ${shown}: ${(error as Error).message}`);
      }
      const policy = await loadPolicy(target);
      const store = openKeyStore(policy.stateDir);
      const created = store.ensureIssuerKey();
      out(`wrote ${shown}${opts.fromDiscovery === true ? ' (drafted from discovery: review every rule before use)' : ''}`);
      out(`${created ? 'created' : 'kept existing'} issuer key ${store.paths.issuerKey}`);
      const file = shellQuote(shown);
      out(`next: capframe policy check ${file}, then capframe serve --policy ${file} --port 8080`);
      setExit(0);
    });
}
