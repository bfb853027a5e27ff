/**
 * doctor's advice must be something the user can do where Capframe runs: in a checkout
 * the dev build; in an installed package (no dev tools, no scripts/) the platform
 * package or `capframe build-native`.
 */
import { describe, expect, it } from 'vitest';

import type { AddonMiss } from '../../src/backend/native.js';
import type { BackendStatus } from '../../src/backend/select.js';
import { nativeAdvice, type AdviceContext } from '../../src/cli/native-advice.js';

const info = { name: 'capframe', version: '1.2.3', platformPackages: ['capframe-linux-x64-gnu', 'capframe-darwin-arm64'] };
const notInstalled: AddonMiss = { source: 'package', where: 'capframe-linux-x64-gnu', present: false, reason: 'not installed' };
const notBuilt: AddonMiss = { source: 'local', where: '/app/node_modules/capframe/native/capframe-native.linux-x64-gnu.node', present: false, reason: 'not built' };

function jsFallback(misses: AddonMiss[], target = 'linux-x64-gnu'): BackendStatus {
  return {
    name: 'js',
    reason: 'fallback',
    nativeSearch: { target, packageName: `capframe-${target}`, localPath: `/app/native/capframe-native.${target}.node`, misses },
  };
}

const advise = (status: BackendStatus, rest: Partial<AdviceContext> = {}) => nativeAdvice({ status, kind: 'installed', hasCargo: false, info, ...rest });

describe('native advice', () => {
  it('none while the native addon is in use', () => {
    const status: BackendStatus = { name: 'native', reason: 'loaded', native: { source: 'package', path: '/x.node', package: 'capframe-linux-x64-gnu@1.2.3', crateVersion: '1.2.3', napiVersion: 9 } };
    expect(advise(status)).toBeUndefined();
  });

  it('installed, platform package skipped, no cargo: install the package, or install Rust and build-native', () => {
    expect(advise(jsFallback([notInstalled, notBuilt]))).toBe(
      'install the prebuilt addon, an optional dependency that npm skipped (--omit=optional, or it could not be fetched): `npm install capframe-linux-x64-gnu@1.2.3`; '
      + 'or with Rust installed (https://rustup.rs), build it from source: `npx capframe build-native`',
    );
  });

  it('installed with cargo: build-native without the detour through rustup', () => {
    const advice = advise(jsFallback([notInstalled, notBuilt]), { hasCargo: true });
    expect(advice).toContain('`npm install capframe-linux-x64-gnu@1.2.3`');
    expect(advice).toContain('or build it from source: `npx capframe build-native`');
    expect(advice).not.toContain('rustup');
  });

  it('installed, platform package present but broken: reinstall it, naming why it did not load', () => {
    const broken: AddonMiss = { source: 'package', where: 'capframe-linux-x64-gnu (/app/node_modules/capframe-linux-x64-gnu)', present: true, reason: 'version 1.0.0 installed, 1.2.3 required' };
    expect(advise(jsFallback([broken, notBuilt]))).toMatch(
      /^capframe-linux-x64-gnu \(\/app\/node_modules\/capframe-linux-x64-gnu\) is installed but did not load \(version 1\.0\.0 installed, 1\.2\.3 required\): reinstall it with `npm install capframe-linux-x64-gnu@1\.2\.3`;/,
    );
  });

  it('installed on a target with no published package: says so, and build-native', () => {
    const advice = advise(jsFallback([{ ...notInstalled, where: 'capframe-linux-riscv64-gnu' }, notBuilt], 'linux-riscv64-gnu'), { hasCargo: true });
    expect(advice).toBe('capframe 1.2.3 has no prebuilt addon for linux-riscv64-gnu; build it from source: `npx capframe build-native`');
  });

  it('installed with a broken local build: names it first', () => {
    const local: AddonMiss = { ...notBuilt, present: true, reason: 'invalid ELF header' };
    expect(advise(jsFallback([notInstalled, local]))).toMatch(/^the local build \/app\/node_modules\/capframe\/native\/capframe-native\.linux-x64-gnu\.node did not load \(invalid ELF header\); install the prebuilt addon/);
  });

  it('never suggests npm run scripts in an installed package', () => {
    for (const hasCargo of [true, false]) expect(advise(jsFallback([notInstalled, notBuilt]), { hasCargo })).not.toContain('npm run');
  });

  it('in a checkout: npm run build:native, with Rust first when cargo is missing', () => {
    expect(advise(jsFallback([notInstalled, notBuilt]), { kind: 'checkout', hasCargo: true })).toBe('build the addon: `npm run build:native`');
    expect(advise(jsFallback([notInstalled, notBuilt]), { kind: 'checkout', hasCargo: false })).toBe('install Rust (https://rustup.rs), then build the addon: `npm run build:native`');
  });

  it('on a platform without a napi-rs target: nothing to install, the TypeScript backend answers', () => {
    const status: BackendStatus = { name: 'js', reason: 'fallback', nativeSearch: { target: undefined, packageName: undefined, localPath: undefined, misses: [] } };
    expect(advise(status)).toBe(`there is no native addon for ${process.platform}-${process.arch}; the TypeScript backend gives the same answers, more slowly`);
  });

  it('with CAPFRAME_BACKEND=js: unset it', () => {
    expect(advise({ name: 'js', reason: 'forced by CAPFRAME_BACKEND=js' })).toBe('CAPFRAME_BACKEND=js forces the TypeScript backend; unset it to use the native addon');
  });
});
