"""The python-zeroconf side of the mDNS recordings: a HAP-like service, driven line by line.

Runs inside the responder's network namespace (record.sh starts it through record.py).
Commands on stdin, one a line: `register`, `update`, `unregister`, `close`. Each answers
one line on stdout once done, so the recorder knows which phase the packets belong to.
"""

import socket
import sys

from zeroconf import IPVersion, ServiceInfo, Zeroconf

from service import HOST, INSTANCE, PORT, SERVICE_TYPE, TXT, TXT_UPDATED, V4, V6


def info(properties: list[tuple[str, str]], name: str) -> ServiceInfo:
    return ServiceInfo(
        f"{SERVICE_TYPE}.",
        name,
        addresses=[socket.inet_pton(socket.AF_INET, V4), socket.inet_pton(socket.AF_INET6, V6)],
        port=PORT,
        # A dict keeps this order, and zeroconf writes the TXT strings in it.
        properties=dict(properties),
        server=f"{HOST}.",
    )


def main() -> int:
    zc = Zeroconf(ip_version=IPVersion.All)
    current = info(TXT, f"{INSTANCE}.{SERVICE_TYPE}.")
    for line in sys.stdin:  # bounded by the recorder, which sends at most four commands
        command = line.strip()
        if command == "register":
            zc.register_service(current, allow_name_change=True)
            print(f"registered {current.name}", flush=True)
        elif command == "update":
            current = info(TXT_UPDATED, current.name)
            zc.update_service(current)
            print("updated", flush=True)
        elif command == "unregister":
            zc.unregister_service(current)
            print("unregistered", flush=True)
        elif command == "close":
            break
    zc.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
