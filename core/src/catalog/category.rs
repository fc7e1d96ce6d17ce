//! The accessory category: the icon a controller shows, advertised over mDNS as `ci` and
//! carried in the setup URI.

use core::fmt;

/// An accessory category, such as [`Category::LIGHTBULB`] or [`Category::BRIDGE`].
///
/// It is a number on the wire: `ci` in the mDNS TXT record and eight bits of the setup
/// URI's payload. The listed constants carry the numbers of the HAP specification (the
/// same as HAP-NodeJS's `Categories`).
///
/// This is a newtype over `u8` with associated constants rather than an enum, because:
/// - the set is open: Apple adds categories, and [`Category::new`] names one this crate
///   does not list yet, with no second spelling of a listed number (an enum with an
///   `Other(u8)` variant would let `Other(5)` and `Lightbulb` differ while meaning the same);
/// - HAP has aliases for one number (`ALARM_SYSTEM` and `SECURITY_SYSTEM` are both 11,
///   `IP_CAMERA` and `CAMERA` both 17), which constants express and an enum cannot;
/// - every number converts both ways without a fallible step.
///
/// ```
/// use hap_core::catalog::Category;
///
/// assert_eq!(Category::LIGHTBULB.number(), 5);
/// assert_eq!(u8::from(Category::BRIDGE), 2);
/// assert_eq!(Category::new(31), Category::TELEVISION);
/// assert_eq!(Category::LIGHTBULB.to_string(), "LIGHTBULB");
/// // A category newer than this crate still works and displays as its number.
/// assert_eq!(Category::new(40).name(), None);
/// assert_eq!(Category::new(40).to_string(), "40");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Category(u8);

/// Declares the constants and the table that [`Category::name`] reads, from one list.
macro_rules! categories {
    ($($(#[$doc:meta])* $name:ident = $number:literal;)*) => {
        impl Category {
            $($(#[$doc])* pub const $name: Category = Category($number);)*
        }

        /// Every listed constant with its name, aliases included, in declaration order.
        const TABLE: &[(Category, &str)] = &[$((Category::$name, stringify!($name)),)*];
    };
}

categories! {
    /// 1: an accessory that fits no other category.
    OTHER = 1;
    /// 2: a bridge, which exposes other accessories.
    BRIDGE = 2;
    /// 3: a fan.
    FAN = 3;
    /// 4: a garage door opener.
    GARAGE_DOOR_OPENER = 4;
    /// 5: a lightbulb.
    LIGHTBULB = 5;
    /// 6: a door lock.
    DOOR_LOCK = 6;
    /// 7: an outlet.
    OUTLET = 7;
    /// 8: a switch.
    SWITCH = 8;
    /// 9: a thermostat.
    THERMOSTAT = 9;
    /// 10: a sensor.
    SENSOR = 10;
    /// 11: a security system, as HAP names it; [`Category::ALARM_SYSTEM`] is the same number.
    SECURITY_SYSTEM = 11;
    /// 11: an alarm system, HAP-NodeJS's name for [`Category::SECURITY_SYSTEM`].
    ALARM_SYSTEM = 11;
    /// 12: a door.
    DOOR = 12;
    /// 13: a window.
    WINDOW = 13;
    /// 14: a window covering.
    WINDOW_COVERING = 14;
    /// 15: a programmable switch.
    PROGRAMMABLE_SWITCH = 15;
    /// 16: a range extender.
    RANGE_EXTENDER = 16;
    /// 17: an IP camera, as HAP names it; [`Category::CAMERA`] is the same number.
    IP_CAMERA = 17;
    /// 17: a camera, HAP-NodeJS's name for [`Category::IP_CAMERA`].
    CAMERA = 17;
    /// 18: a video doorbell.
    VIDEO_DOORBELL = 18;
    /// 19: an air purifier.
    AIR_PURIFIER = 19;
    /// 20: a heater.
    AIR_HEATER = 20;
    /// 21: an air conditioner.
    AIR_CONDITIONER = 21;
    /// 22: a humidifier.
    AIR_HUMIDIFIER = 22;
    /// 23: a dehumidifier.
    AIR_DEHUMIDIFIER = 23;
    /// 24: an Apple TV.
    APPLE_TV = 24;
    /// 25: a HomePod.
    HOMEPOD = 25;
    /// 26: a speaker.
    SPEAKER = 26;
    /// 27: an AirPort.
    AIRPORT = 27;
    /// 28: a sprinkler.
    SPRINKLER = 28;
    /// 29: a faucet.
    FAUCET = 29;
    /// 30: a shower head.
    SHOWER_HEAD = 30;
    /// 31: a television.
    TELEVISION = 31;
    /// 32: a target controller (a remote).
    TARGET_CONTROLLER = 32;
    /// 33: a router.
    ROUTER = 33;
    /// 34: an audio receiver.
    AUDIO_RECEIVER = 34;
    /// 35: a TV set-top box.
    TV_SET_TOP_BOX = 35;
    /// 36: a TV streaming stick.
    TV_STREAMING_STICK = 36;
}

impl Category {
    /// The category with this number, listed or not; for one newer than this crate.
    pub const fn new(number: u8) -> Self {
        Category(number)
    }

    /// The number advertised as `ci` and put in the setup URI.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// The name of the listed constant, such as `"LIGHTBULB"`, or `None` for a number this
    /// crate does not list. Where HAP has two names for a number, this is HAP's own
    /// (`SECURITY_SYSTEM`, `IP_CAMERA`).
    pub fn name(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(category, _)| *category == self)
            .map(|(_, name)| *name)
    }
}

impl From<u8> for Category {
    fn from(number: u8) -> Self {
        Category(number)
    }
}

impl From<Category> for u8 {
    fn from(category: Category) -> Self {
        category.0
    }
}

/// The constant's name, or the bare number for an unlisted category.
impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// `Category::LIGHTBULB`, or `Category(40)` for an unlisted number.
impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Category::{name}"),
            None => write!(f, "Category({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::ToString;

    #[test]
    fn numbers_match_the_specification() {
        let expected: &[(Category, u8)] = &[
            (Category::OTHER, 1),
            (Category::BRIDGE, 2),
            (Category::FAN, 3),
            (Category::GARAGE_DOOR_OPENER, 4),
            (Category::LIGHTBULB, 5),
            (Category::DOOR_LOCK, 6),
            (Category::OUTLET, 7),
            (Category::SWITCH, 8),
            (Category::THERMOSTAT, 9),
            (Category::SENSOR, 10),
            (Category::ALARM_SYSTEM, 11),
            (Category::SECURITY_SYSTEM, 11),
            (Category::DOOR, 12),
            (Category::WINDOW, 13),
            (Category::WINDOW_COVERING, 14),
            (Category::PROGRAMMABLE_SWITCH, 15),
            (Category::RANGE_EXTENDER, 16),
            (Category::IP_CAMERA, 17),
            (Category::CAMERA, 17),
            (Category::VIDEO_DOORBELL, 18),
            (Category::AIR_PURIFIER, 19),
            (Category::AIR_HEATER, 20),
            (Category::AIR_CONDITIONER, 21),
            (Category::AIR_HUMIDIFIER, 22),
            (Category::AIR_DEHUMIDIFIER, 23),
            (Category::APPLE_TV, 24),
            (Category::HOMEPOD, 25),
            (Category::SPEAKER, 26),
            (Category::AIRPORT, 27),
            (Category::SPRINKLER, 28),
            (Category::FAUCET, 29),
            (Category::SHOWER_HEAD, 30),
            (Category::TELEVISION, 31),
            (Category::TARGET_CONTROLLER, 32),
            (Category::ROUTER, 33),
            (Category::AUDIO_RECEIVER, 34),
            (Category::TV_SET_TOP_BOX, 35),
            (Category::TV_STREAMING_STICK, 36),
        ];
        for &(category, number) in expected {
            assert_eq!(category.number(), number, "{category}");
        }
        // The table lists every constant: 36 numbers, two of them twice.
        assert_eq!(TABLE.len(), expected.len());
    }

    #[test]
    fn every_number_round_trips() {
        for number in 0..=u8::MAX {
            let category = Category::from(number);
            assert_eq!(u8::from(category), number);
            assert_eq!(Category::new(number), category);
            assert_eq!(category.name().is_some(), (1..=36).contains(&number));
        }
    }

    #[test]
    fn names_prefer_hap_spelling() {
        assert_eq!(Category::LIGHTBULB.to_string(), "LIGHTBULB");
        assert_eq!(Category::ALARM_SYSTEM.to_string(), "SECURITY_SYSTEM");
        assert_eq!(Category::CAMERA.name(), Some("IP_CAMERA"));
        assert_eq!(Category::new(0).to_string(), "0");
        assert_eq!(Category::new(200).name(), None);
        assert_eq!(format!("{:?}", Category::BRIDGE), "Category::BRIDGE");
        assert_eq!(format!("{:?}", Category::new(40)), "Category(40)");
    }
}
