/**
 * What to do when the native addon is not in use, phrased for where Capframe runs:
 * an installed package (no dev tools; the prebuilt platform package or
 * `capframe build-native`) or a source checkout (`npm run build:native`).
 */
import { spawnSync } from 'node:child_process';

import type { BackendStatus } from '../backend/select.js';
import type { PackageInfo } from '../lib/package-info.js';

export const RUSTUP = 'https://rustup.rs';

/** `cargo --version`, or undefined when cargo is not on PATH. */
export function cargoVersion(): string | undefined {
  const r = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export interface AdviceContext {
  status: BackendStatus;
  kind: 'installed' | 'checkout';
  hasCargo: boolean;
  info: PackageInfo;
}

/**
 * One or two sentences, or undefined when the native addon is in use.
 *
 * @example
 * nativeAdvice({ status, kind: 'installed', hasCargo: false, info })
 * // 'install the prebuilt addon: `npm install capframe-linux-x64-gnu@0.1.0` …'
 */
export function nativeAdvice({ status, kind, hasCargo, info }: AdviceContext): string | undefined {
  if (status.name === 'native') return undefined;
  if (status.nativeSearch === undefined) return 'CAPFRAME_BACKEND=js forces the TypeScript backend; unset it to use the native addon';
  const { target, packageName, misses } = status.nativeSearch;
  if (target === undefined || packageName === undefined) {
    return `there is no native addon for ${process.platform}-${process.arch}; the TypeScript backend gives the same answers, more slowly`;
  }
  const local = misses.find((miss) => miss.source === 'local' && miss.present);
  const brokenLocal = local === undefined ? '' : `the local build ${local.where} did not load (${local.reason}); `;

  if (kind === 'checkout') {
    const build = '`npm run build:native`';
    return `${brokenLocal}${hasCargo ? `build the addon: ${build}` : `install Rust (${RUSTUP}), then build the addon: ${build}`}`;
  }

  const fromSource = hasCargo
    ? 'build it from source: `npx capframe build-native`'
    : `with Rust installed (${RUSTUP}), build it from source: \`npx capframe build-native\``;
  const wanted = `${packageName}@${info.version}`;
  const installed = misses.find((miss) => miss.source === 'package' && miss.present);
  if (installed !== undefined) {
    return `${brokenLocal}${installed.where} is installed but did not load (${installed.reason}): reinstall it with \`npm install ${wanted}\`; or ${fromSource}`;
  }
  if (info.platformPackages.includes(packageName)) {
    return `${brokenLocal}install the prebuilt addon, an optional dependency that npm skipped (--omit=optional, or it could not be fetched): \`npm install ${wanted}\`; or ${fromSource}`;
  }
  return `${brokenLocal}capframe ${info.version} has no prebuilt addon for ${target}; ${fromSource}`;
}
