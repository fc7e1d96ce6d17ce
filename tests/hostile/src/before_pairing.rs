//! Hostile input before pairing: broken HTTP, broken TLV, illegal SRP values, and the
//! pair-setup rules (Busy, Unavailable, MaxTries), each followed by a fresh controller.

use std::time::{Duration, Instant};

use hap_core::crypto::Ed25519KeyPair;
use hap_core::pairing::setup::{PairSetupClient, SetupClientOutput, MAX_SETUP_MESSAGE_LEN};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::accessory::{Accessory, SETUP_CODE};
use crate::controller::{Controller, Message};
use crate::harness::{
    check_unpaired_served, join, json, state_and_error, verify_m4_error, Case, Context, ADMIN, TLV,
};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "before/garbage-bytes",
        run: garbage_bytes,
    },
    Case {
        name: "before/truncated-requests",
        run: truncated_requests,
    },
    Case {
        name: "before/absurd-content-length",
        run: absurd_content_length,
    },
    Case {
        name: "before/100-kb-body",
        run: body_of_100_kb,
    },
    Case {
        name: "before/slowloris-while-another-pairs",
        run: slowloris,
    },
    Case {
        name: "before/malformed-tlv",
        run: malformed_tlv,
    },
    Case {
        name: "before/tlv-fragments",
        run: tlv_fragments,
    },
    Case {
        name: "before/srp-a-0-n-2n",
        run: illegal_srp_public_keys,
    },
    Case {
        name: "before/second-setup-busy",
        run: second_setup_is_busy,
    },
    Case {
        name: "before/setup-when-paired-unavailable",
        run: setup_when_paired,
    },
    Case {
        name: "before/100-wrong-codes-max-tries",
        run: max_tries,
    },
    Case {
        name: "before/protected-endpoints-470",
        run: protected_endpoints,
    },
    Case {
        name: "before/verify-unknown-controller",
        run: verify_unknown_controller,
    },
    Case {
        name: "before/verify-bad-signature",
        run: verify_bad_signature,
    },
];

/// Cases that wait in real time; `main` runs them alongside each other.
pub(crate) const WAITING: &[Case] = &[Case {
    name: "before/slow-hands-m3-after-45-s",
    run: slow_hands,
}];

const PAIR_SETUP: &str = "/pair-setup";

/// Whether the accessory closes a connection that sent `bytes` (and maybe stopped
/// sending), without answering.
fn closes_without_answer(accessory: &Accessory, bytes: &[u8], stop_sending: bool) -> bool {
    let mut controller = Controller::connect(accessory.address, 50);
    // The accessory may close before taking everything: that is the point.
    let _ = controller.send_raw(bytes);
    if stop_sending {
        // Nothing may be answered while the request is incomplete.
        if let Some(reply) = controller.next_message(Duration::from_millis(300)) {
            panic!(
                "an answer to an incomplete request: {} {}",
                reply.status,
                reply.text()
            );
        }
        controller.shutdown_write();
    }
    controller.ends_without_answer(Duration::from_secs(5))
}

fn garbage_bytes(context: &Context) -> String {
    let accessory = context.unpaired();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut garbage = vec![0u8; 4096];
    rng.fill_bytes(&mut garbage);
    assert!(
        closes_without_answer(&accessory, &garbage, false),
        "4 KB of random bytes: still open"
    );
    let lines = b"\x00\x01\x02 / HTTP/9.9\r\n\r\n";
    assert!(
        closes_without_answer(&accessory, lines, false),
        "a bad request line: still open"
    );
    format!(
        "random bytes and a bad request line: closed without an answer; {}",
        check_unpaired_served(&accessory)
    )
}

fn truncated_requests(context: &Context) -> String {
    let accessory = context.unpaired();
    for bytes in [
        &b"POST /pair-setup HTTP/1.1\r\nContent-Length: 50\r\n\r\n\x06\x01"[..],
        b"POST /pair-se",
        b"GET /accessories HTTP/1.1\r\nHost: x",
    ] {
        assert!(
            closes_without_answer(&accessory, bytes, true),
            "{:?} then end of stream: still open",
            String::from_utf8_lossy(bytes)
        );
    }
    format!(
        "a cut head, a cut body, a cut request line: closed; {}",
        check_unpaired_served(&accessory)
    )
}

fn absurd_content_length(context: &Context) -> String {
    let accessory = context.unpaired();
    for length in ["18446744073709551616000", "4294967296", "-1", "9999999"] {
        let request = format!("POST /pair-setup HTTP/1.1\r\nContent-Length: {length}\r\n\r\n");
        assert!(
            closes_without_answer(&accessory, request.as_bytes(), false),
            "Content-Length {length}: still open"
        );
    }
    format!(
        "Content-Length 2^64·1000, 2^32, -1, 9999999: closed without an answer; {}",
        check_unpaired_served(&accessory)
    )
}

fn body_of_100_kb(context: &Context) -> String {
    let accessory = context.unpaired();
    let mut request = b"POST /pair-setup HTTP/1.1\r\nContent-Type: application/pairing+tlv8\r\nContent-Length: 102400\r\n\r\n".to_vec();
    request.resize(request.len() + 102_400, 0x06);
    assert!(
        closes_without_answer(&accessory, &request, false),
        "a 100 KB body: still open"
    );
    format!(
        "closed without an answer; {}",
        check_unpaired_served(&accessory)
    )
}

fn slowloris(context: &Context) -> String {
    let accessory = context.unpaired();
    let address = accessory.address;
    let dribble = std::thread::spawn(move || {
        let mut slow = Controller::connect(address, 51);
        let request = b"POST /pair-setup HTTP/1.1\r\nContent-Type: application/pairing+tlv8\r\n";
        let started = Instant::now();
        let mut sent = 0;
        for byte in request.iter().take(8) {
            if slow.send_raw(&[*byte]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        (sent, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let mut controller = Controller::connect(accessory.address, ADMIN);
    let pairing = controller.pair_setup(SETUP_CODE);
    let mut verified = Controller::connect(accessory.address, ADMIN);
    verified.pair_verify(&pairing);
    assert_eq!(verified.get("/accessories").status, 200);
    let paired_in = started.elapsed();
    let (sent, dribbled) = join(dribble);
    assert_eq!(sent, 8, "the slow connection was cut after {sent} bytes");
    assert!(
        paired_in < dribbled,
        "the pairing ({paired_in:?}) did not happen while the slow connection dribbled ({dribbled:?})"
    );
    format!(
        "while one connection sent {sent} bytes at 1 byte/s over {:.0} s, another paired, verified and read in {} ms",
        dribbled.as_secs_f64(),
        paired_in.as_millis()
    )
}

/// Posts `body` to `/pair-setup` on a new connection.
fn post_setup(accessory: &Accessory, body: &[u8]) -> Message {
    let mut controller = Controller::connect(accessory.address, 52);
    let reply = controller.request("POST", PAIR_SETUP, TLV, body);
    // An attempt this started holds the pair-setup lock until the accessory sees the
    // connection end: wait for that, or the next request could find it Busy.
    controller.shutdown_write();
    assert!(
        controller.closed_within(Duration::from_secs(5)),
        "the connection stayed open"
    );
    reply
}

fn malformed_tlv(context: &Context) -> String {
    let accessory = context.unpaired();
    let mut over_long_state = vec![0x06, 0xff];
    over_long_state.extend([1u8; 255]);
    let bodies: [(&str, Vec<u8>); 8] = [
        ("an empty body", vec![]),
        ("a lone type byte", vec![0x06]),
        ("a length past the end", vec![0x06, 0x05, 0x01]),
        ("no state", vec![0x00, 0x01, 0x00]),
        ("state 9", vec![0x06, 0x01, 0x09]),
        ("M3 first", vec![0x06, 0x01, 0x03]),
        ("method 99", vec![0x00, 0x01, 99, 0x06, 0x01, 0x01]),
        ("a 255-byte state", over_long_state),
    ];
    let mut seen = Vec::new();
    for (what, body) in &bodies {
        let reply = post_setup(&accessory, body);
        assert_eq!(
            reply.status, 400,
            "{what}: {} {:02x?}",
            reply.status, reply.body
        );
        seen.push(*what);
    }
    format!(
        "{}: each 400; {}",
        seen.join(", "),
        check_unpaired_served(&accessory)
    )
}

fn tlv_fragments(context: &Context) -> String {
    let accessory = context.unpaired();
    // A short fragment followed by more of the same type: ambiguous, so malformed.
    let mut short_then_more = vec![0x06, 0x01, 0x01, 0x00, 0x01, 0x00];
    short_then_more.extend([0x01, 0x02, b'a', b'b', 0x01, 0x02, b'c', b'd']);
    // A 255-byte item that ends the body: whole, with no continuation.
    let mut dangling = vec![0x06, 0x01, 0x01, 0x00, 0x01, 0x00, 0x01, 0xff];
    dangling.extend([b'x'; 255]);
    // An empty continuation after a 255-byte fragment is allowed; here it continues an
    // unknown item, which is ignored.
    let mut empty_continuation = vec![0x00, 0x01, 0x00, 0x09, 0xff];
    empty_continuation.extend([0u8; 255]);
    empty_continuation.extend([0x09, 0x00, 0x06, 0x01, 0x01]);
    let reply = post_setup(&accessory, &short_then_more);
    assert_eq!(
        reply.status, 400,
        "a short fragment then more: {}",
        reply.status
    );
    for (what, body) in [
        ("a 255-byte item at the end", &dangling),
        ("an empty continuation", &empty_continuation),
    ] {
        let reply = post_setup(&accessory, body);
        assert_eq!(state_and_error(&reply), (Some(2), None), "{what}: M2");
    }
    format!(
        "a short fragment followed by its type again: 400; a 255-byte item at the end, and an empty continuation of an unknown item: M2; {}",
        check_unpaired_served(&accessory)
    )
}

/// Starts pair-setup on `controller`: the client, waiting for M3, and M2.
fn setup_m1(controller: &mut Controller, code: &str) -> (PairSetupClient, Message) {
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (client, len) = PairSetupClient::start(code.parse().unwrap(), 0, &mut out).unwrap();
    let reply = controller.request("POST", PAIR_SETUP, TLV, &out[..len]);
    assert_eq!(reply.status, 200);
    assert_eq!(state_and_error(&reply), (Some(2), None), "M2");
    (client, reply)
}

/// An M3 with `a` as the public key and a proof of zeros.
fn m3_with(a: &[u8]) -> Vec<u8> {
    let mut body = vec![0x06, 0x01, 0x03];
    for chunk in a.chunks(255) {
        body.extend([0x03, chunk.len() as u8]);
        body.extend(chunk);
    }
    body.extend([0x04, 64]);
    body.extend([0u8; 64]);
    body
}

fn illegal_srp_public_keys(context: &Context) -> String {
    let accessory = context.unpaired();
    let n = hap_core::srp::GROUP_PRIME.to_vec();
    let two_n = {
        let mut out = vec![0u8; n.len() + 1];
        let mut carry = 0u16;
        for (i, byte) in n.iter().enumerate().rev() {
            let sum = u16::from(*byte) * 2 + carry;
            out[i + 1] = sum as u8;
            carry = sum >> 8;
        }
        out[0] = carry as u8;
        out
    };
    let mut seen = Vec::new();
    for (what, a, expected) in [
        ("A = 0", vec![0u8], "M4 Authentication"),
        ("A = 0 padded", vec![0u8; 384], "M4 Authentication"),
        ("A = N", n.clone(), "M4 Authentication"),
        ("A = 2N (385 bytes)", two_n, "400"),
    ] {
        let mut controller = Controller::connect(accessory.address, 53);
        setup_m1(&mut controller, SETUP_CODE);
        let reply = controller.request("POST", PAIR_SETUP, TLV, &m3_with(&a));
        let answer = match reply.status {
            200 => match state_and_error(&reply) {
                (Some(4), Some(2)) => "M4 Authentication",
                other => panic!("{what}: {other:?}"),
            },
            400 => "400",
            status => panic!("{what}: HTTP {status}"),
        };
        assert_eq!(answer, expected, "{what}");
        seen.push(format!("{what}: {answer}"));
    }
    // None of these is a guess at the code, so none counts towards MaxTries.
    let stored = accessory.stored().unwrap().expect("a stored state");
    assert_eq!(stored.state.failed_attempts, 0, "attempts counted");
    format!(
        "{}; no attempt counted; {}",
        seen.join(", "),
        check_unpaired_served(&accessory)
    )
}

fn second_setup_is_busy(context: &Context) -> String {
    let accessory = context.unpaired();
    let mut first = Controller::connect(accessory.address, ADMIN);
    let (mut client, reply) = setup_m1(&mut first, SETUP_CODE);
    let mut second = Controller::connect(accessory.address, 54);
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (_, len) = PairSetupClient::start(SETUP_CODE.parse().unwrap(), 0, &mut out).unwrap();
    let busy = second.request("POST", PAIR_SETUP, TLV, &out[..len]);
    assert_eq!(state_and_error(&busy), (Some(2), Some(7)), "the second M1");
    // The first goes on to the end with the M2 it had.
    let pairing = finish_setup(&mut first, &mut client, reply)
        .unwrap_or_else(|error| panic!("the first controller's setup: error {error}"));
    let mut verified = Controller::connect(accessory.address, ADMIN);
    verified.pair_verify(&pairing);
    assert_eq!(verified.get("/accessories").status, 200);
    "a second controller's M1 mid-setup: Busy; the first went on, paired, verified and read".into()
}

fn setup_when_paired(context: &Context) -> String {
    let paired = context.paired();
    let mut other = Controller::connect(paired.accessory.address, 55);
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (_, len) = PairSetupClient::start(SETUP_CODE.parse().unwrap(), 0, &mut out).unwrap();
    let reply = other.request("POST", PAIR_SETUP, TLV, &out[..len]);
    assert_eq!(
        state_and_error(&reply),
        (Some(2), Some(6)),
        "M1 when paired"
    );
    format!("M1 when paired: Unavailable; {}", paired.check_served())
}

/// One whole attempt with `code`; the M4 (or M2) error, if any.
fn attempt(accessory: &Accessory, code: &str, seed: u8) -> Option<u8> {
    let mut controller = Controller::connect(accessory.address, seed);
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (mut client, len) = PairSetupClient::start(code.parse().unwrap(), 0, &mut out).unwrap();
    let reply = controller.request("POST", PAIR_SETUP, TLV, &out[..len]);
    finish_setup(&mut controller, &mut client, reply).err()
}

/// Goes on with pair-setup from the accessory's `reply` until it pairs, or until an
/// answer carries an error, which is returned.
fn finish_setup(
    controller: &mut Controller,
    client: &mut PairSetupClient,
    mut reply: Message,
) -> Result<AccessoryPairing, u8> {
    let identity = controller.identity().clone();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    loop {
        assert_eq!(reply.status, 200, "pair-setup: HTTP {}", reply.status);
        if let (_, Some(error)) = state_and_error(&reply) {
            return Err(error);
        }
        match client.handle_response(&reply.body, &identity, &mut rng, &mut out) {
            Ok(SetupClientOutput::Send(len)) => {
                reply = controller.request("POST", PAIR_SETUP, TLV, &out[..len])
            }
            Ok(SetupClientOutput::Paired(pairing)) => return Ok(pairing),
            other => panic!("pair-setup: {other:?}"),
        }
    }
}

fn max_tries(context: &Context) -> String {
    let mut accessory = context.unpaired();
    let wrong = "123-12-123";
    for attempt_number in 1..=100 {
        let error = attempt(&accessory, wrong, 56);
        assert_eq!(
            error,
            Some(2),
            "wrong code {attempt_number}: Authentication"
        );
    }
    let stored = accessory.stored().unwrap().expect("a stored state");
    assert_eq!(stored.state.failed_attempts, 100, "stored attempts");
    assert_eq!(
        attempt(&accessory, SETUP_CODE, ADMIN),
        Some(5),
        "the right code after 100 wrong ones"
    );
    accessory = accessory.restart();
    assert_eq!(
        attempt(&accessory, SETUP_CODE, ADMIN),
        Some(5),
        "the right code after a restart"
    );
    assert_eq!(
        attempt(&accessory, wrong, 56),
        Some(5),
        "a wrong code after a restart"
    );
    // Locked out of pair-setup, it still serves: an unpaired accessory identifies itself,
    // and protected endpoints want pair-verify.
    let mut fresh = Controller::connect(accessory.address, 99);
    assert_eq!(
        fresh.request("POST", "/identify", "", b"").status,
        204,
        "/identify"
    );
    assert_eq!(fresh.get("/accessories").status, 470, "/accessories");
    "100 wrong codes each Authentication (100 stored); then MaxTries for the right code, also after SIGKILL and restart; a fresh controller then got 204 from /identify and 470 from /accessories".into()
}

fn protected_endpoints(context: &Context) -> String {
    let paired = context.paired();
    let (aid, on) = paired.ids.on;
    let mut controller = Controller::connect(paired.accessory.address, ADMIN);
    let write = format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{on},"value":true}}]}}"#);
    let requests: [(&str, String, &str, &[u8]); 7] = [
        ("GET", "/accessories".into(), "", b""),
        ("GET", format!("/characteristics?id={aid}.{on}"), "", b""),
        (
            "PUT",
            "/characteristics".into(),
            "application/hap+json",
            write.as_bytes(),
        ),
        (
            "PUT",
            "/prepare".into(),
            "application/hap+json",
            br#"{"ttl":1000,"pid":1}"#,
        ),
        (
            "POST",
            "/pairings".into(),
            TLV,
            &[0x06, 0x01, 0x01, 0x00, 0x01, 0x05],
        ),
        (
            "POST",
            "/resource".into(),
            "application/hap+json",
            br#"{"resource-type":"image"}"#,
        ),
        ("GET", "/characteristics?id=1.1".into(), "", b""),
    ];
    for (method, path, content_type, body) in &requests {
        let reply = controller.request(method, path, content_type, body);
        assert_eq!(
            reply.status,
            470,
            "{method} {path} before pair-verify: {}",
            reply.text()
        );
    }
    // /identify is not protected, but once paired it is refused.
    let reply = controller.request("POST", "/identify", "", b"");
    assert_eq!(reply.status, 400, "/identify when paired: {}", reply.text());
    assert_eq!(json(&reply)["status"], -70401, "/identify when paired");
    format!(
        "{} requests: 470 each; /identify when paired: 400; {}",
        requests.len(),
        paired.check_served()
    )
}

fn verify_unknown_controller(context: &Context) -> String {
    let paired = context.paired();
    let stranger = Controller::connect(paired.accessory.address, 57);
    let answer = verify_m4_error(stranger, &paired.pairing);
    assert_eq!(answer, Some(2), "an unknown controller's M4");
    format!(
        "an unknown controller: Authentication at M4; {}",
        paired.check_served()
    )
}

fn verify_bad_signature(context: &Context) -> String {
    let paired = context.paired();
    // The admin's pairing id, signed with another key.
    let impostor = ControllerIdentity {
        id: Controller::identity_for(ADMIN).id,
        keys: Ed25519KeyPair::from_seed(&[0xee; 32]),
    };
    let controller = Controller::connect(paired.accessory.address, 58).with_identity(impostor);
    let answer = verify_m4_error(controller, &paired.pairing);
    assert_eq!(answer, Some(2), "a bad signature's M4");
    format!(
        "the admin's id with a wrong key: Authentication at M4; {}",
        paired.check_served()
    )
}

/// How long the person takes to type the code, between M2 and M3.
const TYPING: Duration = Duration::from_secs(45);

/// When, into the typing, another controller tries to start pair-setup: well before the
/// 30 s after which HomeKitADK lets a new M1 take the attempt over.
const INTERLOPER_AT: Duration = Duration::from_secs(10);

fn slow_hands(context: &Context) -> String {
    let accessory = context.unpaired();
    let mut slow = Controller::connect(accessory.address, ADMIN);
    let (mut client, m2) = setup_m1(&mut slow, SETUP_CODE);
    let m2_at = Instant::now();
    // HomeKitADK (`HAPPairingPairSetup.c`) keeps the attempt for as long as its
    // connection lives; only another controller's M1, 30 s on, would abandon it.
    std::thread::sleep(INTERLOPER_AT);
    let mut other = Controller::connect(accessory.address, 54);
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (_, len) = PairSetupClient::start(SETUP_CODE.parse().unwrap(), 0, &mut out).unwrap();
    let busy = other.request("POST", PAIR_SETUP, TLV, &out[..len]);
    let interloper_at = m2_at.elapsed();
    assert_eq!(
        state_and_error(&busy),
        (Some(2), Some(7)),
        "another controller's M1 {interloper_at:?} after M2"
    );
    drop(other);
    if let Some(left) = TYPING.checked_sub(m2_at.elapsed()) {
        std::thread::sleep(left);
    }
    let m3_at = m2_at.elapsed();
    let pairing = finish_setup(&mut slow, &mut client, m2)
        .unwrap_or_else(|error| panic!("M3 {m3_at:?} after M2: error {error}"));
    let mut verified = Controller::connect(accessory.address, ADMIN);
    verified.pair_verify(&pairing);
    let reply = verified.get("/accessories");
    assert_eq!(reply.status, 200, "/accessories: {}", reply.text());
    format!(
        "M3 {:.1} s after M2, then M5: paired; another controller's M1 {:.1} s after M2: Busy; the slow controller then verified and read /accessories",
        m3_at.as_secs_f64(),
        interloper_at.as_secs_f64()
    )
}
