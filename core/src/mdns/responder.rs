//! A sans-IO mDNS responder (RFC 6762) for one DNS-SD service instance (RFC 6763).
//!
//! It probes the instance and host names (§8.1, §8.2), announces them (§8.3), answers
//! queries (§6, §7: known answers, QU, legacy unicast, NSEC negative answers, a 1 s rate
//! limit per record), defends and renames on conflicts (§9), announces updates (§8.4) and
//! says goodbye (§10.1), per interface and with only that interface's addresses (§14).
//! The numbers are in `responder/schedule.rs`; the records in `responder/records.rs`.
//!
//! Driven like the server: datagrams in with [`MdnsResponder::handle_datagram`],
//! datagrams out with [`MdnsResponder::poll_transmit`], a deadline from
//! [`MdnsResponder::poll_timeout`] served by [`MdnsResponder::handle_timeout`], and
//! facts for the application (and its log) from [`MdnsResponder::poll_event`].
//!
//! ```text
//! loop {
//!     responder.handle_datagram(now, iface, source, &datagram, &mut rng)?; // on input
//!     while let Some(t) = responder.poll_transmit(now, &mut buf) { send(t) }
//!     while let Some(e) = responder.poll_event() { log(e) }
//!     wait until responder.poll_timeout() or input; responder.handle_timeout(now, &mut rng);
//! }
//! ```

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use rand_core::RngCore;

use super::wire::Packet;
use super::Advertisement;
use crate::time::Instant;

mod echo;
mod engine;
mod output;
mod records;
mod rename;
mod schedule;
#[cfg(test)]
mod tests;

use records::Service;
pub use rename::{next_host_name, next_instance_name};
use schedule::{Iface, Phase, GOODBYES, PROBE_JITTER_MS};

/// How many interfaces one responder serves.
pub const MAX_INTERFACES: usize = 4;
/// How many addresses one interface may carry (one IPv4 and three IPv6 is typical).
pub const MAX_ADDRESSES: usize = 4;
/// The longest label: an instance name or a host name, in bytes (RFC 1035).
pub const MAX_LABEL: usize = 63;
/// The mDNS UDP port.
pub const MDNS_PORT: u16 = 5353;
/// The IPv4 mDNS group, 224.0.0.251.
pub const MDNS_GROUP_V4: core::net::Ipv4Addr = core::net::Ipv4Addr::new(224, 0, 0, 251);
/// The IPv6 mDNS group, ff02::fb.
pub const MDNS_GROUP_V6: core::net::Ipv6Addr =
    core::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
/// The TTL of records naming the host (SRV, A, AAAA), seconds (RFC 6762 §10).
pub const HOST_RECORD_TTL: u32 = 120;
/// The TTL of the other records (PTR, TXT), seconds (RFC 6762 §10).
pub const OTHER_RECORD_TTL: u32 = 4500;
/// The smallest buffer [`MdnsResponder::poll_transmit`] accepts: an IPv6 packet on a
/// 1500-byte link, less the IPv6 and UDP headers (RFC 6762 §17).
pub const MIN_TRANSMIT_BUFFER: usize = 1452;

/// An interface, as the platform numbers it (an OS interface index, or any id an
/// embedded stack chooses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceId(pub u32);

/// An IP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: the group 224.0.0.251.
    V4,
    /// IPv6: the group ff02::fb.
    V6,
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The mDNS group of that family, port 5353, on the transmit's interface.
    Multicast(Family),
    /// One querier (a unicast response, §5.4, or a legacy unicast answer, §6.7).
    Unicast(SocketAddr),
}

impl Destination {
    /// The socket address to send to: the group and port 5353, or the querier.
    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            Self::Multicast(Family::V4) => SocketAddr::new(IpAddr::V4(MDNS_GROUP_V4), MDNS_PORT),
            Self::Multicast(Family::V6) => SocketAddr::new(IpAddr::V6(MDNS_GROUP_V6), MDNS_PORT),
            Self::Unicast(addr) => *addr,
        }
    }
}

/// One datagram to send, written into the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit<'b> {
    /// The interface to send it from (for multicast: the one to set as the outgoing
    /// interface; for unicast: the one the query came in on).
    pub iface: InterfaceId,
    /// Where to send it.
    pub destination: Destination,
    /// The DNS message.
    pub payload: &'b [u8],
}

/// Which of the two unique names a fact is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// The service instance, `<instance>._hap._tcp.local`.
    Instance,
    /// The host, `<host>.local`.
    Host,
}

/// What the responder did, for the application and its log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsEvent {
    /// Probing for the names started on an interface: the first probe of a round is
    /// queued for [`MdnsResponder::poll_transmit`]. An interface without an address
    /// sends nothing and waits; this comes when it gets one.
    Probing {
        /// The interface.
        iface: InterfaceId,
    },
    /// The records are being announced on an interface: the first announcement of a
    /// round is queued for [`MdnsResponder::poll_transmit`].
    Announced {
        /// The interface.
        iface: InterfaceId,
    },
    /// Another host claims one of our names, while probing or after it.
    Conflict {
        /// Which name.
        kind: NameKind,
        /// Where the conflicting answer arrived.
        iface: InterfaceId,
        /// Whether it came while probing (else: defending an established name).
        probing: bool,
    },
    /// A name was changed after a conflict; store it and advertise it from now on
    /// (the instance name is usually also the accessory's Name characteristic).
    Renamed {
        /// Which name.
        kind: NameKind,
        /// The new label, such as `Virtual Light (2)` or `light-2`.
        name: heapless::String<MAX_LABEL>,
    },
    /// An interface's addresses changed and the new ones are being announced.
    AddressesChanged {
        /// The interface.
        iface: InterfaceId,
    },
    /// The goodbye was sent on every interface; the responder is silent from now on.
    Withdrawn,
}

/// Misuse of the responder, or a configuration it cannot advertise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsError {
    /// The instance name is empty or longer than [`MAX_LABEL`] bytes.
    InstanceName,
    /// The host label is empty, longer than [`MAX_LABEL`] bytes, or not letters, digits
    /// and hyphens.
    HostName,
    /// More than [`MAX_INTERFACES`] interfaces.
    TooManyInterfaces,
    /// The interface is not known.
    UnknownInterface,
    /// The TXT record does not fit.
    TxtTooLong,
    /// The buffer is smaller than [`MIN_TRANSMIT_BUFFER`].
    BufferTooSmall,
    /// The responder said goodbye and advertises nothing more.
    Withdrawn,
}

impl core::fmt::Display for MdnsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InstanceName => "the instance name must be 1 to 63 bytes",
            Self::HostName => "the host name must be 1 to 63 letters, digits and hyphens",
            Self::TooManyInterfaces => "too many interfaces",
            Self::UnknownInterface => "unknown interface",
            Self::TxtTooLong => "the TXT record is too long",
            Self::BufferTooSmall => "the transmit buffer is too small",
            Self::Withdrawn => "the advertisement was withdrawn",
        })
    }
}

impl core::error::Error for MdnsError {}

/// The responder for one accessory: its service instance and its host name, on up to
/// [`MAX_INTERFACES`] interfaces, IPv4 and IPv6.
///
/// It never allocates and never panics: every capacity is one of this module's
/// constants. Time comes only from the `now` arguments and randomness only from the
/// `rng` arguments.
#[derive(Debug)]
pub struct MdnsResponder {
    service: Service,
    /// The instance name the application asked for, before any rename: a later
    /// [`MdnsResponder::set_advertisement`] with the same name keeps the renamed one.
    requested_instance: heapless::String<MAX_LABEL>,
    ifaces: heapless::Vec<Iface, MAX_INTERFACES>,
    events: heapless::Deque<MdnsEvent, MAX_EVENTS>,
    /// When recent probing conflicts happened (RFC 6762 §8.1 rate limit).
    conflicts: heapless::Deque<Instant, { schedule::MAX_CONFLICTS }>,
    /// The goodbye of everything: rounds sent and when the next is due.
    goodbye: Option<(u8, Instant)>,
    withdrawn: bool,
    /// Drawn from the last `rng` argument, for the one jitter chosen where no `rng` is
    /// given ([`MdnsResponder::set_advertisement`]).
    jitter_seed: u32,
    /// The latest `now` seen, for [`MdnsResponder::poll_timeout`] when work is ready.
    now: Instant,
    /// The datagrams sent lately, to recognise them when they come back.
    echoes: echo::Echoes,
}

/// Events kept for [`MdnsResponder::poll_event`]; older ones are dropped first.
pub const MAX_EVENTS: usize = 16;

impl MdnsResponder {
    /// A responder for `advertisement` whose host is `<host_label>.local`. It sends
    /// nothing until an interface is added with [`MdnsResponder::set_interface`].
    pub fn new(host_label: &str, advertisement: &Advertisement<'_>) -> Result<Self, MdnsError> {
        let host = host_label_checked(host_label)?;
        let instance = valid_instance(advertisement.name)?;
        let service = Service {
            instance: instance.clone(),
            host,
            port: advertisement.port,
            txt: advertisement.txt(),
        };
        check_txt(&service)?;
        Ok(Self {
            service,
            requested_instance: instance,
            ifaces: heapless::Vec::new(),
            events: heapless::Deque::new(),
            conflicts: heapless::Deque::new(),
            goodbye: None,
            withdrawn: false,
            jitter_seed: 0,
            now: Instant::from_millis(0),
            echoes: echo::Echoes::default(),
        })
    }

    /// Adds an interface with its current addresses, or replaces the addresses of a known
    /// one. A new interface is probed, then announced (§8); changed addresses are
    /// announced again without probing (§8.4), and removed ones get a goodbye. An empty
    /// list keeps the interface but advertises no address on it, and probing waits
    /// until it has one; a family (IPv4, IPv6) that gets its first address and was not
    /// probed on this interface is probed before it is announced (the interface probes
    /// again, and answers nothing meanwhile). Addresses after the first
    /// [`MAX_ADDRESSES`] are not advertised.
    pub fn set_interface<R: RngCore>(
        &mut self,
        iface: InterfaceId,
        addresses: &[IpAddr],
        now: Instant,
        rng: &mut R,
    ) -> Result<(), MdnsError> {
        self.touch(now);
        self.jitter_seed = rng.next_u32();
        if self.goodbye.is_some() {
            return Err(MdnsError::Withdrawn);
        }
        let mut new_addresses = heapless::Vec::<IpAddr, MAX_ADDRESSES>::new();
        for address in addresses {
            if !new_addresses.contains(address) {
                // Beyond MAX_ADDRESSES the rest are not advertised.
                let _ = new_addresses.push(*address);
            }
        }
        let first_probe = now + Duration::from_millis(random_between(rng, 0, PROBE_JITTER_MS));
        let Some(index) = self.index(iface) else {
            let mut state = Iface::new(
                iface,
                Phase::Probing {
                    sent: 0,
                    next: first_probe,
                },
            );
            state.addresses = new_addresses;
            return self
                .ifaces
                .push(state)
                .map_err(|_| MdnsError::TooManyInterfaces);
        };
        let state = &mut self.ifaces[index];
        if state.phase == Phase::Leaving {
            // Added back while its goodbye was pending: start over. The goodbye bits
            // index the old address list; the old addresses that are gone keep their
            // goodbye as stale addresses. The other records are probed and announced
            // again.
            let pending = state
                .outbox
                .iter()
                .fold(0, |set, outbox| set | outbox.goodbye);
            for (i, old) in state.addresses.iter().enumerate() {
                if pending & records::addr_bit(i) != 0
                    && !new_addresses.contains(old)
                    && !state.stale_addresses.contains(old)
                {
                    // Full only past MAX_ADDRESSES; the rest expire with their TTL.
                    let _ = state.stale_addresses.push(*old);
                }
            }
            for outbox in &mut state.outbox {
                outbox.goodbye = 0;
            }
            state.addresses = new_addresses;
            if !state.stale_addresses.is_empty() {
                state.mark_stale();
            }
            state.phase = Phase::Established;
            state.start_probing(first_probe);
            return Ok(());
        }
        if state.addresses == new_addresses {
            return Ok(());
        }
        let old_families = state.families();
        let announced = state.phase.answers();
        for old in &state.addresses {
            if announced && !new_addresses.contains(old) && !state.stale_addresses.contains(old) {
                // Full only if more than MAX_ADDRESSES are removed before the goodbye
                // goes out; the rest then expire with their TTL.
                let _ = state.stale_addresses.push(*old);
            }
        }
        state.addresses = new_addresses;
        // The address bits of pending answers indexed the old list.
        for outbox in &mut state.outbox {
            outbox.answers &= !records::ADDRS;
            outbox.additionals &= !records::ADDRS;
            for bit in records::bits(records::ADDRS) {
                outbox.last_multicast[records::bit_index(bit)] = None;
            }
        }
        if !state.stale_addresses.is_empty() {
            state.mark_stale();
        }
        // A family with its first address where the names were never probed (the
        // interface came without addresses, or with the other family only) is probed
        // before anything is announced there (§8.1). The whole interface probes again:
        // probing is per interface.
        let unprobed = state
            .families()
            .into_iter()
            .zip(old_families)
            .zip(state.probed)
            .any(|((present, was), probed)| present && !was && !probed);
        if unprobed {
            state.start_probing(first_probe);
        } else if announced {
            state.reannounce(now);
            push_event(&mut self.events, MdnsEvent::AddressesChanged { iface });
        }
        Ok(())
    }

    /// Says goodbye on `iface` (its records with TTL 0) and forgets it.
    pub fn remove_interface(&mut self, iface: InterfaceId, now: Instant) -> Result<(), MdnsError> {
        self.touch(now);
        let index = self.index(iface).ok_or(MdnsError::UnknownInterface)?;
        let state = &mut self.ifaces[index];
        if state.phase == Phase::Leaving {
            return Err(MdnsError::UnknownInterface);
        }
        let announced = state.phase.answers();
        state.phase = Phase::Leaving;
        state.unicast.clear();
        let families = state.families();
        let goodbye = records::announced(&state.addresses);
        for (outbox, present) in state.outbox.iter_mut().zip(families) {
            outbox.clear_pending();
            if announced && present {
                outbox.goodbye = goodbye;
            }
        }
        self.forget_left();
        Ok(())
    }

    /// The interfaces served, in the order they were added.
    pub fn interfaces(&self) -> impl Iterator<Item = InterfaceId> + '_ {
        self.ifaces
            .iter()
            .filter(|iface| iface.phase != Phase::Leaving)
            .map(|iface| iface.id)
    }

    /// Replaces what is advertised. A changed TXT record (`sf`, `c#`) is announced again
    /// without probing (§8.4). A changed instance name says goodbye to the old PTR and
    /// probes the new name. The same name as before keeps a name chosen by a rename.
    pub fn set_advertisement(
        &mut self,
        advertisement: &Advertisement<'_>,
        now: Instant,
    ) -> Result<(), MdnsError> {
        self.touch(now);
        if self.goodbye.is_some() {
            return Err(MdnsError::Withdrawn);
        }
        let requested = valid_instance(advertisement.name)?;
        let txt = advertisement.txt();
        let renamed = requested != self.requested_instance;
        let changed = txt != self.service.txt || advertisement.port != self.service.port;
        let old_txt = core::mem::replace(&mut self.service.txt, txt);
        let old_port = core::mem::replace(&mut self.service.port, advertisement.port);
        if let Err(error) = check_txt(&self.service) {
            self.service.txt = old_txt;
            self.service.port = old_port;
            return Err(error);
        }
        if renamed {
            self.requested_instance = requested.clone();
            self.replace_instance(requested);
            // The seed came from the last rng; one xorshift step keeps two calls apart.
            self.jitter_seed ^= self.jitter_seed << 13;
            self.jitter_seed ^= self.jitter_seed >> 17;
            self.jitter_seed ^= self.jitter_seed << 5;
            let delay = u64::from(self.jitter_seed % (PROBE_JITTER_MS + 1));
            let at = now + Duration::from_millis(delay);
            for iface in &mut self.ifaces {
                iface.start_probing(at);
            }
        } else if changed {
            for iface in &mut self.ifaces {
                iface.reannounce(now);
            }
        }
        Ok(())
    }

    /// Takes one datagram that arrived on `iface` from `source`. Malformed or foreign
    /// datagrams are dropped with an error the caller may log; none panics.
    ///
    /// A datagram identical to one [`MdnsResponder::poll_transmit`] gave out in the last
    /// 2 s is our own, brought back by multicast loopback (which stays on: responders
    /// sharing a host must hear each other, RFC 6762 §15.1), and is ignored: after a
    /// change its records would look like another host's. The adapter needs no filter
    /// of its own.
    pub fn handle_datagram<R: RngCore>(
        &mut self,
        now: Instant,
        iface: InterfaceId,
        source: SocketAddr,
        datagram: &[u8],
        rng: &mut R,
    ) -> Result<(), super::wire::ParseError> {
        self.touch(now);
        if self.echoes.is_echo(datagram, now) {
            return Ok(());
        }
        let packet = Packet::parse(datagram)?;
        self.jitter_seed = rng.next_u32();
        if self.goodbye.is_some() {
            return Ok(());
        }
        let Some(index) = self.index(iface) else {
            return Ok(());
        };
        if self.ifaces[index].phase == Phase::Leaving {
            return Ok(());
        }
        let family = match source.ip() {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Family::V4,
            IpAddr::V6(_) => Family::V6,
        };
        if packet.header().is_response() {
            // Only port 5353 speaks for a name (RFC 6762 §6, §11).
            if source.port() == MDNS_PORT {
                self.handle_response(now, index, family, &packet, rng);
            }
        } else {
            self.handle_query(now, index, family, source, &packet, rng);
        }
        Ok(())
    }

    /// The next datagram due at `now`, written into `buf` (at least
    /// [`MIN_TRANSMIT_BUFFER`] bytes; a smaller buffer yields nothing). Call until
    /// `None`.
    pub fn poll_transmit<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Option<Transmit<'b>> {
        self.touch(now);
        if buf.len() < MIN_TRANSMIT_BUFFER || self.withdrawn {
            return None;
        }
        self.advance(now);
        let found = self.next_output(now);
        let Some((index, output)) = found else {
            self.check_withdrawn();
            self.forget_left();
            return None;
        };
        let transmit = self.write_output(now, index, output, buf);
        if let Some(transmit) = &transmit {
            self.echoes.remember(transmit.payload, now);
        }
        self.forget_left();
        transmit
    }

    /// When [`MdnsResponder::handle_timeout`] is next due, if anything is scheduled.
    /// Work that is ready now (a datagram to send) gives the latest `now` seen.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.withdrawn {
            return None;
        }
        let mut earliest: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                earliest = Some(earliest.map_or(at, |e: Instant| e.min(at)));
            }
        };
        match self.goodbye {
            Some((sent, next)) if sent < GOODBYES => consider(Some(next)),
            // Everything was sent: the next poll marks the responder withdrawn.
            Some(_) => consider(Some(self.now)),
            None => {
                for iface in &self.ifaces {
                    consider(iface.next_step());
                }
            }
        }
        for iface in &self.ifaces {
            if !iface.unicast.is_empty() {
                consider(Some(self.now));
            }
            for outbox in &iface.outbox {
                if outbox.has_ready() {
                    consider(Some(self.now));
                }
                if outbox.answers != 0 {
                    consider(outbox.due);
                }
            }
        }
        earliest
    }

    /// Advances probes, announcements, delayed answers and goodbyes to `now`.
    pub fn handle_timeout<R: RngCore>(&mut self, now: Instant, rng: &mut R) {
        self.touch(now);
        self.jitter_seed = rng.next_u32();
        self.advance(now);
        self.check_withdrawn();
    }

    /// The next fact for the application.
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        self.events.pop_front()
    }

    /// Withdraws everything: each record with TTL 0 on every interface (§10.1), then
    /// silence. The first round is ready at once; drain [`MdnsResponder::poll_transmit`],
    /// and go on serving [`MdnsResponder::poll_timeout`] until
    /// [`MdnsResponder::is_withdrawn`].
    pub fn goodbye(&mut self, now: Instant) {
        self.touch(now);
        if self.goodbye.is_some() {
            return;
        }
        self.goodbye = Some((0, now));
        for iface in &mut self.ifaces {
            iface.unicast.clear();
            for outbox in &mut iface.outbox {
                outbox.clear_pending();
            }
        }
        self.advance(now);
    }

    /// Whether every goodbye was sent: nothing more will be transmitted.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn
    }

    /// The instance label advertised now (after any rename).
    pub fn instance_name(&self) -> &str {
        &self.service.instance
    }

    /// The host label advertised now (after any rename), without `.local`.
    pub fn host_name(&self) -> &str {
        &self.service.host
    }
}

/// `label` if it can be a host label: 1 to 63 letters, digits and hyphens. The rule
/// [`MdnsResponder::new`] applies, for adapters that check a label before they have an
/// advertisement to build the responder from.
pub fn host_label_checked(label: &str) -> Result<heapless::String<MAX_LABEL>, MdnsError> {
    let valid = !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let mut host = heapless::String::new();
    if !valid || host.push_str(label).is_err() {
        return Err(MdnsError::HostName);
    }
    Ok(host)
}

/// `name` if it can be an instance label: 1 to 63 bytes (RFC 6763 §4.1.1).
fn valid_instance(name: &str) -> Result<heapless::String<MAX_LABEL>, MdnsError> {
    let mut instance = heapless::String::new();
    if name.is_empty() || instance.push_str(name).is_err() {
        return Err(MdnsError::InstanceName);
    }
    Ok(instance)
}

/// Whether the TXT record and an announcement with it fit a datagram.
fn check_txt(service: &Service) -> Result<(), MdnsError> {
    let length: usize = service
        .txt
        .iter()
        .map(|entry| 2 + entry.key.len() + entry.value.len())
        .sum();
    // Room for the other records of an announcement in the smallest buffer.
    if length > MIN_TRANSMIT_BUFFER / 2
        || service
            .txt
            .iter()
            .any(|e| e.key.len() + e.value.len() >= 255)
    {
        return Err(MdnsError::TxtTooLong);
    }
    Ok(())
}

/// A uniform number of milliseconds in `low..=high`.
fn random_between<R: RngCore>(rng: &mut R, low: u32, high: u32) -> u64 {
    let span = high.saturating_sub(low).saturating_add(1);
    u64::from(low + rng.next_u32() % span)
}

/// Queues an event, dropping the oldest when full.
fn push_event(events: &mut heapless::Deque<MdnsEvent, MAX_EVENTS>, event: MdnsEvent) {
    if events.is_full() {
        events.pop_front();
    }
    let _ = events.push_back(event);
}
