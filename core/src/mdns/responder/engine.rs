//! The responder's inner workings: answering queries (RFC 6762 §6, §7), watching
//! responses for conflicts (§8.2, §9), and advancing the schedule.

use core::net::SocketAddr;
use core::time::Duration;

use rand_core::RngCore;

use super::records::{self, ttl_of, OurName, RecordSet, Section, Service, Style, SHARED};
use super::schedule::{
    family_index, Echoed, Phase, UnicastReply, ANNOUNCEMENTS, CONFLICT_WINDOW, GOODBYES,
    GOODBYE_INTERVAL, PROBES, PROBE_DEFENCE_RATE_LIMIT, PROBE_INTERVAL, PROBE_JITTER_MS,
    RATE_LIMIT, SHARED_DELAY_MS, SLOW_PROBE_WAIT, TIEBREAK_LOSS_WAIT, TRUNCATED_DELAY_MS,
};
use super::{
    next_host_name, next_instance_name, push_event, random_between, Family, MdnsEvent,
    MdnsResponder, NameKind, MAX_LABEL, MDNS_PORT,
};
use crate::mdns::wire::{rtype, Header, Packet, Record, Writer, CLASS_IN};
use crate::time::Instant;

/// The class a question may ask for besides IN: any (RFC 1035 §3.2.5).
const CLASS_ANY: u16 = 255;
/// Records of one name compared in a simultaneous-probe tiebreak (§8.2): SRV and TXT,
/// or the addresses, and whatever the other prober proposes, up to this many.
const MAX_TIEBREAK_RECORDS: usize = 8;
/// Big enough for our records of one name: a TXT of at most 9 strings of about 70 bytes,
/// or four addresses.
const TIEBREAK_BUFFER: usize = 1024;

impl MdnsResponder {
    pub(super) fn touch(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    pub(super) fn index(&self, id: super::InterfaceId) -> Option<usize> {
        self.ifaces.iter().position(|iface| iface.id == id)
    }

    /// Drops interfaces that left and whose goodbye went out.
    pub(super) fn forget_left(&mut self) {
        self.ifaces.retain(|iface| {
            iface.phase != Phase::Leaving
                || iface
                    .outbox
                    .iter()
                    .any(|outbox| outbox.goodbye != 0 || outbox.stale)
        });
    }

    /// Advertises `instance` from now on; where the old name was announced, its PTR gets
    /// a goodbye (§8.4: shared records are not replaced by a cache flush).
    pub(super) fn replace_instance(&mut self, instance: heapless::String<MAX_LABEL>) {
        let old = core::mem::replace(&mut self.service.instance, instance);
        for iface in &mut self.ifaces {
            if iface.phase.answers() {
                iface.stale_ptr = Some(old.clone());
                iface.mark_stale();
            }
        }
    }

    /// Probes due, announcements due, goodbye rounds due at `now`.
    pub(super) fn advance(&mut self, now: Instant) {
        if let Some((sent, next)) = self.goodbye {
            if sent < GOODBYES && next <= now {
                for iface in &mut self.ifaces {
                    let goodbye = records::announced(&iface.addresses);
                    let families = iface.families();
                    // Only where the names were announced; a removed interface has
                    // its own goodbye queued already.
                    let announced = iface.phase.answers();
                    for (outbox, present) in iface.outbox.iter_mut().zip(families) {
                        if present && announced {
                            outbox.goodbye |= goodbye;
                        }
                    }
                }
                self.goodbye = Some((sent + 1, now + GOODBYE_INTERVAL));
            }
            return;
        }
        for iface in &mut self.ifaces {
            if !iface.can_send() {
                // Nothing would be sent: probes and announcements wait for an address.
                continue;
            }
            let families = iface.families();
            loop {
                match iface.phase {
                    Phase::Probing { sent, next } if next <= now => {
                        if sent < PROBES {
                            for (outbox, present) in iface.outbox.iter_mut().zip(families) {
                                outbox.probe = present;
                            }
                            if sent == 0 {
                                push_event(
                                    &mut self.events,
                                    MdnsEvent::Probing { iface: iface.id },
                                );
                            }
                            iface.phase = Phase::Probing {
                                sent: sent + 1,
                                next: now + PROBE_INTERVAL,
                            };
                        } else {
                            iface.probed = families;
                            iface.phase = Phase::Announcing { sent: 0, next: now };
                            continue;
                        }
                    }
                    Phase::Announcing { sent, next } if next <= now => {
                        let set = records::announced(&iface.addresses);
                        for (outbox, present) in iface.outbox.iter_mut().zip(families) {
                            if present {
                                outbox.announce = set;
                            }
                        }
                        if sent == 0 {
                            push_event(&mut self.events, MdnsEvent::Announced { iface: iface.id });
                        }
                        let sent = sent + 1;
                        // t, t+1 s, t+3 s: the interval doubles (§8.3).
                        iface.phase = if sent >= ANNOUNCEMENTS {
                            Phase::Established
                        } else {
                            Phase::Announcing {
                                sent,
                                next: now + Duration::from_secs(1 << (sent - 1)),
                            }
                        };
                    }
                    _ => {}
                }
                break;
            }
        }
    }

    /// Marks the responder withdrawn once the last goodbye round is written.
    pub(super) fn check_withdrawn(&mut self) {
        let Some((sent, _)) = self.goodbye else {
            return;
        };
        let pending = self.ifaces.iter().any(|iface| {
            iface
                .outbox
                .iter()
                .any(|outbox| outbox.goodbye != 0 || outbox.stale)
        });
        if sent >= GOODBYES && !pending && !self.withdrawn {
            self.withdrawn = true;
            push_event(&mut self.events, MdnsEvent::Withdrawn);
        }
    }

    /// A query: a probe to tiebreak with (§8.2), questions to answer (§6).
    pub(super) fn handle_query<R: RngCore>(
        &mut self,
        now: Instant,
        index: usize,
        family: Family,
        source: SocketAddr,
        packet: &Packet<'_>,
        rng: &mut R,
    ) {
        let is_probe = packet.header().authorities > 0;
        if is_probe && matches!(self.ifaces[index].phase, Phase::Probing { sent, .. } if sent > 0) {
            self.tiebreak(now, index, packet);
        }
        let service = &self.service;
        let iface = &mut self.ifaces[index];
        if !iface.phase.answers() {
            return;
        }
        let addresses = &iface.addresses;
        let mut answers: RecordSet = 0;
        let mut asked_unicast: RecordSet = 0;
        let mut echoed = heapless::Vec::<Echoed, { super::schedule::MAX_ECHOED }>::new();
        for question in packet.questions() {
            if question.qclass != CLASS_IN && question.qclass != CLASS_ANY {
                continue;
            }
            let Some(which) = service.which(&question.name) else {
                continue;
            };
            let set = Service::answers(which, question.qtype, addresses);
            if set == 0 {
                continue;
            }
            answers |= set;
            if question.unicast_response {
                asked_unicast |= set;
            }
            let _ = echoed.push(Echoed {
                name: which,
                qtype: question.qtype,
                qclass: question.qclass,
            });
        }
        // Known answers (§7.1): the querier has these with at least half our TTL.
        let mut known: RecordSet = 0;
        for record in packet.answers() {
            if let Some(bit) = service.matching(&record, addresses) {
                if record.ttl >= ttl_of(bit) / 2 {
                    known |= bit;
                }
            }
        }
        let family_index = family_index(family);
        let outbox = &mut iface.outbox[family_index];
        // A known answer also cancels a delayed answer to an earlier part of a
        // truncated query (§7.2).
        outbox.answers &= !known;
        if outbox.answers == 0 {
            outbox.additionals = 0;
            outbox.due = None;
        }
        answers &= !known;
        if answers == 0 {
            return;
        }
        let additionals = |set: RecordSet| Service::additionals(set, addresses) & !known;
        if source.port() != MDNS_PORT {
            // Legacy unicast (§6.7): a plain DNS reply to the asker only.
            let reply = UnicastReply {
                destination: source,
                id: packet.header().id,
                legacy: true,
                questions: echoed,
                answers,
                additionals: additionals(answers),
            };
            let _ = iface.unicast.push_back(reply);
            return;
        }
        // QU (§5.4): unicast, unless the record was not multicast here within a
        // quarter of its TTL, when the multicast refreshes every cache.
        let unicast = outbox.multicast_within(asked_unicast & answers, now, |bit| {
            Duration::from_secs(u64::from(ttl_of(bit) / 4))
        });
        let multicast = answers & !unicast;
        let window = if is_probe {
            PROBE_DEFENCE_RATE_LIMIT
        } else {
            RATE_LIMIT
        };
        let multicast = multicast & !outbox.multicast_within(multicast, now, |_| window);
        if multicast != 0 {
            let (low, high) = if packet.header().is_truncated() {
                TRUNCATED_DELAY_MS
            } else if multicast & SHARED != 0 {
                SHARED_DELAY_MS
            } else {
                (0, 0)
            };
            let due = now + Duration::from_millis(random_between(rng, low, high));
            outbox.answers |= multicast;
            outbox.additionals |= additionals(outbox.answers);
            outbox.due = Some(outbox.due.map_or(due, |earlier| earlier.min(due)));
        }
        if unicast != 0 {
            let reply = UnicastReply {
                destination: source,
                id: 0,
                legacy: false,
                questions: heapless::Vec::new(),
                answers: unicast,
                additionals: additionals(unicast),
            };
            let _ = iface.unicast.push_back(reply);
        }
    }

    /// A response: conflicts (§8.1, §9), stale caches (§6.6), duplicate answers (§7.4).
    pub(super) fn handle_response<R: RngCore>(
        &mut self,
        now: Instant,
        index: usize,
        family: Family,
        packet: &Packet<'_>,
        rng: &mut R,
    ) {
        let mut conflicts = [false; 2];
        for record in packet.records() {
            let Some(which) = self.service.which(&record.name) else {
                continue;
            };
            let iface = &self.ifaces[index];
            if let Some(bit) = self.service.matching(&record, &iface.addresses) {
                let answering = iface.phase.answers();
                let outbox = &mut self.ifaces[index].outbox[family_index(family)];
                if record.ttl >= ttl_of(bit) / 2 {
                    // Someone else just gave this answer (§7.4).
                    outbox.answers &= !bit;
                    if outbox.answers == 0 {
                        outbox.additionals = 0;
                        outbox.due = None;
                    }
                } else if record.ttl > 0
                    && answering
                    && outbox.multicast_within(bit, now, |_| RATE_LIMIT) == 0
                {
                    // A cache is about to lose our record: refresh it (§6.6), within the
                    // rate limit (§6), so that a host repeating low TTLs gets one
                    // multicast a second from us, not one per packet.
                    outbox.answers |= bit;
                    outbox.due = Some(now);
                }
                continue;
            }
            // A goodbye (TTL 0, §10.1) claims nothing: it is a record going away, often
            // our own, looped back after one of our addresses was removed.
            if record.ttl == 0 || record.rtype == rtype::NSEC || self.is_ours_elsewhere(&record) {
                continue;
            }
            let probing = matches!(iface.phase, Phase::Probing { .. });
            let kind = match which {
                OurName::Instance if probing || matches!(record.rtype, rtype::SRV | rtype::TXT) => {
                    NameKind::Instance
                }
                OurName::Host if probing || matches!(record.rtype, rtype::A | rtype::AAAA) => {
                    NameKind::Host
                }
                _ => continue,
            };
            conflicts[kind as usize] = true;
        }
        for (kind, conflict) in [NameKind::Instance, NameKind::Host]
            .into_iter()
            .zip(conflicts)
        {
            if conflict {
                self.conflict(now, index, kind, rng);
            }
        }
    }

    /// Whether a record of our host is one of our addresses on another interface.
    fn is_ours_elsewhere(&self, record: &Record<'_>) -> bool {
        self.ifaces
            .iter()
            .any(|iface| self.service.matching(record, &iface.addresses).is_some())
    }

    /// Someone else claims one of our names.
    fn conflict<R: RngCore>(&mut self, now: Instant, index: usize, kind: NameKind, rng: &mut R) {
        let iface = &mut self.ifaces[index];
        let probing = matches!(iface.phase, Phase::Probing { .. });
        push_event(
            &mut self.events,
            MdnsEvent::Conflict {
                kind,
                iface: iface.id,
                probing,
            },
        );
        let jitter = Duration::from_millis(random_between(rng, 0, PROBE_JITTER_MS));
        if !probing {
            // §9: probe the name again here; only a conflict while probing renames.
            iface.start_probing(now + jitter);
            return;
        }
        // §8.1: after 15 conflicts within 10 s, probe only every 5 s.
        if self.conflicts.is_full() {
            self.conflicts.pop_front();
        }
        let _ = self.conflicts.push_back(now);
        let slow = self.conflicts.is_full()
            && self
                .conflicts
                .front()
                .is_some_and(|first| now < *first + CONFLICT_WINDOW);
        let name = match kind {
            NameKind::Instance => {
                let name = next_instance_name(&self.service.instance);
                self.replace_instance(name.clone());
                name
            }
            NameKind::Host => {
                let name = next_host_name(&self.service.host);
                self.service.host = name.clone();
                name
            }
        };
        push_event(&mut self.events, MdnsEvent::Renamed { kind, name });
        let at = now + if slow { SLOW_PROBE_WAIT } else { jitter };
        for iface in &mut self.ifaces {
            iface.start_probing(at);
        }
    }

    /// A probe from another host for a name we are probing too (§8.2): the
    /// lexicographically later record set wins; the loser waits 1 s and probes again.
    fn tiebreak(&mut self, now: Instant, index: usize, packet: &Packet<'_>) {
        let mut lost = false;
        for kind in [OurName::Instance, OurName::Host] {
            let mut theirs = heapless::Vec::<Record<'_>, MAX_TIEBREAK_RECORDS>::new();
            for record in packet.authorities() {
                if self.service.which(&record.name) == Some(kind) {
                    let _ = theirs.push(record);
                }
            }
            if theirs.is_empty() {
                continue;
            }
            let addresses = &self.ifaces[index].addresses;
            let set = match kind {
                OurName::Instance => records::SRV | records::TXT,
                _ => records::addr_bits(addresses),
            };
            let mut buf = [0u8; TIEBREAK_BUFFER];
            let Ok(mut writer) = Writer::new(&mut buf, 0, Header::RESPONSE) else {
                continue;
            };
            self.service
                .write(&mut writer, Section::Answer, set, addresses, Style::PROBE);
            let written = writer.finish();
            let Ok(ours_packet) = Packet::parse(written) else {
                continue;
            };
            let mut ours = heapless::Vec::<Record<'_>, MAX_TIEBREAK_RECORDS>::new();
            for record in ours_packet.answers() {
                let _ = ours.push(record);
            }
            ours.sort_unstable_by(|a, b| a.cmp_for_tiebreak(b));
            theirs.sort_unstable_by(|a, b| a.cmp_for_tiebreak(b));
            let order = ours
                .iter()
                .map(Some)
                .chain(core::iter::repeat(None))
                .zip(theirs.iter().map(Some).chain(core::iter::repeat(None)))
                .take(ours.len().max(theirs.len()))
                .find_map(|pair| match pair {
                    (Some(a), Some(b)) => Some(a.cmp_for_tiebreak(b)).filter(|o| o.is_ne()),
                    (Some(_), None) => Some(core::cmp::Ordering::Greater),
                    (None, Some(_)) => Some(core::cmp::Ordering::Less),
                    (None, None) => None,
                });
            lost |= order == Some(core::cmp::Ordering::Less);
        }
        if lost {
            self.ifaces[index].start_probing(now + TIEBREAK_LOSS_WAIT);
        }
    }
}
