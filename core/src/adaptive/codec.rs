//! The TLV8 formats of Adaptive Lighting, parsed and written without a heap.
//!
//! Three characteristics carry them. Integers are little-endian; a *varuint* is 1, 2, 4
//! or 8 bytes, the fewest of those that hold the value (HAP-NodeJS `util/tlv.js`
//! `writeVariableUIntLE`), and a reader takes any of the four widths. Floats are `f32`.
//! A list repeats one type with an empty type-0 item (`00 00`) between entries. Any value
//! longer than 255 bytes is split into 255-byte fragments of its type, at every level of
//! nesting: iOS fragments the UPDATE, its configuration and the curve all at once, and a
//! fragment boundary can fall inside a curve point.
//!
//! Line numbers below are in HAP-NodeJS 1.2.0's
//! `dist/lib/controller/AdaptiveLightingController.js` (ALC), which these formats follow.
//!
//! **Supported Characteristic Value Transition Configuration** (0x144, read;
//! [`write_supported_configuration`], ALC:721-730): a list of two entries, one per
//! characteristic that can follow a curve:
//!
//! ```text
//! 01 L[ 01 varuint(Brightness iid) 02 01 01 ] 00 00 01 L[ 01 varuint(ColorTemperature iid) 02 01 02 ]
//! ```
//!
//! **Characteristic Value Transition Control** (0x143, written with a write response;
//! [`parse_control`], ALC:748-769): a READ (`01 L[ 01 varuint(iid) ]`), an UPDATE
//! (`02 L[ 01 L[ configuration ] ]`), or both, answered in that order. A configuration
//! (ALC:795-854, [`parse_configuration`]):
//!
//! | type | value |
//! |---|---|
//! | 1 | characteristic iid, varuint (required) |
//! | 2 | parameters: `01` id (16 bytes), `02` start (8 bytes, ms since 2001-01-01), optional `03` (8 bytes) |
//! | 3 | one byte, 1: start. Absent or 0: stop the transition of iid (ALC:802-806) |
//! | 5 | curve: a list of `01` points, then `02` varuint Brightness iid, `03` L[ `01` min `02` max ] |
//! | 6 | update interval, ms, varuint (absent: [`DEFAULT_UPDATE_INTERVAL_MS`]) |
//! | 8 | notify interval, ms, varuint (required) |
//!
//! A point (ALC:819-834) is `01` f32 brightness factor, `02` f32 mired, `03` varuint ramp
//! time in ms, and an optional `04` varuint duration in ms. The duration read on point
//! *k* is how long point *k − 1* is held (ALC:825-827), so it lands in
//! [`CurvePoint::hold_ms`] of the point before; the first point's duration means nothing,
//! and the last point is never held. Types 4 and 7 of a configuration, like any other
//! unknown type, are ignored.
//!
//! The answers: to an UPDATE that starts, `02 L[ 01 L[ status ] ]` with the time since the
//! start forced to 0 ([`write_update_answer`], ALC:864, 731-747); to one that stops,
//! `02 00`; to a READ while a transition runs, `01 L[ configuration ]`, written as
//! HAP-NodeJS writes it ([`write_read_answer`], [`write_configuration`], ALC:770-794),
//! and nothing while none runs. Reading 0x143 while a transition runs gives the status
//! on its own ([`write_status`], ALC:653-656, 731-747):
//!
//! ```text
//! 01 L[ 01 varuint(iid) 02 L[ parameters ] 03 varuint(ms since the UPDATE) ]
//! ```
//!
//! # Where this parser is stricter than HAP-NodeJS
//!
//! HAP-NodeJS throws (and answers -70402) on most malformed input, but it also reads some
//! nonsense: it concatenates repeated items, reads a too-long integer by its first bytes
//! and ignores the rest, and reads the update interval as 2 bytes whatever its length.
//! Here a repeated item is [`CodecError::Repeated`], and an integer of another width
//! than 1, 2, 4 or 8 bytes, or whose value does not fit its field, is
//! [`CodecError::Invalid`], as are floats that are not 4 bytes or not finite, and a
//! brightness range whose minimum is above its maximum. A curve of one point, which
//! HAP-NodeJS cannot read (it walks the point's bytes as if they were a list), is fine.
//!
//! # Limits
//!
//! Fragments are joined in place, in a copy of the input on the stack: inputs longer
//! than [`MAX_INPUT_LEN`] are refused with [`CodecError::TooLong`]. A curve holds at
//! most [`MAX_CURVE_POINTS`]. Nothing here allocates, and nothing panics on any input.

use core::ops::Range;

use reader::{bytes, once, read_array, read_f32, read_varuint, read_varuint32, required, Level};
use writer::Writer;

use super::{
    ControlRequest, Curve, CurvePoint, TransitionConfig, TransitionParameters, Update,
    DEFAULT_UPDATE_INTERVAL_MS, MAX_CURVE_POINTS,
};
use crate::tlv::TlvError;

mod reader;
#[cfg(test)]
mod tests;
mod writer;

/// The longest input [`parse_control`] and [`parse_configuration`] take: the longest
/// TLV8 value a characteristic holds ([`BYTES_CAPACITY`](crate::database::BYTES_CAPACITY)),
/// 4096 bytes with `alloc` and 256 without.
pub const MAX_INPUT_LEN: usize = crate::database::BYTES_CAPACITY;

/// The type of the empty item between the entries of a list.
const DELIMITER: u8 = 0;

/// Item types of a Transition Control write (ALC:30-37).
mod control {
    pub(super) const READ: u8 = 1;
    pub(super) const UPDATE: u8 = 2;
    /// Inside READ, and inside a status.
    pub(super) const IID: u8 = 1;
    /// Inside UPDATE, and inside the update answer.
    pub(super) const CONFIGURATION: u8 = 1;
}

/// Item types of a configuration (ALC:42-53), and of a status (ALC:84-87), which shares
/// 1 and 2.
mod config {
    pub(super) const IID: u8 = 1;
    pub(super) const PARAMETERS: u8 = 2;
    pub(super) const START: u8 = 3;
    pub(super) const CURVE: u8 = 5;
    pub(super) const UPDATE_INTERVAL: u8 = 6;
    pub(super) const NOTIFY_INTERVAL: u8 = 8;
    /// In a status: the time since the transition started.
    pub(super) const ELAPSED: u8 = 3;
}

/// Item types of the parameters (ALC:54-59).
mod params {
    pub(super) const ID: u8 = 1;
    pub(super) const START: u8 = 2;
    pub(super) const EXTRA: u8 = 3;
}

/// Item types of a curve (ALC:60-65), of its points (ALC:66-72) and of its brightness
/// range (ALC:73-77).
mod curve {
    pub(super) const POINT: u8 = 1;
    pub(super) const BRIGHTNESS_IID: u8 = 2;
    pub(super) const BRIGHTNESS_RANGE: u8 = 3;
    pub(super) const FACTOR: u8 = 1;
    pub(super) const TEMPERATURE: u8 = 2;
    pub(super) const TRANSITION: u8 = 3;
    pub(super) const DURATION: u8 = 4;
    pub(super) const MIN: u8 = 1;
    pub(super) const MAX: u8 = 2;
}

/// Item types of the supported configuration (ALC:15-29).
mod supported {
    pub(super) const ENTRY: u8 = 1;
    pub(super) const IID: u8 = 1;
    pub(super) const KIND: u8 = 2;
    pub(super) const BRIGHTNESS: u8 = 1;
    pub(super) const COLOR_TEMPERATURE: u8 = 2;
}

/// Why Adaptive Lighting bytes could not be parsed or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The TLV8 structure is broken at some level: an item runs past its enclosing value,
    /// or a value continues after a fragment shorter than 255 bytes. Offsets count from
    /// the start of the enclosing value.
    Malformed(TlvError),
    /// A required item is absent.
    Missing(&'static str),
    /// An item appears twice where it may appear once.
    Repeated(&'static str),
    /// An item's value has the wrong length or a value its field cannot take.
    Invalid(&'static str),
    /// The curve has more than [`MAX_CURVE_POINTS`] points.
    TooManyPoints,
    /// The input is longer than [`MAX_INPUT_LEN`].
    TooLong {
        /// The input's length.
        len: usize,
    },
    /// The output buffer is too small; `required` bytes are needed.
    BufferTooSmall {
        /// The size the buffer would need.
        required: usize,
    },
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CodecError::Malformed(error) => write!(f, "malformed adaptive lighting TLV8: {error}"),
            CodecError::Missing(what) => write!(f, "adaptive lighting TLV8 lacks the {what}"),
            CodecError::Repeated(what) => {
                write!(f, "adaptive lighting TLV8 repeats the {what}")
            }
            CodecError::Invalid(what) => {
                write!(f, "adaptive lighting TLV8 has an invalid {what}")
            }
            CodecError::TooManyPoints => {
                write!(
                    f,
                    "adaptive lighting curve has more than {MAX_CURVE_POINTS} points"
                )
            }
            CodecError::TooLong { len } => write!(
                f,
                "adaptive lighting TLV8 of {len} bytes is longer than {MAX_INPUT_LEN}"
            ),
            CodecError::BufferTooSmall { required } => write!(
                f,
                "buffer too small for adaptive lighting TLV8: {required} bytes needed"
            ),
        }
    }
}

impl core::error::Error for CodecError {}

impl From<TlvError> for CodecError {
    fn from(error: TlvError) -> Self {
        CodecError::Malformed(error)
    }
}

/// Parses a write to Characteristic Value Transition Control (0x143): a READ, an UPDATE,
/// both, or neither (which HAP-NodeJS answers with nothing). Other item types are
/// ignored.
///
/// The UPDATE's configuration is read as [`parse_configuration`] reads it.
///
/// ```
/// use hap_core::adaptive::{codec::parse_control, Update};
///
/// // A READ of iid 12's transition, and an UPDATE that stops it.
/// let request = parse_control(&[1, 3, 1, 1, 12, 2, 5, 1, 3, 1, 1, 12]).unwrap();
/// assert_eq!(request.read, Some(12));
/// assert_eq!(request.update, Some(Update::Stop { iid: 12 }));
/// ```
pub fn parse_control(input: &[u8]) -> Result<ControlRequest, CodecError> {
    let mut buf = [0u8; MAX_INPUT_LEN];
    let buf = copy_input(input, &mut buf)?;
    let mut top = Level::of(&(0..buf.len()));
    let (mut read, mut update) = (None, None);
    while let Some(found) = top.next(buf)? {
        match found.ty {
            control::READ => once(&mut read, found, "READ request")?,
            control::UPDATE => once(&mut update, found, "UPDATE request")?,
            _ => {}
        }
    }

    // The request is built where it stays, and the curve parsed into it, so that the
    // stack holds one curve beside the input's copy.
    let mut request = ControlRequest {
        read: None,
        update: None,
    };
    if let Some(range) = read {
        let mut level = Level::of(&range);
        let mut iid = None;
        while let Some(found) = level.next(buf)? {
            if found.ty == control::IID {
                once(&mut iid, found, "READ characteristic iid")?;
            }
        }
        let iid = required(iid, "READ characteristic iid")?;
        request.read = Some(read_varuint(bytes(buf, &iid), "READ characteristic iid")?);
    }
    if let Some(range) = update {
        let mut level = Level::of(&range);
        let mut configuration = None;
        while let Some(found) = level.next(buf)? {
            if found.ty == control::CONFIGURATION {
                once(&mut configuration, found, "UPDATE configuration")?;
            }
        }
        let configuration = required(configuration, "UPDATE configuration")?;
        parse_configuration_into(buf, Level::of(&configuration), &mut request.update)?;
    }
    Ok(request)
}

/// Parses a value transition configuration, the value inside an UPDATE: a
/// [`Update::Start`] if its type 3 is present and not 0, else an [`Update::Stop`], for
/// which only the iid is read.
///
/// A point's duration is moved back one point, into the [`CurvePoint::hold_ms`] of the
/// point before it, as HAP-NodeJS does.
pub fn parse_configuration(input: &[u8]) -> Result<Update, CodecError> {
    let mut buf = [0u8; MAX_INPUT_LEN];
    let buf = copy_input(input, &mut buf)?;
    let whole = Level::of(&(0..buf.len()));
    let mut update = None;
    parse_configuration_into(buf, whole, &mut update)?;
    // Always set when parsing succeeds.
    update.ok_or(CodecError::Missing("configuration"))
}

/// Copies the input into the stack buffer whose fragments will be joined in place.
fn copy_input<'b>(input: &[u8], buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
    let buf = buf
        .get_mut(..input.len())
        .ok_or(CodecError::TooLong { len: input.len() })?;
    buf.copy_from_slice(input);
    Ok(buf)
}

/// Parses a configuration into `update`, in place.
fn parse_configuration_into(
    buf: &mut [u8],
    mut level: Level,
    update: &mut Option<Update>,
) -> Result<(), CodecError> {
    let (mut iid, mut parameters, mut start, mut curve) = (None, None, None, None);
    let (mut update_interval, mut notify_interval) = (None, None);
    while let Some(found) = level.next(buf)? {
        match found.ty {
            config::IID => once(&mut iid, found, "characteristic iid")?,
            config::PARAMETERS => once(&mut parameters, found, "transition parameters")?,
            config::START => once(&mut start, found, "start flag")?,
            config::CURVE => once(&mut curve, found, "curve")?,
            config::UPDATE_INTERVAL => once(&mut update_interval, found, "update interval")?,
            config::NOTIFY_INTERVAL => once(&mut notify_interval, found, "notify interval")?,
            _ => {}
        }
    }

    let iid = read_varuint(
        bytes(buf, &required(iid, "characteristic iid")?),
        "characteristic iid",
    )?;
    let starts = match start.map(|range| bytes(buf, &range)) {
        None => false,
        Some([flag]) => *flag != 0,
        Some(_) => return Err(CodecError::Invalid("start flag")),
    };
    if !starts {
        *update = Some(Update::Stop { iid });
        return Ok(());
    }

    let parameters = parse_parameters(buf, &required(parameters, "transition parameters")?)?;
    let update_interval_ms = match update_interval {
        None => DEFAULT_UPDATE_INTERVAL_MS,
        Some(range) => read_varuint32(bytes(buf, &range), "update interval")?,
    };
    let notify_interval_ms = read_varuint32(
        bytes(buf, &required(notify_interval, "notify interval")?),
        "notify interval",
    )?;
    let curve_range = required(curve, "curve")?;
    let config = update.insert(Update::Start(TransitionConfig {
        iid,
        parameters,
        curve: Curve {
            points: heapless::Vec::new(),
            brightness_iid: 0,
            brightness_range: (0, 0),
        },
        update_interval_ms,
        notify_interval_ms,
    }));
    if let Update::Start(config) = config {
        parse_curve_into(buf, &curve_range, &mut config.curve)?;
    }
    Ok(())
}

fn parse_parameters(
    buf: &mut [u8],
    range: &Range<usize>,
) -> Result<TransitionParameters, CodecError> {
    let mut level = Level::of(range);
    let (mut id, mut start, mut extra) = (None, None, None);
    while let Some(found) = level.next(buf)? {
        match found.ty {
            params::ID => once(&mut id, found, "transition id")?,
            params::START => once(&mut start, found, "transition start")?,
            params::EXTRA => once(&mut extra, found, "transition parameter 3")?,
            _ => {}
        }
    }
    let id = read_array(bytes(buf, &required(id, "transition id")?), "transition id")?;
    let start = read_array(
        bytes(buf, &required(start, "transition start")?),
        "transition start",
    )?;
    let extra = match extra {
        None => None,
        Some(range) => Some(read_array(bytes(buf, &range), "transition parameter 3")?),
    };
    Ok(TransitionParameters {
        id,
        start: u64::from_le_bytes(start),
        extra,
    })
}

/// Parses a curve into `curve`, whose points are empty.
fn parse_curve_into(
    buf: &mut [u8],
    range: &Range<usize>,
    curve: &mut Curve,
) -> Result<(), CodecError> {
    let mut level = Level::of(range);
    let points = &mut curve.points;
    let (mut brightness_iid, mut brightness_range) = (None, None);
    // Points form a list, as HAP-NodeJS's `decodeWithLists` reads it: a point after the
    // first must follow a delimiter that follows a point.
    let mut last_type = None;
    let mut after_delimiter = false;
    while let Some(found) = level.next(buf)? {
        if found.ty == DELIMITER && found.value.is_empty() {
            after_delimiter = true;
            continue;
        }
        let ty = found.ty;
        match ty {
            curve::POINT => {
                let in_list = after_delimiter && last_type == Some(curve::POINT);
                if !points.is_empty() && !in_list {
                    return Err(CodecError::Repeated("curve point, outside a list"));
                }
                let (point, duration) = parse_point(buf, &found.value)?;
                // The duration on a point is the hold of the one before (ALC:825-827).
                if let Some(previous) = points.last_mut() {
                    previous.hold_ms = duration;
                }
                points.push(point).map_err(|_| CodecError::TooManyPoints)?;
            }
            curve::BRIGHTNESS_IID => once(&mut brightness_iid, found, "brightness iid")?,
            curve::BRIGHTNESS_RANGE => once(&mut brightness_range, found, "brightness range")?,
            _ => {}
        }
        last_type = Some(ty);
        after_delimiter = false;
    }
    if points.is_empty() {
        return Err(CodecError::Invalid("curve, which has no points"));
    }
    curve.brightness_iid = read_varuint(
        bytes(buf, &required(brightness_iid, "brightness iid")?),
        "brightness iid",
    )?;
    curve.brightness_range =
        parse_brightness_range(buf, &required(brightness_range, "brightness range")?)?;
    Ok(())
}

/// A point, and the duration it carries (0 if absent), which belongs to the point before.
fn parse_point(buf: &mut [u8], range: &Range<usize>) -> Result<(CurvePoint, u32), CodecError> {
    let mut level = Level::of(range);
    let (mut factor, mut temperature, mut transition, mut duration) = (None, None, None, None);
    while let Some(found) = level.next(buf)? {
        match found.ty {
            curve::FACTOR => once(&mut factor, found, "brightness factor")?,
            curve::TEMPERATURE => once(&mut temperature, found, "point temperature")?,
            curve::TRANSITION => once(&mut transition, found, "point transition time")?,
            curve::DURATION => once(&mut duration, found, "point duration")?,
            _ => {}
        }
    }
    let point = CurvePoint {
        brightness_factor: read_f32(
            bytes(buf, &required(factor, "brightness factor")?),
            "brightness factor",
        )?,
        temperature: read_f32(
            bytes(buf, &required(temperature, "point temperature")?),
            "point temperature",
        )?,
        transition_ms: read_varuint32(
            bytes(buf, &required(transition, "point transition time")?),
            "point transition time",
        )?,
        hold_ms: 0,
    };
    let duration = match duration {
        None => 0,
        Some(range) => read_varuint32(bytes(buf, &range), "point duration")?,
    };
    Ok((point, duration))
}

fn parse_brightness_range(buf: &mut [u8], range: &Range<usize>) -> Result<(u32, u32), CodecError> {
    let mut level = Level::of(range);
    let (mut min, mut max) = (None, None);
    while let Some(found) = level.next(buf)? {
        match found.ty {
            curve::MIN => once(&mut min, found, "brightness minimum")?,
            curve::MAX => once(&mut max, found, "brightness maximum")?,
            _ => {}
        }
    }
    let min = read_varuint32(
        bytes(buf, &required(min, "brightness minimum")?),
        "brightness minimum",
    )?;
    let max = read_varuint32(
        bytes(buf, &required(max, "brightness maximum")?),
        "brightness maximum",
    )?;
    // A range upside down has no meaning, and clamping to it would panic.
    if min > max {
        return Err(CodecError::Invalid(
            "brightness range, minimum above maximum",
        ));
    }
    Ok((min, max))
}

/// Writes the value of Supported Characteristic Value Transition Configuration (0x144):
/// Brightness and ColorTemperature, by iid, can follow a transition.
///
/// ```
/// use hap_core::adaptive::codec::write_supported_configuration;
///
/// let mut out = [0; 32];
/// let len = write_supported_configuration(11, 12, &mut out).unwrap();
/// assert_eq!(out[..len], [1, 6, 1, 1, 11, 2, 1, 1, 0, 0, 1, 6, 1, 1, 12, 2, 1, 2]);
/// ```
pub fn write_supported_configuration(
    brightness_iid: u64,
    temperature_iid: u64,
    out: &mut [u8],
) -> Result<usize, CodecError> {
    let mut w = Writer::new(out);
    let entries = [
        (brightness_iid, supported::BRIGHTNESS),
        (temperature_iid, supported::COLOR_TEMPERATURE),
    ];
    for (index, (iid, kind)) in entries.into_iter().enumerate() {
        if index > 0 {
            w.delimiter();
        }
        let entry = w.begin(supported::ENTRY);
        w.varuint(supported::IID, iid);
        w.item(supported::KIND, &[kind]);
        w.end(entry);
    }
    w.finish()
}

/// Writes the value of Characteristic Value Transition Control (0x143) read while a
/// transition runs: its iid, its parameters, and the milliseconds since it started on
/// the accessory's clock.
pub fn write_status(
    iid: u64,
    parameters: &TransitionParameters,
    elapsed_ms: u64,
    out: &mut [u8],
) -> Result<usize, CodecError> {
    let mut w = Writer::new(out);
    status(&mut w, iid, parameters, elapsed_ms);
    w.finish()
}

/// `01 L[ 01 iid 02 L[parameters] 03 elapsed ]` (ALC:731-747).
fn status(w: &mut Writer<'_>, iid: u64, parameters: &TransitionParameters, elapsed_ms: u64) {
    let status = w.begin(control::CONFIGURATION);
    w.varuint(config::IID, iid);
    write_parameters(w, parameters);
    w.varuint(config::ELAPSED, elapsed_ms);
    w.end(status);
}

fn write_parameters(w: &mut Writer<'_>, parameters: &TransitionParameters) {
    let mark = w.begin(config::PARAMETERS);
    w.item(params::ID, &parameters.id);
    w.item(params::START, &parameters.start.to_le_bytes());
    if let Some(extra) = &parameters.extra {
        w.item(params::EXTRA, extra);
    }
    w.end(mark);
}

/// Writes the answer to an UPDATE: for one that started (or replaced) the transition of
/// iid with these parameters, the status with 0 ms elapsed, as HAP-NodeJS answers
/// (ALC:864); for one that stopped it (`None`), `02 00`.
///
/// ```
/// use hap_core::adaptive::codec::write_update_answer;
///
/// let mut out = [0; 2];
/// assert_eq!(write_update_answer(None, &mut out), Ok(2));
/// assert_eq!(out, [2, 0]);
/// ```
pub fn write_update_answer(
    started: Option<(u64, &TransitionParameters)>,
    out: &mut [u8],
) -> Result<usize, CodecError> {
    let mut w = Writer::new(out);
    let answer = w.begin(control::UPDATE);
    if let Some((iid, parameters)) = started {
        status(&mut w, iid, parameters, 0);
    }
    w.end(answer);
    w.finish()
}

/// Writes the UPDATE a controller sends to start `config`, `02 L[01 L[configuration]]`,
/// fragmented where a level is over 255 bytes as iOS fragments it: what
/// [`parse_control`] reads back as [`Update::Start`]. For controllers and tests.
pub fn write_start_request(config: &TransitionConfig, out: &mut [u8]) -> Result<usize, CodecError> {
    check_writable(config)?;
    let mut w = Writer::new(out);
    let update = w.begin(control::UPDATE);
    let inner = w.begin(control::CONFIGURATION);
    configuration(&mut w, config);
    w.end(inner);
    w.end(update);
    w.finish()
}

/// Writes the answer to a READ: `01 L[configuration]` while a transition runs, nothing
/// (0 bytes) while none does.
pub fn write_read_answer(
    config: Option<&TransitionConfig>,
    out: &mut [u8],
) -> Result<usize, CodecError> {
    let mut w = Writer::new(out);
    if let Some(config) = config {
        check_writable(config)?;
        let answer = w.begin(control::READ);
        configuration(&mut w, config);
        w.end(answer);
    }
    w.finish()
}

/// Writes a value transition configuration as HAP-NodeJS writes it in its READ answer
/// (ALC:780-792): widths as HAP-NodeJS chooses them (varuints, and 4-byte brightness
/// limits), every point with a duration, holds moved forward one point, and the start
/// flag set. [`parse_configuration`] reads it back as `Update::Start(config.clone())`.
///
/// A curve must have at least one point, finite floats, a brightness range whose minimum
/// is not above its maximum, and a last point that is not held (the format has no place
/// for that hold): anything else is [`CodecError::Invalid`], as the parser would say.
pub fn write_configuration(config: &TransitionConfig, out: &mut [u8]) -> Result<usize, CodecError> {
    check_writable(config)?;
    let mut w = Writer::new(out);
    configuration(&mut w, config);
    w.finish()
}

/// Refuses what [`parse_configuration`] would not read back the same.
fn check_writable(config: &TransitionConfig) -> Result<(), CodecError> {
    let points = &config.curve.points;
    let Some(last) = points.last() else {
        return Err(CodecError::Invalid("curve, which has no points"));
    };
    if last.hold_ms != 0 {
        return Err(CodecError::Invalid("hold of the last point"));
    }
    for point in points {
        if !point.temperature.is_finite() {
            return Err(CodecError::Invalid("point temperature"));
        }
        if !point.brightness_factor.is_finite() {
            return Err(CodecError::Invalid("brightness factor"));
        }
    }
    let (min, max) = config.curve.brightness_range;
    if min > max {
        return Err(CodecError::Invalid(
            "brightness range, minimum above maximum",
        ));
    }
    Ok(())
}

fn configuration(w: &mut Writer<'_>, config: &TransitionConfig) {
    w.varuint(config::IID, config.iid);
    write_parameters(w, &config.parameters);
    w.item(config::START, &[1]);
    let curve = w.begin(config::CURVE);
    let mut previous_hold = 0;
    for (index, point) in config.curve.points.iter().enumerate() {
        if index > 0 {
            w.delimiter();
        }
        let entry = w.begin(curve::POINT);
        w.item(curve::FACTOR, &point.brightness_factor.to_le_bytes());
        w.item(curve::TEMPERATURE, &point.temperature.to_le_bytes());
        w.varuint(curve::TRANSITION, point.transition_ms.into());
        // Each point carries the hold of the one before (ALC:787).
        w.varuint(curve::DURATION, previous_hold);
        w.end(entry);
        previous_hold = point.hold_ms.into();
    }
    w.varuint(curve::BRIGHTNESS_IID, config.curve.brightness_iid);
    let range = w.begin(curve::BRIGHTNESS_RANGE);
    let (min, max) = config.curve.brightness_range;
    w.item(curve::MIN, &min.to_le_bytes());
    w.item(curve::MAX, &max.to_le_bytes());
    w.end(range);
    w.end(curve);
    w.varuint(config::UPDATE_INTERVAL, config.update_interval_ms.into());
    w.varuint(config::NOTIFY_INTERVAL, config.notify_interval_ms.into());
}
