//! The formats against hand-made bytes and HAP-NodeJS's probe bytes, fragmentation at
//! every level, round trips, and every error.

use std::vec;
use std::vec::Vec;

use super::*;

/// One item, fragmented as HAP-NodeJS and iOS fragment: 255-byte pieces, no trailing
/// empty fragment.
fn tlv(ty: u8, value: &[u8]) -> Vec<u8> {
    if value.is_empty() {
        return vec![ty, 0];
    }
    let mut out = Vec::new();
    for chunk in value.chunks(255) {
        out.push(ty);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out
}

/// A list of items of one type, `00 00` between them.
fn list(ty: u8, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            out.extend_from_slice(&[0, 0]);
        }
        out.extend(tlv(ty, entry));
    }
    out
}

const ID: [u8; 16] = [
    0x5e, 0x1a, 0x21, 0x7c, 0x4b, 0x18, 0x4a, 0x4e, 0x9d, 0x31, 0x6f, 0x02, 0xa2, 0x1b, 0x77, 0x10,
];
const START: u64 = 0x0000_00A1_2B3C_4D5E;
const EXTRA: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn parameters(extra: bool) -> TransitionParameters {
    TransitionParameters {
        id: ID,
        start: START,
        extra: extra.then_some(EXTRA),
    }
}

fn parameter_bytes(extra: bool) -> Vec<u8> {
    let mut out = [tlv(1, &ID), tlv(2, &START.to_le_bytes())].concat();
    if extra {
        out.extend(tlv(3, &EXTRA));
    }
    out
}

/// A curve like iOS's: `points` points 30 minutes apart, some held.
fn sample(points: usize) -> TransitionConfig {
    let mut curve = Curve {
        points: heapless::Vec::new(),
        brightness_iid: 11,
        brightness_range: (10, 100),
    };
    for index in 0..points {
        let hold_ms = if index % 3 == 1 && index + 1 < points {
            3_600_000
        } else {
            0
        };
        curve
            .points
            .push(CurvePoint {
                temperature: 153.0 + 8.5 * index as f32,
                brightness_factor: -0.9 - 0.03 * index as f32,
                transition_ms: if index == 0 { 0 } else { 1_800_000 },
                hold_ms,
            })
            .unwrap();
    }
    TransitionConfig {
        iid: 12,
        parameters: parameters(true),
        curve,
        update_interval_ms: 60_000,
        notify_interval_ms: 600_000,
    }
}

/// `config` as iOS writes it: the same fields, but integers 4 bytes wide where iOS uses
/// 4 (ramps, durations, intervals), and a duration only where there is a hold.
fn ios_configuration(config: &TransitionConfig) -> Vec<u8> {
    let points: Vec<Vec<u8>> = config
        .curve
        .points
        .iter()
        .enumerate()
        .map(|(index, point)| {
            let mut entry = [
                tlv(1, &point.brightness_factor.to_le_bytes()),
                tlv(2, &point.temperature.to_le_bytes()),
                if point.transition_ms == 0 {
                    tlv(3, &[0])
                } else {
                    tlv(3, &point.transition_ms.to_le_bytes())
                },
            ]
            .concat();
            let previous_hold = index
                .checked_sub(1)
                .map_or(0, |previous| config.curve.points[previous].hold_ms);
            if previous_hold != 0 {
                entry.extend(tlv(4, &previous_hold.to_le_bytes()));
            }
            entry
        })
        .collect();
    let (min, max) = config.curve.brightness_range;
    let curve = [
        list(1, &points),
        tlv(2, &[config.curve.brightness_iid as u8]),
        tlv(
            3,
            &[tlv(1, &min.to_le_bytes()), tlv(2, &max.to_le_bytes())].concat(),
        ),
    ]
    .concat();
    [
        tlv(1, &[config.iid as u8]),
        tlv(2, &parameter_bytes(config.parameters.extra.is_some())),
        tlv(3, &[1]),
        tlv(4, &[9, 9]), // unknown, ignored
        tlv(5, &curve),
        tlv(6, &config.update_interval_ms.to_le_bytes()),
        tlv(7, &[]), // unknown, ignored
        tlv(8, &config.notify_interval_ms.to_le_bytes()),
    ]
    .concat()
}

/// The most points of [`sample`] whose iOS UPDATE fits [`MAX_INPUT_LEN`]: a day's 42 with
/// `alloc`, 4 without (256 bytes).
const FITTING_POINTS: usize = if MAX_INPUT_LEN >= 2048 { 42 } else { 4 };

fn update(configuration: &[u8]) -> Vec<u8> {
    tlv(2, &tlv(1, configuration))
}

fn written(write: impl Fn(&mut [u8]) -> Result<usize, CodecError>) -> Vec<u8> {
    let mut out = vec![0; 8192];
    let len = write(&mut out).unwrap();
    out.truncate(len);
    // Every shorter buffer is refused with the size needed, and nothing panics.
    for short in 0..len {
        let mut buf = vec![0; short];
        assert_eq!(
            write(&mut buf),
            Err(CodecError::BufferTooSmall { required: len }),
            "buffer of {short}"
        );
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn supported_configuration_is_hap_nodejs_probe() {
    let bytes = written(|out| write_supported_configuration(11, 12, out));
    assert_eq!(bytes, hex("010601010b020101 0000 010601010c020102"));
    // Wider iids take HAP-NodeJS's widths.
    let bytes = written(|out| write_supported_configuration(300, 70_000, out));
    assert_eq!(
        bytes,
        hex("0107 0102 2c01 020101 0000 0109 0104 70110100 020102")
    );
}

#[test]
fn stop_answer_is_0200() {
    assert_eq!(written(|out| write_update_answer(None, out)), hex("0200"));
}

#[test]
fn update_answer_is_hap_nodejs_probe_layout() {
    let p = parameters(true);
    let bytes = written(|out| write_update_answer(Some((12, &p)), out));
    let expected = [
        hex("0230 012e 01010c 0226 0110"),
        ID.to_vec(),
        hex("0208"),
        START.to_le_bytes().to_vec(),
        hex("0308"),
        EXTRA.to_vec(),
        hex("030100"),
    ]
    .concat();
    assert_eq!(bytes, expected);
    // Without parameter 3 (iOS before 2021).
    let p = parameters(false);
    let bytes = written(|out| write_update_answer(Some((12, &p)), out));
    assert_eq!(&bytes[..6], hex("0226 0124 0101"));
    assert_eq!(bytes.len(), 0x26 + 2);
}

#[test]
fn status_widths_follow_the_elapsed_time() {
    let p = parameters(true);
    let status = |elapsed| written(|out| write_status(13, &p, elapsed, out));
    let head = |len: u8| [hex("01"), vec![len], hex("01010d 0226")].concat();
    for (elapsed, tail) in [
        (2, "030102"),
        (184, "0301b8"),
        (300, "03022c01"),
        (1_800_000, "0304 40771b00"),
        (1 << 33, "0308 0000000002000000"),
    ] {
        let bytes = status(elapsed);
        let tail = hex(tail);
        assert_eq!(bytes[..7], head(bytes.len() as u8 - 2)[..]);
        assert!(bytes.ends_with(&tail), "{elapsed}");
        assert_eq!(bytes.len(), 2 + 3 + 0x28 + tail.len());
    }
}

#[test]
fn read_answer_is_written_as_hap_nodejs_writes_it() {
    let mut config = sample(2);
    config.curve.points[0].hold_ms = 300_000;
    config.parameters.extra = None;
    let bytes = written(|out| write_read_answer(Some(&config), out));
    let p0 = &config.curve.points[0];
    let p1 = &config.curve.points[1];
    let expected_curve = [
        hex("0112 0104"),
        p0.brightness_factor.to_le_bytes().to_vec(),
        hex("0204"),
        p0.temperature.to_le_bytes().to_vec(),
        hex("030100 040100 0000 0118 0104"),
        p1.brightness_factor.to_le_bytes().to_vec(),
        hex("0204"),
        p1.temperature.to_le_bytes().to_vec(),
        // The hold of point 0 rides on point 1; varuints 1, 2, 4 bytes wide.
        hex("0304 40771b00 0404 e0930400 02010b 030c 0104 0a000000 0204 64000000"),
    ]
    .concat();
    let configuration = [
        hex("01010c 021c"),
        parameter_bytes(false),
        hex("030101 05"),
        vec![expected_curve.len() as u8],
        expected_curve,
        hex("0602 60ea 0804 c0270900"),
    ]
    .concat();
    assert_eq!(bytes, tlv(1, &configuration));
    assert_eq!(
        written(|out| write_configuration(&config, out)),
        configuration
    );
    // Nothing while no transition runs.
    assert_eq!(
        written(|out| write_read_answer(None, out)),
        Vec::<u8>::new()
    );
}

#[test]
fn parses_an_ios_update_with_the_hold_moved_back() {
    let config = sample(5);
    let ios = ios_configuration(&config);
    assert_eq!(parse_configuration(&ios), Ok(Update::Start(config.clone())));
    let request = parse_control(&update(&ios)).unwrap();
    assert_eq!(request.read, None);
    assert_eq!(request.update, Some(Update::Start(config)));
}

#[test]
fn the_duration_on_a_point_is_the_hold_of_the_point_before() {
    let point = |duration: Option<u8>| {
        let mut entry = hex("0104 0000803f 0204 0000c843 030100");
        if let Some(duration) = duration {
            entry.extend([4, 1, duration]);
        }
        entry
    };
    let curve = [
        list(1, &[point(Some(7)), point(None), point(Some(9))]),
        hex("02010b 0306 010100 020164"),
    ]
    .concat();
    let parameters = [tlv(1, &ID), hex("0200")].concat();
    let configuration = [hex("01010c"), tlv(2, &parameters), tlv(5, &curve)].concat();
    // The start is 8 bytes or nothing.
    assert_eq!(
        parse_configuration(&[&configuration[..], &hex("030101 080101")].concat()),
        Err(CodecError::Invalid("transition start"))
    );
    let configuration = [
        hex("01010c"),
        tlv(2, &parameter_bytes(false)),
        hex("030101"),
        tlv(5, &curve),
        hex("080101"),
    ]
    .concat();
    let Ok(Update::Start(config)) = parse_configuration(&configuration) else {
        panic!("not a start");
    };
    let holds: Vec<u32> = config.curve.points.iter().map(|p| p.hold_ms).collect();
    // Point 0's own duration (7) means nothing; point 2's (9) holds point 1.
    assert_eq!(holds, [0, 9, 0]);
    assert_eq!(config.curve.points[0].temperature, 400.0);
    assert_eq!(config.curve.points[0].brightness_factor, 1.0);
    assert_eq!(config.curve.brightness_range, (0, 100));
    assert_eq!(config.update_interval_ms, DEFAULT_UPDATE_INTERVAL_MS);
    assert_eq!(config.notify_interval_ms, 1);
    assert_eq!(config.parameters.extra, None);
}

// Fragments need values over 255 bytes, which only the `alloc` build takes.
#[cfg(feature = "alloc")]
#[test]
fn fragmented_at_three_levels_equals_the_joined_configuration() {
    let config = sample(42);
    let ios = ios_configuration(&config);
    let bytes = update(&ios);
    // The UPDATE, its configuration and the curve are each longer than 255 bytes.
    assert!(ios.len() > 3 * 255 && ios.windows(2).any(|w| w == [5, 0xff]));
    assert_eq!(&bytes[..2], &[2, 0xff]);
    assert_eq!(&bytes[257..259], &[2, 0xff]);
    assert_eq!(&bytes[2..4], &[1, 0xff]);
    assert_eq!(
        parse_control(&bytes).unwrap().update,
        Some(Update::Start(config.clone()))
    );
    assert_eq!(parse_configuration(&ios), Ok(Update::Start(config.clone())));
    // Written by us, fragmented by our writer at three levels too, it reads back.
    let answer = written(|out| write_read_answer(Some(&config), out));
    assert_eq!(&answer[..2], &[1, 0xff]);
    let mut joined = Vec::new();
    for fragment in answer.chunks(257) {
        joined.extend_from_slice(&fragment[2..]);
    }
    assert_eq!(
        parse_control(&update(&joined)).unwrap().update,
        Some(Update::Start(config))
    );
}

#[cfg(feature = "alloc")]
#[test]
fn a_fragment_boundary_inside_a_point_is_joined() {
    // Shift the curve so that its fragment boundary falls inside a float of a point.
    let config = sample(20);
    for padding in 0..24 {
        let mut ios = ios_configuration(&config);
        // An unknown item before the curve moves every later byte.
        ios.splice(0..0, tlv(9, &vec![0; padding]));
        assert_eq!(
            parse_control(&update(&ios)).unwrap().update,
            Some(Update::Start(config.clone())),
            "padding {padding}"
        );
    }
}

#[test]
fn round_trips() {
    for points in [1, 2, 5, 42, MAX_CURVE_POINTS] {
        let mut config = sample(points);
        for iid in [
            0,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            config.iid = iid;
            config.curve.brightness_iid = iid;
            config.update_interval_ms = iid as u32;
            config.parameters.extra = (iid % 2 == 0).then_some(EXTRA);
            let bytes = written(|out| write_configuration(&config, out));
            if bytes.len() > MAX_INPUT_LEN {
                let too_long = CodecError::TooLong { len: bytes.len() };
                assert_eq!(parse_configuration(&bytes), Err(too_long));
                continue;
            }
            assert_eq!(
                parse_configuration(&bytes),
                Ok(Update::Start(config.clone()))
            );
            let request = [tlv(1, &tlv(1, &[12])), update(&bytes)].concat();
            if request.len() <= MAX_INPUT_LEN {
                let request = parse_control(&request).unwrap();
                assert_eq!(request.read, Some(12));
                assert_eq!(request.update, Some(Update::Start(config.clone())));
            }
        }
    }
}

#[test]
fn stops() {
    // Type 3 absent, 0, or the iid alone as iOS sends it.
    assert_eq!(
        parse_control(&hex("0205 0103 01010c")).unwrap(),
        ControlRequest {
            read: None,
            update: Some(Update::Stop { iid: 12 })
        }
    );
    let mut ios = ios_configuration(&sample(3));
    let flag = ios.windows(3).position(|w| w == [3, 1, 1]).unwrap();
    ios[flag + 2] = 0;
    assert_eq!(parse_configuration(&ios), Ok(Update::Stop { iid: 12 }));
    // A stop reads nothing but the iid.
    assert_eq!(
        parse_configuration(&hex("01010c 0201ff 0501ff")),
        Ok(Update::Stop { iid: 12 })
    );
}

#[test]
fn read_and_empty_requests() {
    assert_eq!(
        parse_control(&hex("0103 01010c")).unwrap(),
        ControlRequest {
            read: Some(12),
            update: None
        }
    );
    assert_eq!(
        parse_control(&hex("0106 0102 0c01 0900")).unwrap().read,
        Some(268)
    );
    let nothing = ControlRequest {
        read: None,
        update: None,
    };
    assert_eq!(parse_control(&[]).unwrap(), nothing);
    assert_eq!(parse_control(&hex("0301ff 0000")).unwrap(), nothing);
}

#[test]
fn every_prefix_of_a_request_is_refused_without_panicking() {
    let bytes = update(&ios_configuration(&sample(FITTING_POINTS)));
    assert!(parse_control(&bytes).is_ok());
    for len in 1..bytes.len() {
        assert!(parse_control(&bytes[..len]).is_err(), "prefix of {len}");
    }
    let ios = ios_configuration(&sample(FITTING_POINTS));
    for len in 0..ios.len() {
        let _ = parse_configuration(&ios[..len]);
    }
    // Byte flips never panic either.
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xff;
        let _ = parse_control(&flipped);
    }
}

/// A valid start configuration with item `ty` replaced by `value`, or removed if `None`.
fn with_item(ty: u8, value: Option<Vec<u8>>) -> Vec<u8> {
    let parts = [
        (1, hex("0c")),
        (2, parameter_bytes(true)),
        (3, hex("01")),
        (5, curve_bytes(&[point_bytes()], hex("0b"), range_bytes())),
        (6, hex("60ea")),
        (8, hex("c0270900")),
    ];
    parts
        .into_iter()
        .filter_map(|(t, v)| match (t == ty, &value) {
            (false, _) => Some(tlv(t, &v)),
            (true, Some(value)) => Some(tlv(t, value)),
            (true, None) => None,
        })
        .flatten()
        .collect()
}

fn point_bytes() -> Vec<u8> {
    hex("0104 0000803f 0204 0000c843 030100")
}

fn range_bytes() -> Vec<u8> {
    hex("0104 0a000000 0204 64000000")
}

fn curve_bytes(points: &[Vec<u8>], brightness_iid: Vec<u8>, range: Vec<u8>) -> Vec<u8> {
    [list(1, points), tlv(2, &brightness_iid), tlv(3, &range)].concat()
}

fn error(configuration: &[u8]) -> CodecError {
    let direct = parse_configuration(configuration).unwrap_err();
    assert_eq!(parse_control(&update(configuration)), Err(direct));
    direct
}

#[test]
fn missing_items() {
    use CodecError::Missing;
    assert!(matches!(
        parse_configuration(&with_item(0, None)),
        Ok(Update::Start(_))
    ));
    assert_eq!(error(&with_item(1, None)), Missing("characteristic iid"));
    assert_eq!(error(&with_item(2, None)), Missing("transition parameters"));
    assert_eq!(error(&with_item(8, None)), Missing("notify interval"));
    assert_eq!(error(&with_item(5, None)), Missing("curve"));
    let params = |bytes: Vec<u8>| error(&with_item(2, Some(bytes)));
    assert_eq!(params(tlv(2, &[0; 8])), Missing("transition id"));
    assert_eq!(params(tlv(1, &ID)), Missing("transition start"));
    let curve = |bytes: Vec<u8>| error(&with_item(5, Some(bytes)));
    assert_eq!(
        curve([list(1, &[point_bytes()]), tlv(3, &range_bytes())].concat()),
        Missing("brightness iid")
    );
    assert_eq!(
        curve([list(1, &[point_bytes()]), tlv(2, &[11])].concat()),
        Missing("brightness range")
    );
    assert_eq!(
        curve(curve_bytes(&[point_bytes()], hex("0b"), hex("0101 0a"))),
        Missing("brightness maximum")
    );
    assert_eq!(
        curve(curve_bytes(&[point_bytes()], hex("0b"), hex("0201 64"))),
        Missing("brightness minimum")
    );
    let point = |bytes: &str| curve(curve_bytes(&[hex(bytes)], hex("0b"), range_bytes()));
    assert_eq!(point("0204 0000c843 030100"), Missing("brightness factor"));
    assert_eq!(point("0104 0000803f 030100"), Missing("point temperature"));
    assert_eq!(
        point("0104 0000803f 0204 0000c843"),
        Missing("point transition time")
    );
    assert_eq!(
        parse_control(&hex("0100")),
        Err(Missing("READ characteristic iid"))
    );
    assert_eq!(
        parse_control(&hex("0200")),
        Err(Missing("UPDATE configuration"))
    );
}

#[test]
fn invalid_values() {
    use CodecError::Invalid;
    let item = |ty: u8, bytes: &str| error(&with_item(ty, Some(hex(bytes))));
    // Integers of 3 bytes, or too large for their field.
    assert_eq!(item(1, "0c0000"), Invalid("characteristic iid"));
    assert_eq!(item(1, ""), Invalid("characteristic iid"));
    assert_eq!(item(6, "60ea00"), Invalid("update interval"));
    assert_eq!(item(6, "0000000001000000"), Invalid("update interval"));
    assert_eq!(item(8, "c0270900 00"), Invalid("notify interval"));
    assert_eq!(item(3, ""), Invalid("start flag"));
    assert_eq!(item(3, "0101"), Invalid("start flag"));
    let params = |bytes: Vec<u8>| error(&with_item(2, Some(bytes)));
    assert_eq!(
        params([tlv(1, &ID[..15]), tlv(2, &[0; 8])].concat()),
        Invalid("transition id")
    );
    assert_eq!(
        params([tlv(1, &ID), tlv(2, &[0; 8]), tlv(3, &[0; 7])].concat()),
        Invalid("transition parameter 3")
    );
    let curve = |bytes: Vec<u8>| error(&with_item(5, Some(bytes)));
    let point = |bytes: &str| curve(curve_bytes(&[hex(bytes)], hex("0b"), range_bytes()));
    assert_eq!(
        point("0103 00803f 0204 0000c843 030100"),
        Invalid("brightness factor")
    );
    assert_eq!(
        point("0104 0000803f 0204 0000c07f 030100"),
        Invalid("point temperature"),
        "NaN"
    );
    assert_eq!(
        point("0104 0000807f 0204 0000c843 030100"),
        Invalid("brightness factor"),
        "infinity"
    );
    assert_eq!(
        point("0104 0000803f 0204 0000c843 0308 0000000001000000"),
        Invalid("point transition time")
    );
    let two = [
        point_bytes(),
        hex("0104 0000803f 0204 0000c843 030100 0403 000000"),
    ];
    assert_eq!(
        curve(curve_bytes(&two, hex("0b"), range_bytes())),
        Invalid("point duration")
    );
    assert_eq!(
        curve(curve_bytes(&[point_bytes()], hex("0b0000"), range_bytes())),
        Invalid("brightness iid")
    );
    assert_eq!(
        curve(curve_bytes(
            &[point_bytes()],
            hex("0b"),
            hex("0101 65 0201 64")
        )),
        Invalid("brightness range, minimum above maximum")
    );
    assert_eq!(
        curve(curve_bytes(
            &[point_bytes()],
            hex("0b"),
            hex("0103 0a0000 0201 64")
        )),
        Invalid("brightness minimum")
    );
    assert_eq!(
        curve([tlv(2, &[11]), tlv(3, &range_bytes())].concat()),
        Invalid("curve, which has no points")
    );
    // An empty list, as HAP-NodeJS writes one, is one empty point.
    assert_eq!(
        curve([tlv(1, &[]), tlv(2, &[11]), tlv(3, &range_bytes())].concat()),
        CodecError::Missing("brightness factor")
    );
}

#[test]
fn repeated_items() {
    use CodecError::Repeated;
    // Everything twice: the first repeat found is the iid.
    let twice = [with_item(0, None), with_item(0, None)].concat();
    assert_eq!(error(&twice), Repeated("characteristic iid"));
    assert_eq!(
        parse_control(&hex("0103 01010c 0205 0103 01010c 0103 01010c")),
        Err(Repeated("READ request"))
    );
    assert_eq!(
        parse_control(&hex("0205 0103 01010c 0000 0205 0103 01010c")),
        Err(Repeated("UPDATE request"))
    );
    let curve = |bytes: Vec<u8>| error(&with_item(5, Some(bytes)));
    // Points not separated by a delimiter, or with another item between.
    let together = [
        tlv(1, &point_bytes()),
        tlv(2, &[11]),
        tlv(1, &point_bytes()),
    ]
    .concat();
    assert_eq!(
        curve([together, tlv(3, &range_bytes())].concat()),
        Repeated("curve point, outside a list")
    );
    let point = |bytes: &str| curve(curve_bytes(&[hex(bytes)], hex("0b"), range_bytes()));
    assert_eq!(
        point("0104 0000803f 0204 0000c843 030100 030100"),
        Malformed(TlvError::ShortFragment { offset: 15 })
    );
    assert_eq!(
        point("0104 0000803f 0204 0000c843 030100 0000 030100"),
        Repeated("point transition time")
    );
}

use CodecError::Malformed;

#[test]
fn malformed_tlv_at_every_level() {
    assert_eq!(
        parse_control(&hex("0205 0103 01010c 01")),
        Err(Malformed(TlvError::Truncated { offset: 7 }))
    );
    assert_eq!(
        parse_control(&hex("0205 0104 01010c")),
        Err(Malformed(TlvError::Truncated { offset: 0 }))
    );
    assert_eq!(
        parse_control(&hex("0205 0103 01020c")),
        Err(Malformed(TlvError::Truncated { offset: 0 }))
    );
    // Two fragments of a value where the first is short.
    assert_eq!(
        parse_control(&hex("0201 00 0201 00")),
        Err(Malformed(TlvError::ShortFragment { offset: 3 }))
    );
    // A full fragment that ends the input, and a trailing empty fragment, are fine.
    if MAX_INPUT_LEN < 300 {
        return;
    }
    let mut full = tlv(9, &[0; 255]);
    assert_eq!(parse_control(&full).unwrap().update, None);
    full.extend(hex("0900 0103 01010c"));
    assert_eq!(parse_control(&full).unwrap().read, Some(12));
}

#[test]
fn limits() {
    let long = vec![0; MAX_INPUT_LEN + 1];
    assert_eq!(
        parse_control(&long),
        Err(CodecError::TooLong {
            len: MAX_INPUT_LEN + 1
        })
    );
    assert_eq!(
        parse_configuration(&long),
        Err(CodecError::TooLong {
            len: MAX_INPUT_LEN + 1
        })
    );
    // A curve of 65 points is over 1 KiB, which only the `alloc` build takes.
    if MAX_INPUT_LEN < 2048 {
        return;
    }
    let points: Vec<Vec<u8>> = vec![point_bytes(); MAX_CURVE_POINTS + 1];
    assert_eq!(
        error(&with_item(
            5,
            Some(curve_bytes(&points, hex("0b"), range_bytes()))
        )),
        CodecError::TooManyPoints
    );
    let points: Vec<Vec<u8>> = vec![point_bytes(); MAX_CURVE_POINTS];
    let Ok(Update::Start(config)) = parse_configuration(&with_item(
        5,
        Some(curve_bytes(&points, hex("0b"), range_bytes())),
    )) else {
        panic!("64 points are fine");
    };
    assert_eq!(config.curve.points.len(), MAX_CURVE_POINTS);
}

#[test]
fn unwritable_configurations_are_refused() {
    let mut out = [0; 4096];
    let mut config = sample(3);
    config.curve.points[2].hold_ms = 1;
    assert_eq!(
        write_configuration(&config, &mut out),
        Err(CodecError::Invalid("hold of the last point"))
    );
    assert_eq!(
        write_read_answer(Some(&config), &mut out),
        Err(CodecError::Invalid("hold of the last point"))
    );
    let mut config = sample(3);
    config.curve.points[1].temperature = f32::NAN;
    assert_eq!(
        write_configuration(&config, &mut out),
        Err(CodecError::Invalid("point temperature"))
    );
    let mut config = sample(3);
    config.curve.points[0].brightness_factor = f32::NEG_INFINITY;
    assert_eq!(
        write_configuration(&config, &mut out),
        Err(CodecError::Invalid("brightness factor"))
    );
    let mut config = sample(3);
    config.curve.brightness_range = (5, 4);
    assert_eq!(
        write_configuration(&config, &mut out),
        Err(CodecError::Invalid(
            "brightness range, minimum above maximum"
        ))
    );
    config.curve.points.clear();
    assert_eq!(
        write_configuration(&config, &mut out),
        Err(CodecError::Invalid("curve, which has no points"))
    );
}

#[test]
fn writers_refuse_small_buffers_with_the_size_needed() {
    // `written` checks every shorter buffer; run it over the fragmented answers.
    let config = sample(MAX_CURVE_POINTS);
    let answer = written(|out| write_read_answer(Some(&config), out));
    assert!(answer.len() > 3 * 255);
    let p = parameters(true);
    written(|out| write_status(u64::MAX, &p, u64::MAX, out));
    written(|out| write_supported_configuration(u64::MAX, 0, out));
}

#[test]
fn errors_display() {
    use std::string::ToString;
    for (error, text) in [
        (
            CodecError::Missing("curve"),
            "adaptive lighting TLV8 lacks the curve",
        ),
        (
            CodecError::Repeated("curve"),
            "adaptive lighting TLV8 repeats the curve",
        ),
        (
            CodecError::Invalid("curve"),
            "adaptive lighting TLV8 has an invalid curve",
        ),
        (
            CodecError::TooManyPoints,
            "adaptive lighting curve has more than 64 points",
        ),
        (
            CodecError::BufferTooSmall { required: 9 },
            "buffer too small for adaptive lighting TLV8: 9 bytes needed",
        ),
        (
            CodecError::Malformed(TlvError::Truncated { offset: 3 }),
            "malformed adaptive lighting TLV8: TLV item at byte 3 runs past the end",
        ),
    ] {
        assert_eq!(error.to_string(), text);
    }
    assert!(CodecError::TooLong { len: 5000 }
        .to_string()
        .contains("5000 bytes"));
    let _: &dyn core::error::Error = &CodecError::TooManyPoints;
}
