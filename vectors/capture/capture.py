"""Records HAP exchanges between HAP-python (the accessory) and aiohomekit (the
controller) on loopback, with every random value drawn from a seeded source.

Run it with `vectors/capture/run.sh`; `vectors/README.md` describes the files it writes.

Both peers run in this one process, on one event loop, and take turns: the controller
sends a request, the accessory answers, and so on. Their randomness is patched at the
points where they draw it (`os.urandom`, X25519 and Ed25519 key generation, HAP-python's
`random` instance), and each value comes from SHA-512 of a fixed seed, the drawing side
and a counter. The exchange therefore repeats exactly, and so do the files.

A recording proxy between them keeps each connection's bytes as they crossed the wire.
The tool then splits them into HTTP messages, and after pair-verify into encrypted frames,
which it decrypts with session keys it derives from the recorded ephemeral keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

SEED = b"hap-rs vectors, version 1"


# ---------------------------------------------------------------------------------------
# Seeded randomness, recorded.


class Randomness:
    """Every random value of both peers: SHA-512(seed, side, counter), in draw order."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.draws: list[dict[str, Any]] = []

    def draw(self, what: str, length: int) -> bytes:
        side, where = caller()
        counter = self.counters.get(side, 0)
        self.counters[side] = counter + 1
        out = b""
        block = 0
        while len(out) < length:
            material = SEED + side.encode() + counter.to_bytes(8, "big") + block.to_bytes(4, "big")
            out += hashlib.sha512(material).digest()
            block += 1
        out = out[:length]
        self.draws.append({"side": side, "what": what, "where": where, "hex": out.hex()})
        return out


def caller() -> tuple[str, str]:
    """Which peer asks for randomness, and from where (module.function)."""
    frame = sys._getframe(2)
    while frame:
        path = frame.f_code.co_filename.replace("\\", "/")
        for package, side in (("/pyhap/", "accessory"), ("/aiohomekit/", "controller")):
            if package in path:
                module = path.split(package, 1)[1].removesuffix(".py").replace("/", ".")
                return side, f"{package.strip('/')}.{module}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "tool", "capture"


RANDOMNESS = Randomness()


def patch_randomness() -> None:
    """Routes both peers' randomness through `RANDOMNESS`. Must run before they start."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    os.urandom = lambda length: RANDOMNESS.draw("os.urandom", length)  # also uuid.uuid4
    x25519.X25519PrivateKey.generate = staticmethod(
        lambda: x25519.X25519PrivateKey.from_private_bytes(RANDOMNESS.draw("x25519 secret", 32)))
    ed25519.Ed25519PrivateKey.generate = staticmethod(
        lambda: ed25519.Ed25519PrivateKey.from_private_bytes(RANDOMNESS.draw("ed25519 seed", 32)))

    import pyhap.util

    class SeededRandom(random.Random):
        """HAP-python's `random.SystemRandom`, made to draw from the recorded stream."""

        def getrandbits(self, k: int) -> int:
            return int.from_bytes(RANDOMNESS.draw("random", (k + 7) // 8), "big") >> (-k % 8)

        def random(self) -> float:
            return self.getrandbits(53) / (1 << 53)

    pyhap.util.rand = SeededRandom()


# ---------------------------------------------------------------------------------------
# The wire.


@dataclass
class Connection:
    """The bytes of one TCP connection, per direction, as the proxy forwarded them."""

    to_accessory: bytearray = field(default_factory=bytearray)
    to_controller: bytearray = field(default_factory=bytearray)


class Proxy:
    """Forwards 127.0.0.1:port to the accessory, keeping every byte."""

    def __init__(self, accessory_port: int):
        self.accessory_port = accessory_port
        self.connections: list[Connection] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection()
        self.connections.append(connection)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.accessory_port)

        async def pump(source, sink, keep: bytearray) -> None:
            try:
                while data := await source.read(65536):
                    keep += data
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pump(reader, up_writer, connection.to_accessory),
                                 pump(up_reader, writer, connection.to_controller))

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()


# ---------------------------------------------------------------------------------------
# Splitting and decrypting what crossed the wire.


def take_http(stream: bytes, at: int) -> tuple[bytes, int] | None:
    """One whole HTTP message (or EVENT) from `stream` at `at`, with its end."""
    head_end = stream.find(b"\r\n\r\n", at)
    if head_end < 0:
        return None
    head = stream[at:head_end].decode("latin-1")
    length = 0
    chunked = False
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    end = head_end + 4
    if chunked:
        while True:
            line_end = stream.find(b"\r\n", end)
            size = int(stream[end:line_end].split(b";")[0], 16)
            end = line_end + 2 + size + 2
            if size == 0:
                break
    else:
        end += length
    if end > len(stream):
        return None
    return bytes(stream[at:end]), end


def tlv_items(body: bytes) -> dict[int, bytes]:
    """A TLV8 body's items, fragments joined."""
    items: dict[int, bytes] = {}
    at = 0
    last = None
    while at + 2 <= len(body):
        kind, length = body[at], body[at + 1]
        value = body[at + 2:at + 2 + length]
        items[kind] = items.get(kind, b"") + value if kind == last else value
        last = kind
        at += 2 + length
    return items


def session_keys(shared: bytes) -> tuple[bytes, bytes]:
    """(controller-to-accessory, accessory-to-controller) keys for a shared secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def derive(info: bytes) -> bytes:
        return HKDF(hashes.SHA512(), 32, b"Control-Salt", info).derive(shared)

    return derive(b"Control-Write-Encryption-Key"), derive(b"Control-Read-Encryption-Key")


def open_frames(stream: bytes, at: int, key: bytes) -> list[dict[str, str]]:
    """Decrypts the frames of `stream` from `at`, with counters from 0."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    cipher = ChaCha20Poly1305(key)
    frames = []
    counter = 0
    while at + 2 <= len(stream):
        length = int.from_bytes(stream[at:at + 2], "little")
        end = at + 2 + length + 16
        frame = bytes(stream[at:end])
        nonce = b"\0\0\0\0" + counter.to_bytes(8, "little")
        plaintext = cipher.decrypt(nonce, frame[2:], frame[:2])
        frames.append({"wire": frame.hex(), "plaintext": plaintext.hex()})
        counter += 1
        at = end
    return frames


def messages_of(frames: list[dict[str, str]]) -> list[bytes]:
    """The HTTP messages that the plaintexts of `frames` carry, in order."""
    stream = b"".join(bytes.fromhex(f["plaintext"]) for f in frames)
    out, at = [], 0
    while (taken := take_http(stream, at)) is not None:
        message, at = taken
        out.append(message)
    assert at == len(stream), "frames end inside a message"
    return out


def label(request: bytes) -> str:
    """What a request does, for the reader: method and path, and the /pairings method."""
    start = request.split(b"\r\n", 1)[0].decode()
    method, target = start.split(" ")[:2]
    path = target.split("?")[0]
    if path == "/pairings":
        kind = tlv_items(request.split(b"\r\n\r\n", 1)[1]).get(0, b"\0")[0]
        return {3: "pairings add", 4: "pairings remove", 5: "pairings list"}.get(kind, "pairings")
    if method == "PUT" and path == "/characteristics" and b'"ev"' in request and b'"value"' not in request:
        return "subscribe"
    return f"{method} {path}"


def x25519_secret_for(public: bytes) -> bytes:
    """The recorded X25519 secret whose public key is `public`."""
    from cryptography.hazmat.primitives.asymmetric import x25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    for draw in RANDOMNESS.draws:
        if draw["what"] == "x25519 secret":
            secret = bytes.fromhex(draw["hex"])
            key = x25519.X25519PrivateKey.from_private_bytes(secret)
            if key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == public:
                return secret
    raise AssertionError("an X25519 public key that no recorded secret gives")


def transcript(connection: Connection) -> dict[str, Any]:
    """The connection as messages: plaintext HTTP until pair-verify ends, then frames."""
    up, down = bytes(connection.to_accessory), bytes(connection.to_controller)
    messages: list[dict[str, Any]] = []
    up_at = down_at = 0
    keys = None
    while True:
        request = take_http(up, up_at)
        if request is None:
            break
        text, up_at = request
        messages.append({"from": "controller", "http": text.hex()})
        response = take_http(down, down_at)
        if response is None:
            break
        answer, down_at = response
        messages.append({"from": "accessory", "http": answer.hex()})
        if text.startswith(b"POST /pair-verify"):
            body = answer.split(b"\r\n\r\n", 1)[1]
            items = tlv_items(body)
            request_items = tlv_items(text.split(b"\r\n\r\n", 1)[1])
            if items.get(6) == b"\x02" and 3 in items:
                controller_public = request_items[3]
                accessory_public = items[3]
                secret = x25519_secret_for(accessory_public)
                from cryptography.hazmat.primitives.asymmetric import x25519

                shared = x25519.X25519PrivateKey.from_private_bytes(secret).exchange(
                    x25519.X25519PublicKey.from_public_bytes(controller_public))
                pending_keys = session_keys(shared), shared
            if items.get(6) == b"\x04" and 7 not in items:
                keys = pending_keys
                break
    result: dict[str, Any] = {"plaintext": messages}
    if keys:
        (write_key, read_key), shared = keys
        up_frames = open_frames(up, up_at, write_key)
        down_frames = open_frames(down, down_at, read_key)
        result["session"] = {
            "shared_secret": shared.hex(),
            "controller_to_accessory_key": write_key.hex(),
            "accessory_to_controller_key": read_key.hex(),
        }
        result["frames"] = {"controller": up_frames, "accessory": down_frames}
        requests = messages_of(up_frames)
        labels = [label(m) for m in requests]
        responses = []
        for message in messages_of(down_frames):
            # Responses answer requests in order; EVENTs come in between.
            kind = "EVENT" if message.startswith(b"EVENT/") else labels[len(
                [r for r in responses if r["exchange"] != "EVENT"])]
            responses.append({"exchange": kind, "http": message.hex()})
        result["encrypted"] = {
            "controller": [{"exchange": l, "http": m.hex()} for l, m in zip(labels, requests)],
            "accessory": responses,
        }
    else:
        assert up_at == len(up) and down_at == len(down), "bytes left over after plaintext"
    return result


# ---------------------------------------------------------------------------------------
# The peers and the exchanges.

PIN = "031-45-154"
MAC = "1A:2B:3C:4D:5E:6F"


async def record(out_dir: Path) -> None:
    patch_randomness()
    from aiohomekit.characteristic_cache import CharacteristicCacheMemory
    from aiohomekit.controller.ip.controller import IpController
    from aiohomekit.controller.ip.discovery import IpDiscovery
    from aiohomekit.controller.ip.pairing import IpPairing
    from aiohomekit.exceptions import AuthenticationError
    from aiohomekit.model.categories import Categories
    from aiohomekit.model.feature_flags import FeatureFlags
    from aiohomekit.model.status_flags import StatusFlags
    from aiohomekit.zeroconf import HomeKitService
    from pyhap.accessory import Accessory
    from pyhap.accessory_driver import AccessoryDriver
    from pyhap.const import CATEGORY_LIGHTBULB

    class NoMdns:
        """Stands in for both peers' zeroconf: nothing leaves the process."""

        zeroconf = None

        async def async_register_service(self, *_: Any, **__: Any) -> None:
            pass

        async def async_update_service(self, *_: Any, **__: Any) -> None:
            pass

        async def async_unregister_service(self, *_: Any, **__: Any) -> None:
            pass

        async def async_close(self) -> None:
            pass

    class Light(Accessory):
        category = CATEGORY_LIGHTBULB

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bulb = self.add_preload_service("Lightbulb", chars=["Brightness"])
            self.on = bulb.configure_char("On")
            self.brightness = bulb.configure_char("Brightness", setter_callback=self._dim)

        @staticmethod
        def _dim(value: int) -> None:
            """The lamp's driver, which fails at 13%: a write the accessory refuses."""
            if value == 13:
                raise OSError("the dimmer does not answer")

    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        driver = AccessoryDriver(port=port, address="127.0.0.1", persist_file=f"{scratch}/state",
                                 pincode=PIN.encode(), mac=MAC, loop=loop,
                                 async_zeroconf_instance=NoMdns())
        light = Light(driver, "Light")
        driver.add_accessory(light)
        await driver.async_start()
        proxy = Proxy(port)
        await proxy.start()
        controller = IpController(CharacteristicCacheMemory(), NoMdns())

        def description() -> HomeKitService:
            return HomeKitService(
                name="Light", id=MAC.lower(), model="", feature_flags=FeatureFlags(0),
                status_flags=StatusFlags(1), config_num=1, state_num=1,
                category=Categories(5), protocol_version="1.1", type="_hap._tcp.local.",
                address="127.0.0.1", addresses=["127.0.0.1"], port=proxy.port)

        exchanges: list[tuple[str, int]] = []  # (name, connection number)

        async def pair(code: str):
            discovery = IpDiscovery(controller, description())
            try:
                finish = await discovery.async_start_pairing("vectors")
                return await finish(code)
            finally:
                await discovery.close()

        exchanges.append(("pair-setup-wrong-code", len(proxy.connections)))
        try:
            await pair("111-22-333")
        except AuthenticationError:
            pass
        else:
            raise AssertionError("HAP-python accepted the wrong code")
        exchanges.append(("pair-setup", len(proxy.connections)))
        pairing = await pair(PIN)
        controller_data = dict(pairing.pairing_data)

        exchanges.append(("session", len(proxy.connections)))
        session = IpPairing(controller, controller_data)
        accessories = await session.list_accessories_and_characteristics()
        aid = accessories[0]["aid"]
        iids = {c["type"]: c["iid"] for s in accessories[0]["services"]
                for c in s["characteristics"]}
        on = iids["00000025-0000-1000-8000-0026BB765291"]
        brightness = iids["00000008-0000-1000-8000-0026BB765291"]
        model = iids["00000021-0000-1000-8000-0026BB765291"]
        await session.get_characteristics([(aid, on), (aid, brightness)])
        # A read that fails in part: a 207 with a status per item.
        await session.get_characteristics([(aid, on), (aid, 99)])
        await session.put_characteristics([(aid, on, True), (aid, brightness, 70)])
        # A write that fails in part: a 207 with a status per item. (aiohomekit checks
        # writes against its copy of the database, so these go straight to its
        # connection.)
        put = session.connection.put_json
        await put("/characteristics", {"characteristics": [
            {"aid": aid, "iid": on, "value": True}, {"aid": aid, "iid": brightness, "value": 13}]})
        # Writes HAP-python accepts though it should not (vectors/README).
        await put("/characteristics", {"characteristics": [
            {"aid": aid, "iid": brightness, "value": 30}, {"aid": aid, "iid": model, "ev": True}]})
        await put("/characteristics", {"characteristics": [
            {"aid": aid, "iid": on, "value": False}, {"aid": aid, "iid": brightness, "value": 150}]})
        # An unknown iid among the writes, which HAP-python answers with a 500.
        await put("/characteristics", {"characteristics": [
            {"aid": aid, "iid": brightness, "value": 40}, {"aid": aid, "iid": 99, "value": 1}]})
        # A write to a read-only characteristic, which HAP-python accepts (vectors/README).
        await session.put_characteristics([(aid, model, "Other")])
        await session.subscribe([(aid, on)])
        heard = asyncio.Event()
        session.dispatcher_connect(lambda event: heard.set() if (aid, on) in event else None)
        await asyncio.sleep(0.1)
        heard.clear()
        light.on.set_value(not light.on.get_value())
        await asyncio.wait_for(heard.wait(), 5)
        await asyncio.sleep(0.1)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        other_key = Ed25519PrivateKey.generate()
        other_public = other_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        other_id = str(uuid.uuid4()).upper()
        await session.add_pairing(other_id, other_public.hex(), "User")
        await session.list_pairings()
        await session.remove_pairing(other_id)
        await session.close()

        exchanges.append(("pair-verify-unknown-controller", len(proxy.connections)))
        stranger_key = Ed25519PrivateKey.generate()
        stranger = dict(controller_data, iOSPairingId=str(uuid.uuid4()).upper(),
                        iOSDeviceLTSK=stranger_key.private_bytes_raw().hex(),
                        iOSDeviceLTPK=stranger_key.public_key().public_bytes(
                            Encoding.Raw, PublicFormat.Raw).hex())
        unknown = IpPairing(controller, stranger)
        try:
            await unknown.list_accessories_and_characteristics()
        except Exception:  # noqa: BLE001 - the refusal is what is recorded
            pass
        else:
            raise AssertionError("HAP-python verified an unknown controller")
        try:
            await unknown.close()
        except AuthenticationError:
            pass  # the same refusal, from the connection's own task
        await asyncio.sleep(0.2)
        await proxy.stop()
        await driver.async_stop()

    accessory_key = driver.state.private_key
    write_vectors(out_dir, proxy, exchanges, {
        "device_id": MAC,
        "setup_code": PIN,
        "ltsk": accessory_key.private_bytes_raw().hex(),
        "ltpk": driver.state.public_key.public_bytes_raw().hex(),
    }, {
        "pairing_id": controller_data["iOSPairingId"],
        "ltsk": controller_data["iOSDeviceLTSK"],
        "ltpk": controller_data["iOSDeviceLTPK"],
    })


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_vectors(out_dir: Path, proxy: Proxy, exchanges: list[tuple[str, int]],
                  accessory: dict[str, str], controller: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded_with = {name: version(name) for name in ("HAP-python", "aiohomekit", "cryptography")}
    recorded_with["python"] = ".".join(map(str, sys.version_info[:3]))
    numbers = [n for _, n in exchanges] + [len(proxy.connections)]
    for (name, first), end in zip(exchanges, numbers[1:]):
        connections = [transcript(c) for c in proxy.connections[first:end]]
        document = {
            "format": 1,
            "exchange": name,
            "recorded_with": recorded_with,
            "seed": SEED.decode(),
            "accessory": accessory,
            "controller": controller,
            "randomness": RANDOMNESS.draws,
            "connections": connections,
        }
        text = json.dumps(document, indent=1, sort_keys=False) + "\n"
        (out_dir / f"{name}.json").write_text(text)
        print(f"{name}.json: {len(connections)} connection(s)")


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # HAP-python orders some JSON keys by iterating a set: fix string hashing.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the directory to write")
    args = parser.parse_args()
    asyncio.run(record(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
