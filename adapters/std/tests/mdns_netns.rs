//! `MdnsResponder` seen by an independent mDNS browser (`mdns-sd`), inside a network
//! namespace this test creates, so that no multicast leaves the machine.
//!
//! The test runs itself twice more inside the namespace (see `support/netns.rs`): once as
//! the responder, once as the browser. They step through the scenario with signal files:
//!
//! 1. the responder announces the accessory, unpaired, with `c#=1`;
//! 2. after its announcements are over, the browser starts, so it finds the accessory
//!    only through the answers to its queries, and records what it resolved;
//! 3. the browser asks for a re-announcement: the responder announces it paired
//!    (`sf=0`) with `c#=2`, and the browser records the update;
//! 4. the browser asks for a goodbye, and waits for the instance to be removed.
//!
//! The test itself checks what the browser recorded. A second test starts a responder
//! before its link is up, and changes the link's address (see its docs). Needs root, to
//! create the namespaces.

#[path = "support/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::time::Duration;

use hap_core::mdns::{Advertisement, Responder};
use hap_core::setup::setup_hash_base64;
use hap_std::mdns::{MdnsConfig, MdnsResponder};
use netns::{Browser, Found, Namespace, Scratch};

/// This test's name, for re-running it in a child process.
const TEST_NAME: &str = "hap_service_is_browsed_announced_and_withdrawn_in_a_namespace";

const SERVICE: &str = "_hap._tcp.local.";
const INSTANCE: &str = "Test Light";
const FULLNAME: &str = "Test Light._hap._tcp.local.";
const DEVICE_ID: &str = "12:34:56:78:9A:BC";
const SETUP_ID: &str = "7OSX";

/// The longest wait for each step.
const STEP: Duration = Duration::from_secs(10);

/// How long the probes and announcements of the responder last (probes for up to
/// 1 s, then announcements 0, 1 and 3 s after), with a margin.
const ANNOUNCEMENTS_OVER: Duration = Duration::from_millis(5000);

// The signal files, in the scratch directory.
const ANNOUNCED: &str = "announced";
const REANNOUNCE: &str = "reannounce";
const REANNOUNCED: &str = "reannounced";
const GOODBYE: &str = "goodbye";
const FOUND_FIRST: &str = "found-first";
const FOUND_UPDATED: &str = "found-updated";
const REMOVED: &str = "removed";

fn advertisement(paired: bool, config_number: u16) -> Advertisement<'static> {
    Advertisement {
        name: INSTANCE,
        port: 51826,
        model: "VirtualLight",
        device_id: DEVICE_ID.parse().unwrap(),
        config_number,
        category: hap_core::catalog::Category::LIGHTBULB,
        paired,
        setup_id: Some(SETUP_ID.parse().unwrap()),
    }
}

#[test]
fn hap_service_is_browsed_announced_and_withdrawn_in_a_namespace() {
    match netns::role().as_deref() {
        None => run_test(),
        Some("responder") => run_responder(),
        Some("browser") => run_browser(),
        Some(other) => panic!("unknown role {other:?}"),
    }
}

/// The test: starts both children in a new namespace and checks what the browser saw.
fn run_test() {
    let namespace = Namespace::create();
    let scratch = Scratch::new();
    let dir = scratch.path();

    let mut responder = namespace.spawn_test(TEST_NAME, "responder", &scratch);
    if !netns::wait_for_file(&dir.join(ANNOUNCED), STEP) {
        responder.kill();
        panic!(
            "the responder did not announce within {STEP:?}:\n{}",
            responder.output()
        );
    }
    // Let the announcements end, so the browser has to query.
    std::thread::sleep(ANNOUNCEMENTS_OVER);

    let mut browser = namespace.spawn_test(TEST_NAME, "browser", &scratch);
    let outcome = browser.wait_timeout(4 * STEP);
    let report = || {
        format!(
            "--- browser:\n{}\n--- responder:\n{}",
            browser.output(),
            responder.output()
        )
    };
    match outcome {
        Some(status) if status.success() => {}
        Some(status) => panic!("the browser failed ({status})\n{}", report()),
        None => panic!("the browser did not finish in time\n{}", report()),
    }

    let first = Found::read(&dir.join(FOUND_FIRST)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.fullname, FULLNAME);
    assert_eq!(first.host, "123456789ABC.local.");
    assert_eq!(first.port, 51826);
    assert!(
        first.addresses.iter().any(|address| address.is_loopback()),
        "the namespace has only loopback addresses: {:?}",
        first.addresses
    );
    let sh = setup_hash_base64(&SETUP_ID.parse().unwrap(), &DEVICE_ID.parse().unwrap());
    assert_eq!(first.txt, expected_txt("1", "1", sh.as_str()));

    let updated = Found::read(&dir.join(FOUND_UPDATED)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(updated.fullname, FULLNAME);
    assert_eq!(updated.port, 51826);
    assert_eq!(updated.txt, expected_txt("2", "0", sh.as_str()));

    assert!(dir.join(REMOVED).exists(), "{}", report());
    responder.expect_success(STEP);
}

/// The TXT record the browser must resolve.
fn expected_txt(config_number: &str, unpaired: &str, sh: &str) -> BTreeMap<String, String> {
    [
        ("c#", config_number),
        ("ff", "0"),
        ("id", DEVICE_ID),
        ("md", "VirtualLight"),
        ("pv", "1.1"),
        ("s#", "1"),
        ("sf", unpaired),
        ("ci", "5"),
        ("sh", sh),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// The responder child: announces, re-announces and says goodbye when signalled.
fn run_responder() {
    let dir = netns::scratch_dir();
    // The namespace has only loopback, which is served only when named.
    let config = MdnsConfig {
        interfaces: vec!["lo".into()],
        ..MdnsConfig::default()
    };
    let mut responder = MdnsResponder::new(config, Box::new(|event| println!("event: {event:?}")))
        .expect("start the responder");
    responder
        .announce(&advertisement(false, 1))
        .expect("announce");
    println!("announced: {responder:?}");
    netns::signal(&dir.join(ANNOUNCED));

    let waited = 4 * STEP;
    assert!(
        netns::wait_for_file(&dir.join(REANNOUNCE), waited),
        "no request to re-announce within {waited:?}"
    );
    responder
        .announce(&advertisement(true, 2))
        .expect("re-announce");
    println!("re-announced");
    netns::signal(&dir.join(REANNOUNCED));

    assert!(
        netns::wait_for_file(&dir.join(GOODBYE), waited),
        "no request for a goodbye within {waited:?}"
    );
    responder.goodbye().expect("goodbye");
    println!("said goodbye");
}

/// The browser child: finds the accessory, sees it updated, then removed.
fn run_browser() {
    let dir = netns::scratch_dir();
    let browser = Browser::start(SERVICE).unwrap_or_else(|e| panic!("{e}"));

    let first = browser
        .resolved(STEP, |found| found.fullname == FULLNAME)
        .unwrap_or_else(|e| panic!("first resolution: {e}"));
    println!("resolved: {first:?}");
    first.write(&dir.join(FOUND_FIRST));

    netns::signal(&dir.join(REANNOUNCE));
    let updated = browser
        .resolved(STEP, |found| {
            found.fullname == FULLNAME && found.txt.get("c#").map(String::as_str) == Some("2")
        })
        .unwrap_or_else(|e| panic!("update after the re-announcement: {e}"));
    println!("updated: {updated:?}");
    updated.write(&dir.join(FOUND_UPDATED));

    netns::signal(&dir.join(GOODBYE));
    browser
        .removed(FULLNAME, STEP)
        .unwrap_or_else(|e| panic!("removal after the goodbye: {e}"));
    println!("removed");
    netns::signal(&dir.join(REMOVED));
}

/// The second test's name, for re-running it in a child process.
const FOLLOW_TEST: &str = "an_interface_that_comes_up_later_and_a_changed_address_are_followed";

// The second test's files, in the scratch directory.
const FOLLOWER_READY: &str = "follower-ready";
const WANTED: &str = "wanted";
const UNWANTED: &str = "unwanted";
const FOUND_AT: &str = "found-at";

/// The longest wait for an address change to show in a fresh resolve (issue 21 asks for
/// 30 s; the interface check runs every 1.5 s).
const FOLLOW_STEP: Duration = Duration::from_secs(30);

/// The responder starts in a namespace whose only link (a veth) is down and has no
/// address, as an accessory started before its network; the link then comes up with
/// 192.0.2.2, and a browser on the other end finds it there. Then 192.0.2.3 is added and
/// 192.0.2.2 removed, and a fresh browser (no cache) resolves the new address only.
#[test]
fn an_interface_that_comes_up_later_and_a_changed_address_are_followed() {
    match netns::role().as_deref() {
        None => run_follow_test(),
        Some("follower") => run_follower(),
        Some("fresh-browser") => run_fresh_browser(),
        Some(other) => panic!("unknown role {other:?}"),
    }
}

fn run_follow_test() {
    let light = Namespace::create();
    let home = Namespace::create();
    let scratch = Scratch::new();
    let dir = scratch.path();
    // Veth names have at most 15 bytes; deleting either namespace deletes the pair.
    let (near, far) = (
        format!("hl{}", std::process::id() % 100_000),
        format!("hh{}", std::process::id() % 100_000),
    );
    let ip = |args: &[&str]| {
        let status = std::process::Command::new("ip")
            .args(args)
            .status()
            .expect("run ip");
        assert!(status.success(), "ip {}", args.join(" "));
    };
    ip(&["link", "add", &near, "type", "veth", "peer", "name", &far]);
    ip(&["link", "set", &near, "netns", light.name()]);
    ip(&["link", "set", &far, "netns", home.name()]);
    home.ip(&["addr", "add", "192.0.2.1/24", "dev", &far])
        .unwrap();
    home.ip(&["link", "set", &far, "up"]).unwrap();

    let mut follower = light.spawn_test(FOLLOW_TEST, "follower", &scratch);
    assert!(
        netns::wait_for_file(&dir.join(FOLLOWER_READY), STEP),
        "the responder did not start:\n{}",
        follower.output()
    );
    std::thread::sleep(Duration::from_secs(1));
    light
        .ip(&["addr", "add", "192.0.2.2/24", "dev", &near])
        .unwrap();
    light.ip(&["link", "set", &near, "up"]).unwrap();

    let addresses = || {
        let shown = light.command("ip").args(["addr", "show"]).output();
        shown.map_or_else(
            |e| e.to_string(),
            |out| String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let browse = |wanted: &str, unwanted: &str, follower: &netns::Process| {
        let _ = std::fs::remove_file(dir.join(FOUND_AT));
        std::fs::write(dir.join(WANTED), wanted).unwrap();
        std::fs::write(dir.join(UNWANTED), unwanted).unwrap();
        let mut browser = home.spawn_test(FOLLOW_TEST, "fresh-browser", &scratch);
        match browser.wait_timeout(FOLLOW_STEP + STEP) {
            Some(status) if status.success() => {}
            outcome => panic!(
                "no fresh resolve at {wanted} without {unwanted:?} ({outcome:?})\n\
                 --- addresses:\n{}\n--- browser:\n{}\n--- responder:\n{}",
                addresses(),
                browser.output(),
                follower.output()
            ),
        }
        Found::read(&dir.join(FOUND_AT)).unwrap_or_else(|e| panic!("{e}"))
    };
    let first = browse("192.0.2.2", "", &follower);
    assert_eq!(first.fullname, FULLNAME);
    assert_eq!(first.port, 51826);

    // Deleting the primary address would delete the secondary 192.0.2.3 of the same
    // subnet too, unless secondaries are promoted.
    let promoted = light
        .command("sysctl")
        .args(["-qw", "net.ipv4.conf.all.promote_secondaries=1"])
        .status()
        .expect("run sysctl");
    assert!(promoted.success());
    light
        .ip(&["addr", "add", "192.0.2.3/24", "dev", &near])
        .unwrap();
    light
        .ip(&["addr", "del", "192.0.2.2/24", "dev", &near])
        .unwrap();
    let moved = browse("192.0.2.3", "192.0.2.2", &follower);
    assert!(!moved.addresses.contains(&"192.0.2.2".parse().unwrap()));

    netns::signal(&dir.join(GOODBYE));
    follower.expect_success(STEP);
    let log = follower.output();
    assert!(log.contains("AddressesChanged"), "{log}");
}

/// The responder of the second test: every interface but loopback, as by default.
fn run_follower() {
    // The debug log (every datagram sent) is in the output shown on failure.
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Debug)
        .is_test(true)
        .try_init();
    let dir = netns::scratch_dir();
    let mut responder = MdnsResponder::new(
        MdnsConfig::default(),
        Box::new(|event| println!("event: {event:?}")),
    )
    .expect("start the responder");
    assert_eq!(
        responder.interfaces(),
        [],
        "the veth is down, and lo is left out"
    );
    responder
        .announce(&advertisement(false, 1))
        .expect("announce with no interface yet");
    netns::signal(&dir.join(FOLLOWER_READY));
    let waited = 4 * FOLLOW_STEP;
    assert!(
        netns::wait_for_file(&dir.join(GOODBYE), waited),
        "no request for a goodbye within {waited:?}"
    );
    println!("serving {:?}", responder.interfaces());
    responder.goodbye().expect("goodbye");
}

/// A browser with no cache, until the instance resolves with the wanted address and
/// without the unwanted one.
fn run_fresh_browser() {
    let dir = netns::scratch_dir();
    let read = |name| std::fs::read_to_string(dir.join(name)).unwrap();
    let wanted: std::net::IpAddr = read(WANTED).trim().parse().unwrap();
    let unwanted: Option<std::net::IpAddr> = read(UNWANTED).trim().parse().ok();
    let browser = netns::Browser::start(SERVICE).unwrap_or_else(|e| panic!("{e}"));
    let found = browser
        .resolved(FOLLOW_STEP, |found| {
            found.fullname == FULLNAME
                && found.addresses.contains(&wanted)
                && unwanted.is_none_or(|old| !found.addresses.contains(&old))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("resolved: {found:?}");
    found.write(&dir.join(FOUND_AT));
}
