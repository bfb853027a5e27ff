/**
 * The target names must be the ones napi-rs gives its artifacts and packages, or the
 * loader would look for packages nobody publishes. Checked against @napi-rs/cli's own
 * triple parser, for the declared targets and for the rest of napi-rs' usual list.
 */
import { execSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseTriple } from '@napi-rs/cli';
import { describe, expect, it } from 'vitest';

import { isMusl, isMuslFromFilesystem, nativeTarget, type TargetFacts } from '../../src/backend/platform-target.js';
import { ROOT, tempDir } from '../helpers.js';

const declared = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { napi: { targets: string[] } }).napi.targets;

/** What a process on the triple's platform would see. */
function factsFor(triple: string): { facts: TargetFacts; expected: string } {
  const t = parseTriple(triple);
  return {
    facts: { platform: t.platform as TargetFacts['platform'], arch: t.arch, musl: t.abi?.startsWith('musl') ?? false, mingw: t.platform === 'win32' && t.abi === 'gnu' },
    expected: t.platformArchABI,
  };
}

describe('nativeTarget', () => {
  it('names every target declared in package.json as napi-rs does', () => {
    expect(declared).toHaveLength(6);
    for (const triple of declared) {
      const { facts, expected } = factsFor(triple);
      expect(nativeTarget(facts), triple).toBe(expected);
    }
  });

  it('names the other targets napi-rs builds as napi-rs does', () => {
    const others = [
      'aarch64-unknown-linux-musl', 'armv7-unknown-linux-gnueabihf', 'armv7-unknown-linux-musleabihf',
      'riscv64gc-unknown-linux-gnu', 'powerpc64le-unknown-linux-gnu', 's390x-unknown-linux-gnu',
      'loongarch64-unknown-linux-gnu', 'i686-pc-windows-msvc', 'aarch64-pc-windows-msvc', 'x86_64-pc-windows-gnu',
      'x86_64-unknown-freebsd', 'aarch64-linux-android', 'armv7-linux-androideabi',
    ];
    for (const triple of others) {
      const { facts, expected } = factsFor(triple);
      expect(nativeTarget(facts), triple).toBe(expected);
    }
  });

  it('has no name for a platform napi-rs does not build for', () => {
    expect(nativeTarget({ platform: 'linux', arch: 'mips', musl: false, mingw: false })).toBeUndefined();
    expect(nativeTarget({ platform: 'aix', arch: 'ppc64', musl: false, mingw: false })).toBeUndefined();
    expect(nativeTarget({ platform: 'darwin', arch: 'ia32', musl: false, mingw: false })).toBeUndefined();
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('names this machine', () => {
    expect(nativeTarget()).toBe(isMusl() ? 'linux-x64-musl' : 'linux-x64-gnu');
  });
});

describe('musl detection', () => {
  it('reads ldd: a glibc script is not musl, a musl loader is', () => {
    const dir = tempDir('capframe-ldd-');
    writeFileSync(join(dir, 'glibc'), '#! /bin/bash\n# This file is part of the GNU C Library.\nTEXTDOMAIN=libc\n');
    writeFileSync(join(dir, 'musl'), '\x7fELF...ld-musl-x86_64.so.1...musl libc (x86_64)');
    expect(isMuslFromFilesystem(join(dir, 'glibc'))).toBe(false);
    expect(isMuslFromFilesystem(join(dir, 'musl'))).toBe(true);
    expect(isMuslFromFilesystem(join(dir, 'absent'))).toBeNull();
  });

  it.runIf(process.platform === 'linux')('agrees with `ldd --version` on this machine', () => {
    let lddSaysMusl: boolean;
    try {
      lddSaysMusl = execSync('ldd --version 2>&1', { encoding: 'utf8' }).includes('musl');
    } catch (error) {
      // musl's ldd prints its version and exits 1.
      lddSaysMusl = String((error as { stdout?: string }).stdout).includes('musl');
    }
    expect(isMusl()).toBe(lddSaysMusl);
  });
});
