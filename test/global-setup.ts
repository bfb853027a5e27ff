/**
 * Many tests run the real CLI from dist/. Build it once, before any test file
 * starts, when it is missing or older than src/ (`npm test` has just built it, so
 * this is a no-op there). Building inside test files would race with other files
 * spawning the CLI in parallel.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const marker = join(ROOT, 'dist', 'index.js');
  if (existsSync(marker) && newest(join(ROOT, 'dist')) >= newest(join(ROOT, 'src'))) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('TypeScript build failed; the CLI tests need dist/');
}
