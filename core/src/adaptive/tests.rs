//! The engine on the virtual clock: a controller's writes in, outputs and answers out.

use std::vec::Vec;

use super::codec;
use super::engine::point_at;
use super::*;
use crate::time::Instant;

const BRIGHTNESS: u64 = 11;
const TEMPERATURE: u64 = 12;
const HUE: u64 = 16;
const ON: u64 = 9;

fn light() -> LightCharacteristics {
    LightCharacteristics {
        aid: 1,
        brightness: BRIGHTNESS,
        temperature: TEMPERATURE,
        hue: Some(HUE),
        saturation: None,
        supported_configuration: 13,
        control: 14,
        active_count: 15,
        temperature_range: (140, 500),
    }
}

fn at(seconds: u64) -> Instant {
    Instant::from_millis(seconds * 1000)
}

fn point(temperature: f32, factor: f32, transition_s: u32, hold_s: u32) -> CurvePoint {
    CurvePoint {
        temperature,
        brightness_factor: factor,
        transition_ms: transition_s * 1000,
        hold_ms: hold_s * 1000,
    }
}

/// The curve HAP-NodeJS 1.2.0 was probed with (see the module docs of the vectors): 400
/// mired, a ramp of 10 min to 300, held 5 min, a ramp of 10 min to 350.
fn probe_config() -> TransitionConfig {
    TransitionConfig {
        iid: TEMPERATURE,
        parameters: TransitionParameters {
            id: [7; 16],
            start: 123_456_789,
            extra: Some([3; 8]),
        },
        curve: Curve {
            points: heapless::Vec::from_slice(&[
                point(400.0, -1.0, 0, 0),
                point(300.0, -2.0, 600, 300),
                point(350.0, -1.5, 600, 0),
            ])
            .unwrap(),
            brightness_iid: BRIGHTNESS,
            brightness_range: (10, 100),
        },
        update_interval_ms: 60_000,
        notify_interval_ms: 120_000,
    }
}

/// An UPDATE that starts `config`, as a controller writes it.
fn start_request(config: &TransitionConfig) -> Vec<u8> {
    let mut request = std::vec![0u8; 4400];
    let len = codec::write_start_request(config, &mut request).unwrap();
    request.truncate(len);
    request
}

/// An UPDATE that stops the transition of `iid`: the iid alone.
fn stop_request(iid: u8) -> Vec<u8> {
    std::vec![2, 5, 1, 3, 1, 1, iid]
}

fn outputs(engine: &mut AdaptiveLighting) -> Vec<AdaptiveOutput> {
    core::iter::from_fn(|| engine.poll_output()).collect()
}

fn write(engine: &mut AdaptiveLighting, request: &[u8], brightness: i32, now: Instant) -> Vec<u8> {
    let mut answer = [0u8; 4096];
    engine
        .handle_control_write(request, brightness, now, &mut answer)
        .unwrap()
        .to_vec()
}

fn started(brightness: i32, now: Instant) -> AdaptiveLighting {
    let mut engine = AdaptiveLighting::new(light());
    write(
        &mut engine,
        &start_request(&probe_config()),
        brightness,
        now,
    );
    engine
}

/// Steps the engine at each timeout until `until` or the end, and returns every
/// temperature it set: (seconds since `from`, mired, notify).
fn run(
    engine: &mut AdaptiveLighting,
    from: Instant,
    until: Instant,
    brightness: i32,
) -> Vec<(u64, u32, bool)> {
    let mut seen = Vec::new();
    let mut record = |engine: &mut AdaptiveLighting, now: Instant| {
        for output in outputs(engine) {
            if let AdaptiveOutput::Temperature { mired, notify } = output {
                let seconds = (now.as_millis() - from.as_millis()) / 1000;
                seen.push((seconds, mired, notify));
            }
        }
    };
    record(engine, from);
    while let Some(due) = engine.poll_timeout() {
        if due > until {
            break;
        }
        engine.handle_timeout(due, brightness);
        record(engine, due);
    }
    seen
}

#[test]
fn the_curve_is_followed_at_the_update_interval_and_told_at_the_notify_interval() {
    let t0 = at(1000);
    // Brightness 5 is clamped to the curve's range: 10.
    let mut engine = started(5, t0);
    let steps = run(&mut engine, t0, at(100_000), 5);
    let value = |s: u64| steps.iter().find(|(t, ..)| *t == s).map(|(_, m, _)| *m);
    // 400 - 10; then a tenth of the way to 300, with the factor a tenth of the way to -2.
    assert_eq!(value(0), Some(390));
    assert_eq!(value(60), Some(379));
    assert_eq!(value(600), Some(280));
    // Point 2 is held for 5 minutes, then the ramp to 350 - 15 takes 10.
    for s in (600..=900).step_by(60) {
        assert_eq!(value(s), Some(280), "held at {s} s");
    }
    assert_eq!(value(1200), Some(308));
    assert_eq!(value(1500), Some(335));
    // The step after the curve's end ends it: none at 1560 s.
    assert_eq!(steps.last().map(|(t, ..)| *t), Some(1500));
    assert_eq!(steps.len(), 26);
    assert_eq!(engine.active_count(), 0);
    assert_eq!(engine.poll_timeout(), None);
    // Subscribers hear of it every 2 minutes while it changes, and not of the hold.
    let told: Vec<u64> = steps.iter().filter(|s| s.2).map(|s| s.0).collect();
    assert_eq!(
        told,
        [0, 120, 240, 360, 480, 600, 960, 1080, 1200, 1320, 1440]
    );
}

#[test]
fn the_start_answers_with_its_id_and_counts_one_active_transition() {
    let mut engine = AdaptiveLighting::new(light());
    let config = probe_config();
    let answer = write(&mut engine, &start_request(&config), 100, at(5));
    let mut expected = [0u8; 256];
    let len =
        codec::write_update_answer(Some((TEMPERATURE, &config.parameters)), &mut expected).unwrap();
    assert_eq!(answer, &expected[..len]);
    assert_eq!(
        outputs(&mut engine),
        [
            AdaptiveOutput::ActiveCount(1),
            AdaptiveOutput::Save,
            // 400 - 1 x 100
            AdaptiveOutput::Temperature {
                mired: 300,
                notify: true
            },
        ]
    );
    assert_eq!(engine.active_count(), 1);
    assert_eq!(engine.transition(), Some(&config));
    assert_eq!(engine.poll_timeout(), Some(at(65)));
}

#[test]
fn a_new_brightness_moves_the_temperature_at_once_and_quietly() {
    let t0 = at(0);
    let mut engine = started(100, t0);
    outputs(&mut engine);
    // Half way up the first ramp: 350 mired, factor -1.5.
    let now = at(300);
    assert!(!engine.handle_write(BRIGHTNESS, 30, now));
    assert_eq!(
        outputs(&mut engine),
        [AdaptiveOutput::Temperature {
            mired: 305,
            notify: false
        }]
    );
    // The schedule stays: the next step is still a minute after the start.
    assert_eq!(engine.poll_timeout(), Some(at(60)));
    // A brightness below the curve's range counts as its minimum, above as its maximum.
    engine.handle_brightness(1, now);
    engine.handle_brightness(100, now);
    assert_eq!(
        outputs(&mut engine),
        [
            AdaptiveOutput::Temperature {
                mired: 335,
                notify: false
            },
            AdaptiveOutput::Temperature {
                mired: 200,
                notify: false
            },
        ]
    );
    // Steps use the brightness they are given.
    let steps = run(&mut engine, at(60), at(60), 30);
    assert_eq!(steps, [(0, 390 - 33, false)]);
}

#[test]
fn a_manual_colour_write_ends_the_transition_and_other_writes_do_not() {
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    assert!(!engine.handle_write(ON, 100, at(1)));
    assert_eq!(outputs(&mut engine), []);
    assert_eq!(engine.active_count(), 1);
    assert!(engine.handle_write(TEMPERATURE, 100, at(2)));
    assert_eq!(
        outputs(&mut engine),
        [
            AdaptiveOutput::ActiveCount(0),
            AdaptiveOutput::Save,
            AdaptiveOutput::Ended(EndReason::ManualWrite),
        ]
    );
    assert_eq!(engine.poll_timeout(), None);
    let mut value = [0u8; 64];
    assert_eq!(engine.control_value(at(3), &mut value), Ok(&[][..]));
    // Hue ends it too; with nothing running, a write changes nothing.
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    assert!(engine.handle_write(HUE, 100, at(1)));
    assert!(!engine.handle_write(HUE, 100, at(2)));
}

#[test]
fn unpairing_ends_it() {
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    engine.handle_unpaired();
    assert_eq!(
        outputs(&mut engine),
        [
            AdaptiveOutput::ActiveCount(0),
            AdaptiveOutput::Save,
            AdaptiveOutput::Ended(EndReason::Unpaired),
        ]
    );
    engine.handle_unpaired();
    assert_eq!(outputs(&mut engine), []);
}

#[test]
fn a_stop_request_ends_it_and_the_count_is_told_even_when_none_ran() {
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    let answer = write(&mut engine, &stop_request(TEMPERATURE as u8), 100, at(10));
    assert_eq!(answer, [2, 0]);
    assert_eq!(
        outputs(&mut engine),
        [
            AdaptiveOutput::ActiveCount(0),
            AdaptiveOutput::Save,
            AdaptiveOutput::Ended(EndReason::Requested),
        ]
    );
    let answer = write(&mut engine, &stop_request(TEMPERATURE as u8), 100, at(11));
    assert_eq!(answer, [2, 0]);
    assert_eq!(outputs(&mut engine), [AdaptiveOutput::ActiveCount(0)]);
}

#[test]
fn reads_of_the_control_point_tell_the_running_transition() {
    let mut engine = AdaptiveLighting::new(light());
    let mut value = [0u8; 512];
    assert_eq!(engine.control_value(at(0), &mut value), Ok(&[][..]));
    // A READ alone, with nothing running, answers nothing.
    let read = [1, 3, 1, 1, TEMPERATURE as u8];
    assert!(write(&mut engine, &read, 100, at(0)).is_empty());
    let config = probe_config();
    write(&mut engine, &start_request(&config), 100, at(0));
    let mut expected = [0u8; 512];
    let len = codec::write_status(TEMPERATURE, &config.parameters, 70_000, &mut expected).unwrap();
    assert_eq!(
        engine.control_value(Instant::from_millis(70_000), &mut value),
        Ok(&expected[..len])
    );
    let len = codec::write_read_answer(Some(&config), &mut expected).unwrap();
    assert_eq!(write(&mut engine, &read, 100, at(1)), &expected[..len]);
    // READ and UPDATE in one write: the READ tells the transition before the UPDATE.
    let mut both = read.to_vec();
    both.extend(stop_request(TEMPERATURE as u8));
    let mut answer = expected[..len].to_vec();
    answer.extend([2, 0]);
    assert_eq!(write(&mut engine, &both, 100, at(2)), answer);
    assert_eq!(engine.active_count(), 0);
}

#[test]
fn a_request_for_another_characteristic_fails_and_the_transition_runs_on() {
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    let mut other = probe_config();
    other.iid = BRIGHTNESS;
    let mut answer = [0u8; 256];
    for request in [start_request(&other), stop_request(BRIGHTNESS as u8)] {
        let error = engine
            .handle_control_write(&request, 100, at(1), &mut answer)
            .unwrap_err();
        assert_eq!(error, ControlError::UnsupportedCharacteristic(BRIGHTNESS));
        assert_eq!(
            error.status(),
            crate::status::HapStatus::InvalidValueInRequest
        );
    }
    let error = engine
        .handle_control_write(&[2, 3, 1, 1], 100, at(1), &mut answer)
        .unwrap_err();
    assert!(matches!(error, ControlError::Codec(_)), "{error:?}");
    assert_eq!(outputs(&mut engine), []);
    assert_eq!(engine.transition(), Some(&probe_config()));
    // An answer that does not fit is an error, not a cut answer.
    let error = engine
        .handle_control_write(
            &start_request(&probe_config()),
            100,
            at(1),
            &mut answer[..8],
        )
        .unwrap_err();
    assert_eq!(error, ControlError::AnswerTooLong);
}

#[test]
fn a_renewal_keeps_to_the_notify_interval() {
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    // Renewed 30 s later with a curve that gives another value: set, but not told yet.
    let mut config = probe_config();
    config.curve.points[0].temperature = 420.0;
    write(&mut engine, &start_request(&config), 100, at(30));
    assert_eq!(
        outputs(&mut engine),
        [
            AdaptiveOutput::ActiveCount(1),
            AdaptiveOutput::Save,
            AdaptiveOutput::Temperature {
                mired: 320,
                notify: false
            },
        ]
    );
    // After a stop, a new start is told at once.
    write(&mut engine, &stop_request(TEMPERATURE as u8), 100, at(40));
    write(&mut engine, &start_request(&config), 100, at(50));
    assert!(outputs(&mut engine).contains(&AdaptiveOutput::Temperature {
        mired: 320,
        notify: true
    }));
}

#[test]
fn a_saved_transition_resumes_where_the_wall_clock_says() {
    let mut engine = started(100, at(0));
    outputs(&mut engine);
    let wall = 1_700_000_000_000;
    let mut saved = [0u8; 4096];
    // Saved 2 minutes in.
    let saved = engine.save(at(120), wall, &mut saved).unwrap().to_vec();
    assert!(!saved.is_empty());
    // Restarted 3 minutes after that, with a fresh monotonic clock.
    let mut resumed = AdaptiveLighting::new(light());
    resumed
        .restore(&saved, 30, Instant::from_millis(0), wall + 180_000)
        .unwrap();
    assert_eq!(resumed.transition(), Some(&probe_config()));
    let outputs = outputs(&mut resumed);
    // 5 minutes in: 350 mired, factor -1.5, brightness 30.
    assert_eq!(
        outputs,
        [
            AdaptiveOutput::ActiveCount(1),
            AdaptiveOutput::Save,
            AdaptiveOutput::Temperature {
                mired: 305,
                notify: true
            },
        ]
    );
    let mut value = [0u8; 512];
    let mut expected = [0u8; 512];
    let len = codec::write_status(
        TEMPERATURE,
        &probe_config().parameters,
        300_000,
        &mut expected,
    )
    .unwrap();
    assert_eq!(
        resumed.control_value(Instant::from_millis(0), &mut value),
        Ok(&expected[..len])
    );
    // Restarted after the curve's end: it ends at once.
    let mut late = AdaptiveLighting::new(light());
    late.restore(&saved, 30, at(0), wall + 3_600_000).unwrap();
    assert_eq!(late.active_count(), 0);
    assert!(self::outputs(&mut late).contains(&AdaptiveOutput::Ended(EndReason::CurveEnded)));
    // Nothing running saves nothing; nothing restores nothing.
    let mut empty = [0u8; 16];
    assert_eq!(late.save(at(0), wall, &mut empty), Ok(&[][..]));
    assert_eq!(late.restore(&[], 30, at(0), wall), Ok(()));
    // Damaged or foreign bytes are refused and start nothing.
    assert_eq!(
        late.restore(&saved[..saved.len() - 1], 30, at(0), wall),
        Err(RestoreError::Unreadable)
    );
    let mut other = AdaptiveLighting::new(LightCharacteristics {
        temperature: 99,
        ..light()
    });
    assert_eq!(
        other.restore(&saved, 30, at(0), wall),
        Err(RestoreError::OtherCharacteristic)
    );
    assert_eq!(other.active_count(), 0);
}

#[test]
fn steps_are_never_closer_than_the_minimum_interval() {
    let mut config = probe_config();
    config.update_interval_ms = 10;
    let mut engine = AdaptiveLighting::new(light());
    write(&mut engine, &start_request(&config), 100, at(0));
    assert_eq!(engine.poll_timeout(), Some(at(0) + MIN_UPDATE_INTERVAL));
    // A timeout before it is due does nothing.
    outputs(&mut engine);
    engine.handle_timeout(Instant::from_millis(500), 100);
    assert_eq!(outputs(&mut engine), []);
}

#[test]
fn temperatures_are_clamped_to_the_characteristics_limits() {
    let mut engine = AdaptiveLighting::new(LightCharacteristics {
        temperature_range: (310, 380),
        ..light()
    });
    write(&mut engine, &start_request(&probe_config()), 100, at(0));
    assert!(outputs(&mut engine).contains(&AdaptiveOutput::Temperature {
        mired: 310,
        notify: true
    }));
    engine.handle_brightness(10, at(0));
    assert_eq!(
        outputs(&mut engine),
        [AdaptiveOutput::Temperature {
            mired: 380,
            notify: false
        }]
    );
}

#[test]
fn curve_lookup_at_the_edges() {
    let points = [
        point(400.0, 0.0, 5, 0),
        point(300.0, 0.0, 10, 0),
        point(200.0, 0.0, 0, 0),
    ];
    // The first point is reached after its own transition time; before that, nothing.
    assert_eq!(point_at(&points, 4_999), None);
    assert_eq!(point_at(&points, 5_000), Some((400.0, 0.0)));
    assert_eq!(point_at(&points, 10_000), Some((350.0, 0.0)));
    // A ramp of zero length reaches its upper point at once (HAP-NodeJS: 0/0).
    assert_eq!(point_at(&points, 15_000), Some((300.0, 0.0)));
    assert_eq!(point_at(&points, 15_001), None);
    assert_eq!(point_at(&points[..1], 0), None);
    assert_eq!(point_at(&[], 0), None);
}

#[test]
fn the_supported_configuration_names_brightness_and_colour_temperature() {
    let engine = AdaptiveLighting::new(light());
    let mut out = [0u8; 64];
    // HAP-NodeJS 1.2.0's answer for Brightness 11 and ColorTemperature 12.
    assert_eq!(
        engine.supported_configuration(&mut out).unwrap(),
        [1, 6, 1, 1, 11, 2, 1, 1, 0, 0, 1, 6, 1, 1, 12, 2, 1, 2]
    );
}

// The builder needs a heap.
#[cfg(feature = "alloc")]
#[test]
fn the_light_is_found_in_its_service() {
    use crate::catalog::{characteristic as c, service as s};
    use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
    use crate::database::ids::IdMap;
    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "light",
        &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"),
    );
    let bulb = builder.service(&s::LIGHTBULB).primary();
    let service = bulb.iid();
    let bulb = bulb
        .characteristic(&c::BRIGHTNESS)
        .configure(&c::COLOR_TEMPERATURE, |d| d.with_range(153.0, 454.0))
        .characteristic(&c::SUPPORTED_CHARACTERISTIC_VALUE_TRANSITION_CONFIGURATION)
        .characteristic(&c::CHARACTERISTIC_VALUE_TRANSITION_CONTROL);
    let (brightness, control) = (
        bulb.iid_of(&c::BRIGHTNESS).unwrap(),
        bulb.iid_of(&c::CHARACTERISTIC_VALUE_TRANSITION_CONTROL)
            .unwrap(),
    );
    let _ = bulb.characteristic(&c::CHARACTERISTIC_VALUE_ACTIVE_TRANSITION_COUNT);
    let database = builder.build().unwrap();
    let found = LightCharacteristics::find(&database, 1, service).unwrap();
    assert_eq!((found.brightness, found.control), (brightness, control));
    assert_eq!(found.temperature_range, (153, 454));
    assert_eq!((found.hue, found.saturation), (None, None));
    assert_eq!(
        LightCharacteristics::find(&database, 1, 999),
        Err(SetupError::NoSuchService {
            aid: 1,
            service: 999
        })
    );
    assert_eq!(
        LightCharacteristics::find(&database, 2, service),
        Err(SetupError::NoSuchService { aid: 2, service })
    );
}
