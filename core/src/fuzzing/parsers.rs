//! The parsers on their own: TLV8, HTTP requests and the characteristic JSON bodies.

use std::vec;
use std::vec::Vec;

use super::Input;
use crate::http::{self, parse_request, Status};
use crate::json::{JsonReader, Token};
use crate::server::requests::{parse_prepare, scalar, ReadQuery, WriteBody};
use crate::tlv::{encoded_len, Tlv, TlvWriter, MAX_FRAGMENT_LEN, SEPARATOR};

/// TLV8 decoding of arbitrary bytes. Checks that every accessor agrees with the others
/// and that re-encoding the decoded items decodes to the same items.
pub fn tlv_decode(data: &[u8]) {
    let Ok(tlv) = Tlv::parse(data) else {
        return;
    };
    assert_eq!(tlv.as_bytes(), data);
    let mut items = Vec::new();
    let mut encoded_total = 0;
    for item in tlv.items() {
        let joined: Vec<u8> = item.fragments().flatten().copied().collect();
        assert_eq!(
            joined.len(),
            item.len(),
            "length disagrees with the fragments"
        );
        assert_eq!(item.is_empty(), joined.is_empty());
        let mut buf = vec![0; item.len()];
        assert_eq!(item.copy_to(&mut buf).unwrap(), &joined[..]);
        if let Some(short) = item.len().checked_sub(1) {
            assert!(item.copy_to(&mut buf[..short]).is_err());
        }
        if let Some(contiguous) = item.contiguous() {
            assert_eq!(contiguous, &joined[..]);
        }
        if let Some(number) = item.to_uint_le() {
            assert!((1..=8).contains(&joined.len()));
            let mut bytes = [0; 8];
            bytes[..joined.len()].copy_from_slice(&joined);
            assert_eq!(number, u64::from_le_bytes(bytes));
        }
        if let Some(array) = item.to_array::<4>() {
            assert_eq!(&array[..], &joined[..]);
        }
        let first = tlv.get(item.ty()).expect("an item's type is found");
        assert!(first.ty() == item.ty());
        encoded_total += item.fragments().map(|f| f.len() + 2).sum::<usize>();
        items.push((item.ty(), joined));
    }
    assert_eq!(encoded_total, data.len(), "items do not cover the message");

    // Re-encode: a value the decoder split into several items of one type (a full
    // fragment that ends the value) cannot be told apart, so compare the joined values.
    let mut out = vec![0; data.len() + 2 * items.len() + 2];
    let mut writer = TlvWriter::new(&mut out);
    for (ty, value) in &items {
        writer.item(*ty, value).unwrap();
    }
    let written = writer.finish();
    let reparsed = Tlv::parse(written).expect("the writer's output parses");
    let join = |tlv: Tlv<'_>| -> Vec<(u8, Vec<u8>)> {
        let mut joined: Vec<(u8, Vec<u8>)> = Vec::new();
        for item in tlv.items() {
            let value: Vec<u8> = item.fragments().flatten().copied().collect();
            match joined.last_mut() {
                Some((ty, previous)) if *ty == item.ty() => previous.extend(value),
                _ => joined.push((item.ty(), value)),
            }
        }
        joined
    };
    assert_eq!(join(reparsed), join(tlv));
}

/// TLV8 encoding of structured input, then decoding: the items must come back exactly.
///
/// The input is a list of items, each a type byte and a two-byte length (capped at
/// 1,000) followed by that many value bytes. Consecutive items of one type are kept
/// apart with a separator, as HAP's lists are.
pub fn tlv_round_trip(data: &[u8]) {
    let mut input = Input::new(data);
    let mut items: Vec<(u8, &[u8])> = Vec::new();
    while !input.is_empty() && items.len() < 64 {
        let ty = input.byte();
        let len = usize::from(input.u16()) % 1_001;
        let value = input.take(len);
        if ty == SEPARATOR {
            // Two separators in a row would be one empty value in two fragments.
            if items.last().is_some_and(|(last, _)| *last != SEPARATOR) {
                items.push((SEPARATOR, &[]));
            }
            continue;
        }
        if items.last().is_some_and(|(last, _)| *last == ty) {
            items.push((SEPARATOR, &[]));
        }
        items.push((ty, value));
    }
    let needed: usize = items
        .iter()
        .map(|(_, value)| encoded_len(value.len()))
        .sum();
    let mut buf = vec![0; needed];
    if let Some(short) = needed.checked_sub(1) {
        let mut small = vec![0; short];
        let mut writer = TlvWriter::new(&mut small);
        let fitted = items.iter().all(|(ty, v)| writer.item(*ty, v).is_ok());
        assert!(!fitted, "a writer overfilled its buffer");
    }
    let mut writer = TlvWriter::new(&mut buf);
    for (ty, value) in &items {
        writer.item(*ty, value).expect("encoded_len was enough");
    }
    assert_eq!(writer.len(), needed);
    let encoded = writer.finish();
    let tlv = Tlv::parse(encoded).expect("the writer's output parses");
    let decoded: Vec<(u8, Vec<u8>)> = tlv
        .items()
        .map(|item| (item.ty(), item.fragments().flatten().copied().collect()))
        .collect();
    let expected: Vec<(u8, Vec<u8>)> = items.iter().map(|(t, v)| (*t, v.to_vec())).collect();
    assert_eq!(decoded, expected);
    for item in tlv.items() {
        for fragment in item.fragments() {
            assert!(fragment.len() <= MAX_FRAGMENT_LEN);
        }
    }
}

/// The HTTP request parser on arbitrary bytes, with a limit taken from the input. A
/// request that parses must lie within the buffer and the limit, and every prefix of it
/// must parse as incomplete, so that splitting a request across reads cannot change it.
pub fn http_request(data: &[u8]) {
    let mut input = Input::new(data);
    let limit = match input.byte() {
        0 => http::DEFAULT_MAX_REQUEST_LEN,
        small => usize::from(small) * 8,
    };
    let buf = input.rest();
    let Ok(Status::Complete(request)) = parse_request(buf, limit) else {
        return;
    };
    assert!(request.len <= buf.len() && request.len <= limit);
    let body_start = request.len - request.body.len();
    assert_eq!(request.body, &buf[body_start..request.len]);
    // The same request, with anything after it removed, parses the same.
    assert_eq!(
        parse_request(&buf[..request.len], limit),
        Ok(Status::Complete(request))
    );
    for cut in prefix_cuts(request.len) {
        assert_eq!(
            parse_request(&buf[..cut], limit),
            Ok(Status::Partial),
            "a prefix of {cut} bytes of a {}-byte request",
            request.len
        );
    }
    if let Some(query) = request.query {
        read_query(query);
    }
    characteristic_bodies(request.body);
}

/// Up to about 40 cut points before `len`, always including the first and the last.
fn prefix_cuts(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 32).max(1);
    (0..len)
        .step_by(step)
        .chain(len.saturating_sub(4)..len)
        .filter(move |cut| *cut < len)
}

fn read_query(query: &str) {
    if let Ok(read) = ReadQuery::parse(Some(query)) {
        assert_eq!(read.ids().count(), read.count);
        if let Some(last) = read.count.checked_sub(1) {
            assert!(read.id(last).is_some());
        }
        assert!(read.id(read.count).is_none());
    }
}

/// The bodies of PUT `/characteristics` and PUT `/prepare`, and the query of GET
/// `/characteristics`, on arbitrary bytes. Whatever parses must read back consistently:
/// the items counted are the items iterated, and every value converts or is refused.
pub fn characteristic_bodies(data: &[u8]) {
    if let Ok(write) = WriteBody::parse(data) {
        let mut count = 0;
        let mut value_buf = [0u8; 256];
        for (index, item) in write.items().enumerate() {
            assert_eq!(write.item(index), Some(item));
            if let Some(token) = item.value {
                let _ = scalar(token, &mut value_buf);
            }
            count += 1;
        }
        assert_eq!(count, write.count);
        assert!(write.item(count).is_none());
    }
    let _ = parse_prepare(data);
    if let Ok(text) = core::str::from_utf8(data) {
        read_query(text);
        walk_json(text);
    }
}

/// Reads every token, skipping some values whole, and checks that a document the
/// reader finishes balances its brackets.
fn walk_json(text: &str) {
    let mut reader = JsonReader::new(text);
    let mut depth: usize = 0;
    for _ in 0..text.len() + 2 {
        match reader.next_token() {
            Ok(None) | Err(_) => return,
            Ok(Some(token @ (Token::ObjectStart | Token::ArrayStart))) => {
                if depth % 3 == 2 {
                    if reader.skip_value(token).is_err() {
                        return;
                    }
                } else {
                    depth += 1;
                }
            }
            Ok(Some(Token::ObjectEnd | Token::ArrayEnd)) => {
                depth = depth
                    .checked_sub(1)
                    .expect("more closing than opening brackets");
            }
            Ok(Some(_)) => {}
        }
    }
    panic!("the JSON reader did not finish within one token per byte");
}
