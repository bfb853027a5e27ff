import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import type { Command } from 'commander';

import { backendStatus } from '../../backend/select.js';
import { openKeys } from '../context.js';
import { EXIT_ERROR, out } from '../exit.js';
import { storeReport } from '../store-report.js';
import type { SetExit } from './index.js';

function toolVersion(command: string): string {
  const r = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not found';
}

export function registerDoctor(program: Command, setExit: SetExit): void {
  program
    .command('doctor')
    .description('show the backend in use and why, toolchain versions, and the store (kind, where, reachable, revocations); exit 1 when the store cannot be read')
    .option('--policy <file>', 'policy file (locates the state directory and the store)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print JSON')
    .action(async (opts: { policy?: string; stateDir?: string; json?: boolean }) => {
      const status = backendStatus();
      const ctx = await openKeys(opts);
      const store = await storeReport(ctx);
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
        state_dir: ctx.keys.stateDir,
        issuer_key: existsSync(ctx.keys.paths.issuerKey) ? ctx.keys.paths.issuerKey : 'absent',
        ...store,
      };
      if (opts.json === true) out(JSON.stringify(report));
      else for (const [k, v] of Object.entries(report)) out(`${k.padEnd(22)} ${v}`);
      setExit(store.store_reachable ? 0 : EXIT_ERROR);
    });
}
