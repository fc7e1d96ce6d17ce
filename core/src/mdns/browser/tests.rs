//! Virtual-clock tests of the browser: every query it sends is parsed back with
//! [`Packet::parse`] and checked, and a scenario with the core's responder.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;
use crate::mdns::responder::MdnsResponder;
use crate::mdns::{Advertisement, TxtEntry};

const IFACE: InterfaceId = InterfaceId(1);
const HOST: &str = "Virtual-Light.local";
const NAME: &str = "Virtual Light";
const V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn responder_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), MDNS_PORT)
}

/// A query the browser sent: when, and its questions and known answers.
#[derive(Debug)]
struct Query {
    at: u64,
    family: Family,
    flags: u16,
    /// (name, type) of each question.
    questions: Vec<(String, u16)>,
    /// (name, target, ttl) of each known answer.
    known: Vec<(String, String, u32)>,
}

struct Harness {
    browser: Browser,
    now: u64,
    sent: Vec<Query>,
    events: Vec<BrowseEvent>,
    /// The interfaces browsed on, where every query must go.
    ifaces: Vec<InterfaceId>,
}

impl Harness {
    fn new() -> Self {
        let mut browser = Browser::new(Instant::from_millis(0));
        browser.add_interface(IFACE).unwrap();
        Self {
            browser,
            now: 0,
            sent: Vec::new(),
            events: Vec::new(),
            ifaces: vec![IFACE],
        }
    }

    fn add_interface(&mut self, iface: InterfaceId) {
        self.browser.add_interface(iface).unwrap();
        self.ifaces.push(iface);
    }

    fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn drain(&mut self) {
        let mut buf = [0u8; MIN_TRANSMIT_BUFFER];
        let now = self.instant();
        for _ in 0..100 {
            let Some(transmit) = self.browser.poll_transmit(now, &mut buf) else {
                break;
            };
            assert!(
                self.ifaces.contains(&transmit.iface),
                "{:?}",
                transmit.iface
            );
            let Destination::Multicast(family) = transmit.destination else {
                panic!("queries are multicast");
            };
            let packet = Packet::parse(transmit.payload).expect("the browser sends valid DNS");
            assert!(!packet.header().is_response());
            self.sent.push(Query {
                at: self.now,
                family,
                flags: packet.header().flags,
                questions: packet
                    .questions()
                    .map(|q| {
                        assert!(!q.unicast_response, "QM questions");
                        (q.name.to_string(), q.qtype)
                    })
                    .collect(),
                known: packet
                    .answers()
                    .map(|r| {
                        let RData::Ptr(target) = r.rdata else {
                            panic!("known answers are PTRs");
                        };
                        (r.name.to_string(), target.to_string(), r.ttl)
                    })
                    .collect(),
            });
        }
        while let Some(event) = self.browser.poll_event() {
            self.events.push(event);
        }
    }

    fn run_until(&mut self, until: u64) {
        self.drain();
        for _ in 0..10_000 {
            match self.browser.poll_timeout() {
                Some(at) if at.as_millis() <= until => {
                    self.now = self.now.max(at.as_millis());
                    let now = self.instant();
                    self.browser.handle_timeout(now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.receive_on(IFACE, bytes);
    }

    fn receive_on(&mut self, iface: InterfaceId, bytes: &[u8]) {
        let now = self.instant();
        self.browser
            .handle_datagram(now, iface, responder_addr(), bytes)
            .unwrap();
        self.drain();
    }

    fn take_sent(&mut self) -> Vec<Query> {
        core::mem::take(&mut self.sent)
    }

    fn take_events(&mut self) -> Vec<BrowseEvent> {
        core::mem::take(&mut self.events)
    }
}

fn found(name: &str) -> BrowseEvent {
    BrowseEvent::Found(name.try_into().unwrap())
}

fn updated(name: &str) -> BrowseEvent {
    BrowseEvent::Updated(name.try_into().unwrap())
}

fn removed(name: &str) -> BrowseEvent {
    BrowseEvent::Removed(name.try_into().unwrap())
}

fn txt_entries(sf: &str) -> Vec<TxtEntry> {
    [
        ("c#", "2"),
        ("ff", "0"),
        ("id", "12:34:56:78:9A:BC"),
        ("md", "VirtualLight"),
        ("pv", "1.1"),
        ("s#", "1"),
        ("sf", sf),
        ("ci", "5"),
    ]
    .into_iter()
    .map(|(key, value)| TxtEntry {
        key,
        value: value.try_into().unwrap(),
    })
    .collect()
}

/// The records of one accessory, with `ttl` (host records 120 s, others 4500 s, or 0).
struct Records {
    name: String,
    host: String,
    port: u16,
    txt: Vec<TxtEntry>,
}

impl Records {
    fn light() -> Self {
        Self {
            name: NAME.into(),
            host: HOST.into(),
            port: 51826,
            txt: txt_entries("1"),
        }
    }

    fn instance(&self) -> Name<'_> {
        Name::with_instance(&self.name, SERVICE_TYPE).unwrap()
    }

    fn ptr(&self, ttl: u32) -> RecordOut<'_> {
        let service = Name::new(SERVICE_TYPE).unwrap();
        RecordOut::new(service, false, ttl, RecordData::Ptr(self.instance().into()))
    }

    fn srv(&self, ttl: u32) -> RecordOut<'_> {
        let target = Name::new(&self.host).unwrap().into();
        let data = RecordData::Srv {
            priority: 0,
            weight: 0,
            port: self.port,
            target,
        };
        RecordOut::new(self.instance(), true, ttl, data)
    }

    fn txt(&self, ttl: u32) -> RecordOut<'_> {
        RecordOut::new(
            self.instance(),
            true,
            ttl,
            RecordData::TxtEntries(&self.txt),
        )
    }

    fn a(&self, ttl: u32, v4: Ipv4Addr) -> RecordOut<'_> {
        RecordOut::new(Name::new(&self.host).unwrap(), true, ttl, RecordData::A(v4))
    }

    fn aaaa(&self, ttl: u32, v6: Ipv6Addr) -> RecordOut<'_> {
        RecordOut::new(
            Name::new(&self.host).unwrap(),
            true,
            ttl,
            RecordData::Aaaa(v6),
        )
    }

    /// PTR in the answers, SRV, TXT, A and AAAA in the additionals.
    fn announcement(&self) -> Vec<u8> {
        response(
            &[self.ptr(4500)],
            &[
                self.srv(120),
                self.txt(4500),
                self.a(120, V4),
                self.aaaa(120, V6),
            ],
        )
    }

    fn goodbye(&self) -> Vec<u8> {
        response(
            &[
                self.ptr(0),
                self.srv(0),
                self.txt(0),
                self.a(0, V4),
                self.aaaa(0, V6),
            ],
            &[],
        )
    }
}

fn response(answers: &[RecordOut<'_>], additionals: &[RecordOut<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 9000];
    let mut writer = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
    for record in answers {
        writer.answer(record).unwrap();
    }
    for record in additionals {
        writer.additional(record).unwrap();
    }
    writer.finish().to_vec()
}

fn ptr_query_times(sent: &[Query]) -> Vec<u64> {
    let mut times: Vec<u64> = sent
        .iter()
        .filter(|q| q.questions == [("_hap._tcp.local.".to_string(), rtype::PTR)])
        .map(|q| q.at)
        .collect();
    times.dedup();
    times
}

#[test]
fn queries_at_start_then_1s_doubling_up_to_60s_on_both_families() {
    let mut h = Harness::new();
    h.run_until(3_000);
    let sent = h.take_sent();
    assert_eq!(ptr_query_times(&sent), [0, 1_000, 3_000]);
    let families: Vec<Family> = sent
        .iter()
        .filter(|q| q.at == 0)
        .map(|q| q.family)
        .collect();
    assert_eq!(families, [Family::V4, Family::V6], "one query per family");
    h.run_until(200_000);
    let times = ptr_query_times(&h.take_sent());
    assert_eq!(
        times,
        [7_000, 15_000, 31_000, 63_000, 123_000, 183_000],
        "4, 8, 16, 32 s, then 60 s"
    );
}

#[test]
fn a_response_with_everything_in_the_additionals_yields_one_complete_instance() {
    let mut h = Harness::new();
    h.run_until(10);
    h.take_sent();
    h.receive(&Records::light().announcement());
    assert_eq!(h.take_events(), [found(NAME)]);
    let instance = h.browser.instance("virtual light").unwrap();
    assert_eq!(instance.name(), NAME);
    assert_eq!(instance.host(), Some(HOST));
    assert_eq!(instance.port(), Some(51826));
    assert_eq!(instance.interface(), IFACE);
    let addresses: Vec<IpAddr> = instance.addresses().collect();
    assert_eq!(addresses, [IpAddr::V4(V4), IpAddr::V6(V6)]);
    let txt = instance.txt().unwrap();
    assert_eq!(txt.device_id, "12:34:56:78:9A:BC".parse().ok());
    assert_eq!(txt.config_number, Some(2));
    assert_eq!(txt.status_flags, Some(1));
    assert_eq!(txt.is_paired(), Some(false));
    assert!(instance.is_resolved());
    h.run_until(500);
    assert!(h.take_sent().is_empty(), "nothing to ask");
}

#[test]
fn pieces_in_separate_packets_are_put_together_and_asked_for() {
    let mut h = Harness::new();
    h.run_until(10);
    h.take_sent();
    let light = Records::light();
    h.receive(&response(&[light.ptr(4500)], &[]));
    let sent = h.take_sent();
    let instance = "Virtual Light._hap._tcp.local.".to_string();
    assert_eq!(
        sent[0].questions,
        [(instance.clone(), rtype::SRV), (instance, rtype::TXT)],
        "asked at once for the SRV and TXT"
    );
    h.receive(&response(&[light.srv(120)], &[]));
    // The host is known now: asked for its addresses at once, with the TXT.
    let host = "Virtual-Light.local.".to_string();
    let sent = h.take_sent();
    assert_eq!(
        sent[0].questions,
        [
            ("Virtual Light._hap._tcp.local.".to_string(), rtype::TXT),
            (host.clone(), rtype::A),
            (host, rtype::AAAA)
        ]
    );
    h.receive(&response(&[light.txt(4500)], &[]));
    assert!(h.take_events().is_empty(), "no address yet");
    h.receive(&response(&[light.a(120, V4)], &[]));
    assert_eq!(h.take_events(), [found(NAME)]);
}

#[test]
fn a_missing_address_is_asked_for_at_the_next_transmit_then_with_backoff() {
    let mut h = Harness::new();
    h.run_until(10);
    h.take_sent();
    let light = Records::light();
    h.receive(&response(
        &[light.ptr(4500)],
        &[light.srv(120), light.txt(4500)],
    ));
    let host = "Virtual-Light.local.".to_string();
    let address_queries = |sent: &[Query]| -> Vec<u64> {
        let mut times: Vec<u64> = sent
            .iter()
            .filter(|q| q.questions == [(host.clone(), rtype::A), (host.clone(), rtype::AAAA)])
            .map(|q| q.at)
            .collect();
        times.dedup();
        times
    };
    assert_eq!(address_queries(&h.take_sent()), [10]);
    h.run_until(8_000);
    assert_eq!(address_queries(&h.take_sent()), [1_010, 3_010, 7_010]);
    assert!(h.take_events().is_empty());
}

#[test]
fn a_goodbye_removes_the_instance_after_one_second() {
    let mut h = Harness::new();
    let light = Records::light();
    h.receive(&light.announcement());
    assert_eq!(h.take_events(), [found(NAME)]);
    h.now = 2_000;
    h.receive(&light.goodbye());
    assert!(h.take_events().is_empty(), "§10.1: one more second");
    h.run_until(3_000);
    assert_eq!(h.take_events(), [removed(NAME)]);
    assert!(h.browser.instance(NAME).is_none());
    assert_eq!(h.browser.instances().count(), 0);
}

#[test]
fn records_expire_with_their_ttl() {
    let mut h = Harness::new();
    let light = Records::light();
    h.receive(&response(
        &[light.ptr(10)],
        &[light.srv(10), light.txt(10), light.a(10, V4)],
    ));
    assert_eq!(h.take_events(), [found(NAME)]);
    // Nobody answers the refreshes at 8, 8.5, 9 and 9.5 s.
    h.run_until(10_000);
    let sent = h.take_sent();
    assert!(sent.iter().any(|q| q.at == 8_000 && q.questions.len() >= 2));
    let events = h.take_events();
    assert_eq!(events.last(), Some(&removed(NAME)), "{events:?}");
}

#[test]
fn a_txt_change_is_an_update() {
    let mut h = Harness::new();
    let mut light = Records::light();
    h.receive(&light.announcement());
    assert_eq!(h.take_events(), [found(NAME)]);
    h.now = 500;
    h.receive(&light.announcement());
    assert!(h.take_events().is_empty(), "the same again is no change");
    light.txt = txt_entries("0");
    h.receive(&response(&[light.txt(4500)], &[]));
    assert_eq!(h.take_events(), [updated(NAME)]);
    let txt = h.browser.instance(NAME).unwrap().txt().unwrap();
    assert_eq!(txt.status_flags, Some(0));
    assert_eq!(txt.is_paired(), Some(true));
}

#[test]
fn a_cache_flush_replaces_old_addresses_after_one_second() {
    let mut h = Harness::new();
    let light = Records::light();
    h.receive(&light.announcement());
    h.take_events();
    h.now = 5_000;
    let new = Ipv4Addr::new(192, 0, 2, 3);
    h.receive(&response(&[light.a(120, new)], &[]));
    assert_eq!(h.take_events(), [updated(NAME)]);
    h.run_until(6_000);
    assert_eq!(h.take_events(), [updated(NAME)]);
    let addresses: Vec<IpAddr> = h.browser.instance(NAME).unwrap().addresses().collect();
    assert_eq!(addresses, [IpAddr::V4(new), IpAddr::V6(V6)]);
}

#[test]
fn known_answers_with_more_than_half_their_ttl_go_in_the_ptr_query() {
    let mut h = Harness::new();
    h.run_until(10);
    let light = Records::light();
    h.receive(&light.announcement());
    let mut short = Records::light();
    short.name = "Short".into();
    short.host = "short.local".into();
    h.receive(&response(
        &[short.ptr(4)],
        &[short.srv(120), short.txt(4500), short.a(120, V4)],
    ));
    h.take_sent();
    // The next query at 1 s: the short one has 3 s of 4 left, the light 4499 of 4500.
    h.run_until(1_000);
    let sent = h.take_sent();
    let query = sent.iter().find(|q| !q.known.is_empty()).unwrap();
    assert_eq!(query.at, 1_000);
    let mut known = query.known.clone();
    known.sort();
    assert_eq!(
        known,
        [
            (
                "_hap._tcp.local.".into(),
                "Short._hap._tcp.local.".into(),
                3
            ),
            (
                "_hap._tcp.local.".into(),
                "Virtual Light._hap._tcp.local.".into(),
                4499
            ),
        ]
    );
    // At 3 s the short one has 1 s of 4 left: not known any more.
    h.run_until(3_000);
    let sent = h.take_sent();
    let at_3s: Vec<_> = sent.iter().filter(|q| q.at == 3_000).collect();
    assert!(at_3s.iter().all(|q| q.known.len() == 1), "{at_3s:?}");
    assert!(at_3s.iter().all(|q| q.flags & Header::TC == 0));
}

#[test]
fn instances_and_addresses_beyond_capacity_are_dropped_and_counted() {
    let mut h = Harness::new();
    for i in 0..=MAX_INSTANCES {
        let records = Records {
            name: format!("Light {i}"),
            ..Records::light()
        };
        h.receive(&response(&[records.ptr(4500)], &[]));
    }
    assert_eq!(h.browser.instances().count(), MAX_INSTANCES);
    assert!(
        h.browser.instance("Light 16").is_none(),
        "the newest is dropped"
    );
    assert_eq!(h.browser.dropped().instances, 1);

    let light = Records::light();
    let mut h = Harness::new();
    let addresses: Vec<RecordOut<'_>> = (1..=6)
        .map(|i| light.a(120, Ipv4Addr::new(192, 0, 2, i)))
        .collect();
    let mut all = vec![light.srv(120), light.txt(4500)];
    all.extend(addresses);
    h.receive(&response(&[light.ptr(4500)], &all));
    let instance = h.browser.instance(NAME).unwrap();
    assert_eq!(instance.addresses().count(), MAX_INSTANCE_ADDRESSES);
    assert_eq!(h.browser.dropped().addresses, 2);
}

#[test]
fn an_ipv4_address_displaces_the_last_ipv6_one_when_full() {
    let light = Records::light();
    let mut h = Harness::new();
    let v6 = |i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i);
    let mut records = vec![light.srv(120), light.txt(4500)];
    records.extend((1..=4).map(|i| light.aaaa(120, v6(i))));
    h.receive(&response(&[light.ptr(4500)], &records));
    assert_eq!(h.take_events(), [found(NAME)]);
    h.now = 100;
    // Not a cache flush, so that the IPv6 addresses stay.
    let a = RecordOut::new(Name::new(HOST).unwrap(), false, 120, RecordData::A(V4));
    h.receive(&response(&[a], &[]));
    assert_eq!(h.take_events(), [updated(NAME)]);
    let expected = [
        IpAddr::V4(V4),
        IpAddr::V6(v6(1)),
        IpAddr::V6(v6(2)),
        IpAddr::V6(v6(3)),
    ];
    let addresses: Vec<IpAddr> = h.browser.instance(NAME).unwrap().addresses().collect();
    assert_eq!(addresses, expected);
    assert_eq!(h.browser.dropped().addresses, 1);
    // A further IPv6 address is the one dropped.
    let aaaa = RecordOut::new(
        Name::new(HOST).unwrap(),
        false,
        120,
        RecordData::Aaaa(v6(5)),
    );
    h.receive(&response(&[aaaa], &[]));
    let addresses: Vec<IpAddr> = h.browser.instance(NAME).unwrap().addresses().collect();
    assert_eq!(addresses, expected);
    assert_eq!(h.browser.dropped().addresses, 2);
    assert!(h.take_events().is_empty());
}

#[test]
fn addresses_keep_the_interface_they_were_heard_on() {
    const OTHER: InterfaceId = InterfaceId(2);
    let link_local = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    let light = Records::light();
    let mut h = Harness::new();
    h.add_interface(OTHER);
    // The PTR, SRV and TXT on IFACE, the first address on OTHER.
    h.receive(&response(
        &[light.ptr(4500)],
        &[light.srv(120), light.txt(4500)],
    ));
    assert_eq!(h.browser.instance(NAME).unwrap().interface(), IFACE);
    h.receive_on(OTHER, &response(&[light.aaaa(120, link_local)], &[]));
    assert_eq!(h.take_events(), [found(NAME)]);
    let instance = h.browser.instance(NAME).unwrap();
    assert_eq!(instance.interface(), OTHER, "where its address was heard");
    // The same link-local address on IFACE is another address; a global one is one
    // address wherever it is heard, and keeps its first interface.
    h.receive(&response(
        &[light.aaaa(120, link_local)],
        &[light.aaaa(120, V6)],
    ));
    h.receive_on(OTHER, &response(&[light.aaaa(120, V6)], &[]));
    let heard: Vec<_> = h
        .browser
        .instance(NAME)
        .unwrap()
        .addresses_with_interface()
        .collect();
    assert_eq!(
        heard,
        [
            (IpAddr::V6(link_local), OTHER),
            (IpAddr::V6(link_local), IFACE),
            (IpAddr::V6(V6), IFACE),
        ]
    );
    // A cache flush heard on OTHER 5 s later ends only OTHER's other addresses.
    h.now = 5_000;
    let other_v6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3);
    h.receive_on(OTHER, &response(&[light.aaaa(120, other_v6)], &[]));
    h.run_until(6_500);
    let heard: Vec<_> = h
        .browser
        .instance(NAME)
        .unwrap()
        .addresses_with_interface()
        .collect();
    assert_eq!(
        heard,
        [
            (IpAddr::V6(link_local), IFACE),
            (IpAddr::V6(V6), IFACE),
            (IpAddr::V6(other_v6), OTHER),
        ]
    );
    assert_eq!(h.browser.instance(NAME).unwrap().interface(), IFACE);
}

#[test]
fn queries_and_responses_from_other_ports_or_interfaces_are_ignored() {
    let mut h = Harness::new();
    let light = Records::light();
    let now = h.instant();
    let other_port = SocketAddr::new(IpAddr::V4(V4), 40_000);
    let datagram = light.announcement();
    h.browser
        .handle_datagram(now, IFACE, other_port, &datagram)
        .unwrap();
    h.browser
        .handle_datagram(now, InterfaceId(9), responder_addr(), &datagram)
        .unwrap();
    let mut query = datagram.clone();
    query[2] &= 0x7F; // QR off
    h.browser
        .handle_datagram(now, IFACE, responder_addr(), &query)
        .unwrap();
    assert_eq!(h.browser.instances().count(), 0);
    assert_eq!(
        h.browser
            .handle_datagram(now, IFACE, responder_addr(), &[1, 2, 3]),
        Err(ParseError::Truncated)
    );
}

#[test]
fn garbage_and_mutated_responses_never_panic_and_queries_stay_valid() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let good = Records::light().announcement();
    let mut h = Harness::new();
    for round in 0..3_000 {
        let mut datagram = if round % 2 == 0 {
            good.clone()
        } else {
            let mut random = vec![0u8; (rng.next_u32() % 200) as usize];
            rng.fill_bytes(&mut random);
            random
        };
        for _ in 0..(rng.next_u32() % 4) {
            if datagram.is_empty() {
                break;
            }
            let at = rng.next_u32() as usize % datagram.len();
            datagram[at] = rng.next_u32() as u8;
        }
        // Keep it a response, most of the time.
        if datagram.len() > 3 && round % 3 != 0 {
            datagram[2] |= 0x80;
            datagram[3] &= 0xF0;
        }
        let now = h.instant();
        let _ = h
            .browser
            .handle_datagram(now, IFACE, responder_addr(), &datagram);
        h.run_until(h.now + 37);
    }
    assert!(h.browser.instances().count() <= MAX_INSTANCES);
}

/// The core's responder and the browser, exchanging datagrams in memory, find each
/// other: instance, host, port, addresses and TXT agree.
#[test]
fn the_browser_finds_the_core_responder() {
    let advertisement = Advertisement {
        name: "Test Light",
        port: 51826,
        model: "VirtualLight",
        device_id: "12:34:56:78:9A:BC".parse().unwrap(),
        config_number: 3,
        category: crate::catalog::Category::LIGHTBULB,
        paired: false,
        setup_id: Some("7OSX".parse().unwrap()),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut responder = MdnsResponder::new("TestLight", &advertisement).unwrap();
    let addresses = [IpAddr::V4(V4), IpAddr::V6(V6)];
    let at = Instant::from_millis;
    responder
        .set_interface(IFACE, &addresses, at(0), &mut rng)
        .unwrap();
    // The browser starts after the announcements, so it learns only from answers.
    let start = 10_000;
    responder.handle_timeout(at(start), &mut rng);
    let mut buf = [0u8; MIN_TRANSMIT_BUFFER];
    let mut now = 0;
    while now < start {
        now += 50;
        responder.handle_timeout(at(now), &mut rng);
        while responder.poll_transmit(at(now), &mut buf).is_some() {}
    }
    let mut browser = Browser::new(at(start));
    browser.add_interface(IFACE).unwrap();
    let browser_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), MDNS_PORT);
    let mut events = Vec::new();
    for step in 0..200 {
        now = start + step * 10;
        let t = at(now);
        while let Some(query) = browser.poll_transmit(t, &mut buf) {
            let bytes = query.payload.to_vec();
            responder
                .handle_datagram(t, IFACE, browser_addr, &bytes, &mut rng)
                .unwrap();
        }
        responder.handle_timeout(t, &mut rng);
        while let Some(answer) = responder.poll_transmit(t, &mut buf) {
            let bytes = answer.payload.to_vec();
            browser
                .handle_datagram(t, IFACE, responder_addr(), &bytes)
                .unwrap();
        }
        browser.handle_timeout(t);
        events.extend(core::iter::from_fn(|| browser.poll_event()));
    }
    assert_eq!(events, [found("Test Light")]);
    let instance = browser.instance("Test Light").unwrap();
    assert_eq!(instance.host(), Some("TestLight.local"));
    assert_eq!(instance.port(), Some(51826));
    assert_eq!(instance.addresses().collect::<Vec<_>>(), addresses);
    let txt = instance.txt().unwrap();
    assert_eq!(txt.device_id, Some(advertisement.device_id));
    assert_eq!(txt.config_number, Some(3));
    assert_eq!(txt.state_number, Some(1));
    assert_eq!(txt.status_flags, Some(1));
    assert_eq!(txt.category, Some(5));
    assert_eq!(txt.model.as_deref(), Some("VirtualLight"));
    assert_eq!(txt.feature_flags, Some(0));
    assert_eq!(txt.protocol_version.as_deref(), Some("1.1"));

    // Its goodbye removes it.
    responder.goodbye(at(now));
    for step in 1..300 {
        let t = at(now + step * 10);
        responder.handle_timeout(t, &mut rng);
        while let Some(answer) = responder.poll_transmit(t, &mut buf) {
            let bytes = answer.payload.to_vec();
            browser
                .handle_datagram(t, IFACE, responder_addr(), &bytes)
                .unwrap();
        }
        browser.handle_timeout(t);
        while browser.poll_transmit(t, &mut buf).is_some() {}
        events.extend(core::iter::from_fn(|| browser.poll_event()));
    }
    assert_eq!(events.last(), Some(&removed("Test Light")));
}

/// Sixteen known answers fit one 1452-byte query, so the continuation (§7.2) is checked
/// with a smaller buffer: every packet but the last has TC, only the first has the
/// question, and together they carry every known answer once.
#[test]
fn known_answers_that_do_not_fit_continue_in_packets_with_tc() {
    let mut h = Harness::new();
    for i in 0..MAX_INSTANCES {
        let records = Records {
            name: format!("Light {i:02} {}", "x".repeat(40)),
            ..Records::light()
        };
        h.receive(&response(&[records.ptr(4500)], &[]));
    }
    let now = h.instant();
    let mut buf = [0u8; 400];
    let mut from = 0;
    let mut known = Vec::new();
    for packet_index in 0.. {
        let outgoing = Outgoing {
            kind: Kind::Ptr,
            from,
            target: 0,
        };
        let (len, more) = h.browser.write(now, outgoing, &mut buf).unwrap();
        let packet = Packet::parse(&buf[..len]).unwrap();
        assert_eq!(packet.questions().count(), usize::from(packet_index == 0));
        assert_eq!(packet.header().is_truncated(), more.is_some());
        known.extend(packet.answers().map(|r| match r.rdata {
            RData::Ptr(target) => target.to_string(),
            _ => panic!("a PTR"),
        }));
        match more {
            Some(next) => from = next,
            None => break,
        }
    }
    known.sort();
    known.dedup();
    assert_eq!(known.len(), MAX_INSTANCES);
}
