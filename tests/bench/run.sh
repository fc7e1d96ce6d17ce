#!/usr/bin/env bash
# The side-by-side benchmark: our virtual light, HAP-python 5.0.0 and HAP-NodeJS 1.2.0,
# driven by aiohomekit on 127.0.0.1, with a table of each peer's ratio to ours.
#
#   tests/bench/run.sh [--quick] [--only ours|hap-python|hap-nodejs] [--check] [--out FILE]
#
# On first use it installs the pinned HAP-python and aiohomekit into a venv
# (target/bench-venv, or $BENCH_VENV) and hap-nodejs into target/bench-node with
# `npm ci`, and builds the light and the load generator in release mode. It needs
# Python 3 and, for HAP-NodeJS, node and npm. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/venv.sh
venv="${BENCH_VENV:-target/bench-venv}"
# The recorder's pins: HAP-python 5.0.0 and aiohomekit 4.0.1.
ensure_venv "$venv" vectors/capture/requirements.txt bench "the pinned HAP-python and aiohomekit"

node_args=()
peer=tests/bench/peers/hap-nodejs
if [[ " $* " != *" --only "* || " $* " == *" --only hap-nodejs "* ]]; then
  if ! command -v npm >/dev/null; then
    echo "bench: HAP-NodeJS needs node and npm; install them or pass --only" >&2
    exit 2
  fi
  node_dir=target/bench-node
  if ! cmp -s "$peer/package-lock.json" "$node_dir/package-lock.json" 2>/dev/null; then
    echo "bench: installing hap-nodejs into $node_dir"
    rm -rf "$node_dir" && mkdir -p "$node_dir"
    cp "$peer/package.json" "$peer/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
  fi
  node_args=(--node-dir "$node_dir")
fi

# Two builds: with --example, cargo would build only that example of every package.
cargo build --quiet --release -p hap-smol --example virtual-light
cargo build --quiet --release -p hap-bench --bins

exec "$venv/bin/python" tests/bench/side_by_side.py \
  --light target/release/examples/virtual-light --load target/release/hap-load \
  --echo target/release/hap-echo \
  "${node_args[@]}" "$@"
