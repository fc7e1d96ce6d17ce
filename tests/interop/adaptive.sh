#!/usr/bin/env bash
# Interoperability: Adaptive Lighting driven as iOS drives it, hapctl against
# `virtual-light --adaptive` (tests/interop/adaptive.py says what is checked).
#
#   tests/interop/adaptive.sh [--hap-nodejs] [--keep]
#
# Everything runs on 127.0.0.1 with the accessory's mDNS off: no root, no namespaces.
# --hap-nodejs runs the same checks against HAP-NodeJS 1.2.0's AdaptiveLightingController
# (tests/interop/peers/hap-nodejs-user/adaptive-light.js), the reference the checks follow;
# it needs node, and hap-nodejs installed in target/bench-node (tests/interop/hapctl.sh and
# tests/bench/run.sh install it). --keep keeps the scratch directory (the accessory's log).
set -euo pipefail
cd "$(dirname "$0")/../.."

reference=0
pass=()
for arg in "$@"; do
  case "$arg" in
    --hap-nodejs) reference=1 ;;
    *) pass+=("$arg") ;;
  esac
done

cargo build --quiet -p hapctl
if [ "$reference" = 1 ]; then
  node_dir=target/bench-node
  [ -d "$node_dir/node_modules/hap-nodejs" ] || {
    echo "tests/interop/adaptive.sh: no hap-nodejs in $node_dir (run tests/interop/hapctl.sh once)" >&2
    exit 1
  }
  export NODE_PATH="$PWD/$node_dir/node_modules"
  accessory=(--command "node $PWD/tests/interop/peers/hap-nodejs-user/adaptive-light.js --port {port} --pin {pin} --data {data}")
else
  cargo build --quiet -p hap-smol --example virtual-light
  light=target/debug/examples/virtual-light
  if ! "$light" --help 2>/dev/null | grep -q -- '--adaptive'; then
    echo "FAIL virtual-light: no --adaptive flag ($light --help)"
    echo "adaptive: 0 passed, 1 failed"
    exit 1
  fi
  accessory=(--binary "$light")
fi

# Every wait inside is bounded and a run takes about 35 s; this is the backstop.
timeout --foreground --signal=TERM --kill-after=10 120 \
  python3 tests/interop/adaptive.py --hapctl target/debug/hapctl "${accessory[@]}" "${pass[@]+"${pass[@]}"}"
