//! Property tests: TLV8 and session framing round trips.

use hap_core::crypto::Key;
use hap_core::session::{FrameDecryptor, FrameEncryptor};
use hap_core::tlv::{encoded_len, Tlv, TlvWriter};
use proptest::prelude::*;

/// Value lengths from 0 to 1000, with the exact multiples of 255 well represented.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..=1000),
        1 => prop::sample::select(vec![255usize, 510, 765]).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
    ]
}

/// Items whose neighbours differ in type, since equal neighbours are one fragmented item.
fn items() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    proptest::collection::vec((any::<u8>(), value()), 0..8).prop_map(|mut items| {
        for i in 1..items.len() {
            if items[i].0 == items[i - 1].0 {
                items[i].0 = items[i].0.wrapping_add(1);
                if i + 1 < items.len() && items[i].0 == items[i + 1].0 {
                    items[i].0 = items[i].0.wrapping_add(1);
                }
            }
        }
        items
    })
}

proptest! {
    #[test]
    fn tlv_encode_then_decode(items in items()) {
        let size: usize = items.iter().map(|(_, v)| encoded_len(v.len())).sum();
        let mut buf = vec![0u8; size];
        let mut writer = TlvWriter::new(&mut buf);
        for (ty, value) in &items {
            writer.item(*ty, value).unwrap();
        }
        prop_assert_eq!(writer.len(), size);
        let tlv = Tlv::parse(&buf).unwrap();
        let decoded: Vec<(u8, Vec<u8>)> = tlv
            .items()
            .map(|item| {
                let mut joined = vec![0u8; item.len()];
                item.copy_to(&mut joined).unwrap();
                (item.ty(), joined)
            })
            .collect();
        prop_assert_eq!(decoded, items);
    }

    #[test]
    fn tlv_parse_never_panics_and_reencodes_identically(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        if let Ok(tlv) = Tlv::parse(&bytes) {
            let mut out = vec![0u8; bytes.len() + 2 * bytes.len()];
            let mut writer = TlvWriter::new(&mut out);
            for item in tlv.items() {
                let mut joined = vec![0u8; item.len()];
                item.copy_to(&mut joined).unwrap();
                writer.item(item.ty(), &joined).unwrap();
            }
            // Our writer never emits trailing empty fragments, so compare meaning, not bytes.
            let again = Tlv::parse(writer.as_bytes()).unwrap();
            prop_assert_eq!(again.items().count(), tlv.items().count());
            for (a, b) in again.items().zip(tlv.items()) {
                prop_assert_eq!((a.ty(), a.len()), (b.ty(), b.len()));
            }
        }
    }

    #[test]
    fn encrypt_then_decrypt_at_any_split(
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let key = Key::from_bytes([0x42; 32]);
        let mut encryptor = FrameEncryptor::new(key.clone());
        let mut wire = vec![0u8; FrameEncryptor::sealed_len(payload.len())];
        let sealed = encryptor.seal(&payload, &mut wire).unwrap();
        prop_assert_eq!((sealed.consumed, sealed.written), (payload.len(), wire.len()));

        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut decryptor = FrameDecryptor::new(key);
        let mut plaintext = Vec::new();
        for window in points.windows(2) {
            let mut piece = &wire[window[0]..window[1]];
            while !piece.is_empty() {
                let opened = decryptor.open(piece).unwrap();
                plaintext.extend_from_slice(opened.plaintext.unwrap_or_default());
                piece = &piece[opened.consumed..];
            }
        }
        prop_assert_eq!(plaintext, payload);
        prop_assert!(!decryptor.has_partial_frame());
    }
}

/// Text made of JSON's building blocks, so that many samples are valid and the rest are
/// near misses.
fn json_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\"aid\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "1",
        "-2.5e3",
        "01",
        "1.",
        "true",
        "false",
        "null",
        "tru",
        "\"",
        "\\",
        "0",
        "\n",
    ]);
    proptest::collection::vec(pieces, 0..24).prop_map(|pieces| pieces.concat())
}

/// Whether our reader accepts `text` as one complete JSON value.
fn reader_accepts(text: &str) -> bool {
    let mut reader = hap_core::json::JsonReader::new(text);
    loop {
        match reader.next_token() {
            Ok(Some(_)) => continue,
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

proptest! {
    #[test]
    fn json_reader_agrees_with_serde_json(text in json_like()) {
        let depth = text.chars().filter(|c| *c == '[' || *c == '{').count();
        let serde_accepts = serde_json::from_str::<serde_json::Value>(&text).is_ok();
        if depth <= hap_core::json::MAX_DEPTH {
            prop_assert_eq!(reader_accepts(&text), serde_accepts, "{:?}", text);
        } else if reader_accepts(&text) {
            prop_assert!(serde_accepts);
        }
    }

    #[test]
    fn json_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = reader_accepts(text);
        }
    }
}
