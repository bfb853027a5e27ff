#!/usr/bin/env bash
# Prepares what test/interop/ runs: a Python venv with pycose (.interop/venv) and the Go
# verifier binary (.interop/bin/verify-go), built from examples/verify-python and
# examples/verify-go at their pinned versions (PyPI and the Go module proxy).
#
#   scripts/ci-interop.sh            # both
#   scripts/ci-interop.sh python     # or just one: python | go
#
# Idempotent and cheap when nothing changed: a stamp records a hash of the inputs
# (requirements.txt and the interpreter; go.mod, go.sum and *.go), and a part whose
# stamp matches is not touched and needs neither python3 nor go on PATH. The interop
# tests run this themselves before they start; CI runs it first to install up front.
# PYTHON=… and GO=… choose the interpreter and toolchain (default: python3, go).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.interop"
mkdir -p "$out/bin"

die() {
  echo "ci-interop: $*" >&2
  exit 1
}

# sha256 of the named files' contents and names, plus any extra text on stdin.
inputs_hash() {
  { cat; for f in "$@"; do echo "== $f"; cat "$f"; done; } | sha256sum | cut -d' ' -f1
}

# Runs the rest of a part under an exclusive lock, so two test runs never build at once.
with_lock() {
  local name="$1"
  shift
  exec {fd}>"$out/$name.lock"
  flock "$fd"
  "$@"
  exec {fd}>&-
}

python_part() {
  local src="$root/examples/verify-python" venv="$out/venv" stamp="$out/python.stamp"
  local py="${PYTHON:-python3}"
  # The interpreter is part of the input: a venv is tied to the Python that made it.
  local base=""
  if [[ -x "$venv/bin/python" ]]; then base="$("$venv/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null || true)"; fi
  local want
  want="$(echo "$base" | inputs_hash "$src/requirements.txt")"
  if [[ -n "$base" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c 'import pycose, cbor2' 2>/dev/null; then
    echo "ci-interop: python up to date ($venv)"
    return
  fi
  command -v "$py" >/dev/null || die "no $py on PATH: the Python interop test needs Python >= 3.11 with venv (or set PYTHON=/path/to/python3)"
  echo "ci-interop: creating $venv and installing examples/verify-python/requirements.txt"
  rm -rf "$venv" "$stamp"
  "$py" -m venv "$venv" || die "$py -m venv failed (on Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$src/requirements.txt" ||
    die "pip install -r examples/verify-python/requirements.txt failed (needs PyPI)"
  "$venv/bin/python" -c 'import pycose, cbor2' || die "pycose does not import in $venv"
  base="$("$venv/bin/python" -c 'import sys; print(sys.version)')"
  echo "$base" | inputs_hash "$src/requirements.txt" >"$stamp"
  echo "ci-interop: python ready ($("$venv/bin/python" -m pip --disable-pip-version-check list 2>/dev/null | grep -iE '^(pycose|cbor2) ' | tr -s ' ' | paste -sd, -))"
}

go_part() {
  local src="$root/examples/verify-go" bin="$out/bin/verify-go" stamp="$out/go.stamp"
  local go="${GO:-go}"
  local want
  want="$(echo | inputs_hash "$src/go.mod" "$src/go.sum" "$src"/*.go)"
  if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "ci-interop: go up to date ($bin)"
    return
  fi
  command -v "$go" >/dev/null || die "no $go on PATH: the Go interop test needs Go >= 1.24 (or set GO=/path/to/go)"
  echo "ci-interop: building $bin ($("$go" version))"
  rm -f "$stamp"
  # -mod=readonly: go.mod and go.sum are the pins; a build that wants to change them fails.
  (cd "$src" && GOFLAGS=-mod=readonly "$go" mod download && GOFLAGS=-mod=readonly "$go" build -trimpath -o "$bin.tmp" .) ||
    die "go build in examples/verify-go failed (needs the Go module proxy)"
  mv -f "$bin.tmp" "$bin"
  echo "$want" >"$stamp"
  echo "ci-interop: go ready"
}

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(python go)
for part in "${parts[@]}"; do
  case "$part" in
    python) with_lock python python_part ;;
    go) with_lock go go_part ;;
    *) die "unknown part '$part' (expected python or go)" ;;
  esac
done
