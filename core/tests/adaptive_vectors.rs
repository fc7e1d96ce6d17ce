//! Our Adaptive Lighting codec against HAP-NodeJS 1.2.0's recorded exchanges
//! (vectors/hap-nodejs-1.2.0/README.md): every Transition Control write the recording's
//! iOS made parses to what the recorder says it carried, and every answer HAP-NodeJS
//! gave (supported configuration, UPDATE answers, status reads, READ answers, stops) is
//! what our codec writes, byte for byte, for the transition the recording has running.
//!
//! What the engine does with a transition (steps, events, when one ends) is not the
//! codec's: the running transition is taken from the recording's `active_after`. Where
//! we differ from HAP-NodeJS on purpose, the test asserts the difference and says why.
// The recorded curves are about 1 KiB, beyond the 256-byte values of a build without
// `alloc`.
#![cfg(feature = "alloc")]

use std::collections::HashMap;

use hap_core::adaptive::codec::{
    parse_configuration, parse_control, write_configuration, write_read_answer, write_status,
    write_supported_configuration, write_update_answer, CodecError,
};
use hap_core::adaptive::{ControlRequest, TransitionConfig, Update, DEFAULT_UPDATE_INTERVAL_MS};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vectors/hap-nodejs-1.2.0/adaptive-lighting.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("a hex string")).unwrap()
}

fn written(write: impl FnOnce(&mut [u8]) -> Result<usize, CodecError>) -> Vec<u8> {
    let mut out = vec![0; 8192];
    let len = write(&mut out).unwrap();
    out.truncate(len);
    out
}

/// An accessory's iids, from the recording.
struct Lamp {
    brightness: u64,
    color_temperature: u64,
    supported: u64,
    control: u64,
}

impl Lamp {
    fn of(ids: &Value) -> Self {
        let iid = |name: &str| ids[name].as_u64().unwrap();
        Lamp {
            brightness: iid("brightness"),
            color_temperature: iid("color_temperature"),
            supported: iid("supported_transition_configuration"),
            control: iid("transition_control"),
        }
    }
}

/// The transition HAP-NodeJS has running: as our codec parsed it, and when it was
/// written (the status counts from there).
struct Active {
    config: TransitionConfig,
    since_ms: u64,
}

/// Checks a parsed start against the recorder's own account of what the UPDATE carried.
fn check_against_recording(config: &TransitionConfig, transitions: &[Value], lamp: &Lamp) {
    let id = hex::encode(config.parameters.id);
    let recorded = transitions
        .iter()
        .find(|t| t["transition_id_hex"] == id.as_str())
        .unwrap_or_else(|| panic!("transition {id} not in the recording"));
    let label = recorded["label"].as_str().unwrap();
    assert_eq!(config.iid, lamp.color_temperature, "{label}");
    assert_eq!(
        config.parameters.start,
        recorded["start_ms_since_2001"].as_u64().unwrap()
    );
    assert_eq!(
        config.parameters.start.to_le_bytes().to_vec(),
        bytes(&recorded["start_hex"])
    );
    assert_eq!(
        config.parameters.extra.map(|extra| extra.to_vec()),
        Some(bytes(&recorded["id3_hex"]))
    );
    let update_interval = recorded["update_interval_ms"]
        .as_u64()
        .map_or(DEFAULT_UPDATE_INTERVAL_MS, |ms| ms as u32);
    assert_eq!(config.update_interval_ms, update_interval, "{label}");
    assert_eq!(
        u64::from(config.notify_interval_ms),
        recorded["notify_interval_ms"].as_u64().unwrap()
    );
    let range = &recorded["brightness_range"];
    assert_eq!(
        config.curve.brightness_range,
        (
            range[0].as_u64().unwrap() as u32,
            range[1].as_u64().unwrap() as u32
        )
    );
    assert_eq!(config.curve.brightness_iid, lamp.brightness);
    let entries = recorded["curve"].as_array().unwrap();
    assert_eq!(config.curve.points.len(), entries.len(), "{label}");
    for (index, (point, entry)) in config.curve.points.iter().zip(entries).enumerate() {
        assert_eq!(point.temperature, entry["mired"].as_f64().unwrap() as f32);
        assert_eq!(
            point.brightness_factor,
            entry["adjustment_factor"].as_f64().unwrap() as f32
        );
        assert_eq!(
            u64::from(point.transition_ms),
            entry["offset_ms"].as_u64().unwrap()
        );
        // The duration written on the next entry is this point's hold.
        let hold = entries
            .get(index + 1)
            .and_then(|next| next["duration_ms"].as_u64())
            .unwrap_or(0);
        assert_eq!(u64::from(point.hold_ms), hold, "{label} point {index}");
    }
    // And it writes back to itself.
    let again = written(|out| write_configuration(config, out));
    assert_eq!(
        parse_configuration(&again),
        Ok(Update::Start(config.clone()))
    );
}

#[test]
fn hap_nodejs_answers_are_ours_byte_for_byte() {
    let vectors = vectors();
    assert_eq!(vectors["format"], 1);
    assert_eq!(vectors["recorded_with"]["hap-nodejs"], "1.2.0");
    let transitions = vectors["transitions"].as_array().unwrap();
    let lamps: HashMap<&str, Lamp> = vectors["accessories"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, ids)| (name.as_str(), Lamp::of(ids)))
        .collect();
    let mut active: HashMap<&str, Active> = HashMap::new();
    let (mut checked, mut codec_exchanges) = (Vec::new(), 0);

    for exchange in vectors["exchanges"].as_array().unwrap() {
        let name = exchange["name"].as_str().unwrap();
        let accessory = exchange["accessory"].as_str().unwrap();
        let lamp = &lamps[accessory];
        let at_ms = exchange["at_ms"].as_u64().unwrap();
        let iid = exchange["iid"].as_u64();
        let is_read = exchange["read"] == true;
        if iid == Some(lamp.supported) || iid == Some(lamp.control) {
            codec_exchanges += 1;
        }

        if is_read && iid == Some(lamp.supported) {
            let ours = written(|out| {
                write_supported_configuration(lamp.brightness, lamp.color_temperature, out)
            });
            assert_eq!(ours, bytes(&exchange["answer_hex"]), "{name}");
            checked.push(name);
        } else if is_read && iid == Some(lamp.control) {
            let ours = match active.get(accessory) {
                Some(running) => written(|out| {
                    write_status(
                        running.config.iid,
                        &running.config.parameters,
                        at_ms - running.since_ms,
                        out,
                    )
                }),
                None => Vec::new(),
            };
            assert_eq!(ours, bytes(&exchange["answer_hex"]), "{name}");
            checked.push(name);
        } else if iid == Some(lamp.control) {
            let write = bytes(&exchange["write_hex"]);
            let parsed = parse_control(&write);
            if exchange.get("status").is_some() {
                refused_by_hap_nodejs(name, parsed, lamp, transitions);
            } else {
                let request = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                let before = active.remove(accessory);
                let after = answer(name, request, exchange, lamp, transitions, before, at_ms);
                if let Some(running) = after {
                    active.insert(accessory, running);
                }
            }
            checked.push(name);
        }
        // The engine's runs and the JSON writes of Brightness and ColorTemperature can
        // end a transition; which ones do is the engine's to test.
        if exchange["active_after"] == false {
            active.remove(accessory);
        }
    }
    assert_eq!(checked.len(), codec_exchanges);
    for kind in [
        "read-supported-configuration",
        "update-start",
        "read-control-184ms",
        "read-request",
        "read-and-update",
        "disable",
    ] {
        assert!(checked.contains(&kind), "{kind} was not recorded");
    }
}

/// Checks our answer to a write HAP-NodeJS answered; returns the transition running
/// afterwards.
fn answer(
    name: &str,
    request: ControlRequest,
    exchange: &Value,
    lamp: &Lamp,
    transitions: &[Value],
    running: Option<Active>,
    at_ms: u64,
) -> Option<Active> {
    let recorded = bytes(&exchange["answer_hex"]);
    let mut ours = Vec::new();
    if let Some(iid) = request.read {
        assert_eq!(iid, lamp.color_temperature, "{name}");
        let config = running.as_ref().map(|running| &running.config);
        ours.extend(written(|out| write_read_answer(config, out)));
    }
    let mut after = running;
    match request.update {
        Some(Update::Start(config)) => {
            check_against_recording(&config, transitions, lamp);
            ours.extend(written(|out| {
                write_update_answer(Some((config.iid, &config.parameters)), out)
            }));
            after = Some(Active {
                config,
                since_ms: at_ms,
            });
        }
        Some(Update::Stop { iid }) => {
            assert_eq!(iid, lamp.color_temperature, "{name}");
            ours.extend(written(|out| write_update_answer(None, out)));
            after = None;
        }
        None => {}
    }

    match name {
        // HAP-NodeJS's renewal with a shorter curve searches it from the segment index
        // cached for the old curve, finds none, ends the transition and answers as if
        // the controller had stopped it. We start the new curve and answer so.
        "update-short-renewal" => {
            assert_eq!(recorded, [2, 0]);
            assert_ne!(ours, recorded);
            assert_eq!(ours[0], 2);
            assert!(ours.len() > 2);
        }
        // HAP-NodeJS reads the update interval as a u16 whatever its width: 120000 in 4
        // bytes became 54464, and it writes that back. We read the 4 bytes; with the
        // interval it misread, our READ answer is its bytes exactly.
        "read-request-four-byte-interval" => {
            let mut misread = after.as_ref().unwrap().config.clone();
            assert_eq!(misread.update_interval_ms, 120_000);
            misread.update_interval_ms = 120_000 & 0xFFFF;
            assert_eq!(
                written(|out| write_read_answer(Some(&misread), out)),
                recorded
            );
            assert_ne!(ours, recorded);
        }
        _ => assert_eq!(ours, recorded, "{name}"),
    }
    after
}

/// Writes HAP-NodeJS answered with -70402.
fn refused_by_hap_nodejs(
    name: &str,
    parsed: Result<ControlRequest, CodecError>,
    lamp: &Lamp,
    transitions: &[Value],
) {
    match name {
        // An offset of 3 bytes: neither of us reads it.
        "error-three-byte-offset" => {
            assert_eq!(parsed, Err(CodecError::Invalid("point transition time")));
        }
        // A READ naming Brightness while ColorTemperature's transition runs: the
        // request is well formed; refusing it is the engine's part.
        "read-request-wrong-iid" => {
            assert_eq!(
                parsed,
                Ok(ControlRequest {
                    read: Some(lamp.brightness),
                    update: None
                })
            );
        }
        // A second point reached after 0 ms, the first not held: HAP-NodeJS divides 0
        // by 0 at its first step and fails. The curve is well formed; the engine must
        // take it without a NaN.
        "update-zero-offset-second-entry" => {
            let Ok(ControlRequest {
                read: None,
                update: Some(Update::Start(config)),
            }) = parsed
            else {
                panic!("{name}: {parsed:?}");
            };
            check_against_recording(&config, transitions, lamp);
            assert_eq!(config.curve.points[1].transition_ms, 0);
            assert_eq!(config.curve.points[0].hold_ms, 0);
        }
        _ => panic!("{name}: HAP-NodeJS refused it; say what we do"),
    }
}
