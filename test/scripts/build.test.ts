/**
 * `prepare` (`scripts/build.mjs --if-stale`) runs after every `npm install` in a checkout
 * and again, silently, when `npx capframe` links the checkout into npx's cache: with
 * nothing changed it must not rebuild (that kept the README's first command quiet ~20 s).
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ROOT } from '../helpers.js';

describe('scripts/build.mjs --if-stale', () => {
  it('leaves an up-to-date dist/ alone', () => {
    // The global setup has just made dist/ newer than src/.
    const before = statSync(join(ROOT, 'dist', 'index.js')).mtimeMs;
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--if-stale'], {
      cwd: ROOT,
      // The native half is build-native.mjs's (tested in test/backend); keep cargo out of this test.
      env: { ...process.env, CAPFRAME_SKIP_NATIVE: '1', CAPFRAME_REQUIRE_NATIVE: '' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(statSync(join(ROOT, 'dist', 'index.js')).mtimeMs).toBe(before);
  });
});
