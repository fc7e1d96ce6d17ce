//! On a verified session, GET and PUT `/characteristics` and events allocate nothing,
//! nor do confirmed writes and reads on demand with their completions.
//!
//! This test needs no `alloc` feature: CI also runs it with `--no-default-features`. The
//! database is a `static` table with value slots on the stack, and the controllers are
//! entered in the pairing table directly, since pair-setup needs SRP and a heap.

mod counting;

use counting::allocations_during;
use hap_core::catalog::{characteristic as c, service as s};
use hap_core::controller::{request, response};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::database::{CharacteristicDef, Database, Entry, OwnedValue, ServiceDef, Slot};
use hap_core::http::Status;
use hap_core::pairing::verify::{PairVerifyClient, VerifyClientOutput};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, Pairing, PairingId};
use hap_core::server::{
    Config, Connection, ConnectionBuffers, Event, Output, Server, Subscription, Token,
    DEFAULT_INPUT_LEN, DEFAULT_OUTPUT_LEN, DEFAULT_SCRATCH_LEN, DEFAULT_SUBSCRIPTIONS,
};
use hap_core::session::{Role, Session};
use hap_core::setup::DeviceId;
use hap_core::state::{AccessoryState, SetupVerifier};
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

static LIGHT: [Entry<'static>; 16] = [
    Entry::Accessory(1),
    Entry::Service(ServiceDef::new(1, &s::ACCESSORY_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(2, &c::IDENTIFY)),
    Entry::Characteristic(CharacteristicDef::new(3, &c::MANUFACTURER)),
    Entry::Characteristic(CharacteristicDef::new(4, &c::MODEL)),
    Entry::Characteristic(CharacteristicDef::new(5, &c::NAME)),
    Entry::Characteristic(CharacteristicDef::new(6, &c::SERIAL_NUMBER)),
    Entry::Characteristic(CharacteristicDef::new(7, &c::FIRMWARE_REVISION)),
    Entry::Service(ServiceDef::new(8, &s::LIGHTBULB)),
    Entry::Characteristic(CharacteristicDef::new(9, &c::ON)),
    // The primary accessory's HAP Protocol Information, which iOS expects.
    Entry::Service(ServiceDef::new(10, &s::PROTOCOL_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(11, &c::VERSION)),
    // A switch whose writes the application confirms, and a sensor read on demand.
    Entry::Service(ServiceDef::new(12, &s::SWITCH)),
    Entry::Characteristic(CharacteristicDef::new(13, &c::ON).confirmed()),
    Entry::Service(ServiceDef::new(14, &s::TEMPERATURE_SENSOR)),
    Entry::Characteristic(CharacteristicDef::new(15, &c::CURRENT_TEMPERATURE).on_demand()),
];

/// One controller: its identity, and its session once verified.
struct Peer {
    identity: ControllerIdentity,
    session: Option<Session>,
}

/// What one exchange brought back.
#[derive(Default)]
struct Received {
    responses: usize,
    events: usize,
    app_events: usize,
    /// The token of the last operation the application was asked to complete.
    token: Option<Token>,
    plaintext_len: usize,
}

/// Feeds `request` from `peer` (sealed if verified) and drains the connection,
/// decrypting into `plain`. Uses no heap itself.
fn exchange(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    peer: &mut Peer,
    request: &[u8],
    rng: &mut ChaCha20Rng,
    plain: &mut [u8],
) -> Received {
    let now = Instant::from_millis(0);
    let mut wire = [0u8; 4096];
    let wire_len = match &mut peer.session {
        Some(session) => session.outbound.seal(request, &mut wire).unwrap().written,
        None => {
            wire[..request.len()].copy_from_slice(request);
            request.len()
        }
    };
    let taken = server.handle_input(conn, now, &wire[..wire_len], rng);
    assert_eq!(taken, wire_len);
    drain(server, conn, peer, rng, plain)
}

fn drain(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    peer: &mut Peer,
    rng: &mut ChaCha20Rng,
    plain: &mut [u8],
) -> Received {
    let now = Instant::from_millis(0);
    let mut received = Received::default();
    for _ in 0..100 {
        match server.poll_output(conn, now, rng) {
            Some(Output::Transmit(mut bytes)) => {
                let Some(session) = &mut peer.session else {
                    plain[received.plaintext_len..][..bytes.len()].copy_from_slice(bytes);
                    received.plaintext_len += bytes.len();
                    continue;
                };
                while !bytes.is_empty() {
                    let opened = session.inbound.open(bytes).unwrap();
                    if let Some(text) = opened.plaintext {
                        plain[received.plaintext_len..][..text.len()].copy_from_slice(text);
                        received.plaintext_len += text.len();
                    }
                    bytes = &bytes[opened.consumed..];
                }
            }
            Some(Output::Event(event)) => {
                received.app_events += 1;
                if let Event::WriteRequest { token, .. } | Event::Read { token, .. } = event {
                    received.token = Some(token);
                }
            }
            Some(other) => panic!("unexpected output {other:?}"),
            None => break,
        }
    }
    let text = &plain[..received.plaintext_len];
    received.responses = count(text, b"HTTP/1.1 ");
    received.events = count(text, b"EVENT/1.0 ");
    received
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// The body of the single response in `text`.
fn body(text: &mut [u8]) -> &[u8] {
    let Ok(Status::Complete(message)) = response::parse_message(text) else {
        panic!("not a whole response")
    };
    &text[message.body_start..message.body_end]
}

fn verify(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    peer: &mut Peer,
    accessory: &AccessoryPairing,
    rng: &mut ChaCha20Rng,
) {
    let mut out = [0u8; 1024];
    let (mut client, mut len) = PairVerifyClient::start(rng, &mut out).unwrap();
    let mut plain = [0u8; 4096];
    loop {
        let mut request = [0u8; 1200];
        let at = request::post_tlv(&mut request, "192.0.2.7:51826", "/pair-verify", &out[..len])
            .unwrap();
        let received = exchange(server, conn, peer, &request[..at], rng, &mut plain);
        let reply = body(&mut plain[..received.plaintext_len]);
        match client
            .handle_response(reply, &peer.identity, accessory, &mut out)
            .unwrap()
        {
            VerifyClientOutput::Send(next) => len = next,
            VerifyClientOutput::Verified(keys) => {
                peer.session = Some(Session::new(keys, Role::Controller));
                return;
            }
        }
    }
}

#[test]
fn reads_writes_and_events_allocate_nothing_on_a_verified_session() {
    let mut slots = [Slot::EMPTY; 10];
    let database = Database::new(&LIGHT[..], &mut slots[..]).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let accessory_keys = Ed25519KeyPair::from_seed(&[1; 32]);
    let setup = SetupVerifier {
        salt: [0; 16],
        verifier: [0; 384],
    };
    let mut state =
        AccessoryState::new(DeviceId([1, 2, 3, 4, 5, 6]), accessory_keys.clone(), setup);
    let mut peers = [7u8, 8].map(|seed| Peer {
        identity: ControllerIdentity {
            id: PairingId::new(&[b'c', seed]).unwrap(),
            keys: Ed25519KeyPair::from_seed(&[seed; 32]),
        },
        session: None,
    });
    for peer in &peers {
        state
            .pairings
            .insert(Pairing {
                id: peer.identity.id.clone(),
                public_key: peer.identity.keys.public_key(),
                admin: true,
            })
            .unwrap();
    }
    let accessory = AccessoryPairing {
        id: PairingId::new(&state.device_id.to_ascii()).unwrap(),
        public_key: accessory_keys.public_key(),
    };
    // No coalescing, so that every change is an event to count.
    let config = Config {
        event_window: core::time::Duration::ZERO,
        ..Config::default()
    };
    let mut server = Server::new(state, database, config);

    let (mut input_a, mut scratch_a, mut output_a) = ([0u8; 9216], [0u8; 2048], [0u8; 4096]);
    // B runs at the documented defaults (CONNECTION_MEMORY_AT_DEFAULTS in all).
    let (mut input_b, mut scratch_b, mut output_b) = (
        [0u8; DEFAULT_INPUT_LEN],
        [0u8; DEFAULT_SCRATCH_LEN],
        [0u8; DEFAULT_OUTPUT_LEN],
    );
    let mut subs_a = [Subscription::EMPTY; 4];
    let mut subs_b = [Subscription::EMPTY; DEFAULT_SUBSCRIPTIONS];
    let now = Instant::from_millis(0);
    let buffers = |input, scratch, output, subscriptions| ConnectionBuffers {
        input,
        scratch,
        output,
        subscriptions,
    };
    let mut conn_a = server
        .accept(
            ConnectionId(1),
            buffers(&mut input_a, &mut scratch_a, &mut output_a, &mut subs_a),
            now,
        )
        .unwrap();
    let mut conn_b = server
        .accept(
            ConnectionId(2),
            buffers(&mut input_b, &mut scratch_b, &mut output_b, &mut subs_b),
            now,
        )
        .unwrap();
    let [peer_a, peer_b] = &mut peers;
    verify(&mut server, &mut conn_a, peer_a, &accessory, &mut rng);
    verify(&mut server, &mut conn_b, peer_b, &accessory, &mut rng);

    let mut plain = [0u8; 8192];
    let subscribe = b"PUT /characteristics HTTP/1.1\r\nContent-Length: 49\r\n\r\n{\"characteristics\":[{\"aid\":1,\"iid\":9,\"ev\":true}]}";
    let received = exchange(
        &mut server,
        &mut conn_b,
        peer_b,
        subscribe,
        &mut rng,
        &mut plain,
    );
    assert_eq!(received.responses, 1);
    assert!(plain.starts_with(b"HTTP/1.1 204"));
    let subscribe = b"PUT /characteristics HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"characteristics\":[{\"aid\":1,\"iid\":13,\"ev\":true}]}";
    let received = exchange(
        &mut server,
        &mut conn_b,
        peer_b,
        subscribe,
        &mut rng,
        &mut plain,
    );
    assert_eq!(received.responses, 1);
    assert!(plain.starts_with(b"HTTP/1.1 204"));

    let read = b"GET /characteristics?id=1.9,1.5 HTTP/1.1\r\n\r\n";
    let write = b"PUT /characteristics HTTP/1.1\r\nContent-Length: 52\r\n\r\n{\"characteristics\":[{\"aid\":1,\"iid\":9,\"value\":true}]}";
    let mut totals = Received::default();
    let allocations = allocations_during(|| {
        for _ in 0..100 {
            // A reads and writes; B hears the write as an event.
            let got = exchange(&mut server, &mut conn_a, peer_a, read, &mut rng, &mut plain);
            totals.responses += got.responses;
            let got = exchange(
                &mut server,
                &mut conn_a,
                peer_a,
                write,
                &mut rng,
                &mut plain,
            );
            totals.responses += got.responses;
            totals.app_events += got.app_events;
            let got = drain(&mut server, &mut conn_b, peer_b, &mut rng, &mut plain);
            totals.events += got.events;
            // The application turns it off again; B hears that too.
            assert_eq!(server.set_value(1, 9, OwnedValue::Bool(false)), Ok(true));
            let got = drain(&mut server, &mut conn_b, peer_b, &mut rng, &mut plain);
            totals.events += got.events;
        }
    });
    assert_eq!(totals.responses, 200);
    assert_eq!(totals.app_events, 100, "one write event per PUT");
    assert_eq!(
        totals.events, 200,
        "B hears every change: A's and the application's"
    );
    assert_eq!(
        allocations, 0,
        "reads, writes and events must not touch the heap"
    );

    let confirmed = b"PUT /characteristics HTTP/1.1\r\nContent-Length: 53\r\n\r\n{\"characteristics\":[{\"aid\":1,\"iid\":13,\"value\":true}]}";
    let on_demand = b"GET /characteristics?id=1.15 HTTP/1.1\r\n\r\n";
    let mut totals = Received::default();
    let allocations = allocations_during(|| {
        for n in 0..100 {
            // A writes and the application confirms; B hears the change.
            let got = exchange(
                &mut server,
                &mut conn_a,
                peer_a,
                confirmed,
                &mut rng,
                &mut plain,
            );
            assert_eq!(got.responses, 0, "the write waits for the application");
            totals.app_events += got.app_events;
            server.complete_write(got.token.unwrap(), Ok(())).unwrap();
            while let Some(id) = server.poll_wake() {
                let (conn, peer) = if id == conn_a.id() {
                    (&mut conn_a, &mut *peer_a)
                } else {
                    (&mut conn_b, &mut *peer_b)
                };
                let got = drain(&mut server, conn, peer, &mut rng, &mut plain);
                totals.responses += got.responses;
                totals.events += got.events;
            }
            assert_eq!(server.set_value(1, 13, OwnedValue::Bool(false)), Ok(true));
            let got = drain(&mut server, &mut conn_b, peer_b, &mut rng, &mut plain);
            totals.events += got.events;

            // A reads on demand and the application answers.
            let got = exchange(
                &mut server,
                &mut conn_a,
                peer_a,
                on_demand,
                &mut rng,
                &mut plain,
            );
            assert_eq!(got.responses, 0, "the read waits for the application");
            totals.app_events += got.app_events;
            let value = OwnedValue::Float(f64::from(n % 50));
            server.complete_read(got.token.unwrap(), Ok(value)).unwrap();
            let got = drain(&mut server, &mut conn_a, peer_a, &mut rng, &mut plain);
            totals.responses += got.responses;
        }
    });
    assert_eq!(totals.responses, 200);
    assert_eq!(totals.app_events, 200, "one request per PUT and per GET");
    assert_eq!(
        totals.events, 200,
        "B hears the confirmed write and the reset"
    );
    assert_eq!(
        allocations, 0,
        "confirmed writes, reads on demand and their completions must not touch the heap"
    );
}

/// The mDNS responder probes, announces and answers a query on the stack alone.
#[test]
fn mdns_responder_answers_a_query_without_allocating() {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};
    use hap_core::catalog::Category;
    use hap_core::mdns::responder::{Destination, InterfaceId, MIN_TRANSMIT_BUFFER};
    use hap_core::mdns::wire::{rtype, Header, Name, Packet, Writer, CLASS_IN};
    use hap_core::mdns::{Advertisement, MdnsResponder};

    let advertisement = Advertisement {
        name: "Virtual Light",
        port: 51826,
        model: "VirtualLight",
        device_id: "12:34:56:78:9A:BC".parse().unwrap(),
        config_number: 1,
        category: Category::LIGHTBULB,
        paired: false,
        setup_id: None,
    };
    let iface = InterfaceId(1);
    let querier = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5353);
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let mut buf = [0u8; MIN_TRANSMIT_BUFFER];
    let mut query = [0u8; 64];
    let mut answered = 0;
    let allocations = allocations_during(|| {
        let mut responder = MdnsResponder::new("123456789ABC", &advertisement).unwrap();
        let addresses = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))];
        responder
            .set_interface(iface, &addresses, Instant::from_millis(0), &mut rng)
            .unwrap();
        let mut now = Instant::from_millis(0);
        while let Some(at) = responder.poll_timeout().filter(|at| at.as_millis() < 6_000) {
            now = now.max(at);
            responder.handle_timeout(now, &mut rng);
            while responder.poll_transmit(now, &mut buf).is_some() {}
        }
        let mut writer = Writer::new(&mut query, 0, Header::QUERY).unwrap();
        let service = Name::new("_hap._tcp.local").unwrap();
        writer
            .question(service, rtype::PTR, CLASS_IN, false)
            .unwrap();
        let len = writer.finish().len();
        let now = Instant::from_millis(10_000);
        responder
            .handle_datagram(now, iface, querier, &query[..len], &mut rng)
            .unwrap();
        let later = Instant::from_millis(10_200);
        responder.handle_timeout(later, &mut rng);
        while let Some(transmit) = responder.poll_transmit(later, &mut buf) {
            assert!(matches!(transmit.destination, Destination::Multicast(_)));
            let packet = Packet::parse(transmit.payload).unwrap();
            answered += packet.answers().filter(|r| r.rtype == rtype::PTR).count();
        }
    });
    assert_eq!(answered, 1);
    assert_eq!(allocations, 0, "the responder must not touch the heap");
}
