#!/usr/bin/env bash
# Interoperability, controller side: hapctl against HAP-python 5.0.0, HAP-NodeJS 1.2.0 and
# the project's examples, each started as its users start it, each in a network namespace
# of its own (tests/interop/controller.py says what is checked).
#
#   tests/interop/hapctl.sh [--only TARGET]...
#
# TARGET: virtual-light, virtual-light-std, bridge, garage-door, host-light, hap-python,
# hap-nodejs. Needs root (network namespaces), `ip` (iproute2), Python 3, and node + npm.
# The peers are installed as the benchmark installs them (tests/bench/run.sh): HAP-python
# from vectors/capture/requirements.txt into target/bench-venv (or $BENCH_VENV), hap-nodejs
# from tests/bench/peers/hap-nodejs/package-lock.json into target/bench-node.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "tests/interop/hapctl.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in ip node npm; do
  command -v "$tool" >/dev/null || {
    echo "tests/interop/hapctl.sh: needs $tool (apt-get install iproute2 nodejs npm)" >&2
    exit 1
  }
done

source tests/venv.sh
venv="${BENCH_VENV:-target/bench-venv}"
# The recorder's pins: HAP-python 5.0.0 (and aiohomekit 4.0.1, unused here).
ensure_venv "$venv" vectors/capture/requirements.txt bench "the pinned HAP-python and aiohomekit"

# The same install as the benchmark's, in the same place: either script reuses it.
peer=tests/bench/peers/hap-nodejs
node_dir=target/bench-node
if ! cmp -s "$peer/package-lock.json" "$node_dir/package-lock.json" 2>/dev/null; then
  echo "hapctl interop: installing hap-nodejs into $node_dir"
  rm -rf "$node_dir" && mkdir -p "$node_dir"
  cp "$peer/package.json" "$peer/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
fi

cargo build --quiet -p hap-smol -p hap-std -p hap-embedded --examples
cargo build --quiet -p hapctl

# controller.py deletes each target's namespace itself; this catches what a killed run left.
prefix="hapctl-$$-"
cleanup() {
  for ns in $(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }'); do
    # Only processes this run started can be inside its namespaces.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

# Every wait inside is bounded and a run takes about two minutes; this is the backstop,
# which ends the run (and then the cleanup above) if something still hangs.
timeout --foreground --signal=TERM --kill-after=10 480 \
  "$venv/bin/python" tests/interop/controller.py --hapctl target/debug/hapctl \
  --bin-dir target/debug/examples --python "$venv/bin/python" --node-dir "$node_dir" \
  --prefix "$prefix" "$@"
