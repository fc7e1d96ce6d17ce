//! Characteristic types with their Rust value types, and enums for named valid values.
//!
//! Each characteristic of the [catalog](super::characteristic) has a typed twin here, a
//! [`TypedCharacteristic<T>`] named the same: [`ON`] carries `bool`, [`BRIGHTNESS`] `i32`,
//! [`TARGET_DOOR_STATE`] the enum [`TargetDoorState`]. The value type follows the format:
//!
//! | format | Rust type |
//! |---|---|
//! | `bool` | `bool` |
//! | `uint8`, `uint16`, `uint32`, `uint64` | `u8`, `u16`, `u32`, `u64` |
//! | `int` | `i32` |
//! | `float` | `f64`, as the database stores it |
//! | `string` | [`Text`] |
//! | `tlv8`, `data` | [`Tlv8Value`], [`DataValue`] |
//! | an integer with named valid values | a generated enum, such as [`CurrentDoorState`] |
//!
//! [`CharacteristicValue`] converts between such a type and the database's
//! [`OwnedValue`]; a value of another format converts to `None`, never to a wrong value
//! or a panic. With a type, the database hands out a
//! [`Handle`](crate::database::handle::Handle): an aid and iid that remember the value
//! type, so that setting, reading or matching a value needs no `OwnedValue` plumbing.
//!
//! The enums are generated, like the catalog, from the names HAP-NodeJS gives the valid
//! values (the `constants` of `core/data/hap-definitions.json`), with the names turned
//! into Rust's case: `STAY_ARM` becomes `StayArm`. Each enum has exactly the catalog
//! type's valid values, so every value the database accepts for the characteristic reads
//! as a variant. They are not `#[non_exhaustive]`: an accessory matches them to drive its
//! hardware, and a wildcard arm would hide a state it forgot. Three characteristics name
//! only some of their valid values (Input Device Type, Picture Mode and Remote Key);
//! they keep their plain `u8`.

use core::fmt;
use core::marker::PhantomData;

use super::{CharacteristicType, Format};
use crate::database::{OwnedValue, ValueBytes, STRING_CAPACITY};

#[rustfmt::skip]
mod generated;
pub use generated::*;

/// A string value, held inline at HAP's largest `maxLen`.
pub type Text = heapless::String<STRING_CAPACITY>;

/// The decoded bytes of a `tlv8` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tlv8Value(pub ValueBytes);

/// The bytes of a `data` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DataValue(pub ValueBytes);

/// A Rust type that holds the values of one characteristic format.
///
/// Implemented for the types in the [module docs](self) and for every generated enum.
/// Implement it for a vendor characteristic's own type the same way.
pub trait CharacteristicValue: Sized {
    /// The format the type's values have.
    const FORMAT: Format;

    /// The value as the database holds it.
    fn into_owned(self) -> OwnedValue;

    /// The value, if `value` has [`Self::FORMAT`] and (for an enum) is one of its
    /// values; `None` otherwise.
    fn from_owned(value: &OwnedValue) -> Option<Self>;
}

macro_rules! scalar_value {
    ($($ty:ty => $format:ident,)+) => {$(
        impl CharacteristicValue for $ty {
            const FORMAT: Format = Format::$format;

            fn into_owned(self) -> OwnedValue {
                OwnedValue::$format(self)
            }

            fn from_owned(value: &OwnedValue) -> Option<Self> {
                match value {
                    OwnedValue::$format(inner) => Some(*inner),
                    _ => None,
                }
            }
        }
    )+};
}

scalar_value! {
    bool => Bool,
    u8 => Uint8,
    u16 => Uint16,
    u32 => Uint32,
    u64 => Uint64,
    i32 => Int,
    f64 => Float,
}

impl CharacteristicValue for Text {
    const FORMAT: Format = Format::String;

    fn into_owned(self) -> OwnedValue {
        OwnedValue::String(self)
    }

    fn from_owned(value: &OwnedValue) -> Option<Self> {
        match value {
            OwnedValue::String(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl CharacteristicValue for Tlv8Value {
    const FORMAT: Format = Format::Tlv8;

    fn into_owned(self) -> OwnedValue {
        OwnedValue::Tlv8(self.0)
    }

    fn from_owned(value: &OwnedValue) -> Option<Self> {
        match value {
            OwnedValue::Tlv8(bytes) => Some(Tlv8Value(bytes.clone())),
            _ => None,
        }
    }
}

impl CharacteristicValue for DataValue {
    const FORMAT: Format = Format::Data;

    fn into_owned(self) -> OwnedValue {
        OwnedValue::Data(self.0)
    }

    fn from_owned(value: &OwnedValue) -> Option<Self> {
        match value {
            OwnedValue::Data(bytes) => Some(DataValue(bytes.clone())),
            _ => None,
        }
    }
}

/// An enum of a characteristic's named valid values; implemented by every generated
/// enum.
pub trait NamedValue: CharacteristicValue + Copy + Eq + fmt::Debug + 'static {
    /// The catalog type whose valid values the enum names.
    const CHARACTERISTIC: &'static CharacteristicType;
    /// Every variant, in the order of their values.
    const ALL: &'static [Self];

    /// The value, as the catalog's `valid_values` list it.
    fn to_u32(self) -> u32;

    /// The variant of `value`, if it names one.
    fn from_u32(value: u32) -> Option<Self>;
}

/// A number that names no variant of a [`NamedValue`] enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    /// The catalog name of the characteristic, such as `TargetDoorState`.
    pub characteristic: &'static str,
    /// The number.
    pub value: i64,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a valid value of {}",
            self.value, self.characteristic
        )
    }
}

impl core::error::Error for UnknownValue {}

/// Defines a generated enum of named valid values and its conversions.
macro_rules! named_values {
    (
        $(#[$doc:meta])*
        $name:ident: $repr:ident as $format:ident for $kind:path {
            $($(#[$variant_doc:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $($(#[$variant_doc])* $variant = $value,)+
        }

        impl $name {
            /// The variant of `value`, if it names one.
            pub const fn from_repr(value: $repr) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The number HAP sends for the variant.
            pub const fn value(self) -> $repr {
                self as $repr
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $crate::catalog::typed::UnknownValue;

            fn try_from(value: $repr) -> Result<Self, Self::Error> {
                Self::from_repr(value).ok_or($crate::catalog::typed::UnknownValue {
                    characteristic: $kind.name,
                    value: i64::from(value),
                })
            }
        }

        impl TryFrom<u32> for $name {
            type Error = $crate::catalog::typed::UnknownValue;

            fn try_from(value: u32) -> Result<Self, Self::Error> {
                <Self as $crate::catalog::typed::NamedValue>::from_u32(value).ok_or(
                    $crate::catalog::typed::UnknownValue {
                        characteristic: $kind.name,
                        value: i64::from(value),
                    },
                )
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> $repr {
                value as $repr
            }
        }

        impl $crate::catalog::typed::CharacteristicValue for $name {
            const FORMAT: $crate::catalog::Format = $crate::catalog::Format::$format;

            fn into_owned(self) -> $crate::database::OwnedValue {
                $crate::database::OwnedValue::$format(self as $repr)
            }

            fn from_owned(value: &$crate::database::OwnedValue) -> Option<Self> {
                match value {
                    $crate::database::OwnedValue::$format(number) => Self::from_repr(*number),
                    _ => None,
                }
            }
        }

        impl $crate::catalog::typed::NamedValue for $name {
            const CHARACTERISTIC: &'static $crate::catalog::CharacteristicType = &$kind;
            const ALL: &'static [Self] = &[$(Self::$variant,)+];

            fn to_u32(self) -> u32 {
                // Valid values are never negative, whatever the repr.
                self as $repr as u32
            }

            fn from_u32(value: u32) -> Option<Self> {
                <$repr>::try_from(value).ok().and_then(Self::from_repr)
            }
        }
    };
}
use named_values;

/// A catalog characteristic type together with the Rust type of its values.
///
/// The constants of this module are the catalog's; [`TypedCharacteristic::new`] makes
/// one for a vendor type. Only a type whose format is `T`'s can be made, so a value of
/// `T` always suits the characteristic's format (its range and valid values are still
/// checked where the value is set).
pub struct TypedCharacteristic<T> {
    kind: &'static CharacteristicType,
    value: PhantomData<fn() -> T>,
}

impl<T: CharacteristicValue> TypedCharacteristic<T> {
    /// `kind` with values of `T`, or `None` if `T` does not hold values of `kind`'s
    /// format.
    ///
    /// ```
    /// use hap_core::catalog::characteristic as c;
    /// use hap_core::catalog::typed::TypedCharacteristic;
    ///
    /// assert!(TypedCharacteristic::<i32>::new(&c::BRIGHTNESS).is_some());
    /// assert!(TypedCharacteristic::<bool>::new(&c::BRIGHTNESS).is_none());
    /// ```
    pub const fn new(kind: &'static CharacteristicType) -> Option<Self> {
        if T::FORMAT as u8 == kind.format as u8 {
            Some(Self {
                kind,
                value: PhantomData,
            })
        } else {
            None
        }
    }

    /// A catalog type whose format the generator matched to `T`. Used only to define
    /// constants, where a mismatch stops compilation.
    const fn catalog(kind: &'static CharacteristicType) -> Self {
        match Self::new(kind) {
            Some(typed) => typed,
            None => panic!("the generator chose a value type of another format"),
        }
    }

    /// The characteristic type, for the untyped APIs.
    pub const fn kind(self) -> &'static CharacteristicType {
        self.kind
    }
}

// By hand rather than derived, so that they hold whatever `T` is.
impl<T> Clone for TypedCharacteristic<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TypedCharacteristic<T> {}

impl<T> PartialEq for TypedCharacteristic<T> {
    fn eq(&self, other: &Self) -> bool {
        self.kind.uuid == other.kind.uuid
    }
}

impl<T> fmt::Debug for TypedCharacteristic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCharacteristic")
            .field("name", &self.kind.name)
            .field("value", &core::any::type_name::<T>())
            .finish()
    }
}

#[cfg(test)]
mod tests;
