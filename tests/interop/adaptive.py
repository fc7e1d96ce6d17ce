"""Interoperability: Adaptive Lighting driven the way iOS drives it, with `hapctl` as the
controller and `virtual-light --adaptive` as the accessory.

Run it with `tests/interop/adaptive.sh`, which builds both. Everything is on 127.0.0.1,
reached as HOST:PORT, with the accessory's mDNS off, so nothing reaches the host's network
and no root is needed. The checks follow what HAP-NodeJS 1.2.0's
AdaptiveLightingController does (the reference the project follows), in this order:

 1. the accessory starts on a scratch --data directory; hapctl pairs by address;
 2. Supported Characteristic Value Transition Configuration (144) decodes as TLV8 and
    names Brightness (transition type 1) and ColorTemperature (type 2) by their iids;
 3. `hapctl watch` follows ColorTemperature and Active Transition Count (24B);
 4. an UPDATE to Characteristic Value Transition Control (143) as iOS builds one (random
    16-byte transition id, start time in ms since 2001, 8 opaque bytes, a curve of iOS's
    length, fragmented at three levels) is answered with
    `02 L[01 L[01 iid 02 params 03 01 00]]`, our id and start echoed;
 5. the count goes to 1 and ColorTemperature events follow the curve (each value within
    2 mired of what the curve takes in the 1.5 s before the event, at least 4 distinct values,
    never rising while the curve falls);
 6. after Brightness 30, the values follow the curve adjusted for brightness 30;
 7. a read of 143 echoes the iid and parameters and the time since the start;
 8. a manual ColorTemperature write ends it: count 0, and no further steps for 3 s;
 9. started again and stopped by an UPDATE with only the iid: answer `02 00`, count 0;
10. restarted during a transition on the same --data: 143 still shows it, the count is
    still 1, and the values carry on along the curve.

Each check prints `PASS name: what it saw` or `FAIL name: why`; the run ends with
`adaptive: N passed, M failed` and exits 1 if anything failed. `--command` runs the same
checks against another accessory (HAP-NodeJS with an AdaptiveLightingController, say).

Only the processes started here are ended here, by PID: SIGTERM, then SIGKILL after 10 s.
Every wait is bounded; the whole run takes about 35 s.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import queue
import re
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PIN = "031-45-154"
# How long any one wait may last, in seconds.
STEP = 15.0
# How long one hapctl command may take before it counts as hung.
COMMAND = 30.0
# Unix time of 2001-01-01T00:00:00Z, HomeKit's epoch.
EPOCH_2001 = 978307200
# How far an event's value may be from the curve, and how long before the event's arrival
# the accessory's step may have been (its timer, HAP-NodeJS's 250 ms event batching, a
# slow machine). A step cannot come after its event: only clock jitter counts that way.
MIRED_TOLERANCE = 2
TIME_TOLERANCE = 1.5
CLOCK_JITTER = 0.25

# The characteristics, by short type.
BRIGHTNESS, COLOR_TEMPERATURE = "8", "CE"
TRANSITION_CONTROL, SUPPORTED_CONFIGURATION, ACTIVE_COUNT = "143", "144", "24B"


# ---------------------------------------------------------------------------------------
# TLV8, as HAP writes it: values over 255 bytes are split into 255-byte fragments of the
# same type, and list items of the same type are separated by an empty item of type 0.


def tlv(kind: int, value: bytes) -> bytes:
    """One item; a value over 255 bytes becomes several fragments."""
    out = bytearray()
    chunks = [value[at:at + 255] for at in range(0, len(value), 255)] or [b""]
    for chunk in chunks:
        out += bytes([kind, len(chunk)]) + chunk
    return bytes(out)


def tlv_list(kind: int, values: list[bytes]) -> bytes:
    """Items of one type, separated by `00 00`."""
    return b"\x00\x00".join(tlv(kind, value) for value in values)


def varuint(n: int) -> bytes:
    """HAP-NodeJS's variable-length unsigned integer: 1, 2, 4 or 8 bytes, little-endian."""
    for size in (1, 2, 4, 8):
        if n < 1 << (8 * size):
            return n.to_bytes(size, "little")
    raise ValueError(f"{n} does not fit 8 bytes")


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """The items of `data` in order, fragments joined (a fragment of 255 bytes followed by
    the same type continues it), separators kept as (0, b"")."""
    items: list[tuple[int, bytes]] = []
    at, continues = 0, False
    while at < len(data):
        if at + 2 > len(data):
            raise ValueError(f"a TLV header cut short at byte {at} of {len(data)}")
        kind, size = data[at], data[at + 1]
        value = data[at + 2:at + 2 + size]
        if len(value) != size:
            raise ValueError(f"a TLV value of {size} bytes has only {len(value)} at byte {at}")
        if continues and items and items[-1][0] == kind:
            items[-1] = (kind, items[-1][1] + value)
        else:
            items.append((kind, value))
        continues = size == 255
        at += 2 + size
    return items


def tlv_map(data: bytes) -> dict[int, bytes]:
    """The items of `data` by type (no lists); a repeated type is an error."""
    out: dict[int, bytes] = {}
    for kind, value in parse_tlv(data):
        if kind in out:
            raise ValueError(f"type {kind} twice in {data.hex()}")
        out[kind] = value
    return out


def tlv_items(data: bytes, kind: int) -> list[bytes]:
    """The values of every item of type `kind` (a list)."""
    return [value for k, value in parse_tlv(data) if k == kind]


def read_uint(value: bytes) -> int:
    if len(value) not in (1, 2, 4, 8):
        raise ValueError(f"an integer of {len(value)} bytes: {value.hex()}")
    return int.from_bytes(value, "little")


# ---------------------------------------------------------------------------------------
# The curve, as iOS sends it and as HAP-NodeJS runs it.


@dataclass(frozen=True)
class Point:
    """One transition entry as on the wire: ramp from the previous entry to `mired` over
    `offset_ms`; `duration_ms` (HAP-NodeJS applies it as a hold of the PREVIOUS entry
    before this ramp)."""

    mired: float
    factor: float
    offset_ms: int
    duration_ms: int | None = None


# 400 mired at 0; to 300 over 6 s; hold 4 s; to 250 over 6 s; to 200 over 20 s; then a
# long flat tail, as long as iOS's 24-hour curves (about 42 entries), so that the request
# is fragmented at three levels like a real one. Brightness lowers it by 0.5 mired per %.
FACTOR = -0.5
CURVE = [
    Point(400, FACTOR, 0),
    Point(300, FACTOR, 6000),
    Point(250, FACTOR, 6000, 4000),
    Point(200, FACTOR, 20000),
] + [Point(200, FACTOR, 1800000) for _ in range(38)]
BRIGHTNESS_RANGE = (10, 100)
UPDATE_INTERVAL_MS = 1000
NOTIFY_INTERVAL_MS = 1000
CT_RANGE = (140, 500)


def f32(x: float) -> bytes:
    return struct.pack("<f", x)


def js_round(x: float) -> int:
    """JavaScript's Math.round: halves go up."""
    return math.floor(x + 0.5)


def curve_value(elapsed_ms: float, brightness: float) -> int | None:
    """ColorTemperature `elapsed_ms` after the UPDATE at `brightness`, as HAP-NodeJS
    computes it (AdaptiveLightingController getCurrentAdaptiveLightingTransitionPoint and
    scheduleNextUpdate); None past the end."""
    # The duration found on entry k is stored on entry k-1.
    durations = [p.duration_ms or 0 for p in CURVE[1:]] + [0]
    reached = 0.0
    for i in range(len(CURVE) - 1):
        lower, upper = CURVE[i], CURVE[i + 1]
        reached += lower.offset_ms
        if reached <= elapsed_ms <= reached + durations[i] + upper.offset_ms:
            into = elapsed_ms - reached
            if durations[i] and into <= durations[i]:
                mired, factor = lower.mired, lower.factor
            else:
                p = (into - durations[i]) / upper.offset_ms
                mired = lower.mired + (upper.mired - lower.mired) * p
                factor = lower.factor + (upper.factor - lower.factor) * p
            b = max(BRIGHTNESS_RANGE[0], min(BRIGHTNESS_RANGE[1], brightness))
            return max(CT_RANGE[0], min(CT_RANGE[1], js_round(mired + factor * b)))
        reached += durations[i]
    return None


def curve_span(start_ms: float, end_ms: float, brightness: float) -> tuple[int, int] | None:
    """The lowest and highest value the curve takes between two times."""
    values = [curve_value(t, brightness)
              for t in _frange(max(0.0, start_ms), max(0.0, end_ms), 10.0)]
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else None


def _frange(start: float, end: float, step: float) -> list[float]:
    n = max(1, int((end - start) / step) + 1)
    return [start + i * step for i in range(n)] + [end]


def configuration(ct_iid: int, bri_iid: int, params: bytes, curve: list[Point]) -> bytes:
    """A value transition configuration (type 1 inside an UPDATE) as iOS writes one: the
    first offset as one byte, later offsets and durations as 4 bytes."""
    entries = []
    for index, point in enumerate(curve):
        offset = bytes([point.offset_ms]) if index == 0 else struct.pack("<I", point.offset_ms)
        entry = tlv(1, f32(point.factor)) + tlv(2, f32(point.mired)) + tlv(3, offset)
        if point.duration_ms is not None:
            entry += tlv(4, struct.pack("<I", point.duration_ms))
        entries.append(entry)
    limits = tlv(1, struct.pack("<I", BRIGHTNESS_RANGE[0])) + \
        tlv(2, struct.pack("<I", BRIGHTNESS_RANGE[1]))
    curve_tlv = tlv_list(1, entries) + tlv(2, varuint(bri_iid)) + tlv(3, limits)
    return (tlv(1, varuint(ct_iid)) + tlv(2, params) + tlv(3, b"\x01") + tlv(5, curve_tlv)
            + tlv(6, struct.pack("<H", UPDATE_INTERVAL_MS))
            + tlv(8, struct.pack("<I", NOTIFY_INTERVAL_MS)))


@dataclass
class Transition:
    """One UPDATE's parameters: what the answer must echo."""

    transition_id: bytes
    start: bytes
    id3: bytes

    @staticmethod
    def new() -> "Transition":
        now_ms = int((time.time() - EPOCH_2001) * 1000)
        return Transition(secrets.token_bytes(16), struct.pack("<Q", now_ms),
                          secrets.token_bytes(8))

    def params(self) -> bytes:
        return tlv(1, self.transition_id) + tlv(2, self.start) + tlv(3, self.id3)


def update_request(ct_iid: int, bri_iid: int, transition: Transition) -> bytes:
    return tlv(2, tlv(1, configuration(ct_iid, bri_iid, transition.params(), CURVE)))


def stop_request(ct_iid: int) -> bytes:
    """An UPDATE with only the iid: iOS turning Adaptive Lighting off."""
    return tlv(2, tlv(1, tlv(1, varuint(ct_iid))))


def check_status(status: bytes, ct_iid: int, transition: Transition) -> int:
    """Checks a value configuration status (`01 iid 02 params 03 elapsed`) against what
    was sent; returns the elapsed milliseconds."""
    fields = tlv_map(status)
    assert set(fields) == {1, 2, 3}, f"status types {sorted(fields)}, expected 1, 2, 3"
    assert read_uint(fields[1]) == ct_iid, \
        f"iid {read_uint(fields[1])}, expected ColorTemperature's {ct_iid}"
    params = tlv_map(fields[2])
    echoed = (params.get(1), params.get(2), params.get(3))
    sent = (transition.transition_id, transition.start, transition.id3)
    assert echoed == sent, \
        f"parameters {[p.hex() if p else None for p in echoed]}, sent {[p.hex() for p in sent]}"
    return read_uint(fields[3])


# ---------------------------------------------------------------------------------------
# Processes.


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Accessory:
    """The accessory under test, its output appended to a log file."""

    def __init__(self, command: list[str], log: Path):
        self.command = command
        self.log_path = log
        with log.open("a") as out:
            out.write(f"$ {shlex.join(command)}\n")
        self.log = log.open("a")
        # stdin an open pipe that stays silent: our examples read commands from it.
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def wait_until_listening(self, port: int) -> None:
        deadline = time.monotonic() + STEP
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the accessory exited with {self.process.returncode}:\n"
                                     f"{self.tail()}")
            with contextlib.suppress(OSError):
                with socket.create_connection((HOST, port), timeout=1):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the accessory never listened on {HOST}:{port}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it, then SIGKILL after 10 s."""
        stop_process(self.process)
        self.log.close()

    def tail(self, lines: int = 15) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join("    | " + line for line in text[-lines:])


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM (as a service manager stops it) to our own child, by PID; SIGKILL after 10 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


class Hapctl:
    def __init__(self, binary: Path, file: Path, alias: str = "light"):
        self.binary, self.file, self.alias = binary, file, alias

    def args(self, *args: str) -> list[str]:
        # --interface lo: if the accessory is gone, hapctl's search for it stays on
        # loopback instead of browsing the host's networks.
        return [str(self.binary), "--file", str(self.file), "--timeout", "5", "--json",
                "--interface", "lo", *args]

    def __call__(self, *args: str) -> Run:
        done = subprocess.run(self.args(*args), capture_output=True, text=True,
                              timeout=COMMAND, stdin=subprocess.DEVNULL)
        return Run(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> Run:
        run = self(*args)
        assert run.code == 0, \
            f"hapctl {' '.join(args)[:120]}: exit {run.code}: {run.stderr.strip()}"
        return run


@dataclass
class Event:
    """A line of `hapctl watch --json`, with when it arrived here."""

    at: float
    iid: int
    value: Any
    # The values read when the watch started, before any event.
    initial: bool


class Watch:
    """`hapctl --json watch` in the background; its lines, stamped on arrival."""

    def __init__(self, hapctl: Hapctl, iids: list[int], aid: int, seconds: float):
        chars = [f"{aid}.{iid}" for iid in iids]
        self.process = subprocess.Popen(
            hapctl.args("watch", hapctl.alias, *chars, "--seconds", str(seconds)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        self.expected_initial = len(iids)
        self.lines: queue.Queue[Event] = queue.Queue()
        self.events: list[Event] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        seen = 0
        assert self.process.stdout
        for line in self.process.stdout:
            with contextlib.suppress(ValueError, KeyError):
                item = json.loads(line)
                self.lines.put(Event(time.monotonic(), int(item["iid"]), item.get("value"),
                                     seen < self.expected_initial))
                seen += 1

    def collect(self) -> list[Event]:
        """Every line so far."""
        while True:
            try:
                self.events.append(self.lines.get_nowait())
            except queue.Empty:
                return self.events

    def wait_initial(self) -> list[Event]:
        """The values read at the start, once the subscription is in place."""
        deadline = time.monotonic() + STEP
        while time.monotonic() < deadline:
            initial = [e for e in self.collect() if e.initial]
            if len(initial) == self.expected_initial:
                return initial
            if self.process.poll() is not None and self.lines.empty():
                break
            time.sleep(0.05)
        raise AssertionError(f"the watch did not start: {self.stderr_text()}")

    def wait_for(self, wanted, seconds: float = STEP) -> Event:
        """The first event (not an initial read) for which `wanted` holds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event in self.collect():
                if not event.initial and wanted(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no such event within {seconds} s; seen "
                             f"{[(e.iid, e.value) for e in self.collect() if not e.initial]}")

    def stderr_text(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr
        return self.process.stderr.read().strip()

    def stop(self) -> None:
        stop_process(self.process)
        self.reader.join(5)
        self.collect()


# ---------------------------------------------------------------------------------------
# The checks.


def full_uuid(kind: str) -> str:
    kind = kind.upper()
    if re.fullmatch(r"[0-9A-F]{1,8}", kind):
        return f"{int(kind, 16):08X}-0000-1000-8000-0026BB765291"
    return kind


class World:
    def __init__(self, args: argparse.Namespace, scratch: Path):
        self.args = args
        self.scratch = scratch
        self.data = scratch / "data"
        self.port = free_port()
        self.hapctl = Hapctl(args.hapctl, scratch / "pairings.json")
        self.accessory: Accessory | None = None
        self.watch: Watch | None = None
        self.passed = self.failed = 0
        # Filled in as the checks go.
        self.aid = 0
        self.iids: dict[str, int] = {}
        self.transition: Transition | None = None
        # When the UPDATE was sent and answered (monotonic).
        self.put_window = (0.0, 0.0)
        self.brightness_window: tuple[float, float] | None = None

    def command(self) -> list[str]:
        if self.args.command:
            return shlex.split(self.args.command.format(
                port=self.port, pin=PIN, data=self.data, host=HOST))
        return [str(self.args.binary), "--adaptive", "--pin", PIN, "--bind", HOST,
                "--port", str(self.port), "--data", str(self.data), "--mdns", "off"]

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.accessory = Accessory(self.command(), self.scratch / "accessory.log")
        self.accessory.wait_until_listening(self.port)

    def report(self, name: str, ok: bool, said: str) -> None:
        self.passed, self.failed = self.passed + ok, self.failed + (not ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}: {said}", flush=True)
        if not ok and self.accessory:
            print(f"  the accessory's last lines:\n{self.accessory.tail()}", flush=True)

    def check(self, name: str, body) -> bool:
        try:
            said = body(self)
        except AssertionError as error:
            self.report(name, False, str(error))
            return False
        except Exception as error:  # noqa: BLE001 - whatever breaks a check is its FAIL
            self.report(name, False, f"{type(error).__name__}: {error}")
            return False
        self.report(name, True, said or "ok")
        return True

    def char(self, short: str) -> str:
        return f"{self.aid}.{self.iids[short]}"

    def put_tlv(self, data: bytes) -> tuple[bytes, float, float]:
        """Writes `data` to 143 (hapctl asks for the write response itself); returns the
        answer's bytes and when the write was sent and answered."""
        sent = time.monotonic()
        run = self.hapctl.ok("put", self.hapctl.alias,
                             f"{self.char(TRANSITION_CONTROL)}={base64.b64encode(data).decode()}")
        answered = time.monotonic()
        item = run.json()["characteristics"][0]
        assert item.get("status") == 0, f"status {item.get('status')}"
        assert "response" in item, f"no response field: {item}"
        assert isinstance(item["response"], str), f"response {item['response']!r}"
        return base64.b64decode(item["response"]), sent, answered

    def read_value(self, short: str) -> Any:
        run = self.hapctl.ok("get", self.hapctl.alias, self.char(short))
        return run.json()["characteristics"][0]["value"]


def step_pair(w: World) -> str:
    w.start()
    run = w.hapctl.ok("pair", f"{HOST}:{w.port}", "--code", PIN, "--alias", w.hapctl.alias)
    return f"paired at {HOST}:{w.port} (id {run.json()['id']})"


def step_tree(w: World) -> str:
    tree = w.hapctl.ok("accessories", w.hapctl.alias).json()
    wanted = {full_uuid(k): k for k in (BRIGHTNESS, COLOR_TEMPERATURE, TRANSITION_CONTROL,
                                         SUPPORTED_CONFIGURATION, ACTIVE_COUNT)}
    for accessory in tree["accessories"]:
        for service in accessory["services"]:
            found = {wanted[full_uuid(c["type"])]: c for c in service["characteristics"]
                     if full_uuid(c["type"]) in wanted}
            if TRANSITION_CONTROL in found:
                missing = set(wanted.values()) - set(found)
                assert not missing, f"the service with 143 lacks {sorted(missing)}"
                w.aid = accessory["aid"]
                w.iids = {k: c["iid"] for k, c in found.items()}
                perms = found[TRANSITION_CONTROL]["perms"]
                assert "wr" in perms, f"143 perms {perms}: no write response"
                ct = found[COLOR_TEMPERATURE]
                return (f"aid {w.aid}: Brightness {w.iids[BRIGHTNESS]}, ColorTemperature "
                        f"{w.iids[COLOR_TEMPERATURE]} [{ct.get('min')}..{ct.get('max')}], "
                        f"143 {w.iids[TRANSITION_CONTROL]}, 144 "
                        f"{w.iids[SUPPORTED_CONFIGURATION]}, 24B {w.iids[ACTIVE_COUNT]}")
    raise AssertionError("no service with Characteristic Value Transition Control (143)")


def step_supported(w: World) -> str:
    value = w.read_value(SUPPORTED_CONFIGURATION)
    raw = base64.b64decode(value)
    top = parse_tlv(raw)
    kinds = [k for k, _ in top]
    assert kinds == [1, 0, 1], f"top-level types {kinds}, expected a list of two (1, 0, 1)"
    named = {}
    for item in tlv_items(raw, 1):
        fields = tlv_map(item)
        named[read_uint(fields[2])] = read_uint(fields[1])
    want = {1: w.iids[BRIGHTNESS], 2: w.iids[COLOR_TEMPERATURE]}
    assert named == want, f"type -> iid {named}, expected {want}"
    return f"{value} = brightness iid {named[1]}, colour temperature iid {named[2]}"


def step_watch(w: World) -> str:
    w.watch = Watch(w.hapctl, [w.iids[COLOR_TEMPERATURE], w.iids[ACTIVE_COUNT]], w.aid, 90)
    initial = {e.iid: e.value for e in w.watch.wait_initial()}
    count = initial.get(w.iids[ACTIVE_COUNT])
    assert count == 0, f"Active Transition Count {count!r} before any transition"
    return f"subscribed; ColorTemperature {initial.get(w.iids[COLOR_TEMPERATURE])}, count 0"


def set_brightness(w: World, value: int) -> tuple[float, float]:
    sent = time.monotonic()
    w.hapctl.ok("put", w.hapctl.alias, f"{w.char(BRIGHTNESS)}={value}")
    return sent, time.monotonic()


def step_update(w: World) -> str:
    # Full brightness first, so the curve's adjustment is known.
    w.hapctl.ok("put", w.hapctl.alias, "On=true", f"{w.char(BRIGHTNESS)}=100")
    w.transition = Transition.new()
    request = update_request(w.iids[COLOR_TEMPERATURE], w.iids[BRIGHTNESS], w.transition)
    answer, sent, answered = w.put_tlv(request)
    w.put_window = (sent, answered)
    top = tlv_map(answer)
    assert set(top) == {2}, f"answer types {sorted(top)}, expected only 2: {answer.hex()}"
    inner = tlv_map(top[2])
    assert set(inner) == {1}, f"update answer types {sorted(inner)}: {answer.hex()}"
    elapsed = check_status(inner[1], w.iids[COLOR_TEMPERATURE], w.transition)
    assert elapsed == 0, f"time since start {elapsed} in the UPDATE answer, expected 0"
    fragments = sum(1 for at in range(0, len(request), 257) if request[at] == 2)
    return (f"{len(request)} bytes ({len(CURVE)} entries; the outer item in {fragments} "
            f"fragments) answered {answer.hex()[:20]}…, id, start and id3 echoed")


def elapsed_bounds(w: World, event: Event) -> tuple[float, float]:
    """When (ms since the UPDATE took effect) the step behind `event` may have been."""
    sent, answered = w.put_window
    return ((event.at - answered - TIME_TOLERANCE) * 1000,
            (event.at - sent + CLOCK_JITTER) * 1000)


def fits(w: World, event: Event, brightness: float) -> bool:
    low, high = elapsed_bounds(w, event)
    span = curve_span(low, high, brightness)
    return span is not None and \
        span[0] - MIRED_TOLERANCE <= event.value <= span[1] + MIRED_TOLERANCE


def ct_events(w: World, since: float, until: float = math.inf) -> list[Event]:
    assert w.watch
    return [e for e in w.watch.collect() if not e.initial
            and e.iid == w.iids[COLOR_TEMPERATURE] and since <= e.at <= until]


def wait_elapsed(w: World, seconds: float) -> None:
    """Until `seconds` after the UPDATE was answered."""
    delay = w.put_window[1] + seconds - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def non_increasing(values: list[Any]) -> bool:
    return all(a >= b for a, b in zip(values, values[1:]))


def describe(w: World, events: list[Event], brightness: float) -> str:
    out = []
    for e in events:
        low, high = elapsed_bounds(w, e)
        span = curve_span(low, high, brightness)
        out.append(f"{e.value}@{(e.at - w.put_window[1]):.1f}s(curve {span})")
    return ", ".join(out)


def step_follows(w: World) -> str:
    assert w.watch
    w.watch.wait_for(lambda e: e.iid == w.iids[ACTIVE_COUNT] and e.value == 1, STEP)
    wait_elapsed(w, 6.5)
    events = ct_events(w, w.put_window[0])
    values = [e.value for e in events]
    off = [e for e in events if not fits(w, e, 100)]
    assert not off, f"off the curve: {describe(w, off, 100)}; all: {values}"
    assert len(set(values)) >= 4, \
        f"{len(set(values))} distinct values in 6.5 s, expected at least 4: {values}"
    assert non_increasing(values), f"the curve falls, the values do not: {values}"
    return f"count 1, then ColorTemperature {values} along 400→300 at brightness 100"


def step_brightness(w: World) -> str:
    sent, answered = set_brightness(w, 30)
    w.brightness_window = (sent, answered)
    wait_elapsed(w, 13.0)
    before = ct_events(w, w.put_window[0], sent)
    during = ct_events(w, sent, answered + TIME_TOLERANCE)
    after = ct_events(w, answered + TIME_TOLERANCE)
    off = [e for e in during if not (fits(w, e, 100) or fits(w, e, 30))]
    off += [e for e in before if not fits(w, e, 100)]
    off += [e for e in after if not fits(w, e, 30)]
    assert not off, f"off the curve: {describe(w, off, 30)}"
    adjusted = [e for e in during + after if fits(w, e, 30) and not fits(w, e, 100)]
    assert len(adjusted) >= 2, \
        f"{len(adjusted)} values only brightness 30 explains, expected 2 or more: " \
        f"{describe(w, during + after, 30)}"
    values = [e.value for e in after]
    assert non_increasing(values), f"the curve falls, the values do not: {values}"
    return f"after Brightness 30: {[e.value for e in during + after]} (curve at 30)"


def step_read_status(w: World) -> str:
    assert w.transition
    read_at = time.monotonic()
    value = w.read_value(TRANSITION_CONTROL)
    raw = base64.b64decode(value)
    top = tlv_map(raw)
    assert set(top) == {1}, f"types {sorted(top)}, expected only 1: {raw.hex()}"
    elapsed = check_status(top[1], w.iids[COLOR_TEMPERATURE], w.transition)
    low = (read_at - w.put_window[1] - TIME_TOLERANCE) * 1000
    high = (time.monotonic() - w.put_window[0] + CLOCK_JITTER) * 1000
    assert elapsed > 0 and low <= elapsed <= high, \
        f"time since start {elapsed} ms, expected {low:.0f} to {high:.0f}"
    return f"iid and parameters echoed, {elapsed} ms since the start"


def step_manual(w: World) -> str:
    assert w.watch
    sent = time.monotonic()
    w.hapctl.ok("put", w.hapctl.alias, f"{w.char(COLOR_TEMPERATURE)}=200")
    answered = time.monotonic()
    w.watch.wait_for(lambda e: e.iid == w.iids[ACTIVE_COUNT] and e.value == 0 and e.at >= sent,
                     5)
    time.sleep(max(0.0, answered + 3.5 - time.monotonic()))
    # A step just before the write may still arrive with it; later, only the write's 200.
    late = [e.value for e in ct_events(w, answered + 0.5) if e.value != 200]
    assert not late, f"steps after the manual write: {late}"
    value = w.read_value(COLOR_TEMPERATURE)
    assert value == 200, f"ColorTemperature reads {value} after the manual 200"
    status = w.read_value(TRANSITION_CONTROL)
    assert status == "", f"143 reads {status!r} after the end, expected \"\""
    return "count 0, ColorTemperature stays 200 for 3 s, 143 reads \"\""


def step_stop(w: World) -> str:
    assert w.watch
    w.transition = Transition.new()
    answer, sent, _ = w.put_tlv(
        update_request(w.iids[COLOR_TEMPERATURE], w.iids[BRIGHTNESS], w.transition))
    assert answer[:1] == b"\x02", f"the second UPDATE answered {answer.hex()}"
    w.watch.wait_for(lambda e: e.iid == w.iids[ACTIVE_COUNT] and e.value == 1 and e.at >= sent,
                     5)
    answer, sent, _ = w.put_tlv(stop_request(w.iids[COLOR_TEMPERATURE]))
    assert answer == b"\x02\x00", f"the stop answered {answer.hex()}, expected 0200"
    w.watch.wait_for(lambda e: e.iid == w.iids[ACTIVE_COUNT] and e.value == 0 and e.at >= sent,
                     5)
    status = w.read_value(TRANSITION_CONTROL)
    assert status == "", f"143 reads {status!r} after the stop, expected \"\""
    return "started (count 1), stopped with 0200 (count 0), 143 reads \"\""


def step_restart(w: World) -> str:
    assert w.accessory
    if w.watch:
        w.watch.stop()
        w.watch = None
    w.transition = Transition.new()
    answer, sent, answered = w.put_tlv(
        update_request(w.iids[COLOR_TEMPERATURE], w.iids[BRIGHTNESS], w.transition))
    w.put_window = (sent, answered)
    assert answer[:1] == b"\x02", f"the UPDATE answered {answer.hex()}"
    time.sleep(2.0)
    w.accessory.stop()
    w.start()
    restarted = time.monotonic()
    value = w.read_value(TRANSITION_CONTROL)
    assert value, "143 reads \"\" after the restart: the transition was not kept"
    raw = base64.b64decode(value)
    top = tlv_map(raw)
    assert set(top) == {1}, f"143 after the restart: types {sorted(top)}: {raw.hex()}"
    elapsed = check_status(top[1], w.iids[COLOR_TEMPERATURE], w.transition)
    low = (restarted - answered - TIME_TOLERANCE) * 1000
    assert elapsed >= low, \
        f"time since start {elapsed} ms after the restart, expected at least {low:.0f}"
    brightness = w.read_value(BRIGHTNESS)
    w.watch = Watch(w.hapctl, [w.iids[COLOR_TEMPERATURE], w.iids[ACTIVE_COUNT]], w.aid, 30)
    initial = {e.iid: e for e in w.watch.wait_initial()}
    count = initial[w.iids[ACTIVE_COUNT]].value
    assert count == 1, f"Active Transition Count {count!r} after the restart, expected 1"
    first = initial[w.iids[COLOR_TEMPERATURE]]
    assert fits(w, first, brightness), \
        f"ColorTemperature {describe(w, [first], brightness)} after the restart"
    watched = time.monotonic()
    # 14 s into the curve, but at least 3 s of watching, however slow the restart was.
    time.sleep(max(0.0, max(w.put_window[1] + 14.0, watched + 3.0) - time.monotonic()))
    events = ct_events(w, watched)
    off = [e for e in events if not fits(w, e, brightness)]
    assert not off, f"off the curve after the restart: {describe(w, off, brightness)}"
    assert len(events) >= 2, \
        f"{len(events)} steps in {time.monotonic() - watched:.1f} s after the restart, " \
        f"expected 2 or more"
    return (f"143 kept ({elapsed} ms since the start), count 1, ColorTemperature "
            f"{first.value} then {[e.value for e in events]} at brightness {brightness}")


STEPS = [
    ("pair", step_pair),
    ("tree", step_tree),
    ("supported configuration (144)", step_supported),
    ("watch", step_watch),
    ("update (143 write response)", step_update),
    ("events follow the curve", step_follows),
    ("brightness adjusts the curve", step_brightness),
    ("read 143 status", step_read_status),
    ("manual write ends it", step_manual),
    ("stop by UPDATE with only the iid", step_stop),
    ("restart keeps the transition", step_restart),
]
# Without these, the later steps have nothing to work with.
REQUIRED = {"pair", "tree", "watch", "update (143 write response)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hapctl", type=Path, required=True)
    parser.add_argument("--binary", type=Path, help="virtual-light (run with --adaptive)")
    parser.add_argument("--command", help="another accessory's command line, with {port}, "
                        "{pin}, {data} and {host} filled in")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    if not args.binary and not args.command:
        parser.error("give --binary or --command")
    # The backstop's SIGTERM ends the run through the finally below, which stops the
    # accessory and the watch by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="adaptive-"))
    world = World(args, scratch)
    started = time.monotonic()
    try:
        for name, body in STEPS:
            if not world.check(name, body) and name in REQUIRED:
                print(f"adaptive: stopping after {name!r} failed", flush=True)
                break
    finally:
        if world.watch:
            world.watch.stop()
        if world.accessory:
            world.accessory.stop()
        if args.keep or world.failed:
            print(f"adaptive: scratch files (the accessory's log) in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    total = len(STEPS)
    skipped = total - world.passed - world.failed
    print(f"adaptive: {world.passed} passed, {world.failed} failed"
          + (f", {skipped} not run" if skipped else "")
          + f" in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if world.failed == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
