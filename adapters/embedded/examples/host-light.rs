//! The embedded adapter on a desktop: a light served by [`hap_embedded::Accessory`], the
//! same poll loop, fixed slots and static tables that run on a microcontroller, over std
//! sockets through a minimal `embedded-nal` stack.
//!
//! ```text
//! cargo run -p hap-embedded --example host-light -- --pin 314-15-926 --port 51827
//! ```
//!
//! Type `on`, `off` or `brightness N` and Enter to change the light locally; paired
//! controllers hear the change. It does not advertise over mDNS, so pair by address and
//! port. Its state (identity, pairings) lives in memory only: every start is a new,
//! unpaired accessory, as a device without flash storage would be.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant as StdInstant};

use embedded_nal::{nb, TcpClientStack, TcpErrorKind, TcpFullStack};
use hap_core::catalog::{characteristic as c, service as s};
use hap_core::database::{CharacteristicDef, Database, Entry, OwnedValue, ServiceDef, Slot};
use hap_core::server::{Config, Event, Server};
use hap_core::setup::{Provisioning, SetupCode};
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_embedded::{Accessory, SlotStorage};
use rand_core::OsRng;

/// The light, as a microcontroller would hold it: a `static` table.
static LIGHT: [Entry<'static>; 13] = [
    Entry::Accessory(1),
    Entry::Service(ServiceDef::new(1, &s::ACCESSORY_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(2, &c::IDENTIFY)),
    Entry::Characteristic(CharacteristicDef::new(3, &c::MANUFACTURER)),
    Entry::Characteristic(CharacteristicDef::new(4, &c::MODEL)),
    Entry::Characteristic(CharacteristicDef::new(5, &c::NAME)),
    Entry::Characteristic(CharacteristicDef::new(6, &c::SERIAL_NUMBER)),
    Entry::Characteristic(CharacteristicDef::new(7, &c::FIRMWARE_REVISION)),
    Entry::Service(ServiceDef::new(8, &s::LIGHTBULB).as_primary()),
    Entry::Characteristic(CharacteristicDef::new(9, &c::ON)),
    Entry::Characteristic(CharacteristicDef::new(10, &c::BRIGHTNESS)),
    // HAP Protocol Information, which iOS expects on the primary accessory; the database
    // fills in its Version, 1.1.0.
    Entry::Service(ServiceDef::new(11, &s::PROTOCOL_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(12, &c::VERSION)),
];
/// One value slot per characteristic of [`LIGHT`].
const LIGHT_SLOTS: usize = 9;
const AID: u64 = 1;
const ON: u64 = 9;
const BRIGHTNESS: u64 = 10;

/// How many connections are served at once.
const SLOTS: usize = 4;
/// How long the loop sleeps when nothing is due: `embedded-nal` reports no readiness.
const TICK: Duration = Duration::from_millis(2);

const USAGE: &str = "usage: host-light [--pin XXX-XX-XXX] [--bind ADDR] [--port PORT]

Type on, off or brightness N (0-100) and Enter to change the light locally.";

struct Args {
    pin: Option<SetupCode>,
    bind: IpAddr,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        pin: None,
        bind: IpAddr::from([0, 0, 0, 0]),
        port: 51827,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let bad = |detail: String| format!("invalid {flag} {value:?}: {detail}\n\n{USAGE}");
        match flag.as_str() {
            "--pin" => {
                args.pin =
                    Some(value.parse().map_err(|e| {
                        bad(format!("{e:?}; expected XXX-XX-XXX, not a trivial code"))
                    })?)
            }
            "--bind" => args.bind = value.parse().map_err(|e| bad(format!("{e}")))?,
            "--port" => args.port = value.parse().map_err(|e| bad(format!("{e}")))?,
            _ => return Err(format!("unknown flag {flag:?}\n\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("host-light: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut rng = OsRng;
    // The state policy every adapter shares. Nothing is stored here, so every start
    // creates a new accessory; a device with flash passes what it loaded instead of
    // `None`, and stores the result when `must_store` says so.
    let provisioned = Provisioning::load_or_create(None, args.pin, None, &mut rng);
    let Provisioning {
        state, setup_code, ..
    } = provisioned.setup;
    let code = setup_code.ok_or("a new accessory always gets a setup code")?;

    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut database =
        Database::new(&LIGHT[..], &mut values[..]).map_err(|e| format!("the table: {e:?}"))?;
    for (iid, text) in [
        (3, "hap-rs"),
        (4, "HostLight"),
        (5, "Host Light"),
        (6, "HL-0001"),
        (7, "0.1.0"),
    ] {
        let value = OwnedValue::String(text.try_into().map_err(|_| "a long name")?);
        database
            .set(AID, iid, value)
            .map_err(|e| format!("characteristic {iid}: {e}"))?;
    }
    let server = Server::new(state, database, Config::default());

    let mut storage: [SlotStorage<4096, 1024, 4096, 16>; SLOTS] =
        std::array::from_fn(|_| SlotStorage::new());
    let buffers = storage.each_mut().map(SlotStorage::buffers);
    let mut stack = HostStack {
        bind: args.bind,
        listening: None,
    };
    let mut accessory = Accessory::new(&mut stack, args.port, server, buffers)
        .map_err(|e| format!("cannot listen on {}:{}: {e:?}", args.bind, args.port))?;
    println!("Host Light\nSetup code: {}", code.as_str());
    if let Some(address) = stack.listening {
        println!("listening on {address}");
    }
    let _ = std::io::stdout().flush();

    // The "physical switch": typed commands reach the loop through a channel.
    let (typed, commands) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if typed.send(line).is_err() {
                break;
            }
        }
    });

    let started = StdInstant::now();
    let clock = || Instant::from_millis(started.elapsed().as_millis() as u64);
    // Nothing to store: the state lives in memory.
    let mut persist = |_: &AccessoryState| true;
    loop {
        while let Ok(line) = commands.try_recv() {
            if let Some(said) = obey(&mut accessory, &line) {
                println!("{said}");
            }
        }
        let now = clock();
        let next = accessory
            .poll(&mut stack, now, &mut rng, &mut persist, |event| {
                if let Some(line) = describe(&event) {
                    println!("{line}");
                }
            })
            .map_err(|e| format!("the listening socket: {e:?}"))?;
        if !matches!(next, Some(next) if next <= clock()) {
            std::thread::sleep(TICK);
        }
    }
}

/// Carries out a typed command and returns the line to print.
fn obey<T: TcpFullStack, const N: usize>(
    accessory: &mut Accessory<'_, '_, T, N>,
    line: &str,
) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (iid, value) = match words.as_slice() {
        [] => return None,
        ["on"] => (ON, OwnedValue::Bool(true)),
        ["off"] => (ON, OwnedValue::Bool(false)),
        ["brightness", n] => match n.parse::<i32>() {
            Ok(n) if (0..=100).contains(&n) => (BRIGHTNESS, OwnedValue::Int(n)),
            _ => return Some(format!("brightness must be 0 to 100, not {n:?}")),
        },
        _ => return Some("commands: on, off, brightness N".into()),
    };
    Some(match accessory.set_value(AID, iid, value.clone()) {
        Ok(_) => format!("{} (local)", describe_value(iid, &value)?),
        Err(e) => format!("cannot set: {e}"),
    })
}

/// The line to print for an event, if it deserves one.
fn describe(event: &Event) -> Option<String> {
    match event {
        Event::Write {
            aid: AID,
            iid,
            value,
            ..
        } => describe_value(*iid, value),
        Event::Identify => Some("Identify: blink blink".into()),
        Event::PairingsChanged { paired: true } => Some("Paired".into()),
        Event::PairingsChanged { paired: false } => Some("Unpaired; ready to pair again".into()),
        _ => None,
    }
}

fn describe_value(iid: u64, value: &OwnedValue) -> Option<String> {
    match (iid, value) {
        (ON, OwnedValue::Bool(on)) => Some(format!("Light {}", if *on { "ON" } else { "OFF" })),
        (BRIGHTNESS, OwnedValue::Int(n)) => Some(format!("Brightness {n}%")),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// A minimal `embedded-nal` stack over std's non-blocking sockets.

/// Serves `embedded-nal` sockets from `std::net`, bound to one address. Connecting out
/// is not supported: an accessory only accepts.
struct HostStack {
    bind: IpAddr,
    /// Where the listener is, once listening (the port the system chose for port 0).
    listening: Option<SocketAddr>,
}

/// A socket of [`HostStack`], through its life.
enum HostSocket {
    New,
    Bound(u16),
    Listening(TcpListener),
    Open(TcpStream),
}

/// An I/O error of [`HostStack`].
#[derive(Debug)]
struct HostError(std::io::Error);

impl embedded_nal::TcpError for HostError {
    fn kind(&self) -> TcpErrorKind {
        match self.0.kind() {
            ErrorKind::BrokenPipe
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

fn unsupported(what: &str) -> HostError {
    HostError(std::io::Error::new(ErrorKind::Unsupported, what.to_owned()))
}

/// Turns a non-blocking result into `nb`'s form.
fn non_blocking<T>(result: std::io::Result<T>) -> nb::Result<T, HostError> {
    result.map_err(|e| match e.kind() {
        ErrorKind::WouldBlock => nb::Error::WouldBlock,
        _ => nb::Error::Other(HostError(e)),
    })
}

impl TcpClientStack for HostStack {
    type TcpSocket = HostSocket;
    type Error = HostError;

    fn socket(&mut self) -> Result<HostSocket, HostError> {
        Ok(HostSocket::New)
    }

    fn connect(&mut self, _: &mut HostSocket, _: SocketAddr) -> nb::Result<(), HostError> {
        Err(nb::Error::Other(unsupported("connecting out")))
    }

    fn send(&mut self, socket: &mut HostSocket, buffer: &[u8]) -> nb::Result<usize, HostError> {
        match socket {
            HostSocket::Open(stream) => non_blocking(stream.write(buffer)),
            _ => Err(nb::Error::Other(unsupported(
                "sending on a socket not open",
            ))),
        }
    }

    fn receive(
        &mut self,
        socket: &mut HostSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, HostError> {
        match socket {
            HostSocket::Open(stream) => non_blocking(stream.read(buffer)),
            _ => Err(nb::Error::Other(unsupported(
                "receiving on a socket not open",
            ))),
        }
    }

    fn close(&mut self, _socket: HostSocket) -> Result<(), HostError> {
        // Dropping a std socket closes it.
        Ok(())
    }
}

impl TcpFullStack for HostStack {
    fn bind(&mut self, socket: &mut HostSocket, port: u16) -> Result<(), HostError> {
        *socket = HostSocket::Bound(port);
        Ok(())
    }

    fn listen(&mut self, socket: &mut HostSocket) -> Result<(), HostError> {
        let HostSocket::Bound(port) = *socket else {
            return Err(unsupported("listening on a socket not bound"));
        };
        let listener = TcpListener::bind((self.bind, port)).map_err(HostError)?;
        listener.set_nonblocking(true).map_err(HostError)?;
        self.listening = listener.local_addr().ok();
        *socket = HostSocket::Listening(listener);
        Ok(())
    }

    fn accept(
        &mut self,
        socket: &mut HostSocket,
    ) -> nb::Result<(HostSocket, SocketAddr), HostError> {
        let HostSocket::Listening(listener) = socket else {
            return Err(nb::Error::Other(unsupported(
                "accepting on a socket not listening",
            )));
        };
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(nb::Error::WouldBlock),
            // A connection that failed before it was accepted (reset, aborted) or too
            // many open files: the listener itself is fine, so try again on a later poll.
            Err(e) => {
                eprintln!("accept: {e}");
                return Err(nb::Error::WouldBlock);
            }
        };
        // An accepted socket does not inherit the listener's non-blocking flag; and
        // responses leave in one write each, so don't hold them back for Nagle.
        if let Err(e) = stream.set_nonblocking(true).and(stream.set_nodelay(true)) {
            eprintln!("accept: {e}; dropping the connection from {peer}");
            return Err(nb::Error::WouldBlock);
        }
        Ok((HostSocket::Open(stream), peer))
    }
}
