//! The HAP keys of an accessory's TXT record, read tolerantly.

use core::str::FromStr;

use crate::mdns::wire::Txt;
use crate::mdns::MAX_TXT_VALUE_LEN;
use crate::setup::DeviceId;

/// The longest protocol version kept, in bytes; a longer `pv` is treated as invalid.
pub const MAX_PROTOCOL_VERSION_LEN: usize = 16;

/// What an accessory's TXT record says, key by key (HAP §6.4, Table 6-7). A key that is
/// missing or whose value does not parse is `None`; the others are still read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HapTxt {
    /// `id`: the accessory's pairing identifier.
    pub device_id: Option<DeviceId>,
    /// `c#`: the configuration number.
    pub config_number: Option<u32>,
    /// `s#`: the state number.
    pub state_number: Option<u32>,
    /// `sf`: the status flags; bit 0 set means not paired.
    pub status_flags: Option<u8>,
    /// `ci`: the category number.
    pub category: Option<u16>,
    /// `md`: the model, cut to [`MAX_TXT_VALUE_LEN`] bytes at a character boundary.
    pub model: Option<heapless::String<MAX_TXT_VALUE_LEN>>,
    /// `ff`: the feature flags.
    pub feature_flags: Option<u8>,
    /// `pv`: the protocol version, such as `1.1`.
    pub protocol_version: Option<heapless::String<MAX_PROTOCOL_VERSION_LEN>>,
}

impl HapTxt {
    /// Reads the HAP keys of `txt`; keys are matched ignoring ASCII case (RFC 6763 §6.4).
    pub fn parse(txt: &Txt<'_>) -> Self {
        let text = |key: &[u8]| txt.get(key).and_then(|v| core::str::from_utf8(v).ok());
        fn number<T: FromStr>(text: Option<&str>) -> Option<T> {
            text.filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse().ok())
        }
        Self {
            device_id: text(b"id").and_then(|t| t.parse().ok()),
            config_number: number(text(b"c#")),
            state_number: number(text(b"s#")),
            status_flags: number(text(b"sf")),
            category: number(text(b"ci")),
            model: text(b"md").map(|t| {
                let mut end = t.len().min(MAX_TXT_VALUE_LEN);
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                let mut model = heapless::String::new();
                // `end` is at most the capacity.
                let _ = model.push_str(&t[..end]);
                model
            }),
            feature_flags: number(text(b"ff")),
            protocol_version: text(b"pv").and_then(|t| {
                let mut pv = heapless::String::new();
                pv.push_str(t).ok().map(|()| pv)
            }),
        }
    }

    /// Whether a controller is paired: `sf` bit 0 clear; `None` without a valid `sf`.
    pub fn is_paired(&self) -> Option<bool> {
        self.status_flags.map(|flags| flags & 1 == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdns::wire::{rtype, Header, Name, Packet, RData, RecordData, RecordOut, Writer};

    /// Reads `key=value` strings written as a TXT record and parsed back.
    fn parse(entries: &[(&str, &str)]) -> HapTxt {
        let mut data = std::vec::Vec::new();
        for (key, value) in entries {
            data.push((key.len() + 1 + value.len()) as u8);
            data.extend_from_slice(key.as_bytes());
            data.push(b'=');
            data.extend_from_slice(value.as_bytes());
        }
        if data.is_empty() {
            data.push(0);
        }
        let mut buf = [0u8; 1024];
        let name = Name::new("x.local").unwrap();
        let mut writer = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
        let record = RecordOut {
            rtype: rtype::TXT,
            ..RecordOut::new(name, false, 1, RecordData::Raw(&data))
        };
        writer.answer(&record).unwrap();
        let len = writer.finish().len();
        let packet = Packet::parse(&buf[..len]).unwrap();
        let RData::Txt(txt) = packet.answers().next().unwrap().rdata else {
            panic!("a TXT record");
        };
        HapTxt::parse(&txt)
    }

    #[test]
    fn every_key_is_typed() {
        let txt = parse(&[
            ("c#", "3"),
            ("ff", "0"),
            ("id", "12:34:56:78:9a:bc"),
            ("md", "VirtualLight"),
            ("pv", "1.1"),
            ("s#", "1"),
            ("sf", "1"),
            ("ci", "5"),
        ]);
        assert_eq!(
            txt.device_id,
            Some(DeviceId([0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC]))
        );
        assert_eq!(txt.config_number, Some(3));
        assert_eq!(txt.state_number, Some(1));
        assert_eq!(txt.status_flags, Some(1));
        assert_eq!(txt.is_paired(), Some(false));
        assert_eq!(txt.category, Some(5));
        assert_eq!(txt.model.as_deref(), Some("VirtualLight"));
        assert_eq!(txt.feature_flags, Some(0));
        assert_eq!(txt.protocol_version.as_deref(), Some("1.1"));
    }

    #[test]
    fn bad_values_are_none_and_the_rest_still_read() {
        let txt = parse(&[
            ("c#", "-1"),
            ("sf", "256"),
            ("id", "12:34"),
            ("ci", ""),
            ("pv", "1.1.1.1.1.1.1.1.1.1"),
            ("ff", "+1"),
            ("md", &"é".repeat(40)),
            ("s#", "7"),
        ]);
        assert_eq!(txt.config_number, None);
        assert_eq!(txt.status_flags, None);
        assert_eq!(txt.is_paired(), None);
        assert_eq!(txt.device_id, None);
        assert_eq!(txt.category, None);
        assert_eq!(txt.protocol_version, None);
        assert_eq!(txt.feature_flags, None);
        assert_eq!(txt.model.as_ref().map(|m| m.len()), Some(64));
        assert_eq!(txt.state_number, Some(7));
        assert_eq!(parse(&[]), HapTxt::default());
    }
}
