//! Sessions as a real home runs them, on the virtual clock: a person who types the setup
//! code slowly, iPhones that vanish without closing their connections, a hub that keeps
//! one connection for days, events that never land inside a request, and a bridge whose
//! controller subscribes to everything in one PUT.

use std::format;
use std::string::String;
use std::vec::Vec;

use super::*;
use crate::catalog::{characteristic as c, service as s};
use crate::database::builder::{AccessoryInfo, DatabaseBuilder};

const FEEDS: [Feed; 3] = [Feed::Whole, Feed::ByteByByte, Feed::Random(7)];

fn at(seconds: u64) -> Instant {
    Instant::from_millis(seconds * 1000)
}

fn subscribe_to_on() -> Vec<u8> {
    put_json(r#"{"characteristics":[{"aid":1,"iid":9,"ev":true}]}"#)
}

fn put_json(body: &str) -> Vec<u8> {
    let mut request = format!(
        "PUT /characteristics HTTP/1.1\r\nHost: light.local\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

/// A server for [`light`] with `max_connections`.
fn harness_with(max_connections: usize) -> Harness {
    let mut harness = Harness::new();
    harness.server = Server::new(
        harness.server.state().clone(),
        light(),
        Config {
            max_connections,
            ..Config::default()
        },
    );
    harness
}

/// A connection accepted by the harness's server at its current time, counted for
/// eviction.
fn accept<'b>(harness: &mut Harness, buffers: &'b mut Buffers, id: u32) -> Connection<'b> {
    harness
        .server
        .accept(ConnectionId(id), buffers.0.borrow(), harness.now)
        .unwrap()
}

/// Pairs and verifies the owner on `conn`, subscribed to the light's On.
fn subscribed_owner(harness: &mut Harness, conn: &mut Connection<'_>) -> Controller {
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(conn, &mut owner, Feed::Whole);
    harness.verify(conn, &mut owner, &pairing, Feed::Whole);
    let (replies, _) = harness.exchange(conn, &mut owner, &subscribe_to_on(), Feed::Whole);
    assert_eq!(replies[0].0, 204);
    owner
}

/// Drains `conn` at the harness's time and returns the plaintext the server sent.
fn drained(
    harness: &mut Harness,
    conn: &mut Connection<'_>,
    controller: &mut Controller,
) -> Vec<u8> {
    let outcome = drain(
        &mut harness.server,
        conn,
        harness.now,
        &mut harness.rng,
        &mut harness.stored,
    );
    controller.unwrap(&outcome.transmitted)
}

/// Item 1: iOS sends M1 and only then asks its user for the code. HomeKitADK
/// (`HAPPairingPairSetup.c`) has no inactivity timer, so neither do we: M3 45 s or 90 s
/// after M2 pairs, and the unverified connection is not closed meanwhile.
#[test]
fn a_slow_person_pairs_with_m3_45_s_and_90_s_after_m2() {
    for delay in [45, 90] {
        for how in FEEDS {
            let mut harness = Harness::new();
            let mut buffers = Buffers::new();
            let mut conn = accept(&mut harness, &mut buffers, 1);
            let mut owner = Controller::new("owner", 7);
            let pairing = harness.pair_pausing(&mut conn, &mut owner, how, |harness, conn| {
                if harness.now != at(0) {
                    return;
                }
                // M2 is in; the person now looks for the code.
                assert_eq!(harness.server.poll_timeout(conn), None, "no timer runs");
                harness.now = at(delay);
                harness.server.handle_timeout(conn, harness.now);
                let idle = drain(
                    &mut harness.server,
                    conn,
                    harness.now,
                    &mut harness.rng,
                    &mut harness.stored,
                );
                assert_eq!(idle, Outcome::default(), "nothing happens while they type");
            });
            assert!(harness.server.state().is_paired(), "{delay} s, {how:?}");
            harness.verify(&mut conn, &mut owner, &pairing, how);
        }
    }
}

/// Item 1: an abandoned attempt does not lock others out for ever, nor does a new M1 cut
/// off a person still typing: another controller takes over only once the attempt is
/// 30 s old (HomeKitADK, `HAPPairingPairSetup.c`).
#[test]
fn another_controller_takes_over_an_attempt_only_once_it_is_30_s_old() {
    let mut harness = Harness::new();
    let (mut first_buffers, mut second_buffers) = (Buffers::new(), Buffers::new());
    let mut first = first_buffers.connection(1);
    let mut second = second_buffers.connection(2);
    let m1 = pair_setup_m1();
    let mut someone = Controller::new("someone", 1);
    let (replies, _) = harness.exchange(&mut first, &mut someone, &m1, Feed::Whole);
    assert_eq!(replies[0].0, 200);
    harness.now = at(29);
    let (replies, _) = harness.exchange(&mut second, &mut someone, &m1, Feed::Whole);
    let busy = crate::tlv::Tlv::parse(&replies[0].1).unwrap();
    assert_eq!(
        busy.get_u8(0x07),
        Some(7),
        "Busy while the attempt is under 30 s"
    );
    harness.now = at(30);
    let (replies, _) = harness.exchange(&mut second, &mut someone, &m1, Feed::Whole);
    let m2 = crate::tlv::Tlv::parse(&replies[0].1).unwrap();
    assert_eq!(m2.get_u8(0x07), None);
    assert!(m2.get(0x03).is_some(), "M2 carries B");
}

/// Item 2: idle connections are never closed while there is room, however long they
/// stay idle, and an idle verified one still gets events. A Home hub keeps one
/// connection open for days.
#[test]
fn idle_sessions_are_kept_while_slots_are_free() {
    let mut harness = harness_with(3);
    let (mut hub_buffers, mut quiet_buffers) = (Buffers::new(), Buffers::new());
    let mut hub = accept(&mut harness, &mut hub_buffers, 1);
    let mut quiet = accept(&mut harness, &mut quiet_buffers, 2);
    let mut owner = subscribed_owner(&mut harness, &mut hub);
    // Three days later.
    harness.now = at(3 * 24 * 3600);
    assert_eq!(harness.server.poll_timeout(&hub), None);
    assert_eq!(harness.server.poll_timeout(&quiet), None);
    assert_eq!(harness.server.make_room(harness.now), None, "there is room");
    for conn in [&mut hub, &mut quiet] {
        harness.server.handle_timeout(conn, harness.now);
        let outcome = drain(
            &mut harness.server,
            conn,
            harness.now,
            &mut harness.rng,
            &mut harness.stored,
        );
        assert!(!outcome.closed);
    }
    assert_eq!(harness.server.connection_count(), 2);
    harness
        .server
        .set_value(1, 9, crate::database::OwnedValue::Bool(true))
        .unwrap();
    let event = drained(&mut harness, &mut hub, &mut owner);
    assert!(event.starts_with(b"EVENT/1.0 200 OK\r\n"), "{event:?}");
}

/// Item 2: with every slot taken, a new connection evicts the one idle longest, once it
/// has been idle 60 s (HomeKitADK, `HAPIPAccessoryServer.c`); unverified ones go first.
#[test]
fn eviction_only_when_slots_are_full_and_unverified_first() {
    let mut harness = harness_with(3);
    let mut buffers: Vec<Buffers> = (0..4).map(|_| Buffers::new()).collect();
    let mut slots = buffers.iter_mut();
    let mut verified_old = harness
        .server
        .accept(ConnectionId(1), slots.next().unwrap().0.borrow(), at(0))
        .unwrap();
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(&mut verified_old, &mut owner, Feed::Whole);
    harness.verify(&mut verified_old, &mut owner, &pairing, Feed::Whole);
    harness.now = at(10);
    let mut unverified = harness
        .server
        .accept(
            ConnectionId(2),
            slots.next().unwrap().0.borrow(),
            harness.now,
        )
        .unwrap();
    assert_eq!(harness.server.make_room(at(500)), None, "a slot is free");
    let mut third = harness
        .server
        .accept(
            ConnectionId(3),
            slots.next().unwrap().0.borrow(),
            harness.now,
        )
        .unwrap();
    let fourth = slots.next().unwrap();

    // Full, but nobody has been idle for 60 s: the newcomer is refused.
    harness.now = at(59);
    assert_eq!(harness.server.make_room(harness.now), None);
    assert!(!harness.server.has_room());
    assert!(matches!(
        harness
            .server
            .accept(ConnectionId(4), fourth.0.borrow(), harness.now),
        Err(AcceptError::TooManyConnections)
    ));

    // 3 speaks at 65 s. At 75 s, 1 (verified) has been idle 75 s and 2 (unverified)
    // 65 s: the unverified one goes first.
    let mut stranger = Controller::new("stranger", 9);
    harness.now = at(65);
    let (replies, _) =
        harness.exchange(&mut third, &mut stranger, &get("/accessories"), Feed::Whole);
    assert_eq!(replies[0].0, 470);
    harness.now = at(75);
    assert_eq!(harness.server.make_room(harness.now), Some(ConnectionId(2)));
    assert!(
        harness.server.has_room(),
        "the evicted one no longer counts"
    );
    let mut fourth = harness
        .server
        .accept(ConnectionId(4), fourth.0.borrow(), harness.now)
        .expect("the evicted one no longer counts");
    let outcome = drain(
        &mut harness.server,
        &mut unverified,
        harness.now,
        &mut harness.rng,
        &mut harness.stored,
    );
    assert!(outcome.closed && outcome.transmitted.is_empty());
    assert_eq!(unverified.close_reason(), Some(CloseReason::Evicted));
    assert_eq!(harness.server.connection_count(), 3);

    // Again full: 3 (unverified, idle 61 s) goes before 1 (verified, idle 126 s).
    harness.now = at(126);
    let (replies, _) = harness.exchange(&mut fourth, &mut stranger, &get("/x"), Feed::Whole);
    assert_eq!(replies[0].0, 404);
    assert_eq!(
        harness.server.make_room(harness.now),
        Some(ConnectionId(3)),
        "3 has been idle 61 s, and is unverified"
    );
    assert_eq!(
        harness.server.make_room(harness.now),
        None,
        "there is room now"
    );
    harness.server.handle_timeout(&mut third, harness.now);
    assert_eq!(
        harness
            .server
            .poll_output(&mut third, harness.now, &mut harness.rng),
        Some(Output::Close)
    );
    let mut fifth_buffers = Buffers::new();
    let _fifth = harness
        .server
        .accept(ConnectionId(5), fifth_buffers.0.borrow(), harness.now)
        .unwrap();

    // Full again, with no unverified connection idle: the verified one idle longest goes.
    assert_eq!(harness.server.make_room(harness.now), Some(ConnectionId(1)));
    harness
        .server
        .handle_timeout(&mut verified_old, harness.now);
    assert_eq!(
        harness
            .server
            .poll_output(&mut verified_old, harness.now, &mut harness.rng),
        Some(Output::Close)
    );
    assert_eq!(verified_old.close_reason(), Some(CloseReason::Evicted));
    assert_eq!(harness.server.connection_count(), 2);
    assert_eq!(
        harness.server.make_room(at(185)),
        None,
        "4 and 5 are busy, and 1 left room"
    );
}

/// Item 2: the idle clock restarts on every I/O, both ways: a controller that only
/// listens to events is not idle while events flow.
#[test]
fn the_idle_clock_restarts_on_every_byte_received_or_sent() {
    let mut harness = harness_with(1);
    let mut buffers = Buffers::new();
    let mut hub = accept(&mut harness, &mut buffers, 1);
    let mut owner = subscribed_owner(&mut harness, &mut hub);
    harness.now = at(50);
    harness
        .server
        .set_value(1, 9, crate::database::OwnedValue::Bool(true))
        .unwrap();
    assert!(drained(&mut harness, &mut hub, &mut owner).starts_with(b"EVENT/1.0"));
    assert_eq!(
        harness.server.make_room(at(109)),
        None,
        "an event went out at 50 s"
    );
    assert_eq!(harness.server.make_room(at(110)), Some(ConnectionId(1)));
}

/// Item 6: an EVENT never goes out while a request is half received, whether the
/// controller has sent part of a frame or a frame with part of the request. It follows
/// the response, at once.
#[test]
fn no_event_while_a_request_is_half_received() {
    let request = get("/characteristics?id=1.9");
    for split_in_frame in [false, true] {
        let mut harness = Harness::new();
        let mut buffers = Buffers::new();
        let mut conn = buffers.connection(1);
        let mut owner = subscribed_owner(&mut harness, &mut conn);

        // The first part of the request reaches the accessory.
        let rest = if split_in_frame {
            let wire = owner.wrap(&request);
            let taken =
                harness
                    .server
                    .handle_input(&mut conn, harness.now, &wire[..5], &mut harness.rng);
            assert_eq!(taken, 5);
            wire[5..].to_vec()
        } else {
            let first = owner.wrap(&request[..10]);
            let taken =
                harness
                    .server
                    .handle_input(&mut conn, harness.now, &first, &mut harness.rng);
            assert_eq!(taken, first.len());
            owner.wrap(&request[10..])
        };
        assert!(drained(&mut harness, &mut conn, &mut owner).is_empty());

        // The light changes meanwhile: no EVENT may interrupt the request.
        harness
            .server
            .set_value(1, 9, crate::database::OwnedValue::Bool(true))
            .unwrap();
        harness.now = at(5);
        assert!(
            drained(&mut harness, &mut conn, &mut owner).is_empty(),
            "split in frame: {split_in_frame}"
        );

        // The rest arrives: the response, then the event.
        let outcome = feed(
            &mut harness.server,
            &mut conn,
            harness.now,
            &rest,
            Feed::Whole,
            &mut harness.rng,
            &mut harness.stored,
        );
        let plain = owner.unwrap(&outcome.transmitted);
        let text = String::from_utf8(plain).unwrap();
        let event_at = text.find("EVENT/1.0").expect("the event follows");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(event_at > 0);
        assert!(text[event_at..].contains(r#""value":true"#));
    }
}

/// Item 6: a read on demand may wait seconds for the application; events wait with it.
#[test]
fn no_event_while_a_read_waits_for_the_application() {
    use crate::database::fixture::ids::{ON, TEMPERATURE};
    let mut harness = Harness::new();
    harness.server = Server::new(
        harness.server.state().clone(),
        crate::database::fixture::gadget(),
        Config::default(),
    );
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(&mut conn, &mut owner, Feed::Whole);
    harness.verify(&mut conn, &mut owner, &pairing, Feed::Whole);
    let subscribe = put_json(&format!(
        r#"{{"characteristics":[{{"aid":{},"iid":{},"ev":true}}]}}"#,
        ON.0, ON.1
    ));
    let (replies, _) = harness.exchange(&mut conn, &mut owner, &subscribe, Feed::Whole);
    assert_eq!(replies[0].0, 204);
    // An event goes out now, so the next change is coalesced: due 1 s later.
    harness
        .server
        .set_value(ON.0, ON.1, crate::database::OwnedValue::Bool(true))
        .unwrap();
    assert!(drained(&mut harness, &mut conn, &mut owner).starts_with(b"EVENT/1.0"));

    let (aid, iid) = TEMPERATURE;
    let wire = owner.wrap(&get(&format!("/characteristics?id={aid}.{iid}")));
    let outcome = feed(
        &mut harness.server,
        &mut conn,
        harness.now,
        &wire,
        Feed::Whole,
        &mut harness.rng,
        &mut harness.stored,
    );
    assert!(outcome.transmitted.is_empty());
    assert!(outcome
        .events
        .iter()
        .any(|e| matches!(e, Event::Read { aid: a, iid: i, .. } if (*a, *i) == (aid, iid))));
    harness
        .server
        .set_value(ON.0, ON.1, crate::database::OwnedValue::Bool(false))
        .unwrap();
    // The coalesced event is due at 1 s but waits for the read: the deadline is the
    // read's, not one in the past that would have the adapter spin.
    let read_deadline = Some(at(0) + Config::default().read_timeout);
    assert_eq!(harness.server.poll_timeout(&conn), read_deadline);
    harness.now = at(3);
    harness.server.handle_timeout(&mut conn, harness.now);
    assert!(drained(&mut harness, &mut conn, &mut owner).is_empty());
    assert_eq!(harness.server.poll_timeout(&conn), read_deadline);
    harness
        .server
        .set_value(aid, iid, crate::database::OwnedValue::Float(21.5))
        .unwrap();
    let text = String::from_utf8(drained(&mut harness, &mut conn, &mut owner)).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let event_at = text
        .find("EVENT/1.0")
        .expect("the event follows the response");
    assert!(text[event_at..].contains(r#""value":false"#), "{text}");
}

/// Blank lines between requests are ignored (RFC 9112 §2.2): left in the input they would
/// keep the connection from being idle, and its events from going out.
#[test]
fn a_stray_crlf_after_a_request_does_not_hold_events_back() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = subscribed_owner(&mut harness, &mut conn);
    let mut request = get("/characteristics?id=1.9");
    request.extend_from_slice(b"\r\n");
    let (replies, _) = harness.exchange(&mut conn, &mut owner, &request, Feed::Whole);
    assert_eq!(replies[0].0, 200);
    harness
        .server
        .set_value(1, 9, crate::database::OwnedValue::Bool(true))
        .unwrap();
    assert!(drained(&mut harness, &mut conn, &mut owner).starts_with(b"EVENT/1.0"));
    let (replies, _) = harness.exchange(&mut conn, &mut owner, &get("/x"), Feed::Whole);
    assert_eq!(
        replies,
        [(404, Vec::new())],
        "the next request is read as usual"
    );
}

/// Item 2, against a hostile host: unverified connections that trickle a byte now and
/// then cannot hold the slots for ever. Once open for `idle_eviction` they may be evicted
/// whatever they send, except the one running pair-setup, which goes last.
#[test]
fn trickling_unverified_connections_are_evicted_but_a_pairing_goes_last() {
    let mut harness = harness_with(2);
    let (mut a, mut b) = (Buffers::new(), Buffers::new());
    let mut pairing = accept(&mut harness, &mut a, 1);
    let mut trickler = accept(&mut harness, &mut b, 2);
    let m1 = pair_setup_m1();
    let mut person = Controller::new("person", 1);
    let (replies, _) = harness.exchange(&mut pairing, &mut person, &m1, Feed::Whole);
    assert_eq!(replies[0].0, 200, "M2");
    for second in (10..=120).step_by(10) {
        harness.now = at(second);
        let taken = harness
            .server
            .handle_input(&mut trickler, harness.now, b"G", &mut harness.rng);
        assert_eq!(taken, 1);
        if second == 50 {
            assert_eq!(harness.server.make_room(harness.now), None, "nobody yet");
        }
    }
    // 120 s in: the trickler has been open 120 s; the person, idle 120 s, types on.
    assert_eq!(harness.server.make_room(harness.now), Some(ConnectionId(2)));
    harness.server.handle_timeout(&mut trickler, harness.now);
    assert_eq!(
        harness
            .server
            .poll_output(&mut trickler, harness.now, &mut harness.rng),
        Some(Output::Close)
    );
    // Still full? No: one slot is free, and the person's attempt is intact.
    assert_eq!(harness.server.make_room(harness.now), None);
    assert!(harness.server.setup.is_busy());
}

/// `sf` must not stay 1 for ever after a pairing whose controller keeps its connection
/// open and silent: 10 s after the reply, it surely has it.
#[test]
fn a_pairing_change_is_reported_10_s_after_the_reply_at_the_latest() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    harness.pair(&mut conn, &mut owner, Feed::Whole);
    assert_eq!(harness.server.poll_event(), None);
    let due = at(10);
    assert_eq!(harness.server.poll_timeout(&conn), Some(due));
    harness.server.handle_timeout(&mut conn, at(9));
    assert_eq!(harness.server.poll_event(), None);
    harness.server.handle_timeout(&mut conn, due);
    assert_eq!(
        harness.server.poll_event(),
        Some(Event::PairingsChanged { paired: true })
    );
    assert_eq!(harness.server.poll_timeout(&conn), None);
}

/// Item 7: at the host adapters' defaults ([`Config::host`] and
/// [`OwnedBuffers::for_database`]), iOS subscribes to every evented characteristic of a
/// 150-accessory bridge in one PUT, and each item succeeds.
#[test]
fn a_full_bridge_subscribes_to_everything_in_one_put() {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "bridge",
        &AccessoryInfo::new("Bridge", "Acme", "B1", "1", "1.0"),
    );
    for light in 2..=150 {
        let name = format!("Light {light}");
        builder.accessory(&name, &AccessoryInfo::new(&name, "Acme", "L1", "1", "1.0"));
        builder
            .service(&s::LIGHTBULB)
            .primary()
            .characteristic(&c::BRIGHTNESS)
            .characteristic(&c::HUE)
            .characteristic(&c::SATURATION);
    }
    let database = builder.build().unwrap();
    let mut evented = Vec::new();
    let mut aid = 0;
    for entry in database.entries() {
        match entry {
            crate::database::Entry::Accessory(id) => aid = *id,
            crate::database::Entry::Characteristic(def)
                if def.perms.contains(crate::catalog::Perms::EVENTS) =>
            {
                evented.push((aid, def.iid))
            }
            _ => {}
        }
    }
    assert!(evented.len() >= 596, "{}", evented.len());
    let config = Config::host();
    let mut buffers = OwnedBuffers::for_database(&config, &database);
    let mut harness = Harness::new();
    harness.server = Server::new(harness.server.state().clone(), database, config);
    let mut conn = harness
        .server
        .accept(ConnectionId(1), buffers.borrow(), at(0))
        .unwrap();
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(&mut conn, &mut owner, Feed::Whole);
    harness.verify(&mut conn, &mut owner, &pairing, Feed::Whole);
    let items: Vec<String> = evented
        .iter()
        .map(|(aid, iid)| format!(r#"{{"aid":{aid},"iid":{iid},"ev":true}}"#))
        .collect();
    let request = put_json(&format!(r#"{{"characteristics":[{}]}}"#, items.join(",")));
    assert!(request.len() > 16 * 1024, "{} bytes", request.len());
    for how in [Feed::Whole, Feed::Random(3)] {
        let (replies, outcome) = harness.exchange(&mut conn, &mut owner, &request, how);
        assert!(!outcome.closed);
        assert_eq!(replies, [(204, Vec::new())], "{how:?}");
    }
    // The last light's hue changes: its subscriber hears it.
    let (aid, iid) = *evented.last().unwrap();
    harness
        .server
        .set_value(aid, iid, crate::database::OwnedValue::Float(50.0))
        .unwrap();
    let text = String::from_utf8(drained(&mut harness, &mut conn, &mut owner)).unwrap();
    assert!(text.starts_with("EVENT/1.0"), "{text}");
    assert!(
        text.contains(&format!(r#""aid":{aid},"iid":{iid}"#)),
        "{text}"
    );
}

/// Adaptive Lighting's colour temperature: set quietly at each step, told only when the
/// engine says, and then even if the stored value did not change.
#[test]
fn a_quiet_value_is_told_only_when_notified() {
    use crate::database::fixture::ids::ON;
    use crate::database::OwnedValue;
    let mut harness = Harness::new();
    harness.server = Server::new(
        harness.server.state().clone(),
        crate::database::fixture::gadget(),
        Config::default(),
    );
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new("owner", 7);
    let pairing = harness.pair(&mut conn, &mut owner, Feed::Whole);
    harness.verify(&mut conn, &mut owner, &pairing, Feed::Whole);
    let subscribe = put_json(&format!(
        r#"{{"characteristics":[{{"aid":{},"iid":{},"ev":true}}]}}"#,
        ON.0, ON.1
    ));
    let (replies, _) = harness.exchange(&mut conn, &mut owner, &subscribe, Feed::Whole);
    assert_eq!(replies[0].0, 204);
    let server = &mut harness.server;
    assert_eq!(
        server.set_value_quietly(ON.0, ON.1, OwnedValue::Bool(true)),
        Ok(true)
    );
    assert_eq!(
        server.database().get(ON.0, ON.1),
        Some(&OwnedValue::Bool(true))
    );
    assert!(drained(&mut harness, &mut conn, &mut owner).is_empty());
    // Setting the same value again is no change, so still no event: only notify tells.
    let server = &mut harness.server;
    assert_eq!(
        server.set_value(ON.0, ON.1, OwnedValue::Bool(true)),
        Ok(false)
    );
    assert!(drained(&mut harness, &mut conn, &mut owner).is_empty());
    harness.server.notify(ON.0, ON.1).unwrap();
    let event = drained(&mut harness, &mut conn, &mut owner);
    let text = String::from_utf8_lossy(&event);
    assert!(text.starts_with("EVENT/1.0"), "{text}");
    assert!(text.contains(r#""value":true"#), "{text}");
    assert_eq!(
        harness.server.notify(ON.0, 999),
        Err(crate::database::SetValueError::NotFound)
    );
    assert_eq!(
        harness
            .server
            .set_value_quietly(ON.0, 999, OwnedValue::Bool(true)),
        Err(crate::database::SetValueError::NotFound)
    );
}
