/** The CLI entry: `capframe --version` is the package's version. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { cli, ROOT } from '../helpers.js';

const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('capframe --version', () => {
  it('prints the package version and exits 0', () => {
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });
});
