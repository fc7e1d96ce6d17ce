//! `/accessories`, `/characteristics`, `/prepare` and events, driven by in-memory
//! controllers with injected time.

use core::time::Duration;
use std::string::String;
use std::vec;
use std::vec::Vec;

use serde_json::{json, Value as Json};

use super::*;
use crate::catalog::{characteristic as c, service as s, CharacteristicType, Format};
use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
use crate::database::OwnedValue;

use crate::database::fixture::ids::{BRIGHTNESS, CONTROL, ON, SWITCH_EVENT, TEMPERATURE, VAULT};
use crate::database::fixture::{gadget as fixture, vendor, VENDOR};

mod pending;
mod values;

/// One message from the accessory: a response or an event.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    event: bool,
    status: u16,
    chunked: bool,
    body: Vec<u8>,
}

impl Message {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Splits the accessory's plaintext into messages, decoding chunked bodies.
fn messages(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let event = bytes.starts_with(b"EVENT/1.0 ");
        // httparse knows only HTTP/1.x; "EVENT/1.0" is one byte longer than "HTTP/1.1".
        let shift = usize::from(event);
        let mut head_bytes = b"HTTP/1.1".to_vec();
        head_bytes.extend_from_slice(&bytes[8 + shift..]);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head) = response.parse(&head_bytes).unwrap() else {
            panic!("partial response")
        };
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        };
        let chunked = header("transfer-encoding").as_deref() == Some("chunked");
        let mut rest = &bytes[head + shift..];
        let mut body = Vec::new();
        if chunked {
            loop {
                let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
                let size =
                    usize::from_str_radix(core::str::from_utf8(&rest[..line_end]).unwrap(), 16)
                        .unwrap();
                rest = &rest[line_end + 2..];
                body.extend_from_slice(&rest[..size]);
                assert_eq!(&rest[size..size + 2], b"\r\n");
                rest = &rest[size + 2..];
                if size == 0 {
                    break;
                }
            }
        } else {
            let length: usize = header("content-length").unwrap().parse().unwrap();
            body.extend_from_slice(&rest[..length]);
            rest = &rest[length..];
        }
        out.push(Message {
            event,
            status: response.code.unwrap(),
            chunked,
            body,
        });
        bytes = rest;
    }
    out
}

fn put(path: &str, body: &Json) -> Vec<u8> {
    let body = serde_json::to_vec(body).unwrap();
    let mut request = std::format!(
        "PUT {path} HTTP/1.1\r\nHost: gadget.local\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

fn write(items: Json) -> Vec<u8> {
    put("/characteristics", &json!({ "characteristics": items }))
}

/// A paired accessory with verified controllers, each on its own connection.
struct Home {
    harness: Harness,
    controllers: Vec<Controller>,
}

impl Home {
    /// The [`fixture`], with an owner paired and verified on the first connection and
    /// another admin verified on each of the others.
    fn new(connections: &mut [Connection<'_>], config: Config) -> Self {
        Self::with(fixture(), connections, config)
    }

    /// Like [`Home::new`], with another database.
    fn with(
        database: Database<'static>,
        connections: &mut [Connection<'_>],
        config: Config,
    ) -> Self {
        let mut harness = Harness::new();
        let state = harness.server.state().clone();
        harness.server = Server::new(state, database, config);
        Self::enrol(harness, connections)
    }

    /// Like [`Home::with`], with connections the server accepted (and so counts, and
    /// names in [`Server::poll_wake`]), numbered from 1.
    fn accepting<'b>(
        database: Database<'static>,
        storage: &'b mut [Buffers],
        config: Config,
    ) -> (Self, Vec<Connection<'b>>) {
        let mut harness = Harness::new();
        let state = harness.server.state().clone();
        harness.server = Server::new(state, database, config);
        let now = harness.now;
        let mut connections: Vec<Connection<'b>> = storage
            .iter_mut()
            .enumerate()
            .map(|(n, b)| {
                harness
                    .server
                    .accept(ConnectionId(n as u32 + 1), b.0.borrow(), now)
                    .unwrap()
            })
            .collect();
        let home = Self::enrol(harness, &mut connections);
        (home, connections)
    }

    /// Pairs an owner on the first connection and verifies another admin on each of the
    /// others.
    fn enrol(mut harness: Harness, connections: &mut [Connection<'_>]) -> Self {
        let mut owner = Controller::new("owner", 7);
        let (first, others) = connections.split_first_mut().unwrap();
        let pairing = harness.pair(first, &mut owner, Feed::Whole);
        harness.verify(first, &mut owner, &pairing, Feed::Whole);
        let mut controllers = vec![owner];
        for (n, conn) in others.iter_mut().enumerate() {
            let n = n + 1;
            let mut other = Controller::new(&std::format!("other{n}"), 7 + n as u8);
            let mut add = vec![0x06, 1, 1, 0x00, 1, 3, 0x01];
            add.push(other.identity.id.as_bytes().len() as u8);
            add.extend_from_slice(other.identity.id.as_bytes());
            add.extend_from_slice(&[0x03, 32]);
            add.extend_from_slice(&other.identity.keys.public_key());
            add.extend_from_slice(&[0x0B, 1, 1]);
            let add = post("/pairings", "application/pairing+tlv8", &add);
            let (replies, _) = harness.exchange(first, &mut controllers[0], &add, Feed::Whole);
            assert_eq!(replies[0].0, 200);
            harness.verify(conn, &mut other, &pairing, Feed::Whole);
            controllers.push(other);
        }
        Self {
            harness,
            controllers,
        }
    }

    /// Sends `request` from controller `who` on `conn`; returns messages and events.
    fn send(
        &mut self,
        who: usize,
        conn: &mut Connection<'_>,
        request: &[u8],
        how: Feed,
    ) -> (Vec<Message>, Vec<Event>) {
        let wire = self.controllers[who].wrap(request);
        let outcome = feed(
            &mut self.harness.server,
            conn,
            self.harness.now,
            &wire,
            how,
            &mut self.harness.rng,
            &mut self.harness.stored,
        );
        assert!(!outcome.closed, "the connection closed");
        let plain = self.controllers[who].unwrap(&outcome.transmitted);
        (messages(&plain), outcome.events)
    }

    /// Drains `conn` of controller `who` at the current time.
    fn poll(&mut self, who: usize, conn: &mut Connection<'_>) -> (Vec<Message>, Vec<Event>) {
        let outcome = drain(
            &mut self.harness.server,
            conn,
            self.harness.now,
            &mut self.harness.rng,
            &mut self.harness.stored,
        );
        let plain = self.controllers[who].unwrap(&outcome.transmitted);
        (messages(&plain), outcome.events)
    }

    fn advance(&mut self, millis: u64) {
        self.harness.now = self.harness.now + Duration::from_millis(millis);
    }

    fn set(&mut self, (aid, iid): (u64, u64), value: OwnedValue) {
        self.harness.server.set_value(aid, iid, value).unwrap();
    }

    fn value(&self, (aid, iid): (u64, u64)) -> OwnedValue {
        self.harness
            .server
            .database()
            .get(aid, iid)
            .unwrap()
            .clone()
    }
}

/// Connections over owned buffers.
fn buffers(count: usize) -> Vec<Buffers> {
    (0..count).map(|_| Buffers::new()).collect()
}

fn connections(buffers: &mut [Buffers]) -> Vec<Connection<'_>> {
    buffers
        .iter_mut()
        .enumerate()
        .map(|(n, b)| b.connection(n as u32 + 1))
        .collect()
}

#[test]
fn accessories_is_streamed_and_parses_whole_bytewise_and_split() {
    let mut documents = Vec::new();
    for how in [Feed::Whole, Feed::ByteByByte, Feed::Random(3)] {
        let mut storage = buffers(1);
        let mut conns = connections(&mut storage);
        let mut home = Home::new(&mut conns, Config::default());
        let (replies, _) = home.send(0, &mut conns[0], &get("/accessories"), how);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].status, 200);
        documents.push(replies[0].json());
    }
    assert_eq!(documents[0], documents[1]);
    assert_eq!(documents[0], documents[2]);
    let accessory = &documents[0]["accessories"][0];
    assert_eq!(accessory["aid"], 1);
    let services = accessory["services"].as_array().unwrap();
    // The gadget's five services, and the Protocol Information the builder added.
    assert_eq!(services.len(), 6);
    assert_eq!(services[0]["type"], "3E");
    assert_eq!(services[0]["iid"], 1);
    assert_eq!(services[5]["type"], "A2");
    assert_eq!(services[5]["characteristics"][0]["type"], "37");
    assert_eq!(services[5]["characteristics"][0]["value"], "1.1.0");
    assert_eq!(services[1]["type"], "43");
    assert_eq!(services[1]["primary"], true);
    assert_eq!(
        services[4]["type"], "E8630001-5C13-4E0B-9A3C-112233445566",
        "vendor types keep their full UUID"
    );
    let brightness = &services[1]["characteristics"][1];
    assert_eq!(
        brightness,
        &json!({"iid":10,"value":0,"type":"8","perms":["pr","pw","ev"],"ev":false,
            "format":"int","unit":"percentage","minValue":0,"maxValue":100,"minStep":1})
    );
    let name = &services[0]["characteristics"][3];
    assert_eq!(name["value"], "Gadget");
    let switch_event = &services[2]["characteristics"][0];
    assert_eq!(switch_event["value"], Json::Null, "told only by events");
    assert_eq!(switch_event["valid-values"], json!([0, 1, 2]));
    let identify = &services[0]["characteristics"][0];
    assert!(identify.get("value").is_none(), "write-only");
}

#[test]
fn reads_answer_200_or_207_with_a_status_per_item() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    home.set(BRIGHTNESS, OwnedValue::Int(40));

    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &get("/characteristics?id=1.9,1.10"),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 200);
    assert!(!replies[0].chunked);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":9,"value":false},{"aid":1,"iid":10,"value":40}]})
    );

    let query = "/characteristics?id=1.10&meta=1&perms=1&type=1&ev=1";
    let (replies, _) = home.send(0, &mut conns[0], &get(query), Feed::Whole);
    assert_eq!(
        replies[0].json()["characteristics"][0],
        json!({"aid":1,"iid":10,"value":40,"type":"8","perms":["pr","pw","ev"],"ev":false,
            "format":"int","unit":"percentage","minValue":0,"maxValue":100,"minStep":1})
    );

    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &get("/characteristics?id=1.9,1.2,7.1"),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 207);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[
            {"aid":1,"iid":9,"status":0,"value":false},
            {"aid":1,"iid":2,"status":-70405},
            {"aid":7,"iid":1,"status":-70409}]})
    );

    for bad in [
        "/characteristics",
        "/characteristics?id=1",
        "/characteristics?id=1.9&x=1",
    ] {
        let (replies, _) = home.send(0, &mut conns[0], &get(bad), Feed::Whole);
        assert_eq!(replies[0].status, 400, "{bad}");
    }
}

#[test]
fn writes_are_applied_reported_and_rejected_without_clamping() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());

    let request = write(json!([{"aid":1,"iid":9,"value":true},{"aid":1,"iid":10,"value":55}]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].status, replies[0].body.len()), (204, 0));
    let owner = home.controllers[0].identity.id.clone();
    assert_eq!(
        events,
        [
            Event::Write {
                aid: 1,
                iid: 9,
                value: OwnedValue::Bool(true),
                controller: owner.clone()
            },
            Event::Write {
                aid: 1,
                iid: 10,
                value: OwnedValue::Int(55),
                controller: owner.clone()
            }
        ]
    );
    assert_eq!(home.value(BRIGHTNESS), OwnedValue::Int(55));

    // iOS sends bools as 0 and 1.
    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":9,"value":0}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 204);
    assert_eq!(home.value(ON), OwnedValue::Bool(false));

    let request = write(json!([
        {"aid":1,"iid":10,"value":101},
        {"aid":1,"iid":10,"value":50.5},
        {"aid":1,"iid":10,"value":"50"},
        {"aid":1,"iid":4,"value":"X"},
        {"aid":1,"iid":9,"ev":true},
        {"aid":1,"iid":4,"ev":true},
        {"aid":9,"iid":9,"value":true},
        {"aid":1,"iid":9},
        {"aid":1,"iid":9,"value":{"nested":1}}
    ]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert_eq!(replies[0].status, 207);
    let statuses: Vec<i64> = replies[0].json()["characteristics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["status"].as_i64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [-70410, -70410, -70410, -70404, 0, -70406, -70409, -70410, -70410]
    );
    assert!(events.is_empty(), "nothing was written");
    assert_eq!(
        home.value(BRIGHTNESS),
        OwnedValue::Int(55),
        "not clamped to 100"
    );

    for bad in [
        &b"{}"[..],
        b"{\"characteristics\":[{\"iid\":1}]}",
        b"not json",
    ] {
        let mut request = std::format!(
            "PUT /characteristics HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            bad.len()
        )
        .into_bytes();
        request.extend_from_slice(bad);
        let (replies, _) = home.send(0, &mut conns[0], &request, Feed::Whole);
        assert_eq!(replies[0].status, 400);
    }
}

#[test]
fn timed_writes_need_a_live_matching_prepare() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    let vault = |value: u8, pid: Option<u64>| {
        let mut body = json!({"characteristics":[{"aid":1,"iid":16,"value":value}]});
        if let Some(pid) = pid {
            body["pid"] = json!(pid);
        }
        put("/characteristics", &body)
    };
    let status = |replies: &[Message]| replies[0].json()["characteristics"][0]["status"].clone();

    let (replies, _) = home.send(0, &mut conns[0], &vault(1, None), Feed::Whole);
    assert_eq!(
        status(&replies),
        -70410,
        "a plain write to a timed-write characteristic"
    );

    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &put("/prepare", &json!({"ttl":1000,"pid":77})),
        Feed::Whole,
    );
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (200, json!({"status":0}))
    );
    let (replies, _) = home.send(0, &mut conns[0], &vault(1, Some(78)), Feed::Whole);
    assert_eq!(status(&replies), -70410, "another pid");

    home.send(
        0,
        &mut conns[0],
        &put("/prepare", &json!({"ttl":1000,"pid":77})),
        Feed::Whole,
    );
    home.advance(1001);
    let (replies, _) = home.send(0, &mut conns[0], &vault(1, Some(77)), Feed::Whole);
    assert_eq!(status(&replies), -70410, "expired");
    assert_eq!(home.value(VAULT), OwnedValue::Uint8(0));

    home.send(
        0,
        &mut conns[0],
        &put("/prepare", &json!({"ttl":1000,"pid":79})),
        Feed::Whole,
    );
    home.advance(999);
    let (replies, events) = home.send(0, &mut conns[0], &vault(1, Some(79)), Feed::Whole);
    assert_eq!(replies[0].status, 204);
    assert_eq!(events.len(), 1);
    assert_eq!(home.value(VAULT), OwnedValue::Uint8(1));
    let (replies, _) = home.send(0, &mut conns[0], &vault(0, Some(79)), Feed::Whole);
    assert_eq!(status(&replies), -70410, "a prepare is used once");

    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &put("/prepare", &json!({"ttl":"x"})),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 400);
}

#[test]
fn events_reach_other_subscribers_but_never_echo_to_the_writer() {
    let mut storage = buffers(3);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    let subscribe = write(json!([{"aid":1,"iid":9,"ev":true},{"aid":1,"iid":10,"ev":true}]));
    for (who, conn) in conns.iter_mut().enumerate().take(2) {
        let (replies, _) = home.send(who, conn, &subscribe, Feed::Whole);
        assert_eq!(replies[0].status, 204);
    }
    // Connection 2 is verified but not subscribed.

    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":9,"value":true}])),
        Feed::Whole,
    );
    assert_eq!(
        replies.len(),
        1,
        "the writer hears its response and no echo"
    );
    assert!(!replies[0].event);
    let (heard, _) = home.poll(1, &mut conns[1]);
    assert_eq!(heard.len(), 1);
    assert!(heard[0].event);
    assert_eq!(
        heard[0].json(),
        json!({"characteristics":[{"aid":1,"iid":9,"value":true}]})
    );
    assert!(home.poll(2, &mut conns[2]).0.is_empty());
    assert!(home.poll(0, &mut conns[0]).0.is_empty());

    // A change by the application goes to every subscriber.
    home.advance(5000);
    home.set(BRIGHTNESS, OwnedValue::Int(70));
    for (who, conn) in conns.iter_mut().enumerate().take(2) {
        let (heard, _) = home.poll(who, conn);
        assert_eq!(
            heard[0].json(),
            json!({"characteristics":[{"aid":1,"iid":10,"value":70}]})
        );
    }

    // An event due while a request is pending comes after its response, never inside it.
    home.advance(5000);
    home.set(ON, OwnedValue::Bool(false));
    let (replies, _) = home.send(1, &mut conns[1], &get("/accessories"), Feed::Whole);
    assert_eq!(replies.len(), 2);
    assert!(!replies[0].event);
    assert!(replies[1].event);

    // Unsubscribing stops events.
    home.send(
        1,
        &mut conns[1],
        &write(json!([{"aid":1,"iid":9,"ev":false}])),
        Feed::Whole,
    );
    home.advance(5000);
    home.set(ON, OwnedValue::Bool(true));
    assert!(home.poll(1, &mut conns[1]).0.is_empty());
}

#[test]
fn changes_within_the_window_coalesce_to_the_latest_value() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let config = Config {
        event_window: Duration::from_millis(500),
        ..Config::default()
    };
    let mut home = Home::new(&mut conns, config);
    home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":10,"ev":true}])),
        Feed::Whole,
    );

    home.set(BRIGHTNESS, OwnedValue::Int(10));
    let (heard, _) = home.poll(0, &mut conns[0]);
    assert_eq!(heard.len(), 1, "the first change goes at once");
    let sent_at = home.harness.now;

    for (step, value) in [(100, 20), (100, 30), (100, 40)] {
        home.advance(step);
        home.set(BRIGHTNESS, OwnedValue::Int(value));
        assert!(
            home.poll(0, &mut conns[0]).0.is_empty(),
            "held in the window"
        );
    }
    let due = sent_at + Duration::from_millis(500);
    assert_eq!(home.harness.server.poll_timeout(&conns[0]), Some(due));
    home.harness.now = due;
    home.harness.server.handle_timeout(&mut conns[0], due);
    let (heard, _) = home.poll(0, &mut conns[0]);
    assert_eq!(heard.len(), 1);
    assert_eq!(
        heard[0].json(),
        json!({"characteristics":[{"aid":1,"iid":10,"value":40}]})
    );
}

#[test]
fn every_button_press_is_sent_at_once() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":12,"ev":true}])),
        Feed::Whole,
    );
    for press in [0, 0, 1, 2] {
        home.set(SWITCH_EVENT, OwnedValue::Uint8(press));
    }
    let (heard, _) = home.poll(0, &mut conns[0]);
    let presses: Vec<Json> = heard
        .iter()
        .flat_map(|m| m.json()["characteristics"].as_array().unwrap().clone())
        .collect();
    assert_eq!(presses.len(), 4, "same values are presses too");
    // Reads of a programmable switch answer null; its events carry the press.
    let values: Vec<Json> = presses.iter().map(|p| p["value"].clone()).collect();
    assert_eq!(values, [json!(0), json!(0), json!(1), json!(2)]);
}

#[test]
fn a_slow_read_on_demand_times_out_alone() {
    let mut storage = buffers(2);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    let start = home.harness.now;

    let (replies, events) = home.send(
        0,
        &mut conns[0],
        &get("/characteristics?id=1.14,1.9"),
        Feed::Whole,
    );
    assert!(replies.is_empty(), "waits for the application");
    assert!(
        matches!(
            events[..],
            [Event::Read {
                aid: 1,
                iid: 14,
                ..
            }]
        ),
        "{events:?}"
    );
    let deadline = start + Config::default().read_timeout;
    assert_eq!(home.harness.server.poll_timeout(&conns[0]), Some(deadline));

    // Another controller is served meanwhile.
    let (replies, _) = home.send(
        1,
        &mut conns[1],
        &get("/characteristics?id=1.9"),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 200);

    home.harness.now = deadline;
    home.harness.server.handle_timeout(&mut conns[0], deadline);
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(replies[0].status, 207);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[
            {"aid":1,"iid":14,"status":-70408},
            {"aid":1,"iid":9,"status":0,"value":false}]})
    );

    // Answered in time, the read is a plain 200.
    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &get("/characteristics?id=1.14"),
        Feed::Whole,
    );
    assert!(replies.is_empty());
    home.advance(300);
    home.set(TEMPERATURE, OwnedValue::Float(21.5));
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (
            200,
            json!({"characteristics":[{"aid":1,"iid":14,"value":21.5}]})
        )
    );
}

#[test]
fn a_write_response_carries_the_applications_answer() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    let request = write(json!([{"aid":1,"iid":17,"value":"AQE=","r":true}]));
    let (replies, events) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert!(replies.is_empty());
    assert!(matches!(
        &events[..],
        [Event::Write { aid: 1, iid: 17, value: OwnedValue::Tlv8(bytes), .. }] if bytes[..] == [1, 1]
    ));
    home.set(CONTROL, OwnedValue::tlv8(&[2, 1, 1]).unwrap());
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        (replies[0].status, replies[0].json()),
        (
            207,
            json!({"characteristics":[{"aid":1,"iid":17,"status":0,"value":"AgEB"}]})
        )
    );

    // Unanswered, it times out.
    home.send(0, &mut conns[0], &request, Feed::Whole);
    home.advance(Config::default().read_timeout.as_millis() as u64);
    let (replies, _) = home.poll(0, &mut conns[0]);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":17,"status":-70408}]})
    );
}

#[test]
fn subscriptions_beyond_the_connections_table_get_out_of_resources() {
    let mut storage = vec![Buffers::sized(4096, 1)];
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    let request = write(json!([{"aid":1,"iid":9,"ev":true},{"aid":1,"iid":10,"ev":true}]));
    let (replies, _) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert_eq!(
        replies[0].json(),
        json!({"characteristics":[{"aid":1,"iid":9,"status":0},{"aid":1,"iid":10,"status":-70407}]})
    );
    // Freed by unsubscribing.
    let request = write(json!([{"aid":1,"iid":9,"ev":false},{"aid":1,"iid":10,"ev":true}]));
    let (replies, _) = home.send(0, &mut conns[0], &request, Feed::Whole);
    assert_eq!(replies[0].status, 204);
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let state = AccessoryState::generate(&CODE.parse().unwrap(), &mut rng);
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let mut server = Server::new(state, fixture(), config);
    let mut storage = buffers(3);
    let [a, b, c] = &mut storage[..] else {
        unreachable!()
    };
    let now = Instant::from_millis(0);
    let accept = |server: &mut Server<'static>, buffers: &mut Buffers, id: u32| {
        server
            .accept(ConnectionId(id), buffers.0.borrow(), now)
            .map(|_| ())
            .err()
    };
    let mut first = server.accept(ConnectionId(1), a.0.borrow(), now).unwrap();
    assert_eq!(accept(&mut server, b, 2), None);
    // The second was dropped without being reported lost: it still counts.
    assert_eq!(
        accept(&mut server, c, 3),
        Some(AcceptError::TooManyConnections)
    );
    assert_eq!(server.connection_count(), 2);
    server.connection_lost(&mut first);
    assert_eq!(server.connection_count(), 1);
    assert_eq!(accept(&mut server, c, 3), None);
    assert_eq!(Config::default().max_connections, 16);
}

#[test]
fn pipelined_reads_and_writes_are_answered_in_order_however_they_arrive() {
    let mut results = Vec::new();
    for how in [Feed::Whole, Feed::ByteByByte, Feed::Random(9)] {
        let mut storage = buffers(1);
        let mut conns = connections(&mut storage);
        let mut home = Home::new(&mut conns, Config::default());
        let mut pipeline = write(json!([{"aid":1,"iid":10,"value":33,"ev":true}]));
        pipeline.extend(get("/characteristics?id=1.10"));
        pipeline.extend(get("/accessories"));
        pipeline.extend(write(json!([{"aid":1,"iid":10,"value":101}])));
        pipeline.extend(get("/nope"));
        let (replies, events) = home.send(0, &mut conns[0], &pipeline, how);
        let summary: Vec<(u16, bool)> = replies.iter().map(|m| (m.status, m.event)).collect();
        assert_eq!(
            summary,
            [
                (204, false),
                (200, false),
                (200, false),
                (207, false),
                (404, false)
            ]
        );
        assert_eq!(
            replies[1].json(),
            json!({"characteristics":[{"aid":1,"iid":10,"value":33}]})
        );
        assert_eq!(events.len(), 1);
        results.push(replies);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

/// A bridge and 149 lights, keyed `light-N`, with ids from `ids`.
fn bridge(
    ids: &mut crate::database::ids::IdMap,
    lights: impl Iterator<Item = usize>,
) -> Database<'static> {
    let mut builder = DatabaseBuilder::new(ids);
    builder.accessory(
        "bridge",
        &AccessoryInfo::new("Bridge", "Acme", "B1", "0", "1.0"),
    );
    for n in lights {
        let name = std::format!("Light {n}");
        let serial = std::format!("L{n}");
        builder.accessory(
            &std::format!("light-{n}"),
            &AccessoryInfo::new(&name, "Acme", "L1", &serial, "1.0"),
        );
        builder
            .service(&s::LIGHTBULB)
            .primary()
            .characteristic(&c::BRIGHTNESS);
    }
    builder.build().unwrap()
}

/// The `/accessories` document served for `database`.
fn served(database: Database<'static>) -> Json {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(database, &mut conns, Config::default());
    let (replies, _) = home.send(0, &mut conns[0], &get("/accessories"), Feed::Whole);
    assert_eq!((replies.len(), replies[0].status), (1, 200));
    assert!(replies[0].chunked, "streamed in chunks");
    replies[0].json()
}

/// Each accessory's aid with its services' (type, iid) and characteristics' (type, iid).
fn ids_of(document: &Json) -> Vec<(u64, Vec<(String, u64)>)> {
    document["accessories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|accessory| {
            let mut ids = Vec::new();
            for service in accessory["services"].as_array().unwrap() {
                ids.push((
                    service["type"].as_str().unwrap().into(),
                    service["iid"].as_u64().unwrap(),
                ));
                for characteristic in service["characteristics"].as_array().unwrap() {
                    ids.push((
                        characteristic["type"].as_str().unwrap().into(),
                        characteristic["iid"].as_u64().unwrap(),
                    ));
                }
            }
            (accessory["aid"].as_u64().unwrap(), ids)
        })
        .collect()
}

#[test]
fn a_bridge_of_150_keeps_its_ids_across_restarts_and_removals() {
    use crate::database::config::ConfigNumber;
    use crate::database::ids::IdMap;

    let mut ids = IdMap::new();
    let first = bridge(&mut ids, 1..150);
    let mut config = ConfigNumber::default();
    config.observe(first.shape());
    let document = served(first);
    let accessories = ids_of(&document);
    assert_eq!(accessories.len(), 150);
    let mut aids: Vec<u64> = accessories.iter().map(|(aid, _)| *aid).collect();
    aids.sort_unstable();
    aids.dedup();
    assert_eq!(aids.len(), 150, "every aid is unique");
    assert_eq!(accessories[0].0, 1, "the bridge is aid 1");
    for (aid, instances) in &accessories {
        let mut iids: Vec<u64> = instances.iter().map(|(_, iid)| *iid).collect();
        iids.sort_unstable();
        iids.dedup();
        assert_eq!(iids.len(), instances.len(), "iids of {aid} are unique");
    }

    // A restart: the id map comes back from storage, and so does every id.
    let mut restored = IdMap::from_parts(ids.next_aid, ids.accessories.clone());
    let again = bridge(&mut restored, 1..150);
    assert!(!config.observe(again.shape()), "same shape, same c#");
    assert_eq!(served(again), document);

    // Light 75 leaves: everyone else keeps their aid and iids, and c# moves on.
    let without = bridge(&mut restored, (1..150).filter(|n| *n != 75));
    assert!(config.observe(without.shape()));
    assert_eq!(config.number, 2);
    let mut expected = accessories.clone();
    let removed = expected.remove(75);
    let remaining = ids_of(&served(without));
    assert_eq!(remaining, expected);
    assert!(remaining.iter().all(|(aid, _)| *aid != removed.0));
}

#[test]
fn a_151st_accessory_is_refused() {
    use crate::database::builder::BuildError;
    use crate::database::DatabaseError;
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    for n in 0..151 {
        builder.accessory(
            &std::format!("a{n}"),
            &AccessoryInfo::new("Thing", "Acme", "T", "1", "1.0"),
        );
    }
    assert_eq!(
        builder.build().err(),
        Some(BuildError::Database(DatabaseError::TooManyAccessories))
    );
}

#[test]
fn requests_queue_behind_a_read_that_waits() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    // More than the input buffer holds, behind a read on demand.
    let mut pipeline = get("/characteristics?id=1.14");
    for _ in 0..400 {
        pipeline.extend(get("/characteristics?id=1.9"));
    }
    let wire = home.controllers[0].wrap(&pipeline);
    let mut offered = &wire[..];
    let now = home.harness.now;
    let taken =
        home.harness
            .server
            .handle_input(&mut conns[0], now, offered, &mut home.harness.rng);
    assert!(taken < offered.len(), "backpressure, not a close");
    offered = &offered[taken..];
    let (replies, events) = home.poll(0, &mut conns[0]);
    assert!(replies.is_empty());
    assert!(
        matches!(
            events[..],
            [Event::Read {
                aid: 1,
                iid: 14,
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(conns[0].close_reason(), None);

    home.set(TEMPERATURE, OwnedValue::Float(20.0));
    let mut answered = 0;
    for _ in 0..10_000 {
        let (replies, _) = home.poll(0, &mut conns[0]);
        answered += replies.len();
        if offered.is_empty() {
            if replies.is_empty() {
                break;
            }
            continue;
        }
        let now = home.harness.now;
        let taken =
            home.harness
                .server
                .handle_input(&mut conns[0], now, offered, &mut home.harness.rng);
        offered = &offered[taken..];
    }
    assert_eq!(answered, 401);
}

/// A vendor string of HAP's largest length.
const LONG_TEXT: CharacteristicType = CharacteristicType {
    max_len: Some(256),
    ..vendor("LongText", 0x04, Format::String)
};

#[test]
fn the_longest_strings_stream_and_control_characters_are_refused() {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "gadget",
        &AccessoryInfo::new("Gadget", "Acme", "G1", "7", "1.0"),
    );
    let text = builder
        .service(&VENDOR)
        .characteristic(&LONG_TEXT)
        .iid_of(&LONG_TEXT)
        .unwrap();
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(builder.build().unwrap(), &mut conns, Config::default());

    let control = "\u{1}".repeat(200);
    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":text,"value":control}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].json()["characteristics"][0]["status"], -70410);

    // Quotes double when escaped: the worst a stored string can do.
    let quotes = "\"".repeat(256);
    let (replies, _) = home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":1,"iid":text,"value":quotes}])),
        Feed::Whole,
    );
    assert_eq!(replies[0].status, 204);
    let (replies, _) = home.send(0, &mut conns[0], &get("/accessories"), Feed::Whole);
    assert_eq!(
        replies[0].json()["accessories"][0]["services"][1]["characteristics"][0]["value"],
        json!(quotes)
    );
    let query = std::format!("/characteristics?id=1.{text}&meta=1&perms=1&type=1&ev=1");
    let (replies, _) = home.send(0, &mut conns[0], &get(&query), Feed::Whole);
    assert_eq!(
        replies[0].json()["characteristics"][0]["value"],
        json!(quotes)
    );
}

#[test]
fn a_timed_write_stands_or_falls_whole_even_when_it_pauses() {
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::new(&mut conns, Config::default());
    home.send(
        0,
        &mut conns[0],
        &put("/prepare", &json!({"ttl":100,"pid":5})),
        Feed::Whole,
    );
    // More items than the application's event queue holds, so the write pauses.
    let items: Vec<Json> = (0..6)
        .map(|n| json!({"aid":1,"iid":10,"value":n * 10}))
        .collect();
    let request = put(
        "/characteristics",
        &json!({"characteristics": items, "pid": 5}),
    );
    let wire = home.controllers[0].wrap(&request);
    let now = home.harness.now;
    let taken = home
        .harness
        .server
        .handle_input(&mut conns[0], now, &wire, &mut home.harness.rng);
    assert_eq!(taken, wire.len());
    home.advance(500);
    let (replies, events) = home.poll(0, &mut conns[0]);
    assert_eq!(replies[0].status, 204, "{:?}", replies[0]);
    assert_eq!(events.len(), 6);
    assert_eq!(home.value(BRIGHTNESS), OwnedValue::Int(50));
}

#[test]
fn oversized_definitions_are_refused_when_built() {
    use crate::database::builder::BuildError;
    use crate::database::DatabaseError;
    let long = "x".repeat(400);
    let long: &'static str = std::boxed::Box::leak(long.into_boxed_str());
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "gadget",
        &AccessoryInfo::new("Gadget", "Acme", "G1", "7", "1.0"),
    );
    builder
        .service(&VENDOR)
        .configure(&LONG_TEXT, |def| def.with_description(long));
    assert!(matches!(
        builder.build(),
        Err(BuildError::Database(DatabaseError::DefinitionTooLarge {
            aid: 1,
            ..
        }))
    ));
}

#[test]
fn an_event_waits_for_a_streamed_response_to_end() {
    let mut ids = crate::database::ids::IdMap::new();
    let mut storage = buffers(1);
    let mut conns = connections(&mut storage);
    let mut home = Home::with(bridge(&mut ids, 1..40), &mut conns, Config::default());
    home.send(
        0,
        &mut conns[0],
        &write(json!([{"aid":2,"iid":9,"ev":true}])),
        Feed::Whole,
    );

    let wire = home.controllers[0].wrap(&get("/accessories"));
    let now = home.harness.now;
    let server = &mut home.harness.server;
    server.handle_input(&mut conns[0], now, &wire, &mut home.harness.rng);
    let mut transmitted = Vec::new();
    let mut polls = 0;
    while let Some(output) = server.poll_output(&mut conns[0], now, &mut home.harness.rng) {
        let Output::Transmit(bytes) = output else {
            panic!("unexpected {output:?}")
        };
        transmitted.extend_from_slice(bytes);
        polls += 1;
        if polls == 1 {
            // The value changes while the document is half sent.
            server.set_value(2, 9, OwnedValue::Bool(true)).unwrap();
        }
    }
    assert!(polls > 3, "the document took several polls");
    let plain = home.controllers[0].unwrap(&transmitted);
    let replies = messages(&plain);
    assert_eq!(replies.len(), 2);
    assert!(!replies[0].event && replies[0].chunked);
    assert_eq!(
        replies[0].json()["accessories"].as_array().unwrap().len(),
        40
    );
    assert!(replies[1].event);
    assert_eq!(
        replies[1].json(),
        json!({"characteristics":[{"aid":2,"iid":9,"value":true}]})
    );
}

// Long TLV8 and data values, end to end.
mod capacity;
