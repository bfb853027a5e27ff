// Builds the Rust addon with the napi-rs CLI when cargo is available.
// Without cargo (or without the dev dependencies) the install still succeeds and
// Capframe runs on its TypeScript backend; CAPFRAME_REQUIRE_NATIVE=1 makes a missing
// or failed build an error instead (CI sets it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const required = process.env.CAPFRAME_REQUIRE_NATIVE === '1';

function skip(reason) {
  if (required) {
    console.error(`capframe: native addon required but ${reason}`);
    process.exit(1);
  }
  console.error(`capframe: ${reason}; the TypeScript backend will be used`);
  process.exit(0);
}

if (process.env.CAPFRAME_SKIP_NATIVE === '1') skip('CAPFRAME_SKIP_NATIVE=1 skips the native build');
const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
if (cargo.error || cargo.status !== 0) skip('cargo is not on PATH, so the native addon was not built');
const napi = join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
if (!existsSync(napi)) skip('@napi-rs/cli is not installed (dev dependency), so the native addon was not built');

const args = [
  napi, 'build', '--release', '--platform',
  '--manifest-path', 'native/Cargo.toml',
  '--output-dir', 'native',
  '--no-js', '--dts', 'binding.d.ts',
];
console.error(`capframe: building the native addon (${cargo.stdout.trim()})`);
const build = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (build.status !== 0) skip(`the native build failed (exit ${build.status})`);
