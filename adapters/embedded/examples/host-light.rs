//! The embedded adapter on a desktop: a light served by [`hap_embedded::Accessory`], the
//! same poll loop, fixed slots and static tables that run on a microcontroller, over std
//! sockets through a minimal `embedded-nal` stack (TCP for HAP, UDP for mDNS).
//!
//! ```text
//! cargo run -p hap-embedded --example host-light -- --pin 314-15-926 --port 51827
//! ```
//!
//! It advertises itself over mDNS with the core's responder ([`hap_embedded::UdpResponder`])
//! on port 5353, which it shares with the host's own responder (Avahi, mDNSResponder), so
//! the Home app finds it to pair; `--no-mdns` turns that off, and then you pair by address
//! and port. The mDNS socket joins 224.0.0.251 and ff02::fb on every interface (or only
//! `--mdns-interface NAME`), sends with TTL 255 and loops its datagrams back to this host.
//! The addresses advertised are the host's non-loopback ones (of that interface, if
//! named), checked again every few seconds, or those given with `--address`.
//!
//! It prints, one per line: `Host Light` (or `--name`), `Setup code: XXX-XX-XXX`,
//! `listening on ADDR:PORT`, then `advertising NAME on HOST.local port PORT` when mDNS
//! starts and `advertised as NAME._hap._tcp.local on HOST.local port PORT` each time the
//! records are announced; later `mDNS: ...` lines tell of conflicts, renames and address
//! changes.
//!
//! Type `on`, `off` or `brightness N` and Enter to change the light locally; paired
//! controllers hear the change. Type `quit` to stop: it sends the mDNS goodbye, prints
//! `mDNS: goodbye sent` and `shut down`, and exits with status 0 (the end of input does
//! not stop it, so it can run with stdin closed). Its state (identity, pairings) lives in memory only: every
//! start is a new, unpaired accessory, as a device without flash storage would be.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket as StdUdpSocket,
};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant as StdInstant};

use embedded_nal::{nb, TcpClientStack, TcpErrorKind, TcpFullStack, UdpClientStack, UdpFullStack};
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::config::ConfigNumber;
use hap_core::database::{CharacteristicDef, Database, Entry, OwnedValue, ServiceDef, Slot};
use hap_core::mdns::responder::{MDNS_GROUP_V4, MDNS_GROUP_V6, MDNS_PORT};
use hap_core::mdns::{MdnsEvent, MdnsResponder, NameKind, Responder};
use hap_core::server::{Config, Event, Server};
use hap_core::setup::{setup_uri, Provisioning, SetupCode, SetupFlags};
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_embedded::{Accessory, ServiceInfo, SlotStorage, UdpResponder};
use rand_core::OsRng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

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
/// How often the host's addresses are checked for a change to advertise.
const ADDRESS_CHECK: Duration = Duration::from_secs(3);

const USAGE: &str = "usage: host-light [--pin XXX-XX-XXX] [--bind ADDR] [--port PORT] [--name NAME]
                  [--no-mdns] [--mdns-interface IFNAME] [--address ADDR]...

  --pin             the setup code (default: a random one, printed)
  --bind            the address to listen on for HAP (default 0.0.0.0)
  --port            the HAP port (default 51827; 0 lets the system choose)
  --name            the accessory's name and mDNS instance (default Host Light)
  --no-mdns         do not advertise over mDNS
  --mdns-interface  join the mDNS groups and send only on this interface
                    (default: join on every interface, send on the first non-loopback one)
  --address         an address to advertise, repeatable (default: the host's non-loopback
                    addresses, of the mDNS interface if named, checked every 3 s)

Type on, off or brightness N (0-100) and Enter to change the light locally, and quit to
withdraw the advertisement (an mDNS goodbye) and stop.";

struct Args {
    pin: Option<SetupCode>,
    bind: IpAddr,
    port: u16,
    name: String,
    mdns: bool,
    mdns_interface: Option<String>,
    addresses: Vec<IpAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        pin: None,
        bind: IpAddr::from([0, 0, 0, 0]),
        port: 51827,
        name: "Host Light".into(),
        mdns: true,
        mdns_interface: None,
        addresses: Vec::new(),
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        if flag == "--no-mdns" {
            args.mdns = false;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
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
            "--name" => {
                if value.is_empty() || value.len() > 63 {
                    return Err(bad("1 to 63 bytes".into()));
                }
                args.name = value;
            }
            "--mdns-interface" => args.mdns_interface = Some(value),
            "--address" => args
                .addresses
                .push(value.parse().map_err(|e| bad(format!("{e}")))?),
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
    let started = StdInstant::now();
    // The state policy every adapter shares. Nothing is stored here, so every start
    // creates a new accessory; a device with flash passes what it loaded instead of
    // `None`, and stores the result when `must_store` says so.
    let provisioned = Provisioning::load_or_create(None, args.pin, None, &mut rng);
    let Provisioning {
        state,
        setup_code,
        setup_id,
    } = provisioned.setup;
    let code = setup_code.ok_or("a new accessory always gets a setup code")?;
    // What a user needs to pair: the code, and the URI a QR code would carry (with the
    // setup id, which the TXT record's `sh` is derived from). The device id is printed too:
    // nothing is stored, so the output is the one place to read this accessory's identity.
    let mut identity = format!("Device id: {}", state.device_id);
    if let Some(setup_id) = &setup_id {
        let flags = SetupFlags {
            ip: true,
            ..SetupFlags::default()
        };
        let uri = setup_uri(&code, setup_id, Category::LIGHTBULB, flags);
        identity.push_str(&format!("\nSetup URI: {uri}"));
    }
    // Unique on the link, as a device would make it from its MAC address.
    let host_label: String = format!("HostLight-{}", state.device_id)
        .chars()
        .filter(|&c| c != ':')
        .collect();

    let mut values = [Slot::EMPTY; LIGHT_SLOTS];
    let mut database =
        Database::new(&LIGHT[..], &mut values[..]).map_err(|e| format!("the table: {e:?}"))?;
    for (iid, text) in [
        (3, "hap-rs"),
        (4, "HostLight"),
        (5, args.name.as_str()),
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
        mdns_interface: None,
    };
    let listen_error = |e| format!("cannot listen on {}:{}: {e:?}", args.bind, args.port);

    if !args.mdns {
        let mut accessory =
            Accessory::new(&mut stack, args.port, server, buffers).map_err(listen_error)?;
        greet(args, &code, &identity, &stack);
        println!("not advertising over mDNS (--no-mdns)");
        serve(&mut accessory, &mut stack, started, |_, _, _| None)?;
        shut_down(accessory, &mut stack, started, &mut rng);
        return Ok(());
    }

    // The advertisement names the port, so one the system would choose is chosen now.
    let port = match args.port {
        0 => TcpListener::bind((args.bind, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port(),
        port => port,
    };
    let interface = MdnsInterface::choose(args.mdns_interface.as_deref())?;
    let addresses = if args.addresses.is_empty() {
        interface.addresses()
    } else {
        args.addresses.clone()
    };
    stack.mdns_interface = Some(interface);
    let mdns = UdpResponder::open(&mut stack, &host_label, &addresses)
        .map_err(|e| format!("cannot open the mDNS socket on port {MDNS_PORT}: {e:?}"))?;
    let info = ServiceInfo {
        name: &args.name,
        model: "HostLight",
        category: Category::LIGHTBULB,
        config: ConfigNumber::default(),
        setup_id,
    };
    let mut accessory = Accessory::with_responder(&mut stack, port, server, buffers, mdns, info)
        .map_err(listen_error)?;
    greet(args, &code, &identity, &stack);
    println!(
        "advertising {} on {host_label}.local port {} at {}",
        args.name,
        accessory.port(),
        list(&addresses)
    );
    let _ = std::io::stdout().flush();

    let mut checked = StdInstant::now();
    serve(
        &mut accessory,
        &mut stack,
        started,
        |accessory, stack, now| {
            if args.addresses.is_empty() && checked.elapsed() >= ADDRESS_CHECK {
                checked = StdInstant::now();
                if let Some(interface) = &stack.mdns_interface {
                    let addresses = interface.addresses();
                    if accessory.set_addresses(&addresses) {
                        println!("mDNS: addresses now {}", list(&addresses));
                    }
                }
            }
            let mut events = Vec::new();
            let next = accessory.poll_mdns(stack, now, &mut OsRng, |event| events.push(event));
            let port = accessory.port();
            if let Some(responder) = accessory.responder_mut().responder() {
                for event in &events {
                    if let Some(line) = describe_mdns(event, responder, port) {
                        println!("{line}");
                    }
                }
            }
            next.unwrap_or_else(|e| {
                eprintln!("mDNS: {e:?}");
                None
            })
        },
    )?;
    // The goodbye goes out twice, 250 ms apart: poll until it is all sent (a second at
    // most, should the stack keep refusing).
    let mut next = accessory.withdraw_mdns(&mut stack, since(started));
    let give_up = StdInstant::now() + std::time::Duration::from_secs(1);
    while !accessory.is_mdns_withdrawn() && StdInstant::now() < give_up {
        if let Ok(Some(at)) = next {
            let wait = at.as_millis().saturating_sub(since(started).as_millis());
            std::thread::sleep(std::time::Duration::from_millis(wait.min(250)));
        }
        next = accessory.poll_mdns(&mut stack, since(started), &mut OsRng, |_| {});
    }
    match next {
        Ok(_) if accessory.is_mdns_withdrawn() => println!("mDNS: goodbye sent"),
        Ok(_) => eprintln!("mDNS: the goodbye was not finished"),
        Err(e) => eprintln!("mDNS: the goodbye failed: {e:?}"),
    }
    shut_down(accessory, &mut stack, started, &mut rng);
    Ok(())
}

/// Closes every connection; nothing is stored, so there is nothing to persist.
fn shut_down<M: Responder>(
    accessory: Accessory<'_, '_, HostStack, SLOTS, M>,
    stack: &mut HostStack,
    started: StdInstant,
    rng: &mut OsRng,
) {
    accessory.shut_down(
        stack,
        since(started),
        rng,
        &mut |_: &AccessoryState| true,
        |_| {},
    );
    println!("shut down");
}

/// The accessory's clock: milliseconds since `started`.
fn since(started: StdInstant) -> Instant {
    Instant::from_millis(started.elapsed().as_millis() as u64)
}

/// The first lines: the name, the setup code, the device id and setup URI, and where HAP
/// listens.
fn greet(args: &Args, code: &SetupCode, identity: &str, stack: &HostStack) {
    println!("{}\nSetup code: {}\n{identity}", args.name, code.as_str());
    if let Some(address) = stack.listening {
        println!("listening on {address}");
    }
    let _ = std::io::stdout().flush();
}

/// The poll loop: typed commands, the accessory, then `extra` (mDNS) with the time;
/// sleeps a tick when neither has anything due. Returns when `quit` is typed.
fn serve<M: Responder>(
    accessory: &mut Accessory<'_, '_, HostStack, SLOTS, M>,
    stack: &mut HostStack,
    started: StdInstant,
    mut extra: impl FnMut(
        &mut Accessory<'_, '_, HostStack, SLOTS, M>,
        &mut HostStack,
        Instant,
    ) -> Option<Instant>,
) -> Result<(), String> {
    // The "physical switch": typed commands reach the loop through a channel.
    let (typed, commands) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if typed.send(line).is_err() {
                break;
            }
        }
    });

    let clock = || since(started);
    // Nothing to store: the state lives in memory.
    let mut persist = |_: &AccessoryState| true;
    let mut rng = OsRng;
    loop {
        while let Ok(line) = commands.try_recv() {
            if line.trim() == "quit" {
                return Ok(());
            }
            if let Some(said) = obey(accessory, &line) {
                println!("{said}");
            }
        }
        let now = clock();
        let next = accessory
            .poll(stack, now, &mut rng, &mut persist, |event| {
                if let Some(line) = describe(&event) {
                    println!("{line}");
                }
            })
            .map_err(|e| format!("the listening socket: {e:?}"))?;
        let next_extra = extra(accessory, stack, clock());
        let next = match (next, next_extra) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let _ = std::io::stdout().flush();
        if !matches!(next, Some(next) if next <= clock()) {
            std::thread::sleep(TICK);
        }
    }
}

/// Carries out a typed command and returns the line to print.
fn obey<T: TcpFullStack, const N: usize, M: Responder>(
    accessory: &mut Accessory<'_, '_, T, N, M>,
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

/// The line to print for an mDNS event, with the names the responder has now.
fn describe_mdns(event: &MdnsEvent, responder: &MdnsResponder, port: u16) -> Option<String> {
    let instance = responder.instance_name();
    let host = responder.host_name();
    match event {
        MdnsEvent::Announced { .. } => Some(format!(
            "advertised as {instance}._hap._tcp.local on {host}.local port {port}"
        )),
        MdnsEvent::Conflict { kind, probing, .. } => Some(format!(
            "mDNS: another host claims the {} name{}",
            kind_name(*kind),
            if *probing { " (while probing)" } else { "" }
        )),
        MdnsEvent::Renamed { kind, name } => {
            Some(format!("mDNS: renamed the {} to {name}", kind_name(*kind)))
        }
        MdnsEvent::Withdrawn => Some("mDNS: withdrawn".into()),
        _ => None,
    }
}

fn kind_name(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Instance => "instance",
        NameKind::Host => "host",
    }
}

/// Addresses as `a, b, c`.
fn list(addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return "no address".into();
    }
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// A minimal `embedded-nal` stack over std's non-blocking sockets.

/// Serves `embedded-nal` sockets from `std::net`: TCP bound to one address, and UDP set
/// up for mDNS. Connecting out is not supported: an accessory only accepts.
struct HostStack {
    bind: IpAddr,
    /// Where the listener is, once listening (the port the system chose for port 0).
    listening: Option<SocketAddr>,
    /// The interfaces a UDP socket joins the mDNS groups on and sends from.
    mdns_interface: Option<MdnsInterface>,
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

// ---------------------------------------------------------------------------------------
// UDP for mDNS: what `UdpResponder` asks of a stack, done with std and socket2.

/// The interfaces mDNS runs on: the groups are joined on each, and multicast leaves
/// from one (the responder serves one interface).
struct MdnsInterface {
    /// The interface named with `--mdns-interface`, or every one.
    only: Option<String>,
    /// The IPv4 address and the index of the interface multicast leaves from.
    send_v4: Option<Ipv4Addr>,
    send_v6: Option<u32>,
}

impl MdnsInterface {
    /// The interface `name`, or every interface, sending from the first that is not a
    /// loopback (one with IPv4 if any has).
    fn choose(name: Option<&str>) -> Result<Self, String> {
        let interfaces =
            if_addrs::get_if_addrs().map_err(|e| format!("cannot list interfaces: {e}"))?;
        let sender = match name {
            Some(name) => {
                if !interfaces.iter().any(|i| i.name == name) {
                    return Err(format!("no interface named {name:?} (--mdns-interface)"));
                }
                Some(name.to_owned())
            }
            None => interfaces
                .iter()
                .filter(|i| !i.is_loopback())
                .find(|i| i.ip().is_ipv4())
                .or_else(|| interfaces.iter().find(|i| !i.is_loopback()))
                .map(|i| i.name.clone()),
        };
        let of_sender = |i: &&if_addrs::Interface| Some(&i.name) == sender.as_ref();
        Ok(Self {
            only: name.map(str::to_owned),
            send_v4: interfaces
                .iter()
                .filter(of_sender)
                .find_map(|i| match i.ip() {
                    IpAddr::V4(ip) => Some(ip),
                    IpAddr::V6(_) => None,
                }),
            send_v6: interfaces.iter().filter(of_sender).find_map(|i| i.index),
        })
    }

    /// The interfaces served, loopbacks left out unless named.
    fn interfaces(&self) -> Vec<if_addrs::Interface> {
        let all = if_addrs::get_if_addrs().unwrap_or_default();
        all.into_iter()
            .filter(|i| match &self.only {
                Some(name) => &i.name == name,
                None => !i.is_loopback(),
            })
            .collect()
    }

    /// The addresses to advertise: those of the interfaces served, IPv4 first.
    fn addresses(&self) -> Vec<IpAddr> {
        let mut addresses: Vec<IpAddr> = self.interfaces().iter().map(|i| i.ip()).collect();
        addresses.sort_by_key(|ip| ip.is_ipv6());
        addresses.dedup();
        addresses
    }

    /// A socket bound to the mDNS port for IPv4 or IPv6: shared with the host's own
    /// responder, in the group on every interface served, sending with TTL 255 from the
    /// chosen interface and looping back to this host.
    fn socket(&self, ipv6: bool, port: u16) -> std::io::Result<StdUdpSocket> {
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        let interfaces = self.interfaces();
        if ipv6 {
            socket.set_only_v6(true)?;
            socket.bind(&SockAddr::from(SocketAddr::from((
                Ipv6Addr::UNSPECIFIED,
                port,
            ))))?;
            let mut indexes: Vec<u32> = interfaces.iter().filter_map(|i| i.index).collect();
            indexes.sort_unstable();
            indexes.dedup();
            for index in indexes {
                // An interface without IPv6 multicast refuses; the others still serve.
                if let Err(e) = socket.join_multicast_v6(&MDNS_GROUP_V6, index) {
                    eprintln!("mDNS: cannot join {MDNS_GROUP_V6} on interface {index}: {e}");
                }
            }
            if let Some(index) = self.send_v6 {
                socket.set_multicast_if_v6(index)?;
            }
            socket.set_multicast_hops_v6(255)?;
            socket.set_unicast_hops_v6(255)?;
            socket.set_multicast_loop_v6(true)?;
        } else {
            socket.bind(&SockAddr::from(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                port,
            ))))?;
            for interface in &interfaces {
                if let IpAddr::V4(ip) = interface.ip() {
                    if let Err(e) = socket.join_multicast_v4(&MDNS_GROUP_V4, &ip) {
                        eprintln!(
                            "mDNS: cannot join {MDNS_GROUP_V4} on {}: {e}",
                            interface.name
                        );
                    }
                }
            }
            if let Some(ip) = self.send_v4 {
                socket.set_multicast_if_v4(&ip)?;
            }
            socket.set_multicast_ttl_v4(255)?;
            socket.set_ttl_v4(255)?;
            socket.set_multicast_loop_v4(true)?;
        }
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }
}

/// A UDP socket of [`HostStack`]: one std socket per family once bound, since the
/// responder sends to both groups. A family the host lacks has none.
enum HostUdpSocket {
    New,
    Bound {
        v4: Option<StdUdpSocket>,
        v6: Option<StdUdpSocket>,
    },
}

impl UdpClientStack for HostStack {
    type UdpSocket = HostUdpSocket;
    type Error = HostError;

    fn socket(&mut self) -> Result<HostUdpSocket, HostError> {
        Ok(HostUdpSocket::New)
    }

    fn connect(&mut self, _: &mut HostUdpSocket, _: SocketAddr) -> Result<(), HostError> {
        Err(unsupported("connecting out"))
    }

    fn send(&mut self, _: &mut HostUdpSocket, _: &[u8]) -> nb::Result<(), HostError> {
        Err(nb::Error::Other(unsupported("sending without an address")))
    }

    fn receive(
        &mut self,
        socket: &mut HostUdpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<(usize, SocketAddr), HostError> {
        let HostUdpSocket::Bound { v4, v6 } = socket else {
            return Err(nb::Error::Other(unsupported(
                "receiving on a socket not bound",
            )));
        };
        for family in [v4, v6].into_iter().flatten() {
            match family.recv_from(buffer) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                received => return non_blocking(received),
            }
        }
        Err(nb::Error::WouldBlock)
    }

    fn close(&mut self, _socket: HostUdpSocket) -> Result<(), HostError> {
        Ok(())
    }
}

impl UdpFullStack for HostStack {
    fn bind(&mut self, socket: &mut HostUdpSocket, port: u16) -> Result<(), HostError> {
        let interface = self
            .mdns_interface
            .as_ref()
            .ok_or_else(|| unsupported("UDP sockets other than mDNS"))?;
        let v4 = interface.socket(false, port);
        let v6 = interface.socket(true, port);
        if let (Err(e), Err(_)) = (&v4, &v6) {
            return Err(HostError(std::io::Error::new(e.kind(), e.to_string())));
        }
        for (family, result) in [("IPv4", &v4), ("IPv6", &v6)] {
            if let Err(e) = result {
                eprintln!("mDNS: no {family} socket: {e}");
            }
        }
        *socket = HostUdpSocket::Bound {
            v4: v4.ok(),
            v6: v6.ok(),
        };
        Ok(())
    }

    fn send_to(
        &mut self,
        socket: &mut HostUdpSocket,
        remote: SocketAddr,
        buffer: &[u8],
    ) -> nb::Result<(), HostError> {
        let HostUdpSocket::Bound { v4, v6 } = socket else {
            return Err(nb::Error::Other(unsupported(
                "sending on a socket not bound",
            )));
        };
        let family = if remote.is_ipv4() { v4 } else { v6 };
        // A family this host lacks: nobody there to hear it.
        let Some(family) = family else {
            return Ok(());
        };
        non_blocking(family.send_to(buffer, remote)).map(|_| ())
    }
}
