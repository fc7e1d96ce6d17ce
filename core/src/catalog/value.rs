//! Characteristic values and their validation.
//!
//! A write arrives as a JSON scalar ([`Scalar`]). [`coerce`] turns it into a typed
//! [`Value`] for the characteristic's format, and [`Constraints::check`] applies the
//! characteristic's range, step, valid values and length limits. Both reject; neither
//! clamps. HAP-python clamps and brutella clamps (and panics on uint64); a value the
//! accessory cannot take as given must fail with -70410 so the controller knows.

use super::{CharacteristicType, Format};

/// HAP's default `maxLen` for strings.
pub const DEFAULT_MAX_LEN: u16 = 64;
/// The largest `maxLen` HAP allows.
pub const MAX_MAX_LEN: u16 = 256;
/// HAP's default `maxDataLen` for data values.
pub const DEFAULT_MAX_DATA_LEN: u32 = 2_097_152;

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
pub enum ValueError {
    /// The JSON type does not fit the format, such as a string for a bool.
    WrongType,
    /// The number does not fit the format's range, or is not finite.
    OutOfFormatRange,
    /// Below `minValue` or above `maxValue`.
    OutOfRange,
    /// Not a whole number of `minStep`s from `minValue`.
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

/// Converts a JSON scalar to a value of `format`, without any rounding or clamping.
///
/// Bools also accept 0 and 1, which iOS sends. Integer formats accept floats only when
/// they have no fraction (`1.0`).
pub fn coerce(scalar: Scalar<'_>, format: Format) -> Result<Value<'_>, ValueError> {
    let integer = || -> Result<i128, ValueError> {
        match scalar {
            Scalar::Integer(v) => Ok(v),
            Scalar::Float(v) if v.is_finite() && v == (v as i128) as f64 => Ok(v as i128),
            Scalar::Float(_) => Err(ValueError::OutOfFormatRange),
            Scalar::Bool(_) | Scalar::Str(_) => Err(ValueError::WrongType),
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
            Scalar::Float(v) if v.is_finite() => Value::Float(v),
            Scalar::Float(_) => return Err(ValueError::OutOfFormatRange),
            Scalar::Bool(_) | Scalar::Str(_) => return Err(ValueError::WrongType),
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

    /// Checks a value of this characteristic's format against every limit.
    pub fn check(&self, value: &Value<'_>) -> Result<(), ValueError> {
        match *value {
            Value::String(text) => {
                return if text.len() > usize::from(self.max_len) {
                    Err(ValueError::TooLong)
                } else if text.bytes().any(|b| b < 0x20 || b == 0x7F) {
                    Err(ValueError::ControlCharacter)
                } else {
                    Ok(())
                };
            }
            Value::Data(encoded) | Value::Tlv8(encoded) => return self.check_encoded(encoded),
            _ => {}
        }
        let Some(number) = value.as_f64() else {
            return Err(ValueError::WrongType);
        };
        if matches!(value, Value::Bool(_)) {
            return Ok(());
        }
        if self.min_value.is_some_and(|min| number < min)
            || self.max_value.is_some_and(|max| number > max)
        {
            return Err(ValueError::OutOfRange);
        }
        if let Some(step) = self.min_step.filter(|step| *step > 0.0) {
            let steps = (number - self.min_value.unwrap_or(0.0)) / step;
            // Allow for binary floating point: 21.3 °C is 2913.0000000000005 steps of 0.1
            // above -270.
            if (steps - round_half_away(steps)).abs() > 1e-6 * steps.abs().max(1.0) {
                return Err(ValueError::OffStep);
            }
        }
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
        Ok(())
    }

    fn check_encoded(&self, encoded: &str) -> Result<(), ValueError> {
        use base64::Engine as _;
        // Validate in fixed chunks so no buffer of the value's size is needed.
        let mut chunk = [0u8; 96];
        let mut total = 0usize;
        let bytes = encoded.as_bytes();
        if bytes.len() % 4 != 0 {
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

/// Rounds half away from zero; `f64::round` needs std.
fn round_half_away(x: f64) -> f64 {
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
        let value = coerce(scalar, ty.format)?;
        Constraints::of(ty).check(&value)
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
        assert_eq!(ranged.check(&Value::Uint8(2)), Ok(()));
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
        assert_eq!(limited.check(&Value::Tlv8("AQID")), Ok(()));
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
        assert_eq!(limited.check(&Value::Data(&long)), Ok(()));
    }
}
