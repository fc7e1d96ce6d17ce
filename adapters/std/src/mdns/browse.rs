//! Finding accessories: the core's browser ([`hap_core::mdns::browser::Browser`]) over
//! the responder's sockets, for a bounded time.
//!
//! The sockets and interfaces are the responder's: port 5353 shared with
//! `SO_REUSEADDR`/`SO_REUSEPORT`, 224.0.0.251 and ff02::fb joined on each interface,
//! multicast loop on, and the arrival interface read from the source address. One
//! thread per socket hands datagrams to the calling thread, which runs the browser's
//! loop until the time is up or [`BrowseOptions::stop_when`] says so.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hap_core::mdns::browser::{BrowseEvent, Browser, HapTxt, Instance};
use hap_core::mdns::responder::MIN_TRANSMIT_BUFFER;
use hap_core::mdns::InterfaceId;

use super::driver;
use super::iface::{self, Link};

/// The longest a receiving thread of [`browse`] waits before it checks whether to stop.
const RECEIVE_WAKE: Duration = Duration::from_millis(50);

/// The largest datagram read: the most RFC 6762 §17 allows.
const MAX_DATAGRAM: usize = 9000;

/// A test of each accessory found or updated, to end [`browse`] early.
pub type StopWhen = Box<dyn FnMut(&Found) -> bool + Send>;

/// What [`browse`] looks for, and for how long.
pub struct BrowseOptions {
    /// How long to listen.
    pub duration: Duration,
    /// The interfaces to browse on, such as `eth0`; loopback is allowed here. When
    /// empty, every interface that is up, takes multicast and is not loopback (the
    /// responder's rule).
    pub interfaces: Vec<String>,
    /// Called with each accessory when it is found (its address resolved) and when it
    /// changes; returning `true` ends the browse at once.
    pub stop_when: Option<StopWhen>,
}

impl Default for BrowseOptions {
    /// 3 s, every interface, no early stop.
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(3),
            interfaces: Vec::new(),
            stop_when: None,
        }
    }
}

impl fmt::Debug for BrowseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowseOptions")
            .field("duration", &self.duration)
            .field("interfaces", &self.interfaces)
            .field("stop_when", &self.stop_when.as_ref().map(|_| "…"))
            .finish()
    }
}

/// An accessory found by [`browse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The instance name, as advertised: `Virtual Light`.
    pub name: String,
    /// The host of its SRV record: `Virtual-Light.local`.
    pub host: String,
    /// The port of its SRV record.
    pub port: u16,
    /// Its host's addresses, IPv4 first, then IPv6. Link-local IPv6 addresses
    /// (`fe80::/10`) carry no scope here: each was heard on [`Found::interface`], their
    /// scope (those heard only on other interfaces are left out).
    pub addresses: Vec<IpAddr>,
    /// The index of the interface its first address was heard on.
    pub interface: u32,
    /// `id`: the device id, `AA:BB:CC:DD:EE:FF`.
    pub id: Option<String>,
    /// `c#`: the configuration number.
    pub config_number: Option<u32>,
    /// `s#`: the state number.
    pub state_number: Option<u32>,
    /// `sf`: the status flags; bit 0 set means not paired.
    pub status_flags: Option<u8>,
    /// `ci`: the category number.
    pub category: Option<u16>,
    /// `md`: the model.
    pub model: Option<String>,
    /// `ff`: the feature flags.
    pub feature_flags: Option<u8>,
    /// `pv`: the protocol version.
    pub protocol_version: Option<String>,
}

impl Found {
    /// Whether a controller is paired: `sf` bit 0 clear; `None` without a valid `sf`.
    pub fn is_paired(&self) -> Option<bool> {
        let txt = HapTxt {
            status_flags: self.status_flags,
            ..HapTxt::default()
        };
        txt.is_paired()
    }

    /// The accessory as the core's browser knows it; `None` unless it is resolved
    /// (SRV, TXT and an address).
    fn from_instance(instance: &Instance) -> Option<Self> {
        if !instance.is_resolved() {
            return None;
        }
        let txt = instance.txt()?;
        let interface = instance.interface();
        Some(Self {
            name: instance.name().to_owned(),
            host: instance.host()?.to_owned(),
            port: instance.port()?,
            addresses: scoped_to(interface, instance.addresses_with_interface()),
            interface: interface.0,
            id: txt.device_id.map(|id| id.to_string()),
            config_number: txt.config_number,
            state_number: txt.state_number,
            status_flags: txt.status_flags,
            category: txt.category,
            model: txt.model.as_deref().map(str::to_owned),
            feature_flags: txt.feature_flags,
            protocol_version: txt.protocol_version.as_deref().map(str::to_owned),
        })
    }
}

/// The addresses of `heard` (each with the interface it was heard on) that mean the
/// same with `interface` as their scope: all but the link-local IPv6 ones heard on other
/// interfaces.
fn scoped_to(
    interface: InterfaceId,
    heard: impl Iterator<Item = (IpAddr, InterfaceId)>,
) -> Vec<IpAddr> {
    heard
        .filter(|(ip, on)| {
            *on == interface || !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
        })
        .map(|(ip, _)| ip)
        .collect()
}

/// Why [`browse`] could not browse.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrowseError {
    /// A socket, a thread or the interface list could not be set up.
    Io {
        /// What was being done, such as "bind 0.0.0.0:5353".
        action: &'static str,
        /// The error of the operating system.
        source: io::Error,
    },
    /// No interface to browse on: none of those named is up, or (none named) no
    /// interface but loopback is up and takes multicast.
    NoInterface {
        /// The interfaces asked for; empty for every one.
        requested: Vec<String>,
    },
}

impl fmt::Display for BrowseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { action, source } => write!(f, "mDNS: cannot {action}: {source}"),
            Self::NoInterface { requested } if requested.is_empty() => {
                f.write_str("mDNS: no network interface to browse on")
            }
            Self::NoInterface { requested } => write!(
                f,
                "mDNS: none of the interfaces {} is up to browse on",
                requested.join(", ")
            ),
        }
    }
}

impl std::error::Error for BrowseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::NoInterface { .. } => None,
        }
    }
}

impl From<super::MdnsError> for BrowseError {
    fn from(error: super::MdnsError) -> Self {
        match error {
            super::MdnsError::Io { action, source } => Self::Io { action, source },
            super::MdnsError::Refused(e) => Self::Io {
                action: "set up mDNS",
                source: io::Error::other(e),
            },
        }
    }
}

/// Browses for `_hap._tcp.local.` for `options.duration` (less if
/// [`BrowseOptions::stop_when`] matches), and returns the accessories resolved by then
/// (SRV, TXT and at least one address), sorted by name then id. An accessory that said
/// goodbye is not among them.
///
/// ```no_run
/// use hap_std::mdns::{browse, BrowseOptions};
///
/// for found in browse(BrowseOptions::default())? {
///     println!("{} at {:?} port {} (paired: {:?})", found.name, found.addresses, found.port,
///         found.is_paired());
/// }
/// # Ok::<(), hap_std::mdns::BrowseError>(())
/// ```
pub fn browse(mut options: BrowseOptions) -> Result<Vec<Found>, BrowseError> {
    let (v4, v6) = driver::sockets()?;
    for socket in [&v4, &v6].into_iter().flatten() {
        socket
            .set_read_timeout(Some(RECEIVE_WAKE))
            .map_err(|source| BrowseError::Io {
                action: "set a read timeout",
                source,
            })?;
    }
    let links = iface::scan(&options.interfaces).map_err(|source| BrowseError::Io {
        action: "list the interfaces",
        source,
    })?;
    let links = driver::servable(links, v4.is_some(), v6.is_some());
    if links.is_empty() {
        return Err(BrowseError::NoInterface {
            requested: options.interfaces.clone(),
        });
    }
    let epoch = Instant::now();
    let deadline = epoch + options.duration;
    let core_now = || hap_core::time::Instant::from_millis(epoch.elapsed().as_millis() as u64);
    // About 10 KiB: on the heap rather than the stack.
    let mut browser = Box::new(Browser::new(core_now()));
    let mut joined = Vec::new();
    for link in &links {
        driver::join_groups(v4.as_ref(), v6.as_ref(), &mut joined, link);
        if let Err(e) = browser.add_interface(link.id) {
            log::debug!("mDNS: not browsing on {}: {e}", link.name);
        }
    }
    log::debug!(
        "mDNS: browsing on {:?}",
        links.iter().map(|l| &l.name).collect::<Vec<_>>()
    );

    let stop = AtomicBool::new(false);
    let (datagrams, received) = mpsc::channel();
    std::thread::scope(|scope| {
        for socket in [&v4, &v6].into_iter().flatten() {
            let datagrams = datagrams.clone();
            let stop = &stop;
            let spawned = std::thread::Builder::new()
                .name("hap-mdns-browse".into())
                .spawn_scoped(scope, move || receive(socket, &datagrams, stop));
            if let Err(source) = spawned {
                // The scope waits for the thread already started: stop it.
                stop.store(true, Ordering::SeqCst);
                return Err(BrowseError::Io {
                    action: "start a thread",
                    source,
                });
            }
        }
        drop(datagrams);
        let mut buf = vec![0; MIN_TRANSMIT_BUFFER];
        loop {
            let now = core_now();
            browser.handle_timeout(now);
            while let Some(transmit) = browser.poll_transmit(now, &mut buf) {
                driver::send_transmit(v4.as_ref(), v6.as_ref(), &links, &transmit);
            }
            let mut done = false;
            while let Some(event) = browser.poll_event() {
                log::debug!("mDNS: {event:?}");
                let (BrowseEvent::Found(name) | BrowseEvent::Updated(name)) = &event else {
                    continue;
                };
                let found = browser.instance(name).and_then(Found::from_instance);
                if let (Some(stop_when), Some(found)) = (&mut options.stop_when, found) {
                    done |= stop_when(&found);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if done || left.is_zero() {
                break;
            }
            let next = browser.poll_timeout().map_or(left, |at| {
                (epoch + Duration::from_millis(at.as_millis()))
                    .saturating_duration_since(Instant::now())
            });
            let wait = next.min(left).max(Duration::from_millis(1));
            match received.recv_timeout(wait) {
                Ok((source, datagram)) => {
                    handle(&mut browser, &links, core_now(), source, &datagram)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both receivers ended; nothing more can arrive.
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
        stop.store(true, Ordering::SeqCst);
        Ok::<(), BrowseError>(())
    })?;

    let dropped = browser.dropped();
    if dropped != Default::default() {
        log::debug!("mDNS: the browser dropped {dropped:?}");
    }
    let mut found: Vec<Found> = browser
        .instances()
        .filter_map(Found::from_instance)
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(found)
}

/// Reads datagrams from `socket` into `datagrams` until `stop`.
fn receive(socket: &UdpSocket, datagrams: &mpsc::Sender<(SocketAddr, Vec<u8>)>, stop: &AtomicBool) {
    let mut buf = vec![0; MAX_DATAGRAM];
    while !stop.load(Ordering::SeqCst) {
        match socket.recv_from(&mut buf) {
            Ok((len, source)) => {
                if datagrams.send((source, buf[..len].to_vec())).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                log::debug!("mDNS: receiving: {e}");
                std::thread::sleep(RECEIVE_WAKE);
            }
        }
    }
}

/// Hands a datagram to the browser with the interface it came in on; datagrams from
/// off-link sources are dropped (RFC 6762 §11).
fn handle(
    browser: &mut Browser,
    links: &[Link],
    now: hap_core::time::Instant,
    source: SocketAddr,
    datagram: &[u8],
) {
    let scope = match source {
        SocketAddr::V6(v6) => v6.scope_id(),
        SocketAddr::V4(_) => 0,
    };
    let Some(iface) = iface::interface_of(source.ip(), scope, links) else {
        log::trace!("mDNS: dropped a datagram from {source}: not on a browsed link");
        return;
    };
    if let Err(e) = browser.handle_datagram(now, iface, source, datagram) {
        log::trace!("mDNS: dropped a datagram from {source}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_is_paired_reads_bit_0_of_sf() {
        let mut found = Found {
            name: "Light".into(),
            host: "light.local".into(),
            port: 1,
            addresses: Vec::new(),
            interface: 1,
            id: None,
            config_number: None,
            state_number: None,
            status_flags: Some(1),
            category: None,
            model: None,
            feature_flags: None,
            protocol_version: None,
        };
        assert_eq!(found.is_paired(), Some(false));
        found.status_flags = Some(2);
        assert_eq!(found.is_paired(), Some(true));
        found.status_flags = None;
        assert_eq!(found.is_paired(), None);
    }

    #[test]
    fn link_local_addresses_are_kept_only_on_the_found_interface() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let heard = [
            (ip("192.0.2.2"), InterfaceId(2)),
            (ip("198.51.100.2"), InterfaceId(3)),
            (ip("fe80::2"), InterfaceId(3)),
            (ip("fe80::2"), InterfaceId(2)),
            (ip("2001:db8::2"), InterfaceId(3)),
        ];
        assert_eq!(
            scoped_to(InterfaceId(2), heard.into_iter()),
            [
                ip("192.0.2.2"),
                ip("198.51.100.2"),
                ip("fe80::2"),
                ip("2001:db8::2")
            ]
        );
        assert_eq!(
            scoped_to(InterfaceId(4), heard.into_iter()),
            [ip("192.0.2.2"), ip("198.51.100.2"), ip("2001:db8::2")]
        );
    }

    #[test]
    fn the_default_listens_3_s_everywhere() {
        let options = BrowseOptions::default();
        assert_eq!(options.duration, Duration::from_secs(3));
        assert!(options.interfaces.is_empty());
        assert!(options.stop_when.is_none());
        fn send<T: Send>() {}
        send::<BrowseOptions>();
        send::<BrowseError>();
    }
}
