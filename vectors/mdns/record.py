"""Records a real mDNS responder (python-zeroconf or avahi-daemon) on a veth pair.

Run by record.sh inside the recorder's network namespace, as root. It starts the responder in
the other namespace (`ip netns exec`), listens on port 5353 for 224.0.0.251 and ff02::fb on its
end of the veth, sends the queries of each exchange, and writes every datagram that crossed
the link, both ways, to one JSON file per responder.

Every wait is bounded; the responder processes are ended by their PIDs in a finally block.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dnswire as dw
from service import (HOST, INSTANCE, PORT, RECORDER_IFACE, RECORDER_V4, RECORDER_V6, RESPONDER_IFACE,
                     SERVICE_TYPE, TXT, TXT_UPDATED, V4, V6)

HERE = Path(__file__).resolve().parent
GROUP4, GROUP6, MDNS = "224.0.0.251", "ff02::fb", 5353
V4_EXTRA, V6_EXTRA = "192.0.2.4", "2001:db8::4"
INSTANCE_FQDN = f"{INSTANCE}.{SERVICE_TYPE}"
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)


class Recorder:
    def __init__(self) -> None:
        self.ifindex = socket.if_nametoindex(RECORDER_IFACE)
        s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s4.bind(("0.0.0.0", MDNS))
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      socket.inet_aton(GROUP4) + socket.inet_aton(RECORDER_V4))
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(RECORDER_V4))
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        s4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::", MDNS))
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                      socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", self.ifindex))
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        # Legacy unicast queries (RFC 6762 §6.7) leave from an ephemeral port.
        l4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        l4.bind((RECORDER_V4, 0))
        l4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(RECORDER_V4))
        l4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        l4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.s4, self.s6, self.l4 = s4, s6, l4
        self.t0 = time.monotonic()
        self.packets: list[dict] = []
        self.label = ""
        self.on_packet = None  # called with (decoded, packet) for each datagram from the responder

    def start_run(self) -> None:
        self.t0 = time.monotonic()
        self.packets = []

    def _now_ms(self) -> float:
        return round((time.monotonic() - self.t0) * 1000, 1)

    def _entry(self, direction: str, src: str, dst: str, data: bytes, label: str) -> dict:
        try:
            decoded = dw.decode(data)
        except dw.Malformed as error:
            decoded = {"malformed": str(error)}
        entry = {"t_ms": self._now_ms(), "from": src, "to": dst, "direction": direction, "label": label,
                 "kind": kind_of(decoded, dst), "hex": data.hex(), "decoded": decoded}
        self.packets.append(entry)
        return entry

    def send4(self, data: bytes, label: str, legacy: bool = False) -> None:
        sock = self.l4 if legacy else self.s4
        sock.sendto(data, (GROUP4, MDNS))
        self._entry("recorder", f"{RECORDER_V4}:{sock.getsockname()[1]}", f"{GROUP4}:{MDNS}", data, label)

    def send6(self, data: bytes, label: str) -> None:
        self.s6.sendto(data, (GROUP6, MDNS, 0, self.ifindex))
        self._entry("recorder", f"[{RECORDER_V6}]:{MDNS}", f"[{GROUP6}]:{MDNS}", data, label)

    def pump(self, seconds: float, proc: subprocess.Popen | None = None, want_line: bool = False) -> str | None:
        """Records datagrams for `seconds`; with want_line, returns as soon as proc prints a line."""
        deadline = time.monotonic() + seconds
        watch = [self.s4, self.s6, self.l4]
        if want_line and proc is not None:
            watch.append(proc.stdout)
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(watch, [], [], left)
            for sock in ready:
                if proc is not None and sock is proc.stdout:
                    return proc.stdout.readline().strip()
                data, anc, _, src = sock.recvmsg(9000, 256)
                dst = destination(sock, anc, self)
                src_text = f"{src[0]}:{src[1]}" if sock.family == socket.AF_INET else f"[{src[0]}]:{src[1]}"
                entry = self._entry("responder", src_text, dst, data, self.label)
                if self.on_packet is not None:
                    self.on_packet(entry)
        return None


def destination(sock: socket.socket, anc, rec: Recorder) -> str:
    port = sock.getsockname()[1]
    for level, kind, value in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            return f"{socket.inet_ntoa(value[8:12])}:{port}"
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
            return f"[{socket.inet_ntop(socket.AF_INET6, value[:16])}]:{port}"
    return f"?:{port}"


def kind_of(decoded: dict, dst: str) -> str:
    if "malformed" in decoded:
        return "malformed"
    if not decoded["qr"]:
        return "probe" if decoded["authorities"] else "query"
    records = decoded["answers"] + decoded["authorities"] + decoded["additionals"]
    if records and all(" ttl 0 " in r for r in records):
        return "goodbye"
    multicast = dst.startswith(GROUP4) or dst.startswith(f"[{GROUP6}]")
    return "response" if multicast else "unicast response"


# The queries of each exchange.
PTR_QM = dw.message(0, 0, [dw.question(SERVICE_TYPE, "PTR")])
PTR_QU = dw.message(0, 0, [dw.question(SERVICE_TYPE, "PTR", unicast_response=True)])
LEGACY_PTR = dw.message(0x1234, 0x0100, [dw.question(SERVICE_TYPE, "PTR")])
LEGACY_A = dw.message(0x4321, 0x0100, [dw.question(HOST, "A")])
SRV_TXT_QM = dw.message(0, 0, [dw.question(INSTANCE_FQDN, "SRV"), dw.question(INSTANCE_FQDN, "TXT")])


def known_answer_query(ttl: int) -> bytes:
    return dw.message(0, 0, [dw.question(SERVICE_TYPE, "PTR")],
                      [dw.record(SERVICE_TYPE, "PTR", ttl, dw.encode_name(INSTANCE_FQDN))])


# Another device's records under our instance name (different SRV target and TXT) and under our
# host name (a different address), as a response from port 5353: a conflict (RFC 6762 §9).
OTHER_HOST = "OtherLight.local"
CONFLICT_INSTANCE = dw.message(0, 0x8400, answers=[
    dw.record(SERVICE_TYPE, "PTR", 4500, dw.encode_name(INSTANCE_FQDN)),
    dw.record(INSTANCE_FQDN, "SRV", 120, dw.srv_rdata(0, 0, 51827, OTHER_HOST), cache_flush=True),
    dw.record(INSTANCE_FQDN, "TXT", 4500, dw.txt_rdata([("md", "OtherLight")]), cache_flush=True),
    dw.record(OTHER_HOST, "A", 120, socket.inet_aton("192.0.2.3"), cache_flush=True),
])
# Another device probing for our instance name at the same time (§8.2): its proposed records
# compare lexicographically later than ours (SRV port 51827 > 51826, TXT length 13 > 4), so the
# responder should lose; or earlier (SRV port 1, TXT length 3), so it should win.
def simultaneous_probe(port: int, txt) -> bytes:
    return dw.message(0, 0, [dw.question(INSTANCE_FQDN, "ANY", unicast_response=True)], authorities=[
        dw.record(INSTANCE_FQDN, "SRV", 120, dw.srv_rdata(0, 0, port, OTHER_HOST)),
        dw.record(INSTANCE_FQDN, "TXT", 4500, dw.txt_rdata(txt)),
    ])


PROBE_LATER = simultaneous_probe(51827, [("md", "OtherLight")])
PROBE_EARLIER = simultaneous_probe(1, [("a", "1")])
CONFLICT_HOST = dw.message(0, 0x8400, answers=[
    dw.record(HOST, "A", 120, socket.inet_aton("192.0.2.99"), cache_flush=True),
])


def queries(rec: Recorder, proc: subprocess.Popen | None) -> None:
    """The answering exchanges, 1.5 s apart so that no per-record rate limit (§6) hides an answer."""
    steps = [
        ("PTR query, QM, IPv4", lambda l: rec.send4(PTR_QM, l)),
        ("PTR query, QM, IPv6", lambda l: rec.send6(PTR_QM, l)),
        ("SRV+TXT query, QM, IPv4", lambda l: rec.send4(SRV_TXT_QM, l)),
        ("PTR query, QU, IPv4", lambda l: rec.send4(PTR_QU, l)),
        ("legacy unicast PTR query, id 0x1234, from an ephemeral port", lambda l: rec.send4(LEGACY_PTR, l, legacy=True)),
        ("legacy unicast A query, id 0x4321, from an ephemeral port", lambda l: rec.send4(LEGACY_A, l, legacy=True)),
        ("PTR query with the PTR as known answer, TTL 4500 (suppresses)", lambda l: rec.send4(known_answer_query(4500), l)),
        ("PTR query with the PTR as known answer, TTL 1000 < half (does not suppress)",
         lambda l: rec.send4(known_answer_query(1000), l)),
    ]
    for label, send in steps:
        rec.label = label
        send(label)
        rec.pump(1.5, proc)


class Responder:
    """One responder process in the other namespace."""

    def start(self, rec: Recorder) -> None: ...
    def update_txt(self, rec: Recorder) -> None: ...
    def goodbye(self, rec: Recorder) -> None: ...
    def stop(self) -> None: ...
    def log(self) -> str: return ""


class Zeroconf(Responder):
    name = "python-zeroconf"

    def __init__(self, netns: str) -> None:
        self.netns, self.proc = netns, None

    def start(self, rec: Recorder) -> None:
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, sys.executable, str(HERE / "zeroconf_responder.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, cwd=HERE)
        self.command(rec, "register", 15)
        rec.pump(1.5, self.proc)

    def command(self, rec: Recorder, command: str, limit: float) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = rec.pump(limit, self.proc, want_line=True)
        if line is None:
            raise RuntimeError(f"zeroconf did not finish {command!r} within {limit} s")
        self.last = line
        return line

    def update_txt(self, rec: Recorder) -> None:
        self.command(rec, "update", 10)
        rec.pump(1.5, self.proc)

    def goodbye(self, rec: Recorder) -> None:
        self.command(rec, "unregister", 10)
        rec.pump(1.0, self.proc)
        self.command(rec, "close", 10)

    def stop(self) -> None:
        end(self.proc)

    def log(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


AVAHI_CONF = f"""[server]
host-name={HOST.split('.')[0]}
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces={RESPONDER_IFACE}
enable-dbus=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no
publish-domain=no
publish-addresses=yes

[reflector]
enable-reflector=no
"""


def avahi_service(txt) -> str:
    lines = "\n".join(f"    <txt-record>{k}={v}</txt-record>" for k, v in txt)
    return f"""<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>{INSTANCE}</name>
  <service>
    <type>_hap._tcp</type>
    <port>{PORT}</port>
{lines}
  </service>
</service-group>
"""


class Avahi(Responder):
    name = "avahi-daemon"

    def __init__(self, netns: str) -> None:
        self.netns, self.proc = netns, None

    def start(self, rec: Recorder) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="mdns-avahi-")
        d = Path(self.dir.name)
        (d / "services").mkdir()
        (d / "avahi-daemon.conf").write_text(AVAHI_CONF)
        (d / "services" / "hap.service").write_text(avahi_service(TXT))
        # A private mount namespace gives the daemon its own service directory and an empty /run
        # (for its pid file and socket), without touching the host's.
        script = (f"mount --bind {d}/services /etc/avahi/services && mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon && "
                  f"exec avahi-daemon --no-drop-root --no-chroot --no-rlimits --debug -f {d}/avahi-daemon.conf")
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        # Probing (0-250 ms, then 3 x 250 ms), three announcements (t, t+1 s, t+3 s), and more
        # than a second more, so that the first query is not rate limited (§6) by the last one.
        rec.pump(8.0)
        if self.proc.poll() is not None:
            raise RuntimeError("avahi-daemon exited:\n" + self.log())

    def update_txt(self, rec: Recorder) -> None:
        # Without D-Bus, a changed service file and SIGHUP is how avahi-daemon takes new TXT.
        (Path(self.dir.name) / "services" / "hap.service").write_text(avahi_service(TXT_UPDATED))
        os.kill(self.proc.pid, signal.SIGHUP)
        rec.pump(6.0)

    def goodbye(self, rec: Recorder) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        rec.pump(2.0)

    def stop(self) -> None:
        end(self.proc)

    def log(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


def end(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def conflict_trigger(rec: Recorder, target: str, packet: bytes, label: str):
    """Sends `packet` once, right after the responder's first probe that claims `target`."""
    sent = []

    def on_packet(entry: dict) -> None:
        d = entry["decoded"]
        if sent or entry["kind"] != "probe":
            return
        names = [a.split(" ")[0].lower() for a in d["authorities"]] + [a.lower() for a in d["authorities"]]
        if any(target.lower() + "." in n for n in names):
            sent.append(True)
            rec.send4(packet, label)
    return on_packet


def run_main(rec: Recorder, responder: Responder) -> dict:
    rec.start_run()
    try:
        rec.label = "start: probes and announcements"
        responder.start(rec)
        queries(rec, getattr(responder, "proc", None))
        rec.label = "TXT update: sf 1 -> 0, c# 1 -> 2"
        responder.update_txt(rec)
        rec.label = "unregister / shutdown: goodbyes"
        responder.goodbye(rec)
    finally:
        responder.stop()
    return {"run": "main", "packets": rec.packets, "responder_log": responder.log().splitlines()[-60:]}


def run_conflict(rec: Recorder, responder: Responder, run: str, target: str, packet: bytes, seconds: float,
                 what: str = "conflicting response") -> dict:
    rec.start_run()
    label = f"{what} for {target}, sent after the first probe"
    rec.on_packet = conflict_trigger(rec, target, packet, label)
    try:
        rec.label = "start, conflict, rename: probes and announcements"
        responder.start(rec)
        rec.pump(seconds, getattr(responder, "proc", None))
        rec.on_packet = None
        rec.label = "unregister / shutdown: goodbyes"
        responder.goodbye(rec)
    finally:
        rec.on_packet = None
        responder.stop()
    return {"run": run, "packets": rec.packets, "responder_log": responder.log().splitlines()[-60:]}


def run_conflict_after(rec: Recorder, responder: Responder) -> dict:
    rec.start_run()
    try:
        rec.label = "start: probes and announcements"
        responder.start(rec)
        rec.label = "conflicting response for the instance name after announcing"
        rec.send4(CONFLICT_INSTANCE, rec.label)
        rec.pump(8.0, getattr(responder, "proc", None))
        rec.label = "unregister / shutdown: goodbyes"
        responder.goodbye(rec)
    finally:
        responder.stop()
    return {"run": "conflict-after-announce", "packets": rec.packets,
            "responder_log": responder.log().splitlines()[-60:]}


def run_address_change(rec: Recorder, responder: Responder, netns: str) -> dict:
    """Adds a second IPv4 and IPv6 address to the responder's interface, then removes them (§8.4)."""
    rec.start_run()
    added = []

    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", netns, *args], check=True, timeout=10)

    try:
        rec.label = "start: probes and announcements"
        responder.start(rec)
        rec.label = f"address added: {V4_EXTRA}/24 and {V6_EXTRA}/64 on {RESPONDER_IFACE}"
        ip("addr", "add", f"{V4_EXTRA}/24", "dev", RESPONDER_IFACE)
        added.append(("-4", f"{V4_EXTRA}/24"))
        ip("-6", "addr", "add", f"{V6_EXTRA}/64", "dev", RESPONDER_IFACE, "nodad")
        added.append(("-6", f"{V6_EXTRA}/64"))
        rec.pump(6.0)
        rec.label = f"address removed: {V4_EXTRA} and {V6_EXTRA}"
        while added:
            family, address = added.pop()
            ip(family, "addr", "del", address, "dev", RESPONDER_IFACE)
        rec.pump(3.0)
        rec.label = "unregister / shutdown: goodbyes"
        responder.goodbye(rec)
    finally:
        for family, address in added:
            subprocess.run(["ip", "-n", netns, family, "addr", "del", address, "dev", RESPONDER_IFACE], timeout=10)
        responder.stop()
    return {"run": "address-change", "packets": rec.packets, "responder_log": responder.log().splitlines()[-60:]}


def versions() -> dict:
    import zeroconf
    avahi = subprocess.run(["avahi-daemon", "--version"], capture_output=True, text=True).stdout.strip()
    dpkg = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "avahi-daemon"], capture_output=True, text=True).stdout
    kernel = os.uname().release
    return {"python": sys.version.split()[0], "zeroconf": zeroconf.__version__, "avahi-daemon": avahi,
            "avahi-daemon (Debian package)": dpkg, "linux": kernel}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responder-netns", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", choices=["zeroconf", "avahi"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder()
    v = versions()
    network = {"responder": {"iface": RESPONDER_IFACE, "ipv4": f"{V4}/24", "ipv6": f"{V6}/64"},
               "recorder": {"iface": RECORDER_IFACE, "ipv4": f"{RECORDER_V4}/24", "ipv6": f"{RECORDER_V6}/64"},
               "note": "veth pair between two network namespaces; no IPv6 link-local addresses (addr_gen_mode 1)"}
    service = {"type": SERVICE_TYPE, "instance": INSTANCE, "host": HOST, "port": PORT, "txt": [f"{k}={x}" for k, x in TXT],
               "txt_updated": [f"{k}={x}" for k, x in TXT_UPDATED], "ipv4": V4, "ipv6": V6}
    jobs = []
    if args.only in (None, "zeroconf"):
        jobs.append((f"zeroconf-{v['zeroconf']}", "python-zeroconf", lambda: [
            run_main(rec, Zeroconf(args.responder_netns)),
            run_conflict(rec, Zeroconf(args.responder_netns), "conflict-instance", INSTANCE_FQDN, CONFLICT_INSTANCE, 4.0),
            run_conflict_after(rec, Zeroconf(args.responder_netns)),
            run_conflict(rec, Zeroconf(args.responder_netns), "simultaneous-probe-later", INSTANCE_FQDN, PROBE_LATER,
                         4.0, "simultaneous probe with later data"),
        ]))
    if args.only in (None, "avahi"):
        ver = v["avahi-daemon"].split()[-1]
        jobs.append((f"avahi-{ver}", "avahi-daemon", lambda: [
            run_main(rec, Avahi(args.responder_netns)),
            run_conflict(rec, Avahi(args.responder_netns), "conflict-instance", INSTANCE_FQDN, CONFLICT_INSTANCE, 6.0),
            run_conflict(rec, Avahi(args.responder_netns), "conflict-host", HOST, CONFLICT_HOST, 6.0),
            run_conflict_after(rec, Avahi(args.responder_netns)),
            run_conflict(rec, Avahi(args.responder_netns), "simultaneous-probe-later", INSTANCE_FQDN, PROBE_LATER,
                         6.0, "simultaneous probe with later data"),
            run_conflict(rec, Avahi(args.responder_netns), "simultaneous-probe-earlier", INSTANCE_FQDN, PROBE_EARLIER,
                         6.0, "simultaneous probe with earlier data"),
            run_address_change(rec, Avahi(args.responder_netns), args.responder_netns),
        ]))
    for file, responder, job in jobs:
        runs = job()
        for run in runs:
            if not any(p["direction"] == "responder" for p in run["packets"]):
                raise RuntimeError(f"{file}: nothing heard from {responder} in run {run['run']}:\n"
                                   + "\n".join(run["responder_log"]))
        document = {"format": 1, "responder": responder, "recorded_with": v, "network": network, "service": service,
                    "runs": runs}
        (out / f"{file}.json").write_text(json.dumps(document, indent=1) + "\n")
        print(f"{file}.json: " + ", ".join(f"{r['run']} {len(r['packets'])} datagrams" for r in document["runs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
