/**
 * Hot reload against real files: a valid new version replaces the running
 * policy; an invalid one is reported and the running policy stays.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { watchPolicy, type Policy, type PolicyWatcher } from '../../src/policy/index.js';
import { tempDir } from '../helpers.js';

const policyText = (tools: string[]) => `capframe:\n  version: "0.2"\n  rules:\n${tools.map((t) => `    - tool: ${t}\n`).join('')}`;

function recorder() {
  const reloads: Policy[] = [];
  const errors: Error[] = [];
  return { reloads, errors, handlers: { onReload: (p: Policy) => reloads.push(p), onError: (e: Error) => errors.push(e) } };
}

async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('watchPolicy', () => {
  let watcher: PolicyWatcher | undefined;
  afterEach(() => watcher?.close());

  it('reloads a valid new file and keeps the old policy when the new one is invalid', async () => {
    const dir = tempDir('capframe-watch-');
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText(['a.one']));
    const rec = recorder();
    watcher = watchPolicy(file, rec.handlers);
    expect(watcher.current().rules.map((r) => r.tool)).toEqual(['a.one']);

    writeFileSync(file, policyText(['a.one', 'b.two']));
    await until(() => rec.reloads.length === 1, 'the reload');
    expect(watcher.current().rules.map((r) => r.tool)).toEqual(['a.one', 'b.two']);
    expect(watcher.current().decide({ tool: 'b.two', args: {} }).allowed).toBe(true);

    writeFileSync(file, 'capframe:\n  version: "0.2"\n  rulez: []\n');
    await until(() => rec.errors.length === 1, 'the error');
    const error = rec.errors[0];
    expect(error).toBeInstanceOf(CapframeError);
    expect((error as CapframeError).code).toBe('invalid_policy');
    expect(error?.message).toContain(`${file}:3:3: unknown key "rulez"`);
    // The running policy is untouched and still decides.
    expect(watcher.current().rules.map((r) => r.tool)).toEqual(['a.one', 'b.two']);
    expect(rec.reloads.length).toBe(1);

    // Fixing the file brings reloads back.
    writeFileSync(file, policyText(['c.three']));
    await until(() => rec.reloads.length === 2, 'the second reload');
    expect(watcher.current().rules.map((r) => r.tool)).toEqual(['c.three']);
  });

  it('follows a file replaced by rename, as editors and deploy tools do', async () => {
    const dir = tempDir('capframe-watch-');
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText(['a.one']));
    const rec = recorder();
    watcher = watchPolicy(file, rec.handlers);
    const tmp = join(dir, '.policy.yaml.tmp');
    writeFileSync(tmp, policyText(['z.renamed']));
    renameSync(tmp, file);
    await until(() => rec.reloads.length >= 1, 'the reload after rename');
    expect(watcher.current().rules.map((r) => r.tool)).toEqual(['z.renamed']);
    writeFileSync(file, policyText(['z.again']));
    await until(() => watcher?.current().rules[0]?.tool === 'z.again', 'a reload after the rename');
  });

  it('reload() re-reads at once (SIGHUP) and close() stops watching', async () => {
    const dir = tempDir('capframe-watch-');
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText(['a.one']));
    const rec = recorder();
    watcher = watchPolicy(file, rec.handlers);
    watcher.close();
    writeFileSync(file, policyText(['b.two']));
    await new Promise((r) => setTimeout(r, 400));
    expect(rec.reloads.length).toBe(0);
    expect(watcher.current().rules[0]?.tool).toBe('a.one');

    const again = watchPolicy(file, rec.handlers);
    watcher = again;
    expect(again.current().rules[0]?.tool).toBe('b.two');
    writeFileSync(file, policyText(['c.three']));
    await again.reload();
    expect(again.current().rules[0]?.tool).toBe('c.three');
  });

  it('throws at start when the file is invalid or missing', () => {
    const dir = tempDir('capframe-watch-');
    const file = join(dir, 'policy.yaml');
    expect(() => watchPolicy(file, recorder().handlers)).toThrowError(`cannot read policy file ${file}: no such file`);
    writeFileSync(file, 'capframe: [\n');
    expect(() => watchPolicy(file, recorder().handlers)).toThrowError(/^.*policy\.yaml:\d+:\d+: invalid YAML/);
  });
});
