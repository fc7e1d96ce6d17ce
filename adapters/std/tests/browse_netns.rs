//! `hap_std::mdns::browse` finds the std `MdnsResponder` inside a network namespace this
//! test creates (only `lo`, so no multicast leaves the machine).
//!
//! The test runs itself twice more inside the namespace (see `support/netns.rs`): once as
//! the responder of a fake accessory, once as the browser. The browser browses `lo`
//! twice: until `stop_when` matches the device id (which must end it early), then for
//! the whole 3 s; it checks what it found and says so in its exit status. Needs root, to
//! create the namespace.

#[path = "support/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use hap_core::mdns::{Advertisement, Responder};
use hap_std::mdns::{browse, BrowseOptions, MdnsConfig, MdnsResponder};
use netns::{Namespace, Scratch};

/// This test's name, for re-running it in a child process.
const TEST_NAME: &str = "browse_finds_the_std_responder_in_a_namespace";

const INSTANCE: &str = "Test Light";
const DEVICE_ID: &str = "12:34:56:78:9A:BC";

/// The longest wait for each step.
const STEP: Duration = Duration::from_secs(20);

// The signal files, in the scratch directory.
const ANNOUNCED: &str = "announced";
const BROWSED: &str = "browsed";

fn advertisement() -> Advertisement<'static> {
    Advertisement {
        name: INSTANCE,
        port: 51826,
        model: "VirtualLight",
        device_id: DEVICE_ID.parse().unwrap(),
        config_number: 7,
        category: hap_core::catalog::Category::LIGHTBULB,
        paired: false,
        setup_id: Some("7OSX".parse().unwrap()),
    }
}

#[test]
fn browse_finds_the_std_responder_in_a_namespace() {
    match netns::role().as_deref() {
        None => run_test(),
        Some("responder") => run_responder(),
        Some("browser") => run_browser(),
        Some(other) => panic!("unknown role {other:?}"),
    }
}

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
    let mut browser = namespace.spawn_test(TEST_NAME, "browser", &scratch);
    let outcome = browser.wait_timeout(3 * STEP);
    let report = format!(
        "--- browser:\n{}\n--- responder:\n{}",
        browser.output(),
        responder.output()
    );
    netns::signal(&dir.join(BROWSED));
    match outcome {
        Some(status) if status.success() => {}
        Some(status) => panic!("the browser failed ({status})\n{report}"),
        None => panic!("the browser did not finish in time\n{report}"),
    }
    responder.expect_success(STEP);
}

/// The responder child: announces the accessory on `lo` until the browser is done.
fn run_responder() {
    let dir = netns::scratch_dir();
    let config = MdnsConfig {
        interfaces: vec!["lo".into()],
        ..MdnsConfig::default()
    };
    let mut responder = MdnsResponder::new(config, Box::new(|event| println!("event: {event:?}")))
        .expect("start the responder");
    responder.announce(&advertisement()).expect("announce");
    println!("announced: {responder:?}");
    netns::signal(&dir.join(ANNOUNCED));
    assert!(
        netns::wait_for_file(&dir.join(BROWSED), 4 * STEP),
        "the browser did not finish"
    );
    responder.goodbye().expect("goodbye");
}

/// The browser child: browses `lo` and checks what it found.
fn run_browser() {
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Debug)
        .is_test(true)
        .try_init();
    let started = Instant::now();
    let long = Duration::from_secs(30);
    let early = browse(BrowseOptions {
        duration: long,
        interfaces: vec!["lo".into()],
        stop_when: Some(Box::new(|found| {
            found.id.as_deref() == Some(DEVICE_ID) && !found.addresses.is_empty()
        })),
    })
    .expect("browse until found");
    let took = started.elapsed();
    println!("stopped early after {took:?}: {early:?}");
    assert!(
        took < long / 2,
        "stop_when did not end the browse: {took:?}"
    );
    assert!(
        early.iter().any(|found| found.name == INSTANCE),
        "{early:?}"
    );

    let started = Instant::now();
    let all = browse(BrowseOptions {
        interfaces: vec!["lo".into()],
        ..BrowseOptions::default()
    })
    .expect("browse for 3 s");
    let took = started.elapsed();
    println!("found in {took:?}: {all:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let [found] = &all[..] else {
        panic!("one accessory expected: {all:?}");
    };
    assert_eq!(found.name, INSTANCE);
    assert_eq!(found.host, "123456789ABC.local");
    assert_eq!(found.port, 51826);
    assert!(
        found.addresses.contains(&"127.0.0.1".parse().unwrap()),
        "{:?}",
        found.addresses
    );
    assert!(
        found.addresses.first().is_some_and(|a| a.is_ipv4()),
        "IPv4 first"
    );
    assert_eq!(found.id.as_deref(), Some(DEVICE_ID));
    assert_eq!(found.status_flags, Some(1));
    assert_eq!(found.is_paired(), Some(false));
    assert_eq!(found.config_number, Some(7));
    assert_eq!(found.state_number, Some(1));
    assert_eq!(found.category, Some(5));
    assert_eq!(found.model.as_deref(), Some("VirtualLight"));
    assert_eq!(found.feature_flags, Some(0));
    assert_eq!(found.protocol_version.as_deref(), Some("1.1"));
    assert_ne!(found.interface, 0);
}
