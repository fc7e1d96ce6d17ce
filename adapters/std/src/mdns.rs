//! Advertising an accessory over multicast DNS (RFC 6762) and DNS-SD (RFC 6763).
//!
//! [`MdnsResponder`] implements [`hap_core::mdns::Responder`]: it publishes
//! [`SERVICE_TYPE`] (`_hap._tcp.local`) with
//!
//! - a PTR record from the service type to the instance (the accessory's name), and one
//!   from `_services._dns-sd._udp.local` to the service type,
//! - an SRV record from the instance to the host name and port,
//! - a TXT record with the entries of [`Advertisement::txt`] as `key=value` strings,
//! - A and AAAA records from the host name to its addresses.
//!
//! Queries are answered by a [`SimpleMdnsResponder`] from the `simple-mdns` crate. The
//! unsolicited announcements (RFC 6762 §8.3: sent three times, one then two seconds apart,
//! from a background thread so that [`Responder::announce`] returns at once) and the
//! goodbyes (the same records with a TTL of zero, RFC 6762 §10.1) are built here with
//! `simple-dns` and sent from a socket bound to port 5353.
//!
//! mDNS is optional: an application that does not want it uses
//! [`hap_core::mdns::NoResponder`] instead.
//!
//! # Limitations
//!
//! - IPv4 only: queries are read and announcements sent on `224.0.0.251`; AAAA records are
//!   still published there.
//! - No probing or conflict resolution (RFC 6762 §8.1, §9): the instance and host names
//!   are used as given.
//! - The query-answering thread of `simple-mdns` cannot be stopped: after
//!   [`Responder::goodbye`] or drop its records are cleared, so it answers nothing, but the
//!   thread and its sockets stay until the process exits. With [`MdnsConfig::interface`]
//!   set it reads queries on that interface, but its answers leave on the default
//!   multicast interface.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hap_core::mdns::{Advertisement, Responder, SERVICE_TYPE};
use simple_dns::rdata::{RData, A, AAAA, PTR, SRV, TXT};
use simple_dns::{Label, Name, Packet, PacketFlag, ResourceRecord, CLASS};
use simple_mdns::sync_discovery::SimpleMdnsResponder;
use simple_mdns::NetworkScope;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The IPv4 multicast group of mDNS.
pub const MDNS_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// The UDP port of mDNS.
pub const MDNS_PORT: u16 = 5353;

/// The TTL, in seconds, of records that name a host: SRV, A and AAAA (RFC 6762 §10).
pub const HOST_RECORD_TTL: u32 = 120;

/// The TTL, in seconds, of the other records: PTR and TXT (RFC 6762 §10).
pub const OTHER_RECORD_TTL: u32 = 4500;

/// How many times an advertisement is announced (RFC 6762 §8.3 asks for at least two).
const ANNOUNCEMENTS: u32 = 3;

/// The wait before the second announcement; it doubles after each one.
const FIRST_INTERVAL: Duration = Duration::from_secs(1);

/// The longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;

/// The longest DNS name, in bytes, as text without the final dot.
const MAX_NAME_LEN: usize = 253;

/// The DNS-SD service type enumeration name (RFC 6763 §9).
const SERVICES_NAME: &str = "_services._dns-sd._udp.local";

/// How an [`MdnsResponder`] is set up. The default joins and sends on the default
/// interface, advertises every address of the host and names the host after the device
/// id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdnsConfig {
    /// The address of the interface to read queries on and send announcements from;
    /// `None` lets the system choose by its routes to `224.0.0.251`.
    pub interface: Option<Ipv4Addr>,
    /// The addresses to advertise in A and AAAA records. When empty, the addresses of the
    /// interfaces that are up are looked up at each announcement: those of the interface
    /// of [`interface`](Self::interface) if set, else every non-loopback address, or the
    /// loopback addresses if there are no others.
    pub addresses: Vec<IpAddr>,
    /// The host name the SRV record points to, such as `living-room-light` or
    /// `living-room-light.local` (`.local` is added when missing). When `None`, it is the
    /// device id in hexadecimal without colons, such as `123456789ABC.local`.
    pub host_name: Option<String>,
}

/// Why the [`MdnsResponder`] could not be set up or could not publish.
#[derive(Debug)]
#[non_exhaustive]
pub enum MdnsError {
    /// A socket operation failed.
    Io {
        /// What was being done, such as "join 224.0.0.251".
        action: &'static str,
        /// The error of the operating system.
        source: io::Error,
    },
    /// A host or instance name cannot be a DNS name.
    InvalidName {
        /// The name refused.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No address to advertise: none configured and none found on the interfaces.
    NoAddress,
    /// The records could not be encoded into a DNS message.
    Encode(String),
}

impl fmt::Display for MdnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { action, source } => write!(f, "mDNS: cannot {action}: {source}"),
            Self::InvalidName { name, reason } => {
                write!(f, "mDNS: invalid name {name:?}: {reason}")
            }
            Self::NoAddress => f.write_str("mDNS: no address to advertise"),
            Self::Encode(reason) => write!(f, "mDNS: cannot encode the records: {reason}"),
        }
    }
}

impl std::error::Error for MdnsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Wraps an I/O error with what was being done.
fn io_error(action: &'static str) -> impl FnOnce(io::Error) -> MdnsError {
    move |source| MdnsError::Io { action, source }
}

fn encode_error(error: simple_dns::SimpleDnsError) -> MdnsError {
    MdnsError::Encode(error.to_string())
}

/// Publishes an [`Advertisement`] over multicast DNS; see the [module](self) docs.
///
/// Dropping it withdraws the advertisement with a goodbye if one is published, and stops
/// the announcing thread.
pub struct MdnsResponder {
    config: MdnsConfig,
    /// The configured host name, checked, as labels without `local`.
    host_labels: Option<Vec<Vec<u8>>>,
    answerer: SimpleMdnsResponder,
    announcer: Arc<Announcer>,
    worker: Option<JoinHandle<()>>,
    /// The records published, with their normal TTLs; empty when nothing is.
    published: Vec<ResourceRecord<'static>>,
}

impl fmt::Debug for MdnsResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdnsResponder")
            .field("config", &self.config)
            .field("published", &self.published.len())
            .finish_non_exhaustive()
    }
}

impl MdnsResponder {
    /// Checks `config`, binds the sockets and starts answering queries (with nothing, until
    /// [`Responder::announce`]).
    ///
    /// Fails if the host name is invalid, or if the sockets cannot be bound to port 5353
    /// or join `224.0.0.251` (for instance, when no interface routes multicast).
    pub fn new(config: MdnsConfig) -> Result<Self, MdnsError> {
        let host_labels = config.host_name.as_deref().map(host_labels).transpose()?;

        // The answering thread of simple-mdns only logs its socket errors, so try what it
        // does first to report them here.
        probe_membership(config.interface)?;
        let socket = sender_socket(config.interface)?;

        let announcer = Arc::new(Announcer {
            socket,
            schedule: Mutex::new(Schedule {
                pending: None,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let worker = {
            let announcer = Arc::clone(&announcer);
            std::thread::Builder::new()
                .name("hap-mdns-announce".into())
                .spawn(move || announcer.run())
                .map_err(io_error("start the announcing thread"))?
        };

        let scope = match config.interface {
            Some(interface) => NetworkScope::V4WithInterface(interface),
            None => NetworkScope::V4,
        };
        let answerer = SimpleMdnsResponder::new_with_scope(OTHER_RECORD_TTL, scope);

        Ok(Self {
            config,
            host_labels,
            answerer,
            announcer,
            worker: Some(worker),
            published: Vec::new(),
        })
    }

    /// The configuration this responder was made with.
    pub fn config(&self) -> &MdnsConfig {
        &self.config
    }

    /// The host name for `advertisement`.
    fn host_name(&self, advertisement: &Advertisement<'_>) -> Name<'static> {
        let labels = match &self.host_labels {
            Some(labels) => labels.clone(),
            None => {
                let hex: String = advertisement
                    .device_id
                    .0
                    .iter()
                    .map(|byte| format!("{byte:02X}"))
                    .collect();
                vec![hex.into_bytes()]
            }
        };
        let labels: Vec<Label<'static>> = labels
            .into_iter()
            .chain(std::iter::once(b"local".to_vec()))
            .map(|label| Label::new_unchecked(Cow::Owned(label)))
            .collect();
        Name::new_with_labels(&labels)
    }

    /// The addresses to advertise now.
    fn addresses(&self) -> Result<Vec<IpAddr>, MdnsError> {
        let mut addresses = if self.config.addresses.is_empty() {
            interface_addresses(self.config.interface)?
        } else {
            self.config.addresses.clone()
        };
        let mut seen = Vec::with_capacity(addresses.len());
        addresses.retain(|address| {
            let new = !seen.contains(address);
            seen.push(*address);
            new
        });
        if addresses.is_empty() {
            return Err(MdnsError::NoAddress);
        }
        Ok(addresses)
    }
}

impl Responder for MdnsResponder {
    type Error = MdnsError;

    /// Publishes `advertisement` in place of the one published, if any, and announces it:
    /// once now, then twice more from the background thread.
    ///
    /// Records the new advertisement no longer has (another instance name, host name or
    /// address family) are withdrawn in the first announcement; the others are replaced
    /// through the cache-flush bit. If sending the first announcement fails, the records
    /// are still published and the later announcements still scheduled.
    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), MdnsError> {
        let host = self.host_name(advertisement);
        let addresses = self.addresses()?;
        let records = records(advertisement, &host, &addresses)?;

        let mut first: Vec<ResourceRecord<'static>> = records.clone();
        first.extend(stale_records(&self.published, &records).map(|record| {
            let mut goodbye = record.clone();
            goodbye.ttl = 0;
            goodbye
        }));
        let first = encode(&first)?;
        let repeat = encode(&records)?;

        self.answerer.clear();
        for record in &records {
            self.answerer.add_resource(record.clone());
        }
        self.published = records;
        self.announcer.announce(first, repeat)
    }

    /// Withdraws the published records with a goodbye, cancels the announcements still
    /// due and stops answering queries. Does nothing when nothing is published.
    fn goodbye(&mut self) -> Result<(), MdnsError> {
        self.answerer.clear();
        if self.published.is_empty() {
            self.announcer.cancel();
            return Ok(());
        }
        let goodbye: Vec<ResourceRecord<'static>> = self
            .published
            .iter()
            .map(|record| {
                let mut record = record.clone();
                record.ttl = 0;
                record
            })
            .collect();
        let packet = encode(&goodbye);
        self.published.clear();
        self.announcer.goodbye(&packet?)
    }
}

impl Drop for MdnsResponder {
    fn drop(&mut self) {
        if !self.published.is_empty() {
            if let Err(error) = self.goodbye() {
                log::warn!("{error}");
            }
        }
        self.answerer.clear();
        self.announcer.lock().stop = true;
        self.announcer.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                log::warn!("mDNS: the announcing thread panicked");
            }
        }
    }
}

/// The announcements still to send, shared with the announcing thread.
#[derive(Debug)]
struct Schedule {
    pending: Option<Repeat>,
    stop: bool,
}

/// An announcement to send again.
#[derive(Debug)]
struct Repeat {
    packet: Vec<u8>,
    at: Instant,
    interval: Duration,
    left: u32,
}

/// The sending socket and the schedule of announcements.
///
/// Every packet is sent with the schedule locked, so a goodbye or a newer announcement
/// can never be overtaken by an older announcement still due.
#[derive(Debug)]
struct Announcer {
    socket: UdpSocket,
    schedule: Mutex<Schedule>,
    wake: Condvar,
}

impl Announcer {
    fn lock(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, packet: &[u8]) -> Result<(), MdnsError> {
        self.socket
            .send_to(packet, SocketAddrV4::new(MDNS_GROUP_V4, MDNS_PORT))
            .map(drop)
            .map_err(io_error("send to 224.0.0.251"))
    }

    /// Sends `first` now and schedules `repeat`, replacing what was scheduled.
    fn announce(&self, first: Vec<u8>, repeat: Vec<u8>) -> Result<(), MdnsError> {
        let mut schedule = self.lock();
        schedule.pending = Some(Repeat {
            packet: repeat,
            at: Instant::now() + FIRST_INTERVAL,
            interval: FIRST_INTERVAL * 2,
            left: ANNOUNCEMENTS - 1,
        });
        let sent = self.send(&first);
        drop(schedule);
        self.wake.notify_all();
        sent
    }

    /// Cancels what is scheduled and sends `packet`.
    fn goodbye(&self, packet: &[u8]) -> Result<(), MdnsError> {
        let mut schedule = self.lock();
        schedule.pending = None;
        self.send(packet)
    }

    fn cancel(&self) {
        self.lock().pending = None;
    }

    /// The announcing thread: sends the scheduled announcements until told to stop.
    fn run(&self) {
        let mut schedule = self.lock();
        loop {
            if schedule.stop {
                return;
            }
            let now = Instant::now();
            let wait = match &mut schedule.pending {
                None => None,
                Some(repeat) if repeat.at <= now => {
                    if let Err(error) = self.send(&repeat.packet) {
                        log::warn!("{error}");
                    }
                    repeat.left = repeat.left.saturating_sub(1);
                    repeat.at = now + repeat.interval;
                    repeat.interval = repeat.interval.saturating_mul(2);
                    if repeat.left == 0 {
                        schedule.pending = None;
                    }
                    continue;
                }
                Some(repeat) => Some(repeat.at - now),
            };
            schedule = match wait {
                None => self
                    .wake
                    .wait(schedule)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(wait) => {
                    self.wake
                        .wait_timeout(schedule, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// A UDP socket set up for mDNS: reusable port 5353, multicast TTL 255 (RFC 6762 §11).
fn mdns_socket() -> Result<Socket, MdnsError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(io_error("create a UDP socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(io_error("set SO_REUSEADDR"))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(io_error("set SO_REUSEPORT"))?;
    Ok(socket)
}

/// Joins the mDNS group the way the answering thread will, to report failures early.
fn probe_membership(interface: Option<Ipv4Addr>) -> Result<(), MdnsError> {
    let socket = mdns_socket()?;
    socket
        .join_multicast_v4(&MDNS_GROUP_V4, &interface.unwrap_or(Ipv4Addr::UNSPECIFIED))
        .map_err(io_error("join 224.0.0.251"))?;
    socket
        .bind(&SockAddr::from(SocketAddrV4::new(MDNS_GROUP_V4, MDNS_PORT)))
        .map_err(io_error("bind 224.0.0.251:5353"))
}

/// The socket announcements and goodbyes are sent from: port 5353, as mDNS responses
/// must come from it (RFC 6762 §11).
fn sender_socket(interface: Option<Ipv4Addr>) -> Result<UdpSocket, MdnsError> {
    let socket = mdns_socket()?;
    // It never reads: keep the traffic of the group out of its buffer.
    #[cfg(target_os = "linux")]
    socket
        .set_multicast_all_v4(false)
        .map_err(io_error("clear IP_MULTICAST_ALL"))?;
    socket
        .set_multicast_ttl_v4(255)
        .map_err(io_error("set the multicast TTL"))?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(io_error("set IP_MULTICAST_LOOP"))?;
    if let Some(interface) = interface {
        socket
            .set_multicast_if_v4(&interface)
            .map_err(io_error("set the multicast interface"))?;
    }
    socket
        .bind(&SockAddr::from(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            MDNS_PORT,
        )))
        .map_err(io_error("bind 0.0.0.0:5353"))?;
    Ok(socket.into())
}

/// The addresses of the interfaces that are up: those of the interface with address
/// `interface` if given, else the non-loopback ones, else the loopback ones.
fn interface_addresses(interface: Option<Ipv4Addr>) -> Result<Vec<IpAddr>, MdnsError> {
    let interfaces: Vec<if_addrs::Interface> = if_addrs::get_if_addrs()
        .map_err(io_error("list the network interfaces"))?
        .into_iter()
        .filter(|candidate| candidate.is_oper_up())
        .collect();
    if let Some(interface) = interface {
        let owner = interfaces
            .iter()
            .find(|candidate| candidate.ip() == IpAddr::V4(interface))
            .map(|owner| owner.name.clone());
        return Ok(match owner {
            Some(name) => interfaces
                .iter()
                .filter(|candidate| candidate.name == name)
                .map(if_addrs::Interface::ip)
                .collect(),
            // The interface address is not (yet) configured: advertise it alone.
            None => vec![IpAddr::V4(interface)],
        });
    }
    let outside: Vec<IpAddr> = interfaces
        .iter()
        .filter(|candidate| !candidate.is_loopback())
        .map(if_addrs::Interface::ip)
        .collect();
    if !outside.is_empty() {
        return Ok(outside);
    }
    Ok(interfaces.iter().map(if_addrs::Interface::ip).collect())
}

/// Checks a configured host name and splits it into labels, without `local`.
fn host_labels(name: &str) -> Result<Vec<Vec<u8>>, MdnsError> {
    let invalid = |reason| MdnsError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let without_local = match trimmed.len().checked_sub(".local".len()) {
        Some(cut)
            if trimmed.is_char_boundary(cut) && trimmed[cut..].eq_ignore_ascii_case(".local") =>
        {
            &trimmed[..cut]
        }
        _ => trimmed,
    };
    if without_local.is_empty() {
        return Err(invalid("the host name is empty"));
    }
    if without_local.len() + ".local".len() > MAX_NAME_LEN {
        return Err(invalid("the host name is longer than 253 bytes"));
    }
    without_local
        .split('.')
        .map(|label| {
            if label.is_empty() {
                Err(invalid("the host name has an empty label"))
            } else if label.len() > MAX_LABEL_LEN {
                Err(invalid("a label of the host name is longer than 63 bytes"))
            } else if !label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            {
                Err(invalid(
                    "a host name holds only letters, digits and hyphens",
                ))
            } else {
                Ok(label.as_bytes().to_vec())
            }
        })
        .collect()
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The records of `advertisement`: PTRs, SRV, TXT, then A and AAAA.
///
/// The instance name is the advertisement's name cut to 63 bytes.
fn records(
    advertisement: &Advertisement<'_>,
    host: &Name<'static>,
    addresses: &[IpAddr],
) -> Result<Vec<ResourceRecord<'static>>, MdnsError> {
    let service = Name::new(SERVICE_TYPE).map_err(encode_error)?;
    let services = Name::new(SERVICES_NAME).map_err(encode_error)?;
    let instance_label = truncate(advertisement.name, MAX_LABEL_LEN);
    if instance_label.is_empty() {
        return Err(MdnsError::InvalidName {
            name: advertisement.name.to_owned(),
            reason: "the instance name is empty",
        });
    }
    let instance_labels: Vec<Label<'static>> = std::iter::once(Label::new_unchecked(Cow::Owned(
        instance_label.as_bytes().to_vec(),
    )))
    .chain(service.get_labels().iter().cloned())
    .collect();
    let instance = Name::new_with_labels(&instance_labels);

    let mut txt = TXT::new();
    for entry in advertisement.txt() {
        txt.add_attribute(entry.key, Some(entry.value.as_bytes()))
            .map_err(encode_error)?;
    }

    let shared =
        |name: &Name<'static>, ttl, rdata| ResourceRecord::new(name.clone(), CLASS::IN, ttl, rdata);
    let unique = |name: &Name<'static>, ttl, rdata| {
        ResourceRecord::new(name.clone(), CLASS::IN, ttl, rdata).with_cache_flush(true)
    };
    let mut records = vec![
        shared(
            &service,
            OTHER_RECORD_TTL,
            RData::PTR(PTR(instance.clone())),
        ),
        shared(
            &services,
            OTHER_RECORD_TTL,
            RData::PTR(PTR(service.clone())),
        ),
        unique(
            &instance,
            HOST_RECORD_TTL,
            RData::SRV(SRV {
                priority: 0,
                weight: 0,
                port: advertisement.port,
                target: host.clone(),
            }),
        ),
        unique(&instance, OTHER_RECORD_TTL, RData::TXT(txt)),
    ];
    records.extend(addresses.iter().map(|address| match address {
        IpAddr::V4(address) => unique(host, HOST_RECORD_TTL, RData::A(A::from(*address))),
        IpAddr::V6(address) => unique(host, HOST_RECORD_TTL, RData::AAAA(AAAA::from(*address))),
    }));
    Ok(records)
}

/// The records of `old` that `new` neither repeats nor replaces through the cache-flush
/// bit (a unique record of the same name and type).
fn stale_records<'a>(
    old: &'a [ResourceRecord<'static>],
    new: &'a [ResourceRecord<'static>],
) -> impl Iterator<Item = &'a ResourceRecord<'static>> + 'a {
    old.iter().filter(move |old| {
        !new.iter().any(|new| {
            *new == **old
                || (new.cache_flush
                    && new.name == old.name
                    && new.rdata.type_code() == old.rdata.type_code())
        })
    })
}

/// An mDNS response (id 0, authoritative) with `records` as answers.
fn encode(records: &[ResourceRecord<'static>]) -> Result<Vec<u8>, MdnsError> {
    let mut packet = Packet::new_reply(0);
    packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    packet.answers = records.to_vec();
    packet.build_bytes_vec_compressed().map_err(encode_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn advertisement(paired: bool, config_number: u16) -> Advertisement<'static> {
        Advertisement {
            name: "Test Light",
            port: 51826,
            model: "VirtualLight",
            device_id: "12:34:56:78:9A:BC".parse().unwrap(),
            config_number,
            category: hap_core::catalog::Category::LIGHTBULB,
            paired,
            setup_id: Some("7OSX".parse().unwrap()),
        }
    }

    fn host() -> Name<'static> {
        Name::new("123456789ABC.local").unwrap()
    }

    const ADDRESSES: [IpAddr; 2] = [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];

    #[test]
    fn records_encode_and_parse_back() {
        let records = records(&advertisement(false, 3), &host(), &ADDRESSES).unwrap();
        let bytes = encode(&records).unwrap();
        let packet = Packet::parse(&bytes).unwrap();
        assert!(packet.has_flags(PacketFlag::RESPONSE | PacketFlag::AUTHORITATIVE_ANSWER));
        assert_eq!(packet.answers.len(), 6);

        let ptr = &packet.answers[0];
        assert_eq!(ptr.name.to_string(), "_hap._tcp.local");
        assert!(!ptr.cache_flush);
        match &ptr.rdata {
            RData::PTR(PTR(instance)) => {
                assert_eq!(instance.to_string(), "Test Light._hap._tcp.local")
            }
            other => panic!("not a PTR: {other:?}"),
        }
        match &packet.answers[2].rdata {
            RData::SRV(srv) => {
                assert_eq!(srv.port, 51826);
                assert_eq!(srv.target.to_string(), "123456789ABC.local");
            }
            other => panic!("not an SRV: {other:?}"),
        }
        assert!(packet.answers[2].cache_flush);
        assert_eq!(packet.answers[2].ttl, HOST_RECORD_TTL);
        match &packet.answers[3].rdata {
            RData::TXT(txt) => {
                let attributes = txt.attributes();
                assert_eq!(attributes["c#"].as_deref(), Some("3"));
                assert_eq!(attributes["pv"].as_deref(), Some("1.1"));
                assert_eq!(attributes["sf"].as_deref(), Some("1"));
                assert_eq!(attributes["id"].as_deref(), Some("12:34:56:78:9A:BC"));
                assert_eq!(attributes.len(), 9);
            }
            other => panic!("not a TXT: {other:?}"),
        }
        assert!(matches!(packet.answers[4].rdata, RData::A(_)));
        assert!(matches!(packet.answers[5].rdata, RData::AAAA(_)));
        assert_eq!(packet.answers[5].name.to_string(), "123456789ABC.local");
    }

    #[test]
    fn dotted_and_long_instance_names_stay_one_label() {
        let long = "Light.v2 ".repeat(10);
        let ad = Advertisement {
            name: &long,
            ..advertisement(false, 1)
        };
        let records = records(&ad, &host(), &ADDRESSES).unwrap();
        let bytes = encode(&records).unwrap();
        let packet = Packet::parse(&bytes).unwrap();
        let RData::PTR(PTR(instance)) = &packet.answers[0].rdata else {
            panic!("not a PTR");
        };
        assert_eq!(instance.get_labels().len(), 4);
        assert_eq!(instance.get_labels()[0].as_ref(), &long.as_bytes()[..63]);

        let empty = Advertisement {
            name: "",
            ..advertisement(false, 1)
        };
        assert!(matches!(
            records_of(&empty),
            Err(MdnsError::InvalidName { .. })
        ));
    }

    fn records_of(ad: &Advertisement<'_>) -> Result<Vec<ResourceRecord<'static>>, MdnsError> {
        records(ad, &host(), &ADDRESSES)
    }

    #[test]
    fn a_changed_txt_replaces_without_goodbyes() {
        let old = records_of(&advertisement(false, 1)).unwrap();
        let new = records_of(&advertisement(true, 2)).unwrap();
        assert_eq!(stale_records(&old, &new).count(), 0);
        assert_eq!(stale_records(&old, &old).count(), 0);
    }

    #[test]
    fn a_renamed_instance_withdraws_the_old_pointer() {
        let old = records_of(&advertisement(false, 1)).unwrap();
        let renamed = Advertisement {
            name: "Other Light",
            ..advertisement(false, 1)
        };
        let new = records_of(&renamed).unwrap();
        let stale: Vec<_> = stale_records(&old, &new).collect();
        // The PTR to the old instance, and its SRV and TXT.
        assert_eq!(stale.len(), 3);
        assert!(matches!(stale[0].rdata, RData::PTR(_)));

        let fewer = records(&advertisement(false, 1), &host(), &ADDRESSES[..1]).unwrap();
        let stale: Vec<_> = stale_records(&old, &fewer).collect();
        assert_eq!(stale.len(), 1);
        assert!(matches!(stale[0].rdata, RData::AAAA(_)));
    }

    #[test]
    fn host_names_are_checked() {
        assert_eq!(host_labels("light").unwrap(), [b"light".to_vec()]);
        assert_eq!(host_labels("light.local.").unwrap(), [b"light".to_vec()]);
        assert_eq!(
            host_labels("my-light.LOCAL").unwrap(),
            [b"my-light".to_vec()]
        );
        assert_eq!(host_labels("a.b").unwrap(), [b"a".to_vec(), b"b".to_vec()]);
        for bad in ["", ".local", "a..b", "with space", "é", &"x".repeat(64)] {
            assert!(
                matches!(host_labels(bad), Err(MdnsError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_responder_can_move_to_another_thread() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<MdnsResponder>();
        send_and_sync::<MdnsError>();
    }

    #[test]
    fn an_invalid_host_name_fails_before_touching_the_network() {
        let error = MdnsResponder::new(MdnsConfig {
            host_name: Some("bad name".into()),
            ..MdnsConfig::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("bad name"), "{error}");
    }
}
