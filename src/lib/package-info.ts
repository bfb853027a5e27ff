/**
 * Capframe's own package: where it is on disk and what its package.json says.
 * Read once, when first asked; the file ships in every install.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { isRecord } from './is-record.js';

/** The package directory (the one holding package.json, dist/, native/), with a trailing separator. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PackageInfo {
  name: string;
  version: string;
  /**
   * Prebuilt addon packages (`capframe-linux-x64-gnu`, …) that this version declares in
   * `optionalDependencies`. The release step writes them; a source checkout has none.
   */
  platformPackages: string[];
}

let cached: PackageInfo | undefined;

/**
 * @example
 * packageInfo().version // '0.1.0'
 */
export function packageInfo(): PackageInfo {
  if (cached !== undefined) return cached;
  const manifest: unknown = JSON.parse(readFileSync(`${PACKAGE_ROOT}package.json`, 'utf8'));
  if (!isRecord(manifest) || typeof manifest.name !== 'string' || typeof manifest.version !== 'string') {
    throw new Error(`${PACKAGE_ROOT}package.json has no name or version`);
  }
  const { name, version } = manifest;
  const optional = isRecord(manifest.optionalDependencies) ? Object.keys(manifest.optionalDependencies) : [];
  cached = { name, version, platformPackages: optional.filter((dep) => dep.startsWith(`${name}-`)) };
  return cached;
}

/**
 * `installed` when the package sits inside a `node_modules` directory (a registry or
 * tarball install, global or local, or npx's cache); `checkout` for a source tree (a
 * clone, also when linked with `npm link`). The advice Capframe gives differs: a
 * checkout has the dev tools (`npm run build:native`), an installed package does not.
 */
export function installKind(root: string = PACKAGE_ROOT): 'installed' | 'checkout' {
  let real = root;
  try {
    real = realpathSync(root);
  } catch {
    // Keep the path as given; it only decides which advice to print.
  }
  return real.split(sep).includes('node_modules') ? 'installed' : 'checkout';
}
