/**
 * Backend selection as a user sees it: real child processes with the environment
 * a deployment would have.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { nativeAddonPath } from '../../src/backend/native.js';
import { cli, ROOT } from '../helpers.js';

const doctor = (env: Record<string, string | undefined>) => cli(['doctor', '--json', '--state-dir', '/tmp/capframe-doctor'], { env });

describe('backend selection', () => {
  it('CAPFRAME_BACKEND=js forces the TypeScript backend and says so', () => {
    const r = doctor({ CAPFRAME_BACKEND: 'js' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ backend: 'js', reason: 'forced by CAPFRAME_BACKEND=js' });
  });

  it('an unknown CAPFRAME_BACKEND value is an error naming it', () => {
    const r = doctor({ CAPFRAME_BACKEND: 'rust' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('capframe: CAPFRAME_BACKEND must be "js" or "native", got "rust"');
  });

  it.runIf(nativeAddonPath() !== undefined)('without a preference the native addon is used', () => {
    const r = doctor({ CAPFRAME_BACKEND: undefined });
    // In a checkout the addon is the local build (no platform package is installed).
    expect(JSON.parse(r.stdout)).toMatchObject({
      backend: 'native',
      reason: 'native addon loaded from a local build in native/',
      native_source: 'local build',
      native_addon: nativeAddonPath(),
      native_napi_version: 9,
      advice: null,
    });
  });

  it('the library export names the active backend', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "import { backend } from './dist/index.js'; console.log(backend)"], {
      cwd: ROOT, env: { ...process.env, CAPFRAME_BACKEND: 'js' }, encoding: 'utf8',
    });
    expect(r.stdout.trim()).toBe('js');
  });

  it('the native build step succeeds without cargo on PATH and leaves the TypeScript backend', () => {
    // PATH with node but without any directory holding cargo.
    const path = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');
    expect(spawnSync('sh', ['-c', 'command -v cargo'], { env: { PATH: path } }).status).not.toBe(0);
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-native.mjs')], { env: { PATH: path }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('cargo is not on PATH, so the native addon was not built; the TypeScript backend will be used');
    const required = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-native.mjs')], {
      env: { PATH: path, CAPFRAME_REQUIRE_NATIVE: '1' }, encoding: 'utf8',
    });
    expect(required.status).toBe(1);
  });
});
