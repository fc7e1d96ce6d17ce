//! The garage-door example as a user runs it: a bridge (aid 1) with the door behind it
//! (aid 2); started unreachable, a write to the door gets -70402 and changes nothing;
//! once `reachable` is typed, the door opens, with CurrentDoorState events Opening then
//! Open.
//!
//! `cargo test --workspace` builds the example before running this.

#[path = "../../std/tests/support/controller.rs"]
mod controller;
#[path = "support/example.rs"]
mod example;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use controller::Controller;

const CODE: &str = "314-15-926";

/// The running example; killed when dropped.
struct Door {
    child: Child,
    lines: Receiver<String>,
}

impl Door {
    fn until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            let done = line.contains(needle);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("no line with {needle:?}; saw {seen:#?}");
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("a piped stdin");
        writeln!(stdin, "{line}").expect("write to stdin");
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        // Only ever the child this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_unreachable_door_fails_writes_with_70402_and_opens_once_reachable() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(example::path("garage-door"))
        .args([
            "--no-mdns",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--pin",
            CODE,
        ])
        .arg("--unreachable")
        .arg("--data")
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start garage-door");
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut door = Door { child, lines };
    let banner = door.until("listening on ");
    let address = banner
        .iter()
        .find_map(|l| l.strip_prefix("listening on "))
        .and_then(|a| a.trim().parse().ok())
        .expect("an address");

    let pairing = Controller::connect(address, 1).pair_setup(CODE);
    let mut home = Controller::connect(address, 1);
    home.pair_verify(&pairing);
    let accessories: serde_json::Value =
        serde_json::from_str(&home.get("/accessories").text()).unwrap();
    let accessories = accessories["accessories"].as_array().expect("accessories");
    let names: Vec<_> = accessories
        .iter()
        .map(|a| (a["aid"].as_u64(), name(a)))
        .collect();
    assert_eq!(
        names,
        [
            (Some(1), "Garage Bridge".into()),
            (Some(2), "Garage Door".into())
        ],
        "the bridge, then the door behind it"
    );
    let door_aid = 2;
    let iid = |ty: &str| {
        accessories[1]["services"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["characteristics"].as_array().into_iter().flatten())
            .find(|c| c["type"] == ty)
            .and_then(|c| c["iid"].as_u64())
            .unwrap_or_else(|| panic!("no characteristic of type {ty}"))
    };
    // TargetDoorState is 32, CurrentDoorState 0E.
    let (target, current) = (iid("32"), iid("E"));
    let subscribe =
        format!(r#"{{"characteristics":[{{"aid":{door_aid},"iid":{current},"ev":true}}]}}"#);
    assert_eq!(home.put("/characteristics", &subscribe).status, 204);
    let open = format!(r#"{{"characteristics":[{{"aid":{door_aid},"iid":{target},"value":0}}]}}"#);

    let refused = home.put("/characteristics", &open);
    assert_eq!(refused.status, 207, "{}", refused.text());
    assert!(refused.text().contains("-70402"), "{}", refused.text());
    let read = home.get(&format!("/characteristics?id={door_aid}.{current}"));
    assert!(read.text().contains("-70402"), "{}", read.text());

    door.type_line("reachable");
    door.until("Door controller reachable");
    let read = home.get(&format!(
        "/characteristics?id={door_aid}.{target},{door_aid}.{current}"
    ));
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(
        read.text().matches(r#""value":1"#).count(),
        2,
        "still closed: {}",
        read.text()
    );
    assert_eq!(home.put("/characteristics", &open).status, 204);
    door.until("Door opening");
    let mut states = Vec::new();
    while states.last() != Some(&0) {
        let event = home
            .next_message(Duration::from_secs(10))
            .expect("CurrentDoorState events");
        assert!(event.event, "{event:?}");
        let body: serde_json::Value = serde_json::from_str(&event.text()).unwrap();
        assert_eq!(body["characteristics"][0]["aid"], door_aid, "{body}");
        states.push(body["characteristics"][0]["value"].as_u64().unwrap());
    }
    assert_eq!(states, [2, 0], "Opening, then Open");
    door.until("Door open");
}

/// The Name (23) in `accessory`'s Accessory Information (3E).
fn name(accessory: &serde_json::Value) -> String {
    accessory["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "3E")
        .flat_map(|s| s["characteristics"].as_array().into_iter().flatten())
        .find(|c| c["type"] == "23")
        .and_then(|c| c["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}
