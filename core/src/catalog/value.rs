//! Characteristic values and their validation.
//!
//! A write arrives as a JSON scalar ([`Scalar`]). [`coerce`] turns it into a typed
//! [`Value`] for the characteristic's format, and [`Constraints::check`] applies the
//! characteristic's range, step, valid values and length limits. Both reject; neither
//! clamps. HAP-python clamps and brutella clamps (and panics on uint64); a value the
//! accessory cannot take as given must fail with -70410 so the controller knows.
//!
//! The one adjustment is HomeKitADK's (`HAP/HAPCharacteristic.c`): a float within
//! [`STEP_TOLERANCE`] of a step is rounded onto it, since controllers compute floats in
//! binary and send 10.150001 for 10.15.

use super::{CharacteristicType, Format};

/// HAP's default `maxLen` for strings.
pub const DEFAULT_MAX_LEN: u16 = 64;
/// The largest `maxLen` HAP allows.
pub const MAX_MAX_LEN: u16 = 256;
/// HAP's default `maxDataLen` for data values.
pub const DEFAULT_MAX_DATA_LEN: u32 = 2_097_152;
/// How far from a step, in steps, a float may be and still be taken (then rounded onto
/// the step): HomeKitADK's `IS_VALUE_IN_RANGE_WITH_TOLERANCE(…, 0.1f)`.
pub const STEP_TOLERANCE: f64 = 0.1;
/// The most decimal places a step or minimum is taken to have when a rounded float is
/// made to print as its decimal (10.15 rather than 10.150000000000002).
const MAX_DECIMALS: u32 = 9;

/// A JSON scalar as it appears in a request, before its characteristic is consulted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    /// `true` or `false`.
    Bool(bool),
    /// A number written without fraction or exponent.
    Integer(i128),
    /// Any other number.
    Float(f64),
    /// A string, with JSON escapes already resolved.
    Str(&'a str),
}

/// A characteristic's value, typed by its format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// `bool`.
    Bool(bool),
    /// `uint8`.
    Uint8(u8),
    /// `uint16`.
    Uint16(u16),
    /// `uint32`.
    Uint32(u32),
    /// `uint64`.
    Uint64(u64),
    /// `int`.
    Int(i32),
    /// `float`.
    Float(f64),
    /// `string`.
    String(&'a str),
    /// `tlv8`, still base64-encoded as it travels in JSON.
    Tlv8(&'a str),
    /// `data`, still base64-encoded as it travels in JSON.
    Data(&'a str),
}

impl Value<'_> {
    /// The value as a number, for range checks; `None` for strings and blobs.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Bool(b) => Some(f64::from(u8::from(b))),
            Value::Uint8(v) => Some(f64::from(v)),
            Value::Uint16(v) => Some(f64::from(v)),
            Value::Uint32(v) => Some(f64::from(v)),
            // Exact up to 2^53, which is as far as HAP's JSON numbers are exact anyway.
            Value::Uint64(v) => Some(v as f64),
            Value::Int(v) => Some(f64::from(v)),
            Value::Float(v) => Some(v),
            Value::String(_) | Value::Tlv8(_) | Value::Data(_) => None,
        }
    }
}

/// Why a value was refused. Every case answers -70410 (invalid value in request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// The JSON type does not fit the format, such as a string for a bool.
    WrongType,
    /// The number does not fit the format's range, or is not finite.
    OutOfFormatRange,
    /// Below `minValue` or above `maxValue`.
    OutOfRange,
    /// Not a whole number of `minStep`s from `minValue`: an integer off by any amount, a
    /// float by more than [`STEP_TOLERANCE`] of a step.
    OffStep,
    /// Not among the valid values or within the valid-values range.
    NotValid,
    /// A string longer than `maxLen`, or data longer than `maxDataLen`.
    TooLong,
    /// Base64 that does not decode.
    BadEncoding,
    /// A string with a control character, which no controller can show.
    ControlCharacter,
}

impl core::fmt::Display for ValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ValueError::WrongType => "the value is of the wrong JSON type for the format",
            ValueError::OutOfFormatRange => "the number does not fit the format or is not finite",
            ValueError::OutOfRange => "the value is below minValue or above maxValue",
            ValueError::OffStep => "the value is not a whole number of minSteps from minValue",
            ValueError::NotValid => "the value is not among the valid values",
            ValueError::TooLong => "the value is longer than maxLen or maxDataLen",
            ValueError::BadEncoding => "the data is not valid base64",
            ValueError::ControlCharacter => "the string contains a control character",
        })
    }
}

impl core::error::Error for ValueError {}

/// Converts a JSON scalar to a value of `format`, without any rounding or clamping.
///
/// Bools also accept 0 and 1, which iOS sends, and numeric formats accept `true` and
/// `false` as 1 and 0, as HomeKitADK and HAP-NodeJS do. Integer formats accept floats only
/// when they have no fraction (`1.0`).
pub fn coerce(scalar: Scalar<'_>, format: Format) -> Result<Value<'_>, ValueError> {
    let integer = || -> Result<i128, ValueError> {
        match scalar {
            Scalar::Integer(v) => Ok(v),
            Scalar::Bool(b) => Ok(i128::from(b)),
            Scalar::Float(v) if v.is_finite() && v == (v as i128) as f64 => Ok(v as i128),
            Scalar::Float(_) => Err(ValueError::OutOfFormatRange),
            Scalar::Str(_) => Err(ValueError::WrongType),
        }
    };
    let range = |v: i128, min: i128, max: i128| {
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(ValueError::OutOfFormatRange)
        }
    };
    Ok(match format {
        Format::Bool => match scalar {
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Integer(0) => Value::Bool(false),
            Scalar::Integer(1) => Value::Bool(true),
            Scalar::Integer(_) => return Err(ValueError::OutOfFormatRange),
            Scalar::Float(_) | Scalar::Str(_) => return Err(ValueError::WrongType),
        },
        // The casts below are exact: `range` has checked the bounds.
        Format::Uint8 => Value::Uint8(range(integer()?, 0, u8::MAX.into())? as u8),
        Format::Uint16 => Value::Uint16(range(integer()?, 0, u16::MAX.into())? as u16),
        Format::Uint32 => Value::Uint32(range(integer()?, 0, u32::MAX.into())? as u32),
        Format::Uint64 => Value::Uint64(range(integer()?, 0, u64::MAX.into())? as u64),
        Format::Int => Value::Int(range(integer()?, i32::MIN.into(), i32::MAX.into())? as i32),
        Format::Float => match scalar {
            Scalar::Integer(v) => Value::Float(v as f64),
            Scalar::Bool(b) => Value::Float(f64::from(u8::from(b))),
            Scalar::Float(v) if v.is_finite() => Value::Float(v),
            Scalar::Float(_) => return Err(ValueError::OutOfFormatRange),
            Scalar::Str(_) => return Err(ValueError::WrongType),
        },
        Format::String | Format::Tlv8 | Format::Data => {
            let Scalar::Str(text) = scalar else {
                return Err(ValueError::WrongType);
            };
            match format {
                Format::String => Value::String(text),
                Format::Tlv8 => Value::Tlv8(text),
                _ => Value::Data(text),
            }
        }
    })
}

/// The limits a characteristic's values must respect: the catalog type's, optionally
/// narrowed for one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constraints {
    /// The format.
    pub format: Format,
    /// The smallest allowed value.
    pub min_value: Option<f64>,
    /// The largest allowed value.
    pub max_value: Option<f64>,
    /// The step between allowed values, counted from `min_value` (or zero).
    pub min_step: Option<f64>,
    /// The only values allowed, if not empty.
    pub valid_values: &'static [u32],
    /// An inclusive range of allowed values.
    pub valid_values_range: Option<(u32, u32)>,
    /// The longest string, in bytes.
    pub max_len: u16,
    /// The longest data value, in decoded bytes.
    pub max_data_len: u32,
}

impl Constraints {
    /// The constraints of a catalog type.
    pub const fn of(ty: &CharacteristicType) -> Self {
        let max_len = match ty.max_len {
            Some(len) if len < MAX_MAX_LEN => len,
            Some(_) => MAX_MAX_LEN,
            None => DEFAULT_MAX_LEN,
        };
        Self {
            format: ty.format,
            min_value: ty.min_value,
            max_value: ty.max_value,
            min_step: ty.min_step,
            valid_values: ty.valid_values,
            valid_values_range: None,
            max_len,
            max_data_len: DEFAULT_MAX_DATA_LEN,
        }
    }

    /// Checks a value of this characteristic's format against every limit, and returns
    /// the value to store, echo and send in events.
    ///
    /// The rules are HomeKitADK's (`HAP/HAPCharacteristic.c`):
    /// - A number must lie within `min_value..=max_value` exactly. A float a twentieth of
    ///   a step below the minimum is [`ValueError::OutOfRange`], not raised to it.
    /// - Steps count from `min_value`, or from zero without one.
    /// - A float within [`STEP_TOLERANCE`] of a step is taken and rounded onto it, written
    ///   as the decimal the step and minimum imply: 10.150001 with step 0.15 from 10
    ///   becomes 10.15. Farther off it is [`ValueError::OffStep`]. If the step it rounds
    ///   to lies beyond a maximum that is not itself on a step, it is
    ///   [`ValueError::OutOfRange`]; no other value is ever changed.
    /// - An integer must be a whole number of steps, exactly.
    ///
    /// Values from the application ([`crate::database::Database::set`]) follow the same
    /// rules as controllers' writes.
    pub fn check<'a>(&self, value: &Value<'a>) -> Result<Value<'a>, ValueError> {
        match *value {
            Value::String(text) => {
                return if text.len() > usize::from(self.max_len) {
                    Err(ValueError::TooLong)
                } else if text.bytes().any(|b| b < 0x20 || b == 0x7F) {
                    Err(ValueError::ControlCharacter)
                } else {
                    Ok(*value)
                };
            }
            Value::Data(encoded) | Value::Tlv8(encoded) => {
                return self.check_encoded(encoded).map(|()| *value)
            }
            Value::Bool(_) => return Ok(*value),
            _ => {}
        }
        let Some(number) = value.as_f64() else {
            return Err(ValueError::WrongType);
        };
        if !number.is_finite() {
            return Err(ValueError::OutOfFormatRange);
        }
        if self.min_value.is_some_and(|min| number < min)
            || self.max_value.is_some_and(|max| number > max)
        {
            return Err(ValueError::OutOfRange);
        }
        let (value, number) = match *value {
            Value::Float(v) => {
                let rounded = self.round_to_step(v)?;
                (Value::Float(rounded), rounded)
            }
            _ => {
                self.check_integer_step(value, number)?;
                (*value, number)
            }
        };
        let integral = number as i128;
        if !self.valid_values.is_empty()
            && !self.valid_values.iter().any(|v| i128::from(*v) == integral)
        {
            return Err(ValueError::NotValid);
        }
        if let Some((low, high)) = self.valid_values_range {
            if !(i128::from(low)..=i128::from(high)).contains(&integral) {
                return Err(ValueError::NotValid);
            }
        }
        Ok(value)
    }

    /// The step a finite float within range rounds to, per [`Constraints::check`].
    fn round_to_step(&self, number: f64) -> Result<f64, ValueError> {
        let Some(step) = self.min_step.filter(|step| *step > 0.0) else {
            return Ok(number);
        };
        let origin = self.min_value.unwrap_or(0.0);
        let steps = (number - origin) / step;
        let nearest = round_half_away(steps);
        let off = (steps - nearest).abs();
        if off.is_nan() || off > STEP_TOLERANCE {
            return Err(ValueError::OffStep);
        }
        let mut rounded = origin + nearest * step;
        if let (Some(a), Some(b)) = (decimals(step), decimals(origin)) {
            rounded = to_decimals(rounded, a.max(b));
        }
        // Binary noise may put a value that is on the minimum or maximum a hair outside;
        // a whole step outside is a maximum off the grid, and refused.
        let noise = step * 1e-9;
        match (self.min_value, self.max_value) {
            (Some(min), _) if rounded < min => {
                if min - rounded <= noise {
                    Ok(min)
                } else {
                    Err(ValueError::OutOfRange)
                }
            }
            (_, Some(max)) if rounded > max => {
                if rounded - max <= noise {
                    Ok(max)
                } else {
                    Err(ValueError::OutOfRange)
                }
            }
            _ => Ok(rounded),
        }
    }

    /// Checks that an integer is a whole number of steps from the minimum.
    fn check_integer_step(&self, value: &Value<'_>, number: f64) -> Result<(), ValueError> {
        let Some(step) = self.min_step.filter(|step| *step > 0.0) else {
            return Ok(());
        };
        let origin = self.min_value.unwrap_or(0.0);
        let integral = |x: f64| (x == (x as i128) as f64).then_some(x as i128);
        let exact = match *value {
            Value::Uint8(v) => Some(i128::from(v)),
            Value::Uint16(v) => Some(i128::from(v)),
            Value::Uint32(v) => Some(i128::from(v)),
            Value::Uint64(v) => Some(i128::from(v)),
            Value::Int(v) => Some(i128::from(v)),
            _ => None,
        };
        let on_step = match (exact, integral(step), integral(origin)) {
            (Some(v), Some(step), Some(origin)) if step != 0 => (v - origin) % step == 0,
            // A fractional step on an integer format: only binary noise is forgiven.
            _ => {
                let steps = (number - origin) / step;
                (steps - round_half_away(steps)).abs() <= 1e-9 * steps.abs().max(1.0)
            }
        };
        if on_step {
            Ok(())
        } else {
            Err(ValueError::OffStep)
        }
    }

    fn check_encoded(&self, encoded: &str) -> Result<(), ValueError> {
        use base64::Engine as _;
        // Validate in fixed chunks so no buffer of the value's size is needed.
        let mut chunk = [0u8; 96];
        let mut total = 0usize;
        let bytes = encoded.as_bytes();
        if !bytes.len().is_multiple_of(4) {
            return Err(ValueError::BadEncoding);
        }
        for piece in bytes.chunks(128) {
            let len = base64::engine::general_purpose::STANDARD
                .decode_slice(piece, &mut chunk)
                .map_err(|_| ValueError::BadEncoding)?;
            total += len;
        }
        if total > self.max_data_len as usize {
            return Err(ValueError::TooLong);
        }
        Ok(())
    }
}

/// The fewest decimal places, up to [`MAX_DECIMALS`], that write `x` exactly (binary
/// noise aside), or `None`, as for a third.
fn decimals(x: f64) -> Option<u32> {
    let mut scale = 1.0;
    for places in 0..=MAX_DECIMALS {
        let scaled = x * scale;
        if (scaled - round_half_away(scaled)).abs() <= 1e-6 {
            return Some(places);
        }
        scale *= 10.0;
    }
    None
}

/// The float nearest to `x` written with `places` decimals, so that it prints that way.
fn to_decimals(x: f64, places: u32) -> f64 {
    // Powers of ten up to 10^22 are exact, and so is each product on the way.
    let mut scale = 1.0;
    for _ in 0..places {
        scale *= 10.0;
    }
    let scaled = x * scale;
    if scaled.abs() >= 9_007_199_254_740_992.0 {
        // Beyond 2^53 a float already has fewer digits than that.
        return x;
    }
    // Both operands are exact integers, so the division is correctly rounded.
    round_half_away(scaled) / scale
}

/// Rounds half away from zero; `f64::round` needs std.
fn round_half_away(x: f64) -> f64 {
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        // From 2^52 up every float is a whole number (and NaN stays NaN).
        return x;
    }
    let truncated = x as i64 as f64;
    if (x - truncated).abs() >= 0.5 {
        truncated + x.signum()
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::characteristic as c;

    fn check(ty: &CharacteristicType, scalar: Scalar<'_>) -> Result<(), ValueError> {
        stored(ty, scalar).map(|_| ())
    }

    fn stored<'a>(ty: &CharacteristicType, scalar: Scalar<'a>) -> Result<Value<'a>, ValueError> {
        let value = coerce(scalar, ty.format)?;
        Constraints::of(ty).check(&value)
    }

    /// A float from `min` to `max` in steps of `step`.
    fn float(min: f64, max: f64, step: f64) -> Constraints {
        let mut limits = Constraints::of(&c::TARGET_TEMPERATURE);
        (limits.min_value, limits.max_value, limits.min_step) = (Some(min), Some(max), Some(step));
        limits
    }

    #[test]
    fn brightness_rejects_rather_than_clamps() {
        assert_eq!(check(&c::BRIGHTNESS, Scalar::Integer(75)), Ok(()));
        assert_eq!(check(&c::BRIGHTNESS, Scalar::Integer(0)), Ok(()));
        assert_eq!(check(&c::BRIGHTNESS, Scalar::Integer(100)), Ok(()));
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Integer(150)),
            Err(ValueError::OutOfRange)
        );
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Integer(-1)),
            Err(ValueError::OutOfRange)
        );
        assert_eq!(check(&c::BRIGHTNESS, Scalar::Float(50.0)), Ok(()));
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Float(50.5)),
            Err(ValueError::OutOfFormatRange)
        );
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Str("50")),
            Err(ValueError::WrongType)
        );
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Integer(i128::from(i32::MAX) + 1)),
            Err(ValueError::OutOfFormatRange)
        );
    }

    #[test]
    fn bools_take_true_false_0_and_1() {
        assert_eq!(
            coerce(Scalar::Bool(true), Format::Bool),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            coerce(Scalar::Integer(1), Format::Bool),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            coerce(Scalar::Integer(0), Format::Bool),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            coerce(Scalar::Integer(2), Format::Bool),
            Err(ValueError::OutOfFormatRange)
        );
        assert_eq!(
            coerce(Scalar::Str("true"), Format::Bool),
            Err(ValueError::WrongType)
        );
        assert_eq!(
            coerce(Scalar::Float(1.0), Format::Bool),
            Err(ValueError::WrongType)
        );
    }

    #[test]
    fn steps_are_enforced_with_float_tolerance() {
        assert_eq!(check(&c::CURRENT_TEMPERATURE, Scalar::Float(21.3)), Ok(()));
        assert_eq!(
            check(&c::CURRENT_TEMPERATURE, Scalar::Float(-270.0)),
            Ok(())
        );
        assert_eq!(
            check(&c::CURRENT_TEMPERATURE, Scalar::Float(21.35)),
            Err(ValueError::OffStep)
        );
        assert_eq!(
            check(&c::HUE, Scalar::Float(75.5)),
            Err(ValueError::OffStep)
        );
        assert_eq!(check(&c::HUE, Scalar::Integer(360)), Ok(()));
        assert_eq!(
            check(&c::HUE, Scalar::Float(f64::NAN)),
            Err(ValueError::OutOfFormatRange)
        );
        assert_eq!(
            check(&c::HUE, Scalar::Float(f64::INFINITY)),
            Err(ValueError::OutOfFormatRange)
        );
    }

    #[test]
    fn off_step_float_within_tolerance_is_rounded() {
        // TargetTemperature: 10 to 38 in steps of 0.1.
        for (sent, kept) in [(21.305, 21.3), (21.295, 21.3), (21.3, 21.3), (10.009, 10.0)] {
            assert_eq!(
                stored(&c::TARGET_TEMPERATURE, Scalar::Float(sent)),
                Ok(Value::Float(kept)),
                "{sent}"
            );
        }
        // On the limits, binary noise neither refuses nor moves the value.
        assert_eq!(
            stored(&c::TARGET_TEMPERATURE, Scalar::Float(38.0)),
            Ok(Value::Float(38.0))
        );
        assert_eq!(
            stored(&c::TARGET_TEMPERATURE, Scalar::Float(37.995)),
            Ok(Value::Float(38.0))
        );
        // CurrentTemperature counts its steps of 0.1 from -270.
        assert_eq!(
            stored(&c::CURRENT_TEMPERATURE, Scalar::Float(-0.104)),
            Ok(Value::Float(-0.1))
        );
        // A step that is no decimal still rounds, to the nearest float.
        let thirds = float(0.0, 10.0, 1.0 / 3.0);
        assert_eq!(
            thirds.check(&Value::Float(0.34)),
            Ok(Value::Float(1.0 / 3.0))
        );
        // Without a step, nothing moves.
        let mut free = float(0.0, 10.0, 0.1);
        free.min_step = None;
        assert_eq!(
            free.check(&Value::Float(1.23456)),
            Ok(Value::Float(1.23456))
        );
    }

    #[test]
    fn spec_example_10_150001_is_stored_as_10_15() {
        let limits = float(10.0, 38.0, 0.15);
        let kept = limits.check(&Value::Float(10.150001));
        assert_eq!(kept, Ok(Value::Float(10.15)));
        let Ok(Value::Float(kept)) = kept else {
            unreachable!()
        };
        assert_eq!(std::format!("{kept}"), "10.15");
        // Far from the minimum the grid still prints as decimals.
        let Ok(Value::Float(far)) = limits.check(&Value::Float(37.7500001)) else {
            panic!("37.75 is 185 steps of 0.15 from 10")
        };
        assert_eq!(std::format!("{far}"), "37.75");
    }

    #[test]
    fn off_step_float_beyond_tolerance_is_rejected() {
        let limits = float(10.0, 38.0, 0.15);
        // 1.33 and 1.13 steps from the minimum.
        for sent in [10.2, 10.17, 10.13] {
            assert_eq!(
                limits.check(&Value::Float(sent)),
                Err(ValueError::OffStep),
                "{sent}"
            );
        }
        assert_eq!(
            check(&c::TARGET_TEMPERATURE, Scalar::Float(21.35)),
            Err(ValueError::OffStep)
        );
        // HomeKitADK checks the range exactly, before any rounding: a twentieth of a step
        // below the minimum is out of range, not raised to it.
        assert_eq!(
            check(&c::TARGET_TEMPERATURE, Scalar::Float(9.995)),
            Err(ValueError::OutOfRange)
        );
        assert_eq!(
            check(&c::TARGET_TEMPERATURE, Scalar::Float(38.005)),
            Err(ValueError::OutOfRange)
        );
        // A maximum off the grid: 1.18 is within tolerance of 1.2, which is beyond it.
        let off_grid = float(0.0, 1.18, 0.3);
        assert_eq!(
            off_grid.check(&Value::Float(1.18)),
            Err(ValueError::OutOfRange)
        );
        assert_eq!(off_grid.check(&Value::Float(0.9)), Ok(Value::Float(0.9)));
        assert_eq!(
            off_grid.check(&Value::Float(f64::NAN)),
            Err(ValueError::OutOfFormatRange)
        );
    }

    #[test]
    fn integer_steps_stay_exact() {
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Float(42.5)),
            Err(ValueError::OutOfFormatRange)
        );
        assert_eq!(
            check(&c::BRIGHTNESS, Scalar::Float(42.05)),
            Err(ValueError::OutOfFormatRange)
        );
        assert_eq!(
            stored(&c::BRIGHTNESS, Scalar::Float(42.0)),
            Ok(Value::Int(42))
        );
        let mut fives = Constraints::of(&c::COLOR_TEMPERATURE);
        (
            fives.format,
            fives.min_value,
            fives.max_value,
            fives.min_step,
        ) = (Format::Uint32, Some(0.0), None, Some(5.0));
        assert_eq!(
            fives.check(&Value::Uint32(50_000_000)),
            Ok(Value::Uint32(50_000_000))
        );
        // Ten million steps out, a fifth of a step off is still off.
        assert_eq!(
            fives.check(&Value::Uint32(50_000_001)),
            Err(ValueError::OffStep)
        );
        let mut from_minus_three = fives;
        (from_minus_three.format, from_minus_three.min_value) = (Format::Int, Some(-3.0));
        assert_eq!(from_minus_three.check(&Value::Int(2)), Ok(Value::Int(2)));
        assert_eq!(
            from_minus_three.check(&Value::Int(3)),
            Err(ValueError::OffStep)
        );
        // A fractional step on an integer format forgives only binary noise.
        let mut halves = fives;
        halves.min_step = Some(0.1);
        assert_eq!(halves.check(&Value::Uint32(3)), Ok(Value::Uint32(3)));
        halves.min_step = Some(0.4);
        assert_eq!(halves.check(&Value::Uint32(1)), Err(ValueError::OffStep));
    }

    #[test]
    fn true_and_false_are_accepted_for_numeric_formats() {
        for (format, one, zero) in [
            (Format::Uint8, Value::Uint8(1), Value::Uint8(0)),
            (Format::Uint16, Value::Uint16(1), Value::Uint16(0)),
            (Format::Uint32, Value::Uint32(1), Value::Uint32(0)),
            (Format::Uint64, Value::Uint64(1), Value::Uint64(0)),
            (Format::Int, Value::Int(1), Value::Int(0)),
            (Format::Float, Value::Float(1.0), Value::Float(0.0)),
        ] {
            assert_eq!(coerce(Scalar::Bool(true), format), Ok(one));
            assert_eq!(coerce(Scalar::Bool(false), format), Ok(zero));
        }
        // Then the characteristic's limits apply as to 1 and 0.
        assert_eq!(
            stored(&c::BRIGHTNESS, Scalar::Bool(true)),
            Ok(Value::Int(1))
        );
        assert_eq!(
            check(&c::TARGET_TEMPERATURE, Scalar::Bool(true)),
            Err(ValueError::OutOfRange)
        );
        for format in [Format::String, Format::Tlv8, Format::Data] {
            assert_eq!(
                coerce(Scalar::Bool(true), format),
                Err(ValueError::WrongType)
            );
        }
    }

    #[test]
    fn valid_values_and_ranges() {
        assert_eq!(
            check(&c::PROGRAMMABLE_SWITCH_EVENT, Scalar::Integer(2)),
            Ok(())
        );
        assert_eq!(
            check(&c::TARGET_HEATING_COOLING_STATE, Scalar::Integer(3)),
            Ok(())
        );
        let mut only_heat_and_off = Constraints::of(&c::TARGET_HEATING_COOLING_STATE);
        only_heat_and_off.valid_values = &[0, 1];
        assert_eq!(
            only_heat_and_off.check(&Value::Uint8(2)),
            Err(ValueError::NotValid)
        );
        let mut ranged = Constraints::of(&c::TARGET_HEATING_COOLING_STATE);
        ranged.valid_values_range = Some((1, 2));
        assert_eq!(ranged.check(&Value::Uint8(0)), Err(ValueError::NotValid));
        assert_eq!(ranged.check(&Value::Uint8(2)), Ok(Value::Uint8(2)));
        assert_eq!(
            check(&c::TARGET_HEATING_COOLING_STATE, Scalar::Integer(256)),
            Err(ValueError::OutOfFormatRange)
        );
        assert_eq!(
            check(&c::TARGET_HEATING_COOLING_STATE, Scalar::Integer(-1)),
            Err(ValueError::OutOfFormatRange)
        );
    }

    #[test]
    fn strings_respect_max_len() {
        let name_64 = "n".repeat(64);
        let name_65 = "n".repeat(65);
        assert_eq!(check(&c::NAME, Scalar::Str(&name_64)), Ok(()));
        assert_eq!(
            check(&c::NAME, Scalar::Str(&name_65)),
            Err(ValueError::TooLong)
        );
        assert_eq!(
            check(&c::NAME, Scalar::Integer(1)),
            Err(ValueError::WrongType)
        );
    }

    #[test]
    fn uint64_needs_no_clamping() {
        assert_eq!(
            coerce(Scalar::Integer(u64::MAX.into()), Format::Uint64),
            Ok(Value::Uint64(u64::MAX))
        );
        assert_eq!(
            coerce(Scalar::Integer(i128::from(u64::MAX) + 1), Format::Uint64),
            Err(ValueError::OutOfFormatRange)
        );
    }

    #[test]
    fn data_and_tlv8_are_checked_as_base64() {
        let mut limited = Constraints::of(&c::ACCESS_CODE_CONTROL_POINT);
        assert_eq!(limited.check(&Value::Tlv8("AQID")), Ok(Value::Tlv8("AQID")));
        assert_eq!(
            limited.check(&Value::Tlv8("AQI")),
            Err(ValueError::BadEncoding)
        );
        assert_eq!(
            limited.check(&Value::Tlv8("A*ID")),
            Err(ValueError::BadEncoding)
        );
        limited.max_data_len = 2;
        assert_eq!(
            limited.check(&Value::Data("AQID")),
            Err(ValueError::TooLong)
        );
        let long: std::string::String = "AAAA".repeat(100);
        limited.max_data_len = 300;
        assert_eq!(limited.check(&Value::Data(&long)), Ok(Value::Data(&long)));
    }
}
