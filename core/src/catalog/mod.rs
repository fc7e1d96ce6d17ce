//! Apple's catalog of service and characteristic types, and the types to describe your own.
//!
//! [`characteristic`] and [`service`] hold every type of Apple's HomeKit metadata: 246
//! characteristics and 73 services. They are generated from `core/data/hap-definitions.json`
//! by this crate's own generator (the `catalog::generate` test), and the generated file is
//! checked in, so building needs neither the data nor the generator. The test fails if the
//! file is stale; `UPDATE_CATALOG=1 cargo test -p hap-core catalog` rewrites it.
//!
//! Vendor types are built with the same structs and a full 128-bit [`HapType::Custom`]
//! UUID.
//!
//! [`typed`] pairs each characteristic type with the Rust type of its values, with enums
//! for the named valid values (door states, heating modes, security system states).
//!
//! [`Category`] is the accessory category that mDNS and the setup URI carry.

use core::fmt;

mod category;
#[rustfmt::skip]
mod generated;
pub mod name;
pub mod typed;
pub mod value;
pub use category::Category;
pub use generated::{characteristic, service, CHARACTERISTICS, SERVICES};

#[cfg(test)]
mod generate;

/// The UUID of a service or characteristic type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HapType {
    /// One of Apple's types, `XXXXXXXX-0000-1000-8000-0026BB765291`, by its first field.
    /// It is serialized in short form: hex without leading zeros.
    Apple(u32),
    /// A vendor type, serialized as its full UUID.
    Custom([u8; 16]),
}

/// The last 12 bytes that all of Apple's type UUIDs share.
const APPLE_BASE: [u8; 12] = [
    0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0x26, 0xBB, 0x76, 0x52, 0x91,
];

impl HapType {
    /// The type for a UUID's 16 bytes; Apple's base UUID yields [`HapType::Apple`].
    pub const fn from_uuid_bytes(bytes: [u8; 16]) -> Self {
        let mut i = 0;
        while i < 12 {
            if bytes[4 + i] != APPLE_BASE[i] {
                return HapType::Custom(bytes);
            }
            i += 1;
        }
        HapType::Apple(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The full 16 bytes of the UUID.
    pub fn uuid_bytes(&self) -> [u8; 16] {
        match self {
            HapType::Apple(short) => {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&short.to_be_bytes());
                bytes[4..].copy_from_slice(&APPLE_BASE);
                bytes
            }
            HapType::Custom(bytes) => *bytes,
        }
    }
}

impl fmt::Display for HapType {
    /// Apple's types in short form (`43`), others as an upper-case UUID.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HapType::Apple(short) => write!(f, "{short:X}"),
            HapType::Custom(b) => write!(
                f,
                "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
            ),
        }
    }
}

/// The value format of a characteristic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `true` or `false` (HAP also accepts 0 and 1).
    Bool,
    /// Unsigned 8-bit integer.
    Uint8,
    /// Unsigned 16-bit integer.
    Uint16,
    /// Unsigned 32-bit integer.
    Uint32,
    /// Unsigned 64-bit integer.
    Uint64,
    /// Signed 32-bit integer.
    Int,
    /// Floating point number.
    Float,
    /// UTF-8 string.
    String,
    /// Base64-encoded TLV8.
    Tlv8,
    /// Base64-encoded bytes.
    Data,
}

impl Format {
    /// The name HAP's JSON uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Bool => "bool",
            Format::Uint8 => "uint8",
            Format::Uint16 => "uint16",
            Format::Uint32 => "uint32",
            Format::Uint64 => "uint64",
            Format::Int => "int",
            Format::Float => "float",
            Format::String => "string",
            Format::Tlv8 => "tlv8",
            Format::Data => "data",
        }
    }
}

/// The unit of a numeric characteristic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Degrees Celsius.
    Celsius,
    /// Percent.
    Percentage,
    /// Degrees of arc.
    ArcDegrees,
    /// Lux.
    Lux,
    /// Seconds.
    Seconds,
}

impl Unit {
    /// The name HAP's JSON uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Celsius => "celsius",
            Unit::Percentage => "percentage",
            Unit::ArcDegrees => "arcdegrees",
            Unit::Lux => "lux",
            Unit::Seconds => "seconds",
        }
    }
}

/// A set of characteristic permissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms(u8);

impl Perms {
    /// `pr`: paired controllers may read.
    pub const READ: Perms = Perms(1 << 0);
    /// `pw`: paired controllers may write.
    pub const WRITE: Perms = Perms(1 << 1);
    /// `ev`: paired controllers may subscribe to events.
    pub const EVENTS: Perms = Perms(1 << 2);
    /// `aa`: writes may carry additional authorization data.
    pub const ADDITIONAL_AUTHORIZATION: Perms = Perms(1 << 3);
    /// `tw`: writes must be timed (through `/prepare`).
    pub const TIMED_WRITE: Perms = Perms(1 << 4);
    /// `hd`: hidden from the user.
    pub const HIDDEN: Perms = Perms(1 << 5);
    /// `wr`: writes may ask for a response value.
    pub const WRITE_RESPONSE: Perms = Perms(1 << 6);

    /// No permissions.
    pub const fn empty() -> Self {
        Perms(0)
    }

    /// The set as bits: `pr` is bit 0, then `pw`, `ev`, `aa`, `tw`, `hd` and `wr`.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The union of two sets.
    pub const fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    /// Whether every permission of `other` is in `self`.
    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// Each permission with its JSON name, in HAP's order.
    pub fn iter_names(self) -> impl Iterator<Item = &'static str> {
        const NAMES: [(Perms, &str); 7] = [
            (Perms::READ, "pr"),
            (Perms::WRITE, "pw"),
            (Perms::EVENTS, "ev"),
            (Perms::ADDITIONAL_AUTHORIZATION, "aa"),
            (Perms::TIMED_WRITE, "tw"),
            (Perms::HIDDEN, "hd"),
            (Perms::WRITE_RESPONSE, "wr"),
        ];
        NAMES
            .into_iter()
            .filter(move |(perm, _)| self.contains(*perm))
            .map(|(_, name)| name)
    }
}

impl core::ops::BitOr for Perms {
    type Output = Perms;

    fn bitor(self, other: Perms) -> Perms {
        self.union(other)
    }
}

/// A characteristic type: its UUID, format, permissions and constraints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CharacteristicType {
    /// The type's name in Apple's metadata, such as `Brightness`.
    pub name: &'static str,
    /// The UUID.
    pub uuid: HapType,
    /// The value format.
    pub format: Format,
    /// The permissions.
    pub perms: Perms,
    /// The operations only admin controllers may perform (a subset of read, write and
    /// events).
    pub admin_only: Perms,
    /// The unit, for numbers.
    pub unit: Option<Unit>,
    /// The smallest allowed value.
    pub min_value: Option<f64>,
    /// The largest allowed value.
    pub max_value: Option<f64>,
    /// The step between allowed values, counted from `min_value`.
    pub min_step: Option<f64>,
    /// The only values allowed, for integer formats.
    pub valid_values: &'static [u32],
    /// The longest string allowed, in bytes (HAP's default is 64, at most 256).
    pub max_len: Option<u16>,
}

/// A service type: its UUID and the characteristics it must and may have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceType {
    /// The type's name in Apple's metadata, such as `Lightbulb`.
    pub name: &'static str,
    /// The UUID.
    pub uuid: HapType,
    /// Characteristics every instance must have.
    pub required: &'static [&'static CharacteristicType],
    /// Characteristics an instance may have.
    pub optional: &'static [&'static CharacteristicType],
}

/// The catalog's characteristic type for `uuid`, if it is one of Apple's.
pub fn find_characteristic(uuid: HapType) -> Option<&'static CharacteristicType> {
    CHARACTERISTICS.iter().copied().find(|c| c.uuid == uuid)
}

/// The catalog's service type for `uuid`, if it is one of Apple's.
pub fn find_service(uuid: HapType) -> Option<&'static ServiceType> {
    SERVICES.iter().copied().find(|s| s.uuid == uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_every_type() {
        assert_eq!(CHARACTERISTICS.len(), 246);
        assert_eq!(SERVICES.len(), 73);
        let mut uuids: std::vec::Vec<_> = CHARACTERISTICS.iter().map(|c| c.uuid).collect();
        uuids.sort_by_key(|u| u.uuid_bytes());
        uuids.dedup();
        assert_eq!(uuids.len(), 246, "characteristic UUIDs are unique");
    }

    #[test]
    fn lightbulb_requires_on() {
        assert_eq!(service::LIGHTBULB.uuid, HapType::Apple(0x43));
        assert_eq!(service::LIGHTBULB.required, &[&characteristic::ON]);
        assert!(service::LIGHTBULB
            .optional
            .contains(&&characteristic::BRIGHTNESS));
        assert_eq!(
            find_service(HapType::Apple(0x43)).map(|s| s.name),
            Some("Lightbulb")
        );
    }

    #[test]
    fn brightness_is_an_int_percentage_from_0_to_100_in_steps_of_1() {
        let brightness = characteristic::BRIGHTNESS;
        assert_eq!(brightness.uuid, HapType::Apple(0x08));
        assert_eq!(brightness.format, Format::Int);
        assert_eq!(brightness.unit, Some(Unit::Percentage));
        assert_eq!(
            (
                brightness.min_value,
                brightness.max_value,
                brightness.min_step
            ),
            (Some(0.0), Some(100.0), Some(1.0))
        );
        assert_eq!(brightness.perms, Perms::READ | Perms::WRITE | Perms::EVENTS);
        assert_eq!(
            brightness.perms.iter_names().collect::<std::vec::Vec<_>>(),
            ["pr", "pw", "ev"]
        );
    }

    #[test]
    fn details_survive_generation() {
        assert_eq!(
            characteristic::PROGRAMMABLE_SWITCH_EVENT.valid_values,
            &[0, 1, 2]
        );
        assert_eq!(characteristic::NAME.max_len, Some(64));
        assert_eq!(characteristic::CURRENT_TEMPERATURE.min_step, Some(0.1));
        assert_eq!(characteristic::CURRENT_TEMPERATURE.min_value, Some(-270.0));
        assert_eq!(characteristic::BUTTON_EVENT.admin_only, Perms::EVENTS);
        assert!(characteristic::TARGET_CONTROL_LIST
            .perms
            .contains(Perms::WRITE_RESPONSE));
    }

    #[test]
    fn types_print_in_short_or_full_form() {
        assert_eq!(std::format!("{}", HapType::Apple(0x43)), "43");
        assert_eq!(std::format!("{}", HapType::Apple(0x226)), "226");
        let apple = HapType::Apple(0x25).uuid_bytes();
        assert_eq!(HapType::from_uuid_bytes(apple), HapType::Apple(0x25));
        let eve = [
            0xE8, 0x63, 0xF0, 0x07, 0x07, 0x9E, 0x48, 0xFF, 0x8F, 0x27, 0x9C, 0x26, 0x07, 0xA6,
            0x5A, 0xE8,
        ];
        assert_eq!(HapType::from_uuid_bytes(eve), HapType::Custom(eve));
        assert_eq!(
            std::format!("{}", HapType::Custom(eve)),
            "E863F007-079E-48FF-8F27-9C2607A65AE8"
        );
    }
}
