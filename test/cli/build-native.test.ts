/**
 * `capframe build-native` where it cannot or need not build. Building for real (cargo,
 * a couple of minutes) is a CI step: scripts/release-check.sh runs it in an installed
 * tarball and checks the addon then loads from native/.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { CLI, ROOT } from '../helpers.js';
import { BUILT_ADDON, installedLayout, PATH_WITHOUT_CARGO, PLATFORM_PACKAGE, VERSION } from './installed.js';

const buildNative = (bin: string, cwd: string) =>
  spawnSync(process.execPath, [bin, 'build-native'], { cwd, env: { PATH: PATH_WITHOUT_CARGO, HOME: cwd }, encoding: 'utf8' });

describe('capframe build-native', () => {
  it('without cargo: exit 1, what is missing and how to get it, and the prebuilt package in an installed copy', () => {
    const { app, bin } = installedLayout({ nativeSources: true });
    const r = buildNative(bin, app);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'capframe: cargo is not on PATH; building the native addon needs Rust: install it (https://rustup.rs) and run `npx capframe build-native` again, '
      + `or install the prebuilt addon instead: \`npm install ${PLATFORM_PACKAGE}@${VERSION}\`\n`
      + 'capframe: until then Capframe runs on its TypeScript backend (same answers, slower)\n',
    );
  });

  it('without cargo in the checkout: the same, without a package to point at (none is declared here)', () => {
    const r = buildNative(CLI, ROOT);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^capframe: cargo is not on PATH; .* run `npx capframe build-native` again\n/);
    expect(r.stderr).not.toContain('npm install');
  });

  it('a copy without the Rust sources says so', () => {
    const { app, pkg, bin } = installedLayout({});
    const r = buildNative(bin, app);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`capframe: ${join(pkg, 'native', 'Cargo.toml')} is missing: this copy of capframe does not have the Rust sources to build from\n`);
  });

  it.runIf(BUILT_ADDON !== undefined)('with the prebuilt package loading: nothing to build, nothing written', () => {
    const { app, pkg, bin } = installedLayout({ platformPackage: true, nativeSources: true });
    const r = buildNative(bin, app);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^the prebuilt addon ${PLATFORM_PACKAGE}@${VERSION.replaceAll('.', '\\.')} is installed and loads \\(.*\\); nothing to build\n`));
    expect(readdirSync(join(pkg, 'native')).sort()).toEqual(['Cargo.lock', 'Cargo.toml', 'build.rs', 'src']);
  });
});
