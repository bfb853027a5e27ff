/**
 * Where the native addon comes from, in order: the platform package for this target (at
 * Capframe's exact version), then a local build in native/, then nothing (TypeScript).
 * Real files in temporary directories, laid out as npm lays out an install; the cases
 * that load an addon copy the one built in this checkout.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ADDON_BINARY_NAME, searchNativeAddon, type NativeSearchOptions } from '../../src/backend/native.js';
import { nativeTarget } from '../../src/backend/platform-target.js';
import { tempDir } from '../helpers.js';

const target = nativeTarget() ?? 'linux-x64-gnu';
const file = `${ADDON_BINARY_NAME}.${target}.node`;
const packageName = `capframe-${target}`;
// The checkout's own build, when there is one (CI builds it; a machine without cargo has none).
const built = searchNativeAddon({ sources: ['local'] }).loaded?.info.path;

type Content = 'addon' | 'garbage' | { js: string };

/** An app whose node_modules may hold the platform package, and a native/ dir for local builds. */
function layout(opts: { pkg?: { version: string; main: Content }; local?: Content }): NativeSearchOptions & { root: string } {
  const root = tempDir('capframe-loader-');
  const write = (path: string, content: Content) => {
    if (content === 'addon') copyFileSync(built!, path);
    else if (content === 'garbage') writeFileSync(path, 'not an ELF, Mach-O or PE file');
    else writeFileSync(path, content.js);
  };
  if (opts.pkg !== undefined) {
    const dir = join(root, 'node_modules', packageName);
    mkdirSync(dir, { recursive: true });
    const main = typeof opts.pkg.main === 'object' ? 'index.js' : file;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: packageName, version: opts.pkg.version, main }));
    write(join(dir, main), opts.pkg.main);
  }
  mkdirSync(join(root, 'native'));
  if (opts.local !== undefined) write(join(root, 'native', file), opts.local);
  return {
    root,
    target,
    name: 'capframe',
    version: '9.9.9',
    // As from node_modules/capframe/dist/backend/native.js: resolution walks up to root/node_modules.
    resolveFrom: join(root, 'node_modules', 'capframe', 'dist', 'backend', 'native.js'),
    nativeDir: join(root, 'native'),
  };
}

describe('native addon search order', () => {
  it('with neither a platform package nor a local build, nothing loads and both places are reported', () => {
    const opts = layout({});
    const search = searchNativeAddon(opts);
    expect(search.loaded).toBeUndefined();
    expect(search).toMatchObject({ target, packageName, localPath: join(opts.root, 'native', file) });
    expect(search.misses).toEqual([
      { source: 'package', where: packageName, present: false, reason: 'not installed' },
      { source: 'local', where: join(opts.root, 'native', file), present: false, reason: 'not built' },
    ]);
  });

  it.runIf(built !== undefined)('the platform package comes first, even with a local build present', () => {
    const opts = layout({ pkg: { version: '9.9.9', main: 'addon' }, local: 'addon' });
    const search = searchNativeAddon(opts);
    expect(search.loaded?.info).toMatchObject({
      source: 'package',
      path: join(opts.root, 'node_modules', packageName, file),
      package: `${packageName}@9.9.9`,
      napiVersion: 9,
    });
    expect(search.misses).toEqual([]);
  });

  it.runIf(built !== undefined)('without the platform package, the local build in native/ loads', () => {
    const opts = layout({ local: 'addon' });
    const search = searchNativeAddon(opts);
    expect(search.loaded?.info).toMatchObject({ source: 'local', path: join(opts.root, 'native', file), napiVersion: 9 });
    expect(search.loaded?.info.package).toBeUndefined();
    expect(search.misses).toEqual([{ source: 'package', where: packageName, present: false, reason: 'not installed' }]);
  });

  it.runIf(built !== undefined)('a platform package of another version is passed over for the local build, and the mismatch named', () => {
    const opts = layout({ pkg: { version: '1.0.0', main: 'addon' }, local: 'addon' });
    const search = searchNativeAddon(opts);
    expect(search.loaded?.info.source).toBe('local');
    expect(search.misses).toEqual([
      { source: 'package', where: `${packageName} (${join(opts.root, 'node_modules', packageName)})`, present: true, reason: 'version 1.0.0 installed, 9.9.9 required' },
    ]);
  });

  it('a platform package or local build that is not a loadable addon is reported as present, with the loader\'s error', () => {
    const opts = layout({ pkg: { version: '9.9.9', main: 'garbage' }, local: 'garbage' });
    const search = searchNativeAddon(opts);
    expect(search.loaded).toBeUndefined();
    expect(search.misses.map((m) => [m.source, m.present])).toEqual([['package', true], ['local', true]]);
    for (const miss of search.misses) expect(miss.reason).not.toBe('');
  });

  it('a module that loads but is not Capframe\'s addon is refused', () => {
    const opts = layout({ pkg: { version: '9.9.9', main: { js: 'module.exports = { nativeInfo: () => ({ crateVersion: "x", napiVersion: 9 }) };' } } });
    const search = searchNativeAddon(opts);
    expect(search.loaded).toBeUndefined();
    expect(search.misses[0]).toMatchObject({ source: 'package', present: true, reason: 'not a Capframe addon' });
  });

  it('sources limits where it looks', () => {
    const opts = layout({ local: 'garbage' });
    expect(searchNativeAddon({ ...opts, sources: ['package'] }).misses.map((m) => m.source)).toEqual(['package']);
    expect(searchNativeAddon({ ...opts, sources: ['local'] }).misses.map((m) => m.source)).toEqual(['local']);
  });
});
