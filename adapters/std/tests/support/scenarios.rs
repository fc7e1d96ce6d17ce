//! Scenarios every runtime adapter must pass, over real loopback TCP with a real
//! controller. Each adapter's test file implements [`Runtime`] and calls these.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use hap_core::catalog::{characteristic as c, service as s};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::OwnedValue;
use hap_core::server::{Config, Event};
use hap_std::store::MemoryStore;
use hap_std::{Options, Setup};

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
    /// Shuts down and waits; returns whether the event stream ended.
    fn shut_down(running: Self::Running) -> bool;
}

/// A light on 127.0.0.1 with a fresh in-memory store. Returns the On characteristic's
/// aid and iid.
pub fn start<R: Runtime>(config: Config) -> (R::Running, u64, u64) {
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
    let mut options = Options::new("Test Light", "L1", 5);
    options.bind = [127, 0, 0, 1].into();
    options.port = 0;
    options.config = config;
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
