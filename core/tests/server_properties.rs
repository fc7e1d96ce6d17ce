//! Property tests of the server's run loop on hostile input, through the public API.

use hap_core::catalog::service;
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::ids::IdMap;
use hap_core::server::{Config, ConnectionBuffers, Output, Server, Subscription};
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_core::ConnectionId;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Requests and fragments a hostile peer might send, mixed with plain garbage.
fn request_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET /accessories HTTP/1.1\r\n\r\n".to_vec()),
        Just(b"POST /identify HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec()),
        Just(
            b"POST /pair-setup HTTP/1.1\r\nContent-Length: 6\r\n\r\n\x06\x01\x01\x00\x01\x00"
                .to_vec()
        ),
        Just(b"POST /pair-verify HTTP/1.1\r\nContent-Length: 3\r\n\r\n\x06\x01\x01".to_vec()),
        Just(b"POST /pairings HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec()),
        Just(b"PUT /nope HTTP/1.1\r\n\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Drives one connection with `pieces` split at `cuts`, storing successfully or not as
/// `store_ok` says, and checks the run loop's contract. Returns the plaintext output.
fn drive(pieces: &[Vec<u8>], cuts: &[usize], store_ok: bool) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let state = AccessoryState::generate(&"518-08-582".parse().unwrap(), &mut rng);
    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "light",
        &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"),
    );
    builder.service(&service::LIGHTBULB);
    let mut server = Server::new(state, builder.build().unwrap(), Config::default());
    let (mut input, mut scratch, mut output) = (vec![0u8; 9216], vec![0u8; 2048], vec![0u8; 4096]);
    let mut subscriptions = [Subscription::EMPTY; 8];
    let buffers = ConnectionBuffers {
        input: &mut input,
        scratch: &mut scratch,
        output: &mut output,
        subscriptions: &mut subscriptions,
    };
    let now = Instant::from_millis(0);
    let mut conn = server.accept(ConnectionId(1), buffers, now).unwrap();

    let stream: Vec<u8> = pieces.concat();
    let mut transmitted = Vec::new();
    let mut closed = false;
    let mut start = 0;
    for cut in cuts
        .iter()
        .map(|c| c % (stream.len() + 1))
        .chain([stream.len()])
    {
        let end = cut.max(start);
        let mut piece = &stream[start..end];
        start = end;
        for _ in 0..10_000 {
            let taken = server.handle_input(&mut conn, now, piece, &mut rng);
            assert!(taken <= piece.len());
            piece = &piece[taken..];
            for _ in 0..10_000 {
                match server.poll_output(&mut conn, now, &mut rng) {
                    Some(Output::Transmit(bytes)) => {
                        assert!(!closed, "output after Close");
                        transmitted.extend_from_slice(bytes);
                    }
                    Some(Output::Persist) => {
                        server.state_persisted(&mut conn, now, store_ok, &mut rng)
                    }
                    Some(Output::Event(_)) => assert!(!closed, "event after Close"),
                    Some(Output::Close) => {
                        assert!(!closed, "Close twice");
                        closed = true;
                    }
                    Some(other) => panic!("an output this test does not know: {other:?}"),
                    None => break,
                }
            }
            if piece.is_empty() {
                break;
            }
        }
        assert!(piece.is_empty(), "input never taken");
    }
    transmitted
}

/// Parses a stream of HTTP responses, failing on anything else.
fn all_responses(mut bytes: &[u8]) -> Result<usize, String> {
    let mut count = 0;
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(bytes) {
            Ok(httparse::Status::Complete(head)) => head,
            other => return Err(format!("not a response: {other:?}")),
        };
        let length: usize = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .ok_or("no Content-Length")?;
        bytes = bytes.get(head + length..).ok_or("truncated body")?;
        count += 1;
    }
    Ok(count)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hostile_streams_keep_the_run_loop_contract(
        pieces in proptest::collection::vec(request_piece(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        store_ok in any::<bool>(),
    ) {
        let transmitted = drive(&pieces, &cuts, store_ok);
        // Before pair-verify everything is plaintext HTTP.
        prop_assert!(all_responses(&transmitted).is_ok(), "{:?}", all_responses(&transmitted));
    }

    #[test]
    fn split_points_do_not_change_the_answers(
        pieces in proptest::collection::vec(request_piece(), 0..20),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assert_eq!(drive(&pieces, &[], true), drive(&pieces, &cuts, true));
    }
}
