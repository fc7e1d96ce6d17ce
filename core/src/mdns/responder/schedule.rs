//! Per-interface state: where probing and announcing stand, and what waits to be sent.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use super::records::{OurName, RecordSet, RECORD_BITS};
use super::{Family, InterfaceId, MAX_ADDRESSES, MAX_LABEL};
use crate::time::Instant;

/// Probes per round (RFC 6762 §8.1; Avahi announce.c AVAHI_PROBE_INTERVAL_MSEC and
/// mDNSResponder mDNS.c DefaultProbeCountForTypeUnique say the same).
pub(super) const PROBES: u8 = 3;
/// The time between probes, and after the last before announcing (RFC 6762 §8.1).
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// The first probe waits a random time up to this (RFC 6762 §8.1).
pub(super) const PROBE_JITTER_MS: u32 = 250;
/// Announcements per round, at t, t+1 s, t+3 s (RFC 6762 §8.3; Avahi announce.c).
pub(super) const ANNOUNCEMENTS: u8 = 3;
/// What a responder that lost a simultaneous probe waits before probing again (§8.2).
pub(super) const TIEBREAK_LOSS_WAIT: Duration = Duration::from_secs(1);
/// After [`MAX_CONFLICTS`] conflicts within [`CONFLICT_WINDOW`], probes are this far apart
/// (RFC 6762 §8.1).
pub(super) const SLOW_PROBE_WAIT: Duration = Duration::from_secs(5);
/// See [`SLOW_PROBE_WAIT`].
pub(super) const MAX_CONFLICTS: usize = 15;
/// See [`SLOW_PROBE_WAIT`].
pub(super) const CONFLICT_WINDOW: Duration = Duration::from_secs(10);
/// Goodbyes are sent this many times (RFC 6762 §10.1 asks for one; a second survives a
/// lost datagram; mDNSResponder sends 3, python-zeroconf 3).
pub(super) const GOODBYES: u8 = 2;
/// The time between goodbye rounds.
pub(super) const GOODBYE_INTERVAL: Duration = Duration::from_millis(250);
/// Shared answers wait 20 to 120 ms (RFC 6762 §6; Avahi response-sched.c
/// AVAHI_RESPONSE_DEFER_MSEC 20 plus AVAHI_RESPONSE_JITTER_MSEC 100).
pub(super) const SHARED_DELAY_MS: (u32, u32) = (20, 120);
/// A truncated query's answers wait 400 to 500 ms for the rest of its known answers (§7.2).
pub(super) const TRUNCATED_DELAY_MS: (u32, u32) = (400, 500);
/// A record is multicast at most once a second per interface (RFC 6762 §6) ...
pub(super) const RATE_LIMIT: Duration = Duration::from_secs(1);
/// ... except to defend a name against a probe (§6).
pub(super) const PROBE_DEFENCE_RATE_LIMIT: Duration = Duration::from_millis(250);
/// Unicast replies queued per interface; a querier whose reply is dropped asks again.
pub(super) const MAX_UNICAST: usize = 4;
/// Questions echoed in a legacy unicast reply.
pub(super) const MAX_ECHOED: usize = 4;
/// Legacy unicast replies stay within the classic DNS size (RFC 6762 §6.7; Avahi 512).
pub(super) const LEGACY_MAX: usize = 512;

/// Where an interface stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// `sent` probes went out; the next step is due at `next`.
    Probing { sent: u8, next: Instant },
    /// `sent` announcements went out; the next is due at `next`.
    Announcing { sent: u8, next: Instant },
    /// Announced; answering.
    Established,
    /// Removed: its goodbye is being sent, then it is forgotten.
    Leaving,
}

impl Phase {
    /// Whether our names are ours here: answers may be given.
    pub(super) fn answers(&self) -> bool {
        matches!(self, Self::Announcing { .. } | Self::Established)
    }

    pub(super) fn next(&self) -> Option<Instant> {
        match *self {
            Self::Probing { next, .. } | Self::Announcing { next, .. } => Some(next),
            Self::Established | Self::Leaving => None,
        }
    }
}

/// What one family of one interface has to send.
#[derive(Clone, Debug, Default)]
pub(super) struct Outbox {
    /// A probe is due.
    pub(super) probe: bool,
    /// Records of an announcement not yet written.
    pub(super) announce: RecordSet,
    /// Records of a goodbye not yet written.
    pub(super) goodbye: RecordSet,
    /// The goodbye for stale records (an old PTR, removed addresses) is due.
    pub(super) stale: bool,
    /// A multicast response: its answers, its additionals, and when it is due.
    pub(super) answers: RecordSet,
    pub(super) additionals: RecordSet,
    pub(super) due: Option<Instant>,
    /// When each record was last multicast here (RFC 6762 §5.4, §6).
    pub(super) last_multicast: [Option<Instant>; RECORD_BITS],
}

impl Outbox {
    /// Whether anything but a response waiting for its time is queued.
    pub(super) fn has_ready(&self) -> bool {
        self.probe || self.announce != 0 || self.goodbye != 0 || self.stale
    }

    /// The records among `set` multicast here within `window` before `now`.
    pub(super) fn multicast_within(
        &self,
        set: RecordSet,
        now: Instant,
        window: impl Fn(RecordSet) -> Duration,
    ) -> RecordSet {
        super::records::bits(set)
            .filter(|&bit| {
                self.last_multicast[super::records::bit_index(bit)]
                    .is_some_and(|at| now < at + window(bit))
            })
            .fold(0, |set, bit| set | bit)
    }

    pub(super) fn clear_pending(&mut self) {
        self.probe = false;
        self.announce = 0;
        self.answers = 0;
        self.additionals = 0;
        self.due = None;
    }
}

/// A question echoed in a legacy unicast reply (RFC 6762 §6.7).
#[derive(Clone, Copy, Debug)]
pub(super) struct Echoed {
    pub(super) name: OurName,
    pub(super) qtype: u16,
    pub(super) qclass: u16,
}

/// A reply to one querier.
#[derive(Clone, Debug)]
pub(super) struct UnicastReply {
    pub(super) destination: SocketAddr,
    /// The query's id (legacy) or 0.
    pub(super) id: u16,
    /// A legacy reply: TTLs at most 10 s, questions echoed, no cache-flush bits.
    pub(super) legacy: bool,
    pub(super) questions: heapless::Vec<Echoed, MAX_ECHOED>,
    pub(super) answers: RecordSet,
    pub(super) additionals: RecordSet,
}

/// One interface.
#[derive(Debug)]
pub(super) struct Iface {
    pub(super) id: InterfaceId,
    pub(super) addresses: heapless::Vec<IpAddr, MAX_ADDRESSES>,
    pub(super) phase: Phase,
    /// IPv4, IPv6.
    pub(super) outbox: [Outbox; 2],
    pub(super) unicast: heapless::Deque<UnicastReply, MAX_UNICAST>,
    /// An instance name announced here and since given up: its PTR gets a goodbye.
    pub(super) stale_ptr: Option<heapless::String<MAX_LABEL>>,
    /// Addresses announced here and since removed: they get a goodbye.
    pub(super) stale_addresses: heapless::Vec<IpAddr, MAX_ADDRESSES>,
    /// The families (IPv4, IPv6) on which the current names were probed (§8.1): a
    /// family that gains its first address and is not among them is probed first.
    pub(super) probed: [bool; 2],
}

impl Iface {
    pub(super) fn new(id: InterfaceId, phase: Phase) -> Self {
        Self {
            id,
            addresses: heapless::Vec::new(),
            phase,
            outbox: Default::default(),
            unicast: heapless::Deque::new(),
            stale_ptr: None,
            stale_addresses: heapless::Vec::new(),
            probed: [false; 2],
        }
    }

    /// The families this interface has an address of: where multicast goes.
    pub(super) fn families(&self) -> [bool; 2] {
        [
            self.addresses.iter().any(IpAddr::is_ipv4),
            self.addresses.iter().any(IpAddr::is_ipv6),
        ]
    }

    /// Whether anything can be sent here: probing and announcing wait while no family
    /// has an address, since nothing would go out (§8.1 asks for probes really sent).
    pub(super) fn can_send(&self) -> bool {
        !self.addresses.is_empty()
    }

    /// When the probing or announcing here is next due, if it can go on.
    pub(super) fn next_step(&self) -> Option<Instant> {
        self.phase.next().filter(|_| self.can_send())
    }

    /// Stops what was scheduled and starts probing, first probe at `at`.
    pub(super) fn start_probing(&mut self, at: Instant) {
        if self.phase == Phase::Leaving {
            return;
        }
        self.phase = Phase::Probing { sent: 0, next: at };
        self.probed = [false; 2];
        for outbox in &mut self.outbox {
            outbox.clear_pending();
        }
    }

    /// Announces again (§8.4), unless the names are still being probed here.
    pub(super) fn reannounce(&mut self, now: Instant) {
        if self.phase.answers() {
            self.phase = Phase::Announcing { sent: 0, next: now };
        }
    }

    /// Queues the stale goodbye on the families it concerns.
    pub(super) fn mark_stale(&mut self) {
        let [v4, v6] = self.families();
        let stale_v4 = self.stale_addresses.iter().any(IpAddr::is_ipv4);
        let stale_v6 = self.stale_addresses.iter().any(IpAddr::is_ipv6);
        self.outbox[0].stale |= v4 || stale_v4;
        self.outbox[1].stale |= v6 || stale_v6;
    }
}

/// The index of a family in [`Iface::outbox`].
pub(super) fn family_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// The family of an outbox index.
pub(super) fn family_of(index: usize) -> Family {
    if index == 0 {
        Family::V4
    } else {
        Family::V6
    }
}
