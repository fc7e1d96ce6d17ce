//! The virtual-light example as a new user runs it: it prints its setup code, URI and
//! QR code, accepts connections, pairs, prints remote changes, takes typed commands,
//! stops on SIGTERM, and comes back with the same identity.
//!
//! `cargo test --workspace` builds the example before running this.

#[path = "../../std/tests/support/controller.rs"]
mod controller;
#[path = "support/example.rs"]
mod example;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use controller::Controller;

struct Light {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Light {
    fn start(data: &Path) -> Self {
        let mut child = Command::new(example::path("virtual-light"))
            .args(["--no-mdns", "--bind", "127.0.0.1", "--port", "0", "--data"])
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start virtual-light");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Lines up to and including the first that contains `needle`.
    fn until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(needle);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; saw {seen:#?}");
    }

    fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to stdin");
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let rest = self.until("stopped");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return rest;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Light {
    fn drop(&mut self) {
        // Only ever the child this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value_after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
        .trim()
}

#[test]
fn runs_pairs_and_restarts_as_a_new_user_would() {
    let data = tempfile::tempdir().unwrap();
    let mut light = Light::start(data.path());
    let banner = light.until("listening on ");

    let code = value_after(&banner, "Setup code:").to_owned();
    assert!(code.parse::<hap_core::setup::SetupCode>().is_ok(), "{code}");
    assert!(value_after(&banner, "Setup URI:").starts_with("X-HM://"));
    let qr_rows = banner
        .iter()
        .filter(|l| l.contains(['█', '▀', '▄']))
        .count();
    assert!(qr_rows >= 10, "a QR code is drawn: {banner:#?}");
    assert!(value_after(&banner, "Data:").contains("accessory.json"));
    let address: std::net::SocketAddr = value_after(&banner, "listening on").parse().unwrap();
    assert_eq!(address.ip(), std::net::Ipv4Addr::LOCALHOST);
    // `--bind 127.0.0.1` is that address only, not the default `[::]`.
    let ipv6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, address.port()));
    if std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok() {
        let refused = std::net::TcpStream::connect(ipv6).map_err(|e| e.kind());
        assert_eq!(
            refused.err(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "--bind 127.0.0.1 accepted on {ipv6}"
        );
    }

    let mut setup = Controller::connect(address, 1);
    let pairing = setup.pair_setup(&code);
    let mut home = Controller::connect(address, 1);
    home.pair_verify(&pairing);
    // Reported once the controller surely has M6: here, when it verifies.
    light.until("Paired");
    let accessories = home.get("/accessories").text();
    // The On characteristic of the lightbulb; find its iid in the JSON.
    let on = iid_of(&accessories, "25");
    let brightness = iid_of(&accessories, "8");
    let subscribe = format!(r#"{{"characteristics":[{{"aid":1,"iid":{brightness},"ev":true}}]}}"#);
    assert_eq!(home.put("/characteristics", &subscribe).status, 204);

    let write = format!(r#"{{"characteristics":[{{"aid":1,"iid":{on},"value":1}}]}}"#);
    assert_eq!(home.put("/characteristics", &write).status, 204);
    light.until("Light ON");

    // The "physical switch" pushes an event to the subscribed controller.
    light.type_line("brightness 75");
    light.until("Brightness 75% (local)");
    let event = home
        .next_message(Duration::from_secs(5))
        .expect("an event for the typed change");
    assert!(
        event.event && event.text().contains("\"value\":75"),
        "{event:?}"
    );

    light.terminate();
    assert!(home.closed_within(Duration::from_secs(5)));

    // Same identity and pairing after a restart.
    let light = Light::start(data.path());
    let banner = light.until("listening on ");
    assert_eq!(value_after(&banner, "Setup code:"), code);
    assert!(
        banner.iter().any(|l| l.contains("Already paired")),
        "{banner:#?}"
    );
    let address: std::net::SocketAddr = value_after(&banner, "listening on").parse().unwrap();
    let mut home = Controller::connect(address, 1);
    home.pair_verify(&pairing);
    let read = home.get(&format!("/characteristics?id=1.{on},1.{brightness}"));
    assert_eq!(read.status, 200);
    light.terminate();
}

/// The iid of the characteristic of short type `ty` in an `/accessories` document.
fn iid_of(accessories: &str, ty: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(accessories).expect("JSON");
    json["accessories"][0]["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["characteristics"].as_array().into_iter().flatten())
        .find(|c| c["type"] == ty)
        .and_then(|c| c["iid"].as_u64())
        .unwrap_or_else(|| panic!("no characteristic of type {ty} in {accessories}"))
}
