//! Network namespaces for tests, processes run inside them, and an independent mDNS
//! browser (the `mdns-sd` crate) to look for services from inside one.
//!
//! Include it with `#[path = "support/netns.rs"] mod netns;`.
//!
//! A namespace made by [`Namespace::create`] has only `lo`, up, with multicast on and a
//! route for `224.0.0.0/4` (source 127.0.0.1), so mDNS traffic stays inside it. Creating
//! one needs root (`CAP_SYS_ADMIN`) and `ip` from iproute2; without them the test fails
//! and says why.
//!
//! A thread cannot be moved into a namespace without `unsafe`, so a test runs its parts in
//! child processes: [`Namespace::spawn_test`] runs the current test executable again
//! inside the namespace, filtered to one test, with [`ROLE_VAR`] naming the part to play,
//! and the test reads it back with [`role`]. Any other program runs inside with
//! [`Namespace::command`].
#![allow(dead_code)] // Each test uses a part.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};

/// The environment variable telling a re-executed test which part to play.
pub(crate) const ROLE_VAR: &str = "HAP_NETNS_ROLE";

/// The environment variable giving a re-executed test the [`Scratch`] directory.
pub(crate) const DIR_VAR: &str = "HAP_NETNS_DIR";

/// A unique number for names made by this process.
fn next_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A network namespace made for a test, deleted on drop (also when the test panics).
#[derive(Debug)]
pub(crate) struct Namespace {
    name: String,
}

impl Namespace {
    /// Makes a namespace named after this process, with `lo` up, multicast on, and a
    /// multicast route through `lo`. Panics, saying why, if it cannot.
    pub(crate) fn create() -> Namespace {
        Self::try_create().unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// Like [`create`](Self::create), returning why it failed.
    pub(crate) fn try_create() -> Result<Namespace, String> {
        let name = format!("hap-test-{}-{}", std::process::id(), next_number());
        let output = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|error| {
                format!(
                    "cannot run `ip netns add {name}` ({error}): this test needs `ip` from \
                     iproute2 (apt-get install iproute2)"
                )
            })?;
        if !output.status.success() {
            return Err(format!(
                "cannot create the network namespace {name}: `ip netns add` failed ({}): {}\n\
                 This test creates a network namespace to keep its multicast traffic off \
                 every real network, which needs root or CAP_SYS_ADMIN (the user id here is \
                 {}). Run it as root.",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                user_id(),
            ));
        }
        // From here on, drop deletes it.
        let namespace = Namespace { name };
        namespace.ip(&["link", "set", "lo", "up"])?;
        namespace.ip(&["link", "set", "lo", "multicast", "on"])?;
        // With a source address, or multicast leaves from 0.0.0.0 (127.0.0.1 is host-scoped).
        let route = [
            "route",
            "add",
            "224.0.0.0/4",
            "dev",
            "lo",
            "src",
            "127.0.0.1",
        ];
        namespace.ip(&route)?;
        Ok(namespace)
    }

    /// The name, as `ip netns` knows it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME args…` and fails if it does.
    pub(crate) fn ip(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .map_err(|error| format!("cannot run ip: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`ip -n {} {}` failed ({}): {}",
                self.name,
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// A command running `program` inside the namespace (`ip netns exec NAME program`;
    /// `ip` execs it, so the child's id is the program's). Add arguments and environment
    /// as usual.
    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs the test `test_name` of the current test executable inside the namespace,
    /// with [`ROLE_VAR`] set to `role` and [`DIR_VAR`] to `scratch`. Its output goes to
    /// `scratch/ROLE.log`.
    pub(crate) fn spawn_test(&self, test_name: &str, role: &str, scratch: &Scratch) -> Process {
        let exe = std::env::current_exe().expect("the path of the test executable");
        let mut command = self.command(exe);
        command
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role)
            .env(DIR_VAR, scratch.path());
        Process::spawn(role, command, &scratch.path().join(format!("{role}.log")))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        match Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output()
        {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "cannot delete the network namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => eprintln!("cannot delete the network namespace {}: {error}", self.name),
        }
    }
}

/// The user id, for messages.
fn user_id() -> String {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The part this process plays, when a test re-executed it; `None` in the test itself.
pub(crate) fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// The scratch directory given to a re-executed test.
pub(crate) fn scratch_dir() -> PathBuf {
    std::env::var_os(DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{DIR_VAR} is not set"))
}

/// A child process, killed (by its own id) and reaped on drop if still running.
#[derive(Debug)]
pub(crate) struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output going to `log`. Panics if it cannot start.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> Process {
        let file = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let file2 = file.try_clone().expect("clone the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({command:?}): {error}"));
        Process {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        }
    }

    /// The process id.
    pub(crate) fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits at most `timeout` for the process to end; `None` if it is still running.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return None,
                Err(error) => panic!("waiting for {}: {error}", self.name),
            }
        }
    }

    /// Waits at most `timeout` for a successful exit, and panics with the output if the
    /// process fails or does not end in time (it is killed then).
    pub(crate) fn expect_success(&mut self, timeout: Duration) {
        match self.wait_timeout(timeout) {
            Some(status) if status.success() => {}
            Some(status) => panic!("{} failed ({status}):\n{}", self.name, self.output()),
            None => {
                self.kill();
                panic!(
                    "{} did not finish within {timeout:?}:\n{}",
                    self.name,
                    self.output()
                )
            }
        }
    }

    /// What the process wrote so far to stdout and stderr.
    pub(crate) fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no output: {e})"))
    }

    /// Kills the process if it still runs, and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary directory for the files a test and its children share, removed on drop.
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Makes an empty directory under the system's temporary directory.
    pub(crate) fn new() -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "hap-netns-{}-{}",
            std::process::id(),
            next_number()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Scratch { path }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Creates the (empty) file `path`, as a signal to another process.
pub(crate) fn signal(path: &Path) {
    File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

/// Waits at most `timeout` for `path` to exist; whether it does.
pub(crate) fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A service instance resolved by [`Browser`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Such as `Test Light._hap._tcp.local.`.
    pub(crate) fullname: String,
    /// Such as `123456789ABC.local.`.
    pub(crate) host: String,
    /// The port of the SRV record.
    pub(crate) port: u16,
    /// The addresses, sorted.
    pub(crate) addresses: Vec<IpAddr>,
    /// The TXT record; a key without a value maps to an empty string.
    pub(crate) txt: BTreeMap<String, String>,
}

impl Found {
    /// As lines of text, to pass to another process; read back with [`parse`](Self::parse).
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "fullname={}", self.fullname);
        let _ = writeln!(text, "host={}", self.host);
        let _ = writeln!(text, "port={}", self.port);
        for address in &self.addresses {
            let _ = writeln!(text, "address={address}");
        }
        for (key, value) in &self.txt {
            let _ = writeln!(text, "txt.{key}={value}");
        }
        text
    }

    /// Reads [`to_text`](Self::to_text) back.
    pub(crate) fn parse(text: &str) -> Result<Found, String> {
        let mut found = Found::default();
        for line in text.lines() {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("not key=value: {line:?}"))?;
            match key {
                "fullname" => found.fullname = value.to_owned(),
                "host" => found.host = value.to_owned(),
                "port" => found.port = value.parse().map_err(|e| format!("port: {e}"))?,
                "address" => found
                    .addresses
                    .push(value.parse().map_err(|e| format!("address: {e}"))?),
                _ => match key.strip_prefix("txt.") {
                    Some(key) => {
                        found.txt.insert(key.to_owned(), value.to_owned());
                    }
                    None => return Err(format!("unknown key {key:?}")),
                },
            }
        }
        Ok(found)
    }

    /// Writes [`to_text`](Self::to_text) to `path`, atomically (a reader never sees half).
    pub(crate) fn write(&self, path: &Path) {
        let temporary = path.with_extension("partial");
        fs::write(&temporary, self.to_text())
            .unwrap_or_else(|e| panic!("write {}: {e}", temporary.display()));
        fs::rename(&temporary, path)
            .unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
    }

    /// Reads what [`write`](Self::write) wrote.
    pub(crate) fn read(path: &Path) -> Result<Found, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        Self::parse(&text)
    }
}

/// Browses for one service type with `mdns-sd`, an mDNS implementation independent of
/// the one under test. It listens on every interface, loopback included.
pub(crate) struct Browser {
    daemon: ServiceDaemon,
    events: mdns_sd::Receiver<ServiceEvent>,
    service_type: String,
}

impl Browser {
    /// Starts browsing for `service_type`, such as `_hap._tcp.local.`.
    pub(crate) fn start(service_type: &str) -> Result<Browser, String> {
        let daemon = ServiceDaemon::new().map_err(|e| format!("start mdns-sd: {e}"))?;
        // Loopback is enabled by default in mdns-sd 0.21; say so in case that changes.
        daemon
            .enable_interface(vec![
                mdns_sd::IfKind::LoopbackV4,
                mdns_sd::IfKind::LoopbackV6,
            ])
            .map_err(|e| format!("enable loopback in mdns-sd: {e}"))?;
        let events = daemon
            .browse(service_type)
            .map_err(|e| format!("browse {service_type}: {e}"))?;
        Ok(Browser {
            daemon,
            events,
            service_type: service_type.to_owned(),
        })
    }

    /// Waits at most `timeout` for an instance resolved with data that `wanted` accepts,
    /// skipping the others. The error tells what was seen meanwhile.
    pub(crate) fn resolved(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&Found) -> bool,
    ) -> Result<Found, String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ServiceEvent::ServiceResolved(service)) => {
                    let mut addresses: Vec<IpAddr> = service
                        .get_addresses()
                        .iter()
                        .map(|address| address.to_ip_addr())
                        .collect();
                    addresses.sort();
                    let found = Found {
                        fullname: service.get_fullname().to_owned(),
                        host: service.get_hostname().to_owned(),
                        port: service.get_port(),
                        addresses,
                        txt: service
                            .get_properties()
                            .iter()
                            .map(|property| {
                                (property.key().to_owned(), property.val_str().to_owned())
                            })
                            .collect(),
                    };
                    if wanted(&found) {
                        return Ok(found);
                    }
                    seen.push(format!("resolved {found:?}"));
                }
                Ok(event) => seen.push(format!("{event:?}")),
                Err(_) => {
                    return Err(format!(
                        "no matching {} instance resolved within {timeout:?}; events seen: \
                         {seen:#?}",
                        self.service_type
                    ))
                }
            }
        }
    }

    /// Waits at most `timeout` for the instance `fullname` to be removed.
    pub(crate) fn removed(&self, fullname: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ServiceEvent::ServiceRemoved(_, name)) if name == fullname => return Ok(()),
                Ok(event) => seen.push(format!("{event:?}")),
                Err(_) => {
                    return Err(format!(
                        "{fullname} not removed within {timeout:?}; events seen: {seen:#?}"
                    ))
                }
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Wait (briefly) for the daemon thread to end.
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// Browses for `service_type` until an instance named `instance` (the first label, such
/// as `Test Light`) resolves, at most `timeout`; for a child process that only looks.
pub(crate) fn browse_for(
    service_type: &str,
    instance: &str,
    timeout: Duration,
) -> Result<Found, String> {
    let fullname = format!("{instance}.{service_type}");
    Browser::start(service_type)?.resolved(timeout, |found| found.fullname == fullname)
}
