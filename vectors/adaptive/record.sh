#!/usr/bin/env bash
# Records the Adaptive Lighting vectors again: HAP-NodeJS 1.2.0's answers to the
# Characteristic Value Transition Control writes iOS sends, and what its engine does on
# a virtual clock.
#
#   vectors/adaptive/record.sh [OUT_FILE]   (default: vectors/hap-nodejs-1.2.0/adaptive-lighting.json)
#
# Needs node and npm. On first use it installs the pinned hap-nodejs into
# target/vectors-node (or $ADAPTIVE_VECTORS_NODE) with `npm ci`. The recording runs in
# one node process with no network; two runs write identical files.
set -euo pipefail
cd "$(dirname "$0")/../.."

out="${1:-vectors/hap-nodejs-1.2.0/adaptive-lighting.json}"
command -v npm >/dev/null || { echo "record.sh: needs node and npm" >&2; exit 2; }

src=vectors/adaptive
node_dir="${ADAPTIVE_VECTORS_NODE:-target/vectors-node}"
if ! cmp -s "$src/package-lock.json" "$node_dir/package-lock.json" 2>/dev/null; then
  echo "record.sh: installing hap-nodejs into $node_dir" >&2
  rm -rf "$node_dir" && mkdir -p "$node_dir"
  cp "$src/package.json" "$src/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
fi

mkdir -p "$(dirname "$out")"
exec node "$src/record.js" --node-dir "$node_dir" --out "$out"
