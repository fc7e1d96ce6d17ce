"""Interoperability suite: aiohomekit, the controller library of Home Assistant, against
the project's example accessories, started as a user starts them.

Run it with `tests/interop/run.sh`, which builds the examples and prepares the venv. Each
case prints PASS or FAIL with what it saw; a failure also prints aiohomekit's record of
the exchange (every request and response in plaintext) and the accessory's output. The
last line is `interop: N passed, M failed`.

Every process started here is ended here, by its PID (in case 8, by the namespace's list
of PIDs too). Cases 1-7 and 9 use 127.0.0.1 only and no mDNS; case 8 runs inside a network
namespace that the suite creates, with only `lo`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aiohomekit.characteristic_cache import CharacteristicCacheMemory
from aiohomekit.controller.ip.controller import IpController
from aiohomekit.controller.ip.discovery import IpDiscovery
from aiohomekit.controller.ip.pairing import IpPairing
from aiohomekit.exceptions import AccessoryDisconnectedError, AuthenticationError, UnpairedError
from aiohomekit.model.characteristics.data import characteristics as AIOHOMEKIT_CHARACTERISTICS
from aiohomekit.model.categories import Categories
from aiohomekit.model.feature_flags import FeatureFlags
from aiohomekit.model.status_flags import StatusFlags
from aiohomekit.zeroconf import HomeKitService
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# How long any one wait may last, in seconds. Every loop here is bounded by it.
STEP = 15.0
# How long to listen for an event that must not come. The coalescing window is 1 s, and
# the first change after a quiet spell goes out at once.
SILENCE = 1.5
HAP_TYPE = "_hap._tcp.local."
INVALID_VALUE = -70410
READ_ONLY = -70404
COMMUNICATION_FAILURE = -70402
# CurrentDoorState and TargetDoorState values.
OPEN, CLOSED, OPENING, CLOSING = 0, 1, 2, 3

REPO = Path(__file__).resolve().parents[2]
CATALOG = json.loads((REPO / "core/data/hap-definitions.json").read_text())
SERVICES_BY_UUID = {v["uuid"]: (k, v) for k, v in CATALOG["services"].items()}
CHARACTERISTICS_BY_UUID = {v["uuid"]: (k, v) for k, v in CATALOG["characteristics"].items()}


def apple(name: str, kind: str = "characteristics") -> str:
    """The full UUID of an Apple type, by its catalog name."""
    return CATALOG[kind][name]["uuid"]


# ---------------------------------------------------------------------------------------
# The accessories under test.


@dataclass(frozen=True)
class Target:
    """One example accessory and what it offers."""

    name: str
    binary: str
    kind: str  # "light" or "bridge"
    # Whether it takes --data and keeps its state there.
    stored: bool = True
    # Whether it advertises over mDNS when asked to.
    mdns: bool = True
    # The typed command that sets its light's brightness.
    light_brightness: str = "brightness {}"
    model: str = "VirtualLight"
    category: int = 5


TARGETS = {
    t.name: t
    for t in [
        Target("smol-light", "virtual-light", "light"),
        Target("std-light", "virtual-light-std", "light"),
        Target(
            "bridge",
            "bridge",
            "bridge",
            light_brightness="light brightness {}",
            model="VirtualBridge",
            category=2,
        ),
        Target("embedded-light", "host-light", "light", stored=False, mdns=False, model="HostLight"),
        Target("garage", "garage-door", "garage", model="GarageBridge", category=2),
    ]
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Accessory:
    """A running example: its process, its typed input and everything it printed."""

    def __init__(self, target: Target, bin_dir: Path, data: Path, port: int, pin: str,
                 setup_id: str, mdns: bool = False, extra: list[str] | None = None):
        self.target = target
        args = [str(bin_dir / target.binary), "--pin", pin, "--port", str(port),
                "--bind", "127.0.0.1"]
        if target.stored:
            args += ["--data", str(data), "--setup-id", setup_id]
            if not mdns:
                args.append("--no-mdns")
            else:
                # Case 8's namespace has only `lo`, which the built-in responder serves
                # only when named; `builtin`, so that an avahi-daemon of the host (its
                # D-Bus socket is reachable from the namespace) is not used.
                args += ["--mdns", "builtin", "--mdns-interface", "lo"]
            args += ["--log", "debug"]
        args += extra or []
        self.args = args
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.wait_for("listening on ")
        except BaseException:
            self.kill()
            raise

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, after: int = 0, timeout: float = STEP) -> str:
        """Waits until the accessory prints a line containing `text`, at or after line
        number `after`, and returns it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"the accessory never printed {text!r}")
                self._changed.wait(min(left, 0.2))

    async def printed(self, text: str, after: int = 0) -> str:
        """`wait_for` without stalling the event loop (sessions keep reading meanwhile)."""
        return await asyncio.to_thread(self.wait_for, text, after)

    def mark(self) -> int:
        """The number of lines printed so far, for `wait_for(after=...)`."""
        with self._changed:
            return len(self.lines)

    def type(self, line: str) -> None:
        """Types a line on the accessory's stdin, as a user at its terminal would."""
        assert self.process.stdin
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no chance to store or say goodbye."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STEP)
        self._reader.join(timeout=STEP)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STEP)
        self._reader.join(timeout=STEP)

    def tail(self, count: int = 40) -> str:
        with self._changed:
            return "\n".join(self.lines[-count:])


# ---------------------------------------------------------------------------------------
# The controller side.


class NoZeroconf:
    """Stands in for AsyncZeroconf where a case pairs by address and port."""

    zeroconf = None


def description(port: int, category: int) -> HomeKitService:
    """What mDNS would have said, for pairing by host and port without it."""
    return HomeKitService(
        name="by-address", id="00:00:00:00:00:00", model="", feature_flags=FeatureFlags(0),
        status_flags=StatusFlags(1), config_num=1, state_num=1, category=Categories(category),
        protocol_version="1.1", type=HAP_TYPE, address="127.0.0.1", addresses=["127.0.0.1"],
        port=port,
    )


class Events:
    """Collects the EVENT messages one session receives from the wire.

    aiohomekit also tells its listeners about a session's own successful writes, without
    any message from the accessory, so this hooks the connection's delivery of EVENTs
    instead of listening.
    """

    def __init__(self, pairing: IpPairing):
        self.received: list[dict[tuple[int, int], Any]] = []
        self._arrived = asyncio.Event()
        deliver = pairing.event_received

        def on_event(body: dict) -> None:
            values = {(c["aid"], c["iid"]): c.get("value") for c in body.get("characteristics", [])
                      if isinstance(c, dict) and "aid" in c and "iid" in c}
            if values:
                self.received.append(values)
                self._arrived.set()
            deliver(body)

        pairing.event_received = on_event

    def values(self, aid: int, iid: int) -> list[Any]:
        return [e[(aid, iid)] for e in self.received if (aid, iid) in e]

    async def wait_for(self, aid: int, iid: int, value: Any, timeout: float = STEP) -> None:
        deadline = time.monotonic() + timeout
        while value not in self.values(aid, iid):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no event {aid}.{iid} = {value!r}; events seen: {self.received}")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)


@dataclass
class Light:
    """Where a light's characteristics are."""

    aid: int
    on: int
    brightness: int


@dataclass
class World:
    """What the cases of one target share."""

    target: Target
    bin_dir: Path
    data: Path
    port: int
    pin: str
    setup_id: str
    controller: IpController
    accessory: Accessory | None = None
    admin: IpPairing | None = None
    user_data: dict | None = None
    sessions: list[IpPairing] = field(default_factory=list)
    accessories: list[dict] | None = None

    async def start(self, **kwargs: Any) -> Accessory:
        """Starts the accessory and waits until it listens, without stalling the loop."""
        self.accessory = await asyncio.to_thread(
            Accessory, self.target, self.bin_dir, self.data, self.port, self.pin,
            self.setup_id, **kwargs)
        return self.accessory

    async def stop(self, kill: bool = False) -> None:
        """Ends the accessory: SIGKILL if `kill`, else SIGTERM."""
        if self.accessory:
            await asyncio.to_thread(self.accessory.kill if kill else self.accessory.stop)

    def session(self, pairing_data: dict) -> IpPairing:
        """A new connection with a stored pairing; it pair-verifies on first use."""
        pairing = IpPairing(self.controller, dict(pairing_data))
        self.sessions.append(pairing)
        return pairing

    async def close_sessions(self) -> None:
        for pairing in self.sessions:
            with contextlib.suppress(Exception):
                await pairing.close()
        self.sessions.clear()
        self.admin = None

    def light(self) -> Light:
        assert self.accessories, "no accessory list yet (case 2)"
        for accessory in self.accessories:
            for service in accessory["services"]:
                if service["type"] == apple("Lightbulb", "services"):
                    iid = {c["type"]: c["iid"] for c in service["characteristics"]}
                    return Light(accessory["aid"], iid[apple("On")], iid[apple("Brightness")])
        raise AssertionError("no Lightbulb service")

    def find(self, service_name: str, characteristic_name: str) -> tuple[int, int]:
        assert self.accessories, "no accessory list yet (case 2)"
        for accessory in self.accessories:
            for service in accessory["services"]:
                if service["type"] == apple(service_name, "services"):
                    for c in service["characteristics"]:
                        if c["type"] == apple(characteristic_name):
                            return accessory["aid"], c["iid"]
        raise AssertionError(f"no {service_name}.{characteristic_name}")


async def pair(world: World, code: str):
    """Pair-setup by address and port, with no mDNS."""
    discovery = IpDiscovery(world.controller, description(world.port, world.target.category))
    try:
        finish = await discovery.async_start_pairing(f"alias-{uuid.uuid4()}")
        return await finish(code)
    finally:
        await discovery.close()


def new_identity() -> tuple[str, str, str]:
    """A controller's pairing id and Ed25519 key pair, as hex."""
    key = Ed25519PrivateKey.generate()
    secret = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption()).hex()
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw).hex()
    return str(uuid.uuid4()).upper(), secret, public


def raw_request(port: int, request: bytes) -> str:
    """One plaintext request on a fresh connection; the response's status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=STEP) as s:
        s.sendall(request)
        reply = b""
        while b"\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n", 1)[0].decode(errors="replace")


def expect_error(code: int, result: dict, key: tuple[int, int], what: str) -> None:
    status = result.get(key, {}).get("status")
    assert status == code, f"{what}: expected status {code}, got {result!r}"


# ---------------------------------------------------------------------------------------
# Cases 1-7, over 127.0.0.1 without mDNS.


async def case_pair_setup(world: World) -> str:
    accessory = await world.start()
    wrong = "123-45-679" if world.pin != "123-45-679" else "987-65-431"
    try:
        await pair(world, wrong)
    except AuthenticationError as error:
        # The accessory's Authentication error at M4, which aiohomekit reports with the
        # step; not aiohomekit's own "wrong proof", which would mean the accessory
        # accepted the code.
        assert str(error).startswith("step"), f"not the accessory's refusal: {error}"
    else:
        raise AssertionError(f"pair-setup with the wrong code {wrong} succeeded")
    mark = accessory.mark()
    pairing = await pair(world, world.pin)
    world.admin = world.session(pairing.pairing_data)
    await accessory.printed("Paired", after=mark)
    accessory_id = pairing.pairing_data["AccessoryPairingID"]
    return f"wrong code refused with Authentication; paired with {accessory_id}"


# Where aiohomekit's table is known to disagree with both Apple's catalog (HAP-NodeJS) and
# HomeKitADK, what those two say instead. Version (HAP Protocol Information) is readable
# only in both; aiohomekit adds "ev".
AIOHOMEKIT_DIFFERS = {
    apple("Version"): {"perms": ["pr"]},
}


def check_against_catalog(accessories: list[dict]) -> list[str]:
    """Every service and characteristic of an Apple type agrees with Apple's catalog, as
    HAP-NodeJS publishes it (the server's own source) and as aiohomekit has it."""
    problems = []
    aids = [a["aid"] for a in accessories]
    if len(set(aids)) != len(aids) or 1 not in aids:
        problems.append(f"aids {aids}: not unique or no aid 1")
    for accessory in accessories:
        aid = accessory["aid"]
        iids = []
        types = [s["type"] for s in accessory["services"]]
        if apple("AccessoryInformation", "services") not in types:
            problems.append(f"aid {aid}: no Accessory Information service")
        if sum(1 for s in accessory["services"] if s.get("primary")) > 1:
            problems.append(f"aid {aid}: more than one primary service")
        for service in accessory["services"]:
            iids.append(service["iid"])
            known = SERVICES_BY_UUID.get(service["type"])
            present = {c["type"] for c in service["characteristics"]}
            if known:
                name, spec = known
                for required in spec["required"]:
                    if apple(required) not in present:
                        problems.append(f"aid {aid} {name}: required {required} missing")
                allowed = {apple(n) for n in spec["required"] + spec["optional"]}
                for t in present - allowed:
                    if t in CHARACTERISTICS_BY_UUID:
                        problems.append(f"aid {aid} {name}: {CHARACTERISTICS_BY_UUID[t][0]} "
                                        "is not one of its characteristics")
            for c in service["characteristics"]:
                iids.append(c["iid"])
                if c["type"] not in CHARACTERISTICS_BY_UUID:
                    continue
                cname, spec = CHARACTERISTICS_BY_UUID[c["type"]]
                where = f"aid {aid} iid {c['iid']} {cname}"
                if c.get("format") != spec["format"]:
                    problems.append(f"{where}: format {c.get('format')} != {spec['format']}")
                if set(c.get("perms", [])) != set(spec["perms"]):
                    problems.append(f"{where}: perms {c.get('perms')} != {spec['perms']}")
                for key in ["unit", "minValue", "maxValue", "minStep", "maxLen"]:
                    given = c.get(key)
                    if key == "maxLen" and spec["format"] == "string" and given is None:
                        given = 64  # HAP's default when a string omits it
                    if key in spec and given != spec[key]:
                        problems.append(f"{where}: {key} {c.get(key)!r} != {spec[key]!r}")
                theirs = AIOHOMEKIT_CHARACTERISTICS.get(c["type"])
                if theirs:
                    known = AIOHOMEKIT_DIFFERS.get(c["type"])
                    if known:
                        theirs = {**theirs, **known}
                    # aiohomekit's own table, from another source: formats (it says int32
                    # for HAP's int) and permissions. Its ranges predate some of Apple's
                    # (CurrentTemperature from 0, not -270), so they are not compared.
                    their_format = {"int32": "int"}.get(theirs["format"], theirs["format"])
                    if c.get("format") != their_format:
                        problems.append(f"{where}: format differs from aiohomekit's "
                                        f"{theirs['format']}")
                    if set(c.get("perms", [])) != set(theirs["perms"]):
                        problems.append(f"{where}: perms differ from aiohomekit's "
                                        f"{theirs['perms']}")
                if "pr" in spec["perms"] and "value" not in c:
                    problems.append(f"{where}: readable but no value")
                if "pr" not in spec["perms"] and "value" in c:
                    problems.append(f"{where}: not readable but has a value")
        if len(set(iids)) != len(iids):
            problems.append(f"aid {aid}: iids not unique: {sorted(iids)}")
    return problems


def check_ios_rules(accessories: list[dict]) -> list[str]:
    """The rules HomeKitADK enforces before it starts (HAPAccessoryValidation.c), which
    hap-core enforces when the database is built: the primary accessory, listed first, has
    aid 1 and HAP Protocol Information with Version 1.1.0; every accessory starts with
    Accessory Information at iid 1; every Firmware Revision is x[.y[.z]]."""
    problems = []
    if not accessories or accessories[0]["aid"] != 1:
        problems.append("the first accessory does not have aid 1")
    for accessory in accessories:
        aid = accessory["aid"]
        services = accessory["services"]
        first = services[0] if services else {}
        if first.get("type") != apple("AccessoryInformation", "services") or first.get("iid") != 1:
            problems.append(f"aid {aid}: the first service is not Accessory Information at iid 1")
        for service in services:
            for c in service["characteristics"]:
                if c["type"] == apple("FirmwareRevision"):
                    value = str(c.get("value"))
                    parts = value.split(".")
                    if not 1 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() for p in parts):
                        problems.append(f"aid {aid}: Firmware Revision {value!r} is not x[.y[.z]]")
    primary = next((a for a in accessories if a["aid"] == 1), {"services": []})
    versions = [
        c.get("value")
        for s in primary["services"] if s["type"] == apple("ProtocolInformation", "services")
        for c in s["characteristics"] if c["type"] == apple("Version")
    ]
    if versions != ["1.1.0"]:
        problems.append(f"aid 1: HAP Protocol Information (A2) Versions {versions}, "
                        "expected one, 1.1.0")
    return problems


async def case_accessories(world: World) -> str:
    assert world.admin, "needs case 1's pairing"
    accessories = await world.admin.list_accessories_and_characteristics()
    world.accessories = accessories
    problems = check_against_catalog(accessories) + check_ios_rules(accessories)
    primaries = sorted(
        SERVICES_BY_UUID[s["type"]][0]
        for a in accessories for s in a["services"] if s.get("primary") and s["type"] in SERVICES_BY_UUID
    )
    if world.target.kind == "light":
        want = ["Lightbulb"]
        light = world.light()
        if light.aid != 1:
            problems.append(f"the light has aid {light.aid}, not 1")
    elif world.target.kind == "garage":
        want = ["GarageDoorOpener"]
        aid, _ = world.find("GarageDoorOpener", "TargetDoorState")
        if len(accessories) != 2 or aid != 2:
            problems.append(f"{len(accessories)} accessories, the door at aid {aid}; "
                            "expected the bridge and the door at aid 2")
    else:
        want = ["Lightbulb", "StatelessProgrammableSwitch", "Switch", "TemperatureSensor"]
        if len(accessories) != 5:
            problems.append(f"{len(accessories)} accessories, expected the bridge and 4")
    if primaries != want:
        problems.append(f"primary services {primaries}, expected {want}")
    assert not problems, "; ".join(problems)
    count = sum(len(s["characteristics"]) for a in accessories for s in a["services"])
    return (f"{len(accessories)} accessories, {count} characteristics, all as Apple's catalog "
            f"says; aid 1 first, with Protocol Information 1.1.0; "
            f"primary services {', '.join(primaries)}")


async def case_read_write(world: World) -> str:
    assert world.admin and world.accessories, "needs cases 1 and 2"
    session, light, accessory = world.admin, world.light(), world.accessory
    on, brightness = (light.aid, light.on), (light.aid, light.brightness)
    mark = accessory.mark()
    result = await session.put_characteristics([(*on, True), (*brightness, 42)])
    assert not result, f"valid writes failed: {result}"
    read = await session.get_characteristics([on, brightness])
    assert read[on]["value"] is True and read[brightness]["value"] == 42, f"read back {read}"
    await accessory.printed("Brightness 42%", after=mark)

    # Values that no invalid write below could produce by clamping or truncating.
    assert not await session.put_characteristics([(*on, False), (*brightness, 43)])
    result = await session.put_characteristics([(*brightness, 150)])
    expect_error(INVALID_VALUE, result, brightness, "Brightness 150")
    result = await session.put_characteristics([(*on, "yes")])
    expect_error(INVALID_VALUE, result, on, "a string for On")
    result = await session.put_characteristics([(*brightness, 42.5)])
    expect_error(INVALID_VALUE, result, brightness, "a fraction for the int Brightness")
    read = await session.get_characteristics([on, brightness])
    assert read[on]["value"] is False and read[brightness]["value"] == 43, \
        f"an invalid write changed a value: {read}"
    said = "On and Brightness written and read back; 150, 42.5 and a string refused with -70410"

    if world.target.kind == "bridge":
        switch = world.find("Switch", "On")
        temperature = world.find("TemperatureSensor", "CurrentTemperature")
        button = world.find("StatelessProgrammableSwitch", "ProgrammableSwitchEvent")
        assert not await session.put_characteristics([(*switch, True)])
        read = await session.get_characteristics([switch, temperature, button])
        assert read[switch]["value"] is True, f"switch: {read}"
        assert isinstance(read[temperature]["value"], (int, float)) and \
            0 <= read[temperature]["value"] <= 100, f"temperature: {read}"
        # A stateless switch's event is read as null (HomeKitADK's answer).
        assert read[button].get("value") is None, f"button: {read}"
        result = await session.put_characteristics([(*temperature, 30.0)])
        expect_error(READ_ONLY, result, temperature, "a write to the read-only temperature")
        said += "; switch written, temperature read and its write refused with -70404"
    return said


async def case_events(world: World) -> str:
    assert world.admin and world.accessories, "needs cases 1 and 2"
    target, accessory, light = world.target, world.accessory, world.light()
    on, brightness = (light.aid, light.on), (light.aid, light.brightness)
    watched = [on, brightness]
    if target.kind == "bridge":
        switch = world.find("Switch", "On")
        temperature = world.find("TemperatureSensor", "CurrentTemperature")
        button = world.find("StatelessProgrammableSwitch", "ProgrammableSwitchEvent")
        watched += [switch, temperature, button]
    reader = world.admin
    writer = world.session(world.admin.pairing_data)
    reader_events, writer_events = Events(reader), Events(writer)
    for session in (reader, writer):
        refused = await session.subscribe(watched)
        assert not refused, f"subscriptions refused: {refused}"

    # A write by the second session reaches the first, and not the writer.
    current = (await reader.get_characteristics([on]))[on]["value"]
    assert not await writer.put_characteristics([(*on, not current)])
    await reader_events.wait_for(*on, not current)
    await asyncio.sleep(SILENCE)
    assert not writer_events.values(*on), f"the writer heard its own write: {writer_events.received}"

    # Changes typed on the accessory's stdin reach both.
    accessory.type(target.light_brightness.format(17))
    await reader_events.wait_for(*brightness, 17)
    await writer_events.wait_for(*brightness, 17)
    said = "a write by one session reached the other and was not echoed; typed changes reached both"

    if target.kind == "bridge":
        for command, value in [("press", 0), ("double", 1), ("long", 2)]:
            accessory.type(command)
            await reader_events.wait_for(*button, value)
            await writer_events.wait_for(*button, value)
        flipped = not (await writer.get_characteristics([switch]))[switch]["value"]
        assert not await writer.put_characteristics([(*switch, flipped)])
        await reader_events.wait_for(*switch, flipped)
        await asyncio.sleep(SILENCE)
        assert not writer_events.values(*switch), "the writer heard its own switch write"
        # The same session does hear the switch when someone else changes it.
        accessory.type("switch on" if not flipped else "switch off")
        await writer_events.wait_for(*switch, not flipped)
        accessory.type("temperature 23.5")
        await reader_events.wait_for(*temperature, 23.5)
        await writer_events.wait_for(*temperature, 23.5)
        said += ("; the switch's write not echoed; a typed temperature and button presses "
                 "(single, double, long) arrived as events")
    return said


async def case_non_admin(world: World) -> str:
    assert world.admin and world.accessories, "needs cases 1 and 2"
    light = world.light()
    admin = world.admin
    user_id, secret, public = new_identity()
    assert await admin.add_pairing(user_id, public, "User")
    world.user_data = dict(admin.pairing_data, iOSPairingId=user_id, iOSDeviceLTSK=secret,
                           iOSDeviceLTPK=public)
    user = world.session(world.user_data)
    read = await user.get_characteristics([(light.aid, light.on)])
    assert "value" in read[(light.aid, light.on)], f"the user cannot read: {read}"
    assert not await user.put_characteristics([(light.aid, light.brightness, 55)]), \
        "the user cannot write"
    refused = []
    for what, attempt in [
        ("list", lambda: user.list_pairings()),
        ("add", lambda: user.add_pairing(new_identity()[0], new_identity()[2], "User")),
        ("remove", lambda: user.remove_pairing(admin.pairing_data["iOSPairingId"])),
    ]:
        try:
            await attempt()
        except (AuthenticationError, UnpairedError):
            refused.append(what)
        else:
            raise AssertionError(f"a non-admin could {what} pairings")
    listed = {p["pairingId"]: p["permissions"] for p in await admin.list_pairings()}
    want = {admin.pairing_data["iOSPairingId"]: 1, user_id: 0}
    assert listed == want, f"pairings listed {listed}, expected {want}"
    return f"the user reads and writes; {', '.join(refused)} refused; both pairings listed"


async def case_restart(world: World) -> str:
    assert world.admin and world.accessories and world.user_data, "needs cases 1, 2 and 5"
    admin_data = dict(world.admin.pairing_data)
    before = world.accessories
    await world.close_sessions()
    await world.stop(kill=True)
    await world.start()
    admin = world.admin = world.session(admin_data)
    after = await admin.list_accessories_and_characteristics()

    def shape(accessories: list[dict]) -> list:
        return [(a["aid"], [(s["iid"], s["type"], [(c["iid"], c["type"]) for c in s["characteristics"]])
                            for s in a["services"]]) for a in accessories]

    assert shape(after) == shape(before), "aids, iids or types changed across the restart"
    world.accessories = after
    user = world.session(world.user_data)
    light = world.light()
    read = await user.get_characteristics([(light.aid, light.on), (light.aid, light.brightness)])
    # The examples keep values in memory only (README): after a restart they start over.
    values = (read[(light.aid, light.on)]["value"], read[(light.aid, light.brightness)]["value"])
    assert values == (False, 0), f"values after the restart {values}, documented as (False, 0)"
    return ("after SIGKILL and a restart on the same data: both pairings verify (same device "
            "id and key), same aids and iids; values start over as documented")


async def case_unpair(world: World) -> str:
    assert world.admin and world.user_data, "needs cases 1 and 5"
    admin, accessory = world.admin, world.accessory
    admin_id = admin.pairing_data["iOSPairingId"]
    assert await admin.remove_pairing(world.user_data["iOSPairingId"])
    listed = [p["pairingId"] for p in await admin.list_pairings()]
    assert listed == [admin_id], f"after removing the user, pairings {listed}"
    mark = accessory.mark()
    assert await admin.remove_pairing(admin_id)
    await accessory.printed("Unpaired", after=mark)
    await world.close_sessions()
    status = raw_request(world.port, b"POST /identify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert status.startswith("HTTP/1.1 204"), f"/identify while unpaired answered {status!r}"
    stale = world.session(admin_data := {**admin.pairing_data})
    try:
        await stale.get_characteristics([(1, 2)])
    except AuthenticationError as error:
        assert str(error).startswith("step"), f"not the accessory's refusal: {error}"
    except AccessoryDisconnectedError as error:
        # aiohomekit may wrap pair-verify's failure; it names it.
        assert "AuthenticationError" in str(error), f"not refused by pair-verify: {error}"
    else:
        raise AssertionError("the removed pairing still verifies")
    pairing = await pair(world, world.pin)
    world.admin = world.session(pairing.pairing_data)
    assert admin_data["iOSPairingId"] != pairing.pairing_data["iOSPairingId"]
    await world.admin.list_accessories_and_characteristics()
    return "both pairings removed; unpaired (/identify 204, old pairing refused); paired again"


async def case_garage(world: World) -> str:
    """The garage door: a write moves the door, with CurrentDoorState events; while the
    door controller is unreachable, writes and reads get -70402; once back, they work."""
    assert world.admin and world.accessories, "needs cases 1 and 2"
    session, accessory = world.admin, world.accessory
    target = world.find("GarageDoorOpener", "TargetDoorState")
    current = world.find("GarageDoorOpener", "CurrentDoorState")
    events = Events(session)
    refused = await session.subscribe([current, target])
    assert not refused, f"subscriptions refused: {refused}"
    read = await session.get_characteristics([current, target])
    assert (read[current].get("value"), read[target].get("value")) == (CLOSED, CLOSED), \
        f"a new door is not closed: {read}"

    mark = accessory.mark()
    result = await session.put_characteristics([(*target, OPEN)])
    assert not result, f"opening failed: {result}"
    await events.wait_for(*current, OPENING)
    await events.wait_for(*current, OPEN)
    order = [v for v in events.values(*current)]
    assert order == [OPENING, OPEN], f"CurrentDoorState events {order}, expected Opening, Open"
    await accessory.printed("Door open", after=mark)
    read = await session.get_characteristics([current, target])
    assert (read[current].get("value"), read[target].get("value")) == (OPEN, OPEN), \
        f"after opening: {read}"

    mark = accessory.mark()
    accessory.type("unreachable")
    await accessory.printed("unreachable", after=mark)
    seen = len(events.received)
    result = await session.put_characteristics([(*target, CLOSED)])
    expect_error(COMMUNICATION_FAILURE, result, target, "a write while unreachable")
    read = await session.get_characteristics([current])
    expect_error(COMMUNICATION_FAILURE, read, current, "a read while unreachable")
    read = await session.get_characteristics([target])
    expect_error(COMMUNICATION_FAILURE, read, target, "a read of the target while unreachable")
    await asyncio.sleep(SILENCE)
    assert len(events.received) == seen, \
        f"a failed write sent events: {events.received[seen:]}"

    mark = accessory.mark()
    accessory.type("reachable")
    await accessory.printed("reachable", after=mark)
    read = await session.get_characteristics([current, target])
    assert (read[current].get("value"), read[target].get("value")) == (OPEN, OPEN), \
        f"the failed write changed a value: {read}"
    result = await session.put_characteristics([(*target, CLOSED)])
    assert not result, f"closing failed once reachable: {result}"
    await events.wait_for(*current, CLOSING)
    await events.wait_for(*current, CLOSED)
    read = await session.get_characteristics([current, target])
    assert (read[current].get("value"), read[target].get("value")) == (CLOSED, CLOSED), \
        f"after closing: {read}"
    return ("TargetDoorState Open moved CurrentDoorState Opening -> Open by events; "
            "unreachable: a write and two reads got -70402, no events, values kept; "
            "reachable: closed again (Closing -> Closed)")


# ---------------------------------------------------------------------------------------
# Case 8, inside a network namespace.


def setup_hash(setup_id: str, device_id: str) -> str:
    """The mDNS `sh`: the first 4 bytes of SHA-512(setup id + device id), in base64."""
    return base64.b64encode(hashlib.sha512((setup_id + device_id).encode()).digest()[:4]).decode()


class Browser:
    """aiohomekit's IP controller, discovering over mDNS as Home Assistant runs it."""

    def __init__(self, azc, controller: IpController, browser):
        self.azc, self.controller, self.browser = azc, controller, browser

    @classmethod
    async def start(cls) -> "Browser":
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        azc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        browser = AsyncServiceBrowser(azc.zeroconf, [HAP_TYPE], handlers=[lambda **_: None])
        controller = IpController(CharacteristicCacheMemory(), azc)
        await controller.async_start()
        return cls(azc, controller, browser)

    async def txt(self, name: str) -> dict[str, str]:
        """The TXT record as zeroconf has it: from its cache, which the accessory's
        announcements keep current, or else asked on the network."""
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(HAP_TYPE, f"{name}.{HAP_TYPE}")
        assert await info.async_request(self.azc.zeroconf, 3000), f"{name} did not resolve"
        return {k.lower(): v for k, v in info.decoded_properties.items() if v is not None}

    async def until(self, name: str, what: str, test: Callable[[dict], bool]) -> dict[str, str]:
        deadline = time.monotonic() + STEP
        txt: dict[str, str] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):
                txt = await self.txt(name)
                if test(txt):
                    return txt
            await asyncio.sleep(0.25)
        raise AssertionError(f"{what}: last TXT {txt}")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.controller.async_stop()
        await self.browser.async_cancel()
        await self.azc.async_close()


async def pair_discovered(browser: "Browser", device_id: str, pin: str) -> dict:
    """Pair-setup through the address aiohomekit discovered over mDNS."""
    discovery = browser.controller.discoveries[device_id]
    try:
        finish = await discovery.async_start_pairing(f"mdns-{uuid.uuid4()}")
        return (await finish(pin)).pairing_data
    finally:
        await discovery.close()


async def case_mdns(world: World) -> str:
    """Runs inside the namespace: discovery, TXT, `sf` across pairing, and `c#`."""
    target = world.target
    name = {"bridge": "Virtual Bridge", "garage": "Garage Bridge"}.get(target.kind, "Virtual Light")
    browser = await Browser.start()
    world.controller = browser.controller
    try:
        await world.start(mdns=True)
        deadline = time.monotonic() + STEP
        while not browser.controller.discoveries and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert browser.controller.discoveries, "aiohomekit discovered nothing over mDNS"
        (device_id, discovery), = browser.controller.discoveries.items()
        found = discovery.description
        assert found.name == name, f"discovered {found.name!r}, expected {name!r}"
        assert found.port == world.port and found.address == "127.0.0.1", \
            f"discovered at {found.address}:{found.port}"
        txt = await browser.txt(name)
        want = {"md": target.model, "ci": str(target.category), "sf": "1", "ff": "0",
                "pv": "1.1", "s#": "1"}
        wrong = {k: (txt.get(k), v) for k, v in want.items() if txt.get(k) != v}
        assert not wrong, f"TXT values (got, expected): {wrong}; TXT {txt}"
        config = int(txt.get("c#", "0"))
        assert config >= 1, f"TXT c# {txt.get('c#')!r}"

        # sf goes 1 -> 0 -> 1 across pairing and unpairing, through the discovered address.
        pairing_data = await pair_discovered(browser, device_id, world.pin)
        # The id that pair-setup proved is the one advertised, and `sh` hashes it.
        proven = pairing_data["AccessoryPairingID"]
        assert txt.get("id") == proven.upper(), f"TXT id {txt.get('id')}, pair-setup {proven}"
        sh = setup_hash(world.setup_id, proven.upper())
        assert txt.get("sh") == sh, f"TXT sh {txt.get('sh')}, expected {sh}"
        paired = await browser.until(name, "sf after pairing", lambda t: t.get("sf") == "0")
        session = world.session(pairing_data)
        before = await session.list_accessories_and_characteristics()
        assert await session.remove_pairing(pairing_data["iOSPairingId"])
        await world.close_sessions()
        unpaired = await browser.until(name, "sf after unpairing", lambda t: t.get("sf") == "1")
        configs = {int(t.get("c#", "0")) for t in (paired, unpaired)}
        assert configs == {config}, f"c# changed across pairing: {config} -> {configs}"
        said = (f"discovered {name!r} at 127.0.0.1:{world.port}; TXT {txt} with id and sh "
                f"matching pair-setup; sf 1 -> 0 -> 1 across pair and unpair, c# kept")

        # A restart with the same configuration keeps c#.
        await world.stop()
        await world.start(mdns=True)
        again = await browser.until(name, "TXT after a restart", lambda t: "c#" in t)
        assert int(again["c#"]) == config, f"c# {config} -> {again['c#']} on a plain restart"

        if target.kind == "bridge":
            await world.stop()
            await world.start(mdns=True, extra=["--accessories", "light,switch"])
            changed = await browser.until(
                name, "c# after the configuration changed", lambda t: int(t.get("c#", "0")) > config)
            deadline = time.monotonic() + STEP
            while browser.controller.discoveries[device_id].description.config_num <= config:
                assert time.monotonic() < deadline, "aiohomekit did not see the new c#"
                await asyncio.sleep(0.1)
            # The accessories that stayed keep their aids.
            session = world.session(await pair_discovered(browser, device_id, world.pin))
            after = await session.list_accessories_and_characteristics()
            names = {a["aid"]: [c.get("value") for s in a["services"] for c in s["characteristics"]
                                if c["type"] == apple("Name")] for a in after}
            kept = {aid: n for aid, n in
                    ((a["aid"], [c.get("value") for s in a["services"] for c in s["characteristics"]
                                 if c["type"] == apple("Name")]) for a in before)
                    if aid in names}
            assert len(after) == 3 and kept == names, \
                f"aids and names before {kept}, after the change {names}"
            said += (f"; c# {config} -> {changed['c#']} when two accessories were removed, "
                     f"and the rest kept their aids")
        return said + "; c# kept across a plain restart"
    finally:
        await world.close_sessions()
        await browser.close()


# ---------------------------------------------------------------------------------------
# Running.

CASES: list[tuple[int, str, Callable]] = [
    (1, "pair-setup by address; a wrong code gets Authentication", case_pair_setup),
    (2, "the accessory database", case_accessories),
    (3, "read and write; invalid writes get -70410", case_read_write),
    (4, "events from typed changes and another session; no echo", case_events),
    (5, "a non-admin pairing through /pairings", case_non_admin),
    (6, "SIGKILL and restart on the same data", case_restart),
    (7, "remove the pairings, then pair again", case_unpair),
    (8, "mDNS discovery and TXT in a network namespace", case_mdns),
    (9, "the garage door: writes move it; -70402 while unreachable", case_garage),
]


def cases_for(target: Target) -> list[int]:
    if target.kind == "garage":
        return [1, 2, 9, 8] if target.mdns else [1, 2, 9]
    numbers = [1, 2, 3, 4]
    # Pairing management and restarts are exercised on the lights that keep state.
    if target.kind == "light" and target.stored:
        numbers += [5, 6, 7]
    if target.mdns:
        numbers.append(8)
    return numbers


class Record(logging.Handler):
    """Keeps aiohomekit's debug log of the current case: the exchange, in plaintext."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}"[:2000])


@dataclass
class Results:
    passed: int = 0
    failed: int = 0

    def report(self, label: str, ok: bool, said: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'} {label}: {said}", flush=True)


async def run_case(results: Results, world: World, number: int) -> None:
    _, title, function = CASES[number - 1]
    label = f"{world.target.name} case {number} ({title})"
    record = Record()
    logger = logging.getLogger("aiohomekit")
    logger.addHandler(record)
    try:
        said = await asyncio.wait_for(function(world), 6 * STEP)
        results.report(label, True, said)
    except BaseException as error:  # noqa: BLE001 - report it and go on to the next case
        if isinstance(error, KeyboardInterrupt):
            raise
        results.report(label, False, f"{type(error).__name__}: {error}")
        print("  --- what happened:", "".join(traceback.format_exception(error)[-3:]), sep="\n")
        print("  --- aiohomekit's log of the exchange (last 60 lines):")
        print("\n".join("    " + line for line in record.lines[-60:]))
        if world.accessory:
            print(f"  --- the accessory's output ({' '.join(world.accessory.args)}):")
            print("\n".join("    " + line for line in world.accessory.tail().splitlines()))
    finally:
        logger.removeHandler(record)


async def run_target(results: Results, target: Target, bin_dir: Path, numbers: list[int],
                     scratch: Path) -> None:
    world = World(target=target, bin_dir=bin_dir, data=scratch / target.name, port=free_port(),
                  pin="314-15-926", setup_id="T3ST",
                  controller=IpController(CharacteristicCacheMemory(), NoZeroconf()))
    try:
        for number in numbers:
            if number == 8:
                continue
            await run_case(results, world, number)
    finally:
        await world.close_sessions()
        await world.stop()


async def run_mdns_inside(results: Results, target: Target, bin_dir: Path, scratch: Path) -> None:
    """Case 8 for one target; this process runs inside the namespace."""
    world = World(target=target, bin_dir=bin_dir, data=scratch / f"{target.name}-mdns",
                  port=free_port(), pin="314-15-926", setup_id="T3ST", controller=None)
    try:
        await run_case(results, world, 8)
    finally:
        await world.close_sessions()
        await world.stop()


class Namespace:
    """A network namespace with only `lo`, up, multicast on, and a multicast route."""

    def __init__(self):
        self.name = f"hap-interop-{os.getpid()}"

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def __enter__(self) -> "Namespace":
        try:
            self.ip("netns", "add", self.name)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or error
            raise RuntimeError(f"cannot create a network namespace (needs root and iproute2): "
                               f"{detail}") from None
        try:
            self.ip("-n", self.name, "link", "set", "lo", "up")
            self.ip("-n", self.name, "link", "set", "lo", "multicast", "on")
            # With a source address, or multicast leaves from 0.0.0.0.
            self.ip("-n", self.name, "route", "add", "224.0.0.0/4", "dev", "lo", "src",
                    "127.0.0.1")
        except subprocess.CalledProcessError as error:
            self.__exit__()
            raise RuntimeError(f"cannot set up {self.name}: {error.stderr}") from None
        return self

    def __exit__(self, *_: object) -> None:
        # Whatever still runs inside was started by this suite: end it, or the namespace
        # outlives its deletion.
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        for pid in listed.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def run_mdns_cases(results: Results, targets: list[Target], bin_dir: Path, scratch: Path) -> None:
    """Case 8: this script again, inside a namespace, once per target."""
    for target in targets:
        outcome = scratch / f"{target.name}-mdns.json"
        try:
            with Namespace() as namespace:
                command = ["ip", "netns", "exec", namespace.name, sys.executable, __file__,
                           "--bin-dir", str(bin_dir), "--only", target.name,
                           "--inside-namespace", str(outcome)]
                inside = subprocess.Popen(command)
                try:
                    inside.wait(timeout=10 * STEP)
                except subprocess.TimeoutExpired:
                    # SIGTERM lets it stop its accessory; the namespace's exit ends the rest.
                    inside.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        inside.wait(timeout=STEP)
                    raise
            counts = json.loads(outcome.read_text())
            results.passed += counts["passed"]
            results.failed += counts["failed"]
        except Exception as error:  # noqa: BLE001 - a failure to run is a failed case
            results.report(f"{target.name} case 8 ({CASES[7][1]})", False,
                           f"{type(error).__name__}: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", type=Path, required=True,
                        help="where the example binaries are (target/debug/examples)")
    parser.add_argument("--only", action="append", choices=sorted(TARGETS),
                        help="run only this target (repeatable)")
    parser.add_argument("--case", action="append", type=int, choices=range(1, 10),
                        help="run only this case (repeatable; cases build on earlier ones)")
    parser.add_argument("--inside-namespace", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("aiohomekit").setLevel(logging.DEBUG)
    targets = [TARGETS[name] for name in (args.only or TARGETS)]
    results = Results()
    with tempfile.TemporaryDirectory(prefix="hap-interop-") as scratch_dir:
        scratch = Path(scratch_dir)
        if args.inside_namespace:
            # On SIGTERM from the outer suite, unwind so that `finally` stops the accessory.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
            asyncio.run(run_mdns_inside(results, targets[0], args.bin_dir, scratch))
            args.inside_namespace.write_text(json.dumps(vars(results)))
            return 0
        for target in targets:
            numbers = [n for n in cases_for(target) if not args.case or n in args.case]
            asyncio.run(run_target(results, target, args.bin_dir, numbers, scratch))
        mdns_targets = [t for t in targets if 8 in cases_for(t) and (not args.case or 8 in args.case)]
        run_mdns_cases(results, mdns_targets, args.bin_dir, scratch)
    print(f"interop: {results.passed} passed, {results.failed} failed", flush=True)
    return 1 if results.failed or not results.passed else 0


if __name__ == "__main__":
    sys.exit(main())
