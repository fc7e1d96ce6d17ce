//! The core's controller connection against the core's server, in memory on a virtual
//! clock, with the bytes each way fed whole, byte by byte and split at random points.

use hap_core::catalog::service as s;
use hap_core::catalog::value::Scalar;
use hap_core::controller::{
    self, CharacteristicId, CloseReason, PairingExchange, PairingFailure, ReadOptions,
    ReportedValue, Request, Write,
};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::ids::IdMap;
use hap_core::database::OwnedValue;
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, ErrorCode, PairingError, PairingId};
use hap_core::server::{self, Config, OwnedBuffers, Server};
use hap_core::state::AccessoryState;
use hap_core::status::HapStatus;
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const CODE: &str = "518-08-582";

/// The `Host` header the controller sends.
const HOST: &str = "192.0.2.7:51826";

#[derive(Clone, Copy, Debug)]
enum Feed {
    Whole,
    ByteByByte,
    Random(u64),
}

const FEEDS: [Feed; 4] = [
    Feed::Whole,
    Feed::ByteByByte,
    Feed::Random(7),
    Feed::Random(1234),
];

/// What the controller reported, owned, so that runs can be compared.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Paired(AccessoryPairing),
    Verified,
    Failed(PairingExchange, PairingFailure),
    Response {
        request: Request,
        status: u16,
        body: Vec<u8>,
    },
    Changed(Vec<(u64, u64, String)>),
    Closed(CloseReason),
}

fn describe(value: Option<ReportedValue<'_>>) -> String {
    match value {
        None => "-".into(),
        Some(ReportedValue::Bool(b)) => b.to_string(),
        Some(ReportedValue::Integer(i)) => i.to_string(),
        Some(ReportedValue::Float(f)) => f.to_string(),
        Some(ReportedValue::Str(text)) => {
            let mut buf = [0u8; 256];
            text.decode_into(&mut buf).unwrap().to_string()
        }
        Some(ReportedValue::Null) => "null".into(),
        Some(other) => format!("{other:?}"),
    }
}

fn light() -> hap_core::database::Database<'static> {
    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "light",
        &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"),
    );
    builder.service(&s::LIGHTBULB).primary();
    builder.build().unwrap()
}

fn identity() -> ControllerIdentity {
    ControllerIdentity {
        id: PairingId::new(b"owner").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[1; 32]),
    }
}

/// A controller connection and a server connection joined in memory.
struct Pair<'a> {
    server: Server<'static>,
    accessory: server::Connection<'a>,
    controller: controller::Connection<'a>,
    now: Instant,
    server_rng: ChaCha20Rng,
    controller_rng: ChaCha20Rng,
    splitter: ChaCha20Rng,
    feed: Feed,
    to_accessory: Vec<u8>,
    to_controller: Vec<u8>,
    accessory_closed: bool,
}

impl Pair<'_> {
    fn piece(&mut self, available: usize) -> usize {
        match self.feed {
            Feed::Whole => available,
            Feed::ByteByByte => 1.min(available),
            Feed::Random(_) => 1 + (self.splitter.next_u32() as usize % 700).min(available - 1),
        }
    }

    /// Moves bytes both ways until neither side has anything more to say, and returns
    /// what the controller reported.
    fn run(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        for _ in 0..1_000_000 {
            let mut moved = false;
            while let Some(output) = self.controller.poll_output(&mut self.controller_rng) {
                moved = true;
                match output {
                    controller::Output::Transmit(bytes) => {
                        self.to_accessory.extend_from_slice(bytes)
                    }
                    controller::Output::Event(event) => seen.push(own(event)),
                    controller::Output::Close(reason) => seen.push(Seen::Closed(reason)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            while let Some(output) =
                self.server
                    .poll_output(&mut self.accessory, self.now, &mut self.server_rng)
            {
                moved = true;
                match output {
                    server::Output::Transmit(bytes) => self.to_controller.extend_from_slice(bytes),
                    server::Output::Persist => {
                        self.server.state_persisted(
                            &mut self.accessory,
                            self.now,
                            true,
                            &mut self.server_rng,
                        );
                    }
                    server::Output::Event(_) => {}
                    server::Output::Close => self.accessory_closed = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            while self.server.poll_event().is_some() {}
            while self.server.poll_wake().is_some() {
                moved = true;
            }
            if !self.to_accessory.is_empty() && !self.accessory_closed {
                let len = self.piece(self.to_accessory.len());
                let taken = self.server.handle_input(
                    &mut self.accessory,
                    self.now,
                    &self.to_accessory[..len],
                    &mut self.server_rng,
                );
                self.to_accessory.drain(..taken);
                moved |= taken > 0;
            }
            if !self.to_controller.is_empty() {
                let len = self.piece(self.to_controller.len());
                let taken = self
                    .controller
                    .handle_input(self.now, &self.to_controller[..len]);
                self.to_controller.drain(..taken);
                moved |= taken > 0;
            }
            if !moved {
                return seen;
            }
        }
        panic!("the two sides never settled");
    }
}

fn own(event: controller::Event<'_>) -> Seen {
    match event {
        controller::Event::Paired(pairing) => Seen::Paired(pairing),
        controller::Event::Verified => Seen::Verified,
        controller::Event::PairingFailed { exchange, failure } => Seen::Failed(exchange, failure),
        controller::Event::Response(response) => Seen::Response {
            request: response.request,
            status: response.status,
            body: response.body.to_vec(),
        },
        controller::Event::Changed(items) => Seen::Changed(
            items
                .map(|item| (item.aid, item.iid, describe(item.value)))
                .collect(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// Runs `scenario` with fresh buffers, a fresh server and the given feed.
fn with_pair<T>(feed: Feed, scenario: impl FnOnce(&mut Pair<'_>) -> T) -> T {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let state = AccessoryState::generate(&CODE.parse().unwrap(), &mut rng);
    let mut server = Server::new(state, light(), Config::default());
    let mut server_buffers = OwnedBuffers::for_database(server.config(), server.database());
    let mut controller_buffers = controller::OwnedBuffers::new(16 * 1024, 4096);
    let now = Instant::from_millis(0);
    let accessory = server
        .accept(ConnectionId(1), server_buffers.borrow(), now)
        .unwrap();
    let controller = controller::Connection::new(controller_buffers.borrow(), HOST).unwrap();
    let mut pair = Pair {
        server,
        accessory,
        controller,
        now,
        server_rng: rng,
        controller_rng: ChaCha20Rng::seed_from_u64(2),
        splitter: ChaCha20Rng::seed_from_u64(match feed {
            Feed::Random(seed) => seed,
            _ => 0,
        }),
        feed,
        to_accessory: Vec::new(),
        to_controller: Vec::new(),
        accessory_closed: false,
    };
    scenario(&mut pair)
}

fn response_body(seen: &[Seen], request: Request, status: u16) -> Vec<u8> {
    match seen {
        [Seen::Response {
            request: r,
            status: st,
            body,
        }] if *r == request && *st == status => body.clone(),
        other => panic!("expected one {request:?} answered {status}, got {other:?}"),
    }
}

/// The iid of the light's On (type 25) in an `/accessories` body, found by serde_json
/// and by the controller's own reader, which must agree on every characteristic.
fn on_iid(accessories: &[u8]) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(accessories).unwrap();
    let by_serde: Vec<(u64, u64, String)> = json["accessories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            let aid = a["aid"].as_u64().unwrap();
            a["services"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["characteristics"].as_array().unwrap().clone())
                .map(move |c| {
                    (
                        aid,
                        c["iid"].as_u64().unwrap(),
                        c["type"].as_str().unwrap().to_string(),
                    )
                })
        })
        .collect();
    let by_controller: Vec<(u64, u64, String)> = controller::Accessories::parse(accessories)
        .unwrap()
        .flat_map(|a| {
            let aid = a.aid;
            a.services.flat_map(move |s| {
                s.characteristics.map(move |c| {
                    let ty = c.characteristic_type.as_plain().unwrap().to_string();
                    (aid, c.iid, ty)
                })
            })
        })
        .collect();
    assert_eq!(by_controller, by_serde);
    let accessory = &json["accessories"][0];
    assert_eq!(accessory["aid"], 1);
    accessory["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|service| service["characteristics"].as_array().unwrap())
        .find(|c| c["type"] == "25")
        .and_then(|c| c["iid"].as_u64())
        .expect("an On characteristic")
}

/// Pair-setup, pair-verify, read the database, write, subscribe and hear an event.
fn full_session(feed: Feed) -> Vec<Seen> {
    with_pair(feed, |pair| {
        let mut transcript = Vec::new();
        let owner = identity();
        pair.controller
            .pair_setup(pair.now, CODE.parse().unwrap(), &owner)
            .unwrap();
        let seen = pair.run();
        let Some(Seen::Paired(accessory)) = seen.first().cloned() else {
            panic!("not paired: {seen:?}")
        };
        assert_eq!(seen.len(), 1);
        assert_eq!(
            accessory.public_key,
            pair.server.state().identity.public_key()
        );
        transcript.extend(seen);

        pair.controller
            .pair_verify(pair.now, &owner, &accessory, &mut pair.controller_rng)
            .unwrap();
        let seen = pair.run();
        assert_eq!(seen, [Seen::Verified]);
        assert!(pair.controller.is_verified());
        transcript.extend(seen);

        pair.controller.get_accessories(pair.now).unwrap();
        let seen = pair.run();
        let on = on_iid(&response_body(&seen, Request::Accessories, 200));
        transcript.extend(seen);
        let on = CharacteristicId { aid: 1, iid: on };

        pair.controller
            .put_characteristics(pair.now, &[Write::value(on, Scalar::Bool(true))])
            .unwrap();
        let seen = pair.run();
        response_body(&seen, Request::WriteCharacteristics, 204);
        transcript.extend(seen);

        pair.controller
            .get_characteristics(pair.now, &[on], ReadOptions::default())
            .unwrap();
        let seen = pair.run();
        let body = response_body(&seen, Request::ReadCharacteristics, 200);
        let items: Vec<_> = controller::Characteristics::parse(&body)
            .unwrap()
            .map(|item| (item.aid, item.iid, describe(item.value), item.status))
            .collect();
        assert_eq!(
            items,
            [(1, on.iid, "true".into(), Some(HapStatus::Success))]
        );
        transcript.extend(seen);

        // A read of a missing characteristic alongside: a 207 with statuses per item.
        let missing = CharacteristicId { aid: 1, iid: 999 };
        pair.controller
            .get_characteristics(pair.now, &[on, missing], ReadOptions::default())
            .unwrap();
        let seen = pair.run();
        let body = response_body(&seen, Request::ReadCharacteristics, 207);
        let statuses: Vec<_> = controller::Characteristics::parse(&body)
            .unwrap()
            .map(|item| (item.iid, item.status))
            .collect();
        assert_eq!(
            statuses,
            [
                (on.iid, Some(HapStatus::Success)),
                (999, Some(HapStatus::ResourceDoesNotExist))
            ]
        );
        transcript.extend(seen);

        pair.controller
            .put_characteristics(pair.now, &[Write::subscribe(on, true)])
            .unwrap();
        let seen = pair.run();
        response_body(&seen, Request::WriteCharacteristics, 204);
        transcript.extend(seen);

        // The application turns the light off: the subscribed controller hears it.
        assert!(pair
            .server
            .set_value(1, on.iid, OwnedValue::Bool(false))
            .unwrap());
        let seen = pair.run();
        assert_eq!(seen, [Seen::Changed(vec![(1, on.iid, "false".into())])]);
        transcript.extend(seen);

        pair.controller.list_pairings(pair.now).unwrap();
        let seen = pair.run();
        let body = response_body(&seen, Request::ListPairings, 200);
        let reply = controller::PairingsReply::parse(&body).unwrap();
        let listed: Vec<_> = reply
            .pairings()
            .map(|p| (p.id.to_vec(), p.public_key, p.admin))
            .collect();
        assert_eq!(listed, [(b"owner".to_vec(), owner.keys.public_key(), true)]);
        transcript.extend(seen);
        transcript
    })
}

#[test]
fn a_full_session_gives_the_same_results_however_the_bytes_are_split() {
    let whole = full_session(Feed::Whole);
    for feed in &FEEDS[1..] {
        assert_eq!(full_session(*feed), whole, "{feed:?}");
    }
}

#[test]
fn a_wrong_setup_code_is_reported_as_such() {
    for feed in FEEDS {
        with_pair(feed, |pair| {
            pair.controller
                .pair_setup(pair.now, "518-08-583".parse().unwrap(), &identity())
                .unwrap();
            let seen = pair.run();
            assert_eq!(
                seen,
                [Seen::Failed(
                    PairingExchange::Setup,
                    PairingFailure::Pairing(PairingError::Rejected(ErrorCode::Authentication))
                )],
                "{feed:?}"
            );
            assert!(pair.server.state().pairings.is_empty());
            // The connection stays usable: the right code pairs.
            pair.controller
                .pair_setup(pair.now, CODE.parse().unwrap(), &identity())
                .unwrap();
            let seen = pair.run();
            assert!(matches!(seen[..], [Seen::Paired(_)]), "{feed:?}: {seen:?}");
        });
    }
}

#[test]
fn an_unpaired_accessory_identifies_and_refuses_session_requests_before_verify() {
    with_pair(Feed::ByteByByte, |pair| {
        pair.controller.identify(pair.now).unwrap();
        let seen = pair.run();
        response_body(&seen, Request::Identify, 204);
        assert_eq!(
            pair.controller.get_accessories(pair.now),
            Err(controller::RequestError::NotVerified)
        );
    });
}

#[test]
fn pair_verify_with_an_unknown_accessory_key_fails() {
    with_pair(Feed::Random(3), |pair| {
        pair.controller
            .pair_setup(pair.now, CODE.parse().unwrap(), &identity())
            .unwrap();
        let Some(Seen::Paired(mut accessory)) = pair.run().pop() else {
            panic!("not paired")
        };
        accessory.public_key = Ed25519KeyPair::from_seed(&[9; 32]).public_key();
        pair.controller
            .pair_verify(pair.now, &identity(), &accessory, &mut pair.controller_rng)
            .unwrap();
        let seen = pair.run();
        assert_eq!(
            seen,
            [Seen::Failed(
                PairingExchange::Verify,
                PairingFailure::Pairing(PairingError::Authentication)
            )]
        );
        assert!(!pair.controller.is_verified());
    });
}

#[test]
fn a_silent_accessory_times_out() {
    with_pair(Feed::Whole, |pair| {
        pair.controller.identify(pair.now).unwrap();
        // Send the request, but never deliver it.
        let Some(controller::Output::Transmit(_)) =
            pair.controller.poll_output(&mut pair.controller_rng)
        else {
            panic!("nothing to send")
        };
        let deadline = pair.controller.poll_timeout().expect("a deadline");
        assert_eq!(deadline, Instant::from_millis(10_000));
        pair.controller.handle_timeout(Instant::from_millis(9_999));
        assert!(pair
            .controller
            .poll_output(&mut pair.controller_rng)
            .is_none());
        pair.controller.handle_timeout(deadline);
        assert!(matches!(
            pair.controller.poll_output(&mut pair.controller_rng),
            Some(controller::Output::Close(CloseReason::Timeout))
        ));
        assert_eq!(
            pair.controller.identify(pair.now),
            Err(controller::RequestError::Closed)
        );
    });
}

/// Pairs and verifies, and returns On's id.
fn verified(pair: &mut Pair<'_>) -> CharacteristicId {
    let owner = identity();
    pair.controller
        .pair_setup(pair.now, CODE.parse().unwrap(), &owner)
        .unwrap();
    let Some(Seen::Paired(accessory)) = pair.run().pop() else {
        panic!("not paired")
    };
    pair.controller
        .pair_verify(pair.now, &owner, &accessory, &mut pair.controller_rng)
        .unwrap();
    assert_eq!(pair.run(), [Seen::Verified]);
    pair.controller.get_accessories(pair.now).unwrap();
    let iid = on_iid(&response_body(&pair.run(), Request::Accessories, 200));
    CharacteristicId { aid: 1, iid }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for feed in FEEDS {
        with_pair(feed, |pair| {
            let on = verified(pair);
            let now = pair.now;
            pair.controller
                .get_characteristics(now, &[on], ReadOptions::default())
                .unwrap();
            pair.controller
                .put_characteristics(now, &[Write::value(on, Scalar::Bool(true))])
                .unwrap();
            pair.controller
                .get_characteristics(now, &[on], ReadOptions::default())
                .unwrap();
            assert_eq!(pair.controller.in_flight(), 3);
            let answers: Vec<_> = pair
                .run()
                .into_iter()
                .map(|seen| match seen {
                    Seen::Response {
                        request,
                        status,
                        body,
                    } => {
                        let values: Vec<_> = controller::Characteristics::parse(&body)
                            .unwrap()
                            .map(|item| describe(item.value))
                            .collect();
                        (request, status, values)
                    }
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                answers,
                [
                    (Request::ReadCharacteristics, 200, vec!["false".to_string()]),
                    (Request::WriteCharacteristics, 204, vec![]),
                    (Request::ReadCharacteristics, 200, vec!["true".to_string()]),
                ],
                "{feed:?}"
            );
        });
    }
}

#[test]
fn misuse_is_refused_with_a_typed_error() {
    use controller::RequestError;
    with_pair(Feed::Whole, |pair| {
        let now = pair.now;
        pair.controller
            .pair_setup(now, CODE.parse().unwrap(), &identity())
            .unwrap();
        assert_eq!(
            pair.controller.identify(now),
            Err(RequestError::Busy),
            "nothing else while pairing"
        );
        assert_eq!(
            pair.controller
                .pair_setup(now, CODE.parse().unwrap(), &identity()),
            Err(RequestError::Busy)
        );
        pair.run();
        for _ in 0..controller::MAX_IN_FLIGHT {
            pair.controller.identify(now).unwrap();
            // Drain, so that the output buffer has room.
            while pair
                .controller
                .poll_output(&mut pair.controller_rng)
                .is_some()
            {}
        }
        assert_eq!(
            pair.controller.identify(now),
            Err(RequestError::TooManyInFlight)
        );
    });
    with_pair(Feed::Whole, |pair| {
        let on = verified(pair);
        let accessory = AccessoryPairing {
            id: PairingId::new(b"x").unwrap(),
            public_key: [0; 32],
        };
        assert_eq!(
            pair.controller.pair_verify(
                pair.now,
                &identity(),
                &accessory,
                &mut pair.controller_rng
            ),
            Err(RequestError::AlreadyVerified)
        );
        // Requests queue in the output buffer until polled; then it is full.
        let (long, longer) = ("x".repeat(3000), "x".repeat(5000));
        let many = [Write::value(on, Scalar::Str(&long))];
        pair.controller
            .put_characteristics(pair.now, &many)
            .unwrap();
        assert_eq!(
            pair.controller.put_characteristics(pair.now, &many),
            Err(RequestError::OutputFull)
        );
        let too_big = [Write::value(on, Scalar::Str(&longer))];
        assert!(matches!(
            pair.controller.put_characteristics(pair.now, &too_big),
            Err(RequestError::Write(
                controller::WriteError::BufferTooSmall { .. }
            ))
        ));
    });
}

/// A controller with the smallest buffers, and nothing else.
fn lone_controller(run: impl FnOnce(&mut controller::Connection<'_>, &mut ChaCha20Rng)) {
    let mut buffers = controller::OwnedBuffers::new(0, 0);
    let mut connection = controller::Connection::new(buffers.borrow(), HOST).unwrap();
    run(&mut connection, &mut ChaCha20Rng::seed_from_u64(5));
}

fn close_reason(
    connection: &mut controller::Connection<'_>,
    rng: &mut ChaCha20Rng,
) -> Option<CloseReason> {
    while let Some(output) = connection.poll_output(rng) {
        if let controller::Output::Close(reason) = output {
            assert!(connection.poll_output(rng).is_none(), "nothing after Close");
            return Some(reason);
        }
    }
    None
}

#[test]
fn a_misbehaving_accessory_closes_the_connection() {
    let now = Instant::from_millis(0);
    // An answer to nothing.
    lone_controller(|connection, rng| {
        connection.handle_input(now, b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            close_reason(connection, rng),
            Some(CloseReason::Unsolicited)
        );
    });
    // Not HTTP.
    lone_controller(|connection, rng| {
        connection.identify(now).unwrap();
        connection.handle_input(now, b"SSH-2.0-OpenSSH\r\n\r\n");
        assert_eq!(
            close_reason(connection, rng),
            Some(CloseReason::Response(controller::ResponseError::Malformed))
        );
    });
    // A response larger than the input buffer.
    lone_controller(|connection, rng| {
        connection.identify(now).unwrap();
        let mut huge = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        huge.resize(100_000, b' ');
        let mut rest = &huge[..];
        let mut reason = None;
        while !rest.is_empty() && reason.is_none() {
            let taken = connection.handle_input(now, rest);
            rest = &rest[taken..];
            reason = close_reason(connection, rng);
        }
        assert_eq!(
            reason,
            Some(CloseReason::ResponseTooLarge {
                limit: controller::MIN_INPUT_LEN
            })
        );
    });
    // The accessory hangs up.
    lone_controller(|connection, rng| {
        connection.identify(now).unwrap();
        connection.connection_lost();
        assert_eq!(close_reason(connection, rng), Some(CloseReason::PeerClosed));
    });
}

#[test]
fn a_tampered_frame_closes_the_session() {
    with_pair(Feed::Whole, |pair| {
        let on = verified(pair);
        pair.controller
            .get_characteristics(pair.now, &[on], ReadOptions::default())
            .unwrap();
        let Some(controller::Output::Transmit(request)) =
            pair.controller.poll_output(&mut pair.controller_rng)
        else {
            panic!("no request")
        };
        let request = request.to_vec();
        let taken = pair.server.handle_input(
            &mut pair.accessory,
            pair.now,
            &request,
            &mut pair.server_rng,
        );
        assert_eq!(taken, request.len());
        let mut answer = Vec::new();
        while let Some(output) =
            pair.server
                .poll_output(&mut pair.accessory, pair.now, &mut pair.server_rng)
        {
            if let server::Output::Transmit(bytes) = output {
                answer.extend_from_slice(bytes);
            }
        }
        answer[5] ^= 1;
        pair.controller.handle_input(pair.now, &answer);
        assert_eq!(
            close_reason(&mut pair.controller, &mut pair.controller_rng),
            Some(CloseReason::Frame(hap_core::session::FrameError::BadTag))
        );
    });
}

#[test]
fn a_paired_accessory_refuses_identify_with_a_hap_status() {
    with_pair(Feed::Random(11), |pair| {
        pair.controller
            .pair_setup(pair.now, CODE.parse().unwrap(), &identity())
            .unwrap();
        assert!(matches!(pair.run()[..], [Seen::Paired(_)]));
        pair.controller.identify(pair.now).unwrap();
        let seen = pair.run();
        let body = response_body(&seen, Request::Identify, 400);
        let response = controller::Response {
            request: Request::Identify,
            status: 400,
            body: &body,
        };
        assert!(!response.is_success());
        assert_eq!(
            response.hap_status(),
            Ok(Some(HapStatus::InsufficientPrivileges))
        );
    });
}
