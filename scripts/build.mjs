// `npm run build`: TypeScript to dist/, then the native addon when cargo is present
// (scripts/build-native.mjs decides that, and never fails the install for want of cargo).
//
// `--if-stale` (the `prepare` script) skips each step whose output is newer than its
// inputs. npm runs `prepare` after `npm install` in a checkout and again whenever
// `npx capframe` links the checkout into npx's cache, silently; a full rebuild there
// kept the first `npx capframe …` quiet for ~20 s. A stale check costs milliseconds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ifStale = process.argv.includes('--if-stale');

/** Newest modification time of the files under `paths` (0 when none exist). */
function newest(...paths) {
  let t = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(...readdirSync(p).map((name) => join(p, name))) : s.mtimeMs);
  }
  return t;
}

const fresh = (output, ...inputs) => existsSync(output) && newest(output) >= newest(...inputs);

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (ifStale && fresh(join(root, 'dist'), join(root, 'src'), join(root, 'tsconfig.json'))) {
  // dist/ is newer than every source: nothing to compile.
} else {
  run([join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
}

const { nativeTarget } = await import('../dist/backend/platform-target.js');
const target = nativeTarget();
const addon = join(root, 'native', `capframe-native.${target}.node`);
const sources = ['src', 'Cargo.toml', 'Cargo.lock', 'build.rs'].map((name) => join(root, 'native', name));
const nativeFresh = target !== undefined && fresh(addon, ...sources);
// Whether cargo is there, and CAPFRAME_REQUIRE_NATIVE / CAPFRAME_SKIP_NATIVE, are build-native.mjs's to decide.
if (!(ifStale && nativeFresh)) run([join(root, 'scripts', 'build-native.mjs')]);
