"""Interoperability, controller side: `hapctl` pairs with, lists, reads, writes, watches
and unpairs HAP-python 5.0.0, HAP-NodeJS 1.2.0 and the project's examples, each started
as its users start it.

Run it with `tests/interop/hapctl.sh`, which installs the peers, builds hapctl and the
examples. Each target runs in a network namespace of its own that this script creates
(a bridge `hb0` with 192.0.2.1/24, a default route and a multicast route, plus `lo`), so
the peers' real mDNS never reaches the host's network; hapctl runs in the same namespace
and browses `hb0`. Every check prints PASS or FAIL with what it saw (a failure also prints
hapctl's exit status and output, and the accessory's last lines). Each target ends with
`TARGET: N/M passed`, the run with `hapctl interop: N passed, M failed`; the exit status
is 1 if anything failed.

Only the processes started here are ended here, by PID: SIGTERM, then SIGKILL after 10 s.
The namespace is deleted at the end of its target, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent / "peers"
CATALOG = json.loads((REPO / "core/data/hap-definitions.json").read_text())

# How long any one wait may last, in seconds; every loop here is bounded by it.
STEP = 15.0
# How long hapctl may take for one command before it counts as hung (its own --timeout
# per network step is 10 s, and discovery by name may come on top).
COMMAND = 40.0
# How long one target may take in all, namespace included (about 20 s when all is well).
TARGET_BUDGET = 120.0
# The namespace's network: one bridge with one address, as on a small LAN. A bridge
# rather than a bare veth because ciao (HAP-NodeJS's advertiser) finds interfaces with
# `ip -o link show` and does not recognise a veth's "hv0@hv1" there.
IFACE = "hb0"
ADDRESS = "192.0.2.1"
# On the bridge's subnet, but nobody has it: connecting gets no answer.
ABSENT = "192.0.2.77"
PIN = "031-45-154"
WRONG_PIN = "031-45-155"

EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_AUTHENTICATION = 3, 4, 5
# CurrentDoorState and TargetDoorState.
DOOR_OPEN, DOOR_CLOSED, DOOR_CLOSING = 0, 1, 3


def squash(name: str) -> str:
    """A name as hapctl matches it: case and spaces do not count."""
    return re.sub(r"\s+", "", name).lower()


def same(value: Any, want: Any) -> bool:
    """Whether a value read back is the one written. HAP lets a bool travel as true/false
    or as 1/0 (HAP-NodeJS sends 1/0), so both count for a bool."""
    if isinstance(want, bool):
        return value is want or type(value) is int and value in (0, 1) and bool(value) == want
    return value == want and type(value) is not bool


def full_uuid(kind: str) -> str:
    """A type as a full upper-case UUID, whether given short ("25") or in full."""
    kind = kind.upper()
    if re.fullmatch(r"[0-9A-F]{1,8}", kind):
        return f"{int(kind, 16):08X}-0000-1000-8000-0026BB765291"
    return kind


SERVICE_NAMES = {v["uuid"]: k for k, v in CATALOG["services"].items()}
CHARACTERISTIC_NAMES = {v["uuid"]: k for k, v in CATALOG["characteristics"].items()}


# ---------------------------------------------------------------------------------------
# The targets.


@dataclass(frozen=True)
class Target:
    """One accessory under test and how to drive it."""

    name: str
    # "ours", "hap-python" or "hap-nodejs".
    kind: str
    # "light", "bridge" or "garage": which characteristics the checks use.
    profile: str = "light"
    binary: str = ""
    # Whether it advertises over mDNS; if not, hapctl reaches it by HOST:PORT.
    mdns: bool = True
    # The mDNS instance name, for those whose name does not depend on their id.
    instance: str = ""


TARGETS = {
    t.name: t
    for t in [
        Target("virtual-light", "ours", binary="virtual-light", instance="Virtual Light"),
        Target("virtual-light-std", "ours", binary="virtual-light-std",
               instance="Virtual Light"),
        Target("bridge", "ours", "bridge", binary="bridge", instance="Virtual Bridge"),
        Target("garage-door", "ours", "garage", binary="garage-door", instance="Garage Bridge"),
        Target("host-light", "ours", binary="host-light", mdns=False),
        Target("hap-python", "hap-python"),
        Target("hap-nodejs", "hap-nodejs"),
    ]
}


@dataclass
class Tools:
    """Where the programs are."""

    hapctl: Path
    bin_dir: Path
    python: Path
    node_dir: Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Peer:
    """A running accessory: its process and everything it printed, in a log file."""

    def __init__(self, target: Target, tools: Tools, data: Path, port: int):
        self.target = target
        self.port = port
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if target.kind == "ours":
            args = [str(tools.bin_dir / target.binary), "--pin", PIN, "--port", str(port)]
            if target.mdns:
                # `builtin` and the interface named: an avahi-daemon of the host (its D-Bus
                # socket is reachable from any namespace) must not be used.
                args += ["--data", str(data), "--mdns", "builtin", "--mdns-interface", IFACE]
            else:
                args += ["--no-mdns"]
            self.id = None
        elif target.kind == "hap-python":
            args = [str(tools.python), str(PEERS / "hap_python_user.py"), "--port", str(port),
                    "--pin", PIN, "--data", str(data)]
            self.id = None  # read from its state file once it runs
        else:
            self.id = "4E:A1:5C:00:00:22"
            args = ["node", str(PEERS / "hap-nodejs-user/light.js"), "--port", str(port),
                    "--pin", PIN, "--data", str(data), "--username", self.id]
            env["NODE_PATH"] = str(tools.node_dir / "node_modules")
        self.args = args
        self.log_path = data.parent / f"{target.name}.log"
        # Appended to: a restart (check_moved) keeps the first run's lines.
        self.log = self.log_path.open("a")
        # stdin an open pipe that stays silent, like a terminal nobody types in: our
        # examples read commands from it.
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env, cwd=data)
        try:
            self.wait_until_listening()
            self.instance = self.instance_name()
        except BaseException:
            self.stop()
            raise

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + STEP
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.target.name} exited with {self.process.returncode}:"
                                     f"\n{self.tail()}")
            with contextlib.suppress(OSError):
                with socket.create_connection((ADDRESS, self.port), timeout=1):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.target.name} never listened on {ADDRESS}:{self.port}")
            time.sleep(0.2)

    def instance_name(self) -> str:
        """The name it advertises. HAP-python and HAP-NodeJS append part of their id."""
        if self.target.kind == "hap-python":
            state = json.loads((self.data / "accessory.state").read_text())
            self.id = state["mac"].upper()
            return f"HAP-python Light {self.id[-8:].replace(':', '')}"
        if self.target.kind == "hap-nodejs":
            tag = hashlib.sha512(self.id.encode()).hexdigest()[:4].upper()
            return f"HAP-NodeJS Light {tag}"
        return self.target.instance

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STEP)
        self.log.close()

    def tail(self, count: int = 25) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(lines[-count:])
        return ""


# ---------------------------------------------------------------------------------------
# hapctl.


@dataclass
class Run:
    """One finished hapctl command."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        """The one JSON document on stdout."""
        try:
            return json.loads(self.stdout)
        except ValueError as error:
            raise AssertionError(f"stdout is not one JSON document ({error}): "
                                 f"{self.stdout[:300]!r}") from None

    def lines(self) -> list[Any]:
        """JSON lines (watch)."""
        try:
            return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]
        except ValueError as error:
            raise AssertionError(f"stdout is not JSON lines ({error}): {self.stdout[:300]!r}") \
                from None

    def error_kind(self) -> str | None:
        with contextlib.suppress(AssertionError, AttributeError, TypeError, KeyError):
            return self.json()["error"]["kind"]
        return None

    def describe(self) -> str:
        return (f"$ {' '.join(self.args)}\n  exit {self.code} after {self.seconds:.1f} s\n"
                f"  stdout: {self.stdout.strip()[:1500]}\n  stderr: {self.stderr.strip()[:800]}")


class Hapctl:
    """Runs hapctl with --json and the target's scratch pairing file."""

    def __init__(self, binary: Path, file: Path):
        self.binary = binary
        self.file = file
        self.runs: list[Run] = []

    def command(self, *args: str, timeout: float | None = None) -> list[str]:
        line = [str(self.binary), "--file", str(self.file), "--json", "--interface", IFACE]
        if timeout is not None:
            line += ["--timeout", str(timeout)]
        return line + list(args)

    def __call__(self, *args: str, timeout: float | None = None) -> Run:
        line = self.command(*args, timeout=timeout)
        started = time.monotonic()
        try:
            done = subprocess.run(line, capture_output=True, text=True, timeout=COMMAND,
                                  stdin=subprocess.DEVNULL)
            run = Run(line, done.returncode, done.stdout, done.stderr,
                      time.monotonic() - started)
        except subprocess.TimeoutExpired as error:
            run = Run(line, -1, str(error.stdout or ""), f"hung: killed after {COMMAND} s",
                      time.monotonic() - started)
        self.runs.append(run)
        return run

    def ok(self, *args: str, timeout: float | None = None) -> Run:
        """Runs a command that must succeed, and returns it."""
        run = self(*args, timeout=timeout)
        assert run.code == 0, f"exit {run.code}: {run.stderr.strip()[:300]}"
        return run


class Watch:
    """A `hapctl watch` running in the background, its lines collected as they come."""

    def __init__(self, hapctl: Hapctl, *args: str):
        self.line = hapctl.command("watch", *args)
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.line, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self.errors = ""
        self.changed = threading.Condition()
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._read_errors, daemon=True)]
        for reader in self.readers:
            reader.start()
        self.hapctl = hapctl

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def _read_errors(self) -> None:
        assert self.process.stderr
        self.errors = self.process.stderr.read()

    def wait_lines(self, count: int, timeout: float = STEP) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.lines) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None and not self.readers[0].is_alive():
                    raise AssertionError(f"watch printed {len(self.lines)} lines, expected "
                                         f"{count}: {self.lines}; stderr {self.errors.strip()!r}")
                self.changed.wait(min(left, 0.2))

    def finish(self, timeout: float) -> Run:
        """Waits for it to end by itself (bounded), then records it like any command."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STEP)
            self.errors += f"\nhung: killed after {timeout:.0f} s"
        for reader in self.readers:
            reader.join(timeout=STEP)
        run = Run(self.line, self.process.returncode, "\n".join(self.lines), self.errors,
                  time.monotonic() - self.started)
        self.hapctl.runs.append(run)
        return run

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STEP)


# ---------------------------------------------------------------------------------------
# The checks, in order. Each returns what it saw, or raises AssertionError.


@dataclass
class Chars:
    """The characteristics the checks read, write and watch, as hapctl CHAR arguments,
    with the values used."""

    read: str
    write: str
    watch: str
    first: Any  # written by the put check
    second: Any  # written while watching
    # What the watch must see after `second` is written.
    expect: Callable[[Any], bool]
    expect_text: str
    extra: tuple[str, Any] | None  # a second write (Brightness), if the target has it
    service: str  # the catalog name of the service that holds them


def chars_for(profile: str) -> Chars:
    if profile == "garage":
        return Chars(read="CurrentDoorState", write="TargetDoorState",
                     watch="CurrentDoorState", first=DOOR_OPEN, second=DOOR_CLOSED,
                     expect=lambda v: v in (DOOR_CLOSING, DOOR_CLOSED) and type(v) is int,
                     expect_text="Closing (3) or Closed (1)", extra=None,
                     service="GarageDoorOpener")
    prefix = "Desk Light/" if profile == "bridge" else ""
    return Chars(read=prefix + "On", write=prefix + "On", watch=prefix + "On", first=True,
                 second=False, expect=lambda v: same(v, False), expect_text="false (or 0)",
                 extra=(prefix + "Brightness", 37), service="Lightbulb")


@dataclass
class World:
    """What the checks of one target share."""

    target: Target
    tools: Tools
    scratch: Path
    hapctl: Hapctl
    peer: Peer | None = None
    chars: Chars = field(init=False)
    # The name hapctl pairs by, the alias it stored, the id it reported.
    pair_target: str = ""
    alias: str = ""
    accessory_id: str = ""
    paired: bool = False

    def __post_init__(self) -> None:
        self.chars = chars_for(self.target.profile)

    def discover(self, until: Callable[[dict], bool] | None = None,
                 timeout: float = STEP) -> dict:
        """Discovers until the peer's instance is there (and `until` holds), bounded."""
        assert self.peer
        deadline = time.monotonic() + timeout
        seen: Any = None
        while True:
            run = self.hapctl("discover", "--seconds", "2")
            if run.code == 0:
                seen = run.json()
                assert isinstance(seen, list), f"discover gave {seen!r}, not a list"
                for found in seen:
                    if found.get("name") == self.peer.instance and (until is None or until(found)):
                        return found
            else:
                seen = run.describe()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.peer.instance!r} not discovered as wanted in "
                                     f"{timeout:.0f} s; last: {seen}")

    def value(self, char: str) -> Any:
        run = self.hapctl.ok("get", self.alias, char)
        got = run.json()["characteristics"]
        assert len(got) == 1, f"get {char}: {got}"
        return got[0]["value"]


def check_discover(world: World) -> str:
    found = world.discover()
    peer = world.peer
    assert peer
    problems = []
    if found.get("port") != peer.port:
        problems.append(f"port {found.get('port')}, expected {peer.port}")
    if ADDRESS not in (found.get("addresses") or []):
        problems.append(f"addresses {found.get('addresses')}, expected {ADDRESS} among them")
    sf = found.get("status_flags")
    if not isinstance(sf, int) or not sf & 1 or found.get("paired") is not False:
        problems.append(f"sf {sf}, paired {found.get('paired')}: expected not paired")
    if peer.id and (found.get("id") or "").upper() != peer.id:
        problems.append(f"id {found.get('id')}, expected {peer.id}")
    want_category = 2 if world.target.profile in ("bridge", "garage") else 5
    if found.get("category") != want_category:
        problems.append(f"category {found.get('category')}, expected {want_category}")
    assert not problems, "; ".join(problems) + f" in {found}"
    peer.id = peer.id or (found.get("id") or "").upper()
    return (f"{found['name']!r} id {found.get('id')} at {found.get('addresses')}:{found['port']}, "
            f"sf {sf} (not paired), ci {found.get('category')} {found.get('category_name')!r}")


def check_identify(world: World) -> str:
    if world.target.kind == "hap-python":
        # HAP-python 5.0.0 has no handler for POST /identify: it answers 500 with
        # -70402. hapctl must say so (exit 6, refused), not claim success.
        run = world.hapctl("identify", world.pair_target)
        assert run.code == 6, f"exit {run.code}, expected 6 (HAP-python answers 500)"
        assert run.error_kind() == "refused", f"json error kind {run.error_kind()!r}"
        return f"HAP-python has no /identify (500): exit 6, {run.stderr.strip()!r}"
    run = world.hapctl.ok("identify", world.pair_target)
    return f"identify {world.pair_target!r} before pairing: exit 0 ({run.stdout.strip()[:80]})"


def check_wrong_code(world: World) -> str:
    run = world.hapctl("pair", world.pair_target, "--code", WRONG_PIN)
    assert run.code == EXIT_AUTHENTICATION, f"exit {run.code}, expected 5 (authentication)"
    assert "wrong setup code" in run.stderr, \
        f"stderr does not say 'wrong setup code': {run.stderr!r}"
    assert run.error_kind() == "authentication", f"json error kind {run.error_kind()!r}"
    if world.hapctl.file.exists():
        stored = json.loads(world.hapctl.file.read_text()).get("accessories")
        assert not stored, f"the failed pairing was stored: {stored}"
    return f"exit 5, {run.stderr.strip()!r}"


def check_pair(world: World) -> str:
    args = ["pair", world.pair_target, "--code"]
    if world.target.mdns:
        args.append(PIN)
    else:
        # The other accepted form of the code, and an alias of our choice.
        args += [PIN.replace("-", ""), "--alias", "Host Light"]
    run = world.hapctl.ok(*args)
    said = run.json()
    world.alias, world.accessory_id = said["alias"], said["id"]
    world.paired = True
    problems = []
    want_alias = world.peer.instance if world.target.mdns else "Host Light"
    if world.alias != want_alias:
        problems.append(f"alias {world.alias!r}, expected {want_alias!r}")
    if world.peer.id and world.accessory_id.upper() != world.peer.id:
        problems.append(f"id {world.accessory_id}, discovered {world.peer.id}")
    if said.get("port") != world.peer.port:
        problems.append(f"port {said.get('port')}, expected {world.peer.port}")
    mode = stat.S_IMODE(world.hapctl.file.stat().st_mode)
    if mode != 0o600:
        problems.append(f"pairing file mode {mode:o}, expected 600")
    stored = json.loads(world.hapctl.file.read_text())
    if world.alias not in stored.get("accessories", {}):
        problems.append(f"alias not in the file: {sorted(stored.get('accessories', {}))}")
    assert not problems, "; ".join(problems)
    return (f"right code after the wrong one: paired as {world.alias!r} id {world.accessory_id} "
            f"at {said.get('address')}:{said.get('port')}; file mode 600")


def check_second_controller(world: World) -> str:
    # Another controller (another pairing file, so another identity) with the right code,
    # while the accessory is paired: pair-setup is refused (Unavailable), exit 6.
    other = Hapctl(world.hapctl.binary, world.scratch / "other-controller.json")
    run = other("pair", world.pair_target, "--code", PIN, "--alias", "other")
    world.hapctl.runs.append(run)
    assert run.code == 6, f"exit {run.code}, expected 6 (refused: already paired)"
    assert run.error_kind() == "refused", f"json error kind {run.error_kind()!r}"
    return f"a second controller's pair-setup: exit 6, {run.stderr.strip()!r}"


def check_accessories(world: World) -> str:
    tree = world.hapctl.ok("accessories", world.alias).json()
    accessories = tree["accessories"]
    problems = []
    wanted_service = world.chars.service
    wanted_chars = {squash(c.split("/")[-1]) for c in (world.chars.read, world.chars.write)}
    if world.chars.extra:
        wanted_chars.add(squash(world.chars.extra[0].split("/")[-1]))
    holders = []
    count = 0
    for accessory in accessories:
        for service in accessory["services"]:
            kind = full_uuid(str(service["type"]))
            known = SERVICE_NAMES.get(kind)
            if known and squash(service.get("name") or "") != squash(known):
                problems.append(f"service {accessory['aid']}.{service['iid']} named "
                                f"{service.get('name')!r}, the catalog says {known}")
            names = set()
            for c in service["characteristics"]:
                count += 1
                ckind = full_uuid(str(c["type"]))
                cknown = CHARACTERISTIC_NAMES.get(ckind)
                if cknown and squash(c.get("name") or "") != squash(cknown):
                    problems.append(f"{accessory['aid']}.{c['iid']} named {c.get('name')!r}, "
                                    f"the catalog says {cknown}")
                if cknown:
                    names.add(squash(cknown))
            if known == wanted_service:
                holders.append((accessory["aid"], names))
    if not any(wanted_chars <= names for _, names in holders):
        problems.append(f"no {wanted_service} service with {sorted(wanted_chars)}: {holders}")
    if not any(squash(s.get("name") or "") == "accessoryinformation"
               for a in accessories for s in a["services"]):
        problems.append("no Accessory Information service by name")
    assert not problems, "; ".join(problems[:6])
    return (f"{len(accessories)} accessories, {count} characteristics, named as the catalog "
            f"says; {wanted_service} with {', '.join(sorted(wanted_chars))}")


def check_get(world: World) -> str:
    run = world.hapctl.ok("get", world.alias, world.chars.read)
    got = run.json()["characteristics"]
    assert len(got) == 1, f"{got}"
    item = got[0]
    assert isinstance(item.get("aid"), int) and isinstance(item.get("iid"), int), f"{item}"
    want = squash(world.chars.read.split("/")[-1])
    assert squash(item.get("name") or "") == want, f"name {item.get('name')!r}"
    value = item["value"]
    if world.target.profile == "garage":
        assert same(value, DOOR_CLOSED), f"a new door reads {value!r}, not Closed (1)"
    else:
        assert same(value, True) or same(value, False), f"On is {value!r}, not a bool"
    return f"{item['aid']}.{item['iid']} {item['name']} = {json.dumps(value)}"


def check_put(world: World) -> str:
    chars = world.chars
    value = json.dumps(chars.first)
    run = world.hapctl.ok("put", world.alias, f"{chars.write}={value}")
    written = run.json()["characteristics"]
    assert len(written) == 1 and written[0].get("status") == 0, f"put said {written}"
    got = world.value(chars.write)
    assert same(got, chars.first), f"wrote {value}, read back {got!r}"
    said = f"{chars.write}={value}, status 0, read back {json.dumps(got)}"
    if world.target.profile == "garage":
        # The door moves by itself: Opening, then Open.
        deadline = time.monotonic() + STEP
        while not same(current := world.value(chars.read), DOOR_OPEN):
            assert time.monotonic() < deadline, f"the door never opened: {current}"
            time.sleep(0.5)
        said += "; CurrentDoorState reached Open (0)"
    return said


def check_put_extra(world: World) -> str:
    char, value = world.chars.extra
    run = world.hapctl.ok("put", world.alias, f"{char}={value}")
    written = run.json()["characteristics"]
    assert len(written) == 1 and written[0].get("status") == 0, f"put said {written}"
    got = world.value(char)
    assert same(got, value), f"wrote {value}, read back {got!r}"
    return f"{char}={value}, read back {got}"


def check_watch(world: World) -> str:
    chars = world.chars
    watch = Watch(world.hapctl, world.alias, chars.watch, "--count", "1", "--seconds", "10")
    try:
        # The first line, the current value, says the subscription is in place.
        watch.wait_lines(1)
        writer = world.hapctl.ok("put", world.alias, f"{chars.write}={json.dumps(chars.second)}")
        assert writer.json()["characteristics"][0].get("status") == 0, writer.stdout
        run = watch.finish(timeout=STEP)
    finally:
        watch.kill()
    assert run.code == 0, f"watch exited {run.code}: {run.stderr.strip()!r}"
    lines = run.lines()
    assert len(lines) == 2, f"{len(lines)} lines, expected the current value and 1 event: {lines}"
    initial, event = lines
    for line in lines:
        missing = {"time", "aid", "iid", "name", "value"} - set(line)
        assert not missing, f"a line lacks {sorted(missing)}: {line}"
    assert (event["aid"], event["iid"]) == (initial["aid"], initial["iid"]), f"{lines}"
    assert chars.expect(event["value"]), \
        f"event value {event['value']!r}, expected {chars.expect_text}"
    assert run.seconds < 10, f"watch --count 1 took {run.seconds:.1f} s: it did not stop at 1"
    return (f"initial {json.dumps(initial['value'])}, then an event {event['name']} = "
            f"{json.dumps(event['value'])} from another connection's write; "
            f"ended after {run.seconds:.1f} s")


def check_ambiguous(world: World) -> str:
    run = world.hapctl("get", world.alias, "On")
    assert run.code == EXIT_NOT_FOUND, f"exit {run.code}, expected 3 for an ambiguous name"
    assert run.error_kind() == "not-found", f"json error kind {run.error_kind()!r}"
    return f"'On' on the bridge (light and switch): exit 3, {run.stderr.strip()[:160]!r}"


def check_pairings(world: World) -> str:
    me = world.hapctl.ok("id").json()
    listed = world.hapctl.ok("pairings", "list", world.alias).json()["pairings"]
    assert len(listed) == 1, f"{len(listed)} pairings, expected 1: {listed}"
    (only,) = listed
    problems = []
    if (only.get("id") or "").lower() != me["id"].lower():
        problems.append(f"id {only.get('id')}, `hapctl id` says {me['id']}")
    if (only.get("public_key") or "").lower() != me["public_key"].lower():
        problems.append(f"public key {only.get('public_key')}, `hapctl id` says {me['public_key']}")
    if only.get("admin") is not True:
        problems.append(f"admin {only.get('admin')}")
    if only.get("this_controller") is not True:
        problems.append(f"this_controller {only.get('this_controller')}")
    assert not problems, "; ".join(problems)
    return f"one admin pairing, {only['id']}, marked as this controller"


def check_pairings_add_remove(world: World) -> str:
    # A second controller's identity (`hapctl id` with another file) added as a user,
    # listed, and removed again.
    other = Hapctl(world.hapctl.binary, world.scratch / "other-controller.json")
    guest = other("id")
    world.hapctl.runs.append(guest)
    assert guest.code == 0, f"id with a second file: exit {guest.code}"
    guest_id, guest_key = guest.json()["id"], guest.json()["public_key"]
    world.hapctl.ok("pairings", "add", world.alias, "--id", guest_id, "--key", guest_key)
    listed = world.hapctl.ok("pairings", "list", world.alias).json()["pairings"]
    added = [p for p in listed if (p.get("id") or "").lower() == guest_id.lower()]
    assert len(listed) == 2 and len(added) == 1, f"after adding: {listed}"
    assert added[0].get("admin") is False and added[0].get("this_controller") is False, \
        f"the added pairing: {added[0]}"
    assert (added[0].get("public_key") or "").lower() == guest_key.lower(), f"{added[0]}"
    world.hapctl.ok("pairings", "remove", world.alias, guest_id)
    left = world.hapctl.ok("pairings", "list", world.alias).json()["pairings"]
    assert len(left) == 1 and left[0].get("this_controller") is True, f"after removing: {left}"
    return f"added {guest_id} as a user (listed with its key, not admin), removed it again"


def check_moved(world: World) -> str:
    # The accessory comes back on another port, as after a restart with port 0 or a new
    # DHCP lease: hapctl's stored address fails, it finds the id by mDNS, and carries on.
    old = world.peer
    old.stop()
    world.peer = Peer(world.target, world.tools, old.data, free_port(ADDRESS))
    # Ours do not say their id until discovered (check_discover noted it).
    world.peer.id = world.peer.id or old.id
    assert world.peer.instance == old.instance, \
        f"restarted as {world.peer.instance!r}, not {old.instance!r}"
    run = world.hapctl.ok("get", world.alias, world.chars.read)
    value = run.json()["characteristics"][0]["value"]
    assert str(world.peer.port) in world.hapctl.file.read_text(), \
        f"the pairing file does not hold the new port {world.peer.port}"
    return (f"restarted on port {world.peer.port} (was {old.port}): get found it by id in "
            f"{run.seconds:.1f} s ({world.chars.read} = {json.dumps(value)}), file updated")


def check_unpair(world: World) -> str:
    run = world.hapctl.ok("unpair", world.alias)
    said = run.json()
    assert said.get("alias") == world.alias, f"unpair said {said}"
    world.paired = False
    stored = json.loads(world.hapctl.file.read_text())
    assert world.alias not in stored.get("accessories", {}), "the alias is still in the file"
    after = world.hapctl("get", world.alias, world.chars.read)
    assert after.code == EXIT_NOT_FOUND, f"get after unpair: exit {after.code}, expected 3"
    return f"unpaired {world.alias!r}; it left the file (get: exit 3, {after.stderr.strip()!r})"


def check_unpaired_flag(world: World) -> str:
    found = world.discover(until=lambda f: isinstance(f.get("status_flags"), int)
                           and f["status_flags"] & 1 == 1 and f.get("paired") is False)
    return f"sf {found['status_flags']} (not paired) again"


def check_pair_again(world: World) -> str:
    # By device id this time (or HOST:PORT where nothing is advertised).
    target = world.peer.id if world.target.mdns else world.pair_target
    args = ["pair", target, "--code", PIN]
    if not world.target.mdns:
        args += ["--alias", "Host Light"]
    run = world.hapctl.ok(*args)
    said = run.json()
    world.alias = said["alias"]
    world.paired = True
    got = world.value(world.chars.read)
    return (f"paired again by {target!r} as {said['alias']!r}; "
            f"{world.chars.read} = {json.dumps(got)}")


def check_closed_port(world: World) -> str:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        closed = s.getsockname()[1]
    run = world.hapctl("pair", f"{ADDRESS}:{closed}", "--code", PIN, timeout=3)
    assert run.code == EXIT_UNREACHABLE, f"exit {run.code}, expected 4 (unreachable)"
    assert run.error_kind() == "unreachable", f"json error kind {run.error_kind()!r}"
    assert "cannot reach" in run.stderr, f"stderr does not say 'cannot reach': {run.stderr!r}"
    return f"pair {ADDRESS}:{closed} (closed): exit 4, {run.stderr.strip()!r}"


def check_no_answer(world: World) -> str:
    run = world.hapctl("pair", f"{ABSENT}:{world.peer.port}", "--code", PIN, timeout=2)
    assert run.code == EXIT_UNREACHABLE, f"exit {run.code}, expected 4 (unreachable)"
    assert run.seconds < 2 + STEP, f"took {run.seconds:.1f} s with --timeout 2"
    return f"pair {ABSENT} (no such host): exit 4 after {run.seconds:.1f} s, {run.stderr.strip()!r}"


def check_gone(world: World) -> str:
    assert world.paired, "needs the second pairing"
    world.peer.stop()
    run = world.hapctl("get", world.alias, world.chars.read, timeout=3)
    assert run.code == EXIT_UNREACHABLE, f"exit {run.code}, expected 4 (unreachable)"
    assert run.error_kind() == "unreachable", f"json error kind {run.error_kind()!r}"
    assert run.seconds < 3 * 3 + 5, f"took {run.seconds:.1f} s with --timeout 3"
    return (f"accessory stopped: get {world.alias!r} exit 4 after {run.seconds:.1f} s, "
            f"{run.stderr.strip()!r}")


# (label, check, needs mDNS, profiles it applies to (None: all), needs a pairing)
CHECKS: list[tuple[str, Callable[[World], str], bool, tuple[str, ...] | None, bool]] = [
    ("discover: found by name, sf not paired", check_discover, True, None, False),
    ("identify before pairing (POST /identify)", check_identify, False, None, False),
    ("pair with a wrong code: exit 5", check_wrong_code, False, None, False),
    ("pair with the right code", check_pair, False, None, False),
    ("pair from a second controller while paired: exit 6", check_second_controller, False,
     None, True),
    ("accessories: names from the catalog", check_accessories, False, None, True),
    ("get", check_get, False, None, True),
    ("put, then get shows it", check_put, False, None, True),
    ("put Brightness, then get shows it", check_put_extra, False, ("light", "bridge"), True),
    ("watch sees another connection's write", check_watch, False, None, True),
    ("an ambiguous name: exit 3", check_ambiguous, False, ("bridge",), True),
    ("pairings list: one admin, this controller", check_pairings, False, None, True),
    ("pairings add and remove another controller", check_pairings_add_remove, False, None,
     True),
    ("restarted on another port: found again by id", check_moved, True, None, True),
    ("unpair", check_unpair, False, None, True),
    ("discover: sf not paired again", check_unpaired_flag, True, None, False),
    ("pair again after unpairing", check_pair_again, False, None, False),
    ("unreachable: closed port, exit 4", check_closed_port, False, None, False),
    ("unreachable: no answer, exit 4", check_no_answer, False, None, False),
    ("unreachable: accessory stopped, exit 4", check_gone, False, None, True),
]


def run_target(target: Target, tools: Tools, scratch: Path) -> tuple[int, int]:
    """Every check for one target; this process runs inside its namespace."""
    hapctl = Hapctl(tools.hapctl, scratch / "pairings.json")
    world = World(target=target, tools=tools, scratch=scratch, hapctl=hapctl)
    passed = failed = 0

    def report(label: str, ok: bool, said: str) -> None:
        nonlocal passed, failed
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'PASS' if ok else 'FAIL'} {target.name}: {label}: {said}", flush=True)

    checks = [c for c in CHECKS
              if (target.mdns or not c[2]) and (c[3] is None or target.profile in c[3])]
    try:
        world.peer = Peer(target, tools, scratch / "data", free_port(ADDRESS))
    except Exception as error:  # noqa: BLE001 - a peer that does not start fails every check
        for label, *_ in checks:
            report(label, False, f"the accessory did not start: {error}")
        return passed, failed
    world.pair_target = world.peer.instance if target.mdns else f"{ADDRESS}:{world.peer.port}"
    try:
        for label, check, _, _, needs_pairing in checks:
            if needs_pairing and not world.paired:
                report(label, False, "not run: no pairing (an earlier check failed)")
                continue
            mark = len(hapctl.runs)
            try:
                report(label, True, check(world))
            except Exception as error:  # noqa: BLE001 - report it and go on
                report(label, False, f"{type(error).__name__}: {error}")
                for run in hapctl.runs[mark:]:
                    print("    " + run.describe().replace("\n", "\n    "))
                print(f"    --- {target.name} ({' '.join(world.peer.args)}), last lines:")
                print("\n".join("    " + line for line in world.peer.tail().splitlines()))
    finally:
        world.peer.stop()
    return passed, failed


# ---------------------------------------------------------------------------------------
# The namespace, from outside.


class Namespace:
    """A network namespace with `lo` and a bridge `hb0` (192.0.2.1/24) that has carrier
    through a veth pair, a default route and a multicast route: enough for HAP-python's
    address lookup (a UDP connect to 8.8.8.8, nothing sent) and for mDNS on `hb0`, with
    nothing leaving the namespace."""

    def __init__(self, name: str):
        self.name = name

    def ip(self, *args: str) -> str:
        return subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True,
                              text=True).stdout

    def __enter__(self) -> "Namespace":
        try:
            subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True,
                           text=True)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or error
            raise RuntimeError(f"cannot create a network namespace (needs root and iproute2): "
                               f"{detail}") from None
        try:
            self.ip("link", "set", "lo", "up")
            self.ip("link", "add", "hv0", "type", "veth", "peer", "name", "hv1")
            self.ip("link", "add", IFACE, "type", "bridge")
            self.ip("link", "set", "hv1", "master", IFACE)
            for link in ("hv0", "hv1", IFACE):
                self.ip("link", "set", link, "up")
            self.ip("addr", "add", f"{ADDRESS}/24", "dev", IFACE)
            self.ip("route", "add", "default", "dev", IFACE)
            self.ip("route", "add", "224.0.0.0/4", "dev", IFACE)
            deadline = time.monotonic() + STEP
            while "state UP" not in self.ip("-o", "link", "show", IFACE):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{IFACE} never came up")
                time.sleep(0.1)
        except (subprocess.CalledProcessError, RuntimeError) as error:
            self.__exit__()
            raise RuntimeError(f"cannot set up {self.name}: "
                               f"{getattr(error, 'stderr', '') or error}") from None
        return self

    def __exit__(self, *_: object) -> None:
        # Whatever still runs inside was started by this run: end it by PID, or the
        # namespace outlives its deletion.
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        for pid in listed.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def run_outside(target: Target, args: argparse.Namespace, scratch: Path) -> tuple[int, int]:
    """Runs this script again inside a fresh namespace for one target."""
    outcome = scratch / f"{target.name}.json"
    try:
        with Namespace(f"{args.prefix}{target.name}") as namespace:
            command = ["ip", "netns", "exec", namespace.name, sys.executable, __file__,
                       "--hapctl", str(args.hapctl), "--bin-dir", str(args.bin_dir),
                       "--python", str(args.python), "--node-dir", str(args.node_dir),
                       "--only", target.name, "--inside", str(outcome)]
            inside = subprocess.Popen(command)
            try:
                inside.wait(timeout=TARGET_BUDGET)
            except subprocess.TimeoutExpired:
                # SIGTERM lets it stop its accessory; the namespace's exit ends the rest.
                inside.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    inside.wait(timeout=STEP)
                raise RuntimeError(f"still running after {TARGET_BUDGET:.0f} s") from None
        counts = json.loads(outcome.read_text())
        return counts["passed"], counts["failed"]
    except Exception as error:  # noqa: BLE001 - a failure to run is a failed check
        print(f"FAIL {target.name}: could not run: {type(error).__name__}: {error}", flush=True)
        return 0, 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hapctl", type=Path, required=True, help="the hapctl binary")
    parser.add_argument("--bin-dir", type=Path, required=True,
                        help="where the example binaries are (target/debug/examples)")
    parser.add_argument("--python", type=Path, required=True,
                        help="a Python with HAP-python 5.0.0 (target/bench-venv/bin/python)")
    parser.add_argument("--node-dir", type=Path, required=True,
                        help="where hap-nodejs is installed (target/bench-node)")
    parser.add_argument("--only", action="append", choices=sorted(TARGETS),
                        help="run only this target (repeatable)")
    parser.add_argument("--prefix", default=f"hapctl-{os.getpid()}-",
                        help="prefix of the namespaces' names")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("hapctl", "bin_dir", "python", "node_dir"):
        # absolute(), not resolve(): a venv's python is a symlink that must stay one.
        setattr(args, name, getattr(args, name).absolute())
    targets = [TARGETS[name] for name in (args.only or TARGETS)]
    tools = Tools(args.hapctl, args.bin_dir, args.python, args.node_dir)

    if args.inside:
        # On SIGTERM from outside, unwind so that `finally` stops the accessory.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        with tempfile.TemporaryDirectory(prefix=f"hapctl-{targets[0].name}-") as scratch:
            passed, failed = run_target(targets[0], tools, Path(scratch))
        args.inside.write_text(json.dumps({"passed": passed, "failed": failed}))
        return 0

    started = time.monotonic()
    totals: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="hapctl-interop-") as scratch:
        for target in targets:
            began = time.monotonic()
            passed, failed = run_outside(target, args, Path(scratch))
            totals[target.name] = (passed, failed)
            print(f"{target.name}: {passed}/{passed + failed} passed "
                  f"({time.monotonic() - began:.0f} s)", flush=True)
    print()
    for name, (passed, failed) in totals.items():
        print(f"{name}: {passed}/{passed + failed} passed")
    passed = sum(p for p, _ in totals.values())
    failed = sum(f for _, f in totals.values())
    print(f"hapctl interop: {passed} passed, {failed} failed "
          f"in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
