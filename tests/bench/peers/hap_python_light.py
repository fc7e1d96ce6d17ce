"""A HAP-python 5.0.0 lightbulb for the side-by-side benchmark (tests/bench).

    python hap_python_light.py --port PORT --pin XXX-XX-XXX --data DIR

Lightbulb with On and Brightness, on 127.0.0.1 only, with no mDNS: HAP-python's
zeroconf is replaced by a stub, so nothing leaves loopback. Prints
`listening on 127.0.0.1:PORT` once it serves, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any


class NoMdns:
    """Stands in for HAP-python's zeroconf: nothing is advertised."""

    zeroconf = None

    async def async_register_service(self, *_: Any, **__: Any) -> None:
        pass

    async def async_update_service(self, *_: Any, **__: Any) -> None:
        pass

    async def async_unregister_service(self, *_: Any, **__: Any) -> None:
        pass

    async def async_close(self) -> None:
        pass


async def serve(args: argparse.Namespace) -> None:
    from pyhap.accessory import Accessory
    from pyhap.accessory_driver import AccessoryDriver
    from pyhap.const import CATEGORY_LIGHTBULB

    class Light(Accessory):
        category = CATEGORY_LIGHTBULB

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            bulb = self.add_preload_service("Lightbulb", chars=["Brightness"])
            bulb.configure_char("On")
            bulb.configure_char("Brightness")

    loop = asyncio.get_running_loop()
    driver = AccessoryDriver(
        port=args.port,
        address="127.0.0.1",
        persist_file=f"{args.data}/accessory.state",
        pincode=args.pin.encode(),
        mac=args.mac,
        loop=loop,
        async_zeroconf_instance=NoMdns(),
    )
    driver.add_accessory(Light(driver, "Light"))
    await driver.async_start()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await driver.async_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pin", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--mac", default="4E:A1:5C:00:00:01")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
