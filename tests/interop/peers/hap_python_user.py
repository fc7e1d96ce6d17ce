"""A HAP-python 5.0.0 lightbulb written the way its users write one: the main.py of
HAP-python's README with its LightBulb example accessory (On and Brightness), and nothing
stubbed. It advertises with python-zeroconf and serves on the address HAP-python picks
(util.get_local_address(), the source address of the default route).

    python hap_python_user.py --port PORT --pin XXX-XX-XXX --data DIR

Only those three differ from the README, so that a test can run it in a scratch
directory: there, the port is a constant, the pincode is random and printed, and the
state file is `accessory.state` in the working directory.
tests/interop/controller.py runs it inside a network namespace.
"""

import argparse
import logging
import signal

from pyhap.accessory import Accessory
from pyhap.accessory_driver import AccessoryDriver
from pyhap.const import CATEGORY_LIGHTBULB

logging.basicConfig(level=logging.INFO, format="[%(module)s] %(message)s")


class LightBulb(Accessory):
    """A lightbulb that remembers whether it is on and how bright."""

    category = CATEGORY_LIGHTBULB

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        serv_light = self.add_preload_service("Lightbulb", chars=["On", "Brightness"])
        self.char_on = serv_light.configure_char("On", setter_callback=self.set_on)
        self.char_brightness = serv_light.configure_char(
            "Brightness", setter_callback=self.set_brightness)

    def set_on(self, value):
        logging.info("Light on: %s", value)

    def set_brightness(self, value):
        logging.info("Brightness: %s", value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pin", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()

    driver = AccessoryDriver(port=args.port, persist_file=f"{args.data}/accessory.state",
                             pincode=args.pin.encode())
    driver.add_accessory(accessory=LightBulb(driver, "HAP-python Light"))
    # SIGTERM stops the driver (and unregisters the mDNS service), as in the README.
    signal.signal(signal.SIGTERM, driver.signal_handler)
    driver.start()


if __name__ == "__main__":
    main()
