//! `AvahiResponder` against a real avahi-daemon on a private D-Bus, seen by an independent
//! mDNS browser (`mdns-sd`) on the other end of a veth pair.
//!
//! The test makes two network namespaces joined by a veth pair with documentation
//! addresses only (192.0.2.2 and 2001:db8::2 on the daemon's side, 192.0.2.1 and
//! 2001:db8::1 on the browser's), so nothing reaches a real network. On the daemon's side
//! it starts a `dbus-daemon` on a socket in its scratch directory (with a permissive policy
//! it writes) and `avahi-daemon` with D-Bus on, in a private mount namespace whose `/run`
//! and services directory are its own, so a host's avahi-daemon is not disturbed. Then it
//! runs itself twice more (see `support/netns.rs`): as the responder, next to the daemon,
//! with `DBUS_SYSTEM_BUS_ADDRESS` naming the private bus, and as the browser. They step
//! through the scenario with signal files:
//!
//! 1. the responder announces `Test Light`, unpaired, `c#=1`; the browser resolves it;
//! 2. the responder announces it paired with `c#=2` (a TXT update); the browser sees it;
//! 3. a second responder announces the same name: avahi-daemon has it already, so the
//!    second renames to `Test Light (2)` and reports it; the browser resolves that;
//! 4. the first says goodbye; the browser sees `Test Light` removed;
//! 5. the browser publishes `Busy Light` itself (with `mdns-sd`), and a third responder
//!    announces that name: avahi-daemon's probe meets the browser's answer, the entry
//!    group reports a collision, and the responder renames to `Busy Light (2)`, which the
//!    browser resolves;
//! 6. avahi-daemon is killed and started again: both live responders see the new daemon
//!    and register again (each reports `Announced` once more);
//! 7. the third responder moves to another port, keeping its new name; the browser
//!    resolves the new port.
//!
//! It needs root (namespaces, mounts), `ip`, `unshare`, `dbus-daemon` and `avahi-daemon`
//! (`apt-get install -y iproute2 dbus avahi-daemon`); without root or the two daemons it
//! says so and skips.

#[path = "support/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hap_core::mdns::{Advertisement, InterfaceId, MdnsEvent, NameKind, Responder};
use hap_core::setup::setup_hash_base64;
use hap_std::avahi::{AvahiError, AvahiResponder};
use netns::{Browser, Found, Namespace, Process, Scratch};

/// This test's name, for re-running it in a child process.
const TEST_NAME: &str = "avahi_registers_updates_renames_and_withdraws_the_service";

const SERVICE: &str = "_hap._tcp.local.";
const INSTANCE: &str = "Test Light";
const FULLNAME: &str = "Test Light._hap._tcp.local.";
const SECOND_FULLNAME: &str = "Test Light (2)._hap._tcp.local.";
const BUSY: &str = "Busy Light";
const BUSY_RENAMED_FULLNAME: &str = "Busy Light (2)._hap._tcp.local.";
const DEVICE_ID: &str = "12:34:56:78:9A:BC";
const SETUP_ID: &str = "7OSX";
const PORT: u16 = 51826;
/// avahi-daemon's host name, in the config this test writes.
const HOST: &str = "hap-avahi-test";
/// The veth ends: the daemon's and the browser's.
const DAEMON_IFACE: &str = "havahi0";
const BROWSER_IFACE: &str = "hbrowse0";
const DAEMON_V4: &str = "192.0.2.2";
const DAEMON_V6: &str = "2001:db8::2";

/// The longest wait for each step.
const STEP: Duration = Duration::from_secs(15);

// The signal and data files, in the scratch directory.
const ANNOUNCED: &str = "announced";
const FOUND_FIRST: &str = "found-first";
const FOUND_UPDATED: &str = "found-updated";
const FOUND_SECOND: &str = "found-second";
const REMOVED: &str = "removed";
const BUSY_PUBLISHED: &str = "busy-published";
const FOUND_RENAMED: &str = "found-renamed";
const RESTART: &str = "restart";
const FOUND_MOVED: &str = "found-moved";
const RESPONDER_DONE: &str = "responder-done";

fn advertisement(name: &str, paired: bool, config_number: u16) -> Advertisement<'_> {
    Advertisement {
        name,
        port: PORT,
        model: "VirtualLight",
        device_id: DEVICE_ID.parse().unwrap(),
        config_number,
        category: hap_core::catalog::Category::LIGHTBULB,
        paired,
        setup_id: Some(SETUP_ID.parse().unwrap()),
    }
}

#[test]
fn avahi_registers_updates_renames_and_withdraws_the_service() {
    match netns::role().as_deref() {
        None => run_test(),
        Some("responder") => run_responder(),
        Some("browser") => run_browser(),
        Some(other) => panic!("unknown role {other:?}"),
    }
}

/// Why the test cannot run here, if it cannot: not root, or a daemon missing.
fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    let uid = uid.map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    if uid.as_deref() != Some("0") {
        return Some(format!(
            "not root (user id {}): the test creates network and mount namespaces",
            uid.unwrap_or_default()
        ));
    }
    for program in ["avahi-daemon", "dbus-daemon"] {
        if find_program(program).is_none() {
            return Some(format!(
                "{program} is not installed (apt-get install -y avahi-daemon dbus)"
            ));
        }
    }
    None
}

/// `program` in PATH or an sbin directory.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The test: sets up the namespaces and daemons, runs both children, and checks what the
/// browser saw.
fn run_test() {
    if let Some(reason) = skip_reason() {
        println!("SKIPPED {TEST_NAME}: {reason}");
        eprintln!("SKIPPED {TEST_NAME}: {reason}");
        return;
    }
    let daemon_side = Namespace::create();
    let browser_side = Namespace::create();
    connect(&daemon_side, &browser_side);
    let scratch = Scratch::new();
    let dir = scratch.path();
    let bus = format!("unix:path={}", dir.join("bus").display());

    let dbus = start_dbus(&daemon_side, dir);
    let mut avahi = start_avahi(&daemon_side, dir, &bus, "avahi-daemon");

    let mut responder = spawn_role(&daemon_side, "responder", &scratch, Some(&bus));
    let mut browser = spawn_role(&browser_side, "browser", &scratch, None);

    // Step 6: when the responder asks, replace avahi-daemon by a new one.
    let deadline = Instant::now() + 8 * STEP;
    while !dir.join(RESTART).exists()
        && responder.wait_timeout(Duration::from_millis(50)).is_none()
        && Instant::now() < deadline
    {}
    if dir.join(RESTART).exists() {
        avahi.kill();
        avahi = start_avahi(&daemon_side, dir, &bus, "avahi-daemon-again");
    }
    let avahi = avahi;
    let report = |browser: &Process, responder: &Process| {
        format!(
            "--- browser:\n{}\n--- responder:\n{}\n--- avahi-daemon:\n{}\n--- dbus-daemon:\n{}",
            browser.output(),
            responder.output(),
            avahi.output(),
            dbus.output()
        )
    };
    let outcome = browser.wait_timeout(8 * STEP);
    match outcome {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "the browser failed ({status})\n{}",
            report(&browser, &responder)
        ),
        None => panic!(
            "the browser did not finish in time\n{}",
            report(&browser, &responder)
        ),
    }
    match responder.wait_timeout(STEP) {
        Some(status) if status.success() => {}
        other => panic!(
            "the responder failed or hung ({other:?})\n{}",
            report(&browser, &responder)
        ),
    }

    let sh = setup_hash_base64(&SETUP_ID.parse().unwrap(), &DEVICE_ID.parse().unwrap());
    let first = Found::read(&dir.join(FOUND_FIRST)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.fullname, FULLNAME);
    assert_eq!(first.host, format!("{HOST}.local."));
    assert_eq!(first.port, PORT);
    let v4: IpAddr = DAEMON_V4.parse().unwrap();
    let v6: IpAddr = DAEMON_V6.parse().unwrap();
    assert!(
        first.addresses.contains(&v4) || first.addresses.contains(&v6),
        "the daemon's addresses: {:?}",
        first.addresses
    );
    assert_eq!(first.txt, expected_txt("1", "1", sh.as_str()));

    let updated = Found::read(&dir.join(FOUND_UPDATED)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(updated.fullname, FULLNAME);
    assert_eq!(updated.txt, expected_txt("2", "0", sh.as_str()));

    let second = Found::read(&dir.join(FOUND_SECOND)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.fullname, SECOND_FULLNAME);
    assert_eq!(second.port, PORT + 1);

    assert!(dir.join(REMOVED).exists());
    let renamed = Found::read(&dir.join(FOUND_RENAMED)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(renamed.fullname, BUSY_RENAMED_FULLNAME);
    assert_eq!(renamed.host, format!("{HOST}.local."));
    assert_eq!(renamed.port, PORT + 2);
    let moved = Found::read(&dir.join(FOUND_MOVED)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved.fullname, BUSY_RENAMED_FULLNAME);
    assert_eq!(moved.port, PORT + 3);
    assert!(dir.join(RESPONDER_DONE).exists());
    // Shown with --nocapture.
    println!("{}", report(&browser, &responder));
}

/// Joins the two namespaces with a veth pair, with documentation addresses only, and
/// sends their multicast through it.
fn connect(daemon_side: &Namespace, browser_side: &Namespace) {
    let output = Command::new("ip")
        .args(["link", "add", DAEMON_IFACE, "netns", daemon_side.name()])
        .args(["type", "veth", "peer", "name", BROWSER_IFACE, "netns"])
        .arg(browser_side.name())
        .output()
        .expect("run ip");
    assert!(
        output.status.success(),
        "ip link add veth: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (namespace, iface, v4, v6) in [
        (daemon_side, DAEMON_IFACE, DAEMON_V4, DAEMON_V6),
        (browser_side, BROWSER_IFACE, "192.0.2.1", "2001:db8::1"),
    ] {
        // No link-local address: only documentation-range addresses are used.
        let status = namespace
            .command("sysctl")
            .args(["-q", "-w"])
            .arg(format!("net.ipv6.conf.{iface}.addr_gen_mode=1"))
            .arg(format!("net.ipv6.conf.{iface}.accept_ra=0"))
            .status()
            .expect("run sysctl");
        assert!(status.success(), "sysctl in {}", namespace.name());
        let steps: [&[&str]; 4] = [
            &["addr", "add", &format!("{v4}/24"), "dev", iface],
            &[
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                iface,
                "nodad",
            ],
            &["link", "set", iface, "up"],
            &["route", "replace", "224.0.0.0/4", "dev", iface],
        ];
        for step in steps {
            namespace.ip(step).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Starts a dbus-daemon on `dir/bus`, with a policy that lets anyone own any name and
/// send anything, and waits for its socket.
fn start_dbus(namespace: &Namespace, dir: &Path) -> Process {
    let config = dir.join("dbus.conf");
    let socket = dir.join("bus");
    fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .expect("write dbus.conf");
    let mut command = namespace.command(find_program("dbus-daemon").unwrap());
    command
        .arg(format!("--config-file={}", config.display()))
        .arg(format!("--address=unix:path={}", socket.display()))
        .args(["--nofork", "--nopidfile", "--nosyslog"]);
    let mut dbus = Process::spawn("dbus-daemon", command, &dir.join("dbus-daemon.log"));
    let deadline = Instant::now() + STEP;
    while !socket.exists() {
        if dbus.wait_timeout(Duration::from_millis(20)).is_some() || Instant::now() > deadline {
            dbus.kill();
            panic!("dbus-daemon did not listen:\n{}", dbus.output());
        }
    }
    dbus
}

/// Starts avahi-daemon on the daemon's veth end, with D-Bus on the private bus, in a
/// private mount namespace with its own `/run` and an empty services directory.
fn start_avahi(namespace: &Namespace, dir: &Path, bus: &str, name: &str) -> Process {
    let config = dir.join("avahi-daemon.conf");
    fs::write(
        &config,
        format!(
            "[server]\nhost-name={HOST}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=yes\n\
             allow-interfaces={DAEMON_IFACE}\nenable-dbus=yes\n\
             ratelimit-interval-usec=1000000\nratelimit-burst=1000\n\
             [wide-area]\nenable-wide-area=no\n\
             [publish]\npublish-hinfo=no\npublish-workstation=no\npublish-addresses=yes\n\
             [reflector]\nenable-reflector=no\n"
        ),
    )
    .expect("write avahi-daemon.conf");
    let services = dir.join("services");
    fs::create_dir_all(&services).expect("create the services directory");
    let avahi = find_program("avahi-daemon").unwrap();
    let script = format!(
        "set -e; mkdir -p /etc/avahi/services; mount --bind '{services}' /etc/avahi/services; \
         mount -t tmpfs tmpfs /run; mkdir /run/avahi-daemon; \
         exec '{avahi}' --no-drop-root --no-chroot --no-rlimits --debug -f '{config}'",
        services = services.display(),
        avahi = avahi.display(),
        config = config.display(),
    );
    let mut command = namespace.command("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus);
    Process::spawn(name, command, &dir.join(format!("{name}.log")))
}

/// Runs this test again inside `namespace` as `role`, with the bus address if given.
fn spawn_role(namespace: &Namespace, role: &str, scratch: &Scratch, bus: Option<&str>) -> Process {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let mut command = namespace.command(exe);
    command
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(netns::ROLE_VAR, role)
        .env(netns::DIR_VAR, scratch.path());
    if let Some(bus) = bus {
        command.env("DBUS_SYSTEM_BUS_ADDRESS", bus);
    }
    Process::spawn(role, command, &scratch.path().join(format!("{role}.log")))
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

/// A responder whose events arrive on a channel.
fn responder() -> (AvahiResponder, mpsc::Receiver<MdnsEvent>) {
    // avahi-daemon may still be starting (claiming its host name): retry a while.
    let deadline = Instant::now() + STEP;
    loop {
        let (sender, events) = mpsc::channel();
        let sender = std::sync::Mutex::new(sender);
        let handler = Box::new(move |event: MdnsEvent| {
            println!("event: {event:?}");
            let _ = sender.lock().unwrap().send(event);
        });
        match AvahiResponder::connect(handler) {
            Ok(responder) => return (responder, events),
            Err(error @ (AvahiError::NotRunning | AvahiError::NotReady { .. }))
                if Instant::now() < deadline =>
            {
                println!("waiting for avahi-daemon: {error}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("connect: {error}"),
        }
    }
}

/// Waits at most [`STEP`] for an event that `wanted` accepts, skipping the others.
fn expect_event(
    events: &mpsc::Receiver<MdnsEvent>,
    what: &str,
    wanted: impl Fn(&MdnsEvent) -> bool,
) {
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if wanted(&event) => return,
            Ok(other) => println!("skipped {other:?} while waiting for {what}"),
            Err(_) => panic!("no {what} within {STEP:?}"),
        }
    }
}

fn is_announced(event: &MdnsEvent) -> bool {
    *event
        == MdnsEvent::Announced {
            iface: InterfaceId(0),
        }
}

fn is_renamed_to(name: &'static str) -> impl Fn(&MdnsEvent) -> bool {
    move |event| matches!(event, MdnsEvent::Renamed { kind: NameKind::Instance, name: new } if new == name)
}

fn wait_for(dir: &Path, file: &str) {
    assert!(
        netns::wait_for_file(&dir.join(file), 4 * STEP),
        "no {file} within {:?}",
        4 * STEP
    );
}

/// The responder child, next to avahi-daemon.
fn run_responder() {
    let _ = log_to_stderr();
    let dir = netns::scratch_dir();

    let (mut first, first_events) = responder();
    first
        .announce(&advertisement(INSTANCE, false, 1))
        .expect("announce");
    expect_event(&first_events, "Announced", is_announced);
    assert_eq!(first.instance_name(), INSTANCE);
    netns::signal(&dir.join(ANNOUNCED));

    wait_for(&dir, FOUND_FIRST);
    first
        .announce(&advertisement(INSTANCE, true, 2))
        .expect("update the TXT record");
    println!("updated the TXT record");

    // The same name, from another registration with the same daemon.
    wait_for(&dir, FOUND_UPDATED);
    let (mut second, second_events) = responder();
    let mut ad = advertisement(INSTANCE, true, 2);
    ad.port = PORT + 1;
    second.announce(&ad).expect("announce the same name");
    expect_event(
        &second_events,
        "Renamed to Test Light (2)",
        is_renamed_to("Test Light (2)"),
    );
    expect_event(&second_events, "Announced (second)", is_announced);
    assert_eq!(second.instance_name(), "Test Light (2)");
    assert_eq!(first.instance_name(), INSTANCE, "the first keeps its name");

    wait_for(&dir, FOUND_SECOND);
    first.goodbye().expect("goodbye");
    println!("said goodbye");
    assert!(
        matches!(
            first.announce(&advertisement(INSTANCE, true, 3)),
            Err(AvahiError::Withdrawn)
        ),
        "nothing is announced after the goodbye"
    );

    // A name another host on the link has: the collision comes from Avahi's probing.
    wait_for(&dir, BUSY_PUBLISHED);
    let (mut third, third_events) = responder();
    let mut ad = advertisement(BUSY, false, 1);
    ad.port = PORT + 2;
    third
        .announce(&ad)
        .expect("announce a name taken on the link");
    expect_event(
        &third_events,
        "Renamed to Busy Light (2)",
        is_renamed_to("Busy Light (2)"),
    );
    expect_event(&third_events, "Announced (third)", is_announced);
    assert_eq!(third.instance_name(), "Busy Light (2)");

    // A new avahi-daemon: the live registrations are made again.
    wait_for(&dir, FOUND_RENAMED);
    netns::signal(&dir.join(RESTART));
    expect_event(&third_events, "Announced after the restart", is_announced);
    expect_event(
        &second_events,
        "Announced after the restart (second)",
        is_announced,
    );
    assert_eq!(third.instance_name(), "Busy Light (2)");
    assert_eq!(second.instance_name(), "Test Light (2)");

    // Another port, with the name the application asked for first: the new name stays.
    ad.port = PORT + 3;
    third.announce(&ad).expect("move to another port");
    expect_event(&third_events, "Announced on the new port", is_announced);
    assert_eq!(third.instance_name(), "Busy Light (2)");
    wait_for(&dir, FOUND_MOVED);

    drop((first, second, third));
    netns::signal(&dir.join(RESPONDER_DONE));
    println!("done");
}

/// Logs to stderr (which the test keeps) when the `log` macros are used.
fn log_to_stderr() -> Result<(), log::SetLoggerError> {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            eprintln!("[{}] {}", record.level(), record.args());
        }
        fn flush(&self) {}
    }
    log::set_max_level(log::LevelFilter::Debug);
    log::set_logger(&Stderr)
}

/// The browser child, on the other end of the veth.
fn run_browser() {
    let dir = netns::scratch_dir();
    let browser = Browser::start(SERVICE).unwrap_or_else(|e| panic!("{e}"));

    wait_for(&dir, ANNOUNCED);
    let first = browser
        .resolved(STEP, |found| found.fullname == FULLNAME)
        .unwrap_or_else(|e| panic!("first resolution: {e}"));
    println!("resolved: {first:?}");
    first.write(&dir.join(FOUND_FIRST));

    let updated = browser
        .resolved(STEP, |found| {
            found.fullname == FULLNAME && found.txt.get("c#").map(String::as_str) == Some("2")
        })
        .unwrap_or_else(|e| panic!("the TXT update: {e}"));
    println!("updated: {updated:?}");
    updated.write(&dir.join(FOUND_UPDATED));

    let second = browser
        .resolved(STEP, |found| found.fullname == SECOND_FULLNAME)
        .unwrap_or_else(|e| panic!("the renamed second registration: {e}"));
    println!("second: {second:?}");
    second.write(&dir.join(FOUND_SECOND));

    browser
        .removed(FULLNAME, STEP)
        .unwrap_or_else(|e| panic!("removal after the goodbye: {e}"));
    println!("removed");
    netns::signal(&dir.join(REMOVED));

    // Publish "Busy Light" from this side of the link, before the responder tries it.
    let publisher = mdns_sd::ServiceDaemon::new().expect("start mdns-sd to publish");
    let properties: &[(&str, &str)] = &[("md", "Other")];
    let busy = mdns_sd::ServiceInfo::new(
        SERVICE,
        BUSY,
        "busy-host.local.",
        "192.0.2.1",
        1234,
        properties,
    )
    .expect("describe Busy Light");
    publisher.register(busy).expect("publish Busy Light");
    // Let its announcements go out, so that the daemon's probe meets an established name.
    std::thread::sleep(Duration::from_secs(2));
    netns::signal(&dir.join(BUSY_PUBLISHED));

    let renamed = browser
        .resolved(STEP, |found| found.fullname == BUSY_RENAMED_FULLNAME)
        .unwrap_or_else(|e| panic!("the registration renamed after a collision: {e}"));
    println!("renamed: {renamed:?}");
    renamed.write(&dir.join(FOUND_RENAMED));

    let moved = browser
        .resolved(STEP, |found| {
            found.fullname == BUSY_RENAMED_FULLNAME && found.port == PORT + 3
        })
        .unwrap_or_else(|e| panic!("the registration moved to another port: {e}"));
    println!("moved: {moved:?}");
    moved.write(&dir.join(FOUND_MOVED));

    wait_for(&dir, RESPONDER_DONE);
    if let Ok(done) = publisher.shutdown() {
        let _ = done.recv_timeout(Duration::from_secs(2));
    }
}
