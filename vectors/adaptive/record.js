#!/usr/bin/env node
// Records HAP-NodeJS 1.2.0's Adaptive Lighting answers (issue 23).
//
//   node vectors/adaptive/record.js --node-dir DIR --out FILE
//
// DIR holds node_modules/hap-nodejs (record.sh installs it there with `npm ci`).
// Everything runs in this one process: no server, no socket, no mDNS. A script below
// plays the iOS controller: it builds the 143 writes as iOS does (TLV8 fragmented at
// three levels, iOS's field widths) and hands them to the characteristic's own
// handleSetRequest / handleGetRequest, as HAP-NodeJS's HTTP layer would. Date.now,
// setTimeout and clearTimeout are replaced by a virtual clock, so two runs write the
// same file byte for byte.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const crypto = require("crypto");

function fail(message) {
  process.stderr.write(`record.js: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (flag === "--node-dir") out.nodeDir = value;
    else if (flag === "--out") out.out = value;
    else fail(`unknown argument ${flag}`);
    if (value === undefined) fail(`${flag} needs a value`);
  }
  if (!out.nodeDir || !out.out) fail("usage: record.js --node-dir DIR --out FILE");
  return out;
}

const args = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- virtual clock
// The accessory's wall clock at t_ms = 0 of the recording (an arbitrary fixed instant).
const CLOCK_ZERO = Date.UTC(2026, 11, 5, 17, 0, 0, 0);
const EPOCH_2001 = Date.UTC(2001, 0, 1, 0, 0, 0, 0);
let now = CLOCK_ZERO;
const realSetImmediate = global.setImmediate;
const timers = [];
let timerSeq = 0;

Date.now = () => now;
global.setTimeout = (fn, ms, ...rest) => {
  // Only the Adaptive Lighting controller may arm timers here, and the accessory's
  // 1 s debounce of configuration changes (a no-op without an advertiser); anything
  // else would be a timer this recording does not model.
  const stack = new Error().stack;
  if (!stack.includes("AdaptiveLightingController") && !stack.includes("enqueueConfigurationUpdate")) {
    fail(`unexpected timer (${ms} ms) armed by:\n${stack}`);
  }
  const timer = {
    fn: () => fn(...rest),
    at: now + Math.max(1, Number(ms) || 0),
    seq: timerSeq++,
    unref() { return timer; },
    ref() { return timer; },
    hasRef() { return false; },
  };
  timers.push(timer);
  return timer;
};
global.clearTimeout = (timer) => {
  const i = timers.indexOf(timer);
  if (i >= 0) timers.splice(i, 1);
};

// Lets the promise jobs HAP-NodeJS leaves behind (its un-awaited handleSetRequest) run.
function settle() {
  return new Promise((resolve) => realSetImmediate(resolve));
}

const tMs = () => now - CLOCK_ZERO;

// Moves the clock to CLOCK_ZERO + toMs, firing every due timer at its own instant.
async function advanceTo(toMs) {
  const end = CLOCK_ZERO + toMs;
  if (end < now) fail("the clock does not go back");
  for (;;) {
    timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const next = timers[0];
    if (!next || next.at > end) break;
    timers.shift();
    now = next.at;
    next.fn();
    await settle();
  }
  now = end;
}

// ---------------------------------------------------------------- HAP-NodeJS
delete process.env.DEBUG;
const hapDir = path.resolve(args.nodeDir, "node_modules", "hap-nodejs");
const hap = require(hapDir);
const { IdentifierCache } = require(path.join(hapDir, "dist", "lib", "model", "IdentifierCache"));
const hapVersion = JSON.parse(fs.readFileSync(path.join(hapDir, "package.json"), "utf8")).version;
if (hapVersion !== "1.2.0") fail(`expected hap-nodejs 1.2.0, found ${hapVersion}`);
const { Accessory, Service, Characteristic, AdaptiveLightingController, HAPStorage, uuid } = hap;

// Nothing is persisted (the accessory is never published, so its controller storage
// never loads), but point the storage at a private directory all the same.
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), "al-vectors-"));
HAPStorage.setCustomStoragePath(storageDir);
// Also when the recording stops early.
process.on("exit", () => fs.rmSync(storageDir, { recursive: true, force: true }));

// HAP-NodeJS prints the stack of an error in the 143 write handler; keep only the
// messages (the stack names local paths), for the notes.
const warnings = [];
console.warn = (...parts) => warnings.push(parts.map(String).join(" "));

const USERNAME = "AA:BB:CC:DD:EE:FF";
// Stands for the HAP connection a controller's write arrives on.
const CONTROLLER_CONNECTION = Object.freeze({ remoteAddress: "controller" });

// One accessory with one Lightbulb and the controller configured, plus what the
// recording hears: the application's SET calls and the events HAP-NodeJS would send.
class Rig {
  constructor(name, withColor) {
    this.name = name;
    this.accessory = new Accessory(name, uuid.generate(`hap-core adaptive vectors ${name}`));
    this.bulb = this.accessory.addService(Service.Lightbulb, name);
    this.on = this.bulb.getCharacteristic(Characteristic.On).updateValue(true);
    this.brightness = this.bulb.getCharacteristic(Characteristic.Brightness).updateValue(100);
    this.colorTemperature = this.bulb.getCharacteristic(Characteristic.ColorTemperature).updateValue(300);
    if (withColor) {
      this.hue = this.bulb.getCharacteristic(Characteristic.Hue).updateValue(0);
      this.saturation = this.bulb.getCharacteristic(Characteristic.Saturation).updateValue(0);
    }
    this.controller = new AdaptiveLightingController(this.bulb, {
      controllerMode: hap.AdaptiveLightingControllerMode.AUTOMATIC,
    });
    this.accessory.configureController(this.controller);
    this.accessory._assignIDs(new IdentifierCache(USERNAME));
    this.supported = this.bulb.getCharacteristic(Characteristic.SupportedCharacteristicValueTransitionConfiguration);
    this.control = this.bulb.getCharacteristic(Characteristic.CharacteristicValueTransitionControl);
    this.count = this.bulb.getCharacteristic(Characteristic.CharacteristicValueActiveTransitionCount);

    this.steps = [];
    this.counts = [];
    this.events = [];
    // The light's application: it accepts every write. The controller's own writes to
    // ColorTemperature carry it in their context; those are the engine's steps.
    const accept = () => undefined;
    this.on.onSet(accept);
    this.brightness.onSet(accept);
    this.colorTemperature.onSet((value, context) => {
      if (context && context.controller === this.controller) {
        this.steps.push({
          t_ms: tMs(),
          brightness: this.brightness.value,
          temperature: value,
          event: false,
        });
      }
    });
    // Stands in for the HAP server: Accessory.handleCharacteristicChangeEvent decides,
    // with its own rules, which changes become events and hands them here.
    this.accessory._server = {
      sendEventNotifications: (aid, iid, value, originator) => {
        // The server sends events only to connections subscribed to the iid, which
        // needs the ev permission: 143 and 144 (which HAP-NodeJS also passes here when
        // a read changes their value) can reach no one.
        if (!this.bulb.getCharacteristicByIID(iid).props.perms.includes("ev")) return;
        const event = { t_ms: tMs(), iid, value };
        // Not to the connection whose write caused it.
        if (originator === CONTROLLER_CONNECTION) event.not_to_writer = true;
        this.events.push(event);
        const last = this.steps[this.steps.length - 1];
        if (iid === this.colorTemperature.iid && last && last.t_ms === tMs() && last.temperature === value) {
          last.event = true;
        }
      },
    };
    this.count.on("change", (change) => {
      const event = this.events.length > 0 && this.events[this.events.length - 1].iid === this.count.iid
        && this.events[this.events.length - 1].t_ms === tMs();
      this.counts.push({ t_ms: tMs(), active_count: change.newValue, event });
    });
  }

  iids() {
    const out = {
      aid: this.accessory.aid,
      lightbulb: this.bulb.iid,
      on: this.on.iid,
      brightness: this.brightness.iid,
      color_temperature: this.colorTemperature.iid,
    };
    if (this.hue) {
      out.hue = this.hue.iid;
      out.saturation = this.saturation.iid;
    }
    out.supported_transition_configuration = this.supported.iid;
    out.transition_control = this.control.iid;
    out.active_transition_count = this.count.iid;
    return out;
  }

  // What happened since the last call: engine steps, 24B changes, events.
  takeEffects() {
    const effects = {};
    if (this.steps.length) effects.steps = this.steps.splice(0);
    if (this.counts.length) effects.active_count = this.counts.splice(0);
    if (this.events.length) effects.events = this.events.splice(0);
    return effects;
  }
}

// ---------------------------------------------------------------- iOS's TLV8
// A TLV item; values over 255 bytes are split into 255-byte items of the same type,
// as iOS does at every level.
function tlv(type, value) {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
  if (v.length === 0) return Buffer.from([type, 0]);
  const parts = [];
  for (let i = 0; i < v.length; i += 255) {
    const chunk = v.subarray(i, i + 255);
    parts.push(Buffer.from([type, chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}
const DELIMITER = Buffer.from([0, 0]);
const u8 = (n) => Buffer.from([n]);
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const f32 = (n) => { const b = Buffer.alloc(4); b.writeFloatLE(n); return b; };
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
// Fixed "random" bytes: the transition ids and iOS's third parameter.
const bytesOf = (label, n) => crypto.createHash("sha256").update(label).digest().subarray(0, n);

// One curve entry as iOS writes it: the first offset as one byte 00, later offsets
// and every duration as 4 bytes; offsetBytes overrides the offset's encoding.
function entry(point, first) {
  const parts = [tlv(1, f32(point.factor)), tlv(2, f32(point.mired))];
  parts.push(tlv(3, point.offsetBytes ?? (first ? u8(0) : u32(point.offset))));
  if (point.duration !== undefined) parts.push(tlv(4, u32(point.duration)));
  return tlv(1, Buffer.concat(parts));
}

// The UPDATE request (2.1 value transition configuration) iOS sends to enable.
function updateRequest(rig, t) {
  const curveParts = [];
  t.curve.forEach((point, i) => {
    if (i > 0) curveParts.push(DELIMITER);
    curveParts.push(entry(point, i === 0));
  });
  curveParts.push(tlv(2, u8(rig.brightness.iid)));
  curveParts.push(tlv(3, Buffer.concat([tlv(1, u32(t.brightnessMin)), tlv(2, u32(t.brightnessMax))])));
  const params = [tlv(1, t.id), tlv(2, u64(t.startMs - EPOCH_2001))];
  if (t.id3) params.push(tlv(3, t.id3));
  const config = [
    tlv(1, u8(rig.colorTemperature.iid)),
    tlv(2, Buffer.concat(params)),
    tlv(3, u8(1)),
    tlv(5, Buffer.concat(curveParts)),
  ];
  if (t.updateInterval !== undefined) {
    config.push(tlv(6, t.updateIntervalBytes ?? u16(t.updateInterval)));
  }
  config.push(tlv(8, u32(t.notifyInterval)));
  return tlv(2, tlv(1, Buffer.concat(config)));
}

const readRequest = (iid) => tlv(1, tlv(1, u8(iid)));
const disableRequest = (iid) => tlv(2, tlv(1, tlv(1, u8(iid))));

// A 24-hour curve shaped like iOS's, starting at 17:00: 40 points, 30 minutes apart,
// four of them with a hold, cool by day (~153 mired at noon), warm at night (527 at
// midnight, over ColorTemperature's 500), with brightness factors from -0.9 by day to
// -2.1 at night.
function dayCurve() {
  const startHour = 17;
  const holds = { 9: 3600000, 18: 5400000, 27: 3600000, 34: 3600000 };
  const points = [];
  let elapsed = 0;
  for (let i = 0; i < 40; i++) {
    if (i > 0) elapsed += 1800000;
    const hours = startHour - 12 + elapsed / 3600000;
    const night = (1 - Math.cos((2 * Math.PI * hours) / 24)) / 2; // 0 at noon, 1 at midnight
    const mired = Math.round((153 + 374 * night ** 0.8) * 100) / 100;
    const factor = -Math.round((0.9 + 1.2 * night) * 1000) / 1000;
    const point = { factor, mired, offset: i === 0 ? 0 : 1800000 };
    if (holds[i] !== undefined) {
      point.duration = holds[i];
      elapsed += holds[i];
    }
    points.push(point);
  }
  return points;
}

// A short curve that ends within the recording: 30 minutes, 4 points.
function shortCurve() {
  return [
    { factor: -1.0, mired: 400, offset: 0 },
    { factor: -2.0, mired: 300, offset: 600000 },
    { factor: -1.5, mired: 350, offset: 600000, duration: 300000 },
    { factor: -0.9, mired: 200, offset: 300000 },
  ];
}

// ---------------------------------------------------------------- the recording
const hex = (buf) => Buffer.from(buf).toString("hex");
const b64hex = (value) => (value == null ? "" : hex(Buffer.from(value, "base64")));
const exchanges = [];

function record(rig, fields) {
  exchanges.push({ name: fields.name, accessory: rig.name, ...fields, ...rig.takeEffects() });
}

async function read(rig, name, characteristic, notes) {
  const at = tMs();
  const value = await characteristic.handleGetRequest(CONTROLLER_CONNECTION);
  await settle();
  record(rig, { name, at_ms: at, iid: characteristic.iid, read: true, answer_hex: b64hex(value), notes });
}

async function write143(rig, name, bytes, notes) {
  const at = tMs();
  const warned = warnings.length;
  const fields = { name, at_ms: at, iid: rig.control.iid, write_hex: hex(bytes) };
  try {
    const answer = await rig.control.handleSetRequest(bytes.toString("base64"), CONTROLLER_CONNECTION);
    fields.answer_hex = b64hex(answer);
  } catch (status) {
    if (typeof status !== "number") throw status;
    fields.status = status;
    const error = warnings.slice(warned).find((w) => w.includes("Encountered error"));
    // The first line of the stack: the error's class and message.
    if (error) fields.hap_nodejs_error = error.split("\n")[0].replace(/^.*characteristic: /, "");
  }
  await settle();
  fields.notes = notes;
  fields.active_after = rig.controller.isAdaptiveLightingActive();
  record(rig, fields);
}

async function writeValue(rig, name, characteristic, value, notes) {
  const at = tMs();
  await characteristic.handleSetRequest(value, CONTROLLER_CONNECTION);
  await settle();
  record(rig, {
    name, at_ms: at, iid: characteristic.iid, write_value: value, notes,
    active_after: rig.controller.isAdaptiveLightingActive(),
  });
}

async function run(rig, name, toMs, notes) {
  const from = tMs();
  await advanceTo(toMs);
  record(rig, { name, at_ms: from, until_ms: toMs, notes, active_after: rig.controller.isAdaptiveLightingActive() });
}

const transitions = [];
function transition(label, fields) {
  const t = {
    label,
    id: bytesOf(`transition id ${label}`, 16),
    id3: bytesOf(`transition id3 ${label}`, 8),
    brightnessMin: 10,
    brightnessMax: 100,
    // iOS's clock runs 1.5 s behind the accessory's here.
    startMs: now - 1500,
    ...fields,
  };
  transitions.push({
    label,
    transition_id_hex: hex(t.id),
    id3_hex: t.id3 ? hex(t.id3) : null,
    start_ms_since_2001: t.startMs - EPOCH_2001,
    start_hex: hex(u64(t.startMs - EPOCH_2001)),
    update_interval_ms: t.updateInterval ?? null,
    ...(t.updateIntervalBytes ? { update_interval_hex: hex(t.updateIntervalBytes) } : {}),
    notify_interval_ms: t.notifyInterval,
    brightness_range: [t.brightnessMin, t.brightnessMax],
    curve: t.curve.map((p, i) => ({
      adjustment_factor: Math.fround(p.factor),
      mired: Math.fround(p.mired),
      offset_ms: i === 0 ? 0 : p.offset,
      ...(p.offsetBytes ? { offset_hex: hex(p.offsetBytes) } : {}),
      ...(p.duration !== undefined ? { duration_ms: p.duration } : {}),
    })),
  });
  return t;
}

async function main() {
  const lamp = new Rig("lamp", false);
  const colorLamp = new Rig("color-lamp", true);
  const ct = lamp.colorTemperature.iid;

  await read(lamp, "read-supported-configuration", lamp.supported,
    "144: one list item per characteristic (iid, transition type 1 brightness / 2 colour temperature)");
  await read(lamp, "read-control-inactive", lamp.control, "143 with no transition active: the empty string");

  const day = transition("day", { curve: dayCurve(), updateInterval: 60000, notifyInterval: 600000 });
  await write143(lamp, "update-start", updateRequest(lamp, day),
    "enable: 40-point curve, type 6 = 60000 (2 bytes), type 8 = 600000 (4 bytes), with id3; "
    + "answer = 2.1 status with time since start forced to 0; 24B = 1 and the first step run inside the write");

  await advanceTo(184);
  await read(lamp, "read-control-184ms", lamp.control, "time since start 184 ms: one byte");
  await advanceTo(70000);
  await read(lamp, "read-control-70000ms", lamp.control,
    "time since start 70000 ms: four bytes (over 65535); the 60 s timer step ran before it");

  await write143(lamp, "read-request", readRequest(ct),
    "READ while active: HAP-NodeJS re-encodes the stored configuration (its widths, duration on every entry)");

  await advanceTo(90000);
  const renewal = transition("renewal", { curve: dayCurve(), notifyInterval: 600000 });
  const both = Buffer.concat([readRequest(ct), updateRequest(lamp, renewal)]);
  await write143(lamp, "read-and-update", both,
    "READ and UPDATE in one write, no type 6 (HAP-NodeJS defaults to 60000): answers concatenated, "
    + "READ first (the old transition), then the UPDATE status of the new one");
  await write143(lamp, "read-request-after-renewal", readRequest(ct),
    "READ of the renewed transition: type 6 comes back as 60000 although iOS sent none");

  const renewedAt = 90000;
  await run(lamp, "engine-day-brightness-100", renewedAt + 2 * 3600000 + 30000,
    "timer steps every 60 s at Brightness 100; ColorTemperature events at most every 600 s and only on change");
  await writeValue(lamp, "brightness-30", lamp.brightness, 30,
    "a controller writes Brightness 30: the dry run applies the new temperature at once, no event, no new timer");
  await run(lamp, "engine-day-brightness-30", renewedAt + 4 * 3600000,
    "timer steps every 60 s at Brightness 30");

  const short = transition("short", { curve: shortCurve(), updateInterval: 60000, notifyInterval: 120000 });
  await write143(lamp, "update-short-renewal", updateRequest(lamp, short),
    "a renewal (the day transition is active) with a 4-point, 30-minute curve. HAP-NodeJS BUG, do not follow: "
    + "its first step searches the new curve from the segment index cached for the old one (here beyond the "
    + "new curve's end), finds none, ends the transition (24B 1 then 0) and answers 02 00");
  await write143(lamp, "update-short", updateRequest(lamp, short),
    "the same write with nothing active (the cache was cleared when it ended): update 60 s, notify 120 s");
  await run(lamp, "engine-short-to-end", tMs() + 35 * 60000,
    "runs past the end of the curve: the first timer step that finds no segment ends it (24B = 0)");
  await read(lamp, "read-control-after-end", lamp.control, "ended: the empty string again");

  const manual = transition("manual", { curve: dayCurve(), updateInterval: 60000, notifyInterval: 600000 });
  await write143(lamp, "update-before-manual", updateRequest(lamp, manual), "enable again");
  await advanceTo(tMs() + 5000);
  await writeValue(lamp, "manual-brightness", lamp.brightness, 60,
    "a Brightness write does not end the transition (dry run only)");
  await advanceTo(tMs() + 5000);
  const mired = lamp.colorTemperature.value;
  await writeValue(lamp, "manual-color-temperature", lamp.colorTemperature, mired,
    "a controller writes ColorTemperature (the very value it has): the transition ends, 24B = 0");

  const toDisable = transition("disable", { curve: dayCurve(), updateInterval: 60000, notifyInterval: 600000 });
  await advanceTo(tMs() + 5000);
  await write143(lamp, "update-before-disable", updateRequest(lamp, toDisable), "enable again");
  await advanceTo(tMs() + 5000);
  await write143(lamp, "disable", disableRequest(ct), "UPDATE without type 3: disable, answer 02 00, 24B = 0");
  await write143(lamp, "disable-while-inactive", disableRequest(ct),
    "the same again with nothing active: the same answer, and 24B = 0 is sent again");

  const faulty = transition("three-byte-offset", { curve: dayCurve(), updateInterval: 60000, notifyInterval: 600000 });
  faulty.curve[5] = { ...faulty.curve[5], offsetBytes: Buffer.from([0x40, 0x77, 0x1b]) };
  transitions[transitions.length - 1].curve[5].offset_hex = "40771b";
  await advanceTo(tMs() + 5000);
  await write143(lamp, "update-before-error", updateRequest(lamp, toDisable), "enable again (the previous transition)");
  await advanceTo(tMs() + 5000);
  await write143(lamp, "error-three-byte-offset", updateRequest(lamp, faulty),
    "entry 5's offset in 3 bytes: HAP-NodeJS only reads 1/2/4/8; the handler throws, the light's transition is "
    + "disabled (24B = 0) and the write answers -70402");

  const wide = transition("wide-update-interval", {
    curve: dayCurve(), updateInterval: 120000, updateIntervalBytes: u32(120000), notifyInterval: 600000,
  });
  await advanceTo(tMs() + 5000);
  await write143(lamp, "update-interval-four-bytes", updateRequest(lamp, wide),
    "type 6 = 120000 in 4 bytes: HAP-NodeJS reads type 6 as a u16 whatever its length, so 120000 & 0xffff = 54464 ms");
  await write143(lamp, "read-request-four-byte-interval", readRequest(ct),
    "the READ shows the truncated interval: 06 02 c0 d4 (54464)");
  await run(lamp, "engine-four-byte-interval", tMs() + 3 * 60000, "timer steps 54464 ms apart");
  await write143(lamp, "read-request-wrong-iid", readRequest(lamp.brightness.iid),
    "READ naming Brightness while ColorTemperature's transition is active: -70410 inside, answered -70402, disabled");

  // A second entry with offset 0 and no hold before it: the first step divides 0 by 0.
  const zero = shortCurve();
  zero[1] = { ...zero[1], offset: 0, offsetBytes: u32(0) };
  const nan = transition("zero-offset", { curve: zero, updateInterval: 60000, notifyInterval: 120000 });
  await advanceTo(tMs() + 5000);
  await write143(lamp, "update-zero-offset-second-entry", updateRequest(lamp, nan),
    "entry 1's offset is 0 (4 bytes) and entry 0 has no hold: at the first step (0 ms since the write) "
    + "HAP-NodeJS interpolates with (0 - 0) / 0 = NaN; see the step and the events");
  await run(lamp, "engine-zero-offset", tMs() + 3 * 60000, "the next steps");
  await write143(lamp, "disable-zero-offset", disableRequest(ct), "disable");

  // The colour variant: Hue and Saturation are set silently with every step and sent
  // as events with ColorTemperature's.
  await advanceTo(tMs() + 60000);
  const color = transition("color", { curve: shortCurve(), updateInterval: 60000, notifyInterval: 120000 });
  await read(colorLamp, "color-read-supported-configuration", colorLamp.supported,
    "the Hue/Saturation lamp's 144 (its own iids)");
  await write143(colorLamp, "color-update-short", updateRequest(colorLamp, color), "the short curve on the colour lamp");
  await run(colorLamp, "color-engine-short-to-end", tMs() + 35 * 60000,
    "steps, with Hue and Saturation events next to ColorTemperature's");

  if (timers.length !== 0) fail(`${timers.length} timer(s) still pending at the end`);
  const left = fs.readdirSync(storageDir);
  fs.rmSync(storageDir, { recursive: true, force: true });
  if (left.length !== 0) fail(`HAP-NodeJS wrote to storage: ${left.join(", ")}`);

  const out = {
    format: 1,
    exchange: "adaptive-lighting",
    recorded_with: { "hap-nodejs": hapVersion, node: process.version },
    clock: {
      t0_epoch_ms: CLOCK_ZERO,
      t0_ms_since_2001: CLOCK_ZERO - EPOCH_2001,
      controller_behind_ms: 1500,
    },
    accessories: { lamp: lamp.iids(), "color-lamp": colorLamp.iids() },
    color_temperature_range: [lamp.colorTemperature.props.minValue, lamp.colorTemperature.props.maxValue],
    transitions,
    exchanges,
  };
  fs.writeFileSync(args.out, JSON.stringify(out, null, 1) + "\n");
}

main().catch((error) => {
  process.stderr.write(`record.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
