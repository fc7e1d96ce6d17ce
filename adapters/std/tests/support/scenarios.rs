//! Scenarios every runtime adapter must pass, over real loopback TCP with a real
//! controller. Each adapter's test file implements [`Runtime`] and calls these.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::OwnedValue;
use hap_core::server::{CompleteError, Config, Event, HapStatus, Token};
use hap_std::store::MemoryStore;
use hap_std::{Bind, Options, Setup};

use super::controller::Controller;

pub const CODE: &str = "518-08-582";

/// What a scenario needs from an adapter.
pub trait Runtime {
    type Running;
    fn serve(
        setup: Setup,
        database: hap_core::database::Database<'static>,
        options: Options,
    ) -> Self::Running;
    fn address(running: &Self::Running) -> SocketAddr;
    fn set_value(running: &Self::Running, aid: u64, iid: u64, value: OwnedValue) -> bool;
    fn next_event(running: &Self::Running, limit: Duration) -> Option<Event>;
    fn connection_count(running: &Self::Running) -> usize;
    fn complete_write(
        running: &Self::Running,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError>;
    fn complete_read(
        running: &Self::Running,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError>;
    /// Shuts down and waits; returns whether the event stream ended.
    fn shut_down(running: Self::Running) -> bool;
}

/// A light on 127.0.0.1 with a fresh in-memory store. Returns the On characteristic's
/// aid and iid.
pub fn start<R: Runtime>(config: Config) -> (R::Running, u64, u64) {
    start_on::<R>(config, Bind::Only(Ipv4Addr::LOCALHOST.into()))
}

/// [`start`], listening where `bind` says.
pub fn start_on<R: Runtime>(config: Config, bind: Bind) -> (R::Running, u64, u64) {
    start_with::<R>(|options| {
        options.bind = bind;
        options.config = config;
    })
}

/// A light on a free port, with the options `configure` sets.
pub fn start_with<R: Runtime>(configure: impl FnOnce(&mut Options)) -> (R::Running, u64, u64) {
    let store = MemoryStore::default();
    let mut setup =
        Setup::load_or_create(Box::new(store), Some(CODE.parse().unwrap()), None).unwrap();
    let mut builder = DatabaseBuilder::new(setup.ids());
    let aid = builder.accessory(
        "light",
        &AccessoryInfo::new("Test Light", "Acme", "L1", "1", "1.0"),
    );
    let on = builder
        .service(&s::LIGHTBULB)
        .primary()
        .characteristic(&c::BRIGHTNESS)
        .iid_of(&c::ON)
        .unwrap();
    let database = builder.build().unwrap();
    let mut options = Options::new("Test Light", "L1", Category::LIGHTBULB);
    options.bind = Bind::Only(Ipv4Addr::LOCALHOST.into());
    options.port = 0;
    configure(&mut options);
    (R::serve(setup, database, options), aid, on)
}

fn wait_for_write<R: Runtime>(running: &R::Running, aid: u64, iid: u64) -> OwnedValue {
    for _ in 0..20 {
        match R::next_event(running, Duration::from_secs(5)) {
            Some(Event::Write {
                aid: a,
                iid: i,
                value,
                ..
            }) if a == aid && i == iid => return value,
            Some(_) => continue,
            None => break,
        }
    }
    panic!("no write event for {aid}.{iid}");
}

/// Pair, verify, read, write, and hear events on a second connection, then shut down.
pub fn pairs_reads_writes_and_pushes_events<R: Runtime>() {
    let (running, aid, on) = start::<R>(Config::default());
    let address = R::address(&running);

    let mut setup = Controller::connect(address, 1);
    let pairing = setup.pair_setup(CODE);

    let mut writer = Controller::connect(address, 1);
    writer.pair_verify(&pairing);
    let accessories = writer.get("/accessories");
    assert_eq!(accessories.status, 200);
    assert!(
        accessories.text().contains("\"type\":\"43\""),
        "{}",
        accessories.text()
    );

    let mut listener = Controller::connect(address, 1);
    listener.pair_verify(&pairing);
    let subscribe = listener.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{on},"ev":true}}]}}"#),
    );
    assert_eq!(subscribe.status, 204, "{}", subscribe.text());

    let write = writer.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{on},"value":true}}]}}"#),
    );
    assert_eq!(write.status, 204, "{}", write.text());
    assert_eq!(
        wait_for_write::<R>(&running, aid, on),
        OwnedValue::Bool(true)
    );
    let event = listener
        .next_message(Duration::from_secs(5))
        .expect("an event for the write");
    assert!(
        event.event && event.text().contains("\"value\":true"),
        "{event:?}"
    );

    // The application's own change reaches the subscriber too.
    assert!(R::set_value(&running, aid, on, OwnedValue::Bool(false)));
    let event = listener
        .next_message(Duration::from_secs(5))
        .expect("an event for set_value");
    assert!(
        event.event && event.text().contains("\"value\":false"),
        "{event:?}"
    );

    let read = writer.get(&format!("/characteristics?id={aid}.{on}"));
    assert_eq!(read.status, 200);
    assert!(read.text().contains("\"value\":false"), "{}", read.text());

    assert!(R::shut_down(running), "the event stream ends at shutdown");
    assert!(listener.closed_within(Duration::from_secs(5)));
    assert!(writer.closed_within(Duration::from_secs(5)));
}

/// With two connections allowed, a third is closed at once and the first two still
/// work.
pub fn extra_connection_is_refused_cleanly<R: Runtime>() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let (running, _, _) = start::<R>(config);
    let address = R::address(&running);
    let mut first = Controller::connect(address, 1);
    let mut second = Controller::connect(address, 2);
    // Unverified, a protected resource answers 470: the connections are served.
    assert_eq!(first.get("/accessories").status, 470);
    assert_eq!(second.get("/accessories").status, 470);
    assert_eq!(R::connection_count(&running), 2);

    let mut third = Controller::connect(address, 3);
    assert!(
        third.closed_within(Duration::from_secs(5)),
        "the extra connection is closed"
    );
    assert_eq!(first.get("/accessories").status, 470);
    assert_eq!(second.get("/accessories").status, 470);

    // A slot frees when a connection ends.
    drop(first);
    for _ in 0..250 {
        if R::connection_count(&running) < 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut fourth = Controller::connect(address, 4);
    assert_eq!(fourth.get("/accessories").status, 470);
    R::shut_down(running);
}

/// No timer closes an idle connection. When every slot is taken, a newcomer evicts the
/// connection idle longest, if it has been idle for `idle_eviction` (HomeKitADK,
/// `HAPIPAccessoryServer.c`); bytes that never make a request still count as activity.
pub fn idle_connection_is_evicted_only_for_a_newcomer<R: Runtime>() {
    let idle_eviction = Duration::from_millis(300);
    let config = Config {
        max_connections: 2,
        idle_eviction,
        ..Config::default()
    };
    let (running, _, _) = start::<R>(config);
    let mut idle = Controller::connect(R::address(&running), 1);
    let mut dribbling = Controller::connect(R::address(&running), 2);
    // Both idle, one in silence and one a byte at a time, for three eviction ages: nothing
    // needs their slots, so both stay.
    for byte in b"GET /acc" {
        dribbling.send_raw(&[*byte]).unwrap();
        std::thread::sleep(idle_eviction / 8);
    }
    assert!(
        !idle.closed_within(Duration::from_millis(100)),
        "not closed while nobody needs its slot"
    );
    // A newcomer takes the silent one's place; the dribbling one spoke too recently.
    let mut newcomer = Controller::connect(R::address(&running), 3);
    assert!(
        idle.closed_within(Duration::from_secs(5)),
        "the idle connection made room"
    );
    assert_eq!(
        newcomer.get("/accessories").status,
        470,
        "the newcomer is served"
    );
    assert!(!dribbling.closed_within(Duration::from_millis(100)));
    R::shut_down(running);
}

/// Whether this machine has `::1`; without it the IPv6 halves of the scenarios below are
/// skipped, and say so.
fn has_ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// `address`'s port on `ip`.
fn at(ip: impl Into<IpAddr>, address: SocketAddr) -> SocketAddr {
    SocketAddr::new(ip.into(), address.port())
}

/// By default the light listens on `[::]` for both families: a controller pairs over
/// IPv4 and then verifies and reads over IPv6.
pub fn default_bind_serves_ipv4_and_ipv6<R: Runtime>() {
    let (running, _, _) = start_on::<R>(Config::default(), Bind::default());
    let address = R::address(&running);
    let mut setup = Controller::connect(at(Ipv4Addr::LOCALHOST, address), 1);
    let pairing = setup.pair_setup(CODE);
    if has_ipv6_loopback() {
        assert_eq!(address.ip(), IpAddr::from(Ipv6Addr::UNSPECIFIED));
        let mut home = Controller::connect(at(Ipv6Addr::LOCALHOST, address), 1);
        home.pair_verify(&pairing);
        assert_eq!(home.get("/accessories").status, 200);
    } else {
        // Listening on `[::]` or, without IPv6 at all, on `0.0.0.0`: IPv4 works either way.
        eprintln!("no IPv6 loopback on this machine: {address} checked over IPv4 only");
    }
    let mut home = Controller::connect(at(Ipv4Addr::LOCALHOST, address), 1);
    home.pair_verify(&pairing);
    assert_eq!(home.get("/accessories").status, 200);
    R::shut_down(running);
}

/// Bound to an address, the light listens on that one only: 127.0.0.1 refuses `::1`.
pub fn an_address_is_the_only_one_served<R: Runtime>() {
    let (running, _, _) = start::<R>(Config::default());
    let address = R::address(&running);
    assert_eq!(address.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
    if has_ipv6_loopback() {
        let refused = TcpStream::connect(at(Ipv6Addr::LOCALHOST, address));
        assert_eq!(
            refused.map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "::1 is refused"
        );
    } else {
        eprintln!("no IPv6 loopback on this machine: ::1 not checked");
    }
    // Unverified, a protected resource answers 470: the connection is served.
    assert_eq!(
        Controller::connect(address, 1).get("/accessories").status,
        470
    );
    R::shut_down(running);
}

/// The accepted socket has keepalive with `hap_std::socket`'s idle time: Linux shows its
/// keepalive timer in `/proc/net/tcp` and `/proc/net/tcp6` (timer 2, the time left in
/// hundredths of a second), and the system default would leave two hours.
#[cfg(target_os = "linux")]
pub fn accepted_connections_have_keepalive<R: Runtime>() {
    let (running, _, _) = start_on::<R>(Config::default(), Bind::default());
    let address = R::address(&running);
    for ip in [
        IpAddr::from(Ipv4Addr::LOCALHOST),
        Ipv6Addr::LOCALHOST.into(),
    ] {
        if ip.is_ipv6() && !has_ipv6_loopback() {
            eprintln!("no IPv6 loopback on this machine: ::1 not checked");
            continue;
        }
        let mut controller = Controller::connect(at(ip, address), 1);
        // Answered, so the adapter has set the socket up.
        assert_eq!(controller.get("/accessories").status, 470);
        let client = controller.socket().local_addr().unwrap().port();
        let mut timer = None;
        for _ in 0..100 {
            timer = accepted_timer(address.port(), client);
            // Until the answer is acknowledged the retransmission timer shows instead.
            if timer.is_some_and(|(kind, _)| kind == 2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let (kind, left) = timer.unwrap_or_else(|| panic!("no socket of {ip} in /proc/net"));
        assert_eq!(
            kind, 2,
            "the keepalive timer runs on the connection from {ip}"
        );
        let idle = hap_std::socket::KEEPALIVE_IDLE.as_millis() as u64 / 10;
        assert!(
            left > 0 && left <= idle,
            "{left} hundredths of a second left, more than the idle time"
        );
    }
    R::shut_down(running);
}

/// The timer (kind, hundredths of a second left) of the established socket on local port
/// `server` connected to remote port `client`.
#[cfg(target_os = "linux")]
fn accepted_timer(server: u16, client: u16) -> Option<(u8, u64)> {
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let table = std::fs::read_to_string(file).unwrap_or_default();
        for line in table.lines().skip(1) {
            let row: Vec<&str> = line.split_whitespace().collect();
            // Slot, local and remote address, state (01: established), queues, timer.
            if let [_, local, remote, "01", _, timer, ..] = row[..] {
                if port(local) == Some(server) && port(remote) == Some(client) {
                    let (kind, left) = timer.split_once(':')?;
                    let kind = u8::from_str_radix(kind, 16).ok()?;
                    return Some((kind, u64::from_str_radix(left, 16).ok()?));
                }
            }
        }
    }
    None
}

/// The next event that `want` picks, skipping others (verification, pairing changes).
fn wait_for<R: Runtime, T>(running: &R::Running, mut want: impl FnMut(Event) -> Option<T>) -> T {
    for _ in 0..20 {
        match R::next_event(running, Duration::from_secs(5)) {
            Some(event) => {
                if let Some(found) = want(event) {
                    return found;
                }
            }
            None => break,
        }
    }
    panic!("no such event within 20 events or 5 s");
}

/// A light whose Brightness is confirmed by the application and whose Saturation is
/// read on demand, through the adapter's handle: confirm, fail, a stale token.
pub fn the_application_confirms_and_fails_through_its_handle<R: Runtime>() {
    let mut setup = Setup::load_or_create(
        Box::new(MemoryStore::default()),
        Some(CODE.parse().unwrap()),
        None,
    )
    .unwrap();
    let mut builder = DatabaseBuilder::new(setup.ids());
    let aid = builder.accessory(
        "light",
        &AccessoryInfo::new("Test Light", "Acme", "L1", "1", "1.0"),
    );
    let light = builder
        .service(&s::LIGHTBULB)
        .primary()
        .configure(&c::BRIGHTNESS, |def| def.confirmed())
        .configure(&c::SATURATION, |def| def.on_demand());
    let brightness = light.iid_of(&c::BRIGHTNESS).unwrap();
    let saturation = light.iid_of(&c::SATURATION).unwrap();
    let database = builder.build().unwrap();
    let mut options = Options::new("Test Light", "L1", Category::LIGHTBULB);
    options.bind = Bind::Only(Ipv4Addr::LOCALHOST.into());
    options.port = 0;
    let running = R::serve(setup, database, options);
    let address = R::address(&running);

    let pairing = Controller::connect(address, 1).pair_setup(CODE);
    let mut writer = Controller::connect(address, 1);
    writer.pair_verify(&pairing);
    let mut listener = Controller::connect(address, 1);
    listener.pair_verify(&pairing);
    let subscribe = listener.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{brightness},"ev":true}}]}}"#),
    );
    assert_eq!(subscribe.status, 204, "{}", subscribe.text());
    let write = |value: u8| {
        format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{brightness},"value":{value}}}]}}"#)
    };
    let write_request = |event: Event| match event {
        Event::WriteRequest {
            token,
            iid,
            value,
            last,
            ..
        } if iid == brightness => {
            assert!(last, "one item");
            Some((token, value))
        }
        _ => None,
    };

    // Confirmed: the writer's answer and the subscriber's event wait for the application.
    writer.send(&format!(
        "PUT /characteristics HTTP/1.1\r\nHost: x\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{}",
        write(40).len(),
        write(40)
    ).into_bytes());
    let (token, value) = wait_for::<R, _>(&running, write_request);
    assert_eq!(value, OwnedValue::Int(40));
    assert!(
        writer.next_message(Duration::from_millis(300)).is_none(),
        "nothing is answered before the application confirms"
    );
    R::complete_write(&running, token, Ok(())).expect("a live token");
    let answer = writer
        .next_message(Duration::from_secs(5))
        .expect("the answer");
    assert_eq!(answer.status, 204, "{}", answer.text());
    let event = listener
        .next_message(Duration::from_secs(5))
        .expect("an event for the confirmed write");
    assert!(
        event.event && event.text().contains("\"value\":40"),
        "{event:?}"
    );
    assert_eq!(
        R::complete_write(&running, token, Ok(())),
        Err(CompleteError::UnknownToken),
        "a completed token is stale"
    );

    // Failed: the item gets the status, the value stays, nobody hears of it.
    writer.send(&format!(
        "PUT /characteristics HTTP/1.1\r\nHost: x\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{}",
        write(10).len(),
        write(10)
    ).into_bytes());
    let (token, _) = wait_for::<R, _>(&running, write_request);
    R::complete_write(&running, token, Err(HapStatus::ServiceCommunicationFailure))
        .expect("a live token");
    let answer = writer
        .next_message(Duration::from_secs(5))
        .expect("the answer");
    assert_eq!(answer.status, 207, "{}", answer.text());
    assert!(answer.text().contains("-70402"), "{}", answer.text());
    let read = writer.get(&format!("/characteristics?id={aid}.{brightness}"));
    assert!(read.text().contains("\"value\":40"), "{}", read.text());
    assert!(
        listener.next_message(Duration::from_millis(300)).is_none(),
        "no event for a failed write"
    );

    // A read on demand, failed and then answered.
    let read_request = |event: Event| match event {
        Event::Read { token, iid, .. } if iid == saturation => Some(token),
        _ => None,
    };
    let path = format!("/characteristics?id={aid}.{saturation}");
    let get = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    writer.send(&get);
    let token = wait_for::<R, _>(&running, read_request);
    R::complete_read(&running, token, Err(HapStatus::ServiceCommunicationFailure))
        .expect("a live token");
    let answer = writer
        .next_message(Duration::from_secs(5))
        .expect("the answer");
    assert_eq!(answer.status, 207, "{}", answer.text());
    assert!(answer.text().contains("-70402"), "{}", answer.text());
    writer.send(&get);
    let token = wait_for::<R, _>(&running, read_request);
    assert_eq!(
        R::complete_write(&running, token, Ok(())),
        Err(CompleteError::WrongKind)
    );
    R::complete_read(&running, token, Ok(OwnedValue::Float(50.0))).expect("a live token");
    let answer = writer
        .next_message(Duration::from_secs(5))
        .expect("the answer");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("\"value\":50"), "{}", answer.text());

    assert!(R::shut_down(running));
}

/// A responder whose first `failures` announcements fail, as before the network is up;
/// it reports each attempt, and whether it succeeded.
struct FlakyResponder {
    failures: usize,
    attempts: std::sync::mpsc::Sender<(std::time::Instant, bool)>,
}

impl hap_core::mdns::Responder for FlakyResponder {
    type Error = String;

    fn announce(&mut self, _: &hap_core::mdns::Advertisement<'_>) -> Result<(), Self::Error> {
        let failed = self.failures > 0;
        self.failures = self.failures.saturating_sub(1);
        let _ = self.attempts.send((std::time::Instant::now(), !failed));
        if failed {
            Err("network unreachable".into())
        } else {
            Ok(())
        }
    }

    fn goodbye(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// An announcement that fails at start is retried [`ANNOUNCE_RETRY`] later although no
/// connection is ever opened, and announced once it succeeds.
///
/// [`ANNOUNCE_RETRY`]: hap_core::mdns::ANNOUNCE_RETRY
pub fn a_failed_announcement_is_retried_without_connections<R: Runtime>() {
    use hap_core::mdns::ANNOUNCE_RETRY;
    let (attempts, attempted) = std::sync::mpsc::channel();
    let responder = FlakyResponder {
        failures: 2,
        attempts,
    };
    let (running, _, _) = start_with::<R>(|options| options.announcer = Some(Box::new(responder)));
    // Generous for a loaded machine, yet well short of a third retry period.
    let limit = ANNOUNCE_RETRY + Duration::from_millis(800);
    let (first, ok) = attempted.recv_timeout(limit).expect("announced at start");
    assert!(!ok, "the first announcement fails");
    let (second, ok) = attempted.recv_timeout(limit).expect("retried");
    assert!(!ok, "the second announcement fails too");
    let (third, ok) = attempted.recv_timeout(limit).expect("retried again");
    assert!(ok, "the third announcement succeeds");
    for (earlier, later) in [(first, second), (second, third)] {
        let waited = later - earlier;
        // The host's clock counts whole milliseconds.
        let early = ANNOUNCE_RETRY - Duration::from_millis(2);
        assert!(
            waited >= early && waited < limit,
            "retried after {waited:?}, not {ANNOUNCE_RETRY:?}"
        );
    }
    assert_eq!(R::connection_count(&running), 0, "no connection was needed");
    assert!(
        attempted.recv_timeout(ANNOUNCE_RETRY * 2).is_err(),
        "nothing more once announced"
    );
    assert!(R::shut_down(running));
}
