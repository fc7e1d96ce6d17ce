//! The virtual light found by an independent mDNS browser (`mdns-sd`) inside a network
//! namespace this test creates, and withdrawn with a goodbye when it stops.
//!
//! The light runs inside the namespace as a new user runs it, with mDNS on. The test
//! runs itself again inside the namespace as the browser (see
//! `adapters/std/tests/support/netns.rs`). Needs root, to create the namespace.

#[path = "support/example.rs"]
mod example;
#[path = "../../std/tests/support/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use netns::{Found, Namespace, Process, Scratch};

const TEST_NAME: &str = "virtual_light_is_found_over_mdns_and_says_goodbye";
const SERVICE: &str = "_hap._tcp.local.";
const FULLNAME: &str = "Virtual Light._hap._tcp.local.";
const STEP: Duration = Duration::from_secs(15);

// Signal files in the scratch directory.
const FOUND: &str = "found";
const STOPPED: &str = "stopped";
const REMOVED: &str = "removed";

#[test]
fn virtual_light_is_found_over_mdns_and_says_goodbye() {
    match netns::role().as_deref() {
        None => run_test(),
        Some("browser") => run_browser(),
        Some(other) => panic!("unknown role {other:?}"),
    }
}

fn run_browser() {
    let dir = netns::scratch_dir();
    let browser = netns::Browser::start(SERVICE).unwrap_or_else(|e| panic!("{e}"));
    let found = browser
        .resolved(STEP, |found| found.fullname == FULLNAME)
        .unwrap_or_else(|e| panic!("resolving the light: {e}"));
    found.write(&dir.join(FOUND));
    assert!(
        netns::wait_for_file(&dir.join(STOPPED), STEP),
        "the light was not stopped"
    );
    browser
        .removed(FULLNAME, STEP)
        .unwrap_or_else(|e| panic!("removal after the light stopped: {e}"));
    netns::signal(&dir.join(REMOVED));
}

fn run_test() {
    let namespace = Namespace::create();
    let scratch = Scratch::new();
    let dir = scratch.path();
    let data = dir.join("data");

    let mut command = namespace.command(example::path("virtual-light"));
    // The namespace has only loopback, which the built-in responder serves only when
    // named; `builtin`, so that an avahi-daemon of the host (whose D-Bus socket the
    // namespace shares) is not asked to advertise on the host's network.
    command
        .args([
            "--mdns",
            "builtin",
            "--mdns-interface",
            "lo",
            "--log",
            "debug",
        ])
        .arg("--data")
        .arg(&data);
    let mut light = Process::spawn("virtual-light", command, &dir.join("light.log"));
    let deadline = Instant::now() + STEP;
    while !light.output().contains("listening on") {
        assert!(
            Instant::now() < deadline,
            "the light did not start:\n{}",
            light.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut browser = namespace.spawn_test(TEST_NAME, "browser", &scratch);
    if !netns::wait_for_file(&dir.join(FOUND), STEP) {
        browser.kill();
        panic!(
            "the browser did not find the light\n--- browser:\n{}\n--- light:\n{}",
            browser.output(),
            light.output()
        );
    }
    let found = Found::read(&dir.join(FOUND)).unwrap_or_else(|e| panic!("{e}"));

    // The light stops on SIGTERM (`ip netns exec` execs it, so the id is the light's).
    let pid = light.id().expect("the light runs").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    light.expect_success(STEP);
    netns::signal(&dir.join(STOPPED));
    browser.expect_success(2 * STEP);
    assert!(dir.join(REMOVED).exists());

    let stored = std::fs::read_to_string(data.join("accessory.json")).unwrap();
    let device_id = stored
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"device_id\": \""))
        .and_then(|rest| rest.strip_suffix("\","))
        .expect("the stored device id");
    assert_eq!(found.port, 51826);
    let txt = |key: &str| found.txt.get(key).map(String::as_str);
    assert_eq!(txt("md"), Some("VirtualLight"));
    assert_eq!(txt("ci"), Some("5"));
    assert_eq!(txt("sf"), Some("1"), "unpaired");
    assert_eq!(txt("pv"), Some("1.1"));
    assert_eq!(txt("s#"), Some("1"));
    assert_eq!(txt("ff"), Some("0"));
    assert_eq!(txt("c#"), Some("1"));
    assert_eq!(txt("id"), Some(device_id));
    assert_eq!(txt("sh").map(str::len), Some(8));
    assert!(light.output().contains("stopped"));
    assert!(
        light
            .output()
            .contains("Advertised as \"Virtual Light\" by the built-in mDNS responder on lo"),
        "{}",
        light.output()
    );
}
