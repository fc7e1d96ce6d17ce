//! The controller's side: what an accessory answers, as arbitrary bytes, to a
//! [`controller::Connection`](crate::controller::Connection) with requests in flight, and
//! to the answer parsers on their own.

use std::vec::Vec;

use super::pairing::{accessory_pairing, owner};
use super::{FuzzRng, Input};
use crate::controller::{
    self, response, Accessories, CharacteristicId, Characteristics, Connection, Event, Output,
    OwnedBuffers, PairingsReply, ReadOptions, ReportedValue, Write,
};
use crate::crypto::Key;
use crate::http::Status;
use crate::json::JsonStr;
use crate::session::{FrameEncryptor, Role, Session, SessionKeys};
use crate::time::Instant;

/// Bounds the feeding loop, so that a connection that stops making progress fails the
/// run instead of hanging it.
const STEP_LIMIT: usize = 100_000;

/// The first byte of the input.
pub(crate) mod flags {
    /// The connection is verified (with fixed keys) and has reads, writes and
    /// `/pairings` requests in flight; otherwise it is plaintext.
    pub(crate) const VERIFIED: u8 = 0x01;
    /// Unverified: pair-verify is in progress instead of `/identify` requests.
    pub(crate) const PAIR_VERIFY: u8 = 0x02;
    /// Verified: the bytes go on the wire as they are, not sealed into frames.
    pub(crate) const RAW_WIRE: u8 = 0x04;
    /// A small input buffer, so that large answers overflow it.
    pub(crate) const SMALL_INPUT: u8 = 0x08;
}

/// The session keys of a verified connection.
fn keys() -> SessionKeys {
    SessionKeys {
        accessory_to_controller: Key::from_bytes([0xA5; 32]),
        controller_to_accessory: Key::from_bytes([0xC5; 32]),
    }
}

/// Flags, a split point, then the accessory's answers (plaintext; sealed when verified,
/// unless [`flags::RAW_WIRE`]). The answers go to the parsers whole, and to a connection
/// with requests in flight in two pieces, cut at the split point. Nothing may panic, every
/// input must be taken or the connection closed, nothing comes after `Close`, and losing
/// the connection always ends in `Close`.
pub fn controller_response(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let split = input.u16();
    let answers = input.rest();
    parse_messages(answers);
    body_parsers(answers);
    connection(flags, usize::from(split), answers);
}

/// Every message [`response::parse_message`] finds at the front, one after another, and
/// their bodies.
fn parse_messages(bytes: &[u8]) {
    let mut buf = bytes.to_vec();
    while let Ok(Status::Complete(message)) = response::parse_message(&mut buf) {
        assert!(
            message.body_start <= message.body_end
                && message.body_end <= message.len
                && message.len <= buf.len()
                && message.len > 0,
            "a message outside its buffer: {message:?}"
        );
        body_parsers(&buf[message.body_start..message.body_end]);
        buf.drain(..message.len);
    }
}

/// The body parsers, each walked to the end.
fn body_parsers(body: &[u8]) {
    if let Ok(items) = Characteristics::parse(body) {
        walk_characteristics(items);
    }
    if let Ok(accessories) = Accessories::parse(body) {
        walk_accessories(accessories);
    }
    if let Ok(reply) = PairingsReply::parse(body) {
        let _ = reply.pairings().count();
    }
    let _ = response::top_level_status(body);
}

fn walk_characteristics(items: Characteristics<'_>) {
    let counted = items.len();
    let mut walked = 0;
    for item in items {
        walked += 1;
        if let Some(value) = item.value {
            touch_value(value);
        }
    }
    assert_eq!(walked, counted, "the items counted are the items iterated");
}

fn walk_accessories(accessories: Accessories<'_>) {
    let counted = accessories.len();
    let mut walked = 0;
    for accessory in accessories {
        walked += 1;
        let services = accessory.services;
        let (counted_services, mut walked_services) = (services.len(), 0);
        for service in services {
            walked_services += 1;
            touch_str(service.service_type);
            let characteristics = service.characteristics;
            let (counted_chars, mut walked_chars) = (characteristics.len(), 0);
            for characteristic in characteristics {
                walked_chars += 1;
                touch_str(characteristic.characteristic_type);
                for text in [
                    characteristic.format,
                    characteristic.description,
                    characteristic.unit,
                ]
                .into_iter()
                .flatten()
                {
                    touch_str(text);
                }
                if let Some(value) = characteristic.value {
                    touch_value(value);
                }
            }
            assert_eq!(walked_chars, counted_chars, "characteristics of a service");
        }
        assert_eq!(
            walked_services, counted_services,
            "services of an accessory"
        );
    }
    assert_eq!(walked, counted, "accessories");
}

fn touch_value(value: ReportedValue<'_>) {
    if let ReportedValue::Str(text) = value {
        touch_str(text);
    }
}

/// Decodes a string the parser accepted.
fn touch_str(text: JsonStr<'_>) {
    let mut buf = [0u8; 256];
    let _ = text.decode_into(&mut buf);
}

/// A connection with requests in flight, fed `answers` in two pieces; returns how many
/// answers and events it produced.
fn connection(flags: u8, split: usize, answers: &[u8]) -> usize {
    let mut rng = FuzzRng::new(5);
    let max_response = if flags & flags::SMALL_INPUT != 0 {
        0
    } else {
        8192
    };
    let mut buffers = OwnedBuffers::new(max_response, 0);
    let mut conn =
        Connection::new(buffers.borrow(), "192.0.2.7:51826").expect("buffers at their minimum");
    let now = Instant::from_millis(0);
    let wire = if flags & flags::VERIFIED != 0 {
        conn.enter_session(keys());
        let on = CharacteristicId { aid: 1, iid: 9 };
        conn.get_accessories(now).unwrap();
        conn.get_characteristics(now, &[on], ReadOptions::default())
            .unwrap();
        conn.put_characteristics(now, &[Write::subscribe(on, true)])
            .unwrap();
        conn.list_pairings(now).unwrap();
        if flags & flags::RAW_WIRE != 0 {
            answers.to_vec()
        } else {
            let mut session = Session::new(keys(), Role::Accessory);
            let mut wire = std::vec![0; FrameEncryptor::sealed_len(answers.len())];
            let sealed = session.outbound.seal(answers, &mut wire);
            wire.truncate(sealed.map_or(0, |sealed| sealed.written));
            wire
        }
    } else {
        if flags & flags::PAIR_VERIFY != 0 {
            conn.pair_verify(now, owner(), &accessory_pairing(), &mut rng)
                .unwrap();
        } else {
            for _ in 0..3 {
                conn.identify(now).unwrap();
            }
        }
        answers.to_vec()
    };
    let split = split.min(wire.len());
    let mut events = 0;
    let mut closed = drain(&mut conn, &mut rng, &mut events);
    for piece in [&wire[..split], &wire[split..]] {
        let mut rest = piece;
        let mut steps = 0;
        // Taking nothing is fine once: the input buffer is full. Draining must then make
        // room or close.
        let mut stalled = false;
        while !rest.is_empty() && !closed {
            steps += 1;
            assert!(steps < STEP_LIMIT, "the connection stopped taking input");
            let taken = conn.handle_input(now, rest);
            assert!(
                taken > 0 || !stalled,
                "a drained connection took nothing and did not close"
            );
            stalled = taken == 0;
            rest = &rest[taken..];
            closed = drain(&mut conn, &mut rng, &mut events);
        }
    }
    if !closed {
        conn.handle_timeout(now + controller::DEFAULT_RESPONSE_TIMEOUT);
        if !drain(&mut conn, &mut rng, &mut events) {
            assert_eq!(conn.in_flight(), 0, "an overdue request did not close");
            conn.connection_lost();
            assert!(
                drain(&mut conn, &mut rng, &mut events),
                "a lost connection did not close"
            );
        }
    }
    assert!(conn.poll_output(&mut rng).is_none(), "output after Close");
    events
}

/// Polls until there is nothing more, walking and counting every answer and event; true
/// once closed.
fn drain(conn: &mut Connection<'_>, rng: &mut FuzzRng, events: &mut usize) -> bool {
    let mut closed = false;
    let mut steps = 0;
    while let Some(output) = conn.poll_output(rng) {
        steps += 1;
        assert!(steps < STEP_LIMIT, "poll_output never ends");
        assert!(!closed, "output after Close");
        match output {
            Output::Transmit(bytes) => assert!(!bytes.is_empty(), "an empty transmit"),
            Output::Event(Event::Response(answer)) => {
                *events += 1;
                let _ = answer.hap_status();
                if let Ok(items) = answer.characteristics() {
                    walk_characteristics(items);
                }
                if let Ok(accessories) = answer.accessories() {
                    walk_accessories(accessories);
                }
                if let Ok(reply) = answer.pairings() {
                    let _ = reply.pairings().count();
                }
            }
            Output::Event(Event::Changed(items)) => {
                *events += 1;
                walk_characteristics(items);
            }
            Output::Event(_) => *events += 1,
            Output::Close(_) => closed = true,
        }
    }
    closed
}

/// Seeds: answers to the verified requests (accessories, a read, a write, the pairing
/// list, with events between), chunked and not, and answers to `/identify`.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let json = |status: &str, body: &str| {
        std::format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let event = |body: &str| {
        std::format!(
            "EVENT/1.0 200 OK\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let accessories = r#"{"accessories":[{"aid":1,"services":[{"iid":1,"type":"3E","characteristics":[{"iid":2,"type":"14","perms":["pw"],"format":"bool"},{"iid":5,"type":"23","perms":["pr"],"format":"string","value":"Lamp \u00e9"}]},{"iid":8,"type":"43","primary":true,"characteristics":[{"iid":9,"type":"25","perms":["pr","pw","ev"],"format":"bool","value":false,"ev":false},{"iid":10,"type":"8","perms":["pr","pw","ev"],"format":"int","unit":"percentage","minValue":0,"maxValue":100,"minStep":1,"value":42}]}]}]}"#;
    let read = r#"{"characteristics":[{"aid":1,"iid":9,"value":true}]}"#;
    let changed = r#"{"characteristics":[{"aid":1,"iid":9,"value":1}]}"#;
    let mut pairings = std::format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/pairing+tlv8\r\nContent-Length: {}\r\n\r\n",
        6 + 32 + 3 + 2 + 7 + 32 + 3 + 3
    )
    .into_bytes();
    pairings.extend_from_slice(&[0x06, 1, 2, 0x01, 5]);
    pairings.extend_from_slice(b"owner");
    pairings.extend_from_slice(&[0x03, 32]);
    pairings.extend_from_slice(&[1; 32]);
    pairings.extend_from_slice(&[0x0B, 1, 1, 0xFF, 0, 0x01, 5]);
    pairings.extend_from_slice(b"guest");
    pairings.extend_from_slice(&[0x03, 32]);
    pairings.extend_from_slice(&[2; 32]);
    pairings.extend_from_slice(&[0x0B, 1, 0]);
    let verified: Vec<u8> = [
        json("200 OK", accessories).into_bytes(),
        event(changed).into_bytes(),
        json("200 OK", read).into_bytes(),
        b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        pairings,
    ]
    .concat();
    let mut chunked = std::format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/hap+json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        40,
        &accessories[..40],
        accessories.len() - 40,
        &accessories[40..]
    )
    .into_bytes();
    chunked.extend_from_slice(
        json(
            "207 Multi-Status",
            r#"{"characteristics":[{"aid":1,"iid":9,"status":-70402}]}"#,
        )
        .as_bytes(),
    );
    let identify = [
        &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
        json("400 Bad Request", r#"{"status":-70401}"#).as_bytes(),
        b"HTTP/1.1 470 Connection Authorization Required\r\nContent-Length: 0\r\n\r\n",
    ]
    .concat();
    let with = |flags: u8, split: u16, answers: &[u8]| {
        [&[flags][..], &split.to_le_bytes(), answers].concat()
    };
    std::vec![
        with(flags::VERIFIED, 300, &verified),
        with(flags::VERIFIED | flags::SMALL_INPUT, 7, &verified),
        with(flags::VERIFIED, 100, &chunked),
        with(0, 30, &identify),
        with(
            flags::PAIR_VERIFY,
            0,
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n\x06\x01\x02\x07\x01\x02"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds reach every answer: four responses and an event when verified (also
    /// through the small buffer and a chunked body), three answers to `/identify`, and
    /// the end of pair-verify.
    #[test]
    fn every_seed_is_answered_whole() {
        let answered: Vec<usize> = seeds()
            .iter()
            .map(|seed| {
                connection(
                    seed[0],
                    usize::from(u16::from_le_bytes([seed[1], seed[2]])),
                    &seed[3..],
                )
            })
            .collect();
        assert_eq!(answered, [5, 5, 2, 3, 1]);
    }
}
