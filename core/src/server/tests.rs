//! The server driven over HTTP by an in-memory controller: whole, byte by byte and at
//! random split points.

use std::vec;
use std::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::controller::{request, response};
use crate::crypto::Ed25519KeyPair;
use crate::http::Status as HttpStatus;
use crate::pairing::setup::{PairSetupClient, SetupClientOutput};
use crate::pairing::verify::{PairVerifyClient, VerifyClientOutput};
use crate::pairing::{AccessoryPairing, ControllerIdentity};
use crate::session::{FrameEncryptor, Role, Session};
use crate::ConnectionId;

mod attributes;
mod quirks;
mod sessions;

const CODE: &str = "518-08-582";

#[derive(Clone, Copy, Debug)]
enum Feed {
    Whole,
    ByteByByte,
    Random(u64),
}

/// Owned buffers for one connection.
struct Buffers(OwnedBuffers);

impl Buffers {
    fn new() -> Self {
        Self::sized(4096, 64)
    }

    /// With `output` bytes of output and room for `subscriptions` subscriptions.
    fn sized(output: usize, subscriptions: usize) -> Self {
        Self(OwnedBuffers::new(8192 + 1024, 8192, output, subscriptions))
    }

    fn connection(&mut self, id: u32) -> Connection<'_> {
        Connection::new(ConnectionId(id), self.0.borrow()).unwrap()
    }
}

/// What one exchange produced on a connection.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    transmitted: Vec<u8>,
    events: Vec<Event>,
    persisted: usize,
    closed: bool,
}

/// Drains `conn`, storing the state whenever asked (successfully, into `stored`).
fn drain(
    server: &mut Server,
    conn: &mut Connection<'_>,
    now: Instant,
    rng: &mut ChaCha20Rng,
    stored: &mut Vec<AccessoryState>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for _ in 0..1000 {
        match server.poll_output(conn, now, rng) {
            Some(Output::Transmit(bytes)) => outcome.transmitted.extend_from_slice(bytes),
            Some(Output::Persist) => {
                stored.push(server.state().clone());
                outcome.persisted += 1;
                server.state_persisted(conn, now, true, rng);
                outcome
                    .events
                    .extend(core::iter::from_fn(|| server.poll_event()));
            }
            Some(Output::Event(event)) => outcome.events.push(event),
            Some(Output::Close) => outcome.closed = true,
            None => {
                // As an adapter does: server-wide events may follow any exchange.
                outcome
                    .events
                    .extend(core::iter::from_fn(|| server.poll_event()));
                return outcome;
            }
        }
    }
    panic!("poll_output never settled");
}

/// Feeds `bytes` to the server in pieces chosen by `feed`, draining after each.
#[allow(clippy::too_many_arguments)]
fn feed(
    server: &mut Server,
    conn: &mut Connection<'_>,
    now: Instant,
    bytes: &[u8],
    how: Feed,
    rng: &mut ChaCha20Rng,
    stored: &mut Vec<AccessoryState>,
) -> Outcome {
    let mut splitter = ChaCha20Rng::seed_from_u64(match how {
        Feed::Random(seed) => seed,
        _ => 0,
    });
    let mut total = Outcome::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = match how {
            Feed::Whole => rest.len(),
            Feed::ByteByByte => 1,
            Feed::Random(_) => 1 + (splitter.next_u32() as usize % 700).min(rest.len() - 1),
        };
        let (mut piece, tail) = rest.split_at(len);
        let mut outcome = Outcome::default();
        // Offer what was not taken again after draining, as an adapter would.
        for _ in 0..10_000 {
            let taken = server.handle_input(conn, now, piece, rng);
            piece = &piece[taken..];
            let drained = drain(server, conn, now, rng, stored);
            outcome.transmitted.extend(drained.transmitted);
            outcome.events.extend(drained.events);
            outcome.persisted += drained.persisted;
            outcome.closed |= drained.closed;
            if piece.is_empty() {
                break;
            }
        }
        assert!(piece.is_empty(), "input was never taken");
        total.transmitted.extend(outcome.transmitted);
        total.events.extend(outcome.events);
        total.persisted += outcome.persisted;
        total.closed |= outcome.closed;
        rest = tail;
    }
    total
}

/// A request written by the controller's builder `write`.
fn written<E>(write: impl Fn(&mut [u8]) -> Result<usize, E>) -> Vec<u8> {
    let mut out = vec![0; 1024];
    loop {
        if let Ok(len) = write(&mut out) {
            out.truncate(len);
            return out;
        }
        assert!(out.len() < 1 << 24, "a request of over 16 MiB");
        out.resize(2 * out.len(), 0);
    }
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    written(|out| request::post(out, "192.0.2.7:51826", path, content_type, body))
}

/// A pair-setup M1 (state 1, method 0) as a request.
fn pair_setup_m1() -> Vec<u8> {
    post(
        "/pair-setup",
        "application/pairing+tlv8",
        &[0x06, 1, 1, 0x00, 1, 0],
    )
}

fn get(path: &str) -> Vec<u8> {
    written(|out| request::custom(out, "GET", path, None, b""))
}

/// Splits a response stream into (status, body) pairs.
fn responses(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut rest = bytes.to_vec();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Ok(HttpStatus::Complete(message)) = response::parse_message(&mut rest) else {
            panic!("a partial or malformed response")
        };
        out.push((
            message.status,
            rest[message.body_start..message.body_end].to_vec(),
        ));
        rest.drain(..message.len);
    }
    out
}

/// A controller that speaks HTTP to the server.
struct Controller {
    identity: ControllerIdentity,
    rng: ChaCha20Rng,
    session: Option<Session>,
}

impl Controller {
    fn new(name: &str, seed: u8) -> Self {
        Self {
            identity: ControllerIdentity {
                id: PairingId::new(name.as_bytes()).unwrap(),
                keys: Ed25519KeyPair::from_seed(&[seed; 32]),
            },
            rng: ChaCha20Rng::seed_from_u64(u64::from(seed)),
            session: None,
        }
    }

    /// Encrypts a request if the session is up.
    fn wrap(&mut self, request: &[u8]) -> Vec<u8> {
        match &mut self.session {
            None => request.to_vec(),
            Some(session) => {
                let mut wire = vec![0; FrameEncryptor::sealed_len(request.len())];
                session.outbound.seal(request, &mut wire).unwrap();
                wire
            }
        }
    }

    /// Decrypts the server's bytes if the session is up.
    fn unwrap(&mut self, mut wire: &[u8]) -> Vec<u8> {
        let Some(session) = &mut self.session else {
            return wire.to_vec();
        };
        let mut plain = Vec::new();
        while !wire.is_empty() {
            let opened = session.inbound.open(wire).unwrap();
            plain.extend_from_slice(opened.plaintext.unwrap_or_default());
            wire = &wire[opened.consumed..];
        }
        plain
    }
}

/// A light: aid 1 with its information service and a lightbulb with On at iid 9.
pub(super) fn light() -> Database<'static> {
    use crate::catalog::service as s;
    use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "light",
        &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"),
    );
    builder.service(&s::LIGHTBULB).primary();
    builder.build().unwrap()
}

struct Harness {
    server: Server<'static>,
    now: Instant,
    rng: ChaCha20Rng,
    stored: Vec<AccessoryState>,
}

impl Harness {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let state = AccessoryState::generate(&CODE.parse().unwrap(), &mut rng);
        Self {
            server: Server::new(state, light(), Config::default()),
            now: Instant::from_millis(0),
            rng,
            stored: Vec::new(),
        }
    }

    /// Sends one request from `controller` and returns the responses and the outcome.
    fn exchange(
        &mut self,
        conn: &mut Connection<'_>,
        controller: &mut Controller,
        request: &[u8],
        how: Feed,
    ) -> (Vec<(u16, Vec<u8>)>, Outcome) {
        let wire = controller.wrap(request);
        let outcome = feed(
            &mut self.server,
            conn,
            self.now,
            &wire,
            how,
            &mut self.rng,
            &mut self.stored,
        );
        let plain = controller.unwrap(&outcome.transmitted);
        (responses(&plain), outcome)
    }

    fn pair(
        &mut self,
        conn: &mut Connection<'_>,
        controller: &mut Controller,
        how: Feed,
    ) -> AccessoryPairing {
        self.pair_pausing(conn, controller, how, |_, _| {})
    }

    /// Pairs as [`Harness::pair`] does, calling `pause` after each reply (M2 is the
    /// first), as a controller whose user takes their time would.
    fn pair_pausing(
        &mut self,
        conn: &mut Connection<'_>,
        controller: &mut Controller,
        how: Feed,
        mut pause: impl FnMut(&mut Self, &mut Connection<'_>),
    ) -> AccessoryPairing {
        let mut out = [0u8; 1024];
        let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
        let mut body = out[..len].to_vec();
        loop {
            let (replies, outcome) = self.exchange(
                conn,
                controller,
                &post("/pair-setup", "application/pairing+tlv8", &body),
                how,
            );
            assert!(!outcome.closed);
            assert_eq!(replies.len(), 1);
            assert_eq!(replies[0].0, 200);
            pause(self, conn);
            match client
                .handle_response(
                    &replies[0].1,
                    &controller.identity,
                    &mut controller.rng,
                    &mut out,
                )
                .unwrap()
            {
                SetupClientOutput::Send(len) => body = out[..len].to_vec(),
                SetupClientOutput::Paired(pairing) => return pairing,
                SetupClientOutput::Transient(_) => unreachable!(),
            }
        }
    }

    fn verify(
        &mut self,
        conn: &mut Connection<'_>,
        controller: &mut Controller,
        pairing: &AccessoryPairing,
        how: Feed,
    ) {
        let mut out = [0u8; 1024];
        let (mut client, len) = PairVerifyClient::start(&mut controller.rng, &mut out).unwrap();
        let mut body = out[..len].to_vec();
        loop {
            let (replies, outcome) = self.exchange(
                conn,
                controller,
                &post("/pair-verify", "application/pairing+tlv8", &body),
                how,
            );
            assert_eq!(replies[0].0, 200);
            match client
                .handle_response(&replies[0].1, &controller.identity, pairing, &mut out)
                .unwrap()
            {
                VerifyClientOutput::Send(len) => body = out[..len].to_vec(),
                VerifyClientOutput::Verified(keys) => {
                    assert!(outcome.events.contains(&Event::Verified {
                        controller: controller.identity.id.clone()
                    }));
                    controller.session = Some(Session::new(keys, Role::Controller));
                    return;
                }
            }
        }
    }
}

/// An add-pairing body for `guest`, without admin rights.
fn add_guest(guest: &Controller) -> Vec<u8> {
    let key = guest.identity.keys.public_key();
    written(|out| request::add_pairing_body(out, b"guest", &key, false))
}

/// A remove-pairing body for the 5-byte identifier `id`.
fn remove_pairing(id: &[u8; 5]) -> Vec<u8> {
    written(|out| request::remove_pairing_body(out, id))
}

fn list_pairings() -> Vec<u8> {
    let body = written(request::list_pairings_body);
    post("/pairings", "application/pairing+tlv8", &body)
}

/// Pair, verify and list pairings; returns every byte the server sent.
fn full_exchange(how: Feed) -> Vec<u8> {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(&mut conn, &mut owner, how);
    assert_eq!(harness.stored.len(), 1, "the pairing was stored before M6");
    harness.verify(&mut conn, &mut owner, &pairing, how);
    assert!(conn.is_encrypted());
    let (replies, outcome) = harness.exchange(&mut conn, &mut owner, &list_pairings(), how);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 200);
    let list = crate::tlv::Tlv::parse(&replies[0].1).unwrap();
    assert_eq!(
        list.get(0x01).and_then(|i| i.contiguous()),
        Some(&b"owner"[..])
    );
    outcome.transmitted
}

#[test]
fn pairing_over_http_whole_bytewise_and_split_give_identical_results() {
    let whole = full_exchange(Feed::Whole);
    assert_eq!(whole, full_exchange(Feed::ByteByByte));
    for seed in [1, 2, 3] {
        assert_eq!(whole, full_exchange(Feed::Random(seed)));
    }
}

#[test]
fn protected_endpoints_need_pair_verify() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut stranger = Controller::new("stranger", 3);
    let requests = [
        get("/accessories"),
        get("/characteristics?id=1.9"),
        list_pairings(),
        post("/prepare", "application/hap+json", b"{}"),
        b"PUT /pairings HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for request in requests {
        let (replies, outcome) = harness.exchange(&mut conn, &mut stranger, &request, Feed::Whole);
        assert_eq!(
            replies,
            [(470, vec![])],
            "{}",
            std::string::String::from_utf8_lossy(&request)
        );
        assert!(!outcome.closed);
    }
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut controller = Controller::new("c", 3);
    let (replies, _) = harness.exchange(&mut conn, &mut controller, &get("/nope"), Feed::Whole);
    assert_eq!(replies, [(404, vec![])]);
    let (replies, _) =
        harness.exchange(&mut conn, &mut controller, &get("/pair-setup"), Feed::Whole);
    assert_eq!(replies, [(405, vec![])]);
    let (replies, _) = harness.exchange(&mut conn, &mut controller, &get("/identify"), Feed::Whole);
    assert_eq!(replies, [(405, vec![])]);
}

#[test]
fn identify_works_only_while_unpaired() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let identify = post("/identify", "application/hap+json", b"");
    let (replies, outcome) = harness.exchange(&mut conn, &mut owner, &identify, Feed::Whole);
    assert_eq!(replies, [(204, vec![])]);
    assert_eq!(outcome.events, [Event::Identify]);
    harness.pair(&mut conn, &mut owner, Feed::Whole);
    let mut other_buffers = Buffers::new();
    let mut other = other_buffers.connection(2);
    let (replies, outcome) = harness.exchange(
        &mut other,
        &mut Controller::new("x", 1),
        &identify,
        Feed::Whole,
    );
    assert_eq!(replies, [(400, b"{\"status\":-70401}".to_vec())]);
    assert!(outcome.events.is_empty());
}

#[test]
fn pairing_emits_pairings_changed_once_stored_and_received() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let mut out = [0u8; 1024];
    let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
    let mut body = out[..len].to_vec();
    let mut events = Vec::new();
    for _ in 0..3 {
        let (replies, outcome) = harness.exchange(
            &mut conn,
            &mut owner,
            &post("/pair-setup", "application/pairing+tlv8", &body),
            Feed::Whole,
        );
        events.extend(outcome.events);
        if let SetupClientOutput::Send(len) = client
            .handle_response(&replies[0].1, &owner.identity, &mut owner.rng, &mut out)
            .unwrap()
        {
            body = out[..len].to_vec();
        }
    }
    assert!(
        events.is_empty(),
        "not before the controller has M6: {events:?}"
    );
    // Its next bytes show it has M6.
    let (_, outcome) = harness.exchange(&mut conn, &mut owner, &get("/x"), Feed::Whole);
    assert_eq!(outcome.events, [Event::PairingsChanged { paired: true }]);
}

#[test]
fn malformed_http_closes_without_an_answer() {
    for request in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"[..],
        b"POST /pair-setup HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"POST /pair-setup HTTP/1.1\r\nContent-Type: a\r\nContent-Type: a\r\n\r\n",
        b"PUT /characteristics HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
    ] {
        let mut harness = Harness::new();
        let mut buffers = Buffers::new();
        let mut conn = buffers.connection(1);
        let outcome = feed(
            &mut harness.server,
            &mut conn,
            harness.now,
            request,
            Feed::Whole,
            &mut harness.rng,
            &mut harness.stored,
        );
        assert!(outcome.closed, "{request:?}");
        assert!(outcome.transmitted.is_empty(), "{request:?}");
        // Nothing more comes out of a closed connection.
        harness.server.handle_input(
            &mut conn,
            Instant::from_millis(0),
            &get("/nope"),
            &mut harness.rng,
        );
        assert_eq!(
            harness
                .server
                .poll_output(&mut conn, Instant::from_millis(0), &mut harness.rng),
            None
        );
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut controller = Controller::new("c", 3);
    let mut requests = get("/nope");
    requests.extend(get("/accessories"));
    requests.extend(get("/pair-verify"));
    let (replies, _) = harness.exchange(&mut conn, &mut controller, &requests, Feed::Whole);
    let codes: Vec<u16> = replies.iter().map(|r| r.0).collect();
    assert_eq!(codes, [404, 470, 405]);
}

/// Found by fuzzing: with an output buffer that holds one response, a request that
/// needs storage, pipelined behind another, was parsed by `poll_output` once the first
/// answer had gone, but its Persist was reported only after the next input; draining
/// to `None` left it hanging.
#[test]
fn a_pipelined_request_that_needs_storage_is_answered_in_the_same_drain() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::sized(MIN_OUTPUT_LEN, 64);
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let guest = Controller::new("guest", 8);
    let pairing = harness.pair(&mut conn, &mut owner, Feed::Whole);
    harness.verify(&mut conn, &mut owner, &pairing, Feed::Whole);
    let mut requests = list_pairings();
    requests.extend(post(
        "/pairings",
        "application/pairing+tlv8",
        &add_guest(&guest),
    ));
    requests.extend(list_pairings());
    let (replies, outcome) = harness.exchange(&mut conn, &mut owner, &requests, Feed::Whole);
    let codes: Vec<u16> = replies.iter().map(|r| r.0).collect();
    assert_eq!(codes, [200, 200, 200]);
    assert_eq!(outcome.persisted, 1);
    let listed = crate::tlv::Tlv::parse(&replies[2].1).unwrap();
    assert_eq!(listed.items().filter(|i| i.ty() == 0x01).count(), 2);
}

#[test]
fn a_tampered_frame_closes_the_session() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(&mut conn, &mut owner, Feed::Whole);
    harness.verify(&mut conn, &mut owner, &pairing, Feed::Whole);
    let mut wire = owner.wrap(&list_pairings());
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let outcome = feed(
        &mut harness.server,
        &mut conn,
        harness.now,
        &wire,
        Feed::Whole,
        &mut harness.rng,
        &mut harness.stored,
    );
    assert!(outcome.closed);
    assert!(outcome.transmitted.is_empty());
    assert_eq!(
        conn.close_reason(),
        Some(CloseReason::Frame(FrameError::BadTag))
    );
}

/// Pairs and verifies `owner` on `owner_conn`, adds `guest` as a non-admin through
/// `/pairings` (checking the answer and that it was stored), and verifies `guest` on
/// `guest_conn`.
fn owner_and_guest(
    harness: &mut Harness,
    owner_conn: &mut Connection<'_>,
    guest_conn: &mut Connection<'_>,
) -> (Controller, Controller) {
    let mut owner = Controller::new("owner", 7);
    let mut guest = Controller::new("guest", 8);
    let pairing = harness.pair(owner_conn, &mut owner, Feed::Whole);
    harness.verify(owner_conn, &mut owner, &pairing, Feed::Whole);
    let add = post("/pairings", "application/pairing+tlv8", &add_guest(&guest));
    let (replies, outcome) = harness.exchange(owner_conn, &mut owner, &add, Feed::Whole);
    assert_eq!(replies[0].0, 200);
    assert_eq!(outcome.persisted, 1);
    harness.verify(guest_conn, &mut guest, &pairing, Feed::Whole);
    (owner, guest)
}

#[test]
fn removing_a_pairing_closes_that_controllers_sessions_after_the_reply() {
    let mut harness = Harness::new();
    let (mut owner_buffers, mut guest_buffers) = (Buffers::new(), Buffers::new());
    let mut owner_conn = owner_buffers.connection(1);
    let mut guest_conn = guest_buffers.connection(2);
    let (mut owner, mut guest) = owner_and_guest(&mut harness, &mut owner_conn, &mut guest_conn);

    // The guest may not manage pairings.
    let (replies, _) = harness.exchange(&mut guest_conn, &mut guest, &list_pairings(), Feed::Whole);
    assert_eq!(
        crate::tlv::Tlv::parse(&replies[0].1).unwrap().get_u8(0x07),
        Some(2)
    );

    let remove = remove_pairing(b"guest");
    let (replies, outcome) = harness.exchange(
        &mut owner_conn,
        &mut owner,
        &post("/pairings", "application/pairing+tlv8", &remove),
        Feed::Whole,
    );
    assert_eq!(replies[0].0, 200);
    assert!(!outcome.closed, "the owner's session stays");
    let guest_outcome = drain(
        &mut harness.server,
        &mut guest_conn,
        harness.now,
        &mut harness.rng,
        &mut harness.stored,
    );
    assert!(guest_outcome.closed);
    assert_eq!(guest_conn.close_reason(), Some(CloseReason::PairingRemoved));

    // Removing the owner, the last admin, answers first and then closes its own session.
    let remove_owner = remove_pairing(b"owner");
    let (replies, outcome) = harness.exchange(
        &mut owner_conn,
        &mut owner,
        &post("/pairings", "application/pairing+tlv8", &remove_owner),
        Feed::Whole,
    );
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 200);
    assert!(outcome.closed);
    assert!(outcome
        .events
        .contains(&Event::PairingsChanged { paired: false }));
}

#[test]
fn a_failed_store_answers_500_and_keeps_nothing() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let mut out = [0u8; 1024];
    let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
    let mut body = out[..len].to_vec();
    for _ in 0..2 {
        let (replies, _) = harness.exchange(
            &mut conn,
            &mut owner,
            &post("/pair-setup", "application/pairing+tlv8", &body),
            Feed::Whole,
        );
        let SetupClientOutput::Send(len) = client
            .handle_response(&replies[0].1, &owner.identity, &mut owner.rng, &mut out)
            .unwrap()
        else {
            panic!()
        };
        body = out[..len].to_vec();
    }
    // M5: the store fails.
    let wire = post("/pair-setup", "application/pairing+tlv8", &body);
    harness
        .server
        .handle_input(&mut conn, Instant::from_millis(0), &wire, &mut harness.rng);
    assert_eq!(
        harness
            .server
            .poll_output(&mut conn, Instant::from_millis(0), &mut harness.rng),
        Some(Output::Persist)
    );
    harness
        .server
        .state_persisted(&mut conn, Instant::from_millis(0), false, &mut harness.rng);
    let Some(Output::Transmit(bytes)) =
        harness
            .server
            .poll_output(&mut conn, Instant::from_millis(0), &mut harness.rng)
    else {
        panic!()
    };
    assert_eq!(responses(bytes), [(500, b"{\"status\":-70407}".to_vec())]);
    assert!(!harness.server.state().is_paired());
}

#[test]
fn oversize_input_closes_the_connection() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut body = b"POST /pair-setup HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
    body.extend(vec![0u8; 100_000]);
    let outcome = feed(
        &mut harness.server,
        &mut conn,
        harness.now,
        &body,
        Feed::Random(9),
        &mut harness.rng,
        &mut harness.stored,
    );
    assert!(outcome.closed);
    assert!(outcome.transmitted.is_empty());
}

#[test]
fn a_flood_of_pipelined_requests_is_answered_in_order_with_backpressure() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut controller = Controller::new("c", 3);
    // About 20 KB of requests in one write: more than the input or output buffer holds.
    let mut flood = Vec::new();
    for i in 0..500 {
        flood.extend(if i % 2 == 0 {
            get("/nope")
        } else {
            get("/accessories")
        });
    }
    let (replies, outcome) = harness.exchange(&mut conn, &mut controller, &flood, Feed::Whole);
    assert!(!outcome.closed);
    let codes: Vec<u16> = replies.iter().map(|r| r.0).collect();
    let expected: Vec<u16> = (0..500)
        .map(|i| if i % 2 == 0 { 404 } else { 470 })
        .collect();
    assert_eq!(codes, expected);
}

#[test]
fn a_lost_connection_releases_the_pair_setup_lock() {
    let mut harness = Harness::new();
    let (mut first_buffers, mut second_buffers) = (Buffers::new(), Buffers::new());
    let mut first = first_buffers.connection(1);
    let mut second = second_buffers.connection(2);
    let m1 = pair_setup_m1();
    let (replies, _) = harness.exchange(&mut first, &mut Controller::new("a", 1), &m1, Feed::Whole);
    assert_eq!(
        crate::tlv::Tlv::parse(&replies[0].1).unwrap().get_u8(0x07),
        None
    );
    let (replies, _) =
        harness.exchange(&mut second, &mut Controller::new("b", 2), &m1, Feed::Whole);
    assert_eq!(
        crate::tlv::Tlv::parse(&replies[0].1).unwrap().get_u8(0x07),
        Some(7),
        "Busy"
    );
    harness.server.connection_lost(&mut first);
    assert_eq!(first.close_reason(), Some(CloseReason::PeerClosed));
    assert_eq!(
        harness
            .server
            .poll_output(&mut first, Instant::from_millis(0), &mut harness.rng),
        None
    );
    let (replies, _) =
        harness.exchange(&mut second, &mut Controller::new("b", 2), &m1, Feed::Whole);
    assert_eq!(
        crate::tlv::Tlv::parse(&replies[0].1).unwrap().get_u8(0x07),
        None,
        "the lock was released"
    );
}

/// Runs pair-setup up to M5 on `conn`, leaving M5's request unsent; returns it.
fn m5_request(harness: &mut Harness, conn: &mut Connection<'_>, owner: &mut Controller) -> Vec<u8> {
    let mut out = [0u8; 1024];
    let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
    let mut body = out[..len].to_vec();
    for _ in 0..2 {
        let (replies, _) = harness.exchange(
            conn,
            owner,
            &post("/pair-setup", "application/pairing+tlv8", &body),
            Feed::Whole,
        );
        let SetupClientOutput::Send(len) = client
            .handle_response(&replies[0].1, &owner.identity, &mut owner.rng, &mut out)
            .unwrap()
        else {
            panic!()
        };
        body = out[..len].to_vec();
    }
    post("/pair-setup", "application/pairing+tlv8", &body)
}

#[test]
fn a_connection_lost_while_its_pairing_is_stored_keeps_or_undoes_it_and_sends_nothing() {
    for stored in [true, false] {
        let mut harness = Harness::new();
        let mut buffers = Buffers::new();
        let mut conn = buffers.connection(1);
        let mut owner = Controller::new("owner", 7);
        let m5 = m5_request(&mut harness, &mut conn, &mut owner);
        let t0 = Instant::from_millis(0);
        harness
            .server
            .handle_input(&mut conn, t0, &m5, &mut harness.rng);
        // The peer goes away before the adapter has even polled the Persist.
        harness.server.connection_lost(&mut conn);
        assert_eq!(
            harness.server.poll_output(&mut conn, t0, &mut harness.rng),
            Some(Output::Persist)
        );
        harness
            .server
            .state_persisted(&mut conn, t0, stored, &mut harness.rng);
        assert_eq!(
            harness.server.poll_output(&mut conn, t0, &mut harness.rng),
            None,
            "nothing after close"
        );
        assert_eq!(harness.server.state().is_paired(), stored);
        assert_eq!(
            harness.server.poll_event(),
            stored.then_some(Event::PairingsChanged { paired: true })
        );
        // Pair-setup is open to others again.
        let mut other_buffers = Buffers::new();
        let mut other = other_buffers.connection(2);
        let m1 = post(
            "/pair-setup",
            "application/pairing+tlv8",
            &[0x06, 1, 1, 0x00, 1, 0],
        );
        let (replies, _) =
            harness.exchange(&mut other, &mut Controller::new("b", 2), &m1, Feed::Whole);
        let expected = if stored { Some(6) } else { None };
        assert_eq!(
            crate::tlv::Tlv::parse(&replies[0].1).unwrap().get_u8(0x07),
            expected
        );
    }
}

#[test]
fn an_eviction_while_storing_closes_only_after_the_store_is_resolved() {
    let mut harness = Harness::new();
    harness.server = Server::new(
        harness.server.state().clone(),
        light(),
        Config {
            max_connections: 1,
            ..Config::default()
        },
    );
    let mut buffers = Buffers::new();
    let t0 = Instant::from_millis(0);
    let mut conn = harness
        .server
        .accept(ConnectionId(1), buffers.0.borrow(), t0)
        .unwrap();
    let mut owner = Controller::new("owner", 7);
    let m5 = m5_request(&mut harness, &mut conn, &mut owner);
    harness
        .server
        .handle_input(&mut conn, t0, &m5, &mut harness.rng);
    assert_eq!(
        harness.server.poll_output(&mut conn, t0, &mut harness.rng),
        Some(Output::Persist)
    );
    let late = t0 + Config::default().idle_eviction;
    assert_eq!(harness.server.make_room(late), Some(ConnectionId(1)));
    harness.server.handle_timeout(&mut conn, late);
    assert_eq!(
        harness
            .server
            .poll_output(&mut conn, late, &mut harness.rng),
        None,
        "no Close while storing"
    );
    harness
        .server
        .state_persisted(&mut conn, late, false, &mut harness.rng);
    assert!(
        !harness.server.state().is_paired(),
        "the failed store was undone"
    );
    assert_eq!(
        harness
            .server
            .poll_output(&mut conn, late, &mut harness.rng),
        Some(Output::Close)
    );
    assert_eq!(
        harness
            .server
            .poll_output(&mut conn, late, &mut harness.rng),
        None
    );
}

#[test]
fn events_are_never_dropped() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let identify = post("/identify", "application/hap+json", b"");
    let twenty: Vec<u8> = (0..20).flat_map(|_| identify.clone()).collect();
    let (replies, outcome) = harness.exchange(
        &mut conn,
        &mut Controller::new("c", 1),
        &twenty,
        Feed::Whole,
    );
    assert_eq!(replies.len(), 20);
    assert_eq!(outcome.events, vec![Event::Identify; 20]);
}

#[test]
fn a_removed_controller_is_not_served_even_before_a_poll() {
    let mut harness = Harness::new();
    let (mut owner_buffers, mut guest_buffers) = (Buffers::new(), Buffers::new());
    let mut owner_conn = owner_buffers.connection(1);
    let mut guest_conn = guest_buffers.connection(2);
    let (mut owner, mut guest) = owner_and_guest(&mut harness, &mut owner_conn, &mut guest_conn);
    let remove = remove_pairing(b"guest");
    harness.exchange(
        &mut owner_conn,
        &mut owner,
        &post("/pairings", "application/pairing+tlv8", &remove),
        Feed::Whole,
    );
    // The guest's next request arrives before its connection was polled.
    let wire = guest.wrap(&get("/nope"));
    harness.server.handle_input(
        &mut guest_conn,
        Instant::from_millis(0),
        &wire,
        &mut harness.rng,
    );
    let outcome = drain(
        &mut harness.server,
        &mut guest_conn,
        harness.now,
        &mut harness.rng,
        &mut harness.stored,
    );
    assert!(
        outcome.transmitted.is_empty(),
        "nothing is served to a removed controller"
    );
    assert!(outcome.closed);
}

#[test]
fn transient_sessions_serve_nothing_but_identify() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut controller = Controller::new("c", 5);
    let mut out = [0u8; 1024];
    let (mut client, len) = PairSetupClient::start(
        CODE.parse().unwrap(),
        crate::pairing::flags::TRANSIENT,
        &mut out,
    )
    .unwrap();
    let mut body = out[..len].to_vec();
    loop {
        let (replies, _) = harness.exchange(
            &mut conn,
            &mut controller,
            &post("/pair-setup", "application/pairing+tlv8", &body),
            Feed::Whole,
        );
        match client
            .handle_response(
                &replies[0].1,
                &controller.identity,
                &mut controller.rng,
                &mut out,
            )
            .unwrap()
        {
            SetupClientOutput::Send(len) => body = out[..len].to_vec(),
            SetupClientOutput::Transient(keys) => {
                controller.session = Some(Session::new(keys, Role::Controller));
                break;
            }
            SetupClientOutput::Paired(_) => panic!("transient setups store nothing"),
        }
    }
    assert!(conn.is_encrypted());
    assert_eq!(
        harness.server.poll_timeout(&conn),
        None,
        "no pair-verify deadline for a transient session"
    );
    for request in [get("/accessories"), list_pairings(), get("/nope")] {
        let (replies, _) = harness.exchange(&mut conn, &mut controller, &request, Feed::Whole);
        assert_eq!(replies, [(400, vec![])]);
    }
}

#[test]
fn undersized_buffers_are_refused_up_front() {
    let (mut input, mut scratch, mut output) = (
        vec![0u8; MIN_INPUT_LEN],
        vec![0u8; MIN_SCRATCH_LEN],
        vec![0u8; MIN_OUTPUT_LEN - 1],
    );
    let buffers = ConnectionBuffers {
        input: &mut input,
        scratch: &mut scratch,
        output: &mut output,
        subscriptions: &mut [],
    };
    let error = Connection::new(ConnectionId(1), buffers).unwrap_err();
    assert_eq!(
        error,
        BuffersTooSmall {
            buffer: "output",
            minimum: MIN_OUTPUT_LEN
        }
    );
}
