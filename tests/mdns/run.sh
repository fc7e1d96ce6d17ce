#!/usr/bin/env bash
# Discovery in network namespaces: python-zeroconf browses for the example accessories,
# started as a user starts them (tests/mdns/README.md says what each case shows).
#
#   tests/mdns/run.sh [--case N]...
#
# Needs root (network namespaces, mounts), `ip` (iproute2), and for case 6 avahi-daemon and
# dbus-daemon (apt-get install avahi-daemon dbus). It makes a venv with the pinned
# python-zeroconf on first use (in target/mdns-venv, or $MDNS_VENV), builds the examples,
# and keeps the processes' logs in target/mdns-logs (or $MDNS_LOGS).
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "tests/mdns: needs root (network namespaces)" >&2; exit 1; }
command -v ip >/dev/null || { echo "tests/mdns: needs ip (apt-get install iproute2)" >&2; exit 1; }

source tests/venv.sh
venv="${MDNS_VENV:-target/mdns-venv}"
ensure_venv "$venv" tests/mdns/requirements.txt mdns "the pinned python-zeroconf"

cargo build --quiet -p hap-smol -p hap-embedded --examples

# discovery.py deletes each case's namespaces and socket directory itself; this catches
# what a killed run left.
prefix="hapmdns-$$-"
cleanup() {
  for ns in $(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }'); do
    # Only processes this run started can be inside its namespaces.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  # The short directories that hold the cases' D-Bus sockets.
  find "${TMPDIR:-/tmp}" -maxdepth 1 -type d -name "$prefix*" -exec rm -rf {} + 2>/dev/null || true
}
trap cleanup EXIT

# Every wait inside is bounded and the cases take about a minute; this is the
# backstop, which ends the run with its cleanup if something still hangs.
timeout --foreground --signal=TERM --kill-after=10 240 \
  "$venv/bin/python" tests/mdns/discovery.py --bin-dir target/debug/examples \
  --logs "${MDNS_LOGS:-target/mdns-logs}" --prefix "$prefix" "$@"
