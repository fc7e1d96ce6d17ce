//! TLV8 values from 1 KiB up to [`BYTES_CAPACITY`], as Adaptive Lighting and cameras
//! send them: written, read, listed in `/accessories` and told in events, at the
//! buffers the host adapters give a connection.

use base64::Engine as _;

use super::*;
use crate::database::BYTES_CAPACITY;
use crate::server::EVENT_OUTPUT_LEN;

/// A vendor TLV8 characteristic with HAP's default `maxDataLen` (2 MiB).
const LONG_TLV8: CharacteristicType = vendor("LongTlv8", 0x08, Format::Tlv8);

/// A light with a long TLV8 characteristic beside it; returns the database and the
/// iids of the light's On and of the TLV8 characteristic.
fn light_with_tlv8() -> (Database<'static>, u64, u64) {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "gadget",
        &AccessoryInfo::new("Gadget", "Acme", "G1", "7", "1.0"),
    );
    let on = builder.service(&s::LIGHTBULB).iid_of(&c::ON).unwrap();
    let tlv8 = builder
        .service(&VENDOR)
        .characteristic(&LONG_TLV8)
        .iid_of(&LONG_TLV8)
        .unwrap();
    (builder.build().unwrap(), on, tlv8)
}

/// A connection's buffers as the host adapters size them (`hap_std::host::
/// connection_buffers` at the default request limit of 8 KiB).
fn host_buffers() -> Buffers {
    Buffers(OwnedBuffers::new(
        8192 + MIN_SCRATCH_LEN,
        MIN_SCRATCH_LEN,
        EVENT_OUTPUT_LEN,
        256,
    ))
}

/// TLV8 of `len` bytes: records of up to 255 bytes, as long values are split.
fn tlv8_of(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        let record = (len - bytes.len() - 2).min(255);
        bytes.extend_from_slice(&[1, record as u8]);
        bytes.extend((0..record).map(|n| seed.wrapping_add(n as u8)));
    }
    bytes
}

fn base64(bytes: &[u8]) -> String {
    let mut text = vec![0u8; bytes.len().div_ceil(3) * 4];
    let len = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut text)
        .unwrap();
    text.truncate(len);
    String::from_utf8(text).unwrap()
}

/// The characteristic `iid` of accessory 1 in an `/accessories` document.
fn listed(document: &Json, iid: u64) -> Json {
    document["accessories"][0]["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|service| service["characteristics"].as_array().unwrap())
        .find(|c| c["iid"] == iid)
        .unwrap()
        .clone()
}

/// Writes `bytes` to the TLV8 characteristic from controller 0, with controller 1
/// subscribed, and checks every way the value goes out again.
fn round_trip(bytes: &[u8], how: Feed) {
    let (database, _, tlv8) = light_with_tlv8();
    let mut storage: Vec<Buffers> = (0..2).map(|_| host_buffers()).collect();
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let (replies, _) = home.send(
        1,
        &mut conns[1],
        &write(json!([{"aid":1,"iid":tlv8,"ev":true}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 204);

    let encoded = base64(bytes);
    let request = write(json!([{"aid":1,"iid":tlv8,"value":encoded}]));
    let (replies, events) = home.send(0, &mut conns[0], &request, how);
    assert_eq!(replies[0].status, 204, "{:?}", replies[0]);
    let stored = OwnedValue::tlv8(bytes).unwrap();
    assert!(matches!(&events[..], [Event::Write { value, .. }] if *value == stored));
    assert_eq!(home.value((1, tlv8)), stored);

    let query = std::format!("/characteristics?id=1.{tlv8}");
    let (replies, _) = home.send(0, &mut conns[0], &get(&query), Feed::Whole);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":tlv8,"value":encoded}]})
    );
    let (replies, _) = home.send(0, &mut conns[0], &get("/accessories"), Feed::Whole);
    assert_eq!(listed(&replies[0].json(), tlv8)["value"], json!(encoded));

    let (messages, _) = home.poll(1, &mut conns[1]);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].event);
    assert_eq!(
        messages[0].json(),
        json!({"characteristics":[{"aid":1,"iid":tlv8,"value":encoded}]})
    );
}

#[test]
fn tlv8_value_of_1_kib_round_trips() {
    round_trip(&tlv8_of(1024, 3), Feed::Whole);
}

#[test]
fn tlv8_value_at_capacity_round_trips_however_the_write_arrives() {
    for how in [Feed::Whole, Feed::Random(5)] {
        round_trip(&tlv8_of(BYTES_CAPACITY, 9), how);
    }
}

#[test]
fn value_at_capacity_is_accepted_and_one_over_is_refused() {
    let (database, _, tlv8) = light_with_tlv8();
    let mut storage = vec![host_buffers()];
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let at = tlv8_of(BYTES_CAPACITY, 1);
    let over = tlv8_of(BYTES_CAPACITY + 1, 1);
    let far_over = tlv8_of(BYTES_CAPACITY + 300, 1);

    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":tlv8,"value":base64(&at)}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 204);
    for bytes in [&over, &far_over] {
        let (replies, events) = home.send(
            0,
            &mut conns[0],
            &write(json!([{"aid":1,"iid":tlv8,"value":base64(bytes)}])),
            Feed::Whole,
        );
        assert_eq!(replies[0].status, 207);
        assert_eq!(
            replies[0].json(),
            json!({"characteristics":[{"aid":1,"iid":tlv8,"status":-70410}]}),
            "{} bytes",
            bytes.len()
        );
        assert!(events.is_empty());
    }
    assert_eq!(home.value((1, tlv8)), OwnedValue::tlv8(&at).unwrap());
    // The application is held to the same capacity.
    assert_eq!(OwnedValue::tlv8(&over), None);
    assert_eq!(OwnedValue::data(&over), None);
}

#[test]
fn a_long_value_is_read_in_chunks_through_the_smallest_output() {
    let (database, on, tlv8) = light_with_tlv8();
    let mut storage = vec![Buffers::sized(MIN_OUTPUT_LEN, 8)];
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let bytes = tlv8_of(BYTES_CAPACITY, 4);
    home.set((1, tlv8), OwnedValue::tlv8(&bytes).unwrap());

    let query = std::format!("/characteristics?id=1.{on},1.{tlv8}&meta=1&perms=1&type=1");
    for how in [Feed::Whole, Feed::ByteByByte] {
        let (replies, _) = home.send(0, &mut conns[0], &get(&query), how);
        assert_eq!(replies.len(), 1);
        let items = replies[0].json()["characteristics"].clone();
        assert_eq!(items[0]["value"], false);
        assert_eq!(items[1]["value"], json!(base64(&bytes)));
        assert_eq!(items[1]["format"], "tlv8");
    }
    let (replies, _) = home.send(0, &mut conns[0], &get("/accessories"), Feed::Whole);
    assert!(replies[0].chunked);
    assert_eq!(
        listed(&replies[0].json(), tlv8)["value"],
        json!(base64(&bytes))
    );
}

#[test]
fn a_long_value_goes_out_in_an_event_of_its_own_beside_the_others() {
    let (database, on, tlv8) = light_with_tlv8();
    let mut storage: Vec<Buffers> = (0..2).map(|_| host_buffers()).collect();
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let subscribe = write(json!([{"aid":1,"iid":on,"ev":true},{"aid":1,"iid":tlv8,"ev":true}]));
    home.send(1, &mut conns[1], &subscribe, Feed::Whole);

    let bytes = tlv8_of(BYTES_CAPACITY, 6);
    home.set((1, tlv8), OwnedValue::tlv8(&bytes).unwrap());
    home.set((1, on), OwnedValue::Bool(true));
    let (messages, _) = home.poll(1, &mut conns[1]);
    assert!(messages.iter().all(|m| m.event));
    let mut events: Vec<Json> = messages.iter().map(|m| m.json()).collect();
    events.sort_by_key(|event| event["characteristics"][0]["iid"].as_u64());
    let expected = [
        json!({"characteristics":[{"aid":1,"iid":on,"value":true}]}),
        json!({"characteristics":[{"aid":1,"iid":tlv8,"value":base64(&bytes)}]}),
    ];
    // Not assert_eq: the long value would flood the output.
    assert!(events == expected, "two events, one for each change");
}

#[test]
fn an_event_too_long_for_the_output_buffer_is_left_untold_and_the_others_go_out() {
    let (database, on, tlv8) = light_with_tlv8();
    let mut storage = vec![Buffers::new(), Buffers::sized(MIN_OUTPUT_LEN, 8)];
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let subscribe = write(json!([{"aid":1,"iid":tlv8,"ev":true},{"aid":1,"iid":on,"ev":true}]));
    home.send(1, &mut conns[1], &subscribe, Feed::Whole);

    // About 1.3 KiB is the most a minimal output buffer carries in an event.
    let short = tlv8_of(1024, 2);
    home.set((1, tlv8), OwnedValue::tlv8(&short).unwrap());
    let (messages, _) = home.poll(1, &mut conns[1]);
    assert_eq!(
        messages[0].json(),
        json!({"characteristics":[{"aid":1,"iid":tlv8,"value":base64(&short)}]})
    );

    home.advance(2000);
    home.set(
        (1, tlv8),
        OwnedValue::tlv8(&tlv8_of(BYTES_CAPACITY, 2)).unwrap(),
    );
    home.set((1, on), OwnedValue::Bool(true));
    let outcome = drain(
        &mut home.harness.server,
        &mut conns[1],
        home.harness.now,
        &mut home.harness.rng,
        &mut home.harness.stored,
    );
    assert!(!outcome.closed);
    let messages = super::messages(&home.controllers[1].unwrap(&outcome.transmitted));
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].json(),
        json!({"characteristics":[{"aid":1,"iid":on,"value":true}]})
    );
    // The connection goes on: later changes are told, and reads see the long value.
    home.advance(2000);
    home.set((1, on), OwnedValue::Bool(false));
    let (messages, _) = home.poll(1, &mut conns[1]);
    assert_eq!(
        messages[0].json(),
        json!({"characteristics":[{"aid":1,"iid":on,"value":false}]})
    );
    let query = std::format!("/characteristics?id=1.{tlv8}");
    let (replies, _) = home.send(1, &mut conns[1], &get(&query), Feed::Whole);
    assert_eq!(
        replies[0].json()["characteristics"][0]["value"],
        json!(base64(&tlv8_of(BYTES_CAPACITY, 2)))
    );
}

#[test]
fn a_long_value_changed_while_it_is_half_sent_closes_the_connection() {
    let (database, _, tlv8) = light_with_tlv8();
    let mut storage = vec![Buffers::sized(MIN_OUTPUT_LEN, 8)];
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    home.set(
        (1, tlv8),
        OwnedValue::tlv8(&tlv8_of(BYTES_CAPACITY, 1)).unwrap(),
    );

    let query = std::format!("/characteristics?id=1.{tlv8}");
    let wire = home.controllers[0].wrap(&get(&query));
    let now = home.harness.now;
    let server = &mut home.harness.server;
    server.handle_input(&mut conns[0], now, &wire, &mut home.harness.rng);
    // The head and the opening of the body, then the first part of the item.
    for _ in 0..2 {
        let output = server.poll_output(&mut conns[0], now, &mut home.harness.rng);
        assert!(matches!(output, Some(Output::Transmit(_))));
    }
    // Same length, other bytes: the parts already sent no longer fit the rest.
    let other = OwnedValue::tlv8(&tlv8_of(BYTES_CAPACITY, 2)).unwrap();
    server.set_value(1, tlv8, other).unwrap();
    let mut closed = false;
    while let Some(output) = server.poll_output(&mut conns[0], now, &mut home.harness.rng) {
        closed |= matches!(output, Output::Close);
    }
    assert!(closed);
    assert_eq!(conns[0].close_reason(), Some(CloseReason::Resources));
}
