#!/usr/bin/env bash
# Records the mDNS vectors again: python-zeroconf and avahi-daemon publishing a HAP-like
# service, each seen from the other end of a veth pair.
#
#   vectors/mdns/record.sh [OUT_DIR] [--only zeroconf|avahi]     (default: vectors/mdns)
#
# Needs root (network namespaces, mounts) and avahi-daemon (apt-get install avahi-daemon).
# It makes two network namespaces joined by a veth pair with documentation-range addresses
# only (192.0.2.0/24, 2001:db8::/64, no IPv6 link-local), so nothing reaches another network,
# and removes them at the end, also on failure. The responders' timing is random (probe
# jitter), so two runs differ in timestamps, never in record contents.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "record.sh: needs root (network namespaces)" >&2; exit 1; }
command -v avahi-daemon >/dev/null || { echo "record.sh: needs avahi-daemon (apt-get install avahi-daemon)" >&2; exit 1; }

source tests/venv.sh
venv="${MDNS_VECTORS_VENV:-target/mdns-vectors-venv}"
ensure_venv "$venv" vectors/mdns/requirements.txt mdns-vectors "the pinned python-zeroconf"
venv="$(cd "$venv" && pwd)"

out="vectors/mdns"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then out=$1; shift; fi
extra=("$@")

resp="mdnsrec-r-$$"
rec="mdnsrec-c-$$"
cleanup() {
  # Only processes inside our own namespace can remain (a responder, if record.py died).
  for pid in $(ip netns pids "$resp" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in $(ip netns pids "$resp" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  ip netns del "$resp" 2>/dev/null || true
  ip netns del "$rec" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$resp"
ip netns add "$rec"
ip link add mdr0 netns "$resp" type veth peer name mdc0 netns "$rec"
for side in "$resp mdr0 192.0.2.2 2001:db8::2" "$rec mdc0 192.0.2.1 2001:db8::1"; do
  read -r ns dev v4 v6 <<<"$side"
  # No link-local address: only documentation-range addresses appear in the captures.
  ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$dev.addr_gen_mode=1" "net.ipv6.conf.$dev.accept_ra=0"
  ip -n "$ns" addr add "$v4/24" dev "$dev"
  ip -n "$ns" -6 addr add "$v6/64" dev "$dev" nodad
  ip -n "$ns" link set "$dev" up
  ip -n "$ns" route add 224.0.0.0/4 dev "$dev"
done

timeout 300 ip netns exec "$rec" "$venv/bin/python" vectors/mdns/record.py --responder-netns "$resp" --out "$out" "${extra[@]}"
