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

/// The longest `type` string: a full UUID, 8-4-4-4-12 hex digits.
const MAX_TYPE_LEN: usize = 36;

/// [`parse_type`] of a `type` string from `/accessories`, escapes decoded.
pub fn json_type(text: JsonStr<'_>) -> Option<HapType> {
    if let Some(plain) = text.as_plain() {
        return parse_type(plain);
    }
    // Longer than a UUID once decoded: not a type, and refused by the buffer.
    let mut buf = [0u8; MAX_TYPE_LEN];
    parse_type(text.decode_into(&mut buf).ok()?)
}

/// The catalog's characteristic type for a `type` string from `/accessories`; `None`
/// for a custom or unknown type.
pub fn characteristic_type(text: JsonStr<'_>) -> Option<&'static CharacteristicType> {
    catalog::find_characteristic(json_type(text)?)
}

/// The catalog's service type for a `type` string from `/accessories`; `None` for a
/// custom or unknown type.
pub fn service_type(text: JsonStr<'_>) -> Option<&'static ServiceType> {
    catalog::find_service(json_type(text)?)
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

    /// The string token of `json`, such as `"\"8\""`.
    fn json_str(json: &str) -> JsonStr<'_> {
        match crate::json::JsonReader::new(json).next_token() {
            Ok(Some(crate::json::Token::Str(text))) => text,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn catalog_lookups_by_json_type() {
        assert_eq!(
            characteristic_type(json_str("\"8\"")),
            Some(&characteristic::BRIGHTNESS)
        );
        // Escapes are decoded: `\u0038` is `8`, `\u0033E` is `3E`.
        assert_eq!(
            characteristic_type(json_str("\"\\u0038\"")),
            Some(&characteristic::BRIGHTNESS)
        );
        assert_eq!(
            service_type(json_str("\"\\u0033E\"")),
            Some(&crate::catalog::service::ACCESSORY_INFORMATION)
        );
        assert_eq!(
            service_type(json_str("\"00000043-0000-1000-8000-0026BB765291\"")).map(|s| s.name),
            Some("Lightbulb")
        );
        let custom = "\"E863F10A-079E-48FF-8F27-9C2605A29F52\"";
        assert!(matches!(
            json_type(json_str(custom)),
            Some(HapType::Custom(_))
        ));
        assert_eq!(characteristic_type(json_str(custom)), None);
        let long = std::format!("\"\\u0038{}\"", "0".repeat(40));
        assert_eq!(json_type(json_str(&long)), None);
    }
}
