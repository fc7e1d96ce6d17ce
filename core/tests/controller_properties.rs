//! Property tests of the controller: whatever an accessory sends, the controller's
//! parsers and its connection never panic, and a valid message is read the same however
//! it is split.

use hap_core::controller::response::{parse_message, top_level_status};
use hap_core::controller::{self, Accessories, Characteristics, PairingsReply};
use hap_core::http::Status;
use proptest::prelude::*;

/// The `Host` header the controller sends.
const HOST: &str = "192.0.2.7:51826";
use rand_chacha::rand_core::SeedableRng;

/// Bytes that often look like HTTP: a real head with arbitrary pieces mixed in.
fn answer_like() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"HTTP/1.1 200 OK\r\n"[..],
        b"EVENT/1.0 200 OK\r\n",
        b"HTTP/1.1 207 Multi-Status\r\n",
        b"Content-Length: 12\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"5\r\nhello\r\n",
        b"0\r\n\r\n",
        br#"{"characteristics":[{"aid":1,"iid":9,"value":true,"status":-70402}]}"#,
        b"ffffffff\r\n",
        br#"{"accessories":[{"aid":1,"services":[{"iid":1,"type":"3E","characteristics":[{"iid":2,"type":"14","perms":["pw"]}]}]}]}"#,
    ]);
    proptest::collection::vec(
        prop_oneof![
            3 => pieces.prop_map(<[u8]>::to_vec),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in answer_like()) {
        let mut buf = bytes.clone();
        if let Ok(Status::Complete(message)) = parse_message(&mut buf) {
            prop_assert!(message.body_start <= message.body_end);
            prop_assert!(message.body_end <= message.len && message.len <= buf.len());
        }
        if let Ok(items) = Characteristics::parse(&bytes) {
            let expected = items.len();
            prop_assert_eq!(items.count(), expected);
        }
        let _ = top_level_status(&bytes);
        if let Ok(accessories) = Accessories::parse(&bytes) {
            let _ = accessories
                .flat_map(|a| a.services)
                .flat_map(|s| s.characteristics)
                .count();
        }
        if let Ok(reply) = PairingsReply::parse(&bytes) {
            let _ = reply.pairings().count();
        }
    }

    /// The connection takes any bytes, split anywhere, without panicking, and ends
    /// either quiet or closed.
    #[test]
    fn the_connection_survives_any_answer(bytes in answer_like(), cut in any::<prop::sample::Index>()) {
        let mut buffers = controller::OwnedBuffers::new(0, 0);
        let mut connection = controller::Connection::new(buffers.borrow(), HOST).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let now = hap_core::time::Instant::from_millis(0);
        connection.identify(now).unwrap();
        connection.identify(now).unwrap();
        let cut = if bytes.is_empty() { 0 } else { cut.index(bytes.len()) };
        for piece in [&bytes[..cut], &bytes[cut..]] {
            let mut rest = piece;
            for _ in 0..10_000 {
                let taken = connection.handle_input(now, rest);
                rest = &rest[taken..];
                while connection.poll_output(&mut rng).is_some() {}
                if rest.is_empty() {
                    break;
                }
            }
            prop_assert!(rest.is_empty());
        }
    }

    /// A chunked response is read the same whole and split at any point.
    #[test]
    fn chunked_bodies_read_the_same_however_split(
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..500, 1..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = &body[..];
        let mut size = sizes.iter().cycle();
        while !rest.is_empty() {
            let n = (*size.next().unwrap()).min(rest.len());
            wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let mut buf = wire.clone();
        let Ok(Status::Complete(message)) = parse_message(&mut buf) else {
            return Err(TestCaseError::fail("not complete"));
        };
        prop_assert_eq!(&buf[message.body_start..message.body_end], &body[..]);
        prop_assert_eq!(message.len, wire.len());
        let mut prefix = wire[..cut.index(wire.len())].to_vec();
        prop_assert_eq!(parse_message(&mut prefix), Ok(Status::Partial));
    }
}
