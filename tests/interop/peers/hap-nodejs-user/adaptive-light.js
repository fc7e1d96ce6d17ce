#!/usr/bin/env node
// A HAP-NodeJS 1.2.0 white-spectrum lightbulb with Adaptive Lighting, written as its
// users write one: On, Brightness and ColorTemperature on a Lightbulb, and HAP-NodeJS's
// own AdaptiveLightingController (AUTOMATIC mode, the default) configured on it, which
// adds the three transition characteristics and runs the curves. It is the reference
// tests/interop/adaptive.py is checked against (tests/interop/adaptive.sh --hap-nodejs).
//
//   node adaptive-light.js --port PORT --pin XXX-XX-XXX --data DIR
//
// It binds to 127.0.0.1, so ciao advertises on loopback only.
"use strict";

const hap = require("hap-nodejs");

const { Accessory, AdaptiveLightingController, Characteristic, Service } = hap;

function option(name) {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) {
    process.stderr.write(`adaptive-light.js: missing ${name}\n`);
    process.exit(2);
  }
  return process.argv[at + 1];
}

const port = Number(option("--port"));
const pincode = option("--pin");
hap.HAPStorage.setCustomStoragePath(option("--data"));

const accessory = new Accessory("HAP-NodeJS Adaptive Light", hap.uuid.generate("hap.tests.adaptive-light"));
const bulb = new Service.Lightbulb("HAP-NodeJS Adaptive Light");

bulb.getCharacteristic(Characteristic.On).onSet((value) => {
  console.log(`Light ${value ? "ON" : "OFF"}`);
});
bulb.getCharacteristic(Characteristic.Brightness).onSet((value) => {
  console.log(`Brightness ${value}%`);
});
// The controller applies each step through this handler, as the Home app's writes come.
bulb.getCharacteristic(Characteristic.ColorTemperature).onSet((value) => {
  console.log(`ColorTemperature ${value} mired`);
});
accessory.addService(bulb);

const adaptive = new AdaptiveLightingController(bulb);
adaptive.on("update", () => console.log("Adaptive Lighting: on"));
adaptive.on("disable", () => console.log("Adaptive Lighting: off"));
accessory.configureController(adaptive);

// What a service manager sends: unpublish (an mDNS goodbye), then exit.
process.on("SIGTERM", () => {
  accessory.unpublish().finally(() => process.exit(0));
});

accessory.publish({
  username: "4E:A1:5C:00:00:23",
  pincode: pincode,
  port: port,
  bind: "127.0.0.1",
  category: hap.Categories.LIGHTBULB,
});

console.log("Accessory setup finished!");
