//! The accessory's costs, measured on `hap-core` alone: pair-setup's SRP, pair-verify,
//! frame sealing and opening next to raw ChaCha20-Poly1305, GET and PUT
//! `/characteristics` on a verified session (a PUT also to a confirmed characteristic,
//! completed by the application), `/accessories` for a 150-accessory bridge, and one
//! change fanned out to 16 subscribers.
//!
//! `cargo bench -p hap-core`. Only the accessory's side is timed: the controller's work
//! is done outside the measured sections (`iter_custom`).

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant as Clock};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hap_core::catalog::{characteristic as c, service as s};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::crypto::Key;
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::ids::IdMap;
use hap_core::database::{Database, OwnedValue};
use hap_core::pairing::setup::{
    PairSetup, PairSetupClient, SetupClientOutput, SetupOutput, MAX_SETUP_MESSAGE_LEN,
};
use hap_core::pairing::verify::{PairVerify, PairVerifyClient, VerifyClientOutput, VerifyOutput};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, Pairing, PairingId};
use hap_core::server::{Config, Connection, Event, Output, OwnedBuffers, Server};
use hap_core::session::{FrameDecryptor, FrameEncryptor, Role, Session};
use hap_core::setup::SetupCode;
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CODE: &str = "518-08-582";

fn controller(seed: u8) -> ControllerIdentity {
    ControllerIdentity {
        id: PairingId::new(format!("controller-{seed}").as_bytes()).unwrap(),
        keys: Ed25519KeyPair::from_seed(&[seed; 32]),
    }
}

fn accessory_state(rng: &mut ChaCha20Rng) -> AccessoryState {
    AccessoryState::generate(&CODE.parse::<SetupCode>().unwrap(), rng)
}

/// An accessory paired with controller 1 (admin), and what the controller keeps.
fn paired_state(rng: &mut ChaCha20Rng) -> (AccessoryState, AccessoryPairing) {
    let mut state = accessory_state(rng);
    let identity = controller(1);
    state
        .pairings
        .insert(Pairing {
            id: identity.id.clone(),
            public_key: identity.keys.public_key(),
            admin: true,
        })
        .unwrap();
    let accessory = AccessoryPairing {
        id: PairingId::new(&state.device_id.to_ascii()).unwrap(),
        public_key: state.identity.public_key(),
    };
    (state, accessory)
}

// ---------------------------------------------------------------------------------------
// Pairing.

fn pair_setup(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let state = accessory_state(&mut rng);
    let identity = controller(1);
    let now = Instant::from_millis(0);
    let conn = ConnectionId(1);
    let mut group = c.benchmark_group("pair-setup (accessory)");
    group.sample_size(30);
    // One accessory for all iterations, as in life: its first M1 builds the SRP tables
    // (during warm-up), later ones reuse them. Each M1 restarts the attempt.
    for (tables, name) in [(true, ""), (false, ", without tables")] {
        let mut setup = PairSetup::new(tables);
        let mut state = state.clone();
        group.bench_function(format!("M1 -> M2{name}"), |b| {
            let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
            let (_, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
            let m1 = out[..len].to_vec();
            let mut reply = [0u8; MAX_SETUP_MESSAGE_LEN];
            b.iter(|| {
                setup
                    .handle(now, conn, &m1, &mut state, &mut rng, &mut reply)
                    .unwrap()
            })
        });
        group.bench_function(format!("M3 -> M4{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
                    let mut reply = [0u8; MAX_SETUP_MESSAGE_LEN];
                    let (mut client, len) =
                        PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
                    let SetupOutput::Reply(m2) = setup
                        .handle(now, conn, &out[..len], &mut state, &mut rng, &mut reply)
                        .unwrap()
                    else {
                        panic!("M2")
                    };
                    let Ok(SetupClientOutput::Send(m3)) =
                        client.handle_response(&reply[..m2], &identity, &mut rng, &mut out)
                    else {
                        panic!("M3")
                    };
                    let started = Clock::now();
                    let m4 = setup
                        .handle(now, conn, &out[..m3], &mut state, &mut rng, &mut reply)
                        .unwrap();
                    total += started.elapsed();
                    assert!(matches!(m4, SetupOutput::Reply(_)));
                }
                total
            })
        });
    }
    group.finish();
}

fn pair_verify(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (state, accessory) = paired_state(&mut rng);
    let identity = controller(1);
    c.bench_function("pair-verify (accessory): M1 -> M2 and M3 -> M4", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut verify = PairVerify::new();
                let (mut out, mut reply) = ([0u8; 512], [0u8; 512]);
                let (mut client, len) = PairVerifyClient::start(&mut rng, &mut out).unwrap();
                let started = Clock::now();
                let VerifyOutput::Reply(m2) = verify
                    .handle(&out[..len], &state, &mut rng, &mut reply)
                    .unwrap()
                else {
                    panic!("M2")
                };
                total += started.elapsed();
                let Ok(VerifyClientOutput::Send(m3)) =
                    client.handle_response(&reply[..m2], &identity, &accessory, &mut out)
                else {
                    panic!("M3")
                };
                let started = Clock::now();
                let m4 = verify
                    .handle(&out[..m3], &state, &mut rng, &mut reply)
                    .unwrap();
                total += started.elapsed();
                assert!(matches!(m4, VerifyOutput::Verified { .. }));
            }
            total
        })
    });
}

// ---------------------------------------------------------------------------------------
// Frames.

fn frames(c: &mut Criterion) {
    const LEN: usize = 64 * 1024;
    let plaintext = vec![0x5a_u8; LEN];
    let key = [7u8; 32];
    let mut group = c.benchmark_group("frames, 64 KiB in 1024-byte frames");
    group.throughput(Throughput::Bytes(LEN as u64));
    let mut sealed = vec![0u8; FrameEncryptor::sealed_len(LEN) + 64 * 18];
    group.bench_function("raw ChaCha20-Poly1305", |b| {
        let cipher = ChaCha20Poly1305::new(&key.into());
        let mut buffer = plaintext.clone();
        let mut counter = 0u64;
        b.iter(|| {
            for chunk in buffer.chunks_mut(1024) {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_le_bytes());
                counter += 1;
                let aad = (chunk.len() as u16).to_le_bytes();
                let tag = cipher
                    .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, chunk)
                    .unwrap();
                std::hint::black_box(tag);
            }
        })
    });
    group.bench_function("seal", |b| {
        let mut encryptor = FrameEncryptor::new(Key::from_bytes(key));
        b.iter(|| {
            let done = encryptor.seal(&plaintext, &mut sealed).unwrap();
            assert_eq!(done.consumed, LEN);
        })
    });
    group.bench_function("open", |b| {
        b.iter_batched_ref(
            || {
                let mut wire = vec![0u8; sealed.len()];
                let written = FrameEncryptor::new(Key::from_bytes(key))
                    .seal(&plaintext, &mut wire)
                    .unwrap()
                    .written;
                wire.truncate(written);
                (FrameDecryptor::new(Key::from_bytes(key)), wire)
            },
            |(decryptor, wire)| {
                let mut rest = &wire[..];
                while !rest.is_empty() {
                    let opened = decryptor.open(rest).unwrap();
                    std::hint::black_box(opened.plaintext);
                    rest = &rest[opened.consumed..];
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// The server on verified sessions.

/// One connection's buffers, at the adapters' sizes.
fn adapter_buffers() -> OwnedBuffers {
    OwnedBuffers::new(9216, 2048, 4096, 32)
}

/// A server for `database`, paired with controller 1, with no event coalescing (so that
/// every change is an event to measure).
fn server(database: Database<'static>) -> (Server<'static>, AccessoryPairing) {
    let (state, accessory) = paired_state(&mut ChaCha20Rng::seed_from_u64(3));
    let config = Config {
        event_window: Duration::ZERO,
        ..Config::default()
    };
    (Server::new(state, database, config), accessory)
}

/// A controller's end of a verified connection.
struct Peer {
    session: Session,
    wire: Vec<u8>,
    plaintext: Vec<u8>,
}

impl Peer {
    /// `request` sealed, ready to feed.
    fn seal(&mut self, request: &[u8]) -> Vec<u8> {
        let mut wire = vec![0u8; FrameEncryptor::sealed_len(request.len())];
        let sealed = self.session.outbound.seal(request, &mut wire).unwrap();
        wire.truncate(sealed.written);
        wire
    }

    /// Opens what the accessory sent, returning the plaintext.
    fn open(&mut self) -> &[u8] {
        self.plaintext.clear();
        let mut rest = &self.wire[..];
        while !rest.is_empty() {
            let opened = self.session.inbound.open(rest).unwrap();
            self.plaintext
                .extend_from_slice(opened.plaintext.unwrap_or_default());
            rest = &rest[opened.consumed..];
        }
        self.wire.clear();
        &self.plaintext
    }
}

/// Feeds `bytes` and collects everything sent into `wire`.
fn exchange(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    bytes: &[u8],
    wire: &mut Vec<u8>,
    rng: &mut ChaCha20Rng,
) {
    let now = Instant::from_millis(0);
    let mut rest = bytes;
    loop {
        let taken = server.handle_input(conn, now, rest, rng);
        rest = &rest[taken..];
        while let Some(output) = server.poll_output(conn, now, rng) {
            match output {
                Output::Transmit(bytes) => wire.extend_from_slice(bytes),
                Output::Event(_) => {}
                other => panic!("{other:?}"),
            }
        }
        if rest.is_empty() {
            return;
        }
    }
}

/// Pair-verifies `conn` as controller 1.
fn verify(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    accessory: &AccessoryPairing,
    rng: &mut ChaCha20Rng,
) -> Peer {
    let identity = controller(1);
    let mut out = [0u8; 512];
    let (mut client, mut len) = PairVerifyClient::start(rng, &mut out).unwrap();
    loop {
        let mut request =
            format!("POST /pair-verify HTTP/1.1\r\nContent-Length: {len}\r\n\r\n").into_bytes();
        request.extend_from_slice(&out[..len]);
        let mut wire = Vec::new();
        exchange(server, conn, &request, &mut wire, rng);
        let body = &wire[wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
        match client
            .handle_response(body, &identity, accessory, &mut out)
            .unwrap()
        {
            VerifyClientOutput::Send(next) => len = next,
            VerifyClientOutput::Verified(keys) => {
                return Peer {
                    session: Session::new(keys, Role::Controller),
                    wire: Vec::new(),
                    plaintext: Vec::new(),
                }
            }
        }
    }
}

/// The virtual light: (database, aid, On's iid, Brightness's iid). With `confirmed`,
/// writes to Brightness wait for the application.
fn light(confirmed: bool) -> (Database<'static>, u64, u64, u64) {
    let mut ids = IdMap::default();
    let mut builder = DatabaseBuilder::new(&mut ids);
    let aid = builder.accessory(
        "light",
        &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"),
    );
    let service = builder
        .service(&s::LIGHTBULB)
        .primary()
        .characteristic(&c::BRIGHTNESS)
        .configure(
            &c::BRIGHTNESS,
            |d| if confirmed { d.confirmed() } else { d },
        );
    let (on, brightness) = (
        service.iid_of(&c::ON).unwrap(),
        service.iid_of(&c::BRIGHTNESS).unwrap(),
    );
    drop(service);
    (builder.build().unwrap(), aid, on, brightness)
}

/// Times the accessory's side of `request`, answered on a verified session.
fn time_request(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    peer: &mut Peer,
    request: &[u8],
    iters: u64,
    rng: &mut ChaCha20Rng,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let sealed = peer.seal(request);
        let started = Clock::now();
        exchange(server, conn, &sealed, &mut peer.wire, rng);
        total += started.elapsed();
        assert!(peer.open().starts_with(b"HTTP/1.1 20"));
    }
    total
}

fn characteristics(c: &mut Criterion) {
    let (database, aid, on, brightness) = light(false);
    let (mut server, accessory) = server(database);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut buffers = adapter_buffers();
    let mut conn = server
        .accept(ConnectionId(1), buffers.borrow(), Instant::from_millis(0))
        .unwrap();
    let mut peer = verify(&mut server, &mut conn, &accessory, &mut rng);
    let read = format!("GET /characteristics?id={aid}.{on},{aid}.{brightness} HTTP/1.1\r\n\r\n");
    let body = format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{brightness},"value":50}}]}}"#);
    let write = format!(
        "PUT /characteristics HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut group = c.benchmark_group("/characteristics on a verified session (accessory)");
    group.bench_function("GET two values", |b| {
        b.iter_custom(|iters| {
            time_request(
                &mut server,
                &mut conn,
                &mut peer,
                read.as_bytes(),
                iters,
                &mut rng,
            )
        })
    });
    group.bench_function("PUT one value", |b| {
        b.iter_custom(|iters| {
            time_request(
                &mut server,
                &mut conn,
                &mut peer,
                write.as_bytes(),
                iters,
                &mut rng,
            )
        })
    });
    // The same PUT to a confirmed characteristic: the write reaches the application as
    // a WriteRequest, which completes it at once, and only then is it stored and answered.
    let (database, same_aid, _, same_brightness) = light(true);
    assert_eq!(
        (same_aid, same_brightness),
        (aid, brightness),
        "`write` addresses it"
    );
    let (mut confirming, accessory) = self::server(database);
    let mut confirming_buffers = adapter_buffers();
    let mut confirming_conn = confirming
        .accept(
            ConnectionId(1),
            confirming_buffers.borrow(),
            Instant::from_millis(0),
        )
        .unwrap();
    let mut confirming_peer = verify(&mut confirming, &mut confirming_conn, &accessory, &mut rng);
    group.bench_function("PUT one value, confirmed and completed", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sealed = confirming_peer.seal(write.as_bytes());
                let started = Clock::now();
                confirmed_write(
                    &mut confirming,
                    &mut confirming_conn,
                    &sealed,
                    &mut confirming_peer.wire,
                    &mut rng,
                );
                total += started.elapsed();
                assert!(confirming_peer.open().starts_with(b"HTTP/1.1 204"));
            }
            total
        })
    });
    group.finish();
}

/// Feeds a PUT of confirmed characteristics, completes its write request with success as
/// the application would, and collects the answer into `wire`.
fn confirmed_write(
    server: &mut Server<'_>,
    conn: &mut Connection<'_>,
    bytes: &[u8],
    wire: &mut Vec<u8>,
    rng: &mut ChaCha20Rng,
) {
    let now = Instant::from_millis(0);
    assert_eq!(server.handle_input(conn, now, bytes, rng), bytes.len());
    let mut token = None;
    while let Some(output) = server.poll_output(conn, now, rng) {
        match output {
            Output::Event(Event::WriteRequest { token: t, .. }) => token = Some(t),
            other => panic!("{other:?}"),
        }
    }
    server.complete_write(token.unwrap(), Ok(())).unwrap();
    while let Some(id) = server.poll_wake() {
        assert_eq!(id, conn.id());
    }
    while let Some(output) = server.poll_output(conn, now, rng) {
        match output {
            Output::Transmit(bytes) => wire.extend_from_slice(bytes),
            other => panic!("{other:?}"),
        }
    }
}

fn accessories_of_a_bridge(c: &mut Criterion) {
    let mut ids = IdMap::default();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "bridge",
        &AccessoryInfo::new("Bridge", "Acme", "B1", "1", "1.0"),
    );
    builder
        .service(&s::PROTOCOL_INFORMATION)
        .characteristic(&c::VERSION);
    for light in 1..150 {
        let name = format!("Light {light}");
        builder.accessory(
            &name,
            &AccessoryInfo::new(&name, "Acme", "L1", &format!("{light}"), "1.0"),
        );
        builder
            .service(&s::LIGHTBULB)
            .primary()
            .characteristic(&c::BRIGHTNESS);
    }
    let (mut server, accessory) = server(builder.build().unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut buffers = adapter_buffers();
    let mut conn = server
        .accept(ConnectionId(1), buffers.borrow(), Instant::from_millis(0))
        .unwrap();
    let mut peer = verify(&mut server, &mut conn, &accessory, &mut rng);
    let request = b"GET /accessories HTTP/1.1\r\n\r\n";
    c.bench_function("/accessories of a 150-accessory bridge (accessory)", |b| {
        b.iter_custom(|iters| {
            let total = time_request(&mut server, &mut conn, &mut peer, request, iters, &mut rng);
            let length = peer.plaintext.len();
            assert!(length > 100_000, "a whole bridge: {length} bytes");
            total
        })
    });
}

fn event_fan_out(c: &mut Criterion) {
    const SUBSCRIBERS: usize = 16;
    let (database, aid, on, _) = light(false);
    let (mut server, accessory) = server(database);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut buffers: Vec<OwnedBuffers> = (0..SUBSCRIBERS).map(|_| adapter_buffers()).collect();
    let mut connections: Vec<Connection<'_>> = buffers
        .iter_mut()
        .enumerate()
        .map(|(n, b)| {
            server
                .accept(ConnectionId(n as u32), b.borrow(), Instant::from_millis(0))
                .unwrap()
        })
        .collect();
    let body = format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{on},"ev":true}}]}}"#);
    let subscribe = format!(
        "PUT /characteristics HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut peers: Vec<Peer> = connections
        .iter_mut()
        .map(|conn| {
            let mut peer = verify(&mut server, conn, &accessory, &mut rng);
            let sealed = peer.seal(subscribe.as_bytes());
            exchange(&mut server, conn, &sealed, &mut peer.wire, &mut rng);
            assert!(
                peer.open().starts_with(b"HTTP/1.1 204"),
                "{}",
                String::from_utf8_lossy(&peer.plaintext)
            );
            peer
        })
        .collect();
    let mut value = false;
    c.bench_function("a change fanned out to 16 subscribers (accessory)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                value = !value;
                let started = Clock::now();
                server.set_value(aid, on, OwnedValue::Bool(value)).unwrap();
                for (conn, peer) in connections.iter_mut().zip(&mut peers) {
                    exchange(&mut server, conn, &[], &mut peer.wire, &mut rng);
                }
                total += started.elapsed();
                for peer in &mut peers {
                    assert!(peer.open().starts_with(b"EVENT/1.0 200"));
                }
            }
            total
        })
    });
}

criterion_group!(pairing, pair_setup, pair_verify);
criterion_group!(session, frames);
criterion_group!(
    serving,
    characteristics,
    accessories_of_a_bridge,
    event_fan_out
);
criterion_main!(pairing, session, serving);
