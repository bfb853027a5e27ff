/**
 * A Capframe package laid out as npm installs it — `<app>/node_modules/capframe/` with
 * dist/, bin/, package.json and optionally native/ and the platform package beside it —
 * built from this checkout's files, so doctor and build-native can be run "installed"
 * without packing and installing (scripts/release-check.sh does that for real in CI).
 * Its dependencies resolve through `<tmp>/node_modules`, a link to the checkout's.
 */
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { searchNativeAddon } from '../../src/backend/native.js';
import { nativeTarget } from '../../src/backend/platform-target.js';
import { ROOT, tempDir } from '../helpers.js';

export const TARGET = nativeTarget() ?? 'linux-x64-gnu';
export const PLATFORM_PACKAGE = `capframe-${TARGET}`;
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The checkout's local build, when it has one. */
export const BUILT_ADDON = searchNativeAddon({ sources: ['local'] }).loaded?.info.path;

/** PATH with node and the system tools but no cargo. */
export const PATH_WITHOUT_CARGO = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');

export interface Installed {
  app: string;
  pkg: string;
  bin: string;
}

export function installedLayout(opts: { platformPackage?: boolean; nativeSources?: boolean }): Installed {
  const tmp = tempDir('capframe-installed-');
  symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'), 'dir');
  const app = join(tmp, 'app');
  const pkg = join(app, 'node_modules', 'capframe');
  mkdirSync(pkg, { recursive: true });
  for (const dir of ['dist', 'bin']) cpSync(join(ROOT, dir), join(pkg, dir), { recursive: true });
  // As published: every napi target's package in optionalDependencies (scripts/release.mjs).
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  manifest.optionalDependencies = { [PLATFORM_PACKAGE]: VERSION, 'capframe-darwin-arm64': VERSION };
  writeFileSync(join(pkg, 'package.json'), JSON.stringify(manifest));
  if (opts.nativeSources === true) {
    mkdirSync(join(pkg, 'native'));
    for (const f of ['src', 'Cargo.toml', 'Cargo.lock', 'build.rs']) cpSync(join(ROOT, 'native', f), join(pkg, 'native', f), { recursive: true });
  }
  if (opts.platformPackage === true) {
    const dir = join(app, 'node_modules', PLATFORM_PACKAGE);
    const file = `capframe-native.${TARGET}.node`;
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: PLATFORM_PACKAGE, version: VERSION, main: file }));
    cpSync(BUILT_ADDON!, join(dir, file));
  }
  return { app, pkg, bin: join(pkg, 'bin', 'capframe.js') };
}
