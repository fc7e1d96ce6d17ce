"""Discovery as users meet it: the example accessories, started as a user starts them, found
by python-zeroconf across a veth pair between network namespaces.

Run by tests/mdns/run.sh (as root: it creates network namespaces). Each case builds its own
namespaces: the accessory's, joined by a veth pair to the browser's. Only the interfaces made
here carry traffic, with addresses from the documentation ranges 192.0.2.0/24 and
2001:db8::/32, so nothing reaches another network. The browser is python-zeroconf 0.154.0
(ServiceBrowser and ServiceInfo), run as a separate process inside the browser's namespace
(`discovery.py browse`), so that every browse or resolve starts with an empty cache.

Every wait is bounded. Every process started here is ended here by its PID, and each case's
namespaces are deleted when it ends, also when it fails; run.sh deletes any that are left
(by their name prefix) if this script itself is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

HAP_TYPE = "_hap._tcp.local."
HERE = Path(__file__).resolve()

# The two ends of every link: the accessory's and the browser's.
LIGHT_V4, BROWSER_V4, LIGHT_V4_NEW = "192.0.2.2", "192.0.2.1", "192.0.2.3"
LIGHT_V6, BROWSER_V6 = "2001:db8::2", "2001:db8::1"
LIGHT_DEV, BROWSER_DEV = "hapl0", "hapb0"

PIN = "314-15-926"
# The accessories print their first lines at once; a slow CI machine gets some slack.
START_LIMIT = 10.0
# How long a browse waits for the expected instances, and a resolve for its records.
BROWSE_LIMIT = 12.0
RESOLVE_LIMIT = 3.0
# Issue 21: a changed address shows in a fresh resolve within 30 s.
ADDRESS_CHANGE_LIMIT = 30.0
LOG_TAIL = 40


class Failure(Exception):
    """A check that did not hold; the message says what was seen."""


# ---------------------------------------------------------------------------------------
# The browser: runs inside the browser's namespace, prints one JSON object.


async def browse(args: argparse.Namespace) -> dict:
    """Browses until every `--want` instance is seen (or `--timeout`), or takes the one
    `--resolve` names, and resolves each."""
    version = {"4": IPVersion.V4Only, "6": IPVersion.V6Only, "all": IPVersion.All}[args.ip]
    azc = AsyncZeroconf(interfaces=args.interface, ip_version=version)
    seen: list[str] = []
    browser = None
    try:
        if args.resolve:
            seen = [f"{args.resolve}.{HAP_TYPE}"]
        else:
            def on_change(zeroconf, service_type, name, state_change) -> None:  # noqa: ARG001
                if name not in seen:
                    seen.append(name)

            browser = AsyncServiceBrowser(azc.zeroconf, [HAP_TYPE], handlers=[on_change])
            want = set(args.want)
            deadline = time.monotonic() + args.timeout
            while not want <= {instance_of(name) for name in seen} and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        services = {}
        for name in seen:
            info = AsyncServiceInfo(HAP_TYPE, name)
            if not await info.async_request(azc.zeroconf, RESOLVE_LIMIT * 1000):
                services[instance_of(name)] = {"resolved": False}
                continue
            services[instance_of(name)] = {
                "resolved": True,
                "port": info.port,
                "server": info.server,
                "v4": info.parsed_addresses(IPVersion.V4Only),
                "v6": info.parsed_scoped_addresses(IPVersion.V6Only),
                "txt": dict(info.decoded_properties),
            }
        return {"seen": [instance_of(name) for name in seen], "services": services}
    finally:
        if browser is not None:
            await browser.async_cancel()
        await azc.async_close()


def instance_of(name: str) -> str:
    suffix = "." + HAP_TYPE
    return name[: -len(suffix)] if name.endswith(suffix) else name


def browse_main(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(browse(args))), flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# Namespaces, links and processes, all ended by the case that made them.


def run(*command: str, timeout: float = 10) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise Failure(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout


class Process:
    """A program started inside a namespace, its output in a log file."""

    def __init__(self, label: str, netns: str, argv: list[str], log: Path,
                 env: dict[str, str] | None = None):
        self.label, self.argv, self.log = label, argv, log
        self._log_file = log.open("w")
        # `ip netns exec` execs the program, so the PID is the program's.
        self.popen = subprocess.Popen(["ip", "netns", "exec", netns, *argv],
                                      stdin=subprocess.PIPE, stdout=self._log_file,
                                      stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, pattern: str, limit: float = START_LIMIT) -> re.Match:
        """Waits until the output has a line matching `pattern` (a regex, case-insensitive)."""
        deadline = time.monotonic() + limit
        while True:
            found = re.search(pattern, self.output(), re.IGNORECASE | re.MULTILINE)
            if found:
                return found
            if not self.alive():
                raise Failure(f"{self.label} exited ({self.popen.returncode}) without printing "
                              f"a line matching {pattern!r}")
            if time.monotonic() > deadline:
                raise Failure(f"{self.label} printed no line matching {pattern!r} in {limit:.0f} s")
            time.sleep(0.1)

    def check_alive(self) -> None:
        if not self.alive():
            raise Failure(f"{self.label} exited ({self.popen.returncode})")

    def stop(self) -> None:
        """SIGTERM (the accessories send their goodbyes), then SIGKILL after 3 s."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(3)
        if self.popen.stdin:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        self._log_file.close()

    def tail(self) -> str:
        # Without the setup QR code's rows of block characters.
        lines = [line for line in self.output().splitlines() if line.strip(" \u2580\u2584\u2588")]
        lines = lines[-LOG_TAIL:]
        return "\n".join(f"    {line}" for line in lines)


class World:
    """One case's namespaces, links and processes; `close` ends them all."""

    def __init__(self, prefix: str, case: int, scratch: Path, bins: Path, python: str):
        self.prefix, self.case, self.scratch = f"{prefix}{case}-", case, scratch
        self.bins, self.python = bins, python
        self.namespaces: list[str] = []
        self.processes: list[Process] = []
        # A short path for sockets (a Unix socket's path has at most 107 bytes).
        # Named like the namespaces, so that run.sh finds it if this script is killed.
        self.sockets = Path(tempfile.mkdtemp(prefix=self.prefix))
        # A machine without a system D-Bus, so without avahi-daemon: `--mdns auto` (the
        # default) must take the built-in responder, and never a daemon that may run on
        # the host, outside these namespaces. Case 6 gives the lights a bus of its own.
        self.no_bus = dict(os.environ,
                           DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={self.sockets / 'no-system-bus'}")

    def netns(self, role: str) -> str:
        name = f"{self.prefix}{role}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        # Every machine has loopback up; the accessories must still not advertise on it.
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, light_ns: str, browser_ns: str, *, v4: bool = True, link_local: bool = False,
             light_up: bool = True) -> None:
        """A veth pair: LIGHT_DEV in `light_ns`, BROWSER_DEV in `browser_ns`.

        With `light_up` false the accessory's end is left down and without addresses, for
        `light_up_later`."""
        run("ip", "link", "add", LIGHT_DEV, "netns", light_ns, "type", "veth", "peer", "name",
            BROWSER_DEV, "netns", browser_ns)
        for ns, dev in ((light_ns, LIGHT_DEV), (browser_ns, BROWSER_DEV)):
            # No DAD: the addresses are usable at once. Without link-local addresses only
            # documentation-range addresses exist. Deleting the primary IPv4 address keeps
            # a secondary one in the same subnet (case 3).
            sysctls = [f"net.ipv6.conf.{dev}.accept_dad=0", f"net.ipv6.conf.{dev}.accept_ra=0",
                       f"net.ipv4.conf.{dev}.promote_secondaries=1"]
            if not link_local:
                sysctls.append(f"net.ipv6.conf.{dev}.addr_gen_mode=1")
            run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls)
        self.address(browser_ns, BROWSER_DEV, BROWSER_V4 if v4 else None, BROWSER_V6)
        if light_up:
            self.light_up_later(light_ns, v4=v4)

    def address(self, ns: str, dev: str, v4: str | None, v6: str | None) -> None:
        if v4:
            run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
        if v6:
            run("ip", "-n", ns, "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad")
        run("ip", "-n", ns, "link", "set", dev, "up")
        if v4:
            # What a default route does on a real network: IPv4 multicast has a way out.
            run("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)

    def light_up_later(self, light_ns: str, v4: bool = True) -> None:
        self.address(light_ns, LIGHT_DEV, LIGHT_V4 if v4 else None, LIGHT_V6)

    def start(self, label: str, netns: str, argv: list[str],
              env: dict[str, str] | None = None) -> Process:
        log = self.scratch / f"case{self.case}-{label.replace(' ', '-')}.log"
        process = Process(label, netns, argv, log, env)
        self.processes.append(process)
        return process

    def light(self, label: str, netns: str, port: int, *extra: str,
              env: dict[str, str] | None = None) -> Process:
        """The virtual light as the README starts it, with its own data directory and port."""
        data = self.scratch / f"case{self.case}-{label.replace(' ', '-')}-data"
        argv = [str(self.bins / "virtual-light"), "--data", str(data), "--port", str(port),
                "--pin", PIN, "--log", "debug", *extra]
        process = self.start(label, netns, argv, env or self.no_bus)
        process.data = data  # type: ignore[attr-defined]
        process.wait_for(r"^listening on ")
        return process

    def browse(self, browser_ns: str, *, ip: str = "all", want: tuple[str, ...] = (),
               resolve: str | None = None, timeout: float = BROWSE_LIMIT) -> dict:
        """A fresh python-zeroconf in `browser_ns`: browses (or resolves `resolve`) and returns
        what it found."""
        interfaces = {"4": [BROWSER_V4], "6": [BROWSER_V6], "all": [BROWSER_V4, BROWSER_V6]}[ip]
        command = ["ip", "netns", "exec", browser_ns, self.python, str(HERE), "browse",
                   "--ip", ip, "--timeout", str(timeout)]
        for interface in interfaces:
            command += ["--interface", interface]
        for name in want:
            command += ["--want", name]
        if resolve:
            command += ["--resolve", resolve]
        limit = timeout + RESOLVE_LIMIT * max(len(want), 1) + 10
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise Failure(f"the browser did not finish in {limit:.0f} s") from None
        if done.returncode != 0 or not done.stdout.strip():
            raise Failure(f"the browser failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        for ns in self.namespaces:
            # Whatever still runs inside was started by this case (a child of a process
            # above): end it, or the namespace outlives its deletion.
            listed = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in listed.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        shutil.rmtree(self.sockets, ignore_errors=True)


def stored_device_id(process: Process) -> str:
    state = json.loads((process.data / "accessory.json").read_text())  # type: ignore[attr-defined]
    return state["device_id"]


def found(result: dict, name: str) -> dict:
    service = result["services"].get(name)
    if service is None:
        raise Failure(f"{name!r} was not found; the browser saw {result['seen']}")
    if not service["resolved"]:
        raise Failure(f"{name!r} was seen but did not resolve (SRV, TXT and an address) in "
                      f"{RESOLVE_LIMIT:.0f} s")
    return service


def describe(service: dict) -> str:
    return (f"port {service['port']}, host {service['server']}, "
            f"addresses {service['v4'] + service['v6']}")


# ---------------------------------------------------------------------------------------
# The cases.


def case_same_name(world: World) -> str:
    """Two lights with the same name are both found, under distinct names."""
    light_ns, browser_ns = world.netns("light"), world.netns("browser")
    world.link(light_ns, browser_ns)
    first = world.light("light A", light_ns, 51826)
    # The first one has probed and announced before the second starts, so it keeps the
    # name (RFC 6762 §9: it defends it) and the newcomer renames.
    time.sleep(2.5)
    second = world.light("light B", light_ns, 51828)
    names = ("Virtual Light", "Virtual Light (2)")
    result = world.browse(browser_ns, want=names, timeout=BROWSE_LIMIT + 3)
    first.check_alive()
    second.check_alive()
    services = {name: found(result, name) for name in names}
    extra = [name for name in result["seen"] if name not in names]
    if extra:
        raise Failure(f"besides {list(names)}, the browser saw {extra}")
    for (name, service), (process, port) in zip(services.items(), ((first, 51826), (second, 51828))):
        if service["port"] != port:
            raise Failure(f"{name!r} resolved to port {service['port']}, expected {port} "
                          f"({process.label}, which started {'first' if port == 51826 else 'second'})")
        device_id = stored_device_id(process)
        if service["txt"].get("id") != device_id:
            raise Failure(f"{name!r} has TXT id {service['txt'].get('id')}, but {process.label} "
                          f"stored device id {device_id}")
        if LIGHT_V4 not in service["v4"]:
            raise Failure(f"{name!r} resolved to {describe(service)}, without {LIGHT_V4}")
    return "; ".join(f"{name!r} -> {describe(service)}, id {service['txt'].get('id')}"
                     for name, service in services.items())


def case_ipv6_only(world: World) -> str:
    """An IPv6-only browser finds the light and resolves an IPv6 address."""
    light_ns, browser_ns = world.netns("light"), world.netns("browser")
    # An IPv6-only link, with link-local addresses as every IPv6 interface has them: there
    # is no IPv4 to fall back on.
    world.link(light_ns, browser_ns, v4=False, link_local=True)
    light = world.light("light", light_ns, 51826)
    result = world.browse(browser_ns, ip="6", want=("Virtual Light",))
    light.check_alive()
    service = found(result, "Virtual Light")
    if service["port"] != 51826:
        raise Failure(f"resolved to port {service['port']}, expected 51826")
    if LIGHT_V6 not in service["v6"]:
        raise Failure(f"resolved to {describe(service)}: no {LIGHT_V6}, the light's address")
    link_local = run("ip", "-n", light_ns, "-6", "-o", "addr", "show", "dev", LIGHT_DEV,
                     "scope", "link")
    own = {LIGHT_V6} | {line.split()[3].split("/")[0] for line in link_local.splitlines()}
    foreign = [a for a in service["v6"] if a.split("%")[0] not in own]
    if foreign:
        raise Failure(f"resolved to {describe(service)}: {foreign} are not the light's "
                      f"interface's (it has {sorted(own)})")
    if service["v4"]:
        raise Failure(f"resolved to {describe(service)}: IPv4 addresses on an IPv6-only link")
    return f"over IPv6 only: 'Virtual Light' -> {describe(service)}"


def case_address_change(world: World) -> str:
    """An added address and a removed one are reflected in a fresh resolve within 30 s."""
    light_ns, browser_ns = world.netns("light"), world.netns("browser")
    world.link(light_ns, browser_ns)
    light = world.light("light", light_ns, 51826)

    def fresh() -> dict | None:
        result = world.browse(browser_ns, ip="4", resolve="Virtual Light")
        service = result["services"].get("Virtual Light", {})
        return service if service.get("resolved") else None

    deadline = time.monotonic() + BROWSE_LIMIT
    before = fresh()
    while (before is None or LIGHT_V4 not in before["v4"]) and time.monotonic() < deadline:
        time.sleep(1)
        before = fresh()
    if before is None or LIGHT_V4 not in before["v4"]:
        raise Failure(f"before the change, a resolve did not give {LIGHT_V4}: "
                      f"{describe(before) if before else 'no answer'}")
    run("ip", "-n", light_ns, "addr", "add", f"{LIGHT_V4_NEW}/24", "dev", LIGHT_DEV)
    run("ip", "-n", light_ns, "addr", "del", f"{LIGHT_V4}/24", "dev", LIGHT_DEV)
    changed = time.monotonic()
    tries, after = 0, None
    while time.monotonic() - changed < ADDRESS_CHANGE_LIMIT:
        light.check_alive()
        tries += 1
        after = fresh()
        if after and LIGHT_V4_NEW in after["v4"] and LIGHT_V4 not in after["v4"]:
                    return (f"before: {before['v4']}; {LIGHT_V4_NEW} added and {LIGHT_V4} removed; "
                    f"fresh resolve #{tries}, {time.monotonic() - changed:.1f} s later: {after['v4']}")
        time.sleep(1)
    seen = world.browse(browser_ns, ip="4", want=("Virtual Light",), timeout=5)
    raise Failure(f"{ADDRESS_CHANGE_LIMIT:.0f} s after adding {LIGHT_V4_NEW} and removing "
                  f"{LIGHT_V4}, the last of {tries} fresh resolves gave "
                  f"{describe(after) if after else 'no answer'}; a browse then saw "
                  + "; ".join(f"{name!r} -> {describe(service) if service['resolved'] else 'unresolved'}"
                              for name, service in seen["services"].items()) or "nothing")


def case_late_interface(world: World) -> str:
    """A light started before its interface is up is found at its address once it is."""
    light_ns, browser_ns = world.netns("light"), world.netns("browser")
    world.link(light_ns, browser_ns, light_up=False)
    light = world.light("light", light_ns, 51826)
    time.sleep(5)
    light.check_alive()
    world.light_up_later(light_ns)
    up = time.monotonic()
    result = world.browse(browser_ns, want=("Virtual Light",), timeout=BROWSE_LIMIT + 5)
    light.check_alive()
    service = found(result, "Virtual Light")
    if service["port"] != 51826:
        raise Failure(f"resolved to port {service['port']}, expected 51826")
    if LIGHT_V4 not in service["v4"] or LIGHT_V6 not in service["v6"]:
        raise Failure(f"resolved to {describe(service)}; the interface has {LIGHT_V4} and {LIGHT_V6}")
    stray = [a for a in service["v4"] + service["v6"] if a not in (LIGHT_V4, LIGHT_V6)]
    if stray:
        raise Failure(f"resolved to {describe(service)}: {stray} are not the interface's addresses")
    return (f"interface up 5 s after the start; found {time.monotonic() - up:.1f} s later: "
            f"{describe(service)}")


def setup_hash(setup_id: str, device_id: str) -> str:
    """The TXT `sh`: the first 4 bytes of SHA-512(setup id + device id), in base64."""
    return base64.b64encode(hashlib.sha512((setup_id + device_id).encode()).digest()[:4]).decode()


def case_embedded(world: World) -> str:
    """The embedded host light is found with a correct TXT record."""
    light_ns, browser_ns = world.netns("light"), world.netns("browser")
    world.link(light_ns, browser_ns)
    light = world.start("host-light", light_ns,
                        [str(world.bins / "host-light"), "--pin", PIN, "--port", "51827"],
                        env=world.no_bus)
    light.wait_for(r"^listening on ")
    result = world.browse(browser_ns, want=("Host Light",))
    light.check_alive()
    service = found(result, "Host Light")
    txt = service["txt"]
    wrong = []
    if service["port"] != 51827:
        wrong.append(f"port {service['port']}, expected 51827")
    if LIGHT_V4 not in service["v4"]:
        wrong.append(f"addresses {service['v4'] + service['v6']}, without {LIGHT_V4}")
    for key, value in {"ff": "0", "md": "HostLight", "pv": "1.1", "s#": "1", "sf": "1",
                       "ci": "5"}.items():
        if txt.get(key) != value:
            wrong.append(f"{key}={txt.get(key)!r}, expected {value!r}")
    if not re.fullmatch(r"[1-9][0-9]*", txt.get("c#") or ""):
        wrong.append(f"c#={txt.get('c#')!r}, expected a number from 1")
    output = light.output()
    # host-light keeps its identity in memory only, so its output is the one place to
    # read it: the "Device id:" line and the setup URI (X-HM:// + 9 characters + the
    # setup id), from which `sh` follows.
    printed_id = re.search(r"^Device id: ([0-9A-F]{2}(?::[0-9A-F]{2}){5})$", output, re.M)
    setup_id = re.search(r"^Setup URI: X-HM://[0-9A-Z]{9}([0-9A-Z]{4})$", output, re.M)
    if printed_id is None or setup_id is None:
        wrong.append("host-light printed no 'Device id:' or no 'Setup URI:' line")
    else:
        if txt.get("id") != printed_id.group(1):
            wrong.append(f"id={txt.get('id')!r}, but host-light printed {printed_id.group(1)}")
        want_sh = setup_hash(setup_id.group(1), printed_id.group(1))
        if txt.get("sh") != want_sh:
            wrong.append(f"sh={txt.get('sh')!r}, expected {want_sh} for setup id "
                         f"{setup_id.group(1)}")
    if wrong:
        raise Failure(f"'Host Light' resolved ({describe(service)}) with TXT {txt}, but: "
                      + "; ".join(wrong))
    return (f"'Host Light' -> {describe(service)}; TXT {txt}; id and sh match the printed "
            "device id and setup URI")


DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

AVAHI_HOST = "hap-mdns-avahi"
AVAHI_CONF = f"""[server]
host-name={AVAHI_HOST}
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces={LIGHT_DEV}
enable-dbus=yes

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes

[reflector]
enable-reflector=no
"""


def case_avahi(world: World) -> str:
    """With avahi-daemon in the namespace, the light registers through it, and is found."""
    for program in ("avahi-daemon", "dbus-daemon", "unshare"):
        if shutil.which(program) is None:
            raise Failure(f"{program} is missing (apt-get install avahi-daemon dbus util-linux)")
    light_ns, browser_ns = world.netns("light"), world.netns("browser")
    world.link(light_ns, browser_ns)
    root = world.scratch / f"case{world.case}-avahi"
    (root / "services").mkdir(parents=True)
    bus_socket = world.sockets / "system_bus_socket"
    (root / "dbus.conf").write_text(DBUS_CONF.format(socket=bus_socket))
    (root / "avahi-daemon.conf").write_text(AVAHI_CONF)
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={bus_socket}")
    bus = world.start("dbus-daemon", light_ns,
                      ["dbus-daemon", f"--config-file={root / 'dbus.conf'}", "--nofork",
                       "--nopidfile", "--print-address"])
    bus.wait_for(r"^unix:path=")
    # A private mount namespace gives the daemon an empty /run for its pid file and socket,
    # and an empty service directory, without touching the host's.
    script = (f"mount --bind {root}/services /etc/avahi/services && mount -t tmpfs tmpfs /run && "
              f"mkdir /run/avahi-daemon && exec avahi-daemon --no-drop-root --no-chroot "
              f"--no-rlimits --debug -f {root}/avahi-daemon.conf")
    avahi = world.start("avahi-daemon", light_ns,
                        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                        env=env)
    avahi.wait_for(r"Server startup complete")
    light = world.light("light", light_ns, 51826, "--mdns", "auto", env=env)
    # The banner's line on advertising ("Advertised as ... through avahi-daemon"); a log
    # line that merely names Avahi (say, why it was not used) does not count.
    banner = light.wait_for(r"^(not )?advertised\b.*$").group(0).strip()
    if "avahi-daemon" not in banner or "built-in" in banner:
        raise Failure(f"the light's banner says {banner!r}, not that avahi-daemon advertises it")
    result = world.browse(browser_ns, want=("Virtual Light",))
    light.check_alive()
    avahi.check_alive()
    service = found(result, "Virtual Light")
    if service["port"] != 51826:
        raise Failure(f"resolved to port {service['port']}, expected 51826")
    # Avahi publishes the service on its own host name; the built-in responder would use
    # the device id.
    if service["server"] != f"{AVAHI_HOST}.local.":
        raise Failure(f"resolved to {describe(service)}: not on avahi-daemon's host "
                      f"{AVAHI_HOST}.local., so not registered through it")
    if LIGHT_V4 not in service["v4"]:
        raise Failure(f"resolved to {describe(service)}, without {LIGHT_V4}")
    device_id = stored_device_id(light)
    if service["txt"].get("id") != device_id:
        raise Failure(f"TXT id {service['txt'].get('id')}, but the light stored {device_id}")
    return f"the light said {banner!r}; 'Virtual Light' -> {describe(service)}"


CASES: list[tuple[int, str, Callable[[World], str]]] = [
    (1, "two lights with the same name are both found, under distinct names", case_same_name),
    (2, "an IPv6-only browser finds the light", case_ipv6_only),
    (3, "an added and a removed address show in a fresh resolve within 30 s", case_address_change),
    (4, "a light started before its interface is up is found once it is", case_late_interface),
    (5, "the embedded host light is found with a correct TXT record", case_embedded),
    (6, "with avahi-daemon running, the light registers through it", case_avahi),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    inner = sub.add_parser("browse", help="(inside a namespace) browse or resolve, print JSON")
    inner.add_argument("--ip", choices=["4", "6", "all"], default="all")
    inner.add_argument("--interface", action="append", required=True)
    inner.add_argument("--want", action="append", default=[])
    inner.add_argument("--resolve")
    inner.add_argument("--timeout", type=float, default=BROWSE_LIMIT)
    parser.add_argument("--bin-dir", type=Path, help="where the example binaries are")
    parser.add_argument("--logs", type=Path, help="the scratch directory for logs and data")
    parser.add_argument("--prefix", default=f"hapmdns-{os.getpid()}-",
                        help="the start of the namespaces' names")
    parser.add_argument("--case", action="append", type=int, choices=range(1, len(CASES) + 1),
                        help="run only this case (repeatable)")
    args = parser.parse_args()
    if args.command == "browse":
        return browse_main(args)
    if not args.bin_dir or not args.logs:
        parser.error("--bin-dir and --logs are needed")

    # On SIGTERM, unwind so that each case ends its processes and deletes its namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if args.logs.exists():
        shutil.rmtree(args.logs)
    args.logs.mkdir(parents=True)
    scratch, bins = args.logs.resolve(), args.bin_dir.resolve()
    passed = failed = 0
    started = time.monotonic()
    for number, title, function in CASES:
        if args.case and number not in args.case:
            continue
        world = World(args.prefix, number, scratch, bins, sys.executable)
        began = time.monotonic()
        try:
            said = function(world)
            passed += 1
            print(f"PASS case {number} ({title}) [{time.monotonic() - began:.1f} s]: {said}",
                  flush=True)
        except Exception as error:  # noqa: BLE001 - report it and go on with the next case
            failed += 1
            reason = str(error) if isinstance(error, Failure) else f"{type(error).__name__}: {error}"
            print(f"FAIL case {number} ({title}) [{time.monotonic() - began:.1f} s]: {reason}",
                  flush=True)
            for process in world.processes:
                print(f"  --- the last lines of {process.label} ({process.log}):")
                print(process.tail(), flush=True)
        finally:
            world.close()
    print(f"{time.monotonic() - started:.0f} s; the processes' logs are in {scratch}")
    print(f"mdns: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
