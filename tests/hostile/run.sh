#!/usr/bin/env bash
# Builds the two virtual lights and the hostile suite (release, so SRP is fast), and runs
# the suite against both. Arguments go to the suite: see `run.sh --help`.
#
#   tests/hostile/run.sh                     # CI's short mode
#   tests/hostile/run.sh --long              # 100 crash iterations, 30-minute soak
#   tests/hostile/run.sh --only after/ --target std
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p hap-smol --example virtual-light
cargo build --release --quiet -p hap-std --example virtual-light-std
cargo build --release --quiet -p hap-hostile
exec target/release/hap-hostile \
  --smol target/release/examples/virtual-light \
  --std target/release/examples/virtual-light-std "$@"
