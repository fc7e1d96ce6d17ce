//! Hostile input on a verified session: broken frames, hostile requests, and `/pairings`
//! misuse, each followed by a fresh controller.

use std::time::Duration;

use serde_json::Value;

use crate::controller::{Controller, Message};
use crate::harness::{
    add_body, item_statuses, json, remove_body, state_and_error, verify_m4_error, Case, Context,
    Paired, ADMIN, TLV,
};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "after/tampered-tag",
        run: tampered_tag,
    },
    Case {
        name: "after/frame-over-1024",
        run: frame_over_1024,
    },
    Case {
        name: "after/replayed-frame",
        run: replayed_frame,
    },
    Case {
        name: "after/byte-by-byte",
        run: byte_by_byte,
    },
    Case {
        name: "after/pipelined",
        run: pipelined,
    },
    Case {
        name: "after/malformed-json-and-types",
        run: malformed_json_and_types,
    },
    Case {
        name: "after/read-only-write-only",
        run: read_only_write_only,
    },
    Case {
        name: "after/out-of-range",
        run: out_of_range,
    },
    Case {
        name: "after/bad-id-lists",
        run: bad_id_lists,
    },
    Case {
        name: "after/expired-and-unknown-pid",
        run: expired_and_unknown_pid,
    },
    Case {
        name: "after/ev-without-permission",
        run: ev_without_permission,
    },
    Case {
        name: "after/non-admin-pairings",
        run: non_admin_pairings,
    },
    Case {
        name: "after/remove-live-session",
        run: remove_live_session,
    },
    Case {
        name: "after/unknown-paths-wrong-methods",
        run: unknown_paths_and_methods,
    },
];

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: accessory\r\n\r\n").into_bytes()
}

/// Whether the accessory closes `controller`'s connection after `wire`, answering
/// nothing.
fn closes_after(controller: &mut Controller, wire: &[u8]) -> bool {
    let _ = controller.send_raw(wire);
    controller.ends_without_answer(Duration::from_secs(5))
}

fn read_path(paired: &Paired) -> String {
    let (aid, on) = paired.ids.on;
    format!("/characteristics?id={aid}.{on}")
}

fn tampered_tag(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let mut wire = controller.seal(&get_request(&read_path(&paired)));
    *wire.last_mut().unwrap() ^= 1;
    assert!(
        closes_after(&mut controller, &wire),
        "a tampered tag: still open"
    );
    format!(
        "a flipped tag bit: closed without an answer; {}",
        paired.check_served()
    )
}

fn frame_over_1024(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    // Only the length: a server that waited for the rest would never close.
    let wire = 1025u16.to_le_bytes().to_vec();
    assert!(
        closes_after(&mut controller, &wire),
        "length 1025: still open"
    );
    format!("a frame of length 1025: closed; {}", paired.check_served())
}

fn replayed_frame(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let wire = controller.seal(&get_request(&read_path(&paired)));
    controller.send_raw(&wire).unwrap();
    let first = controller
        .next_message(Duration::from_secs(5))
        .expect("an answer");
    assert_eq!(first.status, 200);
    assert!(
        closes_after(&mut controller, &wire),
        "a replayed frame: still open"
    );
    format!(
        "the first copy answered 200, the replay closed the connection; {}",
        paired.check_served()
    )
}

fn byte_by_byte(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, brightness) = paired.ids.brightness;
    let body = format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{brightness},"value":61}}]}}"#);
    let put = format!(
        "PUT /characteristics HTTP/1.1\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut wire = controller.seal(put.as_bytes());
    wire.extend(controller.seal(&get_request(&format!(
        "/characteristics?id={aid}.{brightness}"
    ))));
    for byte in &wire {
        controller.send_raw(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let put_reply = controller
        .next_message(Duration::from_secs(5))
        .expect("the PUT's answer");
    assert_eq!(put_reply.status, 204, "{}", put_reply.text());
    let read = controller
        .next_message(Duration::from_secs(5))
        .expect("the GET's answer");
    assert_eq!(json(&read)["characteristics"][0]["value"], 61);
    format!("a PUT and a GET in two frames, {} bytes sent one at a time: 204, then the value read back; {}", wire.len(), paired.check_served())
}

fn pipelined(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, brightness) = paired.ids.brightness;
    let mut plaintext = Vec::new();
    for value in 0..50 {
        let body = format!(
            r#"{{"characteristics":[{{"aid":{aid},"iid":{brightness},"value":{value}}}]}}"#
        );
        plaintext.extend(
            format!(
                "PUT /characteristics HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        );
        plaintext.extend(get_request(&format!(
            "/characteristics?id={aid}.{brightness}"
        )));
    }
    let wire = controller.seal(&plaintext);
    controller.send_raw(&wire).unwrap();
    for value in 0..50 {
        let put = controller
            .next_message(Duration::from_secs(5))
            .expect("a PUT answer");
        assert_eq!(put.status, 204, "PUT {value}");
        let read = controller
            .next_message(Duration::from_secs(5))
            .expect("a GET answer");
        assert_eq!(
            json(&read)["characteristics"][0]["value"],
            value,
            "GET after PUT {value}"
        );
    }
    format!("100 requests in one write ({} bytes): 100 answers in order, each read showing the write before it; {}", wire.len(), paired.check_served())
}

fn put(controller: &mut Controller, items: &str) -> Message {
    controller.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{items}]}}"#),
    )
}

fn read_value(controller: &mut Controller, (aid, iid): (u64, u64)) -> Value {
    let reply = controller.get(&format!("/characteristics?id={aid}.{iid}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    json(&reply)["characteristics"][0]["value"].clone()
}

fn malformed_json_and_types(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, on) = paired.ids.on;
    let (_, brightness) = paired.ids.brightness;
    for body in [
        r#"{"characteristics":[{"aid":1,"#,
        "not json",
        r#"{"characteristics":{}}"#,
        r#"{"characteristics":[{"iid":9,"value":true}]}"#,
        "",
    ] {
        let reply = controller.put("/characteristics", body);
        assert_eq!(
            reply.status,
            400,
            "{body:?}: {} {}",
            reply.status,
            reply.text()
        );
    }
    let wrong_types = put(
        &mut controller,
        &format!(
            r#"{{"aid":{aid},"iid":{on},"value":"yes"}},{{"aid":{aid},"iid":{brightness},"value":"50"}},{{"aid":{aid},"iid":{brightness},"value":[1]}}"#
        ),
    );
    assert_eq!(item_statuses(&wrong_types), [-70410; 3], "wrong types");
    let unknown = put(
        &mut controller,
        &format!(r#"{{"aid":{aid},"iid":9999,"value":true}},{{"aid":77,"iid":{on},"value":true}}"#),
    );
    assert_eq!(item_statuses(&unknown), [-70409; 2], "unknown aid and iid");
    let read = controller.get(&format!("/characteristics?id={aid}.9999,77.{on}"));
    assert_eq!(item_statuses(&read), [-70409; 2], "unknown in a read");
    format!("5 malformed bodies: 400 each; wrong types: -70410; unknown aid/iid: -70409 in PUT and GET; {}", paired.check_served())
}

fn read_only_write_only(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, name) = paired.ids.name;
    let (_, identify) = paired.ids.identify;
    let before = read_value(&mut controller, paired.ids.name);
    let write = put(
        &mut controller,
        &format!(r#"{{"aid":{aid},"iid":{name},"value":"Hacked"}}"#),
    );
    assert_eq!(item_statuses(&write), [-70404], "write to Name");
    assert_eq!(
        read_value(&mut controller, paired.ids.name),
        before,
        "Name changed"
    );
    let read = controller.get(&format!("/characteristics?id={aid}.{identify}"));
    assert_eq!(item_statuses(&read), [-70405], "read of Identify");
    format!(
        "write to Name: -70404, unchanged; read of Identify: -70405; {}",
        paired.check_served()
    )
}

fn out_of_range(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, brightness) = paired.ids.brightness;
    assert_eq!(
        put(
            &mut controller,
            &format!(r#"{{"aid":{aid},"iid":{brightness},"value":42}}"#)
        )
        .status,
        204
    );
    for value in ["101", "-1", "1e9", "42.5", "4294967296"] {
        let reply = put(
            &mut controller,
            &format!(r#"{{"aid":{aid},"iid":{brightness},"value":{value}}}"#),
        );
        assert_eq!(item_statuses(&reply), [-70410], "Brightness {value}");
    }
    assert_eq!(
        read_value(&mut controller, paired.ids.brightness),
        42,
        "the value moved"
    );
    format!(
        "Brightness 101, -1, 1e9, 42.5, 2^32: -70410 each, the value stays 42; {}",
        paired.check_served()
    )
}

fn bad_id_lists(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let queries = [
        "/characteristics",
        "/characteristics?id=",
        "/characteristics?id=1",
        "/characteristics?id=1.x",
        "/characteristics?id=1.9,",
        "/characteristics?id=.9",
        "/characteristics?id=1.99999999999999999999999",
        "/characteristics?foo=1.9",
    ];
    for query in queries {
        let reply = controller.get(query);
        assert_eq!(
            reply.status,
            400,
            "{query}: {} {}",
            reply.status,
            reply.text()
        );
    }
    format!(
        "{} malformed id lists: 400 each; {}",
        queries.len(),
        paired.check_served()
    )
}

fn expired_and_unknown_pid(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, on) = paired.ids.on;
    let (_, brightness) = paired.ids.brightness;
    let prepare = controller.put("/prepare", r#"{"ttl":100,"pid":42}"#);
    assert_eq!(prepare.status, 200, "/prepare: {}", prepare.text());
    assert_eq!(json(&prepare)["status"], 0);
    std::thread::sleep(Duration::from_millis(300));
    let items = format!(
        r#"{{"aid":{aid},"iid":{on},"value":true}},{{"aid":{aid},"iid":{brightness},"value":10}}"#
    );
    let expired = controller.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{items}],"pid":42}}"#),
    );
    assert_eq!(item_statuses(&expired), [-70410; 2], "an expired pid");
    let unknown = controller.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{items}],"pid":777}}"#),
    );
    assert_eq!(item_statuses(&unknown), [-70410; 2], "an unknown pid");
    assert_eq!(
        read_value(&mut controller, paired.ids.on),
        false,
        "On changed"
    );
    format!(
        "a pid 200 ms past its ttl, and an unknown pid: -70410 on every item, nothing written; {}",
        paired.check_served()
    )
}

fn ev_without_permission(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let (aid, name) = paired.ids.name;
    let (_, on) = paired.ids.on;
    let reply = put(
        &mut controller,
        &format!(r#"{{"aid":{aid},"iid":{name},"ev":true}},{{"aid":{aid},"iid":{on},"ev":true}}"#),
    );
    assert_eq!(item_statuses(&reply), [-70406, 0], "ev on Name and On");
    format!("ev on Name: -70406, on On: 0; {}", paired.check_served())
}

/// The admin adds controller `seed`, admin or not.
fn add_pairing(admin_session: &mut Controller, seed: u8, admin: bool) {
    let identity = Controller::identity_for(seed);
    let body = add_body(identity.id.as_bytes(), &identity.keys.public_key(), admin);
    let reply = admin_session.request("POST", "/pairings", TLV, &body);
    assert_eq!(
        state_and_error(&reply),
        (Some(2), None),
        "add controller-{seed}"
    );
}

fn non_admin_pairings(context: &Context) -> String {
    let paired = context.paired();
    let mut admin = paired.verified(ADMIN);
    add_pairing(&mut admin, 60, false);
    let mut user = paired.verified(60);
    assert_eq!(user.get(&read_path(&paired)).status, 200, "the user's read");
    let stranger = Controller::identity_for(61);
    let stranger_id = stranger.id.as_bytes().to_vec();
    let attempts = [
        ("list", vec![0x06, 0x01, 0x01, 0x00, 0x01, 0x05]),
        (
            "add",
            add_body(&stranger_id, &stranger.keys.public_key(), true),
        ),
        ("remove", remove_body(b"controller-1")),
    ];
    for (what, body) in &attempts {
        let reply = user.request("POST", "/pairings", TLV, body);
        assert_eq!(
            state_and_error(&reply),
            (Some(2), Some(2)),
            "a non-admin's {what}"
        );
    }
    let list = admin.request(
        "POST",
        "/pairings",
        TLV,
        &[0x06, 0x01, 0x01, 0x00, 0x01, 0x05],
    );
    let ids = count(&list.body, b"controller-");
    assert_eq!(ids, 2, "the admin's list after the refusals");
    format!("a non-admin's list, add and remove: Authentication each; the list still holds 2 pairings; {}", paired.check_served())
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn remove_live_session(context: &Context) -> String {
    let paired = context.paired();
    let mut admin = paired.verified(ADMIN);
    add_pairing(&mut admin, 62, true);
    let mut removed = paired.verified(62);
    assert_eq!(removed.get(&read_path(&paired)).status, 200);
    let reply = admin.request("POST", "/pairings", TLV, &remove_body(b"controller-62"));
    assert_eq!(state_and_error(&reply), (Some(2), None), "remove");
    assert!(
        removed.closed_within(Duration::from_secs(3)),
        "the removed controller's session stayed open"
    );
    assert_eq!(
        admin.get(&read_path(&paired)).status,
        200,
        "the admin's own session"
    );
    let again = Controller::connect(paired.accessory.address, 62);
    let error = verify_m4_error(again, &paired.pairing);
    assert_eq!(error, Some(2), "the removed controller's pair-verify");
    format!("the removed controller's live session closed; its pair-verify then gets Authentication; {}", paired.check_served())
}

fn unknown_paths_and_methods(context: &Context) -> String {
    let paired = context.paired();
    let mut controller = paired.verified(ADMIN);
    let requests: [(&str, &str, u16); 7] = [
        ("GET", "/nothing-here", 404),
        ("GET", "/accessories/1", 404),
        ("POST", "/accessories", 405),
        ("DELETE", "/characteristics", 405),
        ("GET", "/pairings", 405),
        ("GET", "/pair-setup", 405),
        ("PUT", "/pair-verify", 405),
    ];
    for (method, path, expected) in requests {
        let body: &[u8] = if method == "GET" { b"" } else { b"{}" };
        let reply = controller.request(method, path, "application/hap+json", body);
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.text());
    }
    format!(
        "unknown paths: 404; wrong methods: 405 ({} requests); {}",
        requests.len(),
        paired.check_served()
    )
}
