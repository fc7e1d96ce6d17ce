//! The accessory under test: one of the virtual-light examples, as a child process.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use hap_core::persist::Snapshot;
use hap_std::store::{FileStore, Store};

/// The setup code every accessory of the suite is started with.
pub(crate) const SETUP_CODE: &str = "518-08-582";

/// A virtual-light binary to test.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `smol` or `std`.
    pub(crate) name: String,
    pub(crate) binary: PathBuf,
}

/// A running virtual light, on 127.0.0.1 unless started with [`Accessory::start_on`],
/// without mDNS. Killed when dropped.
pub(crate) struct Accessory {
    target: Target,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Where to connect to it: the address it printed, with loopback for an unspecified
    /// one (`::1` for `[::]`).
    pub(crate) address: SocketAddr,
    /// The address it printed.
    pub(crate) listening: SocketAddr,
    /// `--bind`'s value, or `None` for the light's default.
    bind: Option<String>,
    /// Its data directory.
    pub(crate) data: PathBuf,
    extra: Vec<String>,
}

impl Accessory {
    /// Starts `target` on the data in `data` with `extra` flags, and waits until it
    /// listens.
    pub(crate) fn start(target: &Target, data: &Path, extra: &[&str]) -> Self {
        Self::start_on(target, Some("127.0.0.1"), data, extra)
    }

    /// [`Accessory::start`] with `--bind bind`, or without `--bind` for `None`.
    pub(crate) fn start_on(
        target: &Target,
        bind: Option<&str>,
        data: &Path,
        extra: &[&str],
    ) -> Self {
        let mut command = Command::new(&target.binary);
        if let Some(bind) = bind {
            command.args(["--bind", bind]);
        }
        let mut child = command
            .args(["--no-mdns", "--port", "0"])
            .args(["--pin", SETUP_CODE, "--data"])
            .arg(data)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", target.binary.display()));
        let stdin = child.stdin.take().expect("a piped stdin");
        let stdout = child.stdout.take().expect("a piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut accessory = Self {
            target: target.clone(),
            child,
            stdin,
            lines,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            listening: SocketAddr::from(([127, 0, 0, 1], 0)),
            bind: bind.map(str::to_owned),
            data: data.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        let line = accessory.wait_for_line("listening on", Duration::from_secs(20));
        accessory.listening = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        accessory.address = match accessory.listening.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), accessory.listening.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), accessory.listening.port())
            }
            _ => accessory.listening,
        };
        accessory
    }

    /// The first line printed from now on that contains `needle`.
    pub(crate) fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let status = self.child.try_wait().ok().flatten();
        panic!(
            "{}: no line with {needle:?} within {limit:?} (exit status {status:?})",
            self.target.name
        );
    }

    /// Types a command on its stdin, as a user would.
    pub(crate) fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("the accessory's stdin");
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, then start again on the same data with the same flags.
    pub(crate) fn restart(mut self) -> Self {
        self.kill();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        Self::start_on(&self.target, self.bind.as_deref(), &self.data, &extra)
    }

    /// The stored state, read as the accessory reads it at start-up.
    pub(crate) fn stored(&self) -> Result<Option<Snapshot>, String> {
        FileStore::open(&self.data)
            .and_then(|mut store| store.load())
            .map_err(|e| format!("{e}"))
    }

    /// Resident memory, in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// Open file descriptors.
    pub(crate) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/PID/fd")
            .count()
    }
}

impl Drop for Accessory {
    fn drop(&mut self) {
        self.kill();
    }
}
