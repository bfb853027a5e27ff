import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';
import { parseDocument } from 'yaml';

import { err } from '../exit.js';
import { newAgentKey } from './agents.js';
import type { SetExit } from './index.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

/**
 * Writes a runnable copy of examples/policy.yaml into `dir`: fresh agent keys (the
 * example's are placeholders), servers started from the package's examples/, and
 * the state directory next to it. Returns the policy path and the agents' keys.
 */
export function writeDemoPolicy(dir: string): { policy: string; keys: Record<string, string> } {
  const doc = parseDocument(readFileSync(join(EXAMPLES, 'policy.yaml'), 'utf8'));
  const keys: Record<string, string> = {};
  const agents = doc.getIn(['capframe', 'agents']) as { items: { key: { value: string } }[] };
  for (const item of agents.items) {
    const key = newAgentKey(item.key.value);
    keys[key.agent] = key.api_key;
    doc.setIn(['capframe', 'agents', key.agent, 'key_sha256'], key.key_sha256);
  }
  const servers = doc.getIn(['capframe', 'servers']) as { items: { key: { value: string } }[] };
  for (const item of servers.items) doc.setIn(['capframe', 'servers', item.key.value, 'cwd'], EXAMPLES);
  // The example sandbox path needs root; the demo's file server uses a temporary one.
  doc.deleteIn(['capframe', 'servers', 'filesystem', 'env']);
  doc.setIn(['capframe', 'state_dir'], '.');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `# Written by \`capframe demo\` from examples/policy.yaml; rewritten on every run.\n${doc.toString()}`, { mode: 0o600 });
  return { policy, keys };
}

export function registerDemo(program: Command, setExit: SetExit): void {
  program
    .command('demo')
    .description('serve the example policy in front of the example MCP servers (embedded store)')
    .option('--port <n>', 'HTTP port', '8080')
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--dir <dir>', 'where the demo policy and state go', '.capframe-demo')
    .action(async (opts: { port: string; host: string; dir: string }) => {
      const { policy, keys } = writeDemoPolicy(resolve(opts.dir));
      const { serve } = await import('../../proxy/serve.js');
      await serve({ policy, port: opts.port, host: opts.host, maxBody: String(1024 * 1024) }, (url) => {
        err(`
capframe demo: serving ${url}
  policy     ${policy}  (from examples/policy.yaml; try \`capframe policy check\` on it)
  upstreams  database, payments, filesystem, http, shell  (examples/servers)

Agent API keys for this run (send as Authorization: Bearer <key>):
${Object.entries(keys).map(([name, key]) => `  ${name.padEnd(13)} ${key}`).join('\n')}

support-bot has auto_mint: an unmodified MCP client with its key just works, e.g.
  database.query {"sql": "SELECT * FROM customers"}   -> rows
  database.query {"sql": "DROP TABLE customers"}      -> DENIED constraint_failed
  shell.exec     {"command": "id"}                    -> DENIED denied_by_rule
Stop with Ctrl-C.`);
      });
      setExit(0);
    });
}
