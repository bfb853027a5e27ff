#!/usr/bin/env bash
# Installs the tarballs of `node scripts/release.mjs pack --out DIR` the way a user gets
# them from the registry, into fresh projects with cargo hidden from PATH, and checks the
# first run the README promises, with whatever `node` is first on PATH:
#   1. capframe + this machine's platform package: backend native, from the package; the
#      README's Library example; `capframe --version`, `doctor`, `demo` start.
#   2. capframe alone (no platform package): backend js; doctor explains it and advises
#      what works in an installed package; `build-native` without cargo says what to do.
#   3. with --build-native, in project 2 and with cargo: `npx capframe build-native`
#      builds from the shipped sources and the addon then loads from the local build.
# Usage: scripts/release-check.sh DIR [--build-native]
set -euo pipefail
out=$(cd "$1" && pwd)
build_native=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$repo/package.json').version")
core="$out/capframe-$version.tgz"
platform=$(ls "$out"/capframe-*-"$version".tgz)
platform_name=$(basename "$platform" "-$version.tgz")
# node and npm, and the usual system tools, but no cargo.
bare_path="$(dirname "$(command -v node)"):/usr/bin:/bin"
if env PATH="$bare_path" sh -c 'command -v cargo' >/dev/null; then echo "cargo is still on the bare PATH"; exit 1; fi
bare() { env PATH="$bare_path" "$@"; }
fail() { echo "release check FAILED: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== release check on node $(node --version), npm $(npm --version): $(basename "$platform") + $(basename "$core")"

new_project() {
  mkdir -p "$work/$1" && cd "$work/$1"
  printf '{ "name": "%s", "version": "1.0.0", "private": true, "type": "module" }\n' "$1" > package.json
}

# The README's Library example, verbatim, plus checks of what its comments promise.
library_example() {
  awk '/^## Library/ { f = 1 } f && /^```ts/ { g = 1; next } g && /^```/ { exit } g' "$repo/README.md" > example.mjs
  grep -q "from 'capframe'" example.mjs || fail "no Library example found in README.md"
  cat >> example.mjs <<'EOF'
if (d.allowed !== false || d.code !== 'constraint_failed') throw new Error(`README example: expected constraint_failed, got ${JSON.stringify(d)}`);
if (verifier.verify(token).code !== 'revoked') throw new Error('README example: expected revoked');
EOF
  local got
  got=$(bare node example.mjs) || fail "the README's Library example failed"
  [[ "$got" == "$1" ]] || fail "the README's Library example printed '$got', expected '$1'"
  echo "README Library example: OK (backend $got)"
}

echo "== 1. capframe + $platform_name, without cargo"
new_project with-prebuilt
start=$(now)
bare npm install --no-audit --no-fund --loglevel=error "$platform" "$core"
echo "npm install: $(elapsed "$start") s"
[[ "$(bare npx capframe --version)" == "$version" ]] || fail "capframe --version is not $version"
bare node -e "
  import('capframe').then(({ backend, backendStatus }) => {
    const s = backendStatus();
    if (backend !== 'native' || s.native?.source !== 'package' || s.native.package !== '$platform_name@$version') { console.error(s); process.exit(1); }
    console.log('backend native, from', s.native.package, 'at', s.native.path);
  })" || fail "expected the native backend from $platform_name"
library_example native
bare npx capframe doctor
doctor=$(bare npx capframe doctor --json)
bare node -e "
  const d = JSON.parse(process.argv[1]);
  const ok = d.backend === 'native' && d.native_source === '$platform_name@$version' && d.install === 'installed package' && d.advice === null && d.cargo === 'not found';
  if (!ok) { console.error(d); process.exit(1); }" "$doctor" || fail "doctor --json does not report the platform package"
bare node "$repo/scripts/first-run.mjs"

echo "== 2. capframe alone (no platform package), without cargo"
new_project js-only
bare npm install --no-audit --no-fund --loglevel=error "$core"
library_example js
bare npx capframe doctor
doctor=$(bare npx capframe doctor --json)
bare node -e "
  const d = JSON.parse(process.argv[1]);
  const want = ['npm install $platform_name@$version', 'npx capframe build-native', 'https://rustup.rs'];
  const ok = d.backend === 'js' && d.install === 'installed package' && d.native_target !== null && want.every((w) => d.advice?.includes(w)) && !d.advice.includes('npm run');
  if (!ok) { console.error(d); process.exit(1); }" "$doctor" || fail "doctor does not explain the fallback with advice for an installed package"
if bare npx capframe build-native 2> "$work/bn.err"; then fail "build-native without cargo exited 0"; fi
grep -q 'cargo is not on PATH' "$work/bn.err" && grep -q "npm install $platform_name@$version" "$work/bn.err" || { cat "$work/bn.err"; fail "build-native without cargo gave no advice"; }
echo "build-native without cargo: exit 1 with advice"

if [[ "$build_native" == --build-native ]]; then
  echo "== 3. npx capframe build-native, with cargo"
  start=$(now)
  npx capframe build-native
  echo "build-native: $(elapsed "$start") s"
  doctor=$(npx capframe doctor --json)
  node -e "
    const d = JSON.parse(process.argv[1]);
    if (d.backend !== 'native' || d.native_source !== 'local build' || !d.native_addon.includes('node_modules/capframe/native/')) { console.error(d); process.exit(1); }" "$doctor" \
    || fail "after build-native the addon does not load from the local build"
  leftovers=$(find node_modules/capframe/native -mindepth 1 -maxdepth 1 \( -name target -o -name '.build-*' \) -print)
  [[ -z "$leftovers" ]] || fail "build-native left $leftovers behind"
  library_example native
fi
echo "release check: OK"
