import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { loadPolicy } from '../../policy/index.js';
import { openFileStore } from '../../store/file-store.js';
import { out } from '../exit.js';
import type { SetExit } from './index.js';

/** The seed policy of SPEC §1, byte for byte what `init` writes. */
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

export function registerInit(program: Command, setExit: SetExit): void {
  program
    .command('init')
    .description('write a starting policy and an issuer key')
    .requiredOption('--policy <file>', 'policy file to create')
    .option('--force', 'overwrite an existing policy file')
    .action(async (opts: { policy: string; force?: boolean }) => {
      const file = resolve(opts.policy);
      if (existsSync(file) && opts.force !== true) {
        throw new CapframeError('invalid_argument', `${opts.policy} already exists; pass --force to overwrite it`);
      }
      try {
        writeFileSync(file, SEED_POLICY);
      } catch (error) {
        throw new CapframeError('invalid_argument', `cannot write ${opts.policy}: ${(error as Error).message}`);
      }
      const policy = await loadPolicy(file);
      const store = openFileStore(policy.stateDir);
      const created = store.ensureIssuerKey();
      out(`wrote ${opts.policy}`);
      out(`${created ? 'created' : 'kept existing'} issuer key ${store.paths.issuerKey}`);
      setExit(0);
    });
}
