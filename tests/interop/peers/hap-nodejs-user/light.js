#!/usr/bin/env node
// A HAP-NodeJS 1.2.0 lightbulb written the way its users write one: the light example of
// homebridge/HAP-NodeJS-examples (light-example-javascript/src/light.js), with nothing
// stubbed. It advertises with the default advertiser (ciao) on every interface and its
// HAP server listens on every interface, as there.
//
//   node light.js --port PORT --pin XXX-XX-XXX --data DIR --username AA:BB:CC:DD:EE:FF
//
// Only those four differ from the example's constants, so that a test can run it in a
// scratch directory: the example hard-codes the port, pincode and username and leaves the
// storage path at HAP-NodeJS's default (the example's own comment shows how to set it).
// tests/interop/controller.py runs it inside a network namespace.
"use strict";

const hap = require("hap-nodejs");

const Accessory = hap.Accessory;
const Characteristic = hap.Characteristic;
const CharacteristicEventTypes = hap.CharacteristicEventTypes;
const Service = hap.Service;

function option(name) {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) {
    process.stderr.write(`light.js: missing ${name}\n`);
    process.exit(2);
  }
  return process.argv[at + 1];
}

const port = Number(option("--port"));
const pincode = option("--pin");
const username = option("--username");
hap.HAPStorage.setCustomStoragePath(option("--data"));

const accessoryUuid = hap.uuid.generate("hap.examples.light");
const accessory = new Accessory("HAP-NodeJS Light", accessoryUuid);

const lightService = new Service.Lightbulb("Example Lightbulb");

let currentLightState = false; // on or off
let currentBrightnessLevel = 100;

// 'On' is required for the light service; 'Brightness' is optional, and getCharacteristic
// adds it.
const onCharacteristic = lightService.getCharacteristic(Characteristic.On);
const brightnessCharacteristic = lightService.getCharacteristic(Characteristic.Brightness);

onCharacteristic.on(CharacteristicEventTypes.GET, (callback) => {
  console.log("Queried current light state: " + currentLightState);
  callback(undefined, currentLightState);
});
onCharacteristic.on(CharacteristicEventTypes.SET, (value, callback) => {
  console.log("Setting light state to: " + value);
  currentLightState = value;
  callback();
});

brightnessCharacteristic.on(CharacteristicEventTypes.GET, (callback) => {
  console.log("Queried current brightness level: " + currentBrightnessLevel);
  callback(undefined, currentBrightnessLevel);
});
brightnessCharacteristic.on(CharacteristicEventTypes.SET, (value, callback) => {
  console.log("Setting brightness level to: " + value);
  currentBrightnessLevel = value;
  callback();
});

accessory.addService(lightService);

accessory.on("listening", (listeningPort, hostname) => {
  console.log(`listening on ${hostname}:${listeningPort}`);
});

// What a service manager sends: unpublish (an mDNS goodbye), then exit.
process.on("SIGTERM", () => {
  accessory.unpublish().finally(() => process.exit(0));
});

// Publish is the last step, as in the example.
accessory.publish({
  username: username,
  pincode: pincode,
  port: port,
  category: hap.Categories.LIGHTBULB,
});

console.log("Accessory setup finished!");
