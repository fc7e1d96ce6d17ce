//! The accessory over real TCP on the loopback interface, through `std-embedded-nal`.
//!
//! The accessory's poll loop runs in its own thread with an injected clock; controllers
//! connect with `std::net::TcpStream` to 127.0.0.1, pair-verify (their pairings are put
//! in the state by hand: pair-setup needs SRP and a heap), and then read, write,
//! subscribe and manage pairings. Every loop is bounded in count and time.
#![cfg(unix)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant as StdInstant};

use common::{value_of, Message, Peer, Transport, LIGHT, LIGHT_SLOTS};
use embedded_nal::{nb, TcpClientStack, TcpFullStack};
use hap_core::catalog::Category;
use hap_core::database::config::ConfigNumber;
use hap_core::database::{Database, OwnedValue, Slot};
use hap_core::mdns::{Advertisement, Responder};
use hap_core::server::{Config, Event, Server};
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_embedded::{Accessory, ServiceInfo, SlotStorage};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const INFO: ServiceInfo<'static> = ServiceInfo {
    name: "Host Light",
    model: "HostLight1,1",
    category: Category::LIGHTBULB,
    config: ConfigNumber {
        number: 1,
        shape: [0; 16],
    },
    setup_id: None,
};

/// How long one accessory thread may run at most.
const ACCESSORY_LIMIT: Duration = Duration::from_secs(60);
/// How long a controller waits for one answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The stack: std-embedded-nal, with accepted sockets made non-blocking.

/// `std_embedded_nal::Stack`, except that accepted sockets are non-blocking and have a
/// small send buffer.
///
/// std-embedded-nal 0.4 makes its listener non-blocking, but on Linux an accepted socket
/// does not inherit that flag, so `receive` on an idle connection would block the whole
/// poll loop.
struct Stack {
    inner: std_embedded_nal::Stack,
    /// Sends that the socket took only in part or not at all.
    short_sends: Arc<AtomicUsize>,
}

type Socket = <std_embedded_nal::Stack as TcpClientStack>::TcpSocket;
type StackError = <std_embedded_nal::Stack as TcpClientStack>::Error;

/// The accessory's send buffer: small, so that sockets fill and sends fall short.
const SEND_BUFFER: usize = 8 * 1024;

/// Makes an accepted socket non-blocking, and gives it a small send buffer. Both are
/// properties of the open file description, which a duplicate of the descriptor shares.
#[allow(unsafe_code)]
fn prepare(socket: &Socket) -> std::io::Result<()> {
    use std::os::fd::BorrowedFd;
    let Some(fd) = socket.as_raw_fd() else {
        return Err(ErrorKind::NotConnected.into());
    };
    // SAFETY: `fd` is the descriptor of `socket`, which stays open while it is borrowed
    // here.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let duplicate = TcpStream::from(borrowed.try_clone_to_owned()?);
    duplicate.set_nonblocking(true)?;
    socket2::SockRef::from(&duplicate).set_send_buffer_size(SEND_BUFFER)
}

impl TcpClientStack for Stack {
    type TcpSocket = Socket;
    type Error = StackError;

    fn socket(&mut self) -> Result<Socket, StackError> {
        self.inner.socket()
    }

    fn connect(&mut self, socket: &mut Socket, remote: SocketAddr) -> nb::Result<(), StackError> {
        self.inner.connect(socket, remote)
    }

    fn send(&mut self, socket: &mut Socket, buffer: &[u8]) -> nb::Result<usize, StackError> {
        let result = self.inner.send(socket, buffer);
        let short = match &result {
            Ok(sent) => *sent < buffer.len(),
            Err(error) => matches!(error, nb::Error::WouldBlock),
        };
        if short {
            self.short_sends.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn receive(&mut self, socket: &mut Socket, buffer: &mut [u8]) -> nb::Result<usize, StackError> {
        self.inner.receive(socket, buffer)
    }

    fn close(&mut self, socket: Socket) -> Result<(), StackError> {
        self.inner.close(socket)
    }
}

impl TcpFullStack for Stack {
    fn bind(&mut self, socket: &mut Socket, port: u16) -> Result<(), StackError> {
        self.inner.bind(socket, port)
    }

    fn listen(&mut self, socket: &mut Socket) -> Result<(), StackError> {
        self.inner.listen(socket)
    }

    fn accept(&mut self, listener: &mut Socket) -> nb::Result<(Socket, SocketAddr), StackError> {
        let (socket, address) = self.inner.accept(listener)?;
        prepare(&socket).map_err(|e| nb::Error::Other(e.into()))?;
        Ok((socket, address))
    }
}

// ---------------------------------------------------------------------------------------
// The accessory thread.

/// What the accessory thread reports.
// Events carry values inline; a few hundred bytes per message do not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Note {
    Event(Event),
    Stored { paired: bool },
    Announced { paired: bool, port: u16 },
    Goodbye,
    SetValue(Result<bool, hap_core::database::SetValueError>),
}

#[allow(clippy::large_enum_variant)]
enum Command {
    SetValue(u64, u64, OwnedValue),
    Stop,
}

/// Records announcements.
struct Recorder(Sender<Note>);

impl Responder for Recorder {
    type Error = core::convert::Infallible;

    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), Self::Error> {
        let _ = self.0.send(Note::Announced {
            paired: advertisement.paired,
            port: advertisement.port,
        });
        Ok(())
    }

    fn goodbye(&mut self) -> Result<(), Self::Error> {
        let _ = self.0.send(Note::Goodbye);
        Ok(())
    }
}

/// What the accessory thread ends with.
#[derive(Debug)]
struct Outcome {
    polls: usize,
    open_at_stop: usize,
    paired_at_stop: bool,
}

struct Harness {
    port: u16,
    commands: Sender<Command>,
    notes: Receiver<Note>,
    thread: Option<JoinHandle<Outcome>>,
    short_sends: Arc<AtomicUsize>,
    /// Notes taken while looking for another.
    seen: Vec<Note>,
}

/// A port that was free a moment ago: std-embedded-nal binds the port it is given and
/// cannot tell which one the system chose for port 0.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts an accessory with `N` slots, paired with controllers `1..=paired`.
fn start<const N: usize>(config: Config, paired: u8) -> Harness {
    let port = free_port();
    eprintln!("accessory on port {port}");
    let (commands, command_rx) = mpsc::channel();
    let (note_tx, notes) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    let short_sends = Arc::new(AtomicUsize::new(0));
    let counter = short_sends.clone();
    let thread = thread::spawn(move || {
        let state = common::state(paired);
        let mut values = [Slot::EMPTY; LIGHT_SLOTS];
        let database = Database::new(&LIGHT[..], &mut values[..]).unwrap();
        let server = Server::new(state, database, config);
        let mut storage: [SlotStorage<9216, 2048, 4096, 8>; N] =
            core::array::from_fn(|_| SlotStorage::new());
        let buffers = storage.each_mut().map(SlotStorage::buffers);
        let mut stack = Stack {
            inner: std_embedded_nal::Stack,
            short_sends: counter,
        };
        let mut accessory = Accessory::with_responder(
            &mut stack,
            port,
            server,
            buffers,
            Recorder(note_tx.clone()),
            INFO,
        )
        .unwrap();
        ready_tx.send(()).unwrap();

        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let started = StdInstant::now();
        let clock = || Instant::from_millis(started.elapsed().as_millis() as u64);
        let notes = note_tx;
        let mut persist = |state: &AccessoryState| {
            let _ = notes.send(Note::Stored {
                paired: state.is_paired(),
            });
            true
        };
        let mut polls = 0;
        while polls < 1_000_000 && started.elapsed() < ACCESSORY_LIMIT {
            match command_rx.try_recv() {
                Ok(Command::SetValue(aid, iid, value)) => {
                    let _ = notes.send(Note::SetValue(accessory.set_value(aid, iid, value)));
                }
                Ok(Command::Stop) => break,
                Err(_) => {}
            }
            let now = clock();
            let next = accessory
                .poll(&mut stack, now, &mut rng, &mut persist, |event| {
                    let _ = notes.send(Note::Event(event));
                })
                .unwrap();
            polls += 1;
            if !matches!(next, Some(next) if next <= now) {
                thread::sleep(Duration::from_millis(1));
            }
        }
        let open_at_stop = accessory.server().connection_count();
        let server = accessory.shut_down(&mut stack, clock(), &mut rng, &mut persist, |_| {});
        Outcome {
            polls,
            open_at_stop,
            paired_at_stop: server.state().is_paired(),
        }
    });
    ready.recv_timeout(ANSWER_LIMIT).unwrap();
    Harness {
        port,
        commands,
        notes,
        thread: Some(thread),
        short_sends,
        seen: Vec::new(),
    }
}

impl Harness {
    /// Waits for the first note that `want` accepts, keeping the others.
    fn expect<T>(&mut self, what: &str, mut want: impl FnMut(&Note) -> Option<T>) -> T {
        if let Some(at) = self.seen.iter().position(|note| want(note).is_some()) {
            let note = self.seen.remove(at);
            return want(&note).unwrap();
        }
        let deadline = StdInstant::now() + ANSWER_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(StdInstant::now());
            match self.notes.recv_timeout(left) {
                Ok(note) => match want(&note) {
                    Some(found) => return found,
                    None => self.seen.push(note),
                },
                Err(RecvTimeoutError::Timeout) => panic!("no {what}; saw {:?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => panic!("accessory stopped before {what}"),
            }
        }
    }

    fn set_value(&mut self, aid: u64, iid: u64, value: OwnedValue) -> Result<bool, String> {
        self.commands
            .send(Command::SetValue(aid, iid, value))
            .unwrap();
        self.expect("set_value result", |note| match note {
            Note::SetValue(result) => Some(result.map_err(|e| e.to_string())),
            _ => None,
        })
    }

    fn stop(mut self) -> (Outcome, Vec<Note>) {
        let _ = self.commands.send(Command::Stop);
        let outcome = self.thread.take().unwrap().join().unwrap();
        let mut notes = std::mem::take(&mut self.seen);
        notes.extend(self.notes.try_iter());
        eprintln!("accessory stopped after {} polls", outcome.polls);
        (outcome, notes)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The controller.

/// A controller on a `TcpStream`.
struct Controller {
    stream: TcpStream,
    peer: Peer,
}

impl Transport for Controller {
    fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    fn send_wire(&mut self, wire: &[u8]) {
        self.stream.write_all(wire).unwrap();
    }

    fn receive_wire(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("the accessory closed the connection"),
            Ok(n) => buf[..n].to_vec(),
            Err(e) if is_timeout(&e) => Vec::new(),
            Err(e) => panic!("the connection failed: {e}"),
        }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

impl Controller {
    fn connect(port: u16, seed: u8) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            peer: Peer::new(seed),
        }
    }

    fn send(&mut self, request: &[u8]) -> std::io::Result<()> {
        let wire = self.peer.wire(request);
        self.stream.write_all(&wire)
    }

    /// Reads once; returns false at the end of the stream.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.peer.take(&buf[..n]);
                true
            }
            Err(e) => is_timeout(&e),
        }
    }

    /// The next message, response or event.
    fn message(&mut self) -> Message {
        self.try_message(ANSWER_LIMIT)
            .expect("connection closed while waiting")
    }

    /// The next message, or `None` if the connection closes first.
    fn try_message(&mut self, limit: Duration) -> Option<Message> {
        let deadline = StdInstant::now() + limit;
        loop {
            if let Some(message) = self.peer.message() {
                return Some(message);
            }
            assert!(StdInstant::now() < deadline, "no message in time");
            if !self.read_some() {
                return None;
            }
        }
    }

    /// The next response, keeping events that come first.
    fn response(&mut self) -> Message {
        for _ in 0..64 {
            let message = self.message();
            if message.event {
                self.peer.events.push(message);
            } else {
                return message;
            }
        }
        panic!("no response among 64 messages");
    }

    fn event(&mut self) -> Message {
        if !self.peer.events.is_empty() {
            return self.peer.events.remove(0);
        }
        let message = self.message();
        assert!(message.event, "expected an event: {message:?}");
        message
    }

    /// Whether the accessory closes the connection within `limit`; data is ignored.
    fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = StdInstant::now() + limit;
        let mut buf = [0u8; 1024];
        while StdInstant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return true,
            }
        }
        false
    }

    fn get(&mut self, path: &str) -> Message {
        self.request(&common::get(path))
    }

    fn put(&mut self, body: &str) -> Message {
        self.request(&common::put(body))
    }

    fn post(&mut self, path: &str, body: &[u8]) -> Message {
        self.request(&common::post(path, body))
    }

    /// Connects as controller `seed`, retrying while the accessory closes the connection
    /// at once (it may not have seen a slot free up yet), and returns the controller
    /// with the answer to a first, unverified request.
    fn connect_when_served(port: u16, seed: u8) -> (Self, Message) {
        for _ in 0..50 {
            let mut controller = Self::connect(port, seed);
            if controller
                .send(b"GET /characteristics?id=1.9 HTTP/1.1\r\n\r\n")
                .is_err()
            {
                continue;
            }
            if let Some(answer) = controller.try_message(ANSWER_LIMIT) {
                return (controller, answer);
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("never served");
    }

    /// Connects as controller `seed` and pair-verifies.
    fn verified(harness: &mut Harness, seed: u8) -> Self {
        let (mut controller, answer) = Self::connect_when_served(harness.port, seed);
        assert_eq!(answer.status, 470, "unverified: {answer:?}");
        common::verify(&mut controller);
        let id = controller.peer.identity.id.clone();
        harness.expect("Verified event", |note| match note {
            Note::Event(Event::Verified { controller }) if *controller == id => Some(()),
            _ => None,
        });
        controller
    }

    /// Reads characteristic 1.9 and returns its value as JSON text.
    fn read_on(&mut self) -> String {
        let response = self.get("/characteristics?id=1.9");
        assert_eq!(response.status, 200, "{response:?}");
        value_of(&response.text())
    }
}

fn config() -> Config {
    Config {
        event_window: Duration::from_millis(200),
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn verified_controllers_read_write_and_hear_events() {
    let mut harness = start::<2>(config(), 3);
    let (paired, port) = harness.expect("announcement", |note| match note {
        Note::Announced { paired, port } => Some((*paired, *port)),
        _ => None,
    });
    assert!(paired, "the accessory starts paired");
    assert_eq!(port, harness.port);

    let mut a = Controller::verified(&mut harness, 1);
    let accessories = a.get("/accessories");
    assert_eq!(accessories.status, 200);
    let text = accessories.text();
    assert!(text.contains("\"aid\":1"), "{text}");
    assert!(text.contains("\"iid\":9"), "{text}");
    assert_eq!(a.read_on(), "false");

    let mut b = Controller::verified(&mut harness, 2);
    let subscribed = b.put(r#"{"characteristics":[{"aid":1,"iid":9,"ev":true}]}"#);
    assert_eq!(subscribed.status, 204, "{subscribed:?}");

    // A controller writes: the application hears it, and so does the subscriber.
    let written = a.put(r#"{"characteristics":[{"aid":1,"iid":9,"value":true}]}"#);
    assert_eq!(written.status, 204, "{written:?}");
    let a_id = a.peer.identity.id.clone();
    let value = harness.expect("Write event", |note| match note {
        Note::Event(Event::Write {
            aid: 1,
            iid: 9,
            value,
            controller,
        }) if *controller == a_id => Some(value.clone()),
        _ => None,
    });
    assert_eq!(value, OwnedValue::Bool(true));
    let event = b.event();
    assert_eq!(value_of(&event.text()), "true", "{event:?}");

    // The application sets a value: the subscriber hears it after the event window.
    assert_eq!(harness.set_value(1, 9, OwnedValue::Bool(false)), Ok(true));
    let event = b.event();
    assert_eq!(value_of(&event.text()), "false", "{event:?}");
    assert_eq!(a.read_on(), "false");
    assert!(harness.set_value(1, 99, OwnedValue::Bool(true)).is_err());

    // Slots are reused: more connections over time than there are slots.
    for round in 0..3 {
        drop(b);
        b = Controller::verified(&mut harness, 3);
        assert_eq!(b.read_on(), "false", "round {round}");
    }
    assert_eq!(a.read_on(), "false");

    drop((a, b));
    let (outcome, notes) = harness.stop();
    assert!(outcome.paired_at_stop);
    assert!(outcome.open_at_stop <= 2);
    assert!(
        notes.iter().any(|note| matches!(note, Note::Goodbye)),
        "shutdown withdraws the advertisement"
    );
}

/// Two connections are verified; a third is closed at once and the two still work.
fn third_connection_is_closed<const N: usize>(config: Config) {
    let mut harness = start::<N>(config, 2);
    let mut a = Controller::verified(&mut harness, 1);
    let mut b = Controller::verified(&mut harness, 2);
    let mut extra = Controller::connect(harness.port, 3);
    assert!(
        extra.closed_within(Duration::from_secs(3)),
        "the connection beyond the limit is closed"
    );
    assert_eq!(a.read_on(), "false");
    assert_eq!(b.read_on(), "false");

    // Once one leaves, a new connection gets its place.
    drop(b);
    let (mut next, response) = Controller::connect_when_served(harness.port, 2);
    // Answered, though unverified (470): it was served.
    assert_eq!(response.status, 470, "{response:?}");
    common::verify(&mut next);
    assert_eq!(next.read_on(), "false");
    assert_eq!(a.read_on(), "false");
    drop((a, next, extra));
    harness.stop();
}

#[test]
fn connection_beyond_the_slots_is_closed() {
    third_connection_is_closed::<2>(config());
}

#[test]
fn connection_beyond_max_connections_is_closed() {
    third_connection_is_closed::<3>(Config {
        max_connections: 2,
        ..config()
    });
}

/// Over real sockets: with both slots taken, an idle unverified connection makes room
/// for a newcomer once it has been idle `idle_eviction`; the verified one stays.
#[test]
fn idle_unverified_connection_is_evicted_for_a_newcomer() {
    let idle_eviction = Duration::from_millis(300);
    let mut harness = start::<2>(
        Config {
            idle_eviction,
            ..config()
        },
        1,
    );
    let mut verified = Controller::verified(&mut harness, 1);
    let mut idle = Controller::connect(harness.port, 2);
    // It was accepted, not refused: the accessory answers it.
    idle.send(b"GET /accessories HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(idle.message().status, 470);
    let answered = StdInstant::now();
    // Idle long past the eviction age, and not closed: nobody needs its slot.
    thread::sleep(3 * idle_eviction);
    assert_eq!(verified.read_on(), "false");
    let mut next = Controller::connect(harness.port, 1);
    assert!(
        idle.closed_within(Duration::from_secs(5)),
        "the idle connection made room"
    );
    assert!(answered.elapsed() >= idle_eviction);
    common::verify(&mut next);
    assert_eq!(next.read_on(), "false");
    assert_eq!(verified.read_on(), "false", "the verified session stays");
    drop((verified, next, idle));
    harness.stop();
}

#[test]
fn removed_pairings_are_stored_close_sessions_and_reannounce() {
    let mut harness = start::<2>(config(), 2);
    harness.expect("first announcement", |note| match note {
        Note::Announced { paired: true, .. } => Some(()),
        _ => None,
    });
    let mut a = Controller::verified(&mut harness, 1);
    let mut b = Controller::verified(&mut harness, 2);

    // A removes B: stored first, then answered, and B's session ends.
    let b_id = b.peer.identity.id.clone();
    let response = a.post("/pairings", &common::remove_pairing(&b_id));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, [0x06, 1, 2]);
    harness.expect("stored removal", |note| match note {
        Note::Stored { paired: true } => Some(()),
        _ => None,
    });
    assert!(
        b.closed_within(Duration::from_secs(5)),
        "B's session closed"
    );

    // A removes itself: the accessory is unpaired and announces it.
    let a_id = a.peer.identity.id.clone();
    let response = a.post("/pairings", &common::remove_pairing(&a_id));
    assert_eq!(response.status, 200, "{response:?}");
    harness.expect("stored unpairing", |note| match note {
        Note::Stored { paired: false } => Some(()),
        _ => None,
    });
    harness.expect("PairingsChanged", |note| match note {
        Note::Event(Event::PairingsChanged { paired: false }) => Some(()),
        _ => None,
    });
    harness.expect("announcement of sf=1", |note| match note {
        Note::Announced { paired: false, .. } => Some(()),
        _ => None,
    });
    assert!(
        a.closed_within(Duration::from_secs(5)),
        "A's session closed"
    );
    let (outcome, _) = harness.stop();
    assert!(!outcome.paired_at_stop);
}

#[test]
fn pipelined_requests_survive_a_full_socket() {
    const REQUESTS: usize = 1500;
    let mut harness = start::<2>(config(), 1);
    let mut a = Controller::verified(&mut harness, 1);

    // Write every request from another thread, and read nothing for a while, so that the
    // accessory's socket fills and its output waits in the pending buffer and the core.
    let mut writer = a.stream.try_clone().unwrap();
    let mut wire = Vec::new();
    for _ in 0..REQUESTS {
        wire.extend(a.peer.wire(b"GET /accessories HTTP/1.1\r\n\r\n"));
    }
    let writing = thread::spawn(move || writer.write_all(&wire));
    thread::sleep(Duration::from_millis(500));

    let deadline = StdInstant::now() + Duration::from_secs(60);
    let mut first = None;
    for n in 0..REQUESTS {
        assert!(StdInstant::now() < deadline, "only {n} responses in time");
        let response = a.response();
        assert_eq!(response.status, 200, "response {n}");
        // Every response is the same, byte for byte.
        match &first {
            None => first = Some(response.body),
            Some(body) => assert_eq!(&response.body, body, "response {n}"),
        }
    }
    eprintln!("body {} bytes", first.as_ref().map_or(0, Vec::len));
    writing.join().unwrap().unwrap();
    let short = harness.short_sends.load(Ordering::Relaxed);
    eprintln!("{short} short sends");
    assert!(
        short > 0,
        "the socket never filled; the test proves less than it should"
    );
    assert_eq!(a.read_on(), "false");
    drop(a);
    harness.stop();
}
