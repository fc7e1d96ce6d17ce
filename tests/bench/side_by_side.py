"""Side-by-side benchmark: our virtual light, HAP-python 5.0.0 and HAP-NodeJS 1.2.0.

Run it through tests/bench/run.sh, which installs the peers and builds the light. Each
accessory runs as its own process on 127.0.0.1, without mDNS, and the same controller,
aiohomekit, drives all three in turn. Costs are the accessory process's own CPU time,
read from /proc/PID/task/*/schedstat (nanoseconds on CPU, summed over its threads)
around each operation or batch, and its VmRSS. Nothing is timed inside the accessory.

Measured per accessory:
- CPU per pair-setup (M1 to M6, by address), unpaired again between rounds;
- CPU per pair-verify (connect, verify, close);
- CPU per characteristic read and per write on one verified session;
- latency of the first event: controller B writes On, and the time until controller A,
  subscribed on its own connection, hears it; each trial waits out every accessory's
  coalescing window first. Also how many events A hears for a burst of 20 writes;
- RSS once paired and idle, and with 16 verified, subscribed sessions;
- for ours, aggregate operations per second of the accessory's CPU with 16 concurrent
  controllers (tests/bench's hap-load, built on hap-core's controller role);
- for ours, the floor: the CPU of tests/bench's hap-echo, a bare TCP echo server on smol
  set up as the light is, for a connection with two round trips (a pair-verify's
  traffic) and for one round trip (a read's), paced by the same asyncio loop.

It prints a table with each peer's ratio to ours and whether each target holds, and
writes the numbers as JSON (--out). With --check it exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PIN = "031-45-154"
ON = "00000025-0000-1000-8000-0026BB765291"
BRIGHTNESS = "00000008-0000-1000-8000-0026BB765291"
STEP_TIMEOUT = 30.0
# Longer than every accessory's event coalescing window (ours 1 s, HAP-python 0.5 s,
# HAP-NodeJS 0.25 s), so each trial's event is a first one.
EVENT_SPACING = 1.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid: int) -> int:
    """Nanoseconds the process's threads have spent on a CPU."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Accessory:
    """One accessory process: started, waited for, stopped by its PID."""

    def __init__(self, name: str, command: list[str], port: int, log: Path,
                 env: dict[str, str] | None = None):
        self.name, self.command, self.port, self.log, self.env = name, command, port, log, env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # Output goes to the log file, not a pipe: a pipe would wake a reader thread here
        # for every line an accessory prints, and charge that wake-up to the accessory.
        with open(self.log, "ab") as log:
            start = log.tell()
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + 60
        seen = ""
        while time.monotonic() < deadline:
            with open(self.log, "rb") as log:
                log.seek(start)
                seen = log.read().decode(errors="replace")
            for line in seen.splitlines():
                if line.startswith("listening on"):
                    self.port = int(line.rsplit(":", 1)[1])
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start: {seen} (log: {self.log})")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
# The same zeroconf stub serves aiohomekit here: accessories are reached by address.
from hap_python_light import NoMdns  # noqa: E402


@dataclass
class Results:
    pair_setup_ms: list[float] = field(default_factory=list)
    pair_verify_ms: list[float] = field(default_factory=list)
    read_us: list[float] = field(default_factory=list)
    write_us: list[float] = field(default_factory=list)
    event_ms: list[float] = field(default_factory=list)
    burst_events: int = 0
    rss_idle_kib: int = 0
    rss_sessions_kib: int = 0
    load: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        median = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        return {
            "pair_setup_ms": median(self.pair_setup_ms),
            "pair_setup_first_ms": self.pair_setup_ms[0] if self.pair_setup_ms else None,
            "pair_verify_ms": median(self.pair_verify_ms),
            "read_us": median(self.read_us),
            "write_us": median(self.write_us),
            "event_ms": median(self.event_ms),
            "burst_events": self.burst_events,
            "rss_idle_mib": self.rss_idle_kib / 1024,
            "rss_sessions_mib": self.rss_sessions_kib / 1024,
            "load": self.load,
            "samples": {
                "pair_setup_ms": self.pair_setup_ms, "pair_verify_ms": self.pair_verify_ms,
                "read_us": self.read_us, "write_us": self.write_us, "event_ms": self.event_ms,
            },
        }


async def settle(seconds: float = 0.05) -> None:
    """Lets the accessory finish what the last exchange started (a close, a store)."""
    await asyncio.sleep(seconds)


async def measure(accessory: Accessory, rounds: dict[str, int], load_command: list[str] | None,
                  scratch: Path) -> Results:
    from aiohomekit.characteristic_cache import CharacteristicCacheMemory
    from aiohomekit.controller.ip.controller import IpController
    from aiohomekit.controller.ip.discovery import IpDiscovery
    from aiohomekit.controller.ip.pairing import IpPairing
    from aiohomekit.model.categories import Categories
    from aiohomekit.model.feature_flags import FeatureFlags
    from aiohomekit.model.status_flags import StatusFlags
    from aiohomekit.zeroconf import HomeKitService

    results = Results()
    pid = accessory.pid
    controller = IpController(CharacteristicCacheMemory(), NoMdns())

    async def pair() -> Any:
        description = HomeKitService(
            name=accessory.name, id="00:00:00:00:00:00", model="", feature_flags=FeatureFlags(0),
            status_flags=StatusFlags(1), config_num=1, state_num=1, category=Categories(5),
            protocol_version="1.1", type="_hap._tcp.local.", address="127.0.0.1",
            addresses=["127.0.0.1"], port=accessory.port)
        discovery = IpDiscovery(controller, description)
        try:
            finish = await asyncio.wait_for(discovery.async_start_pairing("bench"), STEP_TIMEOUT)
            return await asyncio.wait_for(finish(PIN), STEP_TIMEOUT)
        finally:
            await discovery.close()

    # Pair-setup, then unpair by removing our own pairing, and again.
    pairing = None
    for round_number in range(rounds["pair_setup"]):
        await settle(0.2)
        before = cpu_ns(pid)
        pairing = await pair()
        await settle()
        results.pair_setup_ms.append((cpu_ns(pid) - before) / 1e6)
        if round_number + 1 < rounds["pair_setup"]:
            await asyncio.wait_for(
                pairing.remove_pairing(pairing.pairing_data["iOSPairingId"]), STEP_TIMEOUT)
            await pairing.close()
    assert pairing is not None
    data = dict(pairing.pairing_data)
    await pairing.close()
    await settle(1.0)
    results.rss_idle_kib = rss_kib(pid)

    # Pair-verify: a new connection each time.
    for _ in range(rounds["pair_verify"]):
        session = IpPairing(controller, data)
        before = cpu_ns(pid)
        await asyncio.wait_for(session._ensure_connected(), STEP_TIMEOUT)
        await session.close()
        await settle(0.02)
        results.pair_verify_ms.append((cpu_ns(pid) - before) / 1e6)

    session = IpPairing(controller, data)
    accessories = await asyncio.wait_for(
        session.list_accessories_and_characteristics(), STEP_TIMEOUT)
    aid = accessories[0]["aid"]
    iids = {c["type"].upper(): c["iid"] for s in accessories[0]["services"]
            for c in s["characteristics"]}
    on = iids.get(ON) or iids["25"]
    brightness = iids.get(BRIGHTNESS) or iids["8"]

    # Reads and writes, in batches; each batch gives one mean.
    async def batch(operation) -> float:
        count = rounds["batch"]
        await settle()
        before = cpu_ns(pid)
        for index in range(count):
            await operation(index)
        await settle()
        return (cpu_ns(pid) - before) / count / 1e3

    async def read(_: int) -> None:
        await session.get_characteristics([(aid, on)])

    async def write(index: int) -> None:
        await session.put_characteristics([(aid, brightness, 20 + index % 2)])

    for _ in range(20):  # warm-up
        await read(0)
        await write(0)
    for _ in range(rounds["batches"]):
        results.read_us.append(await batch(read))
        results.write_us.append(await batch(write))

    # Events: B writes On, A hears it.
    listener, writer = IpPairing(controller, data), IpPairing(controller, data)
    heard: list[float] = []
    wakeup = asyncio.Event()

    def on_event(event: dict) -> None:
        if (aid, on) in event:
            heard.append(time.perf_counter())
            wakeup.set()

    listener.dispatcher_connect(on_event)
    await asyncio.wait_for(listener.subscribe([(aid, on)]), STEP_TIMEOUT)
    await asyncio.wait_for(writer.get_characteristics([(aid, on)]), STEP_TIMEOUT)
    value = False
    for _ in range(rounds["events"]):
        await asyncio.sleep(EVENT_SPACING)
        heard.clear()
        wakeup.clear()
        value = not value
        started = time.perf_counter()
        await asyncio.wait_for(writer.put_characteristics([(aid, on, value)]), STEP_TIMEOUT)
        await asyncio.wait_for(wakeup.wait(), 5)
        results.event_ms.append((heard[0] - started) * 1e3)
    # A burst: 20 writes back to back; coalescing should send only a few events.
    await asyncio.sleep(EVENT_SPACING)
    heard.clear()
    for _ in range(20):
        value = not value
        await asyncio.wait_for(writer.put_characteristics([(aid, on, value)]), STEP_TIMEOUT)
    await asyncio.sleep(2 * EVENT_SPACING)
    results.burst_events = len(heard)
    await listener.close()
    await writer.close()
    await session.close()

    # Memory with 16 verified sessions, each subscribed as a Home app would be.
    sessions = [IpPairing(controller, data) for _ in range(16)]
    for one in sessions:
        await asyncio.wait_for(one.subscribe([(aid, on), (aid, brightness)]), STEP_TIMEOUT)
        await asyncio.wait_for(one.get_characteristics([(aid, on)]), STEP_TIMEOUT)
    await settle(1.0)
    results.rss_sessions_kib = rss_kib(pid)
    for one in sessions:
        await one.close()
    await settle(0.5)

    if load_command is not None:
        pairing_file = scratch / "pairing.json"
        pairing_file.write_text(json.dumps(data))
        command = load_command + [
            "--address", f"127.0.0.1:{accessory.port}", "--pairing", str(pairing_file),
            "--aid", str(aid), "--read", str(on), "--write", str(brightness),
            "--controllers", "16", "--seconds", str(rounds["load_seconds"])]
        before = cpu_ns(pid)
        run = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        stdout, _ = await asyncio.wait_for(run.communicate(), rounds["load_seconds"] + 60)
        spent = (cpu_ns(pid) - before) / 1e9
        if run.returncode != 0:
            raise RuntimeError(f"hap-load failed ({run.returncode})")
        load = json.loads(stdout)
        load["accessory_cpu_seconds"] = spent
        load["ops_per_second"] = load["operations"] / load["seconds"]
        load["ops_per_cpu_second"] = load["operations"] / spent
        results.load = load
    return results


async def measure_floor(echo: Accessory, rounds: dict[str, int]) -> dict[str, list[float]]:
    """The echo server's CPU for what a pair-verify and a read cost the light, less the
    HAP work: a connection with two round trips, and one round trip on an open connection.
    The messages are a GET's size and paced by this asyncio loop, so the server sleeps and
    wakes as the light does."""
    message = b"r" * 160

    async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(message)
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(len(message)), STEP_TIMEOUT)

    async def close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        await writer.wait_closed()

    connection_us = []
    for _ in range(rounds["pair_verify"]):
        before = cpu_ns(echo.pid)
        reader, writer = await asyncio.open_connection("127.0.0.1", echo.port)
        await round_trip(reader, writer)
        await round_trip(reader, writer)
        await close(writer)
        await settle(0.02)
        connection_us.append((cpu_ns(echo.pid) - before) / 1e3)

    reader, writer = await asyncio.open_connection("127.0.0.1", echo.port)
    for _ in range(20):  # warm-up
        await round_trip(reader, writer)
    round_trip_us = []
    for _ in range(rounds["batches"]):
        await settle()
        before = cpu_ns(echo.pid)
        for _ in range(rounds["batch"]):
            await round_trip(reader, writer)
        await settle()
        round_trip_us.append((cpu_ns(echo.pid) - before) / rounds["batch"] / 1e3)
    await close(writer)
    return {"floor_connection_ms": [us / 1e3 for us in connection_us],
            "floor_round_trip_us": round_trip_us}


# (key, label, unit, target for ours or None)
ROWS = [
    ("pair_setup_ms", "CPU per pair-setup", "ms", 2.5),
    ("pair_verify_ms", "CPU per pair-verify", "ms", 0.15),
    ("floor_connection_ms", "  floor: connect, 2 round trips, close (echo server)", "ms", None),
    ("read_us", "CPU per characteristic read", "µs", 12.0),
    ("write_us", "CPU per characteristic write", "µs", 12.0),
    ("floor_round_trip_us", "  floor: one round trip (echo server)", "µs", None),
    ("event_ms", "first event after a change, p50", "ms", 2.0),
    ("burst_events", "events heard for a burst of 20 changes", "", None),
    ("rss_idle_mib", "RSS, paired and idle", "MiB", None),
    ("rss_sessions_mib", "RSS with 16 sessions", "MiB", 8.0),
]
# Ratios the issue asks of the peers: (key, peer, at least this many times ours).
PEER_TARGETS = [("pair_setup_ms", "hap-python", 12.0), ("read_us", "hap-python", 10.0),
                ("write_us", "hap-python", 10.0)]


def report(summaries: dict[str, dict[str, Any]], machine: str) -> tuple[str, bool]:
    names = [n for n in ("ours", "hap-python", "hap-nodejs") if n in summaries]
    ours = summaries.get("ours", {})
    lines = [f"machine: {machine}", ""]
    header = ["cost"] + names + [f"{n} / ours" for n in names if n != "ours"] + ["target", "met"]
    table = [header]
    all_met = True

    def fmt(value: Any, unit: str) -> str:
        if value is None:
            return "-"
        if isinstance(value, int):
            return f"{value}"
        digits = 3 if value < 1 else 2 if value < 10 else 1
        return f"{value:.{digits}f} {unit}".strip()

    for key, label, unit, target in ROWS:
        row = [label] + [fmt(summaries[n].get(key), unit) for n in names]
        for n in names:
            if n == "ours":
                continue
            mine, theirs = ours.get(key), summaries[n].get(key)
            row.append(f"{theirs / mine:.1f}×" if mine and theirs else "-")
        checks = []
        if target is not None and ours.get(key) is not None:
            checks.append(ours[key] <= target)
            row.append(f"≤ {target:g} {unit}")
        else:
            row.append("")
        for peer_key, peer, factor in PEER_TARGETS:
            if peer_key == key and peer in summaries and ours.get(key):
                ratio = summaries[peer][key] / ours[key]
                checks.append(ratio >= factor)
                row[-1] += f", ≥ {factor:g}× less than {peer}"
        met = all(checks) if checks else None
        all_met &= met is not False
        row.append({True: "yes", False: "NO", None: ""}[met])
        table.append(row)
    load = ours.get("load")
    if load:
        per_core = load["ops_per_cpu_second"]
        met = per_core >= 50_000
        all_met &= met
        table.append(["operations with 16 controllers, per accessory CPU-second (ours)",
                      f"{per_core:,.0f}/s"] + [""] * (len(header) - 4)
                     + ["≥ 50,000/s", "yes" if met else "NO"])
        table.append(["  the same, per second of wall time", f"{load['ops_per_second']:,.0f}/s"]
                     + [""] * (len(header) - 2))
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for index, row in enumerate(table):
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * w for w in widths))
    first = ours.get("pair_setup_first_ms")
    if first is not None:
        lines.append("")
        lines.append(f"ours: the first pair-setup also builds the SRP tables: {first:.1f} ms CPU")
    return "\n".join(lines), all_met


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--light", required=True, help="our virtual-light binary (release)")
    parser.add_argument("--load", help="the hap-load binary; without it, no load run")
    parser.add_argument("--echo", help="the hap-echo binary; without it, no floor is measured")
    parser.add_argument("--node-dir", help="a directory with hap-nodejs installed")
    parser.add_argument("--only", action="append", choices=["ours", "hap-python", "hap-nodejs"])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for CI")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    rounds = {"pair_setup": 5, "pair_verify": 30, "batch": 400, "batches": 5, "events": 15,
              "load_seconds": 5}
    if args.quick:
        rounds = {"pair_setup": 3, "pair_verify": 10, "batch": 200, "batches": 3, "events": 5,
                  "load_seconds": 2}
    here = Path(__file__).resolve().parent
    targets = args.only or ["ours", "hap-python", "hap-nodejs"]
    summaries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hap-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for name in targets:
            data = scratch / name
            data.mkdir()
            port = free_port()
            if name == "ours":
                command = [str(Path(args.light).resolve()), "--bind", "127.0.0.1", "--port", "0",
                           "--no-mdns", "--pin", PIN, "--data", str(data)]
            elif name == "hap-python":
                command = [sys.executable, str(here / "peers" / "hap_python_light.py"),
                           "--port", str(port), "--pin", PIN, "--data", str(data)]
            else:
                if not args.node_dir:
                    parser.error("hap-nodejs needs --node-dir")
                command = ["node", str(here / "peers" / "hap-nodejs" / "light.js"),
                           "--port", str(port), "--pin", PIN, "--data", str(data),
                           "--username", "4E:A1:5C:00:00:02"]
            env = None
            if name == "hap-nodejs":
                # light.js lives in the repository, hap-nodejs in the scratch install.
                env = dict(os.environ, NODE_PATH=str(Path(args.node_dir).resolve()
                                                     / "node_modules"))
            accessory = Accessory(name, command, port, scratch / f"{name}.log", env)
            print(f"bench: {name}: starting", flush=True)
            accessory.start()
            try:
                load = [str(Path(args.load).resolve())] if name == "ours" and args.load else None
                results = asyncio.run(measure(accessory, rounds, load, scratch))
            except BaseException:
                print(f"bench: {name} failed; its log:\n"
                      + (scratch / f"{name}.log").read_text(errors="replace")[-4000:],
                      file=sys.stderr)
                raise
            finally:
                accessory.stop()
            summaries[name] = results.summary()
            if name == "ours" and args.echo:
                echo = Accessory("echo", [str(Path(args.echo).resolve())], 0,
                                 scratch / "echo.log")
                echo.start()
                try:
                    floors = asyncio.run(measure_floor(echo, rounds))
                finally:
                    echo.stop()
                for key, samples in floors.items():
                    summaries[name][key] = statistics.median(samples)
                    summaries[name]["samples"][key] = samples
            print(f"bench: {name}: done", flush=True)
    text, all_met = report(summaries, machine())
    print()
    print(text)
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "rounds": rounds,
                                        "results": summaries}, indent=2) + "\n")
    print()
    if "ours" not in summaries:
        print("bench: ours was not measured, so no target was checked")
        return 0
    print("bench: every target met" if all_met else "bench: a target was missed")
    return 1 if args.check and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
