/**
 * `capframe agents add <name>`: creates an agent API key and prints the policy line
 * that admits it (SPEC §6). The key is printed once and stored nowhere; the policy
 * keeps only its SHA-256, and this command never edits the policy file.
 */
import { randomBytes } from 'node:crypto';

import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { encodeBase64url } from '../../lib/base64url.js';
import { sha256Hex } from '../../lib/canonical-json.js';
import { loadPolicy } from '../../policy/index.js';
import { err, out } from '../exit.js';
import type { SetExit } from './index.js';

/** Prefix of every agent API key, so a leaked one is recognisable (and greppable). */
export const AGENT_KEY_PREFIX = 'cfk_';

/**
 * An agent name this command accepts: a letter, then letters, digits, `.`, `_` or
 * `-`, at most 64 characters, so it is a plain YAML key as printed and a clean `sub`.
 */
const AGENT_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
/** Words YAML 1.1 or 1.2 readers turn into booleans or null when unquoted. */
const YAML_WORDS = new Set(['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n']);

export interface NewAgentKey {
  agent: string;
  /** `cfk_` + base64url of 32 random bytes. Secret: shown once. */
  api_key: string;
  /** Hex SHA-256 of `api_key` (its UTF-8 bytes), what the policy stores. */
  key_sha256: string;
  /** The line to add under `agents:`, indented for the `capframe:` layout. */
  policy_line: string;
}

export function checkAgentName(name: string): void {
  if (!AGENT_NAME.test(name) || YAML_WORDS.has(name.toLowerCase())) {
    throw new CapframeError(
      'invalid_argument',
      `invalid agent name ${JSON.stringify(name)}: expected a letter followed by letters, digits, ".", "_" or "-" (at most 64 characters, not a YAML word like "true" or "null")`,
    );
  }
}

/** Creates a key for `agent` (whose name must already be checked). */
export function newAgentKey(agent: string): NewAgentKey {
  const apiKey = AGENT_KEY_PREFIX + encodeBase64url(new Uint8Array(randomBytes(32)));
  const keySha256 = sha256Hex(apiKey);
  return { agent, api_key: apiKey, key_sha256: keySha256, policy_line: `    ${agent}: { key_sha256: "${keySha256}" }` };
}

export function registerAgents(program: Command, setExit: SetExit): void {
  const agents = program.command('agents').description('manage the agents a policy admits');
  agents
    .command('add <name>')
    .description('create an API key for an agent and print the policy line that admits it (the policy file is not edited)')
    .option('--policy <file>', 'check that the name is not already defined in this policy')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { policy?: string; json?: boolean }) => {
      checkAgentName(name);
      let hasAgents = true;
      if (opts.policy !== undefined) {
        const policy = await loadPolicy(opts.policy);
        if (Object.hasOwn(policy.agents, name)) {
          throw new CapframeError('invalid_argument', `agent "${name}" is already defined in ${opts.policy}; pick another name or replace its key_sha256 by hand`);
        }
        hasAgents = Object.keys(policy.agents).length > 0;
      }
      const created = newAgentKey(name);
      if (opts.json === true) {
        out(JSON.stringify(created));
      } else {
        out(`api_key: ${created.api_key}`);
        out(created.policy_line);
      }
      const where = opts.policy ?? 'the policy';
      err('capframe: the API key is shown only this once and is stored nowhere; the agent sends it as "Authorization: Bearer <api_key>"');
      if (!hasAgents) {
        err(`capframe: ${where} defines no agents yet: add "  agents:" under "capframe:" with the line beneath it; from then on every call must authenticate with an agent key`);
      } else {
        err(`capframe: add the policy line under "agents:" in ${where}; capframe does not edit the policy file`);
      }
      setExit(0);
    });
}
