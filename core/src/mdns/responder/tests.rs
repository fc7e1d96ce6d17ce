//! Virtual-clock tests of the responder: every datagram it sends is parsed back with
//! [`Packet::parse`] and checked.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::catalog::Category;
use crate::mdns::wire::{rtype, Header, Name, RecordData, RecordOut, Writer, CLASS_IN};
use crate::mdns::TxtEntry;

const IFACE: InterfaceId = InterfaceId(1);
const V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const INSTANCE: &str = "Virtual Light._hap._tcp.local.";
const HOST: &str = "123456789ABC.local.";

fn advertisement(paired: bool, config_number: u16) -> Advertisement<'static> {
    Advertisement {
        name: "Virtual Light",
        port: 51826,
        model: "VirtualLight",
        device_id: "12:34:56:78:9A:BC".parse().unwrap(),
        config_number,
        category: Category::LIGHTBULB,
        paired,
        setup_id: Some("7OSX".parse().unwrap()),
    }
}

fn querier() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), MDNS_PORT)
}

/// A datagram the responder sent, and when.
#[derive(Debug, Clone)]
struct Sent {
    at: u64,
    iface: InterfaceId,
    destination: Destination,
    bytes: Vec<u8>,
}

impl Sent {
    fn packet(&self) -> Packet<'_> {
        Packet::parse(&self.bytes).expect("the responder sends valid DNS")
    }

    /// (name, type, cache-flush, TTL) of each answer.
    fn answers(&self) -> Vec<(String, u16, bool, u32)> {
        self.packet().answers().map(|r| summary(&r)).collect()
    }

    fn additionals(&self) -> Vec<(String, u16, bool, u32)> {
        self.packet().additionals().map(|r| summary(&r)).collect()
    }

    fn is_probe(&self) -> bool {
        let packet = self.packet();
        !packet.header().is_response() && packet.header().authorities > 0
    }

    fn is_goodbye(&self) -> bool {
        let packet = self.packet();
        packet.header().is_response() && packet.answers().all(|r| r.ttl == 0)
    }
}

fn summary(record: &crate::mdns::wire::Record<'_>) -> (String, u16, bool, u32) {
    (
        record.name.to_string(),
        record.rtype,
        record.cache_flush,
        record.ttl,
    )
}

struct Harness {
    responder: MdnsResponder,
    rng: ChaCha8Rng,
    now: u64,
    sent: Vec<Sent>,
    events: Vec<MdnsEvent>,
}

impl Harness {
    /// A responder on one interface with an IPv4 and an IPv6 address, at time 0.
    fn new() -> Self {
        Self::with_addresses(&[IpAddr::V4(V4), IpAddr::V6(V6)])
    }

    fn with_addresses(addresses: &[IpAddr]) -> Self {
        let responder = MdnsResponder::new("123456789ABC", &advertisement(false, 1)).unwrap();
        let mut harness = Self {
            responder,
            rng: ChaCha8Rng::seed_from_u64(21),
            now: 0,
            sent: Vec::new(),
            events: Vec::new(),
        };
        let now = harness.instant();
        harness
            .responder
            .set_interface(IFACE, addresses, now, &mut harness.rng)
            .unwrap();
        harness
    }

    /// Probed and announced: past the last announcement, with the record cleared.
    fn established() -> Self {
        let mut harness = Self::new();
        harness.run_until(5_000);
        harness.sent.clear();
        harness.events.clear();
        harness
    }

    fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    /// Sends whatever is ready now.
    fn drain(&mut self) {
        let mut buf = [0u8; MIN_TRANSMIT_BUFFER];
        let now = self.instant();
        for _ in 0..100 {
            let Some(transmit) = self.responder.poll_transmit(now, &mut buf) else {
                break;
            };
            assert!(transmit.payload.len() <= MIN_TRANSMIT_BUFFER);
            self.sent.push(Sent {
                at: self.now,
                iface: transmit.iface,
                destination: transmit.destination,
                bytes: transmit.payload.to_vec(),
            });
        }
        while let Some(event) = self.responder.poll_event() {
            self.events.push(event);
        }
    }

    /// Runs the loop on the virtual clock up to `until` ms.
    fn run_until(&mut self, until: u64) {
        self.drain();
        for _ in 0..10_000 {
            match self.responder.poll_timeout() {
                Some(at) if at.as_millis() <= until => {
                    self.now = self.now.max(at.as_millis());
                    let now = self.instant();
                    self.responder.handle_timeout(now, &mut self.rng);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
        self.drain();
    }

    /// Delivers a datagram from `source` at the current time and sends what is ready.
    fn receive(&mut self, source: SocketAddr, bytes: &[u8]) {
        let now = self.instant();
        self.responder
            .handle_datagram(now, IFACE, source, bytes, &mut self.rng)
            .unwrap();
        self.drain();
    }

    fn take_sent(&mut self) -> Vec<Sent> {
        core::mem::take(&mut self.sent)
    }
}

/// A query with `questions` (name, type, QU) and known answers.
fn query(id: u16, questions: &[(&str, u16, bool)], known: &[RecordOut<'_>]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut writer = Writer::new(&mut buf, id, Header::QUERY).unwrap();
    for (name, qtype, qu) in questions {
        writer
            .question(Name::new(name).unwrap(), *qtype, CLASS_IN, *qu)
            .unwrap();
    }
    for record in known {
        writer.answer(record).unwrap();
    }
    writer.finish().to_vec()
}

/// A response holding `records` in the answer section.
fn response(records: &[RecordOut<'_>]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut writer = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
    for record in records {
        writer.answer(record).unwrap();
    }
    writer.finish().to_vec()
}

fn instance_name() -> Name<'static> {
    Name::with_instance("Virtual Light", "_hap._tcp.local").unwrap()
}

fn ptr_record(ttl: u32) -> RecordOut<'static> {
    RecordOut::new(
        Name::new("_hap._tcp.local").unwrap(),
        false,
        ttl,
        RecordData::Ptr(instance_name().into()),
    )
}

/// The other host's SRV for our instance name (the recorder's conflict).
fn other_srv(port: u16) -> RecordOut<'static> {
    RecordOut::new(
        instance_name(),
        true,
        120,
        RecordData::Srv {
            priority: 0,
            weight: 0,
            port,
            target: Name::new("OtherLight.local").unwrap().into(),
        },
    )
}

fn types(records: &[(String, u16, bool, u32)]) -> Vec<u16> {
    let mut types: Vec<u16> = records.iter().map(|r| r.1).collect();
    types.sort_unstable();
    types
}

#[test]
fn probes_three_times_250ms_apart_after_random_delay_0_250() {
    let mut h = Harness::new();
    h.run_until(1_000);
    let probes: Vec<&Sent> = h.sent.iter().filter(|s| s.is_probe()).collect();
    // One per family per round.
    assert_eq!(probes.len(), 6);
    let first = probes[0].at;
    assert!(first <= 250, "first probe at {first}");
    let rounds: Vec<u64> = probes.iter().step_by(2).map(|s| s.at).collect();
    assert_eq!(rounds, [first, first + 250, first + 500]);
    for probe in &probes {
        let packet = probe.packet();
        let questions: Vec<_> = packet.questions().collect();
        assert_eq!(questions.len(), 2);
        // QM: a defender's reply must reach every socket on a shared port (§15.1).
        assert!(questions
            .iter()
            .all(|q| q.qtype == rtype::ANY && !q.unicast_response));
        assert_eq!(questions[0].name.to_string(), INSTANCE);
        assert_eq!(questions[1].name.to_string(), HOST);
        let proposed: Vec<_> = packet.authorities().map(|r| summary(&r)).collect();
        assert_eq!(
            types(&proposed),
            [rtype::A, rtype::TXT, rtype::AAAA, rtype::SRV]
        );
        assert!(
            proposed.iter().all(|r| !r.2),
            "no cache-flush bit in probes"
        );
    }
    assert_eq!(probes[0].destination, Destination::Multicast(Family::V4));
    assert_eq!(probes[1].destination, Destination::Multicast(Family::V6));
    assert_eq!(h.events[0], MdnsEvent::Probing { iface: IFACE });
}

#[test]
fn announces_three_times_1s_then_2s_with_flush_bits_and_ttls_120_4500() {
    let mut h = Harness::new();
    h.run_until(6_000);
    let last_probe = h
        .sent
        .iter()
        .filter(|s| s.is_probe())
        .map(|s| s.at)
        .max()
        .unwrap();
    let announcements: Vec<&Sent> = h
        .sent
        .iter()
        .filter(|s| s.packet().header().is_response())
        .collect();
    assert_eq!(announcements.len(), 6, "3 rounds on 2 families");
    let first = announcements[0].at;
    assert_eq!(first, last_probe + 250);
    let times: Vec<u64> = announcements.iter().map(|s| s.at).collect();
    assert_eq!(
        times,
        [
            first,
            first,
            first + 1_000,
            first + 1_000,
            first + 3_000,
            first + 3_000
        ]
    );
    for announcement in &announcements {
        let packet = announcement.packet();
        assert_eq!(packet.header().flags, Header::RESPONSE);
        assert_eq!(packet.header().id, 0);
        let answers = announcement.answers();
        let expected = [
            ("_hap._tcp.local.", rtype::PTR, false, 4500),
            (INSTANCE, rtype::SRV, true, 120),
            (INSTANCE, rtype::TXT, true, 4500),
            (HOST, rtype::A, true, 120),
            (HOST, rtype::AAAA, true, 120),
            ("_services._dns-sd._udp.local.", rtype::PTR, false, 4500),
        ];
        assert_eq!(answers.len(), expected.len());
        for (got, want) in answers.iter().zip(expected) {
            assert_eq!((got.0.as_str(), got.1, got.2, got.3), want);
        }
    }
    assert!(h.events.contains(&MdnsEvent::Announced { iface: IFACE }));
    // Then silence.
    h.sent.clear();
    h.run_until(60_000);
    assert!(h.sent.is_empty());
}

#[test]
fn no_answers_before_probing_completes() {
    let mut h = Harness::new();
    h.run_until(100);
    h.sent.clear();
    h.receive(
        querier(),
        &query(0, &[("_hap._tcp.local", rtype::PTR, false)], &[]),
    );
    h.run_until(200);
    assert!(h.sent.iter().all(|s| !s.packet().header().is_response()));
}

#[test]
fn answers_ptr_after_20_to_120ms_with_srv_txt_a_aaaa_additionals() {
    let mut h = Harness::established();
    let asked = h.now;
    h.receive(
        querier(),
        &query(0, &[("_hap._tcp.local", rtype::PTR, false)], &[]),
    );
    assert!(h.sent.is_empty(), "shared answers wait");
    h.run_until(asked + 200);
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let delay = sent[0].at - asked;
    assert!((20..=120).contains(&delay), "delay {delay}");
    assert_eq!(sent[0].destination, Destination::Multicast(Family::V4));
    assert_eq!(types(&sent[0].answers()), [rtype::PTR]);
    assert_eq!(
        types(&sent[0].additionals()),
        [rtype::A, rtype::TXT, rtype::AAAA, rtype::SRV]
    );
}

#[test]
fn answers_srv_immediately() {
    let mut h = Harness::established();
    h.receive(
        querier(),
        &query(
            0,
            &[("Virtual Light._hap._tcp.local", rtype::SRV, false)],
            &[],
        ),
    );
    assert_eq!(h.sent.len(), 1, "unique answers go at once");
    assert_eq!(types(&h.sent[0].answers()), [rtype::SRV]);
    assert_eq!(types(&h.sent[0].additionals()), [rtype::A, rtype::AAAA]);
}

#[test]
fn known_answer_with_half_ttl_suppresses() {
    let mut h = Harness::established();
    h.receive(
        querier(),
        &query(
            0,
            &[("_hap._tcp.local", rtype::PTR, false)],
            &[ptr_record(2250)],
        ),
    );
    h.run_until(h.now + 500);
    assert!(h.sent.is_empty());
}

#[test]
fn known_answer_below_half_ttl_does_not() {
    let mut h = Harness::established();
    h.receive(
        querier(),
        &query(
            0,
            &[("_hap._tcp.local", rtype::PTR, false)],
            &[ptr_record(2249)],
        ),
    );
    h.run_until(h.now + 500);
    assert_eq!(h.sent.len(), 1);
    assert_eq!(types(&h.sent[0].answers()), [rtype::PTR]);
}

#[test]
fn qu_question_gets_unicast_reply_unless_not_multicast_within_quarter_ttl() {
    let mut h = Harness::established();
    // The PTR was announced within a quarter of 4500 s: unicast, at once, with the
    // cache-flush bit on unique records (§10.2 leaves it out of legacy replies only).
    h.receive(
        querier(),
        &query(0, &[("_hap._tcp.local", rtype::PTR, true)], &[]),
    );
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].destination, Destination::Unicast(querier()));
    assert_eq!(types(&h.sent[0].answers()), [rtype::PTR]);
    assert!(!h.sent[0].answers()[0].2, "the PTR is shared");
    let additionals = h.sent[0].additionals();
    assert_eq!(additionals.len(), 4);
    assert!(additionals.iter().all(|r| r.2), "{additionals:?}");
    // The SRV (TTL 120) was last multicast more than 30 s ago: multicast instead.
    h.sent.clear();
    h.run_until(h.now + 40_000);
    h.receive(
        querier(),
        &query(
            0,
            &[("Virtual Light._hap._tcp.local", rtype::SRV, true)],
            &[],
        ),
    );
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].destination, Destination::Multicast(Family::V4));
    assert!(h.sent[0].answers()[0].2, "multicast keeps the flush bit");
}

#[test]
fn legacy_unicast_echoes_id_and_question_caps_ttl_10_no_flush_bit() {
    let mut h = Harness::established();
    let legacy = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000);
    h.receive(
        legacy,
        &query(0x1234, &[("_hap._tcp.local", rtype::PTR, false)], &[]),
    );
    assert_eq!(h.sent.len(), 1);
    let sent = &h.sent[0];
    assert_eq!(sent.destination, Destination::Unicast(legacy));
    let packet = sent.packet();
    assert_eq!(packet.header().id, 0x1234);
    assert_eq!(packet.header().flags, Header::RESPONSE);
    let question = packet.questions().next().unwrap();
    assert_eq!(question.name.to_string(), "_hap._tcp.local.");
    assert_eq!(question.qtype, rtype::PTR);
    assert!(packet.records().all(|r| r.ttl <= 10 && !r.cache_flush));
    assert!(sent.bytes.len() <= 512);
}

#[test]
fn aaaa_query_on_v4_only_iface_gets_nsec() {
    let mut h = Harness::with_addresses(&[IpAddr::V4(V4)]);
    h.run_until(5_000);
    h.sent.clear();
    h.receive(
        querier(),
        &query(0, &[("123456789ABC.local", rtype::AAAA, false)], &[]),
    );
    assert_eq!(h.sent.len(), 1);
    let packet = h.sent[0].packet();
    let nsec = packet.answers().next().unwrap();
    assert_eq!(nsec.rtype, rtype::NSEC);
    assert!(nsec.cache_flush);
    let crate::mdns::wire::RData::Nsec { next, types } = nsec.rdata else {
        panic!("not NSEC");
    };
    assert_eq!(next.to_string(), HOST);
    assert_eq!(types.types().collect::<Vec<_>>(), [rtype::A]);
    // The instance name has no A: NSEC listing TXT and SRV.
    h.sent.clear();
    h.receive(
        querier(),
        &query(
            0,
            &[("Virtual Light._hap._tcp.local", rtype::A, false)],
            &[],
        ),
    );
    let packet = h.sent[0].packet();
    let nsec = packet.answers().next().unwrap();
    let crate::mdns::wire::RData::Nsec { types, .. } = nsec.rdata else {
        panic!("not NSEC");
    };
    assert_eq!(types.types().collect::<Vec<_>>(), [rtype::TXT, rtype::SRV]);
}

#[test]
fn answers_only_with_addresses_of_the_asking_iface() {
    let mut h = Harness::new();
    let other = InterfaceId(2);
    let other_v4 = Ipv4Addr::new(10, 0, 0, 2);
    let now = h.instant();
    h.responder
        .set_interface(other, &[IpAddr::V4(other_v4)], now, &mut h.rng)
        .unwrap();
    h.run_until(5_000);
    h.sent.clear();
    for (iface, expected) in [(IFACE, V4), (other, other_v4)] {
        let now = h.instant();
        let bytes = query(0, &[("123456789ABC.local", rtype::A, false)], &[]);
        h.responder
            .handle_datagram(now, iface, querier(), &bytes, &mut h.rng)
            .unwrap();
        h.drain();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].iface, iface);
        let packet = sent[0].packet();
        let a: Vec<_> = packet.records().filter(|r| r.rtype == rtype::A).collect();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rdata, crate::mdns::wire::RData::A(expected));
    }
}

#[test]
fn rate_limit_one_second_per_record_per_iface() {
    let mut h = Harness::established();
    let bytes = query(
        0,
        &[("Virtual Light._hap._tcp.local", rtype::SRV, false)],
        &[],
    );
    h.receive(querier(), &bytes);
    h.run_until(h.now + 500);
    h.receive(querier(), &bytes);
    assert_eq!(
        h.sent.len(),
        1,
        "the second query within 1 s is not answered"
    );
    h.run_until(h.now + 600);
    h.receive(querier(), &bytes);
    assert_eq!(h.sent.len(), 2);
}

/// Runs until the first probe and returns the harness.
fn first_probe() -> Harness {
    let mut h = Harness::new();
    while !h.sent.iter().any(Sent::is_probe) {
        let next = h.now + 10;
        h.run_until(next);
    }
    h.sent.clear();
    h
}

#[test]
fn conflicting_response_during_probing_renames_to_name_2() {
    let mut h = first_probe();
    h.receive(querier(), &response(&[other_srv(51827)]));
    assert!(h.events.contains(&MdnsEvent::Conflict {
        kind: NameKind::Instance,
        iface: IFACE,
        probing: true
    }));
    assert!(h.events.contains(&MdnsEvent::Renamed {
        kind: NameKind::Instance,
        name: "Virtual Light (2)".try_into().unwrap()
    }));
    assert_eq!(h.responder.instance_name(), "Virtual Light (2)");
    h.run_until(h.now + 5_000);
    let probes: Vec<&Sent> = h.sent.iter().filter(|s| s.is_probe()).collect();
    assert_eq!(probes.len(), 6, "three new probe rounds");
    let question = probes[0].packet().questions().next().unwrap();
    assert_eq!(
        question.name.to_string(),
        "Virtual Light (2)._hap._tcp.local."
    );
    let announced = h
        .sent
        .iter()
        .find(|s| s.packet().header().is_response())
        .unwrap();
    assert!(announced
        .answers()
        .iter()
        .any(|r| r.0 == "Virtual Light (2)._hap._tcp.local." && r.1 == rtype::SRV));
}

#[test]
fn response_from_other_port_is_no_conflict() {
    let mut h = first_probe();
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000);
    h.receive(source, &response(&[other_srv(51827)]));
    assert_eq!(h.responder.instance_name(), "Virtual Light");
    assert!(h
        .events
        .iter()
        .all(|e| !matches!(e, MdnsEvent::Conflict { .. })));
}

#[test]
fn a_goodbye_for_another_address_is_no_conflict() {
    // Our own goodbye for an address just removed comes back over multicast loopback
    // after the interface already carries the new one: no rename.
    for mut h in [first_probe(), Harness::established()] {
        let host = Name::new("123456789ABC.local").unwrap();
        let gone = RecordOut::new(host, true, 0, RecordData::A(Ipv4Addr::new(192, 0, 2, 99)));
        let mut gone_srv = other_srv(51827);
        gone_srv.ttl = 0;
        h.receive(querier(), &response(&[gone, gone_srv]));
        assert_eq!(h.responder.host_name(), "123456789ABC");
        assert_eq!(h.responder.instance_name(), "Virtual Light");
        assert!(h
            .events
            .iter()
            .all(|e| !matches!(e, MdnsEvent::Conflict { .. } | MdnsEvent::Renamed { .. })));
    }
}

#[test]
fn host_conflict_renames_host_2() {
    let mut h = first_probe();
    let host = Name::new("123456789ABC.local").unwrap();
    let other = RecordOut::new(host, true, 120, RecordData::A(Ipv4Addr::new(192, 0, 2, 99)));
    h.receive(querier(), &response(&[other]));
    assert_eq!(h.responder.host_name(), "123456789ABC-2");
    assert!(h.events.contains(&MdnsEvent::Renamed {
        kind: NameKind::Host,
        name: "123456789ABC-2".try_into().unwrap()
    }));
    h.run_until(h.now + 5_000);
    let srv = h
        .sent
        .iter()
        .filter(|s| s.packet().header().is_response())
        .flat_map(|s| {
            s.packet()
                .answers()
                .filter(|r| r.rtype == rtype::SRV)
                .map(|r| r.rdata_bytes().collect::<Vec<u8>>())
                .collect::<Vec<_>>()
        })
        .next()
        .unwrap();
    // The SRV target follows: port, then 123456789ABC-2.local.
    assert_eq!(&srv[6..22], b"\x0e123456789ABC-2\x05");
}

/// A probe from another host for our instance name, proposing an SRV with `port`
/// and a TXT `txt`.
fn other_probe(port: u16, txt: &'static [TxtEntry]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut writer = Writer::new(&mut buf, 0, Header::QUERY).unwrap();
    writer
        .question(instance_name(), rtype::ANY, CLASS_IN, true)
        .unwrap();
    let mut srv = other_srv(port);
    srv.cache_flush = false;
    writer.authority(&srv).unwrap();
    writer
        .authority(&RecordOut::new(
            instance_name(),
            false,
            4500,
            RecordData::TxtEntries(txt),
        ))
        .unwrap();
    writer.finish().to_vec()
}

fn txt_entries(key: &'static str, value: &str) -> &'static [TxtEntry] {
    std::boxed::Box::leak(std::boxed::Box::new([TxtEntry {
        key,
        value: value.try_into().unwrap(),
    }]))
}

#[test]
fn simultaneous_probe_later_data_wins_and_loser_waits_1s_and_reprobes() {
    let mut h = first_probe();
    let at = h.now;
    // SRV port 51827 > 51826: their data is later, we lose.
    h.receive(
        querier(),
        &other_probe(51827, txt_entries("md", "OtherLight")),
    );
    h.run_until(at + 990);
    assert!(h.sent.iter().all(|s| !s.is_probe()), "the loser waits 1 s");
    h.run_until(at + 1_000);
    assert!(h.sent.iter().any(|s| s.is_probe() && s.at == at + 1_000));
    assert_eq!(h.responder.instance_name(), "Virtual Light", "no rename");
}

#[test]
fn simultaneous_probe_with_earlier_data_does_not_stop_ours() {
    let mut h = first_probe();
    let at = h.now;
    h.receive(querier(), &other_probe(1, txt_entries("a", "1")));
    h.run_until(at + 600);
    assert_eq!(
        h.sent.iter().filter(|s| s.is_probe()).count(),
        4,
        "probing goes on"
    );
}

#[test]
fn identical_probe_is_no_conflict() {
    let mut h = Harness::new();
    while !h.sent.iter().any(Sent::is_probe) {
        let next = h.now + 10;
        h.run_until(next);
    }
    let mut own = h.sent.iter().find(|s| s.is_probe()).unwrap().bytes.clone();
    // Another host proposing the same records: a different message id, so that it is
    // not taken for our own probe looped back.
    own[..2].copy_from_slice(&0x1234u16.to_be_bytes());
    h.sent.clear();
    let at = h.now;
    h.receive(querier(), &own);
    h.run_until(at + 600);
    assert_eq!(h.sent.iter().filter(|s| s.is_probe()).count(), 4);
}

#[test]
fn conflict_after_announce_reprobes_then_renames() {
    let mut h = Harness::established();
    h.receive(querier(), &response(&[other_srv(51827)]));
    assert!(h.events.contains(&MdnsEvent::Conflict {
        kind: NameKind::Instance,
        iface: IFACE,
        probing: false
    }));
    assert_eq!(
        h.responder.instance_name(),
        "Virtual Light",
        "re-probe first"
    );
    h.run_until(h.now + 300);
    let probe = h.sent.iter().find(|s| s.is_probe()).expect("probing again");
    let question = probe.packet().questions().next().unwrap();
    assert_eq!(question.name.to_string(), INSTANCE);
    // The other host answers our probe: now we rename.
    h.receive(querier(), &response(&[other_srv(51827)]));
    assert_eq!(h.responder.instance_name(), "Virtual Light (2)");
}

#[test]
fn same_rdata_lower_ttl_triggers_reannounce() {
    let mut h = Harness::established();
    h.run_until(h.now + 2_000);
    let mut stale = ptr_record(100);
    stale.ttl = 100;
    h.receive(querier(), &response(&[stale]));
    assert_eq!(h.sent.len(), 1);
    assert_eq!(types(&h.sent[0].answers()), [rtype::PTR]);
    assert_eq!(h.sent[0].answers()[0].3, 4500);
}

#[test]
fn fifteen_conflicts_in_10s_slow_probing_to_5s() {
    let mut h = first_probe();
    for _ in 0..15 {
        // Claim whatever name we now probe.
        let name = String::from(h.responder.instance_name());
        let name = Name::with_instance(&name, "_hap._tcp.local").unwrap();
        let srv = RecordOut::new(
            name,
            true,
            120,
            RecordData::Srv {
                priority: 0,
                weight: 0,
                port: 1,
                target: Name::new("Other.local").unwrap().into(),
            },
        );
        let bytes = response(&[srv]);
        h.receive(querier(), &bytes);
        h.run_until(h.now + 10);
    }
    assert_eq!(h.responder.instance_name(), "Virtual Light (16)");
    let at = h.now;
    h.sent.clear();
    h.run_until(at + 4_900);
    assert!(h.sent.iter().all(|s| !s.is_probe()), "5 s between attempts");
    h.run_until(at + 5_000);
    assert!(h.sent.iter().any(Sent::is_probe));
}

#[test]
fn txt_change_reannounces_without_probing() {
    let mut h = Harness::established();
    let now = h.instant();
    h.responder
        .set_advertisement(&advertisement(true, 2), now)
        .unwrap();
    h.run_until(h.now + 4_000);
    assert!(h.sent.iter().all(|s| !s.is_probe()));
    assert_eq!(h.sent.len(), 6, "3 announcements on 2 families");
    let packet = h.sent[0].packet();
    let txt = packet.answers().find(|r| r.rtype == rtype::TXT).unwrap();
    let crate::mdns::wire::RData::Txt(txt) = txt.rdata else {
        panic!()
    };
    assert_eq!(txt.get(b"c#"), Some(&b"2"[..]));
    assert_eq!(txt.get(b"sf"), Some(&b"0"[..]));
}

#[test]
fn instance_name_change_says_goodbye_to_old_ptr_and_probes_new() {
    let mut h = Harness::established();
    let now = h.instant();
    let mut renamed = advertisement(false, 1);
    renamed.name = "Desk Lamp";
    h.responder.set_advertisement(&renamed, now).unwrap();
    h.run_until(h.now + 5_000);
    let goodbye = h.sent.iter().find(|s| s.is_goodbye()).unwrap();
    assert_eq!(goodbye.answers()[0].0, "_hap._tcp.local.");
    assert!(h.sent.iter().any(|s| s.is_probe()));
    assert_eq!(h.responder.instance_name(), "Desk Lamp");
}

#[test]
fn same_name_keeps_a_renamed_name() {
    let mut h = first_probe();
    h.receive(querier(), &response(&[other_srv(51827)]));
    let now = h.instant();
    h.responder
        .set_advertisement(&advertisement(true, 2), now)
        .unwrap();
    assert_eq!(h.responder.instance_name(), "Virtual Light (2)");
}

#[test]
fn address_added_announces_on_that_iface_only() {
    let mut h = Harness::new();
    let other = InterfaceId(2);
    let now = h.instant();
    h.responder
        .set_interface(
            other,
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))],
            now,
            &mut h.rng,
        )
        .unwrap();
    h.run_until(5_000);
    h.sent.clear();
    h.events.clear();
    let added = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 4));
    let now = h.instant();
    h.responder
        .set_interface(
            IFACE,
            &[IpAddr::V4(V4), IpAddr::V6(V6), added],
            now,
            &mut h.rng,
        )
        .unwrap();
    h.run_until(h.now + 4_000);
    assert_eq!(
        h.events,
        [
            MdnsEvent::AddressesChanged { iface: IFACE },
            MdnsEvent::Announced { iface: IFACE }
        ]
    );
    assert!(h.sent.iter().all(|s| !s.is_probe() && s.iface == IFACE));
    assert_eq!(h.sent.len(), 6);
    assert_eq!(
        h.sent[0]
            .answers()
            .iter()
            .filter(|r| r.1 == rtype::A)
            .count(),
        2
    );
}

#[test]
fn address_removed_sends_goodbye_for_it() {
    let mut h = Harness::established();
    let now = h.instant();
    h.responder
        .set_interface(IFACE, &[IpAddr::V4(V4)], now, &mut h.rng)
        .unwrap();
    h.drain();
    let goodbyes: Vec<&Sent> = h.sent.iter().filter(|s| s.is_goodbye()).collect();
    assert!(!goodbyes.is_empty());
    let packet = goodbyes[0].packet();
    let records: Vec<_> = packet.answers().collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].rdata, crate::mdns::wire::RData::Aaaa(V6));
    assert_eq!(records[0].ttl, 0);
}

#[test]
fn new_interface_probes_there() {
    let mut h = Harness::established();
    let now = h.instant();
    let other = InterfaceId(7);
    h.responder
        .set_interface(
            other,
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))],
            now,
            &mut h.rng,
        )
        .unwrap();
    h.run_until(h.now + 1_000);
    assert!(h.sent.iter().all(|s| s.iface == other));
    assert_eq!(h.sent.iter().filter(|s| s.is_probe()).count(), 3);
}

#[test]
fn goodbye_sends_ttl0_for_every_record_then_nothing() {
    let mut h = Harness::established();
    let now = h.instant();
    h.responder.goodbye(now);
    h.drain();
    assert_eq!(h.sent.len(), 2, "one per family at once");
    h.run_until(h.now + 1_000);
    assert_eq!(h.sent.len(), 4, "and again 250 ms later");
    assert_eq!(h.sent[2].at - h.sent[0].at, 250);
    for sent in &h.sent {
        assert!(sent.is_goodbye());
        assert_eq!(sent.answers().len(), 6);
    }
    assert!(h.responder.is_withdrawn());
    assert!(h.events.contains(&MdnsEvent::Withdrawn));
    h.sent.clear();
    h.receive(
        querier(),
        &query(0, &[("_hap._tcp.local", rtype::PTR, false)], &[]),
    );
    h.run_until(h.now + 10_000);
    assert!(h.sent.is_empty());
    assert_eq!(h.responder.poll_timeout(), None);
    let now = h.instant();
    assert_eq!(
        h.responder.set_advertisement(&advertisement(true, 1), now),
        Err(MdnsError::Withdrawn)
    );
}

#[test]
fn remove_interface_says_goodbye_there_and_forgets_it() {
    let mut h = Harness::established();
    let now = h.instant();
    h.responder.remove_interface(IFACE, now).unwrap();
    h.drain();
    assert_eq!(h.sent.len(), 2);
    assert!(h.sent.iter().all(Sent::is_goodbye));
    assert_eq!(h.responder.interfaces().count(), 0);
    assert_eq!(
        h.responder.remove_interface(IFACE, now),
        Err(MdnsError::UnknownInterface)
    );
}

#[test]
fn ignores_nonzero_opcode_rcode_and_truncated_packets() {
    let mut h = Harness::established();
    let mut bytes = query(0, &[("_hap._tcp.local", rtype::PTR, false)], &[]);
    let now = h.instant();
    bytes[2] |= 0x08; // opcode 1
    assert!(h
        .responder
        .handle_datagram(now, IFACE, querier(), &bytes, &mut h.rng)
        .is_err());
    bytes[2] &= !0x08;
    bytes[3] |= 0x03; // rcode 3
    assert!(h
        .responder
        .handle_datagram(now, IFACE, querier(), &bytes, &mut h.rng)
        .is_err());
    bytes[3] &= !0x0F;
    let short = &bytes[..bytes.len() - 3];
    assert!(h
        .responder
        .handle_datagram(now, IFACE, querier(), short, &mut h.rng)
        .is_err());
    h.run_until(h.now + 1_000);
    assert!(h.sent.is_empty());
}

#[test]
fn refuses_bad_names_and_small_buffers() {
    let ad = advertisement(false, 1);
    assert_eq!(
        MdnsResponder::new("bad host", &ad).unwrap_err(),
        MdnsError::HostName
    );
    let mut empty = ad;
    empty.name = "";
    assert_eq!(
        MdnsResponder::new("host", &empty).unwrap_err(),
        MdnsError::InstanceName
    );
    let mut h = Harness::new();
    h.run_until(300);
    let now = h.instant();
    assert!(h.responder.poll_transmit(now, &mut [0u8; 512]).is_none());
}

#[test]
fn random_and_mutated_datagrams_never_panic_and_replies_stay_valid() {
    use rand_core::RngCore;
    let mut h = Harness::established();
    let mut fuzz = ChaCha8Rng::seed_from_u64(6762);
    let valid = [
        query(
            0,
            &[("_hap._tcp.local", rtype::PTR, true)],
            &[ptr_record(4500)],
        ),
        other_probe(51827, txt_entries("md", "OtherLight")),
        response(&[other_srv(1), ptr_record(10)]),
    ];
    let sources = [
        querier(),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000),
        SocketAddr::new(IpAddr::V6(V6), MDNS_PORT),
    ];
    for round in 0..3_000 {
        let mut bytes = valid[round % valid.len()].clone();
        if round % 4 == 0 {
            bytes = vec![0u8; (fuzz.next_u32() % 300) as usize];
            fuzz.fill_bytes(&mut bytes);
        } else {
            for _ in 0..1 + fuzz.next_u32() % 4 {
                let at = fuzz.next_u32() as usize % bytes.len();
                bytes[at] = fuzz.next_u32() as u8;
            }
        }
        let now = h.instant();
        let source = sources[round % sources.len()];
        let _ = h
            .responder
            .handle_datagram(now, IFACE, source, &bytes, &mut h.rng);
        h.run_until(h.now + 300);
    }
    // Every datagram sent parses (Sent::packet) and fits.
    assert!(h
        .sent
        .iter()
        .all(|s| s.packet().header().is_response() || s.is_probe()));
}

#[test]
fn truncated_query_waits_400_to_500ms_for_its_known_answers() {
    let mut h = Harness::established();
    let asked = h.now;
    let mut bytes = query(0, &[("_hap._tcp.local", rtype::PTR, false)], &[]);
    bytes[2] |= (Header::TC >> 8) as u8;
    h.receive(querier(), &bytes);
    h.run_until(asked + 399);
    assert!(h.sent.is_empty());
    h.run_until(asked + 500);
    assert_eq!(h.sent.len(), 1);
    assert!((400..=500).contains(&(h.sent[0].at - asked)));

    // The rest of the known answers, in a second packet, cancel the answer (§7.2).
    h.run_until(asked + 2_000);
    h.sent.clear();
    h.receive(querier(), &bytes);
    h.run_until(h.now + 100);
    h.receive(querier(), &query(0, &[], &[ptr_record(4500)]));
    h.run_until(h.now + 1_000);
    assert!(h.sent.is_empty());
}

/// Whether any event says another host claims our names, or that we renamed.
fn conflicted(events: &[MdnsEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, MdnsEvent::Conflict { .. } | MdnsEvent::Renamed { .. }))
}

#[test]
fn our_own_announcement_looped_back_after_a_txt_change_is_no_conflict() {
    let mut h = Harness::new();
    // The last announcement went out at 3.75 to 4 s, less than 2 s before 5 s.
    h.run_until(5_000);
    let old = h
        .sent
        .iter()
        .rev()
        .find(|s| s.packet().header().is_response())
        .unwrap()
        .clone();
    h.sent.clear();
    h.events.clear();
    // Paired: sf 1 -> 0; the loopback then brings back the sf=1 announcement.
    let now = h.instant();
    h.responder
        .set_advertisement(&advertisement(true, 1), now)
        .unwrap();
    h.receive(querier(), &old.bytes);
    h.run_until(h.now + 500);
    assert!(!conflicted(&h.events), "{:?}", h.events);
    assert!(h.sent.iter().all(|s| !s.is_probe()), "no re-probe");
    assert_eq!(h.responder.instance_name(), "Virtual Light");

    // Another host's datagram with our old TXT record is a conflict all the same.
    let other = response(&[RecordOut::new(
        instance_name(),
        true,
        4500,
        RecordData::TxtEntries(txt_entries("sf", "1")),
    )]);
    h.receive(querier(), &other);
    assert!(h.events.contains(&MdnsEvent::Conflict {
        kind: NameKind::Instance,
        iface: IFACE,
        probing: false
    }));
}

#[test]
fn our_own_datagram_is_ours_for_2s_only() {
    let mut h = Harness::new();
    h.run_until(5_000);
    let old = h
        .sent
        .iter()
        .rev()
        .find(|s| s.packet().header().is_response())
        .unwrap()
        .clone();
    let now = h.instant();
    h.responder
        .set_advertisement(&advertisement(true, 1), now)
        .unwrap();
    h.run_until(old.at + 2_000);
    h.events.clear();
    // Arriving later than loopback could bring it, it is another host's.
    h.receive(querier(), &old.bytes);
    assert!(conflicted(&h.events), "{:?}", h.events);
}

#[test]
fn low_ttl_refreshes_are_rate_limited_to_one_a_second() {
    let mut h = Harness::established();
    h.run_until(h.now + 2_000);
    let stale = response(&[ptr_record(100)]);
    let start = h.now;
    for step in 0..10 {
        h.now = start + step * 100;
        h.receive(querier(), &stale);
    }
    assert_eq!(h.sent.len(), 1, "one refresh within the second");
    h.now = start + 1_000;
    h.receive(querier(), &stale);
    assert_eq!(h.sent.len(), 2, "and the next a second later");
}

#[test]
fn an_interface_added_back_before_its_goodbye_says_goodbye_to_the_old_addresses() {
    let mut h = Harness::established();
    let now = h.instant();
    h.responder.remove_interface(IFACE, now).unwrap();
    let new_v4 = Ipv4Addr::new(192, 0, 2, 50);
    h.responder
        .set_interface(IFACE, &[IpAddr::V4(new_v4)], now, &mut h.rng)
        .unwrap();
    h.drain();
    let goodbyes: Vec<&Sent> = h.sent.iter().filter(|s| s.is_goodbye()).collect();
    assert!(!goodbyes.is_empty());
    let mut gone = Vec::new();
    for goodbye in &goodbyes {
        for record in goodbye.packet().answers() {
            assert_ne!(record.rdata, crate::mdns::wire::RData::A(new_v4));
            gone.push(record.rdata);
        }
    }
    assert!(gone.contains(&crate::mdns::wire::RData::A(V4)), "{gone:?}");
    assert!(
        gone.contains(&crate::mdns::wire::RData::Aaaa(V6)),
        "{gone:?}"
    );
    // Then the interface is probed and announced with its new address.
    h.run_until(h.now + 5_000);
    assert_eq!(h.sent.iter().filter(|s| s.is_probe()).count(), 3);
    assert!(h
        .sent
        .iter()
        .any(|s| s.answers().iter().any(|r| r.1 == rtype::A && r.3 == 120)));
}

#[test]
fn an_interface_without_addresses_waits_and_probes_once_it_has_one() {
    let mut h = Harness::with_addresses(&[]);
    h.run_until(3_000);
    assert!(h.sent.is_empty());
    assert!(h.events.is_empty(), "no probing reported: {:?}", h.events);
    assert_eq!(h.responder.poll_timeout(), None, "nothing to wait for");
    let now = h.instant();
    h.responder
        .set_interface(IFACE, &[IpAddr::V4(V4)], now, &mut h.rng)
        .unwrap();
    h.run_until(h.now + 6_000);
    let probes: Vec<&Sent> = h.sent.iter().filter(|s| s.is_probe()).collect();
    assert_eq!(probes.len(), 3, "three probes before claiming the names");
    assert_eq!(probes[1].at - probes[0].at, 250);
    let first_announcement = h
        .sent
        .iter()
        .position(|s| s.packet().header().is_response())
        .unwrap();
    assert_eq!(first_announcement, 3, "announced after the probes");
    assert_eq!(h.sent.len(), 6);
    assert_eq!(
        h.events,
        [
            MdnsEvent::Probing { iface: IFACE },
            MdnsEvent::Announced { iface: IFACE }
        ]
    );
}

#[test]
fn a_family_gaining_its_first_address_is_probed_there() {
    let mut h = Harness::with_addresses(&[IpAddr::V4(V4)]);
    h.run_until(5_000);
    h.sent.clear();
    h.events.clear();
    let now = h.instant();
    h.responder
        .set_interface(IFACE, &[IpAddr::V4(V4), IpAddr::V6(V6)], now, &mut h.rng)
        .unwrap();
    h.run_until(h.now + 5_000);
    let v6 = Destination::Multicast(Family::V6);
    let on_v6: Vec<&Sent> = h.sent.iter().filter(|s| s.destination == v6).collect();
    assert_eq!(on_v6.iter().filter(|s| s.is_probe()).count(), 3);
    assert!(on_v6[..3].iter().all(|s| s.is_probe()), "probes first");
    assert_eq!(on_v6.len(), 6, "then three announcements");
    assert_eq!(h.events[0], MdnsEvent::Probing { iface: IFACE });
}
