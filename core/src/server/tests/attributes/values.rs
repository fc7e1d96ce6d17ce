//! Values as HomeKitADK takes them: floats near a step are rounded onto it before they
//! are stored, echoed and sent in events; integer steps are exact; `true` and `false`
//! count as 1 and 0 for numbers.

use super::*;
use crate::catalog::value::ValueError;

/// A vendor float from 10 to 38 in steps of 0.15: the HAP specification's example.
const SETPOINT: CharacteristicType = CharacteristicType {
    min_value: Some(10.0),
    max_value: Some(38.0),
    min_step: Some(0.15),
    ..vendor("Setpoint", 0x05, Format::Float)
};

/// A vendor float from 0 to 100 in whole steps.
const LEVEL: CharacteristicType = CharacteristicType {
    min_value: Some(0.0),
    max_value: Some(100.0),
    min_step: Some(1.0),
    ..vendor("Level", 0x06, Format::Float)
};

/// A vendor uint16 from 0 to 1000 in steps of 5.
const FIVES: CharacteristicType = CharacteristicType {
    min_value: Some(0.0),
    max_value: Some(1000.0),
    min_step: Some(5.0),
    ..vendor("Fives", 0x07, Format::Uint16)
};

/// The aid and iid of the setpoint, the level and the fives.
struct Ids {
    setpoint: (u64, u64),
    level: (u64, u64),
    fives: (u64, u64),
}

/// An accessory with the three vendor characteristics, paired with a controller on each
/// of `conns`.
fn home(conns: &mut [Connection<'_>]) -> (Home, Ids) {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "gadget",
        &AccessoryInfo::new("Gadget", "Acme", "G1", "7", "1.0"),
    );
    let service = builder
        .service(&VENDOR)
        .characteristic(&SETPOINT)
        .characteristic(&LEVEL)
        .characteristic(&FIVES);
    let iid = |kind| (1, service.iid_of(kind).unwrap());
    let ids = Ids {
        setpoint: iid(&SETPOINT),
        level: iid(&LEVEL),
        fives: iid(&FIVES),
    };
    let home = Home::with(builder.build().unwrap(), conns, Config::default());
    (home, ids)
}

/// The status of each item of a write's 207 response, or all zero for a 204.
fn statuses(reply: &Message, items: usize) -> Vec<i64> {
    if reply.status == 204 {
        return vec![0; items];
    }
    assert_eq!(reply.status, 207);
    reply.json()["characteristics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["status"].as_i64().unwrap())
        .collect()
}

/// Writes one value from controller 0 and returns the item's status.
fn put_value(home: &mut Home, conn: &mut Connection<'_>, at: (u64, u64), value: Json) -> i64 {
    let request = write(json!([{"aid":at.0,"iid":at.1,"value":value}]));
    let (replies, _) = home.send(0, conn, &request, Feed::Whole);
    statuses(&replies[0], 1)[0]
}

/// The body of a read of `at`, as the accessory wrote it.
fn read_text(home: &mut Home, conn: &mut Connection<'_>, at: (u64, u64)) -> String {
    let query = std::format!("/characteristics?id={}.{}", at.0, at.1);
    let (replies, _) = home.send(0, conn, &get(&query), Feed::Whole);
    String::from_utf8(replies[0].body.clone()).unwrap()
}

#[test]
fn spec_example_10_150001_is_stored_as_10_15() {
    let mut storage = buffers(2);
    let mut conns = connections(&mut storage);
    let (mut home, ids) = home(&mut conns);
    let (aid, iid) = ids.setpoint;
    let subscribe = write(json!([{"aid":aid,"iid":iid,"ev":true}]));
    let (replies, _) = home.send(1, &mut conns[1], &subscribe, Feed::Whole);
    assert_eq!(replies[0].status, 204);

    let request = write(json!([{"aid":aid,"iid":iid,"value":10.150001}]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert_eq!((replies[0].status, replies[0].body.len()), (204, 0));
    // The application, the database, a read and the other subscriber all see 10.15.
    let owner = home.controllers[0].identity.id.clone();
    assert_eq!(
        events,
        [Event::Write {
            aid,
            iid,
            value: OwnedValue::Float(10.15),
            controller: owner
        }]
    );
    assert_eq!(home.value(ids.setpoint), OwnedValue::Float(10.15));
    let expected =
        std::format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{iid},"value":10.15}}]}}"#);
    assert_eq!(read_text(&mut home, &mut conns[0], ids.setpoint), expected);
    let (heard, _) = home.poll(1, &mut conns[1]);
    assert_eq!(heard.len(), 1);
    assert!(heard[0].event);
    assert_eq!(String::from_utf8(heard[0].body.clone()).unwrap(), expected);
}

#[test]
fn off_step_float_within_tolerance_is_rounded() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let (mut home, ids) = home(&mut conns);

    // 2.07, 1.93 and 185.93 steps of 0.15 from 10.
    for (sent, kept) in [(10.31, 10.3), (10.29, 10.3), (37.89, 37.9)] {
        assert_eq!(
            put_value(&mut home, &mut conns[0], ids.setpoint, json!(sent)),
            0
        );
        assert_eq!(home.value(ids.setpoint), OwnedValue::Float(kept), "{sent}");
    }
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.level, json!(42.04)),
        0
    );
    assert_eq!(home.value(ids.level), OwnedValue::Float(42.0));

    // The application's values are rounded by the same rule.
    home.set(ids.setpoint, OwnedValue::Float(20.049));
    assert_eq!(home.value(ids.setpoint), OwnedValue::Float(20.05));
    assert!(read_text(&mut home, &mut conns[0], ids.setpoint).contains(r#""value":20.05}"#));
}

#[test]
fn off_step_float_beyond_tolerance_is_rejected() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let (mut home, ids) = home(&mut conns);
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.setpoint, json!(10.3)),
        0
    );

    // 1.33 and 1.13 steps from the minimum; a twentieth of a step below it (HomeKitADK
    // checks the range before any rounding); a twentieth above the maximum.
    let (aid, iid) = ids.setpoint;
    let request = write(json!([
        {"aid":aid,"iid":iid,"value":10.2},
        {"aid":aid,"iid":iid,"value":10.17},
        {"aid":aid,"iid":iid,"value":9.9925},
        {"aid":aid,"iid":iid,"value":38.0075},
        {"aid":aid,"iid":iid,"value":"10.15"}
    ]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert_eq!(statuses(&replies[0], 5), [-70410; 5]);
    assert!(events.is_empty(), "nothing was written");
    assert_eq!(home.value(ids.setpoint), OwnedValue::Float(10.3));

    assert_eq!(
        home.harness
            .server
            .set_value(aid, iid, OwnedValue::Float(10.2)),
        Err(SetValueError::Invalid(ValueError::OffStep))
    );
    assert_eq!(home.value(ids.setpoint), OwnedValue::Float(10.3));
}

#[test]
fn integer_steps_stay_exact() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    assert_eq!(
        put_value(&mut home, &mut conns[0], BRIGHTNESS, json!(42)),
        0
    );
    for sent in [json!(42.5), json!(42.05), json!(41.99)] {
        assert_eq!(
            put_value(&mut home, &mut conns[0], BRIGHTNESS, sent.clone()),
            -70410,
            "{sent}"
        );
    }
    assert_eq!(
        put_value(&mut home, &mut conns[0], BRIGHTNESS, json!(43.0)),
        0
    );
    assert_eq!(home.value(BRIGHTNESS), OwnedValue::Int(43));

    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let (mut home, ids) = self::home(&mut conns);
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.fives, json!(995)),
        0
    );
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.fives, json!(996)),
        -70410
    );
    assert_eq!(home.value(ids.fives), OwnedValue::Uint16(995));
}

#[test]
fn true_and_false_are_accepted_for_numeric_formats() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    assert_eq!(
        put_value(&mut home, &mut conns[0], BRIGHTNESS, json!(true)),
        0
    );
    assert_eq!(home.value(BRIGHTNESS), OwnedValue::Int(1));
    assert_eq!(
        put_value(&mut home, &mut conns[0], BRIGHTNESS, json!(false)),
        0
    );
    assert_eq!(home.value(BRIGHTNESS), OwnedValue::Int(0));
    // Bools still take 1 and 0.
    assert_eq!(put_value(&mut home, &mut conns[0], ON, json!(1)), 0);
    assert_eq!(home.value(ON), OwnedValue::Bool(true));

    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let (mut home, ids) = self::home(&mut conns);
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.level, json!(true)),
        0
    );
    assert_eq!(home.value(ids.level), OwnedValue::Float(1.0));
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.fives, json!(false)),
        0
    );
    assert_eq!(home.value(ids.fives), OwnedValue::Uint16(0));
    // 1 is off the fives' steps, and below the setpoint's minimum.
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.fives, json!(true)),
        -70410
    );
    assert_eq!(
        put_value(&mut home, &mut conns[0], ids.setpoint, json!(true)),
        -70410
    );
}
