/**
 * `capframe build-native`: builds the Rust addon from the sources the package ships
 * (native/src, Cargo.toml, Cargo.lock) and puts it where the loader looks for a local
 * build, `native/capframe-native.<target>.node`. For platforms without a prebuilt
 * package; never run implicitly (an install must not need cargo, nor download crates).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import type { Command } from 'commander';

import { ADDON_BINARY_NAME, searchNativeAddon } from '../../backend/native.js';
import { nativeTarget } from '../../backend/platform-target.js';
import { installKind, PACKAGE_ROOT, packageInfo } from '../../lib/package-info.js';
import { EXIT_ERROR, EXIT_OK, err, out } from '../exit.js';
import { cargoVersion, RUSTUP } from '../native-advice.js';
import type { SetExit } from './index.js';

/** What cargo names the `capframe-native` cdylib on each OS. */
function cdylibName(platform: NodeJS.Platform): string {
  if (platform === 'win32') return 'capframe_native.dll';
  return platform === 'darwin' ? 'libcapframe_native.dylib' : 'libcapframe_native.so';
}

/** The napi-rs CLI's entry, when it can be resolved from the package (a checkout has it as a dev dependency). */
function napiCli(): string | undefined {
  try {
    // Only package.json is exported; the entry is its `napi` bin.
    const manifest = createRequire(join(PACKAGE_ROOT, 'package.json')).resolve('@napi-rs/cli/package.json');
    const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: { napi?: string } };
    return bin?.napi === undefined ? undefined : join(dirname(manifest), bin.napi);
  } catch {
    return undefined;
  }
}

/** Loads the addon in a fresh process (this one may hold an older copy) and returns its nativeInfo(). */
function probe(path: string): { ok: true; info: { crateVersion: string; napiVersion: number } } | { ok: false; error: string } {
  const script = 'process.stdout.write(JSON.stringify(require(process.argv[1]).nativeInfo()))';
  const r = spawnSync(process.execPath, ['-e', script, path], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, error: (r.stderr.trim().split('\n').find((l) => l.startsWith('Error')) ?? r.stderr.trim()) || `exit ${r.status}` };
  return { ok: true, info: JSON.parse(r.stdout) as { crateVersion: string; napiVersion: number } };
}

/** Runs a build step with its output on stderr (stdout carries the result). */
function run(command: string, args: string[]): number {
  const r = spawnSync(command, args, { cwd: PACKAGE_ROOT, stdio: ['ignore', 2, 'inherit'] });
  return r.status ?? 1;
}

export function buildNative(opts: { force?: boolean }): number {
  const info = packageInfo();
  const target = nativeTarget();
  if (target === undefined) {
    err(`capframe: there is no napi-rs target for ${process.platform}-${process.arch}, so no addon can be built here; Capframe runs on its TypeScript backend`);
    return EXIT_ERROR;
  }
  const nativeDir = join(PACKAGE_ROOT, 'native');
  const manifest = join(nativeDir, 'Cargo.toml');
  if (!existsSync(manifest)) {
    err(`capframe: ${manifest} is missing: this copy of capframe does not have the Rust sources to build from`);
    return EXIT_ERROR;
  }
  const packageName = `${info.name}-${target}`;
  // Only the platform package is tried here: loading a local build would keep its file
  // open in this process (on Windows that blocks replacing it).
  const prebuilt = () => searchNativeAddon({ sources: ['package'] }).loaded?.info;
  if (opts.force !== true) {
    const current = prebuilt();
    if (current !== undefined) {
      out(`the prebuilt addon ${current.package} is installed and loads (${current.path}); nothing to build`);
      out('(--force builds from source anyway; the prebuilt addon keeps precedence while it is installed)');
      return EXIT_OK;
    }
  }
  const cargo = cargoVersion();
  if (cargo === undefined) {
    const install = info.platformPackages.includes(packageName) ? `, or install the prebuilt addon instead: \`npm install ${packageName}@${info.version}\`` : '';
    err(`capframe: cargo is not on PATH; building the native addon needs Rust: install it (${RUSTUP}) and run \`npx capframe build-native\` again${install}`);
    err('capframe: until then Capframe runs on its TypeScript backend (same answers, slower)');
    return EXIT_ERROR;
  }

  const kind = installKind();
  // A checkout keeps cargo's incremental target dir, as `npm run build:native` does.
  // In an installed package the build happens in a temporary target dir (hundreds of MB
  // that would otherwise stay in node_modules) unless CARGO_TARGET_DIR says where.
  const ownTargetDir = kind === 'installed' && process.env.CARGO_TARGET_DIR === undefined;
  let targetDir: string | undefined;
  let staging: string | undefined;
  const final = join(nativeDir, `${ADDON_BINARY_NAME}.${target}.node`);
  try {
    targetDir = ownTargetDir ? mkdtempSync(join(tmpdir(), 'capframe-cargo-')) : process.env.CARGO_TARGET_DIR ?? join(nativeDir, 'target');
    // Built next to its final place, so the last step is a rename on one file system.
    staging = mkdtempSync(join(nativeDir, '.build-'));
    const napi = napiCli();
    err(`capframe: building the native addon for ${target} with ${cargo}${napi === undefined ? '' : ' and @napi-rs/cli'}`);
    err('capframe: cargo fetches the crates pinned in native/Cargo.lock from crates.io unless they are cached; this takes a minute or two');
    // The shipped Cargo.lock is what was tested; a checkout may be changing it.
    const locked = kind === 'installed' ? ['--locked'] : [];
    let built: string;
    if (napi !== undefined) {
      const args = [napi, 'build', '--release', '--platform', '--manifest-path', manifest, '--target-dir', targetDir, '--output-dir', staging, '--no-js'];
      if (run(process.execPath, [...args, ...(locked.length > 0 ? ['--', ...locked] : [])]) !== 0) return buildFailed();
      built = join(staging, `${ADDON_BINARY_NAME}.${target}.node`);
    } else {
      if (run('cargo', ['build', '--release', ...locked, '--manifest-path', manifest, '--target-dir', targetDir]) !== 0) return buildFailed();
      built = join(staging, `${ADDON_BINARY_NAME}.${target}.node`);
      copyFileSync(join(targetDir, 'release', cdylibName(process.platform)), built);
    }
    const check = probe(built);
    if (!check.ok) {
      err(`capframe: the build finished but the addon does not load: ${check.error}`);
      return EXIT_ERROR;
    }
    // A rename, so a capframe starting meanwhile sees the old file or the new one, never half of one.
    renameSync(built, final);
    out(`built ${final} (crate ${check.info.crateVersion}, N-API ${check.info.napiVersion})`);
    const first = prebuilt();
    if (first !== undefined) out(`note: ${first.package} is installed and still comes first; uninstall it to use this build`);
    else out('capframe uses it from now on (`npx capframe doctor` shows the backend and where the addon came from)');
    return EXIT_OK;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const hint =
      e.code === 'EACCES' ? ' — run it as the user that installed capframe (e.g. with sudo for a global install)'
      : e.code === 'EPERM' || e.code === 'EBUSY' ? ' — the addon may be in use by a running capframe (stop it and try again), or not writable by you'
      : '';
    err(`capframe: ${e.message}${hint}`);
    return EXIT_ERROR;
  } finally {
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true });
    if (ownTargetDir && targetDir !== undefined) rmSync(targetDir, { recursive: true, force: true });
  }
}

function buildFailed(): number {
  err("capframe: the native build failed (cargo's output is above); nothing was changed");
  return EXIT_ERROR;
}

export function registerBuildNative(program: Command, setExit: SetExit): void {
  program
    .command('build-native')
    .description('build the native addon from the shipped Rust sources with cargo (for a platform without a prebuilt addon)')
    .option('--force', 'build even when the prebuilt platform package loads')
    .action((opts: { force?: boolean }) => {
      setExit(buildNative(opts));
    });
}
