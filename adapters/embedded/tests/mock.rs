//! The accessory on an in-memory stack, in one thread with a virtual clock: sockets that
//! take one byte at a time and hand over a few, peers that leave, a failing listener,
//! buffers that are too small, and the deadline `poll` returns.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use common::{value_of, Message, Peer, Transport, LIGHT, LIGHT_SLOTS};
use embedded_nal::{nb, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack};
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::config::ConfigNumber;
use hap_core::database::{CharacteristicDef, Database, Entry, OwnedValue, ServiceDef, Slot};
use hap_core::mdns::{Advertisement, Responder};
use hap_core::server::{CompleteError, Config, Event, HapStatus, Server, MIN_OUTPUT_LEN};
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_embedded::{Accessory, Error, ServiceInfo, SlotBuffers, SlotStorage};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

#[derive(Debug, PartialEq)]
struct MockError;

impl TcpError for MockError {
    fn kind(&self) -> TcpErrorKind {
        TcpErrorKind::Other
    }
}

#[derive(Debug)]
enum MockSocket {
    Unbound,
    Listener,
    Conn(usize),
}

/// One connection: bytes each way and who has closed it.
#[derive(Default)]
struct Pipe {
    to_accessory: VecDeque<u8>,
    from_accessory: VecDeque<u8>,
    closed_by_accessory: bool,
    closed_by_peer: bool,
}

/// An in-memory stack whose sockets take at most `send_limit` bytes per send, refuse
/// every other send, and give at most `receive_limit` bytes per receive.
#[derive(Default)]
struct Net {
    pipes: Vec<Pipe>,
    backlog: VecDeque<usize>,
    send_limit: usize,
    receive_limit: usize,
    sends: usize,
    fail_accept: bool,
}

impl Net {
    fn new(send_limit: usize, receive_limit: usize) -> Self {
        Self {
            send_limit,
            receive_limit,
            ..Self::default()
        }
    }

    fn connect(&mut self) -> usize {
        self.pipes.push(Pipe::default());
        let id = self.pipes.len() - 1;
        self.backlog.push_back(id);
        id
    }
}

impl TcpClientStack for Net {
    type TcpSocket = MockSocket;
    type Error = MockError;

    fn socket(&mut self) -> Result<MockSocket, MockError> {
        Ok(MockSocket::Unbound)
    }

    fn connect(&mut self, _: &mut MockSocket, _: SocketAddr) -> nb::Result<(), MockError> {
        Err(nb::Error::Other(MockError))
    }

    fn send(&mut self, socket: &mut MockSocket, buffer: &[u8]) -> nb::Result<usize, MockError> {
        let MockSocket::Conn(id) = socket else {
            return Err(nb::Error::Other(MockError));
        };
        let pipe = &mut self.pipes[*id];
        if pipe.closed_by_peer {
            return Err(nb::Error::Other(MockError));
        }
        self.sends += 1;
        if self.sends % 2 == 0 {
            return Err(nb::Error::WouldBlock);
        }
        let n = buffer.len().min(self.send_limit);
        pipe.from_accessory.extend(&buffer[..n]);
        Ok(n)
    }

    fn receive(
        &mut self,
        socket: &mut MockSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, MockError> {
        let MockSocket::Conn(id) = socket else {
            return Err(nb::Error::Other(MockError));
        };
        let pipe = &mut self.pipes[*id];
        if pipe.to_accessory.is_empty() {
            return if pipe.closed_by_peer {
                Ok(0)
            } else {
                Err(nb::Error::WouldBlock)
            };
        }
        let n = buffer
            .len()
            .min(self.receive_limit)
            .min(pipe.to_accessory.len());
        for (slot, byte) in buffer.iter_mut().zip(pipe.to_accessory.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn close(&mut self, socket: MockSocket) -> Result<(), MockError> {
        if let MockSocket::Conn(id) = socket {
            self.pipes[id].closed_by_accessory = true;
        }
        Ok(())
    }
}

impl TcpFullStack for Net {
    fn bind(&mut self, socket: &mut MockSocket, _: u16) -> Result<(), MockError> {
        *socket = MockSocket::Listener;
        Ok(())
    }

    fn listen(&mut self, _: &mut MockSocket) -> Result<(), MockError> {
        Ok(())
    }

    fn accept(
        &mut self,
        socket: &mut MockSocket,
    ) -> nb::Result<(MockSocket, SocketAddr), MockError> {
        if !matches!(socket, MockSocket::Listener) {
            return Err(nb::Error::Other(MockError));
        }
        if std::mem::take(&mut self.fail_accept) {
            return Err(nb::Error::Other(MockError));
        }
        let id = self.backlog.pop_front().ok_or(nb::Error::WouldBlock)?;
        Ok((MockSocket::Conn(id), "127.0.0.1:1".parse().unwrap()))
    }
}

type Storage = SlotStorage<4096, 1024, 2560, 4>;

/// An accessory, its network, a virtual clock and what the application saw.
struct World<'d, 'b, const N: usize> {
    net: Net,
    accessory: Accessory<'d, 'b, Net, N>,
    now: Instant,
    rng: ChaCha20Rng,
    stored: Vec<bool>,
    events: Vec<Event>,
    /// What the last poll returned.
    next: Option<Instant>,
}

impl<const N: usize> World<'_, '_, N> {
    /// Polls once, `step` after the last poll.
    fn poll(&mut self, step: Duration) {
        self.now = self.now + step;
        let stored = &mut self.stored;
        let mut persist = |state: &AccessoryState| {
            stored.push(state.is_paired());
            true
        };
        let events = &mut self.events;
        self.next = self
            .accessory
            .poll(&mut self.net, self.now, &mut self.rng, &mut persist, |e| {
                events.push(e)
            })
            .unwrap();
    }
}

/// A controller on one pipe of the world.
struct Client<'w, 'd, 'b, const N: usize> {
    world: &'w mut World<'d, 'b, N>,
    pipe: usize,
    peer: Peer,
}

impl<const N: usize> Transport for Client<'_, '_, '_, N> {
    fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    fn request(&mut self, request: &[u8]) -> Message {
        let wire = self.peer.wire(request);
        self.world.net.pipes[self.pipe].to_accessory.extend(wire);
        for _ in 0..10_000 {
            if let Some(message) = self.peer.message() {
                if !message.is_event() {
                    return message;
                }
            }
            self.world.poll(Duration::from_millis(1));
            let bytes: Vec<u8> = self.world.net.pipes[self.pipe]
                .from_accessory
                .drain(..)
                .collect();
            self.peer.take(&bytes);
        }
        panic!("no response within 10 000 polls");
    }
}

fn server<'d>(values: &'d mut [Slot], config: Config) -> Server<'d> {
    let database = Database::new(&LIGHT[..], values).unwrap();
    Server::new(common::state(1), database, config)
}

fn world<'d, 'b, const N: usize>(
    values: &'d mut [Slot],
    storage: &'b mut [Storage; N],
    net: Net,
    config: Config,
) -> World<'d, 'b, N> {
    let mut net = net;
    let accessory = Accessory::new(
        &mut net,
        51826,
        server(values, config),
        storage.each_mut().map(SlotStorage::buffers),
    )
    .unwrap();
    World {
        net,
        accessory,
        now: Instant::from_millis(1_000),
        rng: ChaCha20Rng::seed_from_u64(9),
        stored: Vec::new(),
        events: Vec::new(),
        next: None,
    }
}

#[test]
fn trickling_sockets_lose_no_bytes() {
    // One byte per send (every other send refused), three per receive.
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 1] = [Storage::new()];
    let mut world = world(&mut values, &mut storage, Net::new(1, 3), Config::default());
    let pipe = world.net.connect();
    let mut client = Client {
        world: &mut world,
        pipe,
        peer: Peer::new(1),
    };
    common::verify(&mut client);
    let accessories = client.request(&common::get("/accessories"));
    assert_eq!(accessories.status(), 200);
    assert!(accessories.text().contains("\"iid\":9"));
    let written = client.request(&common::put(
        r#"{"characteristics":[{"aid":1,"iid":9,"value":true}]}"#,
    ));
    assert_eq!(written.status(), 204, "{written:?}");
    let read = client.request(&common::get("/characteristics?id=1.9"));
    assert_eq!(value_of(&read.text()), "true");
    assert!(world.events.iter().any(|e| matches!(
        e,
        Event::Write {
            value: OwnedValue::Bool(true),
            ..
        }
    )));
    assert!(
        world.net.sends > 1000,
        "sends were short: {}",
        world.net.sends
    );
}

/// No idle timer runs: a connection is closed for being idle only when a newcomer needs
/// its slot and it has been idle for `idle_eviction` (HomeKitADK,
/// `HAPIPAccessoryServer.c`).
#[test]
fn a_full_accessory_evicts_the_connection_idle_longest_and_only_then() {
    let idle_eviction = Duration::from_secs(60);
    let config = Config {
        idle_eviction,
        ..Config::default()
    };
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 2] = [Storage::new(), Storage::new()];
    let mut world = world(&mut values, &mut storage, Net::new(4096, 4096), config);
    world.poll(Duration::ZERO);
    let verified = world.net.connect();
    let mut client = Client {
        world: &mut world,
        pipe: verified,
        peer: Peer::new(1),
    };
    common::verify(&mut client);
    let silent = world.net.connect();
    world.poll(Duration::from_millis(10));
    assert_eq!(world.accessory.server().connection_count(), 2);
    assert_eq!(world.next, None, "no timer for idle connections");

    // A day later, with both slots taken and both idle: the unverified one goes.
    world.poll(Duration::from_secs(24 * 3600));
    assert!(
        !world.net.pipes[silent].closed_by_accessory,
        "nothing needed its slot"
    );
    let newcomer = world.net.connect();
    world.poll(Duration::from_millis(1));
    assert!(world.net.pipes[silent].closed_by_accessory, "evicted");
    assert!(!world.net.pipes[newcomer].closed_by_accessory, "accepted");
    assert!(!world.net.pipes[verified].closed_by_accessory);
    assert_eq!(world.accessory.server().connection_count(), 2);

    // Another at once: the newcomer has not been idle 60 s, but the verified one has.
    let last = world.net.connect();
    world.poll(Duration::from_millis(1));
    assert!(
        world.net.pipes[verified].closed_by_accessory,
        "idle longest"
    );
    assert!(!world.net.pipes[newcomer].closed_by_accessory);
    assert!(!world.net.pipes[last].closed_by_accessory);

    // And one more: nobody has been idle long enough, so it is refused.
    let refused = world.net.connect();
    world.poll(idle_eviction - Duration::from_secs(1));
    assert!(world.net.pipes[refused].closed_by_accessory);
    assert!(!world.net.pipes[newcomer].closed_by_accessory);
    assert!(!world.net.pipes[last].closed_by_accessory);
    assert_eq!(world.accessory.server().connection_count(), 2);
}

#[test]
fn peers_that_leave_free_their_slot_and_extra_ones_are_refused() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 1] = [Storage::new()];
    let mut world = world(
        &mut values,
        &mut storage,
        Net::new(4096, 4096),
        Config::default(),
    );
    let first = world.net.connect();
    let second = world.net.connect();
    world.poll(Duration::from_millis(1));
    assert_eq!(world.accessory.server().connection_count(), 1);
    assert!(!world.net.pipes[first].closed_by_accessory);
    assert!(
        world.net.pipes[second].closed_by_accessory,
        "no slot for it"
    );

    // Half a request, then the peer leaves: the slot is freed and serves the next one.
    world.net.pipes[first]
        .to_accessory
        .extend(b"GET /accessories HT");
    world.poll(Duration::from_millis(1));
    world.net.pipes[first].closed_by_peer = true;
    world.poll(Duration::from_millis(1));
    assert!(world.net.pipes[first].closed_by_accessory);
    assert_eq!(world.accessory.server().connection_count(), 0);

    let third = world.net.connect();
    let mut client = Client {
        world: &mut world,
        pipe: third,
        peer: Peer::new(1),
    };
    common::verify(&mut client);
    let read = client.request(&common::get("/characteristics?id=1.9"));
    assert_eq!(read.status(), 200);
}

#[test]
fn listener_errors_are_reported_after_serving_the_connections() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 1] = [Storage::new()];
    let mut world = world(
        &mut values,
        &mut storage,
        Net::new(4096, 4096),
        Config::default(),
    );
    let pipe = world.net.connect();
    world.poll(Duration::from_millis(1));
    world.net.pipes[pipe]
        .to_accessory
        .extend(common::get("/accessories"));
    world.net.fail_accept = true;
    let result = world.accessory.poll(
        &mut world.net,
        world.now,
        &mut world.rng,
        &mut |_: &AccessoryState| true,
        |_| {},
    );
    assert_eq!(result, Err(Error::Stack(MockError)));
    let answer = String::from_utf8_lossy(world.net.pipes[pipe].from_accessory.make_contiguous())
        .into_owned();
    assert!(answer.starts_with("HTTP/1.1 470"), "{answer}");
    // The next poll works again.
    world.poll(Duration::from_millis(1));
}

#[test]
fn buffers_below_their_minimum_are_refused() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut good = Storage::new();
    let mut bad = Storage::new();
    let mut short_pending = [0u8; MIN_OUTPUT_LEN];
    let bad_buffers = {
        let SlotBuffers {
            input,
            scratch,
            output,
            subscriptions,
            receive,
            ..
        } = bad.buffers();
        SlotBuffers {
            input,
            scratch,
            output,
            subscriptions,
            receive,
            // Shorter than `output`, which is 2560 bytes.
            pending: &mut short_pending,
        }
    };
    let mut net = Net::new(1, 1);
    let result = Accessory::new(
        &mut net,
        51826,
        server(&mut values, Config::default()),
        [good.buffers(), bad_buffers],
    );
    match result {
        Err(Error::Buffers { slot, too_small }) => {
            assert_eq!(slot, 1);
            assert_eq!(too_small.buffer, "pending");
            assert_eq!(too_small.minimum, 2560);
        }
        other => panic!("expected a buffer error, got {other:?}"),
    }
}

/// Records the `c#` of every announcement.
#[derive(Default)]
struct ConfigRecorder(Vec<u16>);

impl Responder for ConfigRecorder {
    type Error = core::convert::Infallible;

    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), Self::Error> {
        self.0.push(advertisement.config_number);
        Ok(())
    }

    fn goodbye(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// [`LIGHT`] with a Brightness too: another shape.
static DIMMABLE_LIGHT: [Entry<'static>; 13] = [
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
    Entry::Characteristic(CharacteristicDef::new(12, &c::BRIGHTNESS)),
    Entry::Service(ServiceDef::new(10, &s::PROTOCOL_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(11, &c::VERSION)),
];

/// Starts an accessory on `table` with the configuration number `stored`, polls once,
/// and returns the number it computed and the `c#` values it announced.
fn start_with_config(
    table: &'static [Entry<'static>],
    stored: ConfigNumber,
) -> (ConfigNumber, Vec<u16>) {
    let mut values = vec![Slot::EMPTY; table.len() - 4];
    let database = Database::new(table, &mut values[..]).unwrap();
    let server = Server::new(common::state(0), database, Config::default());
    let mut storage: [Storage; 1] = [SlotStorage::new()];
    let mut net = Net::new(64, 64);
    let info = ServiceInfo {
        name: "Light",
        model: "L1",
        category: Category::LIGHTBULB,
        config: stored,
        setup_id: None,
    };
    let mut accessory = Accessory::with_responder(
        &mut net,
        51826,
        server,
        storage.each_mut().map(SlotStorage::buffers),
        ConfigRecorder::default(),
        info,
    )
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut persist = |_: &AccessoryState| true;
    accessory
        .poll(
            &mut net,
            Instant::from_millis(5),
            &mut rng,
            &mut persist,
            |_| {},
        )
        .unwrap();
    let config = accessory.config_number();
    let announced = std::mem::take(&mut accessory.responder_mut().0);
    (config, announced)
}

#[test]
fn the_config_number_comes_from_the_shape() {
    // A first start: number 1 for the shape, to be stored.
    let (first, announced) = start_with_config(&LIGHT, ConfigNumber::default());
    assert_eq!(first.number, 1);
    assert_ne!(first, ConfigNumber::default(), "the shape was recorded");
    assert_eq!(announced, [1]);
    // The same shape after a restart: the same number, nothing to store.
    let (again, announced) = start_with_config(&LIGHT, first);
    assert_eq!(again, first);
    assert_eq!(announced, [1]);
    // Another shape: the number goes up, and controllers see it.
    let (dimmable, announced) = start_with_config(&DIMMABLE_LIGHT, again);
    assert_eq!(dimmable.number, 2);
    assert_eq!(announced, [2]);
    let (stable, _) = start_with_config(&DIMMABLE_LIGHT, dimmable);
    assert_eq!(stable, dimmable);
    // Back to the first shape: a new number again, as for any change.
    let (back, announced) = start_with_config(&LIGHT, stable);
    assert_eq!(back.number, 3);
    assert_eq!(announced, [3]);
}

/// A responder whose first `failures` announcements fail, as before the network is up;
/// records when each attempt was made, and whether it succeeded.
struct FlakyResponder {
    failures: usize,
    attempts: Vec<bool>,
}

impl Responder for FlakyResponder {
    type Error = &'static str;

    fn announce(&mut self, _: &Advertisement<'_>) -> Result<(), Self::Error> {
        let failed = self.failures > 0;
        self.failures = self.failures.saturating_sub(1);
        self.attempts.push(!failed);
        if failed {
            Err("network unreachable")
        } else {
            Ok(())
        }
    }

    fn goodbye(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// With no connection at all, `poll` asks to be polled again when a failed announcement
/// is due again, and then retries it.
#[test]
fn a_failed_announcement_is_retried_without_connections() {
    use hap_core::mdns::ANNOUNCE_RETRY;
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let database = Database::new(&LIGHT[..], &mut values[..]).unwrap();
    let server = Server::new(common::state(0), database, Config::default());
    let mut storage: [Storage; 1] = [SlotStorage::new()];
    let mut net = Net::new(64, 64);
    let info = ServiceInfo {
        name: "Light",
        model: "L1",
        category: Category::LIGHTBULB,
        config: ConfigNumber::default(),
        setup_id: None,
    };
    let responder = FlakyResponder {
        failures: 1,
        attempts: Vec::new(),
    };
    let mut accessory = Accessory::with_responder(
        &mut net,
        51826,
        server,
        storage.each_mut().map(SlotStorage::buffers),
        responder,
        info,
    )
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut persist = |_: &AccessoryState| true;
    let mut poll = |accessory: &mut Accessory<'_, '_, Net, 1, FlakyResponder>, at: Instant| {
        accessory
            .poll(&mut net, at, &mut rng, &mut persist, |_| {})
            .unwrap()
    };
    let start = Instant::from_millis(5);
    let retry = start + ANNOUNCE_RETRY;
    assert_eq!(
        poll(&mut accessory, start),
        Some(retry),
        "poll again to retry"
    );
    assert_eq!(accessory.responder_mut().attempts, [false]);
    // Polled early: not yet due.
    let early = Instant::from_millis(retry.as_millis() - 1);
    assert_eq!(poll(&mut accessory, early), Some(retry));
    assert_eq!(accessory.responder_mut().attempts, [false]);
    assert_eq!(poll(&mut accessory, retry), None, "announced: nothing due");
    assert_eq!(accessory.responder_mut().attempts, [false, true]);
}

/// [`LIGHT`] with On confirmed by the application.
static CONFIRMED_LIGHT: [Entry<'static>; 12] = [
    Entry::Accessory(1),
    Entry::Service(ServiceDef::new(1, &s::ACCESSORY_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(2, &c::IDENTIFY)),
    Entry::Characteristic(CharacteristicDef::new(3, &c::MANUFACTURER)),
    Entry::Characteristic(CharacteristicDef::new(4, &c::MODEL)),
    Entry::Characteristic(CharacteristicDef::new(5, &c::NAME)),
    Entry::Characteristic(CharacteristicDef::new(6, &c::SERIAL_NUMBER)),
    Entry::Characteristic(CharacteristicDef::new(7, &c::FIRMWARE_REVISION)),
    Entry::Service(ServiceDef::new(8, &s::LIGHTBULB)),
    Entry::Characteristic(CharacteristicDef::new(9, &c::ON).confirmed()),
    Entry::Service(ServiceDef::new(10, &s::PROTOCOL_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(11, &c::VERSION)),
];

/// Polls in steps of 100 ms until `peer` has a message on `pipe`, at most `polls` times.
fn poll_for_message<const N: usize>(
    world: &mut World<'_, '_, N>,
    pipe: usize,
    peer: &mut Peer,
    polls: usize,
) -> Option<Message> {
    for _ in 0..polls {
        let bytes: Vec<u8> = world.net.pipes[pipe].from_accessory.drain(..).collect();
        peer.take(&bytes);
        if let Some(message) = peer.message() {
            return Some(message);
        }
        world.poll(Duration::from_millis(100));
    }
    None
}

/// The token of the last confirmed write of On the application was told of.
fn last_write_request<const N: usize>(world: &World<'_, '_, N>) -> Option<hap_core::server::Token> {
    world.events.iter().rev().find_map(|event| match event {
        Event::WriteRequest {
            token,
            iid: 9,
            last: true,
            ..
        } => Some(*token),
        _ => None,
    })
}

#[test]
fn completions_answer_confirmed_writes_and_a_failed_one_sends_no_event() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let database = Database::new(&CONFIRMED_LIGHT[..], &mut values[..]).unwrap();
    let server = Server::new(common::state(2), database, Config::default());
    let mut storage: [Storage; 2] = [Storage::new(), Storage::new()];
    let mut net = Net::new(4096, 4096);
    let accessory = Accessory::new(
        &mut net,
        51826,
        server,
        storage.each_mut().map(SlotStorage::buffers),
    )
    .unwrap();
    let mut world = World {
        net,
        accessory,
        now: Instant::from_millis(1_000),
        rng: ChaCha20Rng::seed_from_u64(9),
        stored: Vec::new(),
        events: Vec::new(),
        next: None,
    };
    // Two verified controllers; the listener subscribes to On.
    let mut peers = Vec::new();
    for seed in [1, 2] {
        let pipe = world.net.connect();
        let mut client = Client {
            world: &mut world,
            pipe,
            peer: Peer::new(seed),
        };
        common::verify(&mut client);
        peers.push((pipe, client.peer));
    }
    let [(writer_pipe, mut writer), (listener_pipe, mut listener)] =
        <[(usize, Peer); 2]>::try_from(peers).ok().unwrap();
    let mut client = Client {
        world: &mut world,
        pipe: listener_pipe,
        peer: listener,
    };
    let subscribed = client.request(&common::put(
        r#"{"characteristics":[{"aid":1,"iid":9,"ev":true}]}"#,
    ));
    assert_eq!(subscribed.status(), 204, "{subscribed:?}");
    listener = client.peer;

    // A confirmed write waits for the application.
    let put = |on: bool| {
        common::put(&format!(
            r#"{{"characteristics":[{{"aid":1,"iid":9,"value":{on}}}]}}"#
        ))
    };
    let wire = writer.wire(&put(true));
    world.net.pipes[writer_pipe].to_accessory.extend(wire);
    assert!(
        poll_for_message(&mut world, writer_pipe, &mut writer, 20).is_none(),
        "nothing is answered before the application confirms"
    );
    let token = last_write_request(&world).expect("the application was asked");
    assert_eq!(world.accessory.complete_write(token, Ok(())), Ok(()));
    let answer = poll_for_message(&mut world, writer_pipe, &mut writer, 5).expect("the answer");
    assert_eq!(answer.status(), 204, "{answer:?}");
    let event = poll_for_message(&mut world, listener_pipe, &mut listener, 30)
        .expect("the subscriber hears the confirmed value");
    assert!(
        event.is_event() && value_of(&event.text()) == "true",
        "{event:?}"
    );
    assert_eq!(
        world.accessory.complete_write(token, Ok(())),
        Err(CompleteError::UnknownToken),
        "a completed token is stale"
    );

    // A failed write: -70402, the value stays, the subscriber hears nothing.
    let wire = writer.wire(&put(false));
    world.net.pipes[writer_pipe].to_accessory.extend(wire);
    assert!(poll_for_message(&mut world, writer_pipe, &mut writer, 3).is_none());
    let failed = last_write_request(&world).expect("asked again");
    assert_ne!(failed, token);
    world
        .accessory
        .complete_write(failed, Err(HapStatus::ServiceCommunicationFailure))
        .unwrap();
    let answer = poll_for_message(&mut world, writer_pipe, &mut writer, 5).expect("the answer");
    assert_eq!(answer.status(), 207, "{answer:?}");
    assert!(answer.text().contains("-70402"), "{answer:?}");
    assert!(
        poll_for_message(&mut world, listener_pipe, &mut listener, 30).is_none(),
        "no event for a failed write"
    );
    assert_eq!(
        world.accessory.server().database().get(1, 9),
        Some(&OwnedValue::Bool(true))
    );
}
