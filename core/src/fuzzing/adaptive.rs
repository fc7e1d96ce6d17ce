//! Adaptive Lighting's TLV8 codec, which reads what any paired controller writes to
//! Characteristic Value Transition Control, and the engine that runs what it reads.

use std::vec;
use std::vec::Vec;

use crate::adaptive::codec::{
    parse_configuration, parse_control, write_configuration, write_read_answer, write_status,
    write_supported_configuration, write_update_answer, CodecError, MAX_INPUT_LEN,
};
use crate::adaptive::{AdaptiveLighting, AdaptiveOutput, LightCharacteristics};
use crate::adaptive::{
    ControlRequest, Curve, CurvePoint, TransitionConfig, TransitionParameters, Update,
    MAX_CURVE_POINTS,
};
use crate::time::Instant;
use crate::tlv::TlvWriter;

/// Room for every answer the codec writes: a configuration of [`MAX_CURVE_POINTS`] points
/// is under 2 KiB.
const OUT_LEN: usize = 2 * MAX_INPUT_LEN;

/// Parses the bytes as a Transition Control write, and as a configuration on its own.
///
/// - The configuration wrapped in an UPDATE parses to exactly what it parses to alone,
///   errors included (their offsets count from the enclosing value).
/// - A started transition is written back as HAP-NodeJS writes it, and parses back to
///   itself, alone and inside an UPDATE; its READ answer is the same configuration
///   wrapped.
/// - Every writer, given a buffer one byte short (or empty, or half), refuses it with the
///   exact size it needed.
pub fn adaptive_control(data: &[u8]) {
    let request = parse_control(data);
    let alone = parse_configuration(data);
    if let Some(wrapped) = update_of(data) {
        assert_eq!(parse_control(&wrapped).map(|r| r.update), alone.map(Some));
    }
    let mut out = vec![0; OUT_LEN];
    if let Ok(ControlRequest {
        update: Some(Update::Start(config)),
        ..
    }) = &request
    {
        let len = write_configuration(config, &mut out).expect("a parsed configuration writes");
        let written = &out[..len];
        assert_eq!(
            parse_configuration(written),
            Ok(Update::Start(config.clone()))
        );
        let wrapped = update_of(written).expect("a written configuration fits an UPDATE");
        let again = parse_control(&wrapped).expect("a written configuration parses");
        assert_eq!(again.update, Some(Update::Start(config.clone())));

        let mut answer = vec![0; OUT_LEN];
        let answer_len = write_read_answer(Some(config), &mut answer).expect("it fits");
        let mut expected = vec![0; OUT_LEN];
        let expected_len = TlvWriter::new(&mut expected)
            .item(1, written)
            .unwrap()
            .len();
        assert_eq!(answer[..answer_len], expected[..expected_len]);

        refuses_short_buffers(|buf| write_configuration(config, buf));
        refuses_short_buffers(|buf| write_read_answer(Some(config), buf));
        let (iid, parameters) = (config.iid, &config.parameters);
        let elapsed = config.curve.brightness_iid;
        refuses_short_buffers(|buf| write_status(iid, parameters, elapsed, buf));
        refuses_short_buffers(|buf| write_update_answer(Some((iid, parameters)), buf));
        refuses_short_buffers(|buf| write_supported_configuration(iid, elapsed, buf));
    }
    if let Ok(ControlRequest {
        read: Some(iid), ..
    }) = request
    {
        refuses_short_buffers(|buf| write_supported_configuration(iid, !iid, buf));
        refuses_short_buffers(|buf| write_update_answer(None, buf));
    }
    drive_engine(data);
}

/// The light the seeds' requests are for: ColorTemperature 12, Brightness 11.
const LIGHT: LightCharacteristics = LightCharacteristics {
    aid: 1,
    brightness: 11,
    temperature: 12,
    hue: Some(13),
    saturation: None,
    supported_configuration: 14,
    control: 15,
    active_count: 16,
    temperature_range: (140, 500),
};

/// Gives the bytes to an engine as a controller's write, then runs it on the virtual
/// clock with brightnesses taken from the bytes, and checks it:
///
/// - a refused write changes nothing;
/// - every colour temperature is within ColorTemperature's limits;
/// - a step is due exactly while a transition runs, always later than the last one (no
///   spinning), and the count says the same;
/// - a running transition saved and restored at the same wall-clock time is the same
///   transition, at the same point of its curve.
fn drive_engine(data: &[u8]) {
    let mut engine = AdaptiveLighting::new(LIGHT);
    let mut answer = vec![0; OUT_LEN];
    let brightness = |i: usize| i32::from(data.get(i).copied().unwrap_or(100)) - 20;
    let start = Instant::from_millis(1_000);
    if engine
        .handle_control_write(data, brightness(0), start, &mut answer)
        .is_err()
    {
        assert_eq!(engine.poll_output(), None);
        assert_eq!(engine.active_count(), 0);
        return;
    }
    let mut now = start;
    for i in 0..64 {
        while let Some(output) = engine.poll_output() {
            if let AdaptiveOutput::Temperature { mired, .. } = output {
                assert!((140..=500).contains(&mired), "{mired} mired");
            }
        }
        assert_eq!(engine.poll_timeout().is_some(), engine.active_count() == 1);
        let Some(due) = engine.poll_timeout() else {
            break;
        };
        assert!(
            due > now || (i == 0 && due == now),
            "no progress at {now:?}"
        );
        if i == 8 {
            let wall = 1_800_000_000_000;
            let mut saved = vec![0; OUT_LEN];
            let saved = engine
                .save(now, wall, &mut saved)
                .expect("a transition saves");
            let mut restored = AdaptiveLighting::new(LIGHT);
            restored
                .restore(saved, brightness(i), now, wall)
                .expect("a saved transition restores");
            assert_eq!(restored.transition(), engine.transition());
            let (mut a, mut b) = (vec![0; OUT_LEN], vec![0; OUT_LEN]);
            assert_eq!(
                restored.control_value(now, &mut a),
                engine.control_value(now, &mut b)
            );
        }
        if i % 5 == 4 {
            engine.handle_write(LIGHT.brightness, brightness(i), now);
        }
        // Later steps leap, so that long curves reach their end.
        now = if i < 16 {
            due
        } else {
            Instant::from_millis(due.as_millis().saturating_mul(2))
        };
        engine.handle_timeout(now, brightness(i));
    }
}

/// `02 L[ 01 L[ configuration ] ]`, fragmented, if it fits the parser's input.
fn update_of(configuration: &[u8]) -> Option<Vec<u8>> {
    let mut inner = vec![0; OUT_LEN * 2];
    let inner_len = TlvWriter::new(&mut inner)
        .item(1, configuration)
        .ok()?
        .len();
    let mut outer = vec![0; OUT_LEN * 2];
    let outer_len = TlvWriter::new(&mut outer)
        .item(2, &inner[..inner_len])
        .ok()?
        .len();
    outer.truncate(outer_len);
    (outer_len <= MAX_INPUT_LEN).then_some(outer)
}

/// Writes with room to spare, then into an empty buffer, half of it, and one byte short:
/// each is refused with the length the first write took.
fn refuses_short_buffers(write: impl Fn(&mut [u8]) -> Result<usize, CodecError>) {
    let mut out = vec![0; OUT_LEN];
    let len = write(&mut out).expect("the answer fits");
    for short in [0, len / 2, len.saturating_sub(1)] {
        if short < len {
            assert_eq!(
                write(&mut out[..short]),
                Err(CodecError::BufferTooSmall { required: len })
            );
        }
    }
}

/// Seeds: starts as iOS and our writer send them (a curve of a day, fragmented at three
/// levels; a short one), a stop, a READ, and both at once.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    let day = update_of(&configuration(&sample(42))).expect("a day's curve fits");
    let short = update_of(&configuration(&sample(3))).expect("a short curve fits");
    let stop = vec![2, 5, 1, 3, 1, 1, 12];
    let read = vec![1, 3, 1, 1, 12];
    vec![
        day.clone(),
        short.clone(),
        stop.clone(),
        read.clone(),
        [read.clone(), short].concat(),
        [read, stop].concat(),
        configuration(&sample(2)),
    ]
}

fn configuration(config: &TransitionConfig) -> Vec<u8> {
    let mut out = vec![0; OUT_LEN];
    let len = write_configuration(config, &mut out).expect("the sample writes");
    out.truncate(len);
    out
}

/// A curve like the Home app's: a point every 30 minutes, some held for an hour.
fn sample(points: usize) -> TransitionConfig {
    let mut curve = Curve {
        points: heapless::Vec::new(),
        brightness_iid: 11,
        brightness_range: (10, 100),
    };
    for index in 0..points.min(MAX_CURVE_POINTS) {
        let step = index as f32;
        let point = CurvePoint {
            temperature: 153.0 + 8.5 * step,
            brightness_factor: -0.9 - 0.03 * step,
            transition_ms: if index == 0 { 0 } else { 1_800_000 },
            hold_ms: if index % 3 == 1 && index + 1 < points {
                3_600_000
            } else {
                0
            },
        };
        let _ = curve.points.push(point);
    }
    TransitionConfig {
        iid: 12,
        parameters: TransitionParameters {
            id: [0x5e; 16],
            start: 0x0000_00A1_2B3C_4D5E,
            extra: Some([1, 2, 3, 4, 5, 6, 7, 8]),
        },
        curve,
        update_interval_ms: 60_000,
        notify_interval_ms: 600_000,
    }
}
