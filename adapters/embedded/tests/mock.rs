//! The accessory on an in-memory stack, in one thread with a virtual clock: sockets that
//! take one byte at a time and hand over a few, peers that leave, a failing listener,
//! buffers that are too small, the deadline `poll` returns, and the accessory advertising
//! itself over mDNS on the stack's UDP socket.

mod common;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{value_of, Message, Peer, Transport, LIGHT, LIGHT_SLOTS};
use embedded_nal::{
    nb, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, UdpClientStack, UdpFullStack,
};
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::config::ConfigNumber;
use hap_core::database::{CharacteristicDef, Database, Entry, OwnedValue, ServiceDef, Slot};
use hap_core::mdns::wire::{self, Header, Name, Packet, RData};
use hap_core::mdns::{Advertisement, MdnsEvent, NoResponder, Responder};
use hap_core::server::{CompleteError, Config, Event, HapStatus, Server, MIN_OUTPUT_LEN};
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_embedded::{Accessory, Error, ServiceInfo, SlotBuffers, SlotStorage, UdpResponder};
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
    /// The port the UDP socket is bound to, until it is closed.
    udp_bound: Option<u16>,
    /// Datagrams waiting for the UDP socket, with their source.
    udp_in: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Datagrams the accessory sent, with their destination.
    udp_out: Vec<(SocketAddr, Vec<u8>)>,
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
        if self.sends.is_multiple_of(2) {
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

#[derive(Debug)]
enum MockUdpSocket {
    Unbound,
    Bound,
}

impl UdpClientStack for Net {
    type UdpSocket = MockUdpSocket;
    type Error = MockError;

    fn socket(&mut self) -> Result<MockUdpSocket, MockError> {
        Ok(MockUdpSocket::Unbound)
    }

    fn connect(&mut self, _: &mut MockUdpSocket, _: SocketAddr) -> Result<(), MockError> {
        Err(MockError)
    }

    fn send(&mut self, _: &mut MockUdpSocket, _: &[u8]) -> nb::Result<(), MockError> {
        Err(nb::Error::Other(MockError))
    }

    fn receive(
        &mut self,
        socket: &mut MockUdpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<(usize, SocketAddr), MockError> {
        if !matches!(socket, MockUdpSocket::Bound) {
            return Err(nb::Error::Other(MockError));
        }
        let (source, datagram) = self.udp_in.pop_front().ok_or(nb::Error::WouldBlock)?;
        let n = datagram.len().min(buffer.len());
        buffer[..n].copy_from_slice(&datagram[..n]);
        Ok((n, source))
    }

    fn close(&mut self, socket: MockUdpSocket) -> Result<(), MockError> {
        if let MockUdpSocket::Bound = socket {
            self.udp_bound = None;
        }
        Ok(())
    }
}

impl UdpFullStack for Net {
    fn bind(&mut self, socket: &mut MockUdpSocket, port: u16) -> Result<(), MockError> {
        self.udp_bound = Some(port);
        *socket = MockUdpSocket::Bound;
        Ok(())
    }

    fn send_to(
        &mut self,
        socket: &mut MockUdpSocket,
        remote: SocketAddr,
        buffer: &[u8],
    ) -> nb::Result<(), MockError> {
        if !matches!(socket, MockUdpSocket::Bound) {
            return Err(nb::Error::Other(MockError));
        }
        self.udp_out.push((remote, buffer.to_vec()));
        Ok(())
    }
}

type Storage = SlotStorage<4096, 1024, 2560, 4>;

/// How a world's accessory advertises: nothing, or over mDNS on [`Net`]'s UDP socket,
/// driven after each poll.
trait Advertising: Responder + Sized {
    fn poll_mdns<const N: usize>(
        _accessory: &mut Accessory<'_, '_, Net, N, Self>,
        _net: &mut Net,
        _now: Instant,
        _rng: &mut ChaCha20Rng,
        _events: &mut Vec<MdnsEvent>,
    ) {
    }
}

impl Advertising for NoResponder {}

impl Advertising for UdpResponder<MockUdpSocket> {
    fn poll_mdns<const N: usize>(
        accessory: &mut Accessory<'_, '_, Net, N, Self>,
        net: &mut Net,
        now: Instant,
        rng: &mut ChaCha20Rng,
        events: &mut Vec<MdnsEvent>,
    ) {
        accessory
            .poll_mdns(net, now, rng, |event| events.push(event))
            .unwrap();
    }
}

/// An accessory, its network, a virtual clock and what the application saw.
struct World<'d, 'b, const N: usize, M: Advertising = NoResponder> {
    net: Net,
    accessory: Accessory<'d, 'b, Net, N, M>,
    now: Instant,
    rng: ChaCha20Rng,
    stored: Vec<bool>,
    events: Vec<Event>,
    /// What the last poll returned.
    next: Option<Instant>,
    mdns_events: Vec<MdnsEvent>,
    /// The datagrams sent, when and where to.
    datagrams: Vec<(Instant, SocketAddr, Vec<u8>)>,
}

impl<const N: usize, M: Advertising> World<'_, '_, N, M> {
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
        M::poll_mdns(
            &mut self.accessory,
            &mut self.net,
            self.now,
            &mut self.rng,
            &mut self.mdns_events,
        );
        let now = self.now;
        self.datagrams.extend(
            self.net
                .udp_out
                .drain(..)
                .map(|(to, datagram)| (now, to, datagram)),
        );
    }
}

/// A controller on one pipe of the world.
struct Client<'w, 'd, 'b, const N: usize, M: Advertising = NoResponder> {
    world: &'w mut World<'d, 'b, N, M>,
    pipe: usize,
    peer: Peer,
}

impl<const N: usize, M: Advertising> Transport for Client<'_, '_, '_, N, M> {
    fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    fn send_wire(&mut self, wire: &[u8]) {
        self.world.net.pipes[self.pipe].to_accessory.extend(wire);
    }

    fn receive_wire(&mut self) -> Vec<u8> {
        self.world.poll(Duration::from_millis(1));
        self.world.net.pipes[self.pipe]
            .from_accessory
            .drain(..)
            .collect()
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
        mdns_events: Vec::new(),
        datagrams: Vec::new(),
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
    assert_eq!(accessories.status, 200);
    assert!(accessories.text().contains("\"iid\":9"));
    let written = client.request(&common::put(
        r#"{"characteristics":[{"aid":1,"iid":9,"value":true}]}"#,
    ));
    assert_eq!(written.status, 204, "{written:?}");
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
    assert_eq!(read.status, 200);
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
        mdns_events: Vec::new(),
        datagrams: Vec::new(),
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
    assert_eq!(subscribed.status, 204, "{subscribed:?}");
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
    assert_eq!(answer.status, 204, "{answer:?}");
    let event = poll_for_message(&mut world, listener_pipe, &mut listener, 30)
        .expect("the subscriber hears the confirmed value");
    assert!(
        event.event && value_of(&event.text()) == "true",
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
    assert_eq!(answer.status, 207, "{answer:?}");
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

// ---------------------------------------------------------------------------------------
// mDNS on the stack's UDP socket.

const INSTANCE: &str = "Light._hap._tcp.local";
const HOST: &str = "light-1.local";
const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// A paired light advertising itself as `Light` on `light-1.local` at [`ADDRESS`].
fn mdns_world<'d, 'b>(
    values: &'d mut [Slot],
    storage: &'b mut [Storage; 1],
) -> World<'d, 'b, 1, UdpResponder<MockUdpSocket>> {
    let mut net = Net::new(4096, 4096);
    let mdns = UdpResponder::open(&mut net, "light-1", &[IpAddr::V4(ADDRESS)]).unwrap();
    assert_eq!(net.udp_bound, Some(5353), "the mDNS port");
    let info = ServiceInfo {
        name: "Light",
        model: "L1",
        category: Category::LIGHTBULB,
        config: ConfigNumber::default(),
        setup_id: None,
    };
    let accessory = Accessory::with_responder(
        &mut net,
        51826,
        server(values, Config::default()),
        storage.each_mut().map(SlotStorage::buffers),
        mdns,
        info,
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
        mdns_events: Vec::new(),
        datagrams: Vec::new(),
    }
}

impl<const N: usize> World<'_, '_, N, UdpResponder<MockUdpSocket>> {
    /// Polls every 10 ms for `duration`, as an application would on its tick.
    fn run(&mut self, duration: Duration) {
        for _ in 0..duration.as_millis() / 10 {
            self.poll(Duration::from_millis(10));
        }
    }
}

fn name(text: &str) -> Name<'_> {
    Name::new(text).unwrap()
}

/// Whether the datagram is a response with the record `rtype` of `owner` in its answers.
fn answers(datagram: &[u8], owner: &str, rtype: u16) -> bool {
    let packet = Packet::parse(datagram).unwrap();
    packet.header().is_response()
        && packet
            .answers()
            .any(|r| r.rtype == rtype && r.name.eq_name(&name(owner)))
}

/// The value of `key` in the TXT record of a response, if it has one.
fn txt_value(datagram: &[u8], key: &str) -> Option<String> {
    let packet = Packet::parse(datagram).unwrap();
    packet.records().find_map(|r| match r.rdata {
        RData::Txt(txt) if r.name.eq_name(&name(INSTANCE)) => txt
            .get(key.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned()),
        _ => None,
    })
}

/// A query from another host for `qname`'s records of type `qtype`.
fn query(qname: &str, qtype: u16) -> Vec<u8> {
    let mut buf = [0; 512];
    let mut writer = wire::Writer::new(&mut buf, 0, Header::QUERY).unwrap();
    writer
        .question(name(qname), qtype, wire::CLASS_IN, false)
        .unwrap();
    writer.finish().to_vec()
}

fn is_mdns_group(to: &SocketAddr) -> bool {
    to.port() == 5353
        && (to.ip() == IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251))
            || to.ip() == "ff02::fb".parse::<IpAddr>().unwrap())
}

#[test]
fn mdns_probes_then_announces_the_service_and_answers_a_browse() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 1] = [Storage::new()];
    let mut world = mdns_world(&mut values, &mut storage);
    world.run(Duration::from_secs(3));

    assert!(!world.datagrams.is_empty(), "it sent nothing");
    for (_, to, _) in &world.datagrams {
        assert!(
            is_mdns_group(to),
            "unsolicited datagrams go to the group: {to}"
        );
    }
    // Probes: queries for our names with the proposed records in the authority section.
    let probes: Vec<Instant> = world
        .datagrams
        .iter()
        .filter(|(_, _, d)| {
            let packet = Packet::parse(d).unwrap();
            !packet.header().is_response()
                && packet.questions().any(|q| q.name.eq_name(&name(INSTANCE)))
                && packet.authorities().next().is_some()
        })
        .map(|(at, _, _)| *at)
        .collect();
    let mut probe_times = probes.clone();
    probe_times.dedup();
    assert!(
        probe_times.len() >= 3,
        "three probes (RFC 6762 §8.1): {probe_times:?}"
    );
    // Announcements: the PTR for browsing, the SRV, TXT and A records.
    let announcements: Vec<&(Instant, SocketAddr, Vec<u8>)> = world
        .datagrams
        .iter()
        .filter(|(_, _, d)| answers(d, "_hap._tcp.local", wire::rtype::PTR))
        .collect();
    assert!(!announcements.is_empty(), "no announcement");
    let first = &announcements[0];
    assert!(
        first.0 > *probes.last().unwrap(),
        "announced only after probing"
    );
    let packet = Packet::parse(&first.2).unwrap();
    assert!(packet.records().any(|r| matches!(
        r.rdata,
        RData::Ptr(target) if target.eq_name(&name(INSTANCE))
    )));
    assert!(packet.records().any(|r| matches!(
        r.rdata,
        RData::Srv { port: 51826, target, .. } if target.eq_name(&name(HOST))
    )));
    assert!(packet
        .records()
        .any(|r| r.rdata == RData::A(ADDRESS) && r.name.eq_name(&name(HOST))));
    assert_eq!(txt_value(&first.2, "sf").as_deref(), Some("0"), "paired");
    assert_eq!(txt_value(&first.2, "md").as_deref(), Some("L1"));
    assert!(world
        .mdns_events
        .iter()
        .any(|e| matches!(e, MdnsEvent::Probing { .. })));
    assert!(world
        .mdns_events
        .iter()
        .any(|e| matches!(e, MdnsEvent::Announced { .. })));
    let responder = world.accessory.responder_mut().responder().unwrap();
    assert_eq!(responder.instance_name(), "Light");
    assert_eq!(responder.host_name(), "light-1");

    // A browser on another host asks for HAP services and hears of this one.
    let asked = world.now;
    let browser: SocketAddr = "192.0.2.50:5353".parse().unwrap();
    world
        .net
        .udp_in
        .push_back((browser, query("_hap._tcp.local", wire::rtype::PTR)));
    world.run(Duration::from_secs(1));
    let answer = world
        .datagrams
        .iter()
        .find(|(at, _, d)| *at > asked && answers(d, "_hap._tcp.local", wire::rtype::PTR))
        .expect("an answer to the browse");
    assert!(
        answer.0 <= asked + Duration::from_millis(500),
        "answered within 500 ms, at {:?}",
        answer.0
    );
    assert!(is_mdns_group(&answer.1) || answer.1 == browser);
}

#[test]
fn mdns_announces_sf_1_when_the_last_pairing_is_removed() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 1] = [Storage::new()];
    let mut world = mdns_world(&mut values, &mut storage);
    world.run(Duration::from_secs(3));
    let announced_sf = |world: &World<'_, '_, 1, UdpResponder<MockUdpSocket>>, after: Instant| {
        world
            .datagrams
            .iter()
            .filter(|(at, _, d)| *at > after && Packet::parse(d).unwrap().header().is_response())
            .filter_map(|(_, _, d)| txt_value(d, "sf"))
            .collect::<Vec<_>>()
    };
    assert!(announced_sf(&world, Instant::from_millis(0))
        .iter()
        .all(|sf| sf == "0"));

    let pipe = world.net.connect();
    let mut client = Client {
        world: &mut world,
        pipe,
        peer: Peer::new(1),
    };
    common::verify(&mut client);
    let removed = client.request(&common::post(
        "/pairings",
        &common::remove_pairing(&common::identity(1).id),
    ));
    assert_eq!(removed.status, 200, "{removed:?}");
    let unpaired_at = world.now;
    world.run(Duration::from_secs(3));
    assert!(world
        .events
        .iter()
        .any(|e| matches!(e, Event::PairingsChanged { paired: false })));
    let after = announced_sf(&world, unpaired_at);
    assert!(
        after.iter().any(|sf| sf == "1"),
        "announced sf=1 after unpairing: {after:?}"
    );
    assert!(
        !world
            .mdns_events
            .iter()
            .any(|e| matches!(e, MdnsEvent::Conflict { .. })),
        "no conflict on a quiet link"
    );
}

#[test]
fn mdns_announces_new_addresses_and_says_goodbye_at_the_end() {
    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut storage: [Storage; 1] = [Storage::new()];
    let mut world = mdns_world(&mut values, &mut storage);
    world.run(Duration::from_secs(3));

    let renewed = Ipv4Addr::new(192, 0, 2, 8);
    assert!(world.accessory.set_addresses(&[IpAddr::V4(renewed)]));
    assert!(
        !world.accessory.set_addresses(&[IpAddr::V4(renewed)]),
        "the same addresses change nothing"
    );
    let changed_at = world.now;
    world.run(Duration::from_secs(2));
    assert!(
        world.datagrams.iter().any(|(at, _, d)| *at > changed_at
            && Packet::parse(d)
                .unwrap()
                .records()
                .any(|r| r.rdata == RData::A(renewed))),
        "the new address is announced"
    );

    let ended_at = world.now;
    let next = world
        .accessory
        .withdraw_mdns(&mut world.net, ended_at)
        .unwrap();
    assert_eq!(next, Some(ended_at + Duration::from_millis(250)));
    let withdraws_ptr = |d: &[u8]| {
        let packet = Packet::parse(d).unwrap();
        packet.header().is_response()
            && packet.answers().any(|r| {
                r.ttl == 0
                    && r.name.eq_name(&name("_hap._tcp.local"))
                    && matches!(r.rdata, RData::Ptr(target) if target.eq_name(&name(INSTANCE)))
            })
    };
    let first: Vec<Vec<u8>> = world.net.udp_out.drain(..).map(|(_, d)| d).collect();
    assert!(
        first.iter().any(|d| withdraws_ptr(d)),
        "the goodbye withdraws the PTR with TTL 0"
    );
    assert!(
        !world.accessory.is_mdns_withdrawn(),
        "a second round is due"
    );
    assert!(world.net.udp_bound.is_some());
    // The application polls on: the second round goes out 250 ms later, then the
    // socket is closed.
    world.run(Duration::from_secs(1));
    let second: Vec<Instant> = world
        .datagrams
        .iter()
        .filter(|(at, _, d)| *at > ended_at && withdraws_ptr(d))
        .map(|(at, _, _)| *at)
        .collect();
    assert_eq!(second.len(), first.len(), "the same goodbye again");
    assert!(second
        .iter()
        .all(|at| *at == ended_at + Duration::from_millis(250)));
    assert!(world.accessory.is_mdns_withdrawn());
    assert_eq!(world.net.udp_bound, None, "the socket is closed");
    // The accessory goes on serving HAP, silently on mDNS.
    let quiet_from = world.now;
    world.run(Duration::from_secs(2));
    assert!(
        world.net.udp_out.is_empty() && world.datagrams.iter().all(|(at, _, _)| *at <= quiet_from)
    );
}

#[test]
fn mdns_refuses_a_host_label_it_cannot_advertise() {
    let mut net = Net::new(64, 64);
    for label in ["", "light.local", "light 1", &"x".repeat(64)] {
        let refused = UdpResponder::open(&mut net, label, &[]);
        assert!(
            matches!(
                refused,
                Err(Error::Mdns(hap_core::mdns::MdnsError::HostName))
            ),
            "{label:?}"
        );
    }
    assert_eq!(net.udp_bound, None, "nothing bound");
}
