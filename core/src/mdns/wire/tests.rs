use core::cmp::Ordering;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::catalog::Category;
use crate::mdns::Advertisement;

fn hap_advertisement() -> Advertisement<'static> {
    Advertisement {
        name: "Virtual Light",
        port: 51826,
        model: "VirtualLight",
        device_id: "12:34:56:78:9A:BC".parse().unwrap(),
        config_number: 3,
        category: Category::LIGHTBULB,
        paired: false,
        setup_id: Some("7OSX".parse().unwrap()),
    }
}

fn hex_bytes(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    hex::decode(digits).unwrap()
}

const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
const HOST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);

/// The answer to a PTR question for `_hap._tcp.local`: the PTR, then SRV, TXT, A and AAAA
/// as additionals, as a responder sends it.
fn write_hap_answer(buf: &mut [u8]) -> Result<usize, WriteError> {
    let ad = hap_advertisement();
    let txt = ad.txt();
    let service = Name::new("_hap._tcp.local")?;
    let instance = Name::with_instance(ad.name, "_hap._tcp.local")?;
    let host = Name::new("123456789ABC.local")?;
    let mut w = Writer::new(buf, 0, Header::RESPONSE)?;
    w.answer(&RecordOut::new(
        service,
        false,
        4500,
        RecordData::Ptr(instance.into()),
    ))?;
    let srv = RecordData::Srv {
        priority: 0,
        weight: 0,
        port: ad.port,
        target: host.into(),
    };
    w.additional(&RecordOut::new(instance, true, 120, srv))?;
    w.additional(&RecordOut::new(
        instance,
        true,
        4500,
        RecordData::TxtEntries(&txt),
    ))?;
    w.additional(&RecordOut::new(host, true, 120, RecordData::A(HOST_V4)))?;
    w.additional(&RecordOut::new(host, true, 120, RecordData::Aaaa(HOST_V6)))?;
    Ok(w.finish().len())
}

/// Checked by hand, offsets in the comments.
fn hap_answer_bytes() -> Vec<u8> {
    let mut bytes = hex_bytes(
        "0000 8400 0000 0001 0000 0004
         045f686170 045f746370 056c6f63616c 00
         000c 0001 00001194 0010
         0d 5669727475616c204c69676874 c00c
         c027 0021 8001 00000078 0015 0000 0000 ca72
         0c 313233343536373839414243 c016
         c027 0010 8001 00001194 0051",
    );
    // `_hap` at 12, `_tcp` at 17, `local` at 22; the instance at 39 (0x27), in the PTR's
    // data; the host at 73 (0x49), in the SRV's data. Port 51826 = 0xca72.
    bytes.extend_from_slice(
        b"\x04c#=3\x04ff=0\x14id=12:34:56:78:9A:BC\x0fmd=VirtualLight\x06pv=1.1\
          \x04s#=1\x04sf=1\x04ci=5\x0bsh=Pb1TTQ==",
    );
    bytes.extend(hex_bytes(
        "c049 0001 8001 00000078 0004 c0000207
         c049 001c 8001 00000078 0010 20010db8000000000000000000000007",
    ));
    bytes
}

#[test]
fn writes_a_hap_accessory_answer_byte_for_byte() {
    let mut buf = [0; 512];
    let len = write_hap_answer(&mut buf).unwrap();
    assert_eq!(hex::encode(&buf[..len]), hex::encode(hap_answer_bytes()));
}

#[test]
fn parses_a_hap_accessory_answer() {
    let bytes = hap_answer_bytes();
    let packet = Packet::parse(&bytes).unwrap();
    let header = packet.header();
    assert!(header.is_response() && header.is_authoritative() && !header.is_truncated());
    assert_eq!((header.id, header.opcode(), header.rcode()), (0, 0, 0));
    assert_eq!(packet.questions().count(), 0);
    assert_eq!(packet.authorities().count(), 0);
    assert_eq!(packet.as_bytes(), &bytes[..]);

    let service = Name::new("_HAP._tcp.local.").unwrap();
    let instance = Name::with_instance("virtual light", "_hap._tcp.local").unwrap();
    let host = Name::new("123456789abc.local").unwrap();
    let ptr = packet.answers().next().unwrap();
    assert!(ptr.name.eq_name(&service));
    assert_eq!(
        (ptr.rtype, ptr.class, ptr.cache_flush, ptr.ttl),
        (rtype::PTR, CLASS_IN, false, 4500)
    );
    let RData::Ptr(target) = ptr.rdata else {
        panic!("{:?}", ptr.rdata)
    };
    assert!(target.eq_name(&instance));
    assert_eq!(target.to_string(), "Virtual Light._hap._tcp.local.");
    let mut wire = vec![13];
    wire.extend(b"Virtual Light\x04_hap\x04_tcp\x05local\x00");
    assert_eq!(target.wire_bytes().collect::<Vec<u8>>(), wire);

    let additionals: Vec<Record<'_>> = packet.additionals().collect();
    assert_eq!(additionals.len(), 4);
    let srv = additionals[0];
    assert!(srv.name.eq_name(&instance) && srv.cache_flush && srv.ttl == 120);
    let RData::Srv {
        priority: 0,
        weight: 0,
        port: 51826,
        target,
    } = srv.rdata
    else {
        panic!("{:?}", srv.rdata)
    };
    assert!(target.eq_name(&host));
    let RData::Txt(txt) = additionals[1].rdata else {
        panic!()
    };
    assert_eq!(txt.strings().count(), 9);
    assert_eq!(txt.get(b"SF"), Some(&b"1"[..]));
    assert_eq!(txt.get(b"id"), Some(&b"12:34:56:78:9A:BC"[..]));
    assert_eq!(txt.get(b"nope"), None);
    assert_eq!(additionals[2].rdata, RData::A(HOST_V4));
    assert_eq!(additionals[3].rdata, RData::Aaaa(HOST_V6));
    assert!(additionals[3]
        .name
        .eq_ignore_ascii_case(&additionals[2].name));
    assert_eq!(packet.records().count(), 5);
}

#[test]
fn every_prefix_of_a_packet_is_refused_as_truncated() {
    let bytes = hap_answer_bytes();
    for len in 0..bytes.len() {
        let error = Packet::parse(&bytes[..len]).unwrap_err();
        assert!(
            matches!(
                error,
                ParseError::Truncated | ParseError::Rdata | ParseError::Pointer
            ),
            "{len}: {error:?}"
        );
    }
}

#[test]
fn a_full_buffer_leaves_the_items_that_fit() {
    let full_len = hap_answer_bytes().len();
    assert_eq!(write_hap_answer(&mut [0; 11]), Err(WriteError::Full));
    for size in HEADER_LEN..full_len {
        let mut buf = vec![0; size];
        let ad = hap_advertisement();
        let txt = ad.txt();
        let host = Name::new("123456789ABC.local").unwrap();
        let mut w = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
        let records = [
            RecordOut::new(
                Name::new("_hap._tcp.local").unwrap(),
                false,
                4500,
                RecordData::Ptr(
                    Name::with_instance(ad.name, "_hap._tcp.local")
                        .unwrap()
                        .into(),
                ),
            ),
            RecordOut::new(host, true, 4500, RecordData::TxtEntries(&txt)),
            RecordOut::new(host, true, 120, RecordData::A(HOST_V4)),
        ];
        let mut written = 0;
        for record in &records {
            match w.answer(record) {
                Ok(()) => written += 1,
                Err(WriteError::Full) => break,
                Err(other) => panic!("{other:?}"),
            }
        }
        // A failed item leaves the message and its compression table as they were.
        let before = w.len();
        match w.answer(&records[2]) {
            Ok(()) => assert!(w.len() > before),
            Err(error) => assert_eq!((error, w.len()), (WriteError::Full, before)),
        }
        let out = w.finish();
        let packet = Packet::parse(out).unwrap();
        assert!(packet.answers().count() >= written);
        assert_eq!(packet.as_bytes().len(), out.len());
    }
}

fn query(flags: u16, question: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x12, 0x34];
    bytes.extend(flags.to_be_bytes());
    bytes.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    bytes.extend(question);
    bytes
}

#[test]
fn parses_a_qu_any_probe_question_and_splits_the_qu_bit() {
    let bytes = query(0, &hex_bytes("04686f7374 056c6f63616c 00 00ff 8001"));
    let packet = Packet::parse(&bytes).unwrap();
    assert_eq!(packet.header().id, 0x1234);
    assert!(!packet.header().is_response());
    let question = packet.questions().next().unwrap();
    assert_eq!(question.qtype, rtype::ANY);
    assert_eq!(question.qclass, CLASS_IN);
    assert!(question.unicast_response);
    assert!(question.name.eq_name(&Name::new("HOST.local").unwrap()));
    assert!(!question.name.eq_name(&Name::new("host.local.x").unwrap()));
    assert!(!question.name.eq_name(&Name::new("host").unwrap()));
    let labels: Vec<&[u8]> = question.name.labels().collect();
    assert_eq!(labels, [&b"host"[..], b"local"]);
}

#[test]
fn drops_other_opcodes_and_response_codes() {
    let question = hex_bytes("00 0001 0001");
    assert!(Packet::parse(&query(0, &question)).is_ok());
    assert_eq!(
        Packet::parse(&query(0x2800, &question)).unwrap_err(),
        ParseError::Opcode
    );
    assert_eq!(
        Packet::parse(&query(0x8403, &question)).unwrap_err(),
        ParseError::Rcode
    );
}

#[test]
fn pointers_must_point_backwards() {
    // A pointer to itself, forwards, and into the header (allowed: backwards).
    let to_self = query(0, &hex_bytes("c00c 0001 0001"));
    assert_eq!(Packet::parse(&to_self).unwrap_err(), ParseError::Pointer);
    let forwards = query(0, &hex_bytes("c00e 0001 0001 00"));
    assert_eq!(Packet::parse(&forwards).unwrap_err(), ParseError::Pointer);
    // Two names pointing at each other: the second points back, the first forwards.
    let mut two = query(0, &hex_bytes("0161 c012 0001 0001 0162 c00c 0001 0001"));
    two[5] = 2;
    assert_eq!(Packet::parse(&two).unwrap_err(), ParseError::Pointer);
    // A chain of backwards pointers is fine, and read through.
    let mut chain = query(
        0,
        &hex_bytes("0161 00 0001 0001 c00c 0001 0001 c013 0001 0001"),
    );
    chain[5] = 3;
    let packet = Packet::parse(&chain).unwrap();
    let last = packet.questions().nth(2).unwrap();
    assert!(last.name.eq_name(&Name::new("A").unwrap()));
}

/// Found by the fuzzer: a pointer back into the header, where byte 0x34 read as a label
/// ran forwards past the pointer, so the name depended on bytes after its own record.
#[test]
fn a_label_reached_through_a_pointer_must_end_before_the_pointer() {
    let crash = hex_bytes(
        "1234 0100 0002 0000 0000 0000 0c313233343536373839414243 056c6f63616c 00 0001 0001
         c001 0000 0000 0000 000c 001c 2401 0000 0000 0000 0001",
    );
    assert_eq!(Packet::parse(&crash).unwrap_err(), ParseError::Pointer);
    // A pointer into the middle of an earlier name is fine: `local` at 26.
    let mut ok = query(
        0,
        &hex_bytes("0161 056c6f63616c 00 0001 0001 c00e 0001 0001"),
    );
    ok[5] = 2;
    let packet = Packet::parse(&ok).unwrap();
    let second = packet.questions().nth(1).unwrap();
    assert!(second.name.eq_name(&Name::new("local").unwrap()));
}

#[test]
fn a_long_pointer_chain_is_refused() {
    // Question i points at question i - 1, each 6 bytes: 0 after MAX_POINTER_JUMPS + 1.
    let count = MAX_POINTER_JUMPS + 2;
    let mut bytes = query(0, &hex_bytes("00 0001 0001"));
    for i in 1..count {
        let previous = if i == 1 {
            HEADER_LEN
        } else {
            HEADER_LEN + 5 + 6 * (i - 2)
        };
        bytes.extend((0xC000 | previous as u16).to_be_bytes());
        bytes.extend([0, 1, 0, 1]);
    }
    bytes[4..6].copy_from_slice(&(count as u16).to_be_bytes());
    assert_eq!(Packet::parse(&bytes).unwrap_err(), ParseError::Pointer);
    bytes[4..6].copy_from_slice(&(count as u16 - 1).to_be_bytes());
    assert!(Packet::parse(&bytes).is_ok());
}

#[test]
fn labels_and_names_are_bounded() {
    let mut long_label = vec![63];
    long_label.extend([b'a'; 63]);
    long_label.extend([0, 0, 1, 0, 1]);
    assert!(Packet::parse(&query(0, &long_label)).is_ok());
    long_label[0] = 0x40;
    assert_eq!(
        Packet::parse(&query(0, &long_label)).unwrap_err(),
        ParseError::Label
    );
    long_label[0] = 0x80;
    assert_eq!(
        Packet::parse(&query(0, &long_label)).unwrap_err(),
        ParseError::Label
    );
    // Four labels of 63 = 256 bytes with the root.
    let mut long_name = Vec::new();
    for _ in 0..4 {
        long_name.push(63);
        long_name.extend([b'a'; 63]);
    }
    long_name.extend([0, 0, 1, 0, 1]);
    assert_eq!(
        Packet::parse(&query(0, &long_name)).unwrap_err(),
        ParseError::NameTooLong
    );
    // And the writer refuses the same.
    let label = "a".repeat(64);
    assert_eq!(Name::new(&label), Err(WriteError::InvalidName));
    assert_eq!(Name::new("a..b"), Err(WriteError::InvalidName));
    let name = ["a".repeat(63).as_str(); 4].join(".");
    assert_eq!(Name::new(&name), Err(WriteError::InvalidName));
    assert!(Name::new(&name[..64 * 3 + 61]).is_ok());
    assert_eq!(Name::new("").unwrap().labels().count(), 0);
}

#[test]
fn instance_labels_keep_their_dots() {
    let name = Name::with_instance("Light v1.2", "_hap._tcp.local").unwrap();
    let mut buf = [0; 64];
    let mut w = Writer::new(&mut buf, 0, 0).unwrap();
    w.question(name, rtype::SRV, CLASS_IN, false).unwrap();
    let bytes = w.finish().to_vec();
    let packet = Packet::parse(&bytes).unwrap();
    let question = packet.questions().next().unwrap();
    assert_eq!(question.name.labels().count(), 4);
    assert!(question.name.eq_name(&name));
    assert!(!question
        .name
        .eq_name(&Name::new("Light v1.2._hap._tcp.local").unwrap()));
    assert_eq!(question.name.to_string(), "Light v1.2._hap._tcp.local.");
}

#[test]
fn unknown_types_are_skipped_by_their_length() {
    let mut bytes = vec![0, 0, 0x84, 0, 0, 0, 0, 2, 0, 0, 0, 0];
    // A HINFO-like type 13 with 3 bytes, then an A record.
    bytes.extend(hex_bytes("00 000d 0001 0000000a 0003 010203"));
    bytes.extend(hex_bytes("00 0001 0001 0000000a 0004 0a000001"));
    let packet = Packet::parse(&bytes).unwrap();
    let records: Vec<Record<'_>> = packet.answers().collect();
    assert_eq!(records[0].rdata, RData::Other(&[1, 2, 3]));
    assert_eq!(records[0].rtype, 13);
    assert_eq!(records[1].rdata, RData::A(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn record_data_must_match_its_type() {
    let record = |rdata: &str| {
        let mut bytes = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        bytes.extend(hex_bytes(rdata));
        Packet::parse(&bytes).map(|_| ())
    };
    assert_eq!(
        record("00 0001 0001 0000000a 0003 0a0000"),
        Err(ParseError::Rdata)
    );
    assert_eq!(
        record("00 001c 0001 0000000a 0004 0a000001"),
        Err(ParseError::Rdata)
    );
    // A PTR whose name runs past its data, or stops short of it.
    assert_eq!(
        record("00 000c 0001 0000000a 0002 0161 00"),
        Err(ParseError::Rdata)
    );
    assert_eq!(
        record("00 000c 0001 0000000a 0004 0161 00 00"),
        Err(ParseError::Rdata)
    );
    assert_eq!(
        record("00 0021 0001 0000000a 0006 000000000000"),
        Err(ParseError::Rdata)
    );
    assert_eq!(record("00 0010 0001 0000000a 0000"), Err(ParseError::Rdata));
    assert_eq!(
        record("00 0010 0001 0000000a 0002 0261"),
        Err(ParseError::Rdata)
    );
    assert_eq!(record("00 0010 0001 0000000a 0001 00"), Ok(()));
    // NSEC bitmaps: a zero-length window, descending windows.
    assert_eq!(
        record("00 002f 0001 0000000a 0003 00 0000"),
        Err(ParseError::Rdata)
    );
    assert_eq!(
        record("00 002f 0001 0000000a 0007 00 0101ff 0001ff"),
        Err(ParseError::Rdata)
    );
    assert_eq!(record("00 002f 0001 0000000a 0001 00"), Ok(()));
    // Data past the end of the datagram.
    assert_eq!(
        record("00 0001 0001 0000000a 0005 0a000001"),
        Err(ParseError::Truncated)
    );
}

#[test]
fn writes_nsec_with_the_types_owned() {
    let host = Name::new("h.local").unwrap();
    let mut buf = [0; 128];
    let mut w = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
    let nsec = RecordData::Nsec {
        next: host.into(),
        types: &[rtype::SRV, rtype::TXT],
    };
    w.answer(&RecordOut::new(host, true, 120, nsec)).unwrap();
    let big = RecordData::Nsec {
        next: host.into(),
        types: &[rtype::AAAA, rtype::A, 0x0102],
    };
    w.additional(&RecordOut::new(host, true, 120, big)).unwrap();
    let bytes = w.finish().to_vec();
    // Owner at 12; the next name uncompressed; TXT (16) = byte 2 bit 0, SRV (33) = byte
    // 4 bit 1; the second: window 0 with A and AAAA, window 1 with type 0x0102.
    let expected = hex_bytes(
        "0000 8400 0000 0001 0000 0001
         0168 056c6f63616c 00 002f 8001 00000078 0010 0168 056c6f63616c 00 0005 0000800040
         c00c 002f 8001 00000078 0012 0168 056c6f63616c 00 0004 40000008 0101 20",
    );
    assert_eq!(hex::encode(&bytes), hex::encode(&expected));
    let packet = Packet::parse(&bytes).unwrap();
    let RData::Nsec { next, types } = packet.answers().next().unwrap().rdata else {
        panic!()
    };
    assert!(next.eq_name(&host));
    assert_eq!(types.types().collect::<Vec<_>>(), [rtype::TXT, rtype::SRV]);
    assert!(types.contains(rtype::SRV) && !types.contains(rtype::A));
    let RData::Nsec { types, .. } = packet.additionals().next().unwrap().rdata else {
        panic!()
    };
    assert_eq!(
        types.types().collect::<Vec<_>>(),
        [rtype::A, rtype::AAAA, 0x0102]
    );
}

#[test]
fn rdata_compares_uncompressed_and_orders_for_tiebreaks() {
    // The same SRV, its target compressed in one packet and not in the other.
    let write = |compress: bool, port: u16| {
        let host = Name::new("host.local").unwrap();
        let mut buf = [0; 128];
        let mut w = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
        if compress {
            w.answer(&RecordOut::new(host, true, 120, RecordData::A(HOST_V4)))
                .unwrap();
        }
        let srv = RecordData::Srv {
            priority: 0,
            weight: 0,
            port,
            target: host.into(),
        };
        w.answer(&RecordOut::new(
            Name::new("x.local").unwrap(),
            true,
            120,
            srv,
        ))
        .unwrap();
        w.finish().to_vec()
    };
    let (a, b, c) = (write(true, 80), write(false, 80), write(false, 81));
    let srv = |bytes: &[u8]| -> Vec<u8> {
        let packet = Packet::parse(bytes).unwrap();
        let record = packet.answers().last().unwrap();
        record.rdata_bytes().collect()
    };
    assert!(a.len() > b.len() - 6, "compressed");
    assert_eq!(srv(&a), srv(&b));
    assert_eq!(
        srv(&b),
        hex_bytes("0000 0000 0050 04686f7374 056c6f63616c 00")
    );
    let (pa, pc) = (Packet::parse(&a).unwrap(), Packet::parse(&c).unwrap());
    let (ra, rc) = (pa.answers().last().unwrap(), pc.answers().last().unwrap());
    assert_eq!(ra.cmp_for_tiebreak(&rc), Ordering::Less, "port 80 < 81");
    assert_eq!(ra.cmp_for_tiebreak(&ra), Ordering::Equal);
    let a_record = pa.answers().next().unwrap();
    assert_eq!(
        a_record.cmp_for_tiebreak(&ra),
        Ordering::Less,
        "type A < SRV"
    );
    assert_eq!(
        ra.rdata,
        Packet::parse(&b).unwrap().answers().next().unwrap().rdata
    );
}

#[test]
fn the_writer_refuses_misuse() {
    let mut buf = [0; 512];
    let mut w = Writer::new(&mut buf, 0, 0).unwrap();
    let name = Name::new("a.local").unwrap();
    assert_eq!(
        w.question(name, 1, 0x8001, false),
        Err(WriteError::InvalidField)
    );
    let record = RecordOut::new(name, false, 1, RecordData::A(HOST_V4));
    let mismatched = RecordOut {
        rtype: rtype::AAAA,
        ..record
    };
    assert_eq!(w.answer(&mismatched), Err(WriteError::InvalidField));
    w.additional(&record).unwrap();
    assert_eq!(w.answer(&record), Err(WriteError::OutOfOrder));
    assert_eq!(w.question(name, 1, 1, false), Err(WriteError::OutOfOrder));
    let long = crate::mdns::TxtEntry {
        key: "md",
        value: heapless::String::try_from("x".repeat(64).as_str()).unwrap(),
    };
    let many = [long.clone(), long.clone(), long.clone(), long];
    let txt = RecordOut::new(name, false, 1, RecordData::TxtEntries(&many));
    assert!(w.additional(&txt).is_ok(), "strings of 67 bytes");
    // An empty TXT record is one empty string (RFC 6763 §6.1).
    let empty = RecordOut::new(name, false, 1, RecordData::TxtEntries(&[]));
    w.additional(&empty).unwrap();
    w.set_flags(Header::QUERY | Header::TC);
    let bytes = w.finish().to_vec();
    let packet = Packet::parse(&bytes).unwrap();
    assert!(packet.header().is_truncated());
    assert_eq!(packet.additionals().count(), 3);
    let RData::Txt(txt) = packet.additionals().nth(2).unwrap().rdata else {
        panic!()
    };
    assert_eq!((txt.as_bytes(), txt.strings().count()), (&[0u8][..], 1));
    assert_eq!(
        ParseError::Pointer.to_string(),
        "DNS compression pointer not backwards or chained too long"
    );
    assert_eq!(WriteError::Full.to_string(), "DNS message buffer full");
}

/// A name for the property tests: an instance label, maybe, over a few domain labels
/// shared between names, so compression has work to do.
fn name_strategy() -> impl Strategy<Value = (Option<String>, String)> {
    let instance = prop_oneof![
        Just(None),
        "[ -~]{1,63}".prop_map(Some),
        "[a-zA-Zé.]{1,20}".prop_map(|s| Some(s).filter(|s| s.len() <= 63)),
    ];
    let domain =
        proptest::collection::vec(prop_oneof!["_hap", "_tcp", "local", "[a-z0-9-]{1,8}"], 0..4)
            .prop_map(|labels| labels.join("."));
    (instance, domain)
}

#[derive(Clone, Debug)]
enum Data {
    A(u32),
    Aaaa(u128),
    Ptr((Option<String>, String)),
    Srv(u16, u16, u16, (Option<String>, String)),
    Txt(Vec<Vec<u8>>),
    Nsec((Option<String>, String), Vec<u16>),
    Other(u16, Vec<u8>),
}

fn data_strategy() -> impl Strategy<Value = Data> {
    prop_oneof![
        any::<u32>().prop_map(Data::A),
        any::<u128>().prop_map(Data::Aaaa),
        name_strategy().prop_map(Data::Ptr),
        (any::<u16>(), any::<u16>(), any::<u16>(), name_strategy())
            .prop_map(|(p, w, port, n)| Data::Srv(p, w, port, n)),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..5)
            .prop_map(Data::Txt),
        (
            name_strategy(),
            proptest::collection::vec(any::<u16>(), 0..6)
        )
            .prop_map(|(n, t)| Data::Nsec(n, t)),
        (
            prop_oneof![Just(13u16), Just(99), Just(0xFF00)],
            proptest::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(|(t, b)| Data::Other(t, b)),
    ]
}

fn as_name((instance, domain): &(Option<String>, String)) -> Name<'_> {
    match instance {
        Some(instance) => Name::with_instance(instance, domain),
        None => Name::new(domain),
    }
    .unwrap()
}

fn rtype_of(data: &Data) -> u16 {
    match data {
        Data::A(_) => rtype::A,
        Data::Aaaa(_) => rtype::AAAA,
        Data::Ptr(_) => rtype::PTR,
        Data::Srv(..) => rtype::SRV,
        Data::Txt(_) => rtype::TXT,
        Data::Nsec(..) => rtype::NSEC,
        Data::Other(t, _) => *t,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writer_reader_round_trip(
        id in any::<u16>(),
        questions in proptest::collection::vec((name_strategy(), any::<u16>(), 0u16..0x8000, any::<bool>()), 0..4),
        records in proptest::collection::vec(
            (1usize..4, name_strategy(), 0u16..0x8000, any::<bool>(), any::<u32>(), data_strategy()),
            0..8,
        ),
    ) {
        let mut records = records;
        records.sort_by_key(|r| r.0);
        let mut buf = vec![0; 8192];
        let mut w = Writer::new(&mut buf, id, Header::RESPONSE).unwrap();
        for (name, qtype, qclass, qu) in &questions {
            w.question(as_name(name), *qtype, *qclass, *qu).unwrap();
        }
        let mut txt_wire = Vec::new();
        for (_, _, _, _, _, data) in &records {
            let mut wire = Vec::new();
            if let Data::Txt(strings) = data {
                for s in strings {
                    wire.push(s.len() as u8);
                    wire.extend(s);
                }
            }
            txt_wire.push(wire);
        }
        for ((section, name, class, flush, ttl, data), wire) in records.iter().zip(&txt_wire) {
            let out = match data {
                Data::A(a) => RecordData::A(Ipv4Addr::from(*a)),
                Data::Aaaa(a) => RecordData::Aaaa(Ipv6Addr::from(*a)),
                Data::Ptr(n) => RecordData::Ptr(as_name(n).into()),
                Data::Srv(priority, weight, port, n) => RecordData::Srv {
                    priority: *priority, weight: *weight, port: *port, target: as_name(n).into(),
                },
                Data::Txt(_) => RecordData::Raw(wire),
                Data::Nsec(n, types) => RecordData::Nsec { next: as_name(n).into(), types },
                Data::Other(_, bytes) => RecordData::Raw(bytes),
            };
            let mut record = RecordOut::new(as_name(name), *flush, *ttl, out);
            record.rtype = rtype_of(data);
            record.class = *class;
            match section {
                1 => w.answer(&record),
                2 => w.authority(&record),
                _ => w.additional(&record),
            }.unwrap();
        }
        let len = w.finish().len();
        let packet = Packet::parse(&buf[..len]).unwrap();
        prop_assert_eq!(packet.header().id, id);
        prop_assert_eq!(packet.questions().count(), questions.len());
        for (q, (name, qtype, qclass, qu)) in packet.questions().zip(&questions) {
            prop_assert!(q.name.labels().eq(as_name(name).labels()));
            prop_assert_eq!((q.qtype, q.qclass, q.unicast_response), (*qtype, *qclass, *qu));
        }
        prop_assert_eq!(packet.records().count(), records.len());
        for (r, (_, name, class, flush, ttl, data)) in packet.records().zip(&records) {
            prop_assert!(r.name.labels().eq(as_name(name).labels()));
            prop_assert_eq!((r.rtype, r.class, r.cache_flush, r.ttl), (rtype_of(data), *class, *flush, *ttl));
            let same = match (data, r.rdata) {
                (Data::A(a), RData::A(b)) => Ipv4Addr::from(*a) == b,
                (Data::Aaaa(a), RData::Aaaa(b)) => Ipv6Addr::from(*a) == b,
                (Data::Ptr(n), RData::Ptr(b)) => b.labels().eq(as_name(n).labels()),
                (Data::Srv(p, w, port, n), RData::Srv { priority, weight, port: bp, target }) =>
                    (*p, *w, *port) == (priority, weight, bp) && target.labels().eq(as_name(n).labels()),
                (Data::Txt(strings), RData::Txt(txt)) => txt.strings().eq(strings.iter().map(|s| &s[..])),
                (Data::Nsec(n, types), RData::Nsec { next, types: bitmap }) => {
                    let mut sorted = types.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    next.labels().eq(as_name(n).labels()) && bitmap.types().eq(sorted)
                }
                (Data::Other(_, bytes), RData::Other(b)) => bytes[..] == *b,
                _ => false,
            };
            prop_assert!(same, "{:?} became {:?}", data, r.rdata);
        }
        // Written again from what was parsed, it parses to the same.
        let mut again = vec![0; 8192];
        let mut w = Writer::new(&mut again, id, Header::RESPONSE).unwrap();
        for q in packet.questions() {
            w.question(q.name, q.qtype, q.qclass, q.unicast_response).unwrap();
        }
        for r in packet.answers() { w.answer(&RecordOut::from(&r)).unwrap(); }
        for r in packet.authorities() { w.authority(&RecordOut::from(&r)).unwrap(); }
        for r in packet.additionals() { w.additional(&RecordOut::from(&r)).unwrap(); }
        let again_len = w.finish().len();
        prop_assert_eq!(&again[..again_len], &buf[..len]);
    }

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(packet) = Packet::parse(&bytes) {
            for q in packet.questions() {
                let _ = q.name.labels().count();
            }
            for r in packet.records() {
                let _ = r.rdata_bytes().count();
            }
        }
    }

    #[test]
    fn parser_never_panics_on_mutated_answers(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..6)) {
        let mut bytes = hap_answer_bytes();
        for (at, value) in flips {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        if let Ok(packet) = Packet::parse(&bytes) {
            prop_assert!(packet.records().all(|r| r.rdata_bytes().count() <= 65535));
        }
    }
}
