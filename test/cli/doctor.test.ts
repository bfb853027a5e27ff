/**
 * `capframe doctor` in an installed package (see installed.ts): which addon, from where,
 * and advice that works there. The checkout's own doctor is covered in test/backend.
 */
import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { BUILT_ADDON, installedLayout, PATH_WITHOUT_CARGO, PLATFORM_PACKAGE, TARGET, VERSION } from './installed.js';

function doctor(bin: string, cwd: string, args: string[] = ['--json']) {
  const env = { PATH: PATH_WITHOUT_CARGO, HOME: cwd };
  return spawnSync(process.execPath, [bin, 'doctor', ...args], { cwd, env, encoding: 'utf8' });
}

describe('capframe doctor in an installed package, without cargo', () => {
  it.runIf(BUILT_ADDON !== undefined)('with the platform package: native, loaded from the package, no advice', () => {
    const { app, bin } = installedLayout({ platformPackage: true });
    const r = doctor(bin, app);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      backend: 'native',
      reason: `native addon loaded from ${PLATFORM_PACKAGE}@${VERSION}`,
      install: 'installed package',
      native_target: TARGET,
      native_source: `${PLATFORM_PACKAGE}@${VERSION}`,
      native_not_loaded: [],
      cargo: 'not found',
      advice: null,
    });
  });

  it('without the platform package: js, where it looked, and what to do in an installed package', () => {
    const { app, pkg, bin } = installedLayout({});
    const report = JSON.parse(doctor(bin, app).stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      backend: 'js',
      install: 'installed package',
      native_source: null,
      native_not_loaded: [`${PLATFORM_PACKAGE}: not installed`, `${pkg}/native/capframe-native.${TARGET}.node: not built`],
    });
    expect(report.advice).toBe(
      `install the prebuilt addon, an optional dependency that npm skipped (--omit=optional, or it could not be fetched): \`npm install ${PLATFORM_PACKAGE}@${VERSION}\`; `
      + 'or with Rust installed (https://rustup.rs), build it from source: `npx capframe build-native`',
    );
    const text = doctor(bin, app, []).stdout;
    expect(text).toMatch(/^backend\s+js$/m);
    expect(text).toMatch(/^advice\s+install the prebuilt addon/m);
  });
});
