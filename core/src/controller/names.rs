//! Type UUIDs as `/accessories` writes them, and the catalog names a person types for
//! them, so that a controller can show `Brightness` for `"8"` and find `"8"` from
//! `brightness`.

use crate::catalog::{self, CharacteristicType, HapType, ServiceType};
use crate::json::JsonStr;

/// The type a service or characteristic `type` string names: Apple's short form (`"25"`,
/// hex without leading zeros, or with them: `"00000025"`) or a full UUID in either case.
/// `None` for anything else.
///
/// ```
/// use hap_core::catalog::HapType;
/// use hap_core::controller::names::parse_type;
///
/// assert_eq!(parse_type("25"), Some(HapType::Apple(0x25)));
/// assert_eq!(parse_type("00000043-0000-1000-8000-0026BB765291"), Some(HapType::Apple(0x43)));
/// assert_eq!(parse_type("not a type"), None);
/// ```
pub fn parse_type(text: &str) -> Option<HapType> {
    if text.is_empty() {
        return None;
    }
    if text.len() <= 8 {
        return u32::from_str_radix(text, 16)
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(HapType::Apple);
    }
    // 8-4-4-4-12 hex digits.
    let groups = [8, 4, 4, 4, 12];
    let mut bytes = [0u8; 16];
    let mut at = 0;
    let mut parts = text.split('-');
    for len in groups {
        let part = parts.next()?;
        if part.len() != len || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        for pair in part.as_bytes().chunks(2) {
            let pair = core::str::from_utf8(pair).ok()?;
            bytes[at] = u8::from_str_radix(pair, 16).ok()?;
            at += 1;
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(HapType::from_uuid_bytes(bytes))
}

/// The catalog's characteristic type for a `type` string from `/accessories`.
pub fn characteristic_type(text: JsonStr<'_>) -> Option<&'static CharacteristicType> {
    catalog::find_characteristic(parse_type(text.as_plain()?)?)
}

/// The catalog's service type for a `type` string from `/accessories`.
pub fn service_type(text: JsonStr<'_>) -> Option<&'static ServiceType> {
    catalog::find_service(parse_type(text.as_plain()?)?)
}

/// Whether `query` names the catalog name `name` the way a person types it: ASCII case
/// ignored, and spaces ignored on both sides (`"color temperature"`,
/// `"ColorTemperature"` and `"colortemperature"` all name `Color Temperature`). An empty
/// query names nothing.
///
/// ```
/// use hap_core::controller::names::name_matches;
///
/// assert!(name_matches("Color Temperature", "colortemperature"));
/// assert!(name_matches("On", "ON"));
/// assert!(!name_matches("On", "Only"));
/// ```
pub fn name_matches(name: &str, query: &str) -> bool {
    letters(query).next().is_some() && letters(name).eq(letters(query))
}

/// The bytes of `text` that count for [`name_matches`].
fn letters(text: &str) -> impl Iterator<Item = u8> + '_ {
    text.bytes()
        .filter(|b| *b != b' ')
        .map(|b| b.to_ascii_lowercase())
}

/// The catalog's characteristic types that `query` names ([`name_matches`]).
pub fn characteristics_named(
    query: &str,
) -> impl Iterator<Item = &'static CharacteristicType> + '_ {
    catalog::CHARACTERISTICS
        .iter()
        .copied()
        .filter(move |c| name_matches(c.name, query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::characteristic;

    #[test]
    fn short_and_full_forms_parse_alike() {
        for text in [
            "8",
            "08",
            "00000008",
            "00000008-0000-1000-8000-0026BB765291",
            "00000008-0000-1000-8000-0026bb765291",
        ] {
            assert_eq!(parse_type(text), Some(HapType::Apple(8)), "{text}");
        }
        let custom = "E863F10A-079E-48FF-8F27-9C2605A29F52";
        let parsed = parse_type(custom).unwrap();
        assert!(matches!(parsed, HapType::Custom(_)));
        assert_eq!(std::format!("{parsed}"), custom);
    }

    #[test]
    fn malformed_types_are_none() {
        for text in [
            "",
            "+8",
            "123456789",
            "0000000G",
            "00000008-0000-1000-8000-0026BB76529",
            "00000008-0000-1000-8000-0026BB765291-00",
            "00000008_0000-1000-8000-0026BB765291",
            "é",
        ] {
            assert_eq!(parse_type(text), None, "{text}");
        }
    }

    #[test]
    fn names_match_without_case_or_spaces() {
        assert!(name_matches("Color Temperature", "Color Temperature"));
        assert!(name_matches("Color Temperature", "color temperature"));
        assert!(name_matches("Color Temperature", "ColorTemperature"));
        assert!(!name_matches("Color Temperature", "Color"));
        assert!(!name_matches("On", ""));
        assert!(!name_matches("On", "  "));
    }

    #[test]
    fn catalog_lookups_by_name_and_type() {
        let found: std::vec::Vec<_> = characteristics_named("brightness").collect();
        assert_eq!(found, [&characteristic::BRIGHTNESS]);
        let json = crate::json::JsonReader::new("\"8\"").next_token().unwrap();
        let Some(crate::json::Token::Str(text)) = json else {
            panic!("{json:?}")
        };
        assert_eq!(
            characteristic_type(text).map(|c| c.name),
            Some("Brightness")
        );
    }
}
