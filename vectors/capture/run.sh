#!/usr/bin/env bash
# Records the vectors again: HAP-python against aiohomekit, on loopback, seeded.
#
#   vectors/capture/run.sh [OUT_DIR]     (default: vectors/hap-python-5.0.0)
#
# It makes a venv with the pinned packages on first use (target/vectors-venv, or
# $VECTORS_VENV). Two runs write identical files.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/venv.sh
venv="${VECTORS_VENV:-target/vectors-venv}"
ensure_venv "$venv" vectors/capture/requirements.txt vectors "the pinned HAP-python and aiohomekit"

# HAP-python logs its exchanges at INFO and above; keep them out of the way.
exec "$venv/bin/python" vectors/capture/capture.py --out "${1:-vectors/hap-python-5.0.0}" 2>/dev/null
