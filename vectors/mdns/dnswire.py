"""A small DNS/mDNS message writer and reader for the recorder (queries it sends, summaries it writes).

Independent of zeroconf on purpose: the summaries in the vectors are a second reading of the bytes.
"""

import ipaddress
import struct

TYPES = {1: "A", 12: "PTR", 13: "HINFO", 16: "TXT", 28: "AAAA", 33: "SRV", 47: "NSEC", 255: "ANY"}
TYPE_NUMBERS = {v: k for k, v in TYPES.items()}


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def question(name: str, qtype: str, unicast_response: bool = False) -> bytes:
    return encode_name(name) + struct.pack("!HH", TYPE_NUMBERS[qtype], 1 | (0x8000 if unicast_response else 0))


def record(name: str, rtype: str, ttl: int, rdata: bytes, cache_flush: bool = False) -> bytes:
    cls = 1 | (0x8000 if cache_flush else 0)
    return encode_name(name) + struct.pack("!HHIH", TYPE_NUMBERS[rtype], cls, ttl, len(rdata)) + rdata


def message(ident: int, flags: int, questions=(), answers=(), authorities=(), additionals=()) -> bytes:
    head = struct.pack("!HHHHHH", ident, flags, len(questions), len(answers), len(authorities), len(additionals))
    return head + b"".join(questions) + b"".join(answers) + b"".join(authorities) + b"".join(additionals)


def txt_rdata(items) -> bytes:
    out = b""
    for key, value in items:
        raw = f"{key}={value}".encode()
        out += bytes([len(raw)]) + raw
    return out


def srv_rdata(priority: int, weight: int, port: int, target: str) -> bytes:
    return struct.pack("!HHH", priority, weight, port) + encode_name(target)


class Malformed(Exception):
    pass


def read_name(data: bytes, at: int) -> tuple[str, int]:
    labels, end, jumps = [], None, 0
    while True:
        if at >= len(data):
            raise Malformed("name runs past the end")
        length = data[at]
        if length & 0xC0 == 0xC0:
            if at + 1 >= len(data) or jumps > 64:
                raise Malformed("bad compression pointer")
            target = ((length & 0x3F) << 8) | data[at + 1]
            if target >= at:
                raise Malformed("forward compression pointer")
            if end is None:
                end = at + 2
            at, jumps = target, jumps + 1
            continue
        if length == 0:
            return ".".join(labels) + ".", (end if end is not None else at + 1)
        if length > 63:
            raise Malformed("label longer than 63")
        labels.append(data[at + 1 : at + 1 + length].decode("utf-8", "backslashreplace"))
        at += 1 + length


def rdata_text(data: bytes, rtype: int, at: int, length: int) -> str:
    raw = data[at : at + length]
    if rtype == 1 and length == 4:
        return str(ipaddress.IPv4Address(raw))
    if rtype == 28 and length == 16:
        return str(ipaddress.IPv6Address(raw))
    if rtype == 12:
        return read_name(data, at)[0]
    if rtype == 33:
        priority, weight, port = struct.unpack("!HHH", raw[:6])
        return f"{priority} {weight} {port} {read_name(data, at + 6)[0]}"
    if rtype == 16:
        strings, i = [], 0
        while i < len(raw):
            n = raw[i]
            strings.append(raw[i + 1 : i + 1 + n].decode("utf-8", "backslashreplace"))
            i += 1 + n
        return " ".join(repr(s) for s in strings)
    if rtype == 47:
        nxt, after = read_name(data, at)
        types, i = [], after
        while i < at + length:
            window, blen = data[i], data[i + 1]
            for b in range(blen):
                for bit in range(8):
                    if data[i + 2 + b] & (0x80 >> bit):
                        n = window * 256 + b * 8 + bit
                        types.append(TYPES.get(n, str(n)))
            i += 2 + blen
        return f"{nxt} [{' '.join(types)}]"
    return raw.hex()


def decode(data: bytes) -> dict:
    """Header flags and every record, in order, as text lines."""
    if len(data) < 12:
        raise Malformed("shorter than a header")
    ident, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
    at, out = 12, {"id": ident, "flags": f"{flags:04x}", "qr": bool(flags & 0x8000), "aa": bool(flags & 0x0400),
                   "tc": bool(flags & 0x0200), "questions": [], "answers": [], "authorities": [], "additionals": []}
    for _ in range(qd):
        name, at = read_name(data, at)
        qtype, qclass = struct.unpack("!HH", data[at : at + 4])
        at += 4
        out["questions"].append(f"{name} {TYPES.get(qtype, qtype)}{' QU' if qclass & 0x8000 else ' QM'} class {qclass & 0x7FFF}")
    for section, count in (("answers", an), ("authorities", ns), ("additionals", ar)):
        for _ in range(count):
            name, at = read_name(data, at)
            if at + 10 > len(data):
                raise Malformed("record header past the end")
            rtype, rclass, ttl, length = struct.unpack("!HHIH", data[at : at + 10])
            at += 10
            if at + length > len(data):
                raise Malformed("rdata past the end")
            flush = " flush" if rclass & 0x8000 else ""
            out[section].append(f"{name} {TYPES.get(rtype, rtype)} class {rclass & 0x7FFF}{flush} ttl {ttl} "
                                f"{rdata_text(data, rtype, at, length)}")
            at += length
    if at != len(data):
        raise Malformed(f"{len(data) - at} trailing bytes")
    return out
