#!/usr/bin/env bash
# Runs the interoperability suite: aiohomekit against the example accessories.
#
#   tests/interop/run.sh [--only TARGET] [--case N]
#
# It makes a venv with the pinned aiohomekit on first use (in target/interop-venv, or
# $INTEROP_VENV), builds the examples, and runs tests/interop/interop.py. Case 8 creates
# a network namespace, so the suite needs root and `ip` (iproute2).
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/venv.sh
venv="${INTEROP_VENV:-target/interop-venv}"
ensure_venv "$venv" tests/interop/requirements.txt interop "the pinned aiohomekit"

cargo build --quiet -p hap-smol -p hap-std -p hap-embedded --examples

exec "$venv/bin/python" tests/interop/interop.py --bin-dir target/debug/examples "$@"
