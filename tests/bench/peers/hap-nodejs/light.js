#!/usr/bin/env node
// A HAP-NodeJS 1.2.0 lightbulb for the side-by-side benchmark.
//
//   node light.js --port PORT --pin XXX-XX-XXX --data DIR --username AA:BB:CC:DD:EE:FF
//
// It serves HAP on 127.0.0.1:PORT only, keeps its pairings under DIR, sends no
// mDNS (nor any other UDP) at all, prints exactly one line to stdout,
// "listening on 127.0.0.1:PORT", and runs until SIGTERM or SIGINT.
"use strict";

const fs = require("fs");
const path = require("path");
const dgram = require("dgram");
const { EventEmitter } = require("events");

const HOST = "127.0.0.1";

// stdout carries the one "listening" line and nothing else: whatever the library
// prints through console goes to stderr instead.
for (const name of ["log", "info", "debug"]) {
  console[name] = (...args) => console.error(...args);
}

function fail(message) {
  process.stderr.write(`light.js: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const wanted = { "--port": "port", "--pin": "pin", "--data": "data", "--username": "username" };
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let value;
    const eq = flag.indexOf("=");
    if (eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    } else {
      value = argv[++i];
    }
    const key = wanted[flag];
    if (!key) fail(`unknown argument ${flag}`);
    if (value === undefined) fail(`${flag} needs a value`);
    out[key] = value;
  }
  for (const [flag, key] of Object.entries(wanted)) {
    if (out[key] === undefined) fail(`missing ${flag}`);
  }
  if (!/^\d+$/.test(out.port) || Number(out.port) > 65535) fail(`bad --port ${out.port}`);
  out.port = Number(out.port);
  if (!/^\d{3}-\d{2}-\d{3}$/.test(out.pin)) fail(`--pin must look like 123-45-678, not ${out.pin}`);
  if (!/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/.test(out.username)) {
    fail(`--username must look like AA:BB:CC:DD:EE:FF, not ${out.username}`);
  }
  out.username = out.username.toUpperCase();
  out.data = path.resolve(out.data);
  return out;
}

const args = parseArgs(process.argv.slice(2));

// No debug output from the library, whatever the environment says.
delete process.env.DEBUG;

// Tripwire: this process has no business with UDP. If anything (an mDNS
// responder above all) tries to open a UDP socket, fail loudly instead.
dgram.createSocket = () => {
  throw new Error("light.js: UDP sockets are forbidden in this benchmark peer");
};

const hap = require("hap-nodejs");
// Before anything touches storage.
fs.mkdirSync(args.data, { recursive: true });
hap.HAPStorage.setCustomStoragePath(args.data);

// Belt and braces for the debug module that hap-nodejs itself resolves.
try {
  const hapDir = path.dirname(require.resolve("hap-nodejs/package.json"));
  require(require.resolve("debug", { paths: [hapDir] })).disable();
} catch (_) {
  // no separate debug module: nothing to switch off
}

// Accessory.publish() builds its advertiser with `new Advertiser_1.CiaoAdvertiser(...)`
// (or BonjourHAPAdvertiser), read off the module object at publish time, and then
// calls on(), initPort(), startAdvertising(), updateAdvertisement() and destroy().
// Put a silent stand-in in its place: nothing is announced anywhere.
const advertiserModule = require("hap-nodejs/dist/lib/Advertiser");

class SilentAdvertiser extends EventEmitter {
  // publish() copies this into the ProtocolInformation service.
  static protocolVersion = advertiserModule.CiaoAdvertiser.protocolVersion;
  static protocolVersionService = advertiserModule.CiaoAdvertiser.protocolVersionService;

  constructor(accessoryInfo) {
    super();
    this.accessoryInfo = accessoryInfo;
    this.port = undefined;
  }

  initPort(port) {
    this.port = port;
  }

  startAdvertising() {
    return Promise.resolve();
  }

  updateAdvertisement() {
    return Promise.resolve();
  }

  stopAdvertising() {
    return Promise.resolve();
  }

  shutdown() {
    return Promise.resolve();
  }

  destroy() {
    this.removeAllListeners();
    return Promise.resolve();
  }
}

for (const name of ["CiaoAdvertiser", "BonjourHAPAdvertiser"]) {
  advertiserModule[name] = SilentAdvertiser;
  if (advertiserModule[name] !== SilentAdvertiser) fail(`could not replace ${name}`);
}

// publish({ bind: "127.0.0.1" }) would still listen on 0.0.0.0 (HAP-NodeJS only
// narrows the advertiser to a single bind address). Make the HAP server itself
// listen on the loopback address alone.
const parseBindOption = hap.Accessory.parseBindOption;
hap.Accessory.parseBindOption = function (info) {
  const parsed = parseBindOption.call(this, info);
  parsed.serverAddress = HOST;
  return parsed;
};

const { Accessory, Categories, Characteristic, Service, uuid } = hap;

const light = new Accessory("Bench Light", uuid.generate(`bench-light:${args.username}`));
light.category = Categories.LIGHTBULB;

light.getService(Service.AccessoryInformation)
  .setCharacteristic(Characteristic.Manufacturer, "bench")
  .setCharacteristic(Characteristic.Model, "hap-nodejs-light")
  .setCharacteristic(Characteristic.SerialNumber, args.username.replace(/:/g, ""))
  .setCharacteristic(Characteristic.FirmwareRevision, "1.0.0");

// The characteristics keep their own values (HAP-NodeJS answers reads from them
// without a read handler, so a read never turns into an event); the "lamp" only
// follows the writes.
const lamp = { on: false, brightness: 100 };
const bulb = light.addService(Service.Lightbulb, "Bench Light");
bulb.getCharacteristic(Characteristic.On)
  .updateValue(lamp.on)
  .onSet((value) => {
    lamp.on = value === true || value === 1;
  });
bulb.getCharacteristic(Characteristic.Brightness)
  .updateValue(lamp.brightness)
  .onSet((value) => {
    lamp.brightness = Number(value);
  });

light.on("listening", (port, hostname) => {
  if (hostname !== HOST) {
    fail(`HAP server listens on ${hostname}, not ${HOST}`);
  }
  fs.writeSync(1, `listening on ${hostname}:${port}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`light.js: ${signal}, stopping\n`);
  const quit = setTimeout(() => process.exit(0), 2000);
  quit.unref();
  light.unpublish().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`light.js: unpublish failed: ${err && err.stack}\n`);
      process.exit(0);
    },
  );
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

light.publish({
  username: args.username,
  pincode: args.pin,
  category: Categories.LIGHTBULB,
  port: args.port,
  bind: HOST,
  advertiser: hap.MDNSAdvertiser.CIAO, // replaced above by SilentAdvertiser
  addIdentifyingMaterial: false,
}).catch((err) => fail(`publish failed: ${err && err.stack}`));
