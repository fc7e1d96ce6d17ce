//! Advertising an accessory over multicast DNS (RFC 6762) and DNS-SD (RFC 6763) with the
//! core's responder, [`hap_core::mdns::MdnsResponder`], over std UDP sockets.
//!
//! [`MdnsResponder`] implements [`hap_core::mdns::Responder`], so the host's
//! [`Advertiser`](hap_core::mdns::Advertiser) drives it: `announce` publishes or
//! updates the advertisement, `goodbye` withdraws it. The core probes the names before
//! using them (RFC 6762 §8.1), renames on a conflict ("Virtual Light (2)", §9), answers
//! queries, announces changes (§8.4) and says goodbye (§10.1); this module only moves its
//! datagrams and keeps its clock.
//!
//! - Sockets: one IPv4 and one IPv6 socket on port 5353, with `SO_REUSEADDR` and
//!   `SO_REUSEPORT` so that avahi-daemon or another accessory on the same host keeps
//!   working, multicast loop on (two accessories on one host hear each other's probes)
//!   and TTL / hop limit 255 (§11).
//! - Interfaces: every interface that is up, takes multicast and is not loopback, or only
//!   those named in [`MdnsConfig::interfaces`] (loopback allowed). They are looked at
//!   again every [`INTERFACE_CHECK`]: a new interface is joined to 224.0.0.251 and
//!   ff02::fb and probed, changed addresses are announced, a vanished interface is
//!   forgotten. An accessory started before its network is up appears when it comes up.
//! - Each datagram is handed to the core with the interface it came in on, read from its
//!   source address: an IPv6 link-local source by its scope id, any other by the
//!   interface whose subnet holds it. Datagrams from elsewhere are dropped (§11).
//!   Multicast leaves on the interface the core names (`IP_MULTICAST_IF` by that
//!   interface's IPv4 address, `IPV6_MULTICAST_IF` by its index).
//! - Sharing the host: the core itself drops its own datagrams heard back through
//!   multicast loopback; the driver sends a unicast answer to port 5353 of an address of
//!   this host to the group instead, since the system hands a unicast datagram to only
//!   one of the sockets sharing the port (RFC 6762 §15.1).
//! - Threads: one per socket reads datagrams; one more serves the core's deadlines and
//!   the interface check. Each waits at most [`THREAD_WAKE`] at a time, so all end
//!   within about that once told to stop. Dropping the responder first says goodbye if
//!   something is published (waiting at most [`GOODBYE_WAIT`]) and then stops them: a
//!   drop takes at most about `GOODBYE_WAIT + THREAD_WAKE`.
//! - What the core reports ([`MdnsEvent`]: probing, announced, conflict, renamed,
//!   addresses changed, withdrawn) goes to the callback given to [`MdnsResponder::new`],
//!   and to the log at debug level, with every datagram sent (interface, destination,
//!   records).
//!
//! [`browse`] finds accessories with the core's browser over the same sockets and
//! interfaces, for a bounded time.
//!
//! mDNS is optional: an application that does not want it uses
//! [`hap_core::mdns::NoResponder`] instead; `hap_std::avahi` registers through
//! avahi-daemon instead.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hap_core::mdns::responder::MIN_TRANSMIT_BUFFER;
use hap_core::mdns::{Advertisement, Responder};
use rand_core::OsRng;

mod browse;
mod driver;
mod iface;

pub use browse::{browse, BrowseError, BrowseOptions, Found, StopWhen};

pub use hap_core::mdns::responder::{
    HOST_RECORD_TTL, MDNS_GROUP_V4, MDNS_GROUP_V6, MDNS_PORT, OTHER_RECORD_TTL,
};
pub use hap_core::mdns::{InterfaceId, MdnsEvent, NameKind};

use driver::{Published, Shared, State};

/// How often the interfaces and their addresses are looked at again.
pub const INTERFACE_CHECK: Duration = Duration::from_millis(1500);

/// The longest a thread of the responder waits before it checks whether to stop.
pub const THREAD_WAKE: Duration = Duration::from_millis(250);

/// The longest [`Responder::goodbye`] waits for the goodbyes to be sent (twice, 250 ms
/// apart).
pub const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// Hears what the responder did: called on the responder's threads, without its lock
/// held. It must not block.
pub type EventSink = Box<dyn Fn(MdnsEvent) + Send + Sync>;

/// How an [`MdnsResponder`] is set up. The default serves every multicast interface that
/// is up but loopback, and names the host after the device id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdnsConfig {
    /// The names of the interfaces to serve, such as `eth0`; loopback is allowed here.
    /// When empty, every interface that is up, takes multicast and is not loopback.
    pub interfaces: Vec<String>,
    /// The host label the SRV record points to, such as `living-room-light` (a trailing
    /// `.local` is removed). When `None`, the device id in hexadecimal without colons,
    /// such as `123456789ABC`.
    pub host_name: Option<String>,
}

/// Why the [`MdnsResponder`] could not start or publish.
#[derive(Debug)]
#[non_exhaustive]
pub enum MdnsError {
    /// A socket or thread could not be set up.
    Io {
        /// What was being done, such as "bind 0.0.0.0:5353".
        action: &'static str,
        /// The error of the operating system.
        source: io::Error,
    },
    /// The core refused the advertisement, such as an empty instance name or an invalid
    /// host name.
    Refused(hap_core::mdns::MdnsError),
}

impl fmt::Display for MdnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { action, source } => write!(f, "mDNS: cannot {action}: {source}"),
            Self::Refused(e) => write!(f, "mDNS: {e}"),
        }
    }
}

impl std::error::Error for MdnsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Refused(e) => Some(e),
        }
    }
}

impl From<hap_core::mdns::MdnsError> for MdnsError {
    fn from(e: hap_core::mdns::MdnsError) -> Self {
        Self::Refused(e)
    }
}

/// An interface the responder serves, for banners and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedInterface {
    /// Its name, such as `eth0`.
    pub name: String,
    /// Its index.
    pub id: InterfaceId,
    /// The addresses advertised on it.
    pub addresses: Vec<IpAddr>,
}

/// The built-in responder; see the [module](self) docs.
///
/// Dropping it says goodbye if something is published (waiting at most
/// [`GOODBYE_WAIT`]) and then stops its threads, which takes about [`THREAD_WAKE`] more.
pub struct MdnsResponder {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for MdnsResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdnsResponder")
            .field("config", &self.shared.config)
            .field("interfaces", &self.interfaces())
            .finish_non_exhaustive()
    }
}

impl MdnsResponder {
    /// Binds the sockets on port 5353, looks at the interfaces and joins the mDNS groups
    /// on them, and starts the threads. Nothing is sent until [`Responder::announce`].
    /// `events` hears what the responder does.
    ///
    /// Fails if neither an IPv4 nor an IPv6 socket can be bound, or a thread cannot
    /// start. One family missing (a host without IPv6) is logged and served without.
    pub fn new(config: MdnsConfig, events: EventSink) -> Result<Self, MdnsError> {
        let (v4, v6) = driver::sockets()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                published: None,
                links: Vec::new(),
                joined: Vec::new(),
                rng: OsRng,
                buf: vec![0; MIN_TRANSMIT_BUFFER],
                next_check: Instant::now(),
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            v4,
            v6,
            epoch: Instant::now(),
            events,
            config,
        });
        // The first look now, so the interfaces are known when this returns.
        let events = {
            let mut state = shared.lock();
            let mut events = shared.check_interfaces(&mut state);
            events.extend(shared.flush(&mut state));
            events
        };
        shared.dispatch(events);

        let mut responder = Self {
            shared,
            threads: Vec::new(),
        };
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(|source| MdnsError::Io {
                    action: "start a thread",
                    source,
                })
        };
        let shared = responder.shared.clone();
        responder
            .threads
            .push(spawn("hap-mdns", Box::new(move || shared.run_timers()))?);
        if responder.shared.v4.is_some() {
            let shared = responder.shared.clone();
            let run = Box::new(move || shared.run_receiver(driver::Which::V4));
            responder.threads.push(spawn("hap-mdns-v4", run)?);
        }
        if responder.shared.v6.is_some() {
            let shared = responder.shared.clone();
            let run = Box::new(move || shared.run_receiver(driver::Which::V6));
            responder.threads.push(spawn("hap-mdns-v6", run)?);
        }
        Ok(responder)
    }

    /// The configuration this responder was made with.
    pub fn config(&self) -> &MdnsConfig {
        &self.shared.config
    }

    /// The interfaces served now, with the addresses advertised on each.
    pub fn interfaces(&self) -> Vec<ServedInterface> {
        self.shared
            .lock()
            .links
            .iter()
            .map(|link| ServedInterface {
                name: link.name.clone(),
                id: link.id,
                addresses: link.addresses(),
            })
            .collect()
    }

    /// The instance name advertised now, after any rename; `None` before the first
    /// announcement and after a goodbye.
    pub fn instance_name(&self) -> Option<String> {
        let state = self.shared.lock();
        let published = state.published.as_ref()?;
        Some(published.responder.instance_name().to_owned())
    }

    /// The host label advertised now (without `.local`), after any rename; `None` before
    /// the first announcement and after a goodbye.
    pub fn host_name(&self) -> Option<String> {
        let state = self.shared.lock();
        let published = state.published.as_ref()?;
        Some(published.responder.host_name().to_owned())
    }
}

impl Responder for MdnsResponder {
    type Error = MdnsError;

    /// Publishes `advertisement`, or updates the one published: a changed TXT record is
    /// announced again at once (§8.4); a new instance name is probed first. The same
    /// name as before keeps a name the responder chose after a conflict.
    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), MdnsError> {
        let shared = &self.shared;
        let events = {
            let mut state = shared.lock();
            let now = shared.now();
            let state = &mut *state;
            match state.published.as_mut() {
                Some(published) if !published.responder.is_withdrawn() => {
                    published.responder.set_advertisement(advertisement, now)?;
                }
                _ => {
                    let host = match &shared.config.host_name {
                        Some(name) => host_label(name).to_owned(),
                        None => advertisement
                            .device_id
                            .0
                            .iter()
                            .map(|byte| format!("{byte:02X}"))
                            .collect(),
                    };
                    let mut responder = hap_core::mdns::MdnsResponder::new(&host, advertisement)?;
                    for link in &state.links {
                        let addresses = link.addresses();
                        if let Err(e) =
                            responder.set_interface(link.id, &addresses, now, &mut state.rng)
                        {
                            log::warn!("mDNS: not serving {}: {e}", link.name);
                        }
                    }
                    log::debug!(
                        "mDNS: publishing {:?} on host {host}.local",
                        advertisement.name
                    );
                    state.published = Some(Published { responder });
                }
            }
            shared.flush(state)
        };
        shared.wake.notify_all();
        shared.dispatch(events);
        Ok(())
    }

    /// Withdraws the advertisement: every record with TTL 0 on every interface, and
    /// waits (at most [`GOODBYE_WAIT`]) until the goodbyes are sent. Does nothing when
    /// nothing is published.
    fn goodbye(&mut self) -> Result<(), MdnsError> {
        self.shared.goodbye(GOODBYE_WAIT);
        Ok(())
    }
}

impl Drop for MdnsResponder {
    fn drop(&mut self) {
        self.shared.goodbye(GOODBYE_WAIT);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::warn!("mDNS: a thread of the responder panicked");
            }
        }
    }
}

/// `name` without a trailing `.local` or `.local.`.
fn host_label(name: &str) -> &str {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    match trimmed.len().checked_sub(".local".len()) {
        Some(cut)
            if trimmed.is_char_boundary(cut) && trimmed[cut..].eq_ignore_ascii_case(".local") =>
        {
            &trimmed[..cut]
        }
        _ => trimmed,
    }
}

/// Locks, carrying on after a thread panicked while holding the lock: the responder's
/// state is still the best there is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An IPv6 socket address with the scope of `iface` when `address` is link-local and has
/// none.
fn scoped(address: SocketAddrV6, iface: InterfaceId) -> SocketAddr {
    let mut address = address;
    if address.ip().segments()[0] & 0xffc0 == 0xfe80 && address.scope_id() == 0 {
        address.set_scope_id(iface.0);
    }
    SocketAddr::V6(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels_lose_local() {
        assert_eq!(host_label("light"), "light");
        assert_eq!(host_label("light.local"), "light");
        assert_eq!(host_label("light.LOCAL."), "light");
        assert_eq!(host_label("é"), "é");
    }

    #[test]
    fn link_local_destinations_get_the_interface_scope() {
        let address: SocketAddrV6 = "[fe80::1]:5353".parse().unwrap();
        assert_eq!(
            scoped(address, InterfaceId(3)),
            "[fe80::1%3]:5353".parse::<SocketAddr>().unwrap()
        );
        let global: SocketAddrV6 = "[2001:db8::1]:5353".parse().unwrap();
        assert_eq!(scoped(global, InterfaceId(3)), SocketAddr::V6(global));
    }

    #[test]
    fn the_responder_can_move_to_another_thread() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<MdnsResponder>();
        send_and_sync::<MdnsError>();
    }
}
