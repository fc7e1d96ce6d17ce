//! The responder's sockets and threads: datagrams in, the core's transmits out, its
//! deadlines served, the interfaces followed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hap_core::mdns::responder::{MDNS_GROUP_V4, MDNS_GROUP_V6, MDNS_PORT};
use hap_core::mdns::wire::Packet;
use hap_core::mdns::{Destination, Family, InterfaceId, MdnsEvent, MdnsResponder, Transmit};
use rand_core::OsRng;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockRef, Socket, Type};

use super::iface::{self, Link};
use super::{scoped, EventSink, MdnsConfig, MdnsError, INTERFACE_CHECK, THREAD_WAKE};
use hap_core::mdns::responder::MAX_INTERFACES;

/// The largest datagram read: the most RFC 6762 §17 allows.
const MAX_DATAGRAM: usize = 9000;

/// The published advertisement.
pub(super) struct Published {
    pub(super) responder: MdnsResponder,
}

/// What the threads share, under [`Shared::state`].
pub(super) struct State {
    pub(super) published: Option<Published>,
    /// The interfaces served, as last looked at.
    pub(super) links: Vec<Link>,
    /// The group memberships joined: family and interface index.
    pub(super) joined: Vec<(Family, u32)>,
    pub(super) rng: OsRng,
    /// Where the core writes each datagram to send.
    pub(super) buf: Vec<u8>,
    /// When to look at the interfaces again.
    pub(super) next_check: Instant,
}

/// The responder's state and sockets, shared by its threads and its handle.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Wakes the timer thread (and a waiting goodbye): the deadline changed, or stop.
    pub(super) wake: Condvar,
    pub(super) stop: AtomicBool,
    pub(super) v4: Option<UdpSocket>,
    pub(super) v6: Option<UdpSocket>,
    /// The origin of the core's clock.
    pub(super) epoch: Instant,
    pub(super) events: EventSink,
    pub(super) config: MdnsConfig,
}

/// Which socket a receiving thread reads.
#[derive(Clone, Copy, Debug)]
pub(super) enum Which {
    V4,
    V6,
}

fn io_error(action: &'static str) -> impl FnOnce(io::Error) -> MdnsError {
    move |source| MdnsError::Io { action, source }
}

/// A UDP socket on port 5353 that other responders on the host may share.
fn shared_socket(domain: Domain) -> Result<Socket, MdnsError> {
    let socket =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(io_error("open a socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(io_error("set SO_REUSEADDR"))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(io_error("set SO_REUSEPORT"))?;
    socket
        .set_read_timeout(Some(THREAD_WAKE))
        .map_err(io_error("set a read timeout"))?;
    Ok(socket)
}

/// The IPv4 socket: bound to 0.0.0.0:5353, loop on, TTL 255; groups are joined per
/// interface later.
pub(super) fn socket_v4() -> Result<UdpSocket, MdnsError> {
    let socket = shared_socket(Domain::IPV4)?;
    // Only the groups this socket joined, not those other sockets of the host joined.
    #[cfg(target_os = "linux")]
    socket
        .set_multicast_all_v4(false)
        .map_err(io_error("clear IP_MULTICAST_ALL"))?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(io_error("set IP_MULTICAST_LOOP"))?;
    socket
        .set_multicast_ttl_v4(255)
        .map_err(io_error("set IP_MULTICAST_TTL"))?;
    socket.set_ttl_v4(255).map_err(io_error("set IP_TTL"))?;
    socket
        .bind(&SockAddr::from(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            MDNS_PORT,
        )))
        .map_err(io_error("bind 0.0.0.0:5353"))?;
    Ok(socket.into())
}

/// The IPv6 socket: IPv6 only, bound to [::]:5353, loop on, hop limit 255.
pub(super) fn socket_v6() -> Result<UdpSocket, MdnsError> {
    let socket = shared_socket(Domain::IPV6)?;
    socket
        .set_only_v6(true)
        .map_err(io_error("set IPV6_V6ONLY"))?;
    #[cfg(target_os = "linux")]
    socket
        .set_multicast_all_v6(false)
        .map_err(io_error("clear IPV6_MULTICAST_ALL"))?;
    socket
        .set_multicast_loop_v6(true)
        .map_err(io_error("set IPV6_MULTICAST_LOOP"))?;
    socket
        .set_multicast_hops_v6(255)
        .map_err(io_error("set IPV6_MULTICAST_HOPS"))?;
    socket
        .set_unicast_hops_v6(255)
        .map_err(io_error("set IPV6_UNICAST_HOPS"))?;
    socket
        .bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            MDNS_PORT,
            0,
            0,
        )))
        .map_err(io_error("bind [::]:5353"))?;
    Ok(socket.into())
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        super::lock(&self.state)
    }

    /// Now, on the core's clock.
    pub(super) fn now(&self) -> hap_core::time::Instant {
        hap_core::time::Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    fn to_std(&self, at: hap_core::time::Instant) -> Instant {
        self.epoch + Duration::from_millis(at.as_millis())
    }

    /// Hands the events to the application's callback; call without the lock.
    pub(super) fn dispatch(&self, events: Vec<MdnsEvent>) {
        for event in events {
            (self.events)(event);
        }
    }

    /// Reads datagrams from one socket until told to stop.
    pub(super) fn run_receiver(&self, which: Which) {
        let socket = match which {
            Which::V4 => self.v4.as_ref(),
            Which::V6 => self.v6.as_ref(),
        };
        let Some(socket) = socket else {
            return;
        };
        let mut datagram = vec![0; MAX_DATAGRAM];
        while !self.stop.load(Ordering::SeqCst) {
            match socket.recv_from(&mut datagram) {
                Ok((len, source)) => self.handle_datagram(source, &datagram[..len]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("mDNS: receiving on {which:?}: {e}");
                    std::thread::sleep(THREAD_WAKE);
                }
            }
        }
    }

    fn handle_datagram(&self, source: SocketAddr, datagram: &[u8]) {
        let events = {
            let mut state = self.lock();
            let scope = match source {
                SocketAddr::V6(v6) => v6.scope_id(),
                SocketAddr::V4(_) => 0,
            };
            // Our own datagrams, which multicast loopback brings back, are recognised
            // by the core (MdnsResponder::handle_datagram).
            let Some(iface) = iface::interface_of(source.ip(), scope, &state.links) else {
                log::trace!("mDNS: dropped a datagram from {source}: not on a served link");
                return;
            };
            let now = self.now();
            let state = &mut *state;
            let Some(published) = state.published.as_mut() else {
                return;
            };
            if let Err(e) =
                published
                    .responder
                    .handle_datagram(now, iface, source, datagram, &mut state.rng)
            {
                log::trace!("mDNS: dropped a datagram from {source}: {e}");
            }
            self.flush(state)
        };
        // An answer may now be due later, at a new deadline.
        self.wake.notify_all();
        self.dispatch(events);
    }

    /// Serves the core's deadlines and the interface check until told to stop.
    pub(super) fn run_timers(&self) {
        let mut state = self.lock();
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let mut events = Vec::new();
            if now >= state.next_check {
                events = self.check_interfaces(&mut state);
            }
            let core_now = self.now();
            let mut deadline = state.next_check;
            let state_ref = &mut *state;
            if let Some(published) = state_ref.published.as_mut() {
                if published
                    .responder
                    .poll_timeout()
                    .is_some_and(|at| at <= core_now)
                {
                    published
                        .responder
                        .handle_timeout(core_now, &mut state_ref.rng);
                }
            }
            events.extend(self.flush(&mut state));
            if let Some(at) = state
                .published
                .as_ref()
                .and_then(|published| published.responder.poll_timeout())
            {
                deadline = deadline.min(self.to_std(at));
            }
            if !events.is_empty() {
                drop(state);
                self.dispatch(events);
                state = self.lock();
                continue;
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(THREAD_WAKE);
            if wait.is_zero() {
                continue;
            }
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Looks at the interfaces: joins the groups on new ones and tells the core of new,
    /// changed and vanished ones. Returns the core's events from the goodbyes sent.
    pub(super) fn check_interfaces(&self, state: &mut State) -> Vec<MdnsEvent> {
        state.next_check = Instant::now() + INTERFACE_CHECK;
        match iface::scan(&self.config.interfaces) {
            Ok(links) => self.apply_links(state, links),
            Err(e) => {
                log::debug!("mDNS: cannot list the interfaces: {e}");
                Vec::new()
            }
        }
    }

    /// Serves `links` from now on: forgets the vanished ones (sending their goodbyes
    /// first, which frees their places in the core), then adds the new and changed ones.
    /// A link the core refuses is not recorded, so the next check tries it again.
    fn apply_links(&self, state: &mut State, links: Vec<Link>) -> Vec<MdnsEvent> {
        let links = servable(links, self.v4.is_some(), self.v6.is_some());
        if links.is_empty() && state.links.is_empty() {
            log::trace!("mDNS: no interface to serve yet");
        }
        let now = self.now();
        for gone in state
            .links
            .iter()
            .filter(|old| !links.iter().any(|new| new.id == old.id))
        {
            log::debug!("mDNS: interface {} is gone", gone.name);
            if let Some(published) = state.published.as_mut() {
                if let Err(e) = published.responder.remove_interface(gone.id, now) {
                    log::debug!("mDNS: removing {}: {e}", gone.name);
                }
            }
            self.leave(&mut state.joined, gone.id);
        }
        // The core keeps a vanished interface until its goodbye is out: send it now (the
        // old links still name the interface), so an interface that replaced it fits.
        let events = self.flush(state);
        let mut served = Vec::with_capacity(links.len());
        for link in links {
            self.join(&mut state.joined, &link);
            let old = state.links.iter().find(|old| old.id == link.id);
            if old.is_some_and(|old| old.addresses() == link.addresses()) {
                served.push(link);
                continue;
            }
            match old {
                None => log::debug!(
                    "mDNS: serving interface {} {:?}",
                    link.name,
                    link.addresses()
                ),
                Some(old) => log::debug!(
                    "mDNS: the addresses of {} changed from {:?} to {:?}",
                    link.name,
                    old.addresses(),
                    link.addresses()
                ),
            }
            let Some(published) = state.published.as_mut() else {
                served.push(link);
                continue;
            };
            let addresses = link.addresses();
            match published
                .responder
                .set_interface(link.id, &addresses, now, &mut state.rng)
            {
                Ok(()) => served.push(link),
                Err(e) => {
                    log::warn!("mDNS: not serving {} yet: {e}; trying again", link.name);
                    // What the core still has, so the change is tried again next time.
                    served.extend(old.cloned());
                }
            }
        }
        state.links = served;
        events
    }

    fn join(&self, joined: &mut Vec<(Family, u32)>, link: &Link) {
        join_groups(self.v4.as_ref(), self.v6.as_ref(), joined, link);
    }

    /// Leaves the groups on a vanished interface (the system may have dropped them
    /// already).
    fn leave(&self, joined: &mut Vec<(Family, u32)>, id: InterfaceId) {
        let index = id.0;
        if let Some(socket) = &self.v4 {
            if joined.contains(&(Family::V4, index)) {
                let interface = InterfaceIndexOrAddress::Index(index);
                let _ = SockRef::from(socket).leave_multicast_v4_n(&MDNS_GROUP_V4, &interface);
            }
        }
        if let Some(socket) = &self.v6 {
            if joined.contains(&(Family::V6, index)) {
                let _ = socket.leave_multicast_v6(&MDNS_GROUP_V6, index);
            }
        }
        joined.retain(|(_, at)| *at != index);
    }

    /// Sends every datagram the core has due, and collects its events (logged here).
    pub(super) fn flush(&self, state: &mut State) -> Vec<MdnsEvent> {
        let now = self.now();
        let State {
            published,
            links,
            buf,
            ..
        } = state;
        let Some(published) = published.as_mut() else {
            return Vec::new();
        };
        while let Some(transmit) = published.responder.poll_transmit(now, buf) {
            self.send(links, &transmit);
        }
        let mut events = Vec::new();
        while let Some(event) = published.responder.poll_event() {
            log_event(&event, links);
            events.push(event);
        }
        events
    }

    fn send(&self, links: &[Link], transmit: &Transmit<'_>) {
        send_transmit(self.v4.as_ref(), self.v6.as_ref(), links, transmit);
    }
}

/// Joins 224.0.0.251 and ff02::fb on `link` where not joined yet; a failure is
/// logged and tried again at the next check.
pub(super) fn join_groups(
    v4: Option<&UdpSocket>,
    v6: Option<&UdpSocket>,
    joined: &mut Vec<(Family, u32)>,
    link: &Link,
) {
    let index = link.id.0;
    if let Some(socket) = v4 {
        if !joined.contains(&(Family::V4, index)) {
            let interface = InterfaceIndexOrAddress::Index(index);
            match SockRef::from(socket).join_multicast_v4_n(&MDNS_GROUP_V4, &interface) {
                Ok(()) => joined.push((Family::V4, index)),
                // Joined before the interface went down and came back.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => joined.push((Family::V4, index)),
                Err(e) => log::debug!("mDNS: cannot join 224.0.0.251 on {}: {e}", link.name),
            }
        }
    }
    if let Some(socket) = v6 {
        let has_v6 = link.nets.iter().any(|(address, _)| address.is_ipv6());
        if has_v6 && !joined.contains(&(Family::V6, index)) {
            match socket.join_multicast_v6(&MDNS_GROUP_V6, index) {
                Ok(()) => joined.push((Family::V6, index)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => joined.push((Family::V6, index)),
                Err(e) => log::debug!("mDNS: cannot join ff02::fb on {}: {e}", link.name),
            }
        }
    }
}

/// Sends one datagram; a failure is logged (the core's schedule repeats what matters).
pub(super) fn send_transmit(
    v4: Option<&UdpSocket>,
    v6: Option<&UdpSocket>,
    links: &[Link],
    transmit: &Transmit<'_>,
) {
    let link = links.iter().find(|link| link.id == transmit.iface);
    let name = link.map_or("an interface no longer served", |link| link.name.as_str());
    let (socket, target) = match shared_port_safe(transmit.destination, links) {
        Destination::Multicast(Family::V4) => {
            let (Some(socket), Some(address)) = (v4, link.and_then(Link::ipv4)) else {
                log::trace!("mDNS: no IPv4 on {name}: not sent");
                return;
            };
            if let Err(e) = SockRef::from(socket).set_multicast_if_v4(&address) {
                log::debug!("mDNS: cannot send on {name} ({address}): {e}");
                return;
            }
            let group = SocketAddr::from((MDNS_GROUP_V4, MDNS_PORT));
            (socket, group)
        }
        Destination::Multicast(Family::V6) => {
            let Some(socket) = v6 else {
                log::trace!("mDNS: no IPv6 socket: not sent on {name}");
                return;
            };
            if let Err(e) = SockRef::from(socket).set_multicast_if_v6(transmit.iface.0) {
                log::debug!("mDNS: cannot send on {name} over IPv6: {e}");
                return;
            }
            let group = SocketAddrV6::new(MDNS_GROUP_V6, MDNS_PORT, 0, transmit.iface.0);
            (socket, SocketAddr::V6(group))
        }
        Destination::Unicast(SocketAddr::V4(to)) => match v4 {
            Some(socket) => (socket, SocketAddr::V4(to)),
            None => return,
        },
        Destination::Unicast(SocketAddr::V6(to)) => match v6 {
            Some(socket) => (socket, scoped(to, transmit.iface)),
            None => return,
        },
        // Destination may grow; nothing else is known to send.
        #[allow(unreachable_patterns)]
        _ => return,
    };
    if log::log_enabled!(log::Level::Debug) {
        log::debug!(
            "mDNS: sending on {name} to {target}: {}",
            describe(transmit.payload)
        );
    }
    if let Err(e) = socket.send_to(transmit.payload, target) {
        log::debug!("mDNS: cannot send on {name} to {target}: {e}");
    }
}

/// The links that can be served: each keeps the addresses of the families with a
/// socket, those left with none are dropped (they could be neither joined nor sent
/// on), and at most [`MAX_INTERFACES`] are kept.
pub(super) fn servable(mut links: Vec<Link>, v4: bool, v6: bool) -> Vec<Link> {
    for link in &mut links {
        bound_families_only(&mut link.nets, v4, v6);
    }
    links.retain(|link| !link.nets.is_empty());
    if links.len() > MAX_INTERFACES {
        let left: Vec<&str> = links[MAX_INTERFACES..]
            .iter()
            .map(|link| link.name.as_str())
            .collect();
        log::debug!("mDNS: serving {MAX_INTERFACES} interfaces at most; not {left:?}");
        links.truncate(MAX_INTERFACES);
    }
    links
}

/// The IPv4 and IPv6 sockets on port 5353, either of which may be missing (a host
/// without IPv6); fails only when neither can be bound.
pub(super) fn sockets() -> Result<(Option<UdpSocket>, Option<UdpSocket>), MdnsError> {
    match (socket_v4(), socket_v6()) {
        (Err(e4), Err(_)) => Err(e4),
        (v4, v6) => Ok((
            v4.map_err(|e| log::warn!("{e}; mDNS over IPv6 only")).ok(),
            v6.map_err(|e| log::info!("{e}; mDNS over IPv4 only")).ok(),
        )),
    }
}

/// Keeps the addresses of the families with a socket: the others are neither advertised
/// nor shown in the banner (no datagram of theirs can come in, or go out, either).
fn bound_families_only(nets: &mut Vec<(IpAddr, u8)>, v4: bool, v6: bool) {
    nets.retain(|(address, _)| if address.is_ipv4() { v4 } else { v6 });
}

/// `destination`, or the group of its family when it is port 5353 of an address of
/// this host: another responder on the host (a second accessory, avahi-daemon) shares
/// that port, and the system hands a unicast datagram to only one of the sockets bound
/// to it, perhaps ours (RFC 6762 §15.1). Multicast reaches every one of them.
fn shared_port_safe(destination: Destination, links: &[Link]) -> Destination {
    match destination {
        Destination::Unicast(to)
            if to.port() == MDNS_PORT
                && links
                    .iter()
                    .any(|link| link.nets.iter().any(|(address, _)| *address == to.ip())) =>
        {
            Destination::Multicast(if to.is_ipv4() { Family::V4 } else { Family::V6 })
        }
        other => other,
    }
}

/// Logs an event of the core, naming interfaces.
fn log_event(event: &MdnsEvent, links: &[Link]) {
    let name = |id: &InterfaceId| {
        links
            .iter()
            .find(|link| link.id == *id)
            .map_or_else(|| format!("interface {}", id.0), |link| link.name.clone())
    };
    match event {
        MdnsEvent::Probing { iface } => log::debug!("mDNS: probing on {}", name(iface)),
        MdnsEvent::Announced { iface } => {
            let addresses = links
                .iter()
                .find(|link| link.id == *iface)
                .map(Link::addresses)
                .unwrap_or_default();
            log::debug!("mDNS: announced on {} with {addresses:?}", name(iface));
        }
        MdnsEvent::Conflict {
            kind,
            iface,
            probing,
        } => log::debug!(
            "mDNS: another host claims our {kind:?} name on {} ({})",
            name(iface),
            if *probing {
                "while probing"
            } else {
                "after probing"
            }
        ),
        MdnsEvent::Renamed { kind, name } => {
            log::debug!("mDNS: renamed the {kind:?} to {name:?}")
        }
        MdnsEvent::AddressesChanged { iface } => {
            log::debug!("mDNS: announcing the new addresses of {}", name(iface))
        }
        MdnsEvent::Withdrawn => log::debug!("mDNS: goodbye sent"),
        other => log::debug!("mDNS: {other:?}"),
    }
}

/// A datagram in a line: query or response, then each record's name and type.
fn describe(payload: &[u8]) -> String {
    let Ok(packet) = Packet::parse(payload) else {
        return format!("{} bytes (unparsable)", payload.len());
    };
    let mut out = String::from(if packet.header().is_response() {
        "response"
    } else {
        "query"
    });
    for question in packet.questions() {
        out += &format!(" ?{} {}", question.name, type_name(question.qtype));
    }
    for record in packet.records() {
        out += &format!(
            ", {} {} ttl {}",
            record.name,
            type_name(record.rtype),
            record.ttl
        );
    }
    out
}

fn type_name(rtype: u16) -> String {
    use hap_core::mdns::wire::rtype;
    match rtype {
        rtype::A => "A".into(),
        rtype::PTR => "PTR".into(),
        rtype::TXT => "TXT".into(),
        rtype::AAAA => "AAAA".into(),
        rtype::SRV => "SRV".into(),
        rtype::NSEC => "NSEC".into(),
        rtype::ANY => "ANY".into(),
        other => format!("type {other}"),
    }
}

impl Shared {
    /// Says goodbye if something is published and waits until it is sent, at most
    /// `limit`; then forgets the published advertisement.
    pub(super) fn goodbye(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        let now = self.now();
        match state.published.as_mut() {
            Some(published) if !published.responder.is_withdrawn() => {
                published.responder.goodbye(now)
            }
            _ => {
                state.published = None;
                return;
            }
        }
        loop {
            let now = self.now();
            let state_ref = &mut *state;
            let Some(published) = state_ref.published.as_mut() else {
                return;
            };
            if published
                .responder
                .poll_timeout()
                .is_some_and(|at| at <= now)
            {
                published.responder.handle_timeout(now, &mut state_ref.rng);
            }
            let events = self.flush(state_ref);
            let withdrawn = state_ref
                .published
                .as_ref()
                .is_none_or(|published| published.responder.is_withdrawn());
            if !events.is_empty() {
                drop(state);
                self.dispatch(events);
                state = self.lock();
            }
            if withdrawn {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("mDNS: the goodbye was not finished within {limit:?}");
                break;
            }
            let next = state
                .published
                .as_ref()
                .and_then(|published| published.responder.poll_timeout())
                .map_or(left, |at| {
                    self.to_std(at).saturating_duration_since(Instant::now())
                });
            let wait = next.min(left);
            if !wait.is_zero() {
                state = self
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
        }
        state.published = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            published: None,
            links: Vec::new(),
            joined: Vec::new(),
            rng: OsRng,
            buf: Vec::new(),
            next_check: Instant::now(),
        }
    }

    /// A responder publishing, served on nothing yet, with an IPv4 socket that sends
    /// nothing (the test interfaces' addresses are not this host's).
    fn publishing() -> Shared {
        let advertisement = hap_core::mdns::Advertisement {
            name: "Light",
            port: 51826,
            model: "Light",
            device_id: "12:34:56:78:9A:BC".parse().unwrap(),
            config_number: 1,
            category: hap_core::catalog::Category::LIGHTBULB,
            paired: false,
            setup_id: None,
        };
        let responder = MdnsResponder::new("light", &advertisement).unwrap();
        let mut state = state();
        state.published = Some(Published { responder });
        state.buf = vec![0; hap_core::mdns::responder::MIN_TRANSMIT_BUFFER];
        Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            v4: Some(UdpSocket::bind("127.0.0.1:0").unwrap()),
            v6: None,
            epoch: Instant::now(),
            events: Box::new(|_| {}),
            config: MdnsConfig::default(),
        }
    }

    fn link(index: u32) -> Link {
        Link {
            id: InterfaceId(index),
            name: format!("eth{index}"),
            nets: vec![(format!("192.0.2.{index}").parse().unwrap(), 24)],
        }
    }

    fn ids(links: &[Link]) -> Vec<u32> {
        links.iter().map(|link| link.id.0).collect()
    }

    fn in_core(state: &State) -> Vec<u32> {
        let published = state.published.as_ref().unwrap();
        let mut ids: Vec<u32> = published.responder.interfaces().map(|id| id.0).collect();
        ids.sort();
        ids
    }

    #[test]
    fn an_interface_the_core_refuses_is_not_recorded_and_is_tried_again() {
        let shared = publishing();
        let mut state = shared.lock();
        let now = shared.now();
        // The core is full: three links served, and one more it holds (such as one
        // whose goodbye is still pending).
        let events = shared.apply_links(&mut state, vec![link(1), link(2), link(3)]);
        assert!(events.is_empty());
        let published = state.published.as_mut().unwrap();
        let addresses = link(9).addresses();
        published
            .responder
            .set_interface(InterfaceId(9), &addresses, now, &mut OsRng)
            .unwrap();

        shared.apply_links(&mut state, vec![link(1), link(2), link(3), link(4)]);
        assert_eq!(ids(&state.links), [1, 2, 3], "eth4 did not fit: not served");

        let published = state.published.as_mut().unwrap();
        published
            .responder
            .remove_interface(InterfaceId(9), now)
            .unwrap();
        shared.apply_links(&mut state, vec![link(1), link(2), link(3), link(4)]);
        assert_eq!(ids(&state.links), [1, 2, 3, 4], "tried again, and served");
        assert_eq!(in_core(&state), [1, 2, 3, 4]);
    }

    #[test]
    fn an_interface_that_replaces_an_announced_one_is_served() {
        let shared = publishing();
        let mut state = shared.lock();
        shared.apply_links(&mut state, vec![link(1), link(2), link(3), link(4)]);
        // Probe and announce on all four, on the core's clock.
        let mut at = shared.now();
        for _ in 0..100 {
            at = at + Duration::from_millis(100);
            let state = &mut *state;
            let published = state.published.as_mut().unwrap();
            published.responder.handle_timeout(at, &mut state.rng);
            while published
                .responder
                .poll_transmit(at, &mut state.buf)
                .is_some()
            {}
        }
        while state
            .published
            .as_mut()
            .unwrap()
            .responder
            .poll_event()
            .is_some()
        {}
        drop(state);
        // The core's clock may not go back: start the driver's where the loop ended.
        let shared = Shared {
            epoch: Instant::now() - Duration::from_millis(at.as_millis()),
            ..shared
        };
        let mut state = shared.lock();

        // In one check, eth4 goes (a goodbye to send) and eth5 comes.
        shared.apply_links(&mut state, vec![link(1), link(2), link(3), link(5)]);
        assert_eq!(ids(&state.links), [1, 2, 3, 5]);
        assert_eq!(in_core(&state), [1, 2, 3, 5]);
    }

    #[test]
    fn only_the_addresses_of_a_bound_family_are_served() {
        let all: Vec<(IpAddr, u8)> = vec![
            ("192.0.2.2".parse().unwrap(), 24),
            ("fe80::2".parse().unwrap(), 64),
        ];
        let mut nets = all.clone();
        bound_families_only(&mut nets, false, true);
        assert_eq!(nets, all[1..], "no IPv4 socket: no IPv4 address");
        let mut nets = all.clone();
        bound_families_only(&mut nets, true, false);
        assert_eq!(nets, all[..1]);
        let mut nets = all.clone();
        bound_families_only(&mut nets, true, true);
        assert_eq!(nets, all);
    }

    #[test]
    fn a_unicast_answer_to_this_host_port_5353_goes_by_multicast() {
        let links = [Link {
            id: InterfaceId(2),
            name: "eth0".into(),
            nets: vec![
                ("192.0.2.2".parse().unwrap(), 24),
                ("2001:db8::2".parse().unwrap(), 64),
            ],
        }];
        let to = |text: &str| Destination::Unicast(text.parse().unwrap());
        assert_eq!(
            shared_port_safe(to("192.0.2.2:5353"), &links),
            Destination::Multicast(Family::V4)
        );
        assert_eq!(
            shared_port_safe(to("[2001:db8::2]:5353"), &links),
            Destination::Multicast(Family::V6)
        );
        for kept in ["192.0.2.1:5353", "192.0.2.2:40000", "[2001:db8::1]:5353"] {
            assert_eq!(shared_port_safe(to(kept), &links), to(kept), "{kept}");
        }
    }
}
