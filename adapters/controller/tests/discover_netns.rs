//! `hapctl discover`, pairing by instance name, and finding a paired accessory again
//! by its id after it moved, inside a network namespace this test creates (only `lo`,
//! so no multicast leaves the machine).
//!
//! The test runs itself again inside the namespace as the accessory (a light announced
//! by hap-std's `MdnsResponder` on `lo`), and runs `hapctl --interface lo` there too.
//! Needs root, to create the namespace.

#[path = "../../std/tests/support/netns.rs"]
mod netns;
mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hap_std::mdns::{MdnsConfig, MdnsResponder};
use netns::{Namespace, Scratch};
use serde_json::Value;
use support::{Light, CODE};

/// This test's name, for re-running it in a child process.
const TEST_NAME: &str = "discover_pair_by_name_and_find_a_moved_accessory_in_a_namespace";

/// The longest wait for each step.
const STEP: Duration = Duration::from_secs(30);

// Files in the scratch directory.
const PORT: &str = "port";
const STOP: &str = "stop";

#[test]
fn discover_pair_by_name_and_find_a_moved_accessory_in_a_namespace() {
    match netns::role().as_deref() {
        None => run_test(),
        Some("accessory") => run_accessory(),
        Some(other) => panic!("unknown role {other:?}"),
    }
}

/// The light, announced on `lo`, until the test says stop.
fn run_accessory() {
    let dir = netns::scratch_dir();
    let config = MdnsConfig {
        interfaces: vec!["lo".into()],
        ..MdnsConfig::default()
    };
    let responder = MdnsResponder::new(config, Box::new(|_| {})).expect("an mDNS responder");
    let light = Light::start_with(Some(Box::new(responder)));
    std::fs::write(dir.join(PORT), light.address.port().to_string()).unwrap();
    assert!(
        netns::wait_for_file(&dir.join(STOP), 4 * STEP),
        "never told to stop"
    );
}

/// Runs `hapctl --file FILE --interface lo --timeout 10 ARGS` in the namespace, killed
/// after `STEP`.
fn hapctl(namespace: &Namespace, file: &Path, args: &[&str]) -> Output {
    let mut child = namespace
        .command(env!("CARGO_BIN_EXE_hapctl"))
        .arg("--file")
        .arg(file)
        .args(["--interface", "lo", "--timeout", "10"])
        .args(args)
        .env_remove("HAPCTL_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hapctl");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > STEP {
            let _ = child.kill();
            panic!("hapctl {args:?} ran for {STEP:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "hapctl {args:?}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

fn run_test() {
    let namespace = Namespace::create();
    let scratch = Scratch::new();
    let dir = scratch.path();
    let mut accessory = namespace.spawn_test(TEST_NAME, "accessory", &scratch);
    if !netns::wait_for_file(&dir.join(PORT), STEP) {
        accessory.kill();
        panic!("the accessory did not start:\n{}", accessory.output());
    }
    let port: u16 = std::fs::read_to_string(dir.join(PORT))
        .unwrap()
        .parse()
        .unwrap();
    let file = dir.join("pairings.json");

    let found = json(&hapctl(
        &namespace,
        &file,
        &["--json", "discover", "--seconds", "3"],
    ));
    let found = found.as_array().expect("a list");
    assert_eq!(found.len(), 1, "{found:?}");
    let light = &found[0];
    assert_eq!(light["name"], "Test Light");
    assert_eq!(light["port"], port);
    assert_eq!(light["paired"], false);
    assert_eq!(light["category_name"], "Lightbulb");
    assert_eq!(light["addresses"][0], "127.0.0.1");
    let id = light["id"].as_str().expect("an id").to_string();

    let text = hapctl(&namespace, &file, &["discover", "--seconds", "3"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.starts_with(&format!(
            "Test Light  id {id}  127.0.0.1:{port}  c# 1  sf 1 (not paired)  Lightbulb (5)"
        )),
        "{text}"
    );

    // By its name, in another case; the alias is then its instance name.
    let paired = json(&hapctl(
        &namespace,
        &file,
        &["--json", "pair", "test light", "--code", CODE],
    ));
    assert_eq!(paired["alias"], "Test Light");
    assert_eq!(paired["id"], id.as_str());
    assert_eq!(paired["port"], port);

    let unpaired = json(&hapctl(
        &namespace,
        &file,
        &["--json", "discover", "--seconds", "3", "--unpaired"],
    ));
    assert_eq!(unpaired, serde_json::json!([]), "now paired");

    // The file says it moved to a closed port: hapctl finds it again by id, and
    // remembers where.
    let mut stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    stored["accessories"]["Test Light"]["port"] = Value::from(1);
    std::fs::write(&file, serde_json::to_vec(&stored).unwrap()).unwrap();
    let read = hapctl(&namespace, &file, &["get", &id.to_lowercase(), "On"]);
    assert!(
        String::from_utf8_lossy(&read.stdout).ends_with(" On = false\n"),
        "{}",
        String::from_utf8_lossy(&read.stdout)
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["accessories"]["Test Light"]["port"], port);

    netns::signal(&dir.join(STOP));
    accessory.expect_success(STEP);
}
