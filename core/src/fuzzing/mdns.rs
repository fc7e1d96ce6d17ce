//! The mDNS packet parser and writer, which face every device on the LAN.

use std::vec;
use std::vec::Vec;

use crate::mdns::wire::{
    Header, NameArg, Packet, RData, RecordOut, WriteError, Writer, HEADER_LEN,
};

/// Feeds arbitrary bytes to responders and browsers, and parses them as a DNS message.
/// For what parses: every name and datum reads through, names equal themselves ignoring
/// case, and writing the message again (with our compression) parses back to the same
/// header, questions and records, exactly. A buffer one byte short is refused with
/// `Full` and still leaves a valid message.
pub fn mdns_packet(data: &[u8]) {
    feed_responder(data);
    feed_browser(data);
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    assert!(packet.as_bytes().len() <= data.len());
    assert_eq!(
        Packet::parse(packet.as_bytes()).map(|p| *p.header()),
        Ok(*packet.header())
    );
    // Uncompressed, no item is longer than its fixed fields and two names.
    let mut bound = HEADER_LEN;
    for question in packet.questions() {
        assert!(question.name.eq_ignore_ascii_case(&question.name));
        assert!(question.qclass < 0x8000);
        bound += 255 + 4;
    }
    for record in packet.records() {
        assert!(record.name.eq_ignore_ascii_case(&record.name));
        assert_eq!(record.cmp_for_tiebreak(&record), core::cmp::Ordering::Equal);
        let rdata_len = record.rdata_bytes().count();
        if let RData::Other(bytes) = record.rdata {
            assert_eq!(rdata_len, bytes.len());
        }
        bound += 255 + 10 + rdata_len;
    }

    let mut buf = vec![0; bound];
    let len = rewrite(&packet, &mut buf).expect("the bound holds every item");
    let again = Packet::parse(&buf[..len]).expect("the writer's output parses");
    assert_eq!(again.header(), packet.header());
    assert!(again.questions().eq(packet.questions()));
    assert!(again.answers().eq(packet.answers()));
    assert!(again.authorities().eq(packet.authorities()));
    assert!(again.additionals().eq(packet.additionals()));
    // Canonical data is the same whatever the compression.
    for (a, b) in again.records().zip(packet.records()) {
        assert!(a.rdata_bytes().eq(b.rdata_bytes()));
    }

    if len > HEADER_LEN {
        let mut short = vec![0; len - 1];
        assert_eq!(rewrite(&packet, &mut short), Err(WriteError::Full));
        let mut short = vec![0; len - 1];
        let partial = rewrite_what_fits(&packet, &mut short);
        let partial = Packet::parse(partial).expect("a full writer leaves a valid message");
        // What fits is a prefix of the message.
        assert!(partial
            .questions()
            .zip(packet.questions())
            .all(|(a, b)| a == b));
        assert!(partial.records().zip(packet.records()).all(|(a, b)| a == b));
        let counted = |p: &Packet<'_>| {
            let h = p.header();
            usize::from(h.questions)
                + usize::from(h.answers)
                + usize::from(h.authorities)
                + usize::from(h.additionals)
        };
        assert!(counted(&partial) < counted(&packet));
    }
}

/// Feeds the bytes to responders, while probing and once established, as a query
/// (from port 5353 and from a legacy port) and as a response, and drains everything
/// they send: none may panic, and every datagram they send must parse and fit.
fn feed_responder(data: &[u8]) {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use crate::mdns::responder::{InterfaceId, MdnsResponder, MIN_TRANSMIT_BUFFER};
    use crate::time::Instant;

    let iface = InterfaceId(1);
    let addresses = [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    ];
    let sources = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5353),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40000),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)), 5353),
    ];
    let mut rng = super::FuzzRng::new(21);
    let mut buf = vec![0u8; MIN_TRANSMIT_BUFFER];
    let ad = advertisement();
    // Established at 6 s; probing at 300 ms.
    for established_at in [6_000, 300] {
        let mut responder = MdnsResponder::new("123456789ABC", &ad).expect("valid names");
        let mut now = Instant::from_millis(0);
        responder
            .set_interface(iface, &addresses, now, &mut rng)
            .expect("one interface");
        run_until(&mut responder, &mut now, established_at, &mut rng, &mut buf);
        for source in sources {
            let _ = responder.handle_datagram(now, iface, source, data, &mut rng);
            let until = now.as_millis() + 1_500;
            run_until(&mut responder, &mut now, until, &mut rng, &mut buf);
        }
        responder.goodbye(now);
        let until = now.as_millis() + 1_000;
        run_until(&mut responder, &mut now, until, &mut rng, &mut buf);
        assert!(responder.is_withdrawn());
    }
}

/// Feeds the bytes to browsers as a response, to a fresh one and to one that knows an
/// accessory (the first seed), and serves their deadlines for two minutes: none may
/// panic, every query they send must parse and be a query, and what they keep stays
/// within their capacities.
fn feed_browser(data: &[u8]) {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    use crate::mdns::browser::{Browser, MAX_INSTANCES, MAX_INSTANCE_ADDRESSES};
    use crate::mdns::responder::{InterfaceId, MIN_TRANSMIT_BUFFER};
    use crate::time::Instant;

    let iface = InterfaceId(1);
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 5353);
    let mut buf = vec![0u8; MIN_TRANSMIT_BUFFER];
    let known = seeds().swap_remove(0);
    for warm in [false, true] {
        let mut now = Instant::from_millis(0);
        let mut browser = Browser::new(now);
        browser.add_interface(iface).expect("one interface");
        if warm {
            browser
                .handle_datagram(now, iface, source, &known)
                .expect("the seed parses");
        }
        now = Instant::from_millis(500);
        let _ = browser.handle_datagram(now, iface, source, data);
        for _ in 0..1_000 {
            for _ in 0..64 {
                let Some(transmit) = browser.poll_transmit(now, &mut buf) else {
                    break;
                };
                let packet = Packet::parse(transmit.payload).expect("the browser sends valid DNS");
                assert!(!packet.header().is_response());
            }
            while browser.poll_event().is_some() {}
            match browser.poll_timeout() {
                Some(at) if at.as_millis() <= 120_000 => {
                    now = now.max(at);
                    browser.handle_timeout(now);
                }
                _ => break,
            }
        }
        assert!(browser.instances().count() <= MAX_INSTANCES);
        assert!(browser
            .instances()
            .all(|i| i.addresses().count() <= MAX_INSTANCE_ADDRESSES));
    }
}

/// Serves the responder's deadlines up to `until` ms, sending what it has.
fn run_until(
    responder: &mut crate::mdns::MdnsResponder,
    now: &mut crate::time::Instant,
    until: u64,
    rng: &mut super::FuzzRng,
    buf: &mut [u8],
) {
    use crate::time::Instant;
    drain(responder, *now, buf);
    for _ in 0..1_000 {
        match responder.poll_timeout() {
            Some(at) if at.as_millis() <= until => {
                *now = (*now).max(at);
                responder.handle_timeout(*now, rng);
                drain(responder, *now, buf);
            }
            _ => break,
        }
    }
    *now = (*now).max(Instant::from_millis(until));
}

/// Sends what is ready: every datagram must parse and fit.
fn drain(responder: &mut crate::mdns::MdnsResponder, now: crate::time::Instant, buf: &mut [u8]) {
    for _ in 0..64 {
        let Some(transmit) = responder.poll_transmit(now, buf) else {
            break;
        };
        assert!(transmit.payload.len() <= crate::mdns::responder::MIN_TRANSMIT_BUFFER);
        Packet::parse(transmit.payload).expect("the responder sends valid DNS");
    }
    while responder.poll_event().is_some() {}
}

fn advertisement() -> crate::mdns::Advertisement<'static> {
    crate::mdns::Advertisement {
        name: "Virtual Light",
        port: 51826,
        model: "VirtualLight",
        device_id: "12:34:56:78:9A:BC".parse().expect("a device id"),
        config_number: 3,
        category: crate::catalog::Category::LIGHTBULB,
        paired: false,
        setup_id: Some("7OSX".parse().expect("a setup id")),
    }
}

/// Writes `packet` again into `buf`; the length written.
fn rewrite(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, WriteError> {
    let header = packet.header();
    let mut writer = Writer::new(buf, header.id, header.flags)?;
    write_items(packet, &mut writer)?;
    Ok(writer.finish().len())
}

/// Writes `packet`'s items up to the first that does not fit, as a responder sends what
/// fits, and finishes the message.
fn rewrite_what_fits<'b>(packet: &Packet<'_>, buf: &'b mut [u8]) -> &'b [u8] {
    let header = packet.header();
    let mut writer = Writer::new(buf, header.id, header.flags | Header::TC).expect("header fits");
    assert_eq!(write_items(packet, &mut writer), Err(WriteError::Full));
    writer.finish()
}

fn write_items(packet: &Packet<'_>, writer: &mut Writer<'_>) -> Result<(), WriteError> {
    for q in packet.questions() {
        writer.question(NameArg::from(q.name), q.qtype, q.qclass, q.unicast_response)?;
    }
    for r in packet.answers() {
        writer.answer(&RecordOut::from(&r))?;
    }
    for r in packet.authorities() {
        writer.authority(&RecordOut::from(&r))?;
    }
    for r in packet.additionals() {
        writer.additional(&RecordOut::from(&r))?;
    }
    Ok(())
}

/// Messages as an accessory and its controllers exchange them: an answer, a probe, a
/// query with a known answer, a legacy unicast query, an announcement with negative
/// answers, a goodbye, and a hand-made message with an unknown type and a pointer chain.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    use core::net::{Ipv4Addr, Ipv6Addr};

    use crate::catalog::Category;
    use crate::mdns::wire::{rtype, Name, RecordData, CLASS_IN};
    use crate::mdns::Advertisement;

    let ad = Advertisement {
        name: "Virtual Light",
        port: 51826,
        model: "VirtualLight",
        device_id: "12:34:56:78:9A:BC".parse().expect("a device id"),
        config_number: 3,
        category: Category::LIGHTBULB,
        paired: false,
        setup_id: Some("7OSX".parse().expect("a setup id")),
    };
    let txt = ad.txt();
    let name = |text| Name::new(text).expect("a name");
    let service = name("_hap._tcp.local");
    let services = name("_services._dns-sd._udp.local");
    let instance = Name::with_instance(ad.name, "_hap._tcp.local").expect("a name");
    let host = name("123456789ABC.local");
    let v4 = Ipv4Addr::new(192, 0, 2, 7);
    let v6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7);
    let ptr = RecordOut::new(service, false, 4500, RecordData::Ptr(instance.into()));
    let srv = RecordOut::new(
        instance,
        true,
        120,
        RecordData::Srv {
            priority: 0,
            weight: 0,
            port: ad.port,
            target: host.into(),
        },
    );
    let txt = RecordOut::new(instance, true, 4500, RecordData::TxtEntries(&txt));
    let a = RecordOut::new(host, true, 120, RecordData::A(v4));
    let aaaa = RecordOut::new(host, true, 120, RecordData::Aaaa(v6));
    let own = [srv, txt, a, aaaa];

    let message =
        |id: u16, flags: u16, write: &dyn Fn(&mut Writer<'_>) -> Result<(), WriteError>| {
            let mut buf = vec![0; 1500];
            let mut writer = Writer::new(&mut buf, id, flags).expect("header fits");
            write(&mut writer).expect("a seed fits in 1500 bytes");
            writer.finish().to_vec()
        };
    let mut seeds = vec![
        message(0, Header::RESPONSE, &|w| {
            w.answer(&ptr)?;
            own.iter().try_for_each(|r| w.additional(r))
        }),
        // A probe: QU ANY questions, the proposed records in the authority section.
        message(0, Header::QUERY, &|w| {
            w.question(instance, rtype::ANY, CLASS_IN, true)?;
            w.question(host, rtype::ANY, CLASS_IN, true)?;
            own.iter().try_for_each(|r| {
                w.authority(&RecordOut {
                    cache_flush: false,
                    ..*r
                })
            })
        }),
        // A browse with a known answer, more to follow (TC).
        message(0, Header::QUERY | Header::TC, &|w| {
            w.question(service, rtype::PTR, CLASS_IN, false)?;
            w.answer(&ptr)
        }),
        // Legacy unicast: an id and RD, as a conventional resolver sends.
        message(0x1234, Header::RD, &|w| {
            w.question(host, rtype::A, CLASS_IN, false)?;
            w.question(host, rtype::AAAA, CLASS_IN, false)
        }),
        // An announcement with negative answers, then a goodbye.
        message(0, Header::RESPONSE, &|w| {
            w.answer(&RecordOut::new(
                services,
                false,
                4500,
                RecordData::Ptr(service.into()),
            ))?;
            own.iter().try_for_each(|r| w.answer(r))?;
            let nsec = |owner: Name<'static>, types: &'static [u16]| {
                RecordOut::new(
                    owner,
                    true,
                    120,
                    RecordData::Nsec {
                        next: owner.into(),
                        types,
                    },
                )
            };
            w.additional(&nsec(instance, &[rtype::TXT, rtype::SRV]))?;
            w.additional(&nsec(host, &[rtype::A, rtype::AAAA]))
        }),
        message(0, Header::RESPONSE, &|w| {
            own.iter()
                .try_for_each(|r| w.answer(&RecordOut { ttl: 0, ..*r }))
        }),
    ];
    // An unknown type (HINFO, 13) and three questions, each pointing at the one before.
    seeds.push(vec![
        0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 0, //
        1, b'a', 0, 0, 1, 0, 1, //
        0xC0, 12, 0, 28, 0x80, 1, //
        0xC0, 19, 0, 255, 0, 1, //
        0xC0, 19, 0, 13, 0, 1, 0, 0, 0, 10, 0, 3, 1, 2, 3,
    ]);
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed that does not parse would test nothing past the header.
    #[test]
    fn every_seed_parses_and_survives_its_target() {
        for seed in seeds() {
            let packet = Packet::parse(&seed).unwrap();
            assert!(packet.records().count() + packet.questions().count() > 0);
            mdns_packet(&seed);
        }
    }
}
