//! The Adaptive Lighting engine against HAP-NodeJS 1.2.0's, replayed from
//! `vectors/hap-nodejs-1.2.0/adaptive-lighting.json` on the virtual clock: every write,
//! read and brightness change at its recorded time, and between them every step the
//! engine takes. The colour temperatures set, which steps told subscribers, the Active
//! Transition Count, and the write responses must be HAP-NodeJS's, except in the
//! exchanges where HAP-NodeJS is wrong (listed in [`Differs`] and the vectors' README),
//! where the test checks what this engine does instead.

#![cfg(feature = "std")]

use hap_core::adaptive::{
    codec, AdaptiveLighting, AdaptiveOutput, LightCharacteristics, TransitionConfig, Update,
};
use hap_core::status::HapStatus;
use hap_core::time::Instant;
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vectors/hap-nodejs-1.2.0/adaptive-lighting.json"
);

/// A step: when, the colour temperature, and whether subscribers were told.
type Step = (u64, u32, bool);

/// Where HAP-NodeJS 1.2.0 is wrong, and what this engine does instead.
#[derive(Debug, PartialEq)]
enum Differs {
    /// A renewal with a shorter curve ends the transition at once in HAP-NodeJS (its
    /// cached curve index points past the new curve); here it runs.
    ShorterRenewal,
    /// HAP-NodeJS reads the update interval as a u16 whatever its width (120000 becomes
    /// 54464 ms); here it is read whole, so steps are 120 s apart and a READ says 120000.
    WideUpdateInterval,
    /// HAP-NodeJS ends the transition on any refused request; here a refused request
    /// fails alone (-70410) and the transition runs on.
    RefusedRequest,
    /// HAP-NodeJS computes 0/0 for a ramp of zero length and fails; here the ramp
    /// reaches its upper point at once and the transition runs.
    ZeroLengthRamp,
}

fn differs(name: &str) -> Option<Differs> {
    Some(match name {
        "update-short-renewal" => Differs::ShorterRenewal,
        "read-request-four-byte-interval" | "engine-four-byte-interval" => {
            Differs::WideUpdateInterval
        }
        "error-three-byte-offset" | "read-request-wrong-iid" => Differs::RefusedRequest,
        "update-zero-offset-second-entry" | "engine-zero-offset" => Differs::ZeroLengthRamp,
        _ => return None,
    })
}

fn hex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string")).expect("hex")
}

fn number(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

struct Lamp {
    engine: AdaptiveLighting,
    brightness: i32,
    steps: Vec<Step>,
    counts: Vec<(u64, u8)>,
}

impl Lamp {
    fn new(iids: &Value) -> Self {
        let iid = |key: &str| number(iids, key);
        let light = LightCharacteristics {
            aid: iid("aid"),
            brightness: iid("brightness"),
            temperature: iid("color_temperature"),
            hue: iids["hue"].as_u64(),
            saturation: iids["saturation"].as_u64(),
            supported_configuration: iid("supported_transition_configuration"),
            control: iid("transition_control"),
            active_count: iid("active_transition_count"),
            temperature_range: (140, 500),
        };
        Self {
            engine: AdaptiveLighting::new(light),
            brightness: 100,
            steps: Vec::new(),
            counts: Vec::new(),
        }
    }

    fn drain(&mut self, now: u64) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                AdaptiveOutput::Temperature { mired, notify } => {
                    self.steps.push((now, mired, notify))
                }
                AdaptiveOutput::ActiveCount(count) => self.counts.push((now, count)),
                _ => {}
            }
        }
    }

    /// Runs every step due up to `until`.
    fn run_until(&mut self, until: u64) {
        while let Some(due) = self.engine.poll_timeout() {
            if due.as_millis() > until {
                break;
            }
            self.engine.handle_timeout(due, self.brightness);
            self.drain(due.as_millis());
        }
    }
}

fn recorded_steps(exchange: &Value) -> Vec<Step> {
    let steps = exchange["steps"].as_array().cloned().unwrap_or_default();
    steps
        .iter()
        .map(|s| {
            let temperature = u32::try_from(number(s, "temperature")).unwrap();
            (number(s, "t_ms"), temperature, s["event"] == true)
        })
        .collect()
}

fn recorded_counts(exchange: &Value) -> Vec<(u64, u8)> {
    let counts = exchange["active_count"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    counts
        .iter()
        .map(|c| (number(c, "t_ms"), number(c, "active_count") as u8))
        .collect()
}

#[test]
fn the_engine_does_what_hap_nodejs_does_where_hap_nodejs_is_right() {
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    assert_eq!(vectors["recorded_with"]["hap-nodejs"], "1.2.0");
    let mut lamps = [("lamp", None), ("color-lamp", None)];
    let mut checked = 0;
    let mut differences = Vec::new();
    for exchange in vectors["exchanges"].as_array().unwrap() {
        let name = exchange["name"].as_str().unwrap();
        let accessory = exchange["accessory"].as_str().unwrap();
        let slot = lamps.iter_mut().find(|(n, _)| *n == accessory).unwrap();
        let lamp = slot
            .1
            .get_or_insert_with(|| Lamp::new(&vectors["accessories"][accessory]));
        let light = *lamp.engine.light();
        let at = number(exchange, "at_ms");
        let now = Instant::from_millis(at);
        lamp.steps.clear();
        lamp.counts.clear();
        lamp.run_until(at);
        let differs = differs(name);
        let iid = exchange["iid"].as_u64();
        let mut answer = [0u8; 4096];
        if exchange["read"] == true {
            let value = if iid == Some(light.control) {
                lamp.engine.control_value(now, &mut answer).unwrap()
            } else {
                lamp.engine.supported_configuration(&mut answer).unwrap()
            };
            assert_eq!(
                hex::encode(value),
                exchange["answer_hex"].as_str().unwrap(),
                "{name}"
            );
        } else if let Some(write) = exchange.get("write_hex") {
            let result = lamp
                .engine
                .handle_control_write(&hex(write), lamp.brightness, now, &mut answer)
                .map(<[u8]>::to_vec);
            match (&differs, &exchange["answer_hex"]) {
                (Some(Differs::RefusedRequest), _) => {
                    let error = result.expect_err(name);
                    assert_eq!(error.status(), HapStatus::InvalidValueInRequest, "{name}");
                    assert_eq!(exchange["status"], -70402, "{name}");
                    // HAP-NodeJS also ended the transition; follow it from here on.
                    assert_eq!(lamp.engine.active_count(), 1, "{name}: runs on");
                    stop(lamp, now);
                }
                (Some(Differs::ShorterRenewal), _) => {
                    let answer = result.expect(name);
                    assert_eq!(&answer[..2], [2, 0x30], "{name}: a start's answer");
                    assert_eq!(exchange["answer_hex"], "0200", "{name}");
                    assert_eq!(lamp.engine.active_count(), 1, "{name}: runs");
                    // HAP-NodeJS ended it; follow it from here on.
                    stop(lamp, now);
                }
                (Some(Differs::ZeroLengthRamp), _) => {
                    result.expect(name);
                    assert_eq!(exchange["status"], -70402, "{name}");
                    assert_eq!(lamp.engine.active_count(), 1, "{name}: runs");
                    lamp.drain(at);
                    assert!(lamp.steps.iter().any(|s| s.0 == at), "{name}: stepped");
                }
                (Some(Differs::WideUpdateInterval), Value::String(recorded)) => {
                    // Here 120000 (06 04 c0d40100); HAP-NodeJS 54464 (06 02 c0d4). With
                    // its interval, the rest is its bytes.
                    let mut config = read_answer(&result.expect(name));
                    assert_eq!(config.update_interval_ms, 120_000, "{name}");
                    config.update_interval_ms = 54_464;
                    let len = codec::write_read_answer(Some(&config), &mut answer).unwrap();
                    assert_eq!(hex::encode(&answer[..len]), *recorded, "{name}");
                }
                (_, Value::String(recorded)) => {
                    assert_eq!(hex::encode(result.expect(name)), *recorded, "{name}");
                }
                (_, _) => panic!("{name}: no answer recorded"),
            }
            lamp.drain(at);
        } else if let Some(value) = exchange.get("write_value") {
            let value = value.as_i64().unwrap() as i32;
            let iid = iid.unwrap();
            if iid == light.brightness {
                lamp.brightness = value;
            }
            lamp.engine.handle_write(iid, lamp.brightness, now);
            lamp.drain(at);
        }
        if let Some(until) = exchange["until_ms"].as_u64() {
            lamp.run_until(until);
        }
        match differs {
            Some(Differs::WideUpdateInterval) if exchange.get("until_ms").is_some() => {
                // Steps every 120 s from the write, not every 54464 ms.
                let start = 16_625_000;
                assert!(!lamp.steps.is_empty(), "{name}");
                for (t, ..) in &lamp.steps {
                    assert_eq!((t - start) % 120_000, 0, "{name}: step at {t}");
                }
            }
            Some(Differs::ZeroLengthRamp) => {
                // HAP-NodeJS ended; this one ran on, and the next exchange stops it.
                assert_eq!(lamp.engine.active_count(), 1, "{name}");
            }
            Some(_) => {}
            None => {
                assert_eq!(lamp.steps, recorded_steps(exchange), "{name}: steps");
                assert_eq!(lamp.counts, recorded_counts(exchange), "{name}: counts");
                if let Some(active) = exchange["active_after"].as_bool() {
                    assert_eq!(lamp.engine.active_count() == 1, active, "{name}: active");
                }
                checked += 1;
            }
        }
        if differs.is_some() {
            differences.push(name);
        }
    }
    assert_eq!(differences.len(), 7, "{differences:?}");
    assert!(checked >= 25, "only {checked} exchanges checked");
}

/// Stops the transition as HAP-NodeJS did, without counting what that outputs.
fn stop(lamp: &mut Lamp, now: Instant) {
    let light = *lamp.engine.light();
    let iid = u8::try_from(light.temperature).unwrap();
    let mut answer = [0u8; 16];
    lamp.engine
        .handle_control_write(&[2, 5, 1, 3, 1, 1, iid], lamp.brightness, now, &mut answer)
        .unwrap();
    while lamp.engine.poll_output().is_some() {}
}

/// The configuration in a READ's answer, `01 L[configuration]`.
fn read_answer(answer: &[u8]) -> TransitionConfig {
    let tlv = hap_core::tlv::Tlv::parse(answer).unwrap();
    let mut configuration = [0u8; 4096];
    let configuration = tlv.get(1).unwrap().copy_to(&mut configuration).unwrap();
    match codec::parse_configuration(configuration).unwrap() {
        Update::Start(config) => config,
        other => panic!("not a transition: {other:?}"),
    }
}
