//! The `hapctl` binary against a real accessory (hap-std's threaded server on
//! 127.0.0.1), with a fresh pairing file per test. Every wait is bounded: hapctl runs
//! with `--timeout 5`, and each run is killed after a minute.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hap_core::database::OwnedValue;
use serde_json::Value;
use support::{Light, CODE};

mod support;

/// Runs hapctl with `--file file --timeout 5` and `args`, killing it after a minute.
fn hapctl(file: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapctl"))
        .arg("--file")
        .arg(file)
        .args(["--timeout", "5"])
        .args(args)
        .env_remove("HAPCTL_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hapctl");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("hapctl {args:?} ran for a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit status, showing both streams if it differs.
fn expect(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Runs `args` with `--json`, expects `code`, and parses stdout as one JSON document.
fn json(file: &Path, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = hapctl(file, &all);
    expect(&output, code);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&output)))
}

fn pairing_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("config").join("pairings.json")
}

#[test]
fn pair_read_write_watch_list_and_unpair() {
    let light = Light::start();
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);

    // Unpaired, it identifies to anyone.
    let identified = hapctl(&file, &["identify", &light.target()]);
    expect(&identified, 0);
    assert_eq!(
        stdout(&identified),
        format!("Identified \"{}\".\n", light.target())
    );

    let paired = json(
        &file,
        &[
            "pair",
            &light.target(),
            "--code",
            "51808582",
            "--alias",
            "lamp",
        ],
        0,
    );
    assert_eq!(paired["alias"], "lamp");
    assert_eq!(paired["address"], "127.0.0.1");
    assert_eq!(paired["port"], light.address.port());
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["version"], 1);
    assert_eq!(stored["accessories"]["lamp"]["id"], paired["id"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Paired, only over the session.
    expect(&hapctl(&file, &["identify", "lamp"]), 0);
    expect(&hapctl(&file, &["identify", &light.target()]), 6);

    let tree = hapctl(&file, &["accessories", "lamp"]);
    expect(&tree, 0);
    let text = stdout(&tree);
    assert!(text.starts_with("1 Test Light\n"), "{text}");
    assert!(
        text.contains("  1.1 Accessory Information (3E)\n"),
        "{text}"
    );
    assert!(text.contains("Lightbulb (43) primary"), "{text}");
    let (aid, on) = light.on;
    assert!(
        text.contains(&format!(
            "    {aid}.{on} On (25)  bool  pr pw ev  = false\n"
        )),
        "{text}"
    );
    let tree = json(&file, &["accessories", "lamp"], 0);
    assert_eq!(tree["accessories"][0]["name"], "Test Light");

    let read = hapctl(&file, &["get", "lamp", "on"]);
    expect(&read, 0);
    assert_eq!(stdout(&read), format!("{aid}.{on} On = false\n"));

    let write = hapctl(&file, &["put", "lamp", "On=true", "brightness=40"]);
    expect(&write, 0);
    assert!(stdout(&write).starts_with(&format!("{aid}.{on} On = true\n")));
    let read = json(
        &file,
        &["get", "lamp", &format!("{aid}.{on}"), "Brightness"],
        0,
    );
    assert_eq!(read["characteristics"][0]["value"], true);
    assert_eq!(read["characteristics"][0]["name"], "On");
    assert_eq!(read["characteristics"][1]["value"], 40);

    // A write to a read-only characteristic is refused, and says so.
    let refused = hapctl(&file, &["put", "lamp", "Model=\"L2\""]);
    expect(&refused, 6);
    assert!(
        stderr(&refused).contains("read-only"),
        "{}",
        stderr(&refused)
    );
    let refused = json(&file, &["put", "lamp", "Model=L2"], 6);
    assert_eq!(refused["error"]["kind"], "refused");
    assert_eq!(refused["characteristics"][0]["status"], -70404);

    // The accessory changes On while hapctl watches it.
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let stop = stop.clone();
        let handle = light.running.handle();
        std::thread::spawn(move || {
            let mut value = false;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(300));
                let _ = handle.set_value(aid, on, OwnedValue::Bool(value));
                value = !value;
            }
        })
    };
    let watched = hapctl(
        &file,
        &[
            "--json",
            "watch",
            "lamp",
            "On",
            "--count",
            "1",
            "--seconds",
            "20",
        ],
    );
    stop.store(true, Ordering::SeqCst);
    toggler.join().unwrap();
    expect(&watched, 0);
    let lines: Vec<Value> = stdout(&watched)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "the current value, then one event: {lines:?}"
    );
    for line in &lines {
        assert_eq!(
            (line["aid"].as_u64(), line["iid"].as_u64()),
            (Some(aid), Some(on))
        );
        assert!(line["value"].is_boolean(), "{line}");
        assert!(humantime::parse_rfc3339(line["time"].as_str().unwrap()).is_ok());
    }

    // A watch with no events ends when its time is up.
    let quiet = hapctl(&file, &["watch", "lamp", "Brightness", "--seconds", "0.5"]);
    expect(&quiet, 0);
    assert_eq!(stdout(&quiet).lines().count(), 1, "{}", stdout(&quiet));

    let id = json(&file, &["id"], 0);
    let listed = json(&file, &["pairings", "list", "lamp"], 0);
    let pairings = listed["pairings"].as_array().unwrap();
    assert_eq!(pairings.len(), 1);
    assert_eq!(pairings[0]["id"], id["id"]);
    assert_eq!(pairings[0]["public_key"], id["public_key"]);
    assert_eq!(pairings[0]["this_controller"], true);
    assert_eq!(pairings[0]["admin"], true);
    let listed = hapctl(&file, &["pairings", "list", "lamp"]);
    expect(&listed, 0);
    assert!(stdout(&listed).contains("admin"));
    assert!(stdout(&listed).contains("(this controller)"));

    // Another controller's identity, added as a user and removed again.
    let other_file = dir.path().join("other.json");
    let other = json(&other_file, &["id"], 0);
    let (other_id, other_key) = (
        other["id"].as_str().unwrap(),
        other["public_key"].as_str().unwrap(),
    );
    let added = hapctl(
        &file,
        &[
            "pairings", "add", "lamp", "--id", other_id, "--key", other_key,
        ],
    );
    expect(&added, 0);
    let listed = json(&file, &["pairings", "list", "lamp"], 0);
    let guest = listed["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == other["id"])
        .expect("the added pairing");
    assert_eq!(guest["admin"], false);
    assert_eq!(guest["this_controller"], false);
    expect(&hapctl(&file, &["pairings", "remove", "lamp", other_id]), 0);
    let listed = json(&file, &["pairings", "list", "lamp"], 0);
    assert_eq!(listed["pairings"].as_array().unwrap().len(), 1);

    let unpaired = json(&file, &["unpair", "lamp"], 0);
    assert_eq!(unpaired["alias"], "lamp");
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["accessories"], serde_json::json!({}));
    // The controller identity stays for the next pairing.
    assert_eq!(stored["controller"]["id"], id["id"]);
    let gone = hapctl(&file, &["get", "lamp", "On"]);
    expect(&gone, 3);
}

#[test]
fn a_wrong_setup_code_is_an_authentication_error() {
    let light = Light::start();
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    let output = hapctl(&file, &["pair", &light.target(), "--code", "518-08-583"]);
    expect(&output, 5);
    assert!(
        stderr(&output).starts_with("hapctl: wrong setup code for"),
        "{}",
        stderr(&output)
    );
    let error = json(&file, &["pair", &light.target(), "--code", "518-08-583"], 5);
    assert_eq!(error["error"]["kind"], "authentication");
}

#[test]
fn a_closed_port_is_unreachable() {
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    let target = format!("127.0.0.1:{port}");
    let output = hapctl(&file, &["pair", &target, "--code", CODE]);
    expect(&output, 4);
    assert!(
        stderr(&output).contains(&format!("cannot reach {target}: connection refused")),
        "{}",
        stderr(&output)
    );
    let error = json(&file, &["pair", &target, "--code", CODE], 4);
    assert_eq!(error["error"]["kind"], "unreachable");
    // The controller's identity is kept before pairing starts, but no accessory.
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(stored["controller"]["id"].is_string(), "{stored}");
    assert_eq!(stored["accessories"], serde_json::json!({}));
}

#[test]
fn unknown_aliases_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    let output = hapctl(&file, &["get", "light", "On"]);
    expect(&output, 3);
    assert!(
        stderr(&output).contains(&format!("\"light\" is not in {}", file.display())),
        "{}",
        stderr(&output)
    );
    let error = json(&file, &["accessories", "light"], 3);
    assert_eq!(error["error"]["kind"], "not-found");
    expect(&hapctl(&file, &["get"]), 2);
    expect(
        &hapctl(&file, &["pair", "127.0.0.1:1", "--code", "12-34"]),
        2,
    );
    expect(&hapctl(&file, &["put", "light", "On"]), 2);
}

#[test]
fn a_damaged_pairing_file_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pairings.json");
    std::fs::write(&file, "{not json").unwrap();
    let output = hapctl(&file, &["id"]);
    expect(&output, 8);
    assert!(
        stderr(&output).contains(&file.display().to_string()),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"{not json",
        "left as it was"
    );
}

#[cfg(unix)]
/// Starts `hapctl watch` and returns it once it printed the current value.
fn start_watch(file: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapctl"))
        .arg("--file")
        .arg(file)
        .args(["--timeout", "5", "watch", "lamp", "On", "--seconds", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hapctl");
    let mut first = String::new();
    // Bounded: hapctl gives up after its --timeout or --seconds.
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    (child, first)
}

#[cfg(unix)]
/// Waits at most 20 s for `child` to end.
fn finish(mut child: std::process::Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("watch did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn watch_ends_quietly_on_ctrl_c_and_fails_when_the_accessory_goes() {
    let light = Light::start();
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    let target = light.target();
    let paired = hapctl(&file, &["pair", &target, "--code", CODE, "--alias", "lamp"]);
    expect(&paired, 0);

    let (child, first) = start_watch(&file);
    assert!(first.ends_with(" On = false\n"), "{first}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = finish(child);
    expect(&output, 0);
    assert_eq!(stdout(&output), "", "nothing more after Ctrl+C");

    let (child, first) = start_watch(&file);
    assert!(first.ends_with(" On = false\n"), "{first}");
    drop(light);
    let output = finish(child);
    expect(&output, 4);
    assert!(
        stderr(&output).contains("\"lamp\" closed the connection"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_alias_taken_by_another_accessory_is_refused_before_pairing() {
    let (first, second) = (Light::start(), Light::start());
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    let pair = |light: &Light, alias: &str| {
        hapctl(
            &file,
            &["pair", &light.target(), "--code", CODE, "--alias", alias],
        )
    };
    expect(&pair(&first, "lamp"), 0);
    let refused = pair(&second, "lamp");
    expect(&refused, 2);
    assert!(
        stderr(&refused).contains("\"lamp\" already names accessory"),
        "{}",
        stderr(&refused)
    );
    // Nothing was paired: the second light still takes a pairing, under another name.
    expect(&pair(&second, "lamp 2"), 0);
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let accessories = stored["accessories"].as_object().unwrap();
    assert_eq!(accessories.len(), 2);
    assert_ne!(accessories["lamp"]["id"], accessories["lamp 2"]["id"]);
}

#[test]
fn unpair_forget_drops_an_accessory_that_cannot_be_asked() {
    let light = Light::start();
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    let target = light.target();
    expect(
        &hapctl(&file, &["pair", &target, "--code", CODE, "--alias", "lamp"]),
        0,
    );
    // Gone for good: only the file can be tidied.
    drop(light);
    let output = hapctl(&file, &["unpair", "lamp"]);
    assert_ne!(output.status.code(), Some(0));
    let forgot = json(&file, &["unpair", "lamp", "--forget"], 0);
    assert_eq!(forgot["alias"], "lamp");
    expect(&hapctl(&file, &["get", "lamp", "On"]), 3);
}

/// A control point with write response is written with `"r":true` on its own, and
/// hapctl prints what the accessory answered; `--response` asks any characteristic.
#[test]
fn put_asks_a_control_point_for_its_answer_and_prints_it() {
    let light = support::ControlLight::start();
    let dir = tempfile::tempdir().unwrap();
    let file = pairing_file(&dir);
    expect(
        &hapctl(
            &file,
            &["pair", &light.target(), "--code", CODE, "--alias", "lamp"],
        ),
        0,
    );
    let (aid, iid) = light.control;

    // By name; 01 01 answered with 02 02 01 01.
    let written = hapctl(
        &file,
        &[
            "put",
            "lamp",
            "Characteristic Value Transition Control=AQE=",
        ],
    );
    expect(&written, 0);
    assert_eq!(
        stdout(&written),
        format!("{aid}.{iid} Characteristic Value Transition Control = AgIBAQ==\n")
    );
    let answer = json(&file, &["put", "lamp", &format!("{aid}.{iid}=AQE=")], 0);
    let item = &answer["characteristics"][0];
    assert_eq!(item["response"], "AgIBAQ==", "{answer}");
    assert_eq!(item["status"], 0, "{answer}");

    // Base64 of digits only is not a number to a tlv8 characteristic.
    let answer = json(&file, &["put", "lamp", &format!("{aid}.{iid}=1234")], 0);
    assert_eq!(
        answer["characteristics"][0]["response"], "AgPXbfg=",
        "{answer}"
    );
    assert_eq!(
        *light.written.lock().unwrap(),
        [vec![1, 1], vec![1, 1], vec![0xd7, 0x6d, 0xf8]]
    );

    // A plain characteristic is asked only with --response; it answers its value.
    let plain = json(&file, &["put", "lamp", "Brightness=20"], 0);
    assert!(
        plain["characteristics"][0].get("response").is_none(),
        "{plain}"
    );
    let asked = json(&file, &["put", "--response", "lamp", "Brightness=30"], 0);
    assert_eq!(asked["characteristics"][0]["response"], 30, "{asked}");
    let asked = hapctl(&file, &["put", "lamp", "Brightness=40", "--response"]);
    expect(&asked, 0);
    assert!(
        stdout(&asked).ends_with(" Brightness = 40\n"),
        "{}",
        stdout(&asked)
    );
}
