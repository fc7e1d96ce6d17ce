//! Writes the application confirms or fails, and reads on demand it completes.

use super::*;
use crate::database::fixture::{CONTROL_POINT, VAULT_DOOR};

/// The lamp's On and Brightness, and the fan's On, are confirmed; the lamp's Hue is not.
const LAMP_ON: (u64, u64) = (1, 9);
const LAMP_BRIGHTNESS: (u64, u64) = (1, 10);
const LAMP_HUE: (u64, u64) = (1, 11);
const LAMP_TEMPERATURE: (u64, u64) = (1, 13);
const LAMP_VAULT: (u64, u64) = (1, 15);
const LAMP_CONTROL: (u64, u64) = (1, 16);
const FAN_ON: (u64, u64) = (2, 9);

/// A lamp (accessory 1) and a second light (accessory 2) whose writes wait for the
/// application, with a temperature read on demand, a confirmed timed-write
/// characteristic and a confirmed control point.
fn confirmed() -> Database<'static> {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "1", "1.0"),
    );
    let bulb = builder
        .service(&s::LIGHTBULB)
        .primary()
        .configure(&c::ON, |d| d.confirmed())
        .configure(&c::BRIGHTNESS, |d| d.confirmed())
        .characteristic(&c::HUE);
    assert_eq!(bulb.iid_of(&c::ON), Some(LAMP_ON.1));
    assert_eq!(bulb.iid_of(&c::BRIGHTNESS), Some(LAMP_BRIGHTNESS.1));
    assert_eq!(bulb.iid_of(&c::HUE), Some(LAMP_HUE.1));
    let sensor = builder
        .service(&s::TEMPERATURE_SENSOR)
        .configure(&c::CURRENT_TEMPERATURE, |d| d.on_demand());
    assert_eq!(
        sensor.iid_of(&c::CURRENT_TEMPERATURE),
        Some(LAMP_TEMPERATURE.1)
    );
    let vendor = builder
        .service(&VENDOR)
        .configure(&VAULT_DOOR, |d| d.confirmed())
        .configure(&CONTROL_POINT, |d| d.confirmed());
    assert_eq!(vendor.iid_of(&VAULT_DOOR), Some(LAMP_VAULT.1));
    assert_eq!(vendor.iid_of(&CONTROL_POINT), Some(LAMP_CONTROL.1));
    builder.accessory("fan", &AccessoryInfo::new("Fan", "Acme", "F1", "2", "1.0"));
    let fan = builder
        .service(&s::LIGHTBULB)
        .primary()
        .configure(&c::ON, |d| d.confirmed());
    assert_eq!(fan.iid_of(&c::ON), Some(FAN_ON.1));
    builder.build().unwrap()
}

/// The tokens and items of the write requests among `events`.
fn write_requests(events: &[Event]) -> Vec<(Token, (u64, u64), OwnedValue, bool)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::WriteRequest {
                token,
                aid,
                iid,
                value,
                last,
                ..
            } => Some((*token, (*aid, *iid), value.clone(), *last)),
            _ => None,
        })
        .collect()
}

/// The token of the one read request among `events`.
fn read_token(events: &[Event]) -> Token {
    let tokens: Vec<Token> = events
        .iter()
        .filter_map(|event| match event {
            Event::Read { token, .. } => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{events:?}");
    tokens[0]
}

fn statuses(reply: &Message) -> Vec<i64> {
    reply.json()["characteristics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["status"].as_i64().unwrap())
        .collect()
}

fn subscribe(home: &mut Home, who: usize, conn: &mut Connection<'_>, (aid, iid): (u64, u64)) {
    let (replies, _) = home.send(
        who,
        conn,
        &write(json!([{"aid":aid,"iid":iid,"ev":true}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 204);
}

#[test]
fn a_confirmed_write_is_stored_and_told_to_others_only_when_completed() {
    for how in [Feed::Whole, Feed::ByteByByte, Feed::Random(3)] {
        let mut storage = buffers(2);
        let mut conns = connections(&mut storage);
        let mut home = Home::with(confirmed(), &mut conns, Config::default());
        subscribe(&mut home, 0, &mut conns[0], LAMP_ON);
        subscribe(&mut home, 1, &mut conns[1], LAMP_ON);

        let request = write(json!([{"aid":1,"iid":9,"value":true}]));
        let (replies, events) = home.send(0, &mut conns[0], &request, how);
        assert!(replies.is_empty(), "{how:?}: waits for the application");
        let requests = write_requests(&events);
        assert_eq!(events.len(), 1, "{how:?}: no Event::Write");
        let (token, ids, value, last) = requests[0].clone();
        assert_eq!((ids, value, last), (LAMP_ON, OwnedValue::Bool(true), true));
        assert_eq!(token.connection(), ConnectionId(1));
        assert_eq!(
            home.value(LAMP_ON),
            OwnedValue::Bool(false),
            "not stored yet"
        );
        assert!(
            home.poll(1, &mut conns[1]).0.is_empty(),
            "nothing to tell yet"
        );

        home.advance(100);
        home.harness.server.complete_write(token, Ok(())).unwrap();
        assert_eq!(home.value(LAMP_ON), OwnedValue::Bool(true));
        let (replies, _) = home.poll(0, &mut conns[0]);
        assert_eq!(replies.len(), 1, "{how:?}: the response, and no echo");
        assert_eq!((replies[0].event, replies[0].status), (false, 204));
        let (heard, _) = home.poll(1, &mut conns[1]);
        assert_eq!(heard.len(), 1);
        assert!(heard[0].event);
        assert_eq!(
            heard[0].json(),
            json!({"characteristics":[{"aid":1,"iid":9,"value":true}]})
        );
        assert_eq!(
            home.harness.server.complete_write(token, Ok(())),
            Err(CompleteError::UnknownToken),
            "a completed token is stale"
        );
    }
}

#[test]
fn a_failed_write_keeps_the_value_and_tells_nobody() {
    let mut storage = buffers(2);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    subscribe(&mut home, 1, &mut conns[1], LAMP_BRIGHTNESS);
    let request = write(json!([{"aid":1,"iid":10,"value":80}]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Random(5));
    assert!(replies.is_empty());
    let token = write_requests(&events)[0].0;

    assert_eq!(
        home.harness
            .server
            .complete_write(token, Err(HapStatus::Success)),
        Err(CompleteError::NotAFailure)
    );
    assert_eq!(
        home.harness
            .server
            .complete_read(token, Err(HapStatus::ServiceCommunicationFailure)),
        Err(CompleteError::WrongKind)
    );
    home.harness
        .server
        .complete_write(token, Err(HapStatus::ServiceCommunicationFailure))
        .unwrap();
    assert_eq!(
        home.harness.server.complete_write(token, Ok(())),
        Err(CompleteError::UnknownToken),
        "answered, even before the connection took the answer"
    );
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (
            207,
            json!({"characteristics":[{"aid":1,"iid":10,"status":-70402}]})
        )
    );
    assert_eq!(home.value(LAMP_BRIGHTNESS), OwnedValue::Int(0));
    home.advance(5000);
    assert!(home.poll(1, &mut conns[1]).0.is_empty(), "no event");
}

#[test]
fn an_unanswered_write_times_out_and_its_token_goes_stale() {
    let mut storage = buffers(2);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let start = home.harness.now;
    let request = write(json!([{"aid":1,"iid":9,"value":true}]));
    let (_, events) = home.send(0, &mut conns[0], &request, Feed::ByteByByte);
    let token = write_requests(&events)[0].0;
    let deadline = start + Config::default().read_timeout;
    assert_eq!(home.harness.server.poll_timeout(&conns[0]), Some(deadline));

    // Another controller is served meanwhile, reads and writes alike.
    let (replies, _) = home.send(
        1,
        &mut conns[1],
        &get("/characteristics?id=1.9"),
        Feed::Whole,
    );
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":9,"value":false}]})
    );
    let (replies, _) = home.send(
        1,
        &mut conns[1],
        &write(json!([{"aid":1,"iid":11,"value":90}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 204);

    home.harness.now = deadline;
    home.harness.server.handle_timeout(&mut conns[0], deadline);
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":9,"status":-70408}]})
    );
    assert_eq!(home.value(LAMP_ON), OwnedValue::Bool(false));
    assert_eq!(
        home.harness.server.complete_write(token, Ok(())),
        Err(CompleteError::UnknownToken)
    );
    assert_eq!(home.value(LAMP_ON), OwnedValue::Bool(false));
}

#[test]
fn a_put_reaches_the_application_in_one_batch_per_accessory() {
    for how in [Feed::Whole, Feed::ByteByByte, Feed::Random(9)] {
        let mut storage = buffers(1);
        let mut conns = connections(&mut storage);
        let mut home = Home::with(confirmed(), &mut conns, Config::default());
        let request = write(json!([
            {"aid":1,"iid":9,"value":true},
            {"aid":2,"iid":9,"value":true},
            {"aid":1,"iid":10,"value":55},
            {"aid":1,"iid":10,"value":500},
            {"aid":1,"iid":11,"value":120},
        ]));
        let (replies, events) = home.send(0, &mut conns[0], &request, how);
        assert!(replies.is_empty());
        let requests = write_requests(&events);
        assert_eq!(requests.len(), 3, "{how:?}: the invalid item never comes");
        let lamp = requests[0].0;
        let fan = requests[2].0;
        assert_ne!(lamp, fan);
        // A batch comes whole, one after another, reserved when its first item comes up.
        assert_eq!(
            requests,
            [
                (lamp, LAMP_ON, OwnedValue::Bool(true), false),
                (lamp, LAMP_BRIGHTNESS, OwnedValue::Int(55), true),
                (fan, FAN_ON, OwnedValue::Bool(true), true),
            ]
        );
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Write { aid: 1, iid: 11, value: OwnedValue::Float(v), .. } if *v == 120.0
            )),
            "{how:?}: the plain item is stored at once: {events:?}"
        );
        assert_eq!(home.value(LAMP_HUE), OwnedValue::Float(120.0));

        home.harness.server.complete_write(lamp, Ok(())).unwrap();
        let (replies, _) = home.poll(0, &mut conns[0]);
        assert!(replies.is_empty(), "{how:?}: the fan is still open");
        home.harness
            .server
            .complete_write(fan, Err(HapStatus::NotAllowedInCurrentState))
            .unwrap();
        let (replies, _) = home.poll(0, &mut conns[0]);
        assert_eq!(replies[0].status, 207);
        assert_eq!(statuses(&replies[0]), [0, -70412, 0, -70410, 0]);
        assert_eq!(home.value(LAMP_ON), OwnedValue::Bool(true));
        assert_eq!(home.value(LAMP_BRIGHTNESS), OwnedValue::Int(55));
        assert_eq!(home.value(FAN_ON), OwnedValue::Bool(false));
    }
}

#[test]
fn a_read_on_demand_is_completed_with_a_value_or_a_status_or_times_out() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let read = get("/characteristics?id=1.13,1.9");

    // With a value.
    let (replies, events) = home.send(0, &mut conns[0], &read, Feed::ByteByByte);
    assert!(replies.is_empty());
    let token = read_token(&events);
    assert_eq!(
        home.harness.server.complete_write(token, Ok(())),
        Err(CompleteError::WrongKind)
    );
    assert!(matches!(
        home.harness
            .server
            .complete_read(token, Ok(OwnedValue::Float(1000.0))),
        Err(CompleteError::Value(_))
    ));
    home.harness
        .server
        .complete_read(token, Ok(OwnedValue::Float(21.5)))
        .unwrap();
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (
            200,
            json!({"characteristics":[
                {"aid":1,"iid":13,"value":21.5},{"aid":1,"iid":9,"value":false}]})
        )
    );
    assert_eq!(
        home.harness
            .server
            .complete_read(token, Ok(OwnedValue::Float(22.0))),
        Err(CompleteError::UnknownToken)
    );

    // With a status.
    let (_, events) = home.send(0, &mut conns[0], &read, Feed::Random(2));
    let token = read_token(&events);
    assert_eq!(
        home.harness
            .server
            .complete_read(token, Err(HapStatus::Success)),
        Err(CompleteError::NotAFailure)
    );
    home.harness
        .server
        .complete_read(token, Err(HapStatus::ServiceCommunicationFailure))
        .unwrap();
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (
            207,
            json!({"characteristics":[
                {"aid":1,"iid":13,"status":-70402},
                {"aid":1,"iid":9,"status":0,"value":false}]})
        )
    );
    assert_eq!(home.value(LAMP_TEMPERATURE), OwnedValue::Float(21.5));

    // Unanswered.
    let (_, events) = home.send(0, &mut conns[0], &read, Feed::Whole);
    let token = read_token(&events);
    home.advance(Config::default().read_timeout.as_millis() as u64);
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(statuses(&replies[0]), [-70408, 0]);
    assert_eq!(
        home.harness
            .server
            .complete_read(token, Ok(OwnedValue::Float(22.0))),
        Err(CompleteError::UnknownToken)
    );
    assert_eq!(home.value(LAMP_TEMPERATURE), OwnedValue::Float(21.5));

    // `set_value` still answers a read on demand.
    let (_, events) = home.send(0, &mut conns[0], &read, Feed::Whole);
    let token = read_token(&events);
    home.set(LAMP_TEMPERATURE, OwnedValue::Float(23.0));
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(replies[0].json()["characteristics"][0]["value"], 23.0);
    assert_eq!(
        home.harness
            .server
            .complete_read(token, Err(HapStatus::ResourceBusy)),
        Err(CompleteError::UnknownToken),
        "the read has been answered"
    );
}

#[test]
fn a_confirmed_timed_write_needs_its_prepare_first() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let vault = |pid: Option<u64>| {
        let mut body = json!({"characteristics":[{"aid":1,"iid":15,"value":1}]});
        if let Some(pid) = pid {
            body["pid"] = json!(pid);
        }
        put("/characteristics", &body)
    };

    let (replies, events) = home.send(0, &mut conns[0], &vault(None), Feed::Whole);
    assert_eq!(statuses(&replies[0]), [-70410]);
    assert!(
        events.is_empty(),
        "an untimed write never reaches the application"
    );

    home.send(
        0,
        &mut conns[0],
        &put("/prepare", &json!({"ttl":1000,"pid":3})),
        Feed::Whole,
    );
    home.advance(900);
    let (replies, events) = home.send(0, &mut conns[0], &vault(Some(3)), Feed::ByteByByte);
    assert!(replies.is_empty());
    let token = write_requests(&events)[0].0;
    // The preparation expires while the application decides: the write stands, as it
    // was checked when it came.
    home.advance(500);
    home.harness.server.complete_write(token, Ok(())).unwrap();
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(replies[0].status, 204);
    assert_eq!(home.value(LAMP_VAULT), OwnedValue::Uint8(1));
}

#[test]
fn a_confirmed_write_response_is_completed_then_answered_with_set_value() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let request = write(json!([{"aid":1,"iid":16,"value":"AQE=","r":true}]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Random(4));
    assert!(replies.is_empty());
    let requests = write_requests(&events);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].2, OwnedValue::tlv8(&[1, 1]).unwrap());
    home.harness
        .server
        .complete_write(requests[0].0, Ok(()))
        .unwrap();
    assert_eq!(home.value(LAMP_CONTROL), OwnedValue::tlv8(&[1, 1]).unwrap());
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert!(replies.is_empty(), "the response value is still to come");
    home.set(LAMP_CONTROL, OwnedValue::tlv8(&[2, 1, 1]).unwrap());
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (
            207,
            json!({"characteristics":[{"aid":1,"iid":16,"status":0,"value":"AgEB"}]})
        )
    );

    // A failed one is answered at once, without a value.
    let (_, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    let token = write_requests(&events)[0].0;
    home.harness
        .server
        .complete_write(token, Err(HapStatus::ResourceBusy))
        .unwrap();
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":16,"status":-70403}]})
    );
}

#[test]
fn tokens_of_a_closed_connection_are_stale() {
    let mut storage = buffers(2);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let (_, events) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":9,"value":true}])),
        Feed::Whole,
    );
    let write_token = write_requests(&events)[0].0;
    let (_, events) = home.send(
        1,
        &mut conns[1],
        &get("/characteristics?id=1.13"),
        Feed::Whole,
    );
    let read_token = read_token(&events);
    home.harness.server.connection_lost(&mut conns[0]);
    home.harness.server.connection_lost(&mut conns[1]);
    assert_eq!(
        home.harness.server.complete_write(write_token, Ok(())),
        Err(CompleteError::UnknownToken)
    );
    assert_eq!(
        home.harness
            .server
            .complete_read(read_token, Ok(OwnedValue::Float(20.0))),
        Err(CompleteError::UnknownToken)
    );
    assert_eq!(home.value(LAMP_ON), OwnedValue::Bool(false));
}

#[test]
fn poll_wake_names_the_connections_to_poll() {
    let mut storage = buffers(3);
    let (mut home, mut conns) = Home::accepting(confirmed(), &mut storage, Config::default());
    let wakes = |home: &mut Home| {
        let mut woken: Vec<u32> =
            core::iter::from_fn(|| home.harness.server.poll_wake().map(|id| id.0)).collect();
        woken.sort_unstable();
        woken
    };
    // Setting up changed values: start from a clean slate.
    wakes(&mut home);

    let (_, events) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":9,"value":true}])),
        Feed::Whole,
    );
    let token = write_requests(&events)[0].0;
    assert_eq!(wakes(&mut home), Vec::<u32>::new(), "nothing changed yet");
    home.harness
        .server
        .complete_write(token, Err(HapStatus::ServiceCommunicationFailure))
        .unwrap();
    assert_eq!(wakes(&mut home), [1], "only the writer has news");
    home.poll(0, &mut conns[0]);

    let (_, events) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":9,"value":true}])),
        Feed::Whole,
    );
    let token = write_requests(&events)[0].0;
    home.harness.server.complete_write(token, Ok(())).unwrap();
    assert_eq!(
        wakes(&mut home),
        [1, 2, 3],
        "a changed value concerns everyone"
    );
    home.poll(0, &mut conns[0]);

    // A read waits on connection 2; an unchanged value set wakes only waiting ones.
    home.send(
        1,
        &mut conns[1],
        &get("/characteristics?id=1.13"),
        Feed::Whole,
    );
    wakes(&mut home);
    home.set(LAMP_TEMPERATURE, OwnedValue::Float(0.0));
    assert_eq!(wakes(&mut home), [2]);
    home.poll(1, &mut conns[1]);
    home.set(LAMP_TEMPERATURE, OwnedValue::Float(0.0));
    assert_eq!(wakes(&mut home), Vec::<u32>::new());

    // A plain write that changes a value wakes its subscribers.
    home.send(
        2,
        &mut conns[2],
        &write(json!([{"aid":1,"iid":11,"value":45}])),
        Feed::Whole,
    );
    assert_eq!(wakes(&mut home), [1, 2, 3]);
}

#[test]
fn a_batch_beyond_the_per_connection_cap_comes_in_chunks_each_with_its_last() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let count = 2 * PENDING_PER_CONNECTION + 3;
    let items: Vec<Json> = (0..count)
        .map(|n| json!({"aid":1,"iid":10,"value":n % 100}))
        .collect();
    let (mut replies, mut events) =
        home.send(0, &mut conns[0], &write(Json::from(items)), Feed::Whole);
    let mut tokens = Vec::new();
    for size in [PENDING_PER_CONNECTION, PENDING_PER_CONNECTION, 3] {
        assert!(replies.is_empty());
        let chunk = write_requests(&events);
        assert_eq!(chunk.len(), size, "one chunk at a time: {chunk:?}");
        let token = chunk[0].0;
        assert!(chunk.iter().all(|(t, ..)| *t == token), "one token a chunk");
        let lasts: Vec<bool> = chunk.iter().map(|(.., last)| *last).collect();
        assert_eq!(lasts.iter().filter(|last| **last).count(), 1);
        assert!(lasts[size - 1], "the chunk's final item says so");
        assert!(!tokens.contains(&token));
        tokens.push(token);
        home.harness.server.complete_write(token, Ok(())).unwrap();
        (replies, events) = home.poll(0, &mut conns[0]);
    }
    assert_eq!(replies[0].status, 204);
    assert_eq!(
        home.value(LAMP_BRIGHTNESS),
        OwnedValue::Int(((count - 1) % 100) as i32)
    );
}

#[test]
fn a_chunk_is_told_only_once_the_table_has_room_for_all_of_it() {
    // Four controllers leave three entries of the table free; a fifth's batch of five
    // must not come in part (its `last` would never come), and comes whole once a
    // completion makes room.
    let mut storage = buffers(5);
    let (mut home, mut conns) = Home::accepting(confirmed(), &mut storage, Config::default());
    let batch = |n: usize| {
        let items: Vec<Json> = (0..n)
            .map(|v| json!({"aid":1,"iid":10,"value":v}))
            .collect();
        write(Json::from(items))
    };
    let fourth = PENDING_OPERATIONS - 3 * PENDING_PER_CONNECTION - 3;
    assert!(fourth > 0 && fourth <= PENDING_PER_CONNECTION);
    let mut held = Vec::new();
    for (who, size) in [
        (0, PENDING_PER_CONNECTION),
        (1, PENDING_PER_CONNECTION),
        (2, PENDING_PER_CONNECTION),
        (3, fourth),
    ] {
        let (_, events) = home.send(who, &mut conns[who], &batch(size), Feed::Whole);
        let requests = write_requests(&events);
        assert_eq!(requests.len(), size);
        held.push(requests[0].0);
    }
    let (replies, events) = home.send(4, &mut conns[4], &batch(5), Feed::Whole);
    assert!(replies.is_empty());
    assert!(
        write_requests(&events).is_empty(),
        "no part of a chunk without room for all"
    );

    home.harness.server.complete_write(held[0], Ok(())).unwrap();
    let mut told = Vec::new();
    while let Some(id) = home.harness.server.poll_wake() {
        let k = id.0 as usize - 1;
        let (_, events) = home.poll(k, &mut conns[k]);
        if k == 4 {
            told.extend(write_requests(&events));
        }
    }
    assert_eq!(told.len(), 5, "whole, once there is room");
    assert!(told.iter().all(|(token, ..)| *token == told[0].0));
    assert!(told[4].3, "with its last");
}

#[test]
fn one_connection_cannot_keep_another_from_the_application() {
    for hammer in ["get", "put"] {
        let mut storage = buffers(2);
        let mut conns = connections(&mut storage);
        let mut home = Home::with(confirmed(), &mut conns, Config::default());
        let request = if hammer == "get" {
            let ids: Vec<&str> = (0..PENDING_OPERATIONS + 1).map(|_| "1.13").collect();
            get(&std::format!("/characteristics?id={}", ids.join(",")))
        } else {
            let items: Vec<Json> = (0..PENDING_OPERATIONS + 1)
                .map(|n| json!({"aid":1,"iid":10,"value":n % 100}))
                .collect();
            write(Json::from(items))
        };
        let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
        assert!(replies.is_empty(), "{hammer}: waits for the application");
        let asked = events
            .iter()
            .filter(|e| matches!(e, Event::Read { .. } | Event::WriteRequest { .. }))
            .count();
        let expected = if hammer == "get" {
            1
        } else {
            PENDING_PER_CONNECTION
        };
        assert_eq!(asked, expected, "{hammer}: {events:?}");

        // Another controller writes a confirmed characteristic meanwhile.
        let (replies, events) = home.send(
            1,
            &mut conns[1],
            &write(json!([{"aid":2,"iid":9,"value":true}])),
            Feed::Whole,
        );
        assert!(replies.is_empty());
        let requests = write_requests(&events);
        assert_eq!(
            requests.len(),
            1,
            "{hammer}: the write reaches the application"
        );
        home.harness
            .server
            .complete_write(requests[0].0, Ok(()))
            .unwrap();
        let (replies, _) = home.poll(1, &mut conns[1]);
        assert_eq!(replies[0].status, 204, "{hammer}");
        assert_eq!(home.value(FAN_ON), OwnedValue::Bool(true));
    }
}

#[test]
fn a_characteristic_named_twice_in_a_get_is_asked_once_and_both_share_the_answer() {
    for answer in [
        Err(HapStatus::ServiceCommunicationFailure),
        Ok(OwnedValue::Float(21.5)),
    ] {
        let mut storage = buffers(1);
        let mut conns = connections(&mut storage);
        let mut home = Home::with(confirmed(), &mut conns, Config::default());
        let (replies, events) = home.send(
            0,
            &mut conns[0],
            &get("/characteristics?id=1.13,1.9,1.13"),
            Feed::Whole,
        );
        assert!(replies.is_empty());
        let token = read_token(&events);
        home.harness
            .server
            .complete_read(token, answer.clone())
            .unwrap();
        let (replies, _) = home.poll(0, &mut conns[0]);
        match answer {
            Err(_) => assert_eq!(statuses(&replies[0]), [-70402, 0, -70402]),
            Ok(_) => assert_eq!(
                replies[0].json(),
                json!({"characteristics":[
                    {"aid":1,"iid":13,"value":21.5},
                    {"aid":1,"iid":9,"value":false},
                    {"aid":1,"iid":13,"value":21.5},
                ]})
            ),
        }
    }
}

/// Accessory 1 with `count` temperature sensors read on demand, and their ids.
fn thermometers(count: usize) -> (Database<'static>, Vec<(u64, u64)>) {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "thermometers",
        &AccessoryInfo::new("Thermometers", "Acme", "T1", "1", "1.0"),
    );
    let mut found = Vec::new();
    for n in 0..count {
        let sensor = builder
            .service_with_subtype(&s::TEMPERATURE_SENSOR, &std::format!("sensor {n}"))
            .configure(&c::CURRENT_TEMPERATURE, |d| d.on_demand());
        found.push((1, sensor.iid_of(&c::CURRENT_TEMPERATURE).unwrap()));
    }
    (builder.build().unwrap(), found)
}

/// The tokens of the read requests among `events`, with their ids.
fn read_tokens(events: &[Event]) -> Vec<(Token, (u64, u64))> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Read { token, aid, iid } => Some((*token, (*aid, *iid))),
            _ => None,
        })
        .collect()
}

fn id_list(ids: &[(u64, u64)]) -> String {
    let ids: Vec<String> = ids
        .iter()
        .map(|(aid, iid)| std::format!("{aid}.{iid}"))
        .collect();
    ids.join(",")
}

#[test]
fn failed_reads_free_their_entries_at_once() {
    let (database, sensors) = thermometers(PENDING_PER_CONNECTION + 4);
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let path = std::format!("/characteristics?id={}", id_list(&sensors));
    let (replies, events) = home.send(0, &mut conns[0], &get(&path), Feed::Whole);
    assert!(replies.is_empty());
    let first = read_tokens(&events);
    assert_eq!(
        first.len(),
        PENDING_PER_CONNECTION,
        "as many as one connection may hold"
    );
    for (token, _) in &first {
        home.harness
            .server
            .complete_read(*token, Err(HapStatus::ServiceCommunicationFailure))
            .unwrap();
    }
    // The failures are kept by the job, so the rest are asked before the GET ends.
    let (replies, events) = home.poll(0, &mut conns[0]);
    assert!(replies.is_empty());
    let rest = read_tokens(&events);
    assert_eq!(rest.len(), 4);
    for (n, (token, _)) in rest.iter().enumerate() {
        home.harness
            .server
            .complete_read(*token, Ok(OwnedValue::Float(n as f64)))
            .unwrap();
    }
    let (replies, _) = home.poll(0, &mut conns[0]);
    let mut expected = vec![-70402; PENDING_PER_CONNECTION];
    expected.extend([0; 4]);
    assert_eq!(statuses(&replies[0]), expected);
}

#[test]
fn a_get_with_more_items_than_scratch_bytes_keeps_its_failures_in_the_table() {
    let (database, sensors) = thermometers(PENDING_PER_CONNECTION + 1);
    let config = Config {
        max_request_len: 8192,
        ..Config::default()
    };
    let mut storage: Vec<Buffers> = (0..1)
        .map(|_| Buffers(OwnedBuffers::new(8192 + 1024, MIN_SCRATCH_LEN, 4096, 64)))
        .collect();
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, config);
    // Each sensor named again and again: more items than the scratch buffer has bytes.
    let repeats = MIN_SCRATCH_LEN / sensors.len() + 1;
    let all: Vec<(u64, u64)> = (0..repeats).flat_map(|_| sensors.clone()).collect();
    assert!(all.len() > MIN_SCRATCH_LEN);
    let path = std::format!("/characteristics?id={}", id_list(&all));
    let start = home.harness.now;
    let (replies, events) = home.send(0, &mut conns[0], &get(&path), Feed::Whole);
    assert!(replies.is_empty());
    let first = read_tokens(&events);
    assert_eq!(
        first.len(),
        PENDING_PER_CONNECTION,
        "once per characteristic"
    );
    for (token, _) in &first {
        home.harness
            .server
            .complete_read(*token, Err(HapStatus::ServiceCommunicationFailure))
            .unwrap();
    }
    // The failures hold their entries, so the last sensor is not asked: it times out.
    let (replies, events) = home.poll(0, &mut conns[0]);
    assert!(replies.is_empty() && read_tokens(&events).is_empty());
    let deadline = start + Config::default().read_timeout;
    home.harness.now = deadline;
    home.harness.server.handle_timeout(&mut conns[0], deadline);
    let (replies, _) = home.poll(0, &mut conns[0]);
    let statuses = statuses(&replies[0]);
    assert_eq!(statuses.len(), all.len());
    for (status, id) in statuses.iter().zip(&all) {
        let expected = if *id == sensors[PENDING_PER_CONNECTION] {
            -70408
        } else {
            -70402
        };
        assert_eq!(*status, expected, "{id:?}");
    }
}

#[test]
fn a_read_answered_by_a_value_refuses_its_token_after() {
    let mut storage = buffers(2);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    // By set_value.
    let (_, events) = home.send(
        0,
        &mut conns[0],
        &get("/characteristics?id=1.13"),
        Feed::Whole,
    );
    let token = read_token(&events);
    home.set(LAMP_TEMPERATURE, OwnedValue::Float(21.0));
    assert_eq!(
        home.harness
            .server
            .complete_read(token, Err(HapStatus::ServiceCommunicationFailure)),
        Err(CompleteError::UnknownToken)
    );
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":13,"value":21}]})
    );

    // By another read of the same characteristic, on another connection.
    let (_, events) = home.send(
        0,
        &mut conns[0],
        &get("/characteristics?id=1.13"),
        Feed::Whole,
    );
    let mine = read_token(&events);
    let (_, events) = home.send(
        1,
        &mut conns[1],
        &get("/characteristics?id=1.13"),
        Feed::Whole,
    );
    let theirs = read_token(&events);
    home.harness
        .server
        .complete_read(theirs, Ok(OwnedValue::Float(22.0)))
        .unwrap();
    assert_eq!(
        home.harness
            .server
            .complete_read(mine, Ok(OwnedValue::Float(23.0))),
        Err(CompleteError::UnknownToken)
    );
    for (who, conn) in conns.iter_mut().enumerate() {
        let (replies, _) = home.poll(who, conn);
        assert_eq!(
            replies[0].json(),
            json!({"characteristics":[{"aid":1,"iid":13,"value":22}]})
        );
    }
}

#[test]
fn a_committed_write_response_without_a_value_succeeds_at_the_deadline() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(confirmed(), &mut conns, Config::default());
    let request = write(json!([{"aid":1,"iid":16,"value":"AQE=","r":true}]));
    let (_, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    let token = write_requests(&events)[0].0;
    home.harness.server.complete_write(token, Ok(())).unwrap();
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert!(replies.is_empty(), "waits for a response value");
    home.advance(9000);
    home.harness
        .server
        .handle_timeout(&mut conns[0], home.harness.now);
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":16,"status":0,"value":"AQE="}]})
    );
    assert_eq!(home.value(LAMP_CONTROL), OwnedValue::tlv8(&[1, 1]).unwrap());
}

#[test]
fn a_confirmed_item_subscribes_only_if_its_write_succeeds() {
    for outcome in ["fail", "time out", "succeed"] {
        let mut storage = buffers(2);
        let mut conns = connections(&mut storage);
        let mut home = Home::with(confirmed(), &mut conns, Config::default());
        let request = write(json!([{"aid":1,"iid":9,"value":true,"ev":true}]));
        let (_, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
        let token = write_requests(&events)[0].0;
        let expected = match outcome {
            "fail" => {
                home.harness
                    .server
                    .complete_write(token, Err(HapStatus::ServiceCommunicationFailure))
                    .unwrap();
                -70402
            }
            "time out" => {
                home.advance(9000);
                home.harness
                    .server
                    .handle_timeout(&mut conns[0], home.harness.now);
                -70408
            }
            _ => {
                home.harness.server.complete_write(token, Ok(())).unwrap();
                0
            }
        };
        let (replies, _) = home.poll(0, &mut conns[0]);
        if expected == 0 {
            assert_eq!(replies[0].status, 204, "{outcome}");
        } else {
            assert_eq!(statuses(&replies[0]), [expected], "{outcome}");
        }
        // The value changes from the device side: only a subscriber hears.
        home.advance(5000);
        let OwnedValue::Bool(on) = home.value(LAMP_ON) else {
            panic!("On is a bool")
        };
        assert_eq!(on, outcome == "succeed");
        home.set(LAMP_ON, OwnedValue::Bool(!on));
        let (heard, _) = home.poll(0, &mut conns[0]);
        let heard = heard.iter().filter(|m| m.event).count();
        assert_eq!(heard, usize::from(outcome == "succeed"), "{outcome}");
    }
}

#[test]
fn poll_wake_names_an_evicted_connection_and_everyone_after_a_store() {
    let mut storage = buffers(2);
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let (mut home, mut conns) = Home::accepting(confirmed(), &mut storage, config);
    while home.harness.server.poll_wake().is_some() {}

    home.advance(config.idle_eviction.as_millis() as u64 + 1);
    // Connection 2 was idle longest (connection 1 added its pairing).
    let evicted = home.harness.server.make_room(home.harness.now).unwrap();
    assert_eq!(home.harness.server.poll_wake(), Some(evicted));
    assert_eq!(home.harness.server.poll_wake(), None);
    let k = evicted.0 as usize - 1;
    home.harness
        .server
        .handle_timeout(&mut conns[k], home.harness.now);
    assert_eq!(conns[k].close_reason(), Some(CloseReason::Evicted));

    // A stored change to the pairings concerns every connection.
    let other = 1 - k;
    let guest = Controller::new("guest", 40);
    let request = post("/pairings", "application/pairing+tlv8", &add_guest(&guest));
    let wire = home.controllers[other].wrap(&request);
    let now = home.harness.now;
    home.harness
        .server
        .handle_input(&mut conns[other], now, &wire, &mut home.harness.rng);
    let mut woken = Vec::new();
    for _ in 0..100 {
        match home
            .harness
            .server
            .poll_output(&mut conns[other], now, &mut home.harness.rng)
        {
            Some(Output::Persist) => {
                home.harness.server.state_persisted(
                    &mut conns[other],
                    now,
                    true,
                    &mut home.harness.rng,
                );
                woken.extend(core::iter::from_fn(|| home.harness.server.poll_wake()));
            }
            Some(_) => {}
            None => break,
        }
    }
    woken.sort_unstable_by_key(|id| id.0);
    // The evicted connection counts until it reports its close.
    assert_eq!(woken, [ConnectionId(1), ConnectionId(2)]);
}
