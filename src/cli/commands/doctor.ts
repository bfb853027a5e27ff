import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import type { Command } from 'commander';

import { backendStatus } from '../../backend/select.js';
import { installKind, PACKAGE_ROOT, packageInfo } from '../../lib/package-info.js';
import { openStore } from '../context.js';
import { out } from '../exit.js';
import { cargoVersion, nativeAdvice } from '../native-advice.js';
import type { SetExit } from './index.js';

function toolVersion(command: string): string {
  const r = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not found';
}

export function registerDoctor(program: Command, setExit: SetExit): void {
  program
    .command('doctor')
    .description('show the backend in use and why, where the native addon was looked for, toolchain versions and the store path')
    .option('--policy <file>', 'policy file (locates the state directory)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print JSON')
    .action(async (opts: { policy?: string; stateDir?: string; json?: boolean }) => {
      const status = backendStatus();
      const { store } = await openStore(opts);
      const info = packageInfo();
      const kind = installKind();
      const cargo = cargoVersion();
      const search = status.nativeSearch;
      const report = {
        backend: status.name,
        reason: status.reason,
        version: info.version,
        package_root: PACKAGE_ROOT,
        install: kind === 'installed' ? 'installed package' : 'source checkout',
        native_target: search?.target ?? null,
        native_source: status.native === undefined ? null : status.native.source === 'package' ? status.native.package : 'local build',
        native_addon: status.native?.path ?? null,
        // Where the loader looked before it found the addon (or gave up), and why each place did not do.
        native_not_loaded: search?.misses.map((miss) => `${miss.where}: ${miss.reason}`) ?? [],
        native_crate_version: status.native?.crateVersion ?? null,
        native_napi_version: status.native?.napiVersion ?? null,
        node: process.version,
        node_napi_version: process.versions.napi ?? null,
        rustc: toolVersion('rustc'),
        cargo: cargo ?? 'not found',
        state_dir: store.stateDir,
        issuer_key: existsSync(store.paths.issuerKey) ? store.paths.issuerKey : 'absent',
        revoked_tokens: store.revokedIds().length,
        advice: nativeAdvice({ status, kind, hasCargo: cargo !== undefined, info }) ?? null,
      };
      if (opts.json === true) {
        out(JSON.stringify(report));
      } else {
        for (const [k, v] of Object.entries(report)) {
          if (Array.isArray(v)) v.forEach((line, i) => out(`${(i === 0 ? k : '').padEnd(22)} ${line}`));
          else if (v !== null) out(`${k.padEnd(22)} ${v}`);
        }
      }
      setExit(0);
    });
}
