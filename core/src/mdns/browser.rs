//! A sans-IO mDNS browser (RFC 6762, RFC 6763) for HAP accessories: it finds the
//! instances of [`SERVICE_TYPE`] and resolves each to a host, a port, addresses and the
//! TXT record's HAP keys.
//!
//! - Continuous querying (RFC 6762 §5.2): a QM PTR query at start, again 1 s later, and
//!   then at intervals that double up to [`MAX_QUERY_INTERVAL`]. Each carries the PTR
//!   records already known with more than half their TTL left as known answers (§7.1),
//!   continued in further packets with TC set when they do not fit one (§7.2).
//! - Records are taken from answers and additionals alike (RFC 6763 §12): PTR, then the
//!   SRV and TXT of the instance, then the A and AAAA of the SRV's host, in that order
//!   within a packet. Responses count only from port 5353 (RFC 6762 §6).
//! - An instance that lacks its SRV or TXT, or whose host lacks an address, is asked for
//!   them (SRV+TXT, or A+AAAA) at the next transmit, then again 1 s, 2 s, 4 s… later
//!   while something is missing. A record at 80, 85, 90 and 95 % of its TTL is asked for
//!   again (§5.2).
//! - A goodbye (TTL 0) keeps a record for 1 s more (§10.1), as does a cache-flush bit for
//!   other addresses of the host heard over 1 s before (§10.2). When its PTR expires the
//!   instance is removed.
//! - [`BrowseEvent::Found`] when an instance first has its SRV, TXT and an address;
//!   [`BrowseEvent::Updated`] when a found instance changes; [`BrowseEvent::Removed`]
//!   when a found instance goes.
//!
//! Everything has a fixed capacity ([`MAX_INSTANCES`], [`MAX_INSTANCE_ADDRESSES`],
//! [`MAX_BROWSE_EVENTS`]). What does not fit is dropped, newest first, and counted in
//! [`Browser::dropped`], except that an IPv4 address displaces an instance's last IPv6
//! one; nothing panics and nothing allocates.
//!
//! Each address is kept with the interface it was heard on
//! ([`Instance::addresses_with_interface`]): a link-local IPv6 address needs it as its
//! scope, and a cache flush (§10.2) on one interface leaves the others' addresses be.
//!
//! ```text
//! browser.add_interface(iface)?;
//! loop {
//!     browser.handle_datagram(now, iface, source, &datagram)?; // on input
//!     while let Some(t) = browser.poll_transmit(now, &mut buf) { send(t) }
//!     while let Some(e) = browser.poll_event() { show(e, browser.instance(e.name())) }
//!     wait until browser.poll_timeout() or input; browser.handle_timeout(now);
//! }
//! ```

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use super::responder::{MAX_INTERFACES, MDNS_PORT, MIN_TRANSMIT_BUFFER};
use super::wire::{
    rtype, Header, Name, NameRef, Packet, ParseError, RData, RecordData, RecordOut, WriteError,
    Writer, CLASS_IN, MAX_LABEL_LEN,
};
use super::{Destination, Family, InterfaceId, Transmit, SERVICE_TYPE};
use crate::time::Instant;

#[cfg(test)]
mod tests;
mod txt;

pub use txt::{HapTxt, MAX_PROTOCOL_VERSION_LEN};

/// How many instances are kept; a new one beyond them is dropped and counted.
pub const MAX_INSTANCES: usize = 16;
/// How many addresses an instance keeps; more are dropped and counted (an IPv4 one
/// takes the place of the last IPv6 one).
pub const MAX_INSTANCE_ADDRESSES: usize = 4;
/// The longest instance name, in bytes: one DNS label.
pub const MAX_INSTANCE_NAME_LEN: usize = MAX_LABEL_LEN;
/// The longest host name in text form, such as `Light.local` (RFC 1035 §2.3.4).
pub const MAX_HOST_NAME_LEN: usize = 253;
/// How many events wait for [`Browser::poll_event`]; newer ones are dropped and counted.
pub const MAX_BROWSE_EVENTS: usize = 2 * MAX_INSTANCES;
/// The interval between the first two PTR queries (RFC 6762 §5.2: at least 1 s).
pub const FIRST_QUERY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval between PTR queries (RFC 6762 §5.2: at most 60 minutes; a
/// browser that runs for minutes wants to hear of new accessories sooner).
pub const MAX_QUERY_INTERVAL: Duration = Duration::from_secs(60);

/// An instance name, such as `Virtual Light`.
pub type InstanceName = heapless::String<MAX_INSTANCE_NAME_LEN>;
/// A host name, such as `Virtual-Light.local`.
pub type HostName = heapless::String<MAX_HOST_NAME_LEN>;

/// Cache refresh queries at 80, 85, 90 and 95 % of a TTL (RFC 6762 §5.2).
const REFRESHES: u8 = 4;
/// A goodbye or a flushed record lives this much longer (RFC 6762 §10.1, §10.2).
const GRACE: Duration = Duration::from_secs(1);

/// What the browser learned, for [`Browser::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowseEvent {
    /// An instance has its SRV, TXT and at least one address for the first time; read it
    /// with [`Browser::instance`].
    Found(InstanceName),
    /// A found instance changed: TXT, port, host or addresses (or lost one of them).
    Updated(InstanceName),
    /// A found instance is gone: its PTR expired or said goodbye.
    Removed(InstanceName),
}

impl BrowseEvent {
    /// The name of the instance the event is about.
    pub fn name(&self) -> &str {
        match self {
            Self::Found(name) | Self::Updated(name) | Self::Removed(name) => name,
        }
    }
}

/// Misuse of the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowserError {
    /// More than [`MAX_INTERFACES`] interfaces.
    TooManyInterfaces,
}

impl core::fmt::Display for BrowserError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooManyInterfaces => "too many interfaces",
        })
    }
}

impl core::error::Error for BrowserError {}

/// What was dropped for lack of room, since the browser started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// New instances beyond [`MAX_INSTANCES`].
    pub instances: u32,
    /// Addresses beyond [`MAX_INSTANCE_ADDRESSES`] for one instance.
    pub addresses: u32,
    /// Events beyond [`MAX_BROWSE_EVENTS`] waiting.
    pub events: u32,
    /// Instance names that are not UTF-8 and host names that are not UTF-8 labels
    /// without dots (which text cannot show).
    pub names: u32,
}

/// When a record was heard, for how long, and which refreshes were asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lifetime {
    received: Instant,
    /// The TTL in seconds; 0 after a goodbye or a flush.
    ttl: u32,
    expires: Instant,
    /// Refresh queries sent so far, of [`REFRESHES`].
    refreshes: u8,
}

impl Lifetime {
    fn new(now: Instant, ttl: u32) -> Self {
        if ttl == 0 {
            return Self::ending(now);
        }
        Self {
            received: now,
            ttl,
            expires: now + Duration::from_secs(u64::from(ttl)),
            refreshes: 0,
        }
    }

    /// A record that said goodbye or was flushed: gone in [`GRACE`], not refreshed.
    fn ending(now: Instant) -> Self {
        Self {
            received: now,
            ttl: 0,
            expires: now + GRACE,
            refreshes: REFRESHES,
        }
    }

    fn end(&mut self, now: Instant) {
        if self.ttl != 0 {
            *self = Self::ending(now);
        }
    }

    /// When the next refresh query is due: at 80 %, 85 %, 90 % and 95 % of the TTL.
    fn refresh_at(&self) -> Option<Instant> {
        (self.refreshes < REFRESHES).then(|| {
            let percent = 80 + 5 * u64::from(self.refreshes);
            self.received + Duration::from_millis(u64::from(self.ttl) * 10 * percent)
        })
    }

    fn refresh_due(&self, now: Instant) -> bool {
        self.refresh_at().is_some_and(|at| at <= now)
    }

    /// The TTL left, in whole seconds.
    fn remaining_secs(&self, now: Instant) -> u32 {
        let left = self.expires.saturating_duration_since(now).as_secs();
        u32::try_from(left).unwrap_or(u32::MAX)
    }

    /// Whether it goes in a query as a known answer: more than half its TTL left (§7.1).
    fn worth_known_answer(&self, now: Instant) -> bool {
        let left = self.expires.saturating_duration_since(now).as_millis();
        self.ttl != 0 && left * 2 > u128::from(self.ttl) * 1000
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Srv {
    port: u16,
    host: HostName,
    life: Lifetime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct TxtRecord {
    fields: HapTxt,
    life: Lifetime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Address {
    ip: IpAddr,
    /// The interface it was heard on: the scope of a link-local IPv6 address.
    iface: InterfaceId,
    life: Lifetime,
}

impl Address {
    /// Whether this is `ip` as heard on `iface`: a link-local IPv6 address is another
    /// one on another link (RFC 4007 §6), any other address is the same everywhere.
    fn is(&self, ip: IpAddr, iface: InterfaceId) -> bool {
        self.ip == ip && (!is_link_local_v6(ip) || self.iface == iface)
    }
}

/// Whether `ip` is an IPv6 link-local unicast address (`fe80::/10`), which means
/// something only with the interface it was heard on.
fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// What a resolve query asks for one instance.
const ASK_SRV: u8 = 1;
const ASK_TXT: u8 = 2;
const ASK_ADDRESSES: u8 = 4;

/// One service instance as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    name: InstanceName,
    iface: InterfaceId,
    ptr: Lifetime,
    srv: Option<Srv>,
    txt: Option<TxtRecord>,
    /// IPv4 first, then IPv6.
    addresses: heapless::Vec<Address, MAX_INSTANCE_ADDRESSES>,
    /// Whether [`BrowseEvent::Found`] was reported.
    reported: bool,
    /// Whether something changed since the last event.
    changed: bool,
    /// When to ask for what is missing next, and how many times it was asked.
    resolve_next: Instant,
    resolve_attempts: u8,
    /// What the resolve query being sent asks ([`ASK_SRV`]…).
    asking: u8,
}

impl Instance {
    /// The instance name, as on the wire: the first label of the PTR target (a dot or a
    /// backslash in it is itself; only presentation formats escape them).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface its first address (of [`Instance::addresses`]) was heard on; with
    /// no address yet, the one its PTR record was first heard on.
    pub fn interface(&self) -> InterfaceId {
        self.addresses
            .first()
            .map_or(self.iface, |address| address.iface)
    }

    /// The port, from the SRV record.
    pub fn port(&self) -> Option<u16> {
        self.srv.as_ref().map(|srv| srv.port)
    }

    /// The host name, from the SRV record, without the final dot: `Light.local`.
    pub fn host(&self) -> Option<&str> {
        self.srv.as_ref().map(|srv| srv.host.as_str())
    }

    /// The host's addresses: IPv4 first, then IPv6, each in the order heard.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses.iter().map(|address| address.ip)
    }

    /// [`Instance::addresses`], each with the interface it was heard on: the scope to
    /// connect to a link-local IPv6 address (`fe80::/10`) with. The same link-local
    /// address heard on two interfaces is two entries.
    pub fn addresses_with_interface(&self) -> impl Iterator<Item = (IpAddr, InterfaceId)> + '_ {
        self.addresses
            .iter()
            .map(|address| (address.ip, address.iface))
    }

    /// The HAP keys of the TXT record.
    pub fn txt(&self) -> Option<&HapTxt> {
        self.txt.as_ref().map(|txt| &txt.fields)
    }

    /// Whether the SRV, the TXT and at least one address are known.
    pub fn is_resolved(&self) -> bool {
        self.srv.is_some() && self.txt.is_some() && !self.addresses.is_empty()
    }

    fn has_name(&self, label: &[u8]) -> bool {
        self.name.as_bytes().eq_ignore_ascii_case(label)
    }

    /// What to ask for at `now`: what is missing when its retry is due, and records due
    /// for a refresh.
    fn due_asks(&self, now: Instant) -> u8 {
        let missing_due = self.resolve_next <= now;
        let mut ask = 0;
        let wanted = |life: Option<&Lifetime>| match life {
            None => missing_due,
            Some(life) => life.refresh_due(now),
        };
        if wanted(self.srv.as_ref().map(|srv| &srv.life)) {
            ask |= ASK_SRV;
        }
        if wanted(self.txt.as_ref().map(|txt| &txt.life)) {
            ask |= ASK_TXT;
        }
        let addresses_wanted = if self.addresses.is_empty() {
            missing_due
        } else {
            self.addresses.iter().any(|a| a.life.refresh_due(now))
        };
        if self.srv.is_some() && addresses_wanted {
            ask |= ASK_ADDRESSES;
        }
        ask
    }

    /// The earliest time something of this instance is due.
    fn next_deadline(&self) -> Option<Instant> {
        let lives = core::iter::once(&self.ptr)
            .chain(self.srv.as_ref().map(|srv| &srv.life))
            .chain(self.txt.as_ref().map(|txt| &txt.life))
            .chain(self.addresses.iter().map(|a| &a.life));
        let mut earliest = (!self.is_resolved()).then_some(self.resolve_next);
        for life in lives {
            for at in [Some(life.expires), life.refresh_at()]
                .into_iter()
                .flatten()
            {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        earliest
    }

    fn host_is(&self, name: &NameRef<'_>) -> bool {
        self.srv
            .as_ref()
            .is_some_and(|srv| Name::new(&srv.host).is_ok_and(|host| name.eq_name(&host)))
    }
}

/// A query being sent: which, from which instance slot, and to which of the
/// interface × family targets next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outgoing {
    kind: Kind,
    from: usize,
    target: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The PTR query with its known answers.
    Ptr,
    /// Questions for what instances lack ([`Instance::asking`]).
    Resolve,
}

/// The browser for `_hap._tcp.local`; see the [module](self) docs.
#[derive(Debug)]
pub struct Browser {
    slots: [Option<Instance>; MAX_INSTANCES],
    ifaces: heapless::Vec<InterfaceId, MAX_INTERFACES>,
    next_query: Instant,
    interval: Duration,
    ptr_query_pending: bool,
    outgoing: Option<Outgoing>,
    events: heapless::Deque<BrowseEvent, MAX_BROWSE_EVENTS>,
    dropped: Dropped,
    /// The latest `now` seen.
    now: Instant,
}

impl Browser {
    /// A browser whose first query is due at `now`. It sends nothing until an interface
    /// is added with [`Browser::add_interface`].
    pub fn new(now: Instant) -> Self {
        Self {
            slots: Default::default(),
            ifaces: heapless::Vec::new(),
            next_query: now,
            interval: FIRST_QUERY_INTERVAL,
            ptr_query_pending: false,
            outgoing: None,
            events: heapless::Deque::new(),
            dropped: Dropped::default(),
            now,
        }
    }

    /// Browses on `iface` too: queries go out there, over IPv4 and IPv6, and responses
    /// heard there count. Adding a known interface does nothing.
    pub fn add_interface(&mut self, iface: InterfaceId) -> Result<(), BrowserError> {
        if self.ifaces.contains(&iface) {
            return Ok(());
        }
        self.ifaces
            .push(iface)
            .map_err(|_| BrowserError::TooManyInterfaces)
    }

    /// Stops browsing on `iface`; what was heard there stays until it expires.
    pub fn remove_interface(&mut self, iface: InterfaceId) {
        self.ifaces.retain(|known| *known != iface);
        // The targets of a query being sent are numbered by interface.
        if let Some(outgoing) = &mut self.outgoing {
            outgoing.target = 0;
        }
    }

    /// Takes one datagram that arrived on `iface` from `source`. Responses from port
    /// 5353 on an added interface count; queries and other datagrams are ignored.
    /// Malformed datagrams are refused with the parser's error, which the caller may
    /// log; none panics.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        iface: InterfaceId,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), ParseError> {
        self.touch(now);
        let packet = Packet::parse(datagram)?;
        if !packet.header().is_response()
            || source.port() != MDNS_PORT
            || !self.ifaces.contains(&iface)
        {
            return Ok(());
        }
        self.expire(now);
        // PTR first, so that the SRV and TXT of a new instance in the same packet find
        // it; then SRV and TXT, so that its host's addresses find their host.
        let Some(service) = service_name() else {
            return Ok(());
        };
        for record in packet.records().filter(|r| r.class == CLASS_IN) {
            if let RData::Ptr(target) = record.rdata {
                if record.name.eq_name(&service) {
                    if let Some(label) = instance_label(&target) {
                        self.take_ptr(now, iface, label, record.ttl);
                    }
                }
            }
        }
        for record in packet.records().filter(|r| r.class == CLASS_IN) {
            let Some(slot) = instance_label(&record.name).and_then(|label| self.find(label)) else {
                continue;
            };
            match record.rdata {
                RData::Srv { port, target, .. } => {
                    self.take_srv(now, slot, port, target, record.ttl)
                }
                RData::Txt(txt) => self.take_txt(now, slot, HapTxt::parse(&txt), record.ttl),
                _ => {}
            }
        }
        for record in packet.records().filter(|r| r.class == CLASS_IN) {
            let ip = match record.rdata {
                RData::A(v4) => IpAddr::V4(v4),
                RData::Aaaa(v6) => IpAddr::V6(v6),
                _ => continue,
            };
            self.take_address(now, iface, &record.name, ip, record.ttl, record.cache_flush);
        }
        self.settle(now);
        Ok(())
    }

    /// The next query due at `now`, written into `buf` (at least
    /// [`MIN_TRANSMIT_BUFFER`] bytes; a smaller buffer yields nothing). Each query goes
    /// to every interface, over IPv4 and over IPv6, one transmit each. Call until
    /// `None`.
    pub fn poll_transmit<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Option<Transmit<'b>> {
        self.touch(now);
        if buf.len() < MIN_TRANSMIT_BUFFER {
            return None;
        }
        self.advance(now);
        // Each round either writes a transmit or finishes a query; starting one clears
        // what made it due, so this ends.
        for _ in 0..=2 * MAX_INSTANCES + 2 {
            let outgoing = match self.outgoing {
                Some(outgoing) => outgoing,
                None => {
                    let started = self.start_outgoing(now)?;
                    self.outgoing = Some(started);
                    started
                }
            };
            let targets = 2 * self.ifaces.len();
            if outgoing.target >= targets {
                self.finish_outgoing();
                continue;
            }
            let iface = self.ifaces[outgoing.target / 2];
            let family = if outgoing.target % 2 == 0 {
                Family::V4
            } else {
                Family::V6
            };
            let Some((len, more)) = self.write(now, outgoing, buf) else {
                self.finish_outgoing();
                continue;
            };
            self.outgoing = if outgoing.target + 1 < targets {
                Some(Outgoing {
                    target: outgoing.target + 1,
                    ..outgoing
                })
            } else if let Some(from) = more {
                Some(Outgoing {
                    from,
                    target: 0,
                    ..outgoing
                })
            } else {
                self.finish_outgoing();
                None
            };
            return Some(Transmit {
                iface,
                destination: Destination::Multicast(family),
                payload: &buf[..len],
            });
        }
        None
    }

    /// When [`Browser::handle_timeout`] is next due: the next query, refresh or expiry.
    /// Work that is ready now (a query to send) gives the latest `now` seen.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest = self.next_query;
        if self.ptr_query_pending || self.outgoing.is_some() {
            earliest = earliest.min(self.now);
        }
        for instance in self.slots.iter().flatten() {
            if let Some(at) = instance.next_deadline() {
                earliest = earliest.min(at);
            }
        }
        Some(earliest)
    }

    /// Expires records and makes queries due, up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        self.advance(now);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<BrowseEvent> {
        self.events.pop_front()
    }

    /// The instances known, resolved or not, in no particular order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> + '_ {
        self.slots.iter().flatten()
    }

    /// The instance named `name` (ASCII case ignored, RFC 6762 §16).
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.find(name.as_bytes())
            .and_then(|slot| self.slots[slot].as_ref())
    }

    /// What was dropped for lack of room.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    fn touch(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn find(&self, label: &[u8]) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.as_ref().is_some_and(|i| i.has_name(label)))
    }

    fn take_ptr(&mut self, now: Instant, iface: InterfaceId, label: &[u8], ttl: u32) {
        if let Some(slot) = self.find(label) {
            if let Some(instance) = &mut self.slots[slot] {
                match ttl {
                    0 => instance.ptr.end(now),
                    _ => instance.ptr = Lifetime::new(now, ttl),
                }
            }
            return;
        }
        if ttl == 0 {
            return;
        }
        let mut name = InstanceName::new();
        let valid = core::str::from_utf8(label).is_ok_and(|text| name.push_str(text).is_ok());
        if !valid {
            self.dropped.names = self.dropped.names.saturating_add(1);
            return;
        }
        let Some(free) = self.slots.iter_mut().find(|slot| slot.is_none()) else {
            self.dropped.instances = self.dropped.instances.saturating_add(1);
            return;
        };
        *free = Some(Instance {
            name,
            iface,
            ptr: Lifetime::new(now, ttl),
            srv: None,
            txt: None,
            addresses: heapless::Vec::new(),
            reported: false,
            changed: false,
            resolve_next: now,
            resolve_attempts: 0,
            asking: 0,
        });
    }

    fn take_srv(&mut self, now: Instant, slot: usize, port: u16, target: NameRef<'_>, ttl: u32) {
        let Some(host) = host_text(&target) else {
            self.dropped.names = self.dropped.names.saturating_add(1);
            return;
        };
        let Some(instance) = &mut self.slots[slot] else {
            return;
        };
        match &mut instance.srv {
            Some(srv) if srv.port == port && srv.host.eq_ignore_ascii_case(&host) => match ttl {
                0 => srv.life.end(now),
                _ => srv.life = Lifetime::new(now, ttl),
            },
            // A goodbye for another location than the one known.
            _ if ttl == 0 => {}
            known => {
                let moved = known
                    .as_ref()
                    .is_some_and(|srv| !srv.host.eq_ignore_ascii_case(&host));
                *known = Some(Srv {
                    port,
                    host,
                    life: Lifetime::new(now, ttl),
                });
                if moved {
                    // The addresses were the old host's.
                    instance.addresses.clear();
                }
                // A new host: ask for its addresses at the next transmit.
                instance.resolve_next = now;
                instance.resolve_attempts = 0;
                instance.changed = true;
            }
        }
    }

    fn take_txt(&mut self, now: Instant, slot: usize, fields: HapTxt, ttl: u32) {
        let Some(instance) = &mut self.slots[slot] else {
            return;
        };
        match &mut instance.txt {
            Some(txt) if ttl == 0 => txt.life.end(now),
            None if ttl == 0 => {}
            known => {
                if known.as_ref().is_none_or(|txt| txt.fields != fields) {
                    instance.changed = true;
                }
                *known = Some(TxtRecord {
                    fields,
                    life: Lifetime::new(now, ttl),
                });
            }
        }
    }

    /// Takes an A or AAAA record of `owner` heard on `iface`, for each instance on that
    /// host. A full instance makes room for an IPv4 address by dropping its last IPv6
    /// one, so that an accessory announcing many IPv6 addresses first stays reachable
    /// over IPv4.
    fn take_address(
        &mut self,
        now: Instant,
        iface: InterfaceId,
        owner: &NameRef<'_>,
        ip: IpAddr,
        ttl: u32,
        cache_flush: bool,
    ) {
        for instance in self.slots.iter_mut().flatten() {
            if !instance.host_is(owner) {
                continue;
            }
            if cache_flush {
                // §10.2: the other addresses of this family heard on this interface over
                // 1 s ago go; another interface's answers flush only their own (§14).
                for address in &mut instance.addresses {
                    let old = now.saturating_duration_since(address.life.received) > GRACE;
                    let same_kind = address.ip.is_ipv4() == ip.is_ipv4() && address.iface == iface;
                    if !address.is(ip, iface) && same_kind && old {
                        address.life.end(now);
                    }
                }
            }
            if let Some(address) = instance.addresses.iter_mut().find(|a| a.is(ip, iface)) {
                match ttl {
                    0 => address.life.end(now),
                    _ => address.life = Lifetime::new(now, ttl),
                }
                continue;
            }
            if ttl == 0 {
                continue;
            }
            // IPv4 before IPv6.
            let at = match ip {
                IpAddr::V4(_) => instance
                    .addresses
                    .iter()
                    .take_while(|a| a.ip.is_ipv4())
                    .count(),
                IpAddr::V6(_) => instance.addresses.len(),
            };
            let address = Address {
                ip,
                iface,
                life: Lifetime::new(now, ttl),
            };
            let last_is_v6 = instance.addresses.last().is_some_and(|a| a.ip.is_ipv6());
            if instance.addresses.is_full() && ip.is_ipv4() && last_is_v6 {
                instance.addresses.pop();
                self.dropped.addresses = self.dropped.addresses.saturating_add(1);
            }
            if instance.addresses.insert(at, address).is_err() {
                self.dropped.addresses = self.dropped.addresses.saturating_add(1);
            } else {
                instance.changed = true;
            }
        }
    }

    /// Drops what expired; a found instance whose PTR expired is reported removed.
    fn expire(&mut self, now: Instant) {
        for slot in &mut self.slots {
            let Some(instance) = slot else {
                continue;
            };
            if instance.ptr.expires <= now {
                if instance.reported {
                    push_event(
                        &mut self.events,
                        &mut self.dropped,
                        BrowseEvent::Removed(instance.name.clone()),
                    );
                }
                *slot = None;
                continue;
            }
            if instance.srv.as_ref().is_some_and(|s| s.life.expires <= now) {
                instance.srv = None;
                instance.addresses.clear();
                instance.changed = true;
            }
            if instance.txt.as_ref().is_some_and(|t| t.life.expires <= now) {
                instance.txt = None;
                instance.changed = true;
            }
            let before = instance.addresses.len();
            instance.addresses.retain(|a| a.life.expires > now);
            if instance.addresses.len() != before {
                instance.changed = true;
            }
        }
    }

    /// Reports what changed, and keeps a complete instance's retry ready for when it
    /// lacks something again.
    fn settle(&mut self, now: Instant) {
        for instance in self.slots.iter_mut().flatten() {
            let resolved = instance.is_resolved();
            if resolved {
                instance.resolve_next = now;
                instance.resolve_attempts = 0;
            }
            let event = if resolved && !instance.reported {
                instance.reported = true;
                Some(BrowseEvent::Found(instance.name.clone()))
            } else if instance.reported && instance.changed {
                Some(BrowseEvent::Updated(instance.name.clone()))
            } else {
                None
            };
            instance.changed = false;
            if let Some(event) = event {
                push_event(&mut self.events, &mut self.dropped, event);
            }
        }
    }

    /// Expires, reports, and makes the PTR query due on its schedule (§5.2).
    fn advance(&mut self, now: Instant) {
        self.expire(now);
        self.settle(now);
        if self.next_query <= now {
            self.ptr_query_pending = true;
            self.next_query = now + self.interval;
            self.interval = (self.interval * 2).min(MAX_QUERY_INTERVAL);
        }
        if self.instances().any(|i| i.ptr.refresh_due(now)) {
            self.ptr_query_pending = true;
        }
    }

    /// Starts the PTR query if due, else a resolve query if an instance needs one.
    fn start_outgoing(&mut self, now: Instant) -> Option<Outgoing> {
        if self.ptr_query_pending {
            self.ptr_query_pending = false;
            for instance in self.slots.iter_mut().flatten() {
                if instance.ptr.refresh_due(now) {
                    instance.ptr.refreshes += 1;
                }
            }
            return Some(Outgoing {
                kind: Kind::Ptr,
                from: 0,
                target: 0,
            });
        }
        let mut any = false;
        for instance in self.slots.iter_mut().flatten() {
            let ask = instance.due_asks(now);
            if ask == 0 {
                continue;
            }
            any = true;
            instance.asking = ask;
            let mut missing = false;
            let mut bump = |life: Option<&mut Lifetime>| match life {
                Some(life) => life.refreshes = (life.refreshes + 1).min(REFRESHES),
                None => missing = true,
            };
            if ask & ASK_SRV != 0 {
                bump(instance.srv.as_mut().map(|srv| &mut srv.life));
            }
            if ask & ASK_TXT != 0 {
                bump(instance.txt.as_mut().map(|txt| &mut txt.life));
            }
            if ask & ASK_ADDRESSES != 0 {
                if instance.addresses.is_empty() {
                    missing = true;
                }
                for address in &mut instance.addresses {
                    if address.life.refresh_due(now) {
                        address.life.refreshes += 1;
                    }
                }
            }
            if missing {
                // 1 s, 2 s, 4 s… up to the longest query interval.
                let backoff = FIRST_QUERY_INTERVAL * (1u32 << instance.resolve_attempts.min(6));
                instance.resolve_next = now + backoff.min(MAX_QUERY_INTERVAL);
                instance.resolve_attempts = instance.resolve_attempts.saturating_add(1);
            }
        }
        any.then_some(Outgoing {
            kind: Kind::Resolve,
            from: 0,
            target: 0,
        })
    }

    fn finish_outgoing(&mut self) {
        if self.outgoing.is_some_and(|o| o.kind == Kind::Resolve) {
            for instance in self.slots.iter_mut().flatten() {
                instance.asking = 0;
            }
        }
        self.outgoing = None;
    }

    /// Writes `outgoing` into `buf`: its length, and the slot to continue from in another
    /// packet if not everything fitted. `None` if there is nothing (left) to write.
    fn write(
        &self,
        now: Instant,
        outgoing: Outgoing,
        buf: &mut [u8],
    ) -> Option<(usize, Option<usize>)> {
        let mut writer = Writer::new(buf, 0, Header::QUERY).ok()?;
        let service = service_name()?;
        let mut more = None;
        match outgoing.kind {
            Kind::Ptr => {
                // A continuation carries only known answers, with TC before it (§7.2).
                if outgoing.from == 0 {
                    writer.question(service, rtype::PTR, CLASS_IN, false).ok()?;
                }
                for (slot, instance) in self.slots.iter().enumerate().skip(outgoing.from) {
                    let Some(instance) = instance else {
                        continue;
                    };
                    if !instance.ptr.worth_known_answer(now) {
                        continue;
                    }
                    let Ok(target) = Name::with_instance(&instance.name, SERVICE_TYPE) else {
                        continue;
                    };
                    let ttl = instance.ptr.remaining_secs(now);
                    let record =
                        RecordOut::new(service, false, ttl, RecordData::Ptr(target.into()));
                    match writer.answer(&record) {
                        Ok(()) => {}
                        // An answer that fits no packet (it cannot: 1452 bytes hold any
                        // one) is skipped rather than retried forever.
                        Err(WriteError::Full) if writer.is_empty() => {}
                        Err(WriteError::Full) => {
                            more = Some(slot);
                            break;
                        }
                        Err(_) => {}
                    }
                }
                if more.is_some() {
                    writer.set_flags(Header::TC);
                }
            }
            Kind::Resolve => {
                let mut wrote = false;
                for (slot, instance) in self.slots.iter().enumerate().skip(outgoing.from) {
                    let Some(instance) = instance.as_ref().filter(|i| i.asking != 0) else {
                        continue;
                    };
                    match write_resolve(&mut writer, instance) {
                        Ok(()) => wrote = true,
                        // Asked again in the next packet, whole; an instance alone never
                        // fills one (four questions in 1452 bytes), but is skipped if so.
                        Err(WriteError::Full) if wrote => {
                            more = Some(slot);
                            break;
                        }
                        Err(_) => {}
                    }
                }
                if writer.is_empty() {
                    return None;
                }
            }
        }
        Some((writer.finish().len(), more))
    }
}

/// The questions asking for what `instance` lacks: its SRV and TXT, its host's A and
/// AAAA (QM questions, §5.2).
fn write_resolve(writer: &mut Writer<'_>, instance: &Instance) -> Result<(), WriteError> {
    let name = Name::with_instance(&instance.name, SERVICE_TYPE)?;
    if instance.asking & ASK_SRV != 0 {
        writer.question(name, rtype::SRV, CLASS_IN, false)?;
    }
    if instance.asking & ASK_TXT != 0 {
        writer.question(name, rtype::TXT, CLASS_IN, false)?;
    }
    if let Some(srv) = instance
        .srv
        .as_ref()
        .filter(|_| instance.asking & ASK_ADDRESSES != 0)
    {
        let host = Name::new(&srv.host)?;
        writer.question(host, rtype::A, CLASS_IN, false)?;
        writer.question(host, rtype::AAAA, CLASS_IN, false)?;
    }
    Ok(())
}

/// `_hap._tcp.local` (a valid name, so never `None`).
fn service_name() -> Option<Name<'static>> {
    Name::new(SERVICE_TYPE).ok()
}

/// The instance label of `name` if it is `<instance>._hap._tcp.local`.
fn instance_label<'a>(name: &NameRef<'a>) -> Option<&'a [u8]> {
    let mut labels = name.labels();
    let first = labels.next()?;
    let service = service_name()?;
    let rest_is_service = {
        let mut ours = service.labels();
        loop {
            match (labels.next(), ours.next()) {
                (None, None) => break true,
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
                _ => break false,
            }
        }
    };
    rest_is_service.then_some(first)
}

/// `name` as dotted text without the final dot, if each label is UTF-8 without a dot.
fn host_text(name: &NameRef<'_>) -> Option<HostName> {
    let mut host = HostName::new();
    for label in name.labels() {
        let text = core::str::from_utf8(label)
            .ok()
            .filter(|t| !t.contains('.'))?;
        if !host.is_empty() {
            host.push('.').ok()?;
        }
        host.push_str(text).ok()?;
    }
    (!host.is_empty()).then_some(host)
}

/// Queues `event`, or counts it when the queue is full.
fn push_event(
    events: &mut heapless::Deque<BrowseEvent, MAX_BROWSE_EVENTS>,
    dropped: &mut Dropped,
    event: BrowseEvent,
) {
    if events.push_back(event).is_err() {
        dropped.events = dropped.events.saturating_add(1);
    }
}
