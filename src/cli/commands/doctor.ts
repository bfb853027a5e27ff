import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import type { Command } from 'commander';

import { backendStatus } from '../../backend/select.js';
import { openStore } from '../context.js';
import { out } from '../exit.js';
import type { SetExit } from './index.js';

function toolVersion(command: string): string {
  const r = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not found';
}

export function registerDoctor(program: Command, setExit: SetExit): void {
  program
    .command('doctor')
    .description('show the backend in use and why, toolchain versions and the store path')
    .option('--policy <file>', 'policy file (locates the state directory)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print JSON')
    .action(async (opts: { policy?: string; stateDir?: string; json?: boolean }) => {
      const status = backendStatus();
      const { store } = await openStore(opts);
      const report = {
        backend: status.name,
        reason: status.reason,
        native_addon: status.native?.path ?? null,
        native_crate_version: status.native?.crateVersion ?? null,
        native_napi_version: status.native?.napiVersion ?? null,
        node: process.version,
        node_napi_version: process.versions.napi ?? null,
        rustc: toolVersion('rustc'),
        cargo: toolVersion('cargo'),
        state_dir: store.stateDir,
        issuer_key: existsSync(store.paths.issuerKey) ? store.paths.issuerKey : 'absent',
        revoked_tokens: store.revokedIds().length,
      };
      if (opts.json === true) out(JSON.stringify(report));
      else for (const [k, v] of Object.entries(report)) out(`${k.padEnd(22)} ${v}`);
      setExit(0);
    });
}
