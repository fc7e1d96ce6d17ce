//! Seed inputs for every target, grown by running the core's own controller against the
//! same deterministic harness the targets use: a pair-setup seed completes pair-setup
//! when the target replays it, so the fuzzer starts from deep inside the protocol.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::connection::{
    adapter_buffers, flags, ids, messages, post, Accessory, Outcome, LAMP_ON, MAX_CHUNKED_STREAM,
};
use super::pairing::{
    accessory_pairing, guest, header, owner, stranger, Handler, PairingHarness, CODE,
};
use super::sized;
use crate::crypto::{Ed25519KeyPair, Key};
use crate::pairing::setup::{PairSetupClient, SetupClientOutput, MAX_SETUP_MESSAGE_LEN};
use crate::pairing::verify::{PairVerifyClient, VerifyClientOutput, MAX_VERIFY_MESSAGE_LEN};
use crate::pairing::{method, tlv_type, AccessoryPairing, ControllerIdentity, PairingId};
use crate::session::FrameEncryptor;
use crate::tlv::TlvWriter;

/// The seeds of the target called `name`; empty for an unknown name.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "tlv_decode" => tlv_messages(),
        "tlv_round_trip" => tlv_round_trip_seeds(),
        "frame_decoder" => frame_decoder_seeds(),
        "session_plaintext" => session_plaintext_seeds(),
        "http_request" => requests()
            .into_iter()
            .map(|r| [&[0u8][..], &r].concat())
            .collect(),
        "characteristic_bodies" => characteristic_body_seeds(),
        "pairing_handlers" => pairing_handler_seeds(),
        "connection_unverified" => unverified_seeds(),
        "connection_verified" => verified_seeds(),
        "connection_chunked" => chunked_seeds(),
        "completions" => completion_seeds(),
        "mdns_packet" => super::mdns::seeds(),
        "controller_response" => super::controller::seeds(),
        "adaptive_control" => super::adaptive::seeds(),
        _ => Vec::new(),
    }
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: gadget.local\r\n\r\n").into_bytes()
}

fn put(path: &str, json: &str) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: gadget.local\r\nContent-Type: application/hap+json\r\n\
         Content-Length: {}\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

fn id((aid, iid): (u64, u64)) -> String {
    format!("{aid}.{iid}")
}

fn write(target: (u64, u64), value: &str) -> String {
    format!(
        r#"{{"aid":{},"iid":{},"value":{value}}}"#,
        target.0, target.1
    )
}

fn subscribe(target: (u64, u64), on: bool) -> String {
    format!(r#"{{"aid":{},"iid":{},"ev":{on}}}"#, target.0, target.1)
}

fn characteristics(items: &[String]) -> String {
    format!(r#"{{"characteristics":[{}]}}"#, items.join(","))
}

/// The JSON bodies of the requests below.
fn bodies() -> Vec<String> {
    vec![
        characteristics(&[write(ids::ON, "true"), write(ids::BRIGHTNESS, "50")]),
        characteristics(&[
            subscribe(ids::ON, true),
            subscribe(ids::SWITCH_EVENT, true),
            subscribe(LAMP_ON, true),
        ]),
        // A 207: a read-only target, an out-of-range value, an unknown id.
        characteristics(&[
            write(ids::TEMPERATURE, "20"),
            write(ids::BRIGHTNESS, "150"),
            write((9, 9), "1"),
            write(ids::ON, r#""yes""#),
        ]),
        format!(
            r#"{{"characteristics":[{}],"pid":42}}"#,
            write(ids::VAULT, "1")
        ),
        characteristics(&[format!(
            r#"{{"aid":1,"iid":{},"value":"AQEB","r":true}}"#,
            ids::CONTROL.1
        )]),
        r#"{"ttl":5000,"pid":42}"#.into(),
        r#"{"characteristics":[{"aid":1,"iid":9,"value":1.5e0,"ev":false,"authData":"","remote":false}],"x":[{"y":"\u00e9\n"}]}"#.into(),
    ]
}

/// Requests a verified controller sends.
fn requests() -> Vec<Vec<u8>> {
    let all_ids = [
        ids::ON,
        ids::BRIGHTNESS,
        ids::TEMPERATURE,
        ids::CONTROL,
        LAMP_ON,
    ]
    .map(id)
    .join(",");
    let bodies = bodies();
    let mut requests = vec![
        get("/accessories"),
        get(&format!(
            "/characteristics?id={all_ids}&meta=1&perms=1&type=1&ev=1"
        )),
        get(&format!("/characteristics?id={}", id(ids::TEMPERATURE))),
        put("/characteristics", &bodies[0]),
        put("/characteristics", &bodies[1]),
        put("/characteristics", &bodies[2]),
        [
            put("/prepare", &bodies[5]),
            put("/characteristics", &bodies[3]),
        ]
        .concat(),
        put("/characteristics", &bodies[4]),
        post("/pairings", &pairings_list()),
        post("/pairings", &pairings_add()),
        post("/pairings", &pairings_remove(&guest().id)),
        post("/identify", b""),
        get("/unknown"),
        b"DELETE /accessories HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ];
    // Subscribed, then a write and more requests in one go.
    requests.push(
        [
            put("/characteristics", &bodies[1]),
            put("/characteristics", &bodies[0]),
            get(&format!("/characteristics?id={}&ev=1", id(ids::ON))),
            get("/accessories"),
        ]
        .concat(),
    );
    requests
}

fn pairings_list() -> Vec<u8> {
    tlv(&[
        (tlv_type::STATE, &[1]),
        (tlv_type::METHOD, &[method::LIST_PAIRINGS]),
    ])
}

fn pairings_add() -> Vec<u8> {
    let newcomer = newcomer().keys.public_key();
    tlv(&[
        (tlv_type::STATE, &[1]),
        (tlv_type::METHOD, &[method::ADD_PAIRING]),
        (tlv_type::IDENTIFIER, b"newcomer"),
        (tlv_type::PUBLIC_KEY, &newcomer),
        (tlv_type::PERMISSIONS, &[1]),
    ])
}

fn pairings_remove(who: &PairingId) -> Vec<u8> {
    tlv(&[
        (tlv_type::STATE, &[1]),
        (tlv_type::METHOD, &[method::REMOVE_PAIRING]),
        (tlv_type::IDENTIFIER, who.as_bytes()),
    ])
}

fn tlv(items: &[(u8, &[u8])]) -> Vec<u8> {
    let mut buf = vec![0; 2048];
    let mut writer = TlvWriter::new(&mut buf);
    for (ty, value) in items {
        writer.item(*ty, value).unwrap();
    }
    writer.as_bytes().to_vec()
}

/// Pair-setup messages, as a controller sends them, against `reply` for the answers.
/// Returns the messages sent and the pairing, if it completed.
fn setup_messages(
    code: &str,
    identity: &ControllerIdentity,
    mut reply: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> (Vec<Vec<u8>>, Option<AccessoryPairing>) {
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let mut rng = super::FuzzRng::new(5);
    let (mut client, len) = PairSetupClient::start(code.parse().unwrap(), 0, &mut out).unwrap();
    let mut sent = vec![out[..len].to_vec()];
    for _ in 0..3 {
        let Some(answer) = reply(sent.last().unwrap()) else {
            break;
        };
        match client.handle_response(&answer, identity, &mut rng, &mut out) {
            Ok(SetupClientOutput::Send(len)) => sent.push(out[..len].to_vec()),
            Ok(SetupClientOutput::Paired(pairing)) => return (sent, Some(pairing)),
            _ => break,
        }
    }
    (sent, None)
}

/// Pair-verify messages against `reply`.
fn verify_messages(
    identity: &ControllerIdentity,
    pairing: &AccessoryPairing,
    mut reply: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Vec<Vec<u8>> {
    let mut out = [0u8; MAX_VERIFY_MESSAGE_LEN];
    let mut rng = super::FuzzRng::new(6);
    let (mut client, len) = PairVerifyClient::start(&mut rng, &mut out).unwrap();
    let mut sent = vec![out[..len].to_vec()];
    for _ in 0..2 {
        let Some(answer) = reply(sent.last().unwrap()) else {
            break;
        };
        match client.handle_response(&answer, identity, pairing, &mut out) {
            Ok(VerifyClientOutput::Send(len)) => sent.push(out[..len].to_vec()),
            _ => break,
        }
    }
    sent
}

fn newcomer() -> ControllerIdentity {
    ControllerIdentity {
        id: PairingId::new(b"newcomer").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[9; 32]),
    }
}

/// Pairing-handler seeds: a selector byte, then header bytes and sized messages.
fn pairing_handler_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (code, storage_fails) in [(CODE, false), (CODE, true), ("111-22-333", false)] {
        let selector = Handler::Setup.selector(storage_fails);
        let mut harness = PairingHarness::new(selector);
        let (sent, _) = setup_messages(code, &newcomer(), |m| harness.message(0, m));
        seeds.push(pairing_seed(selector, 0, &sent));
    }
    for (who, storage_fails) in [(owner(), false), (stranger(), false)] {
        let selector = Handler::Verify.selector(storage_fails);
        let mut harness = PairingHarness::new(selector);
        let sent = verify_messages(who, &accessory_pairing(), |m| harness.message(1, m));
        seeds.push(pairing_seed(selector, 1, &sent));
    }
    for storage_fails in [false, true] {
        let selector = Handler::Pairings.selector(storage_fails);
        let messages = [
            pairings_list(),
            pairings_add(),
            pairings_remove(&guest().id),
            pairings_remove(&owner().id),
        ];
        seeds.push(pairing_seed(selector, 0, &messages));
    }
    // The guest, who may not, and a wait between messages.
    seeds.push(pairing_seed(
        Handler::Pairings.selector(false),
        1 | header::LATER,
        &[pairings_list(), pairings_add()],
    ));
    seeds
}

fn pairing_seed(selector: u8, header: u8, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut seed = vec![selector];
    for message in messages {
        seed.push(header);
        seed.extend(sized(message));
    }
    seed
}

/// Pair-setup over HTTP, then pair-verify as the new controller, on one connection.
fn setup_then_verify(code: &str) -> Vec<u8> {
    // Grow the conversation twice: once to learn the replies, once to record it.
    let mut accessory = Accessory::new(0);
    let mut buffers = adapter_buffers();
    let mut conn = accessory.accept(&mut buffers);
    let mut ask = |path: &str, body: &[u8]| -> Option<Vec<u8>> {
        let mut outcome = Outcome::default();
        accessory.feed(&mut conn, &post(path, body), &mut outcome);
        let replies = messages(&outcome.transmitted, outcome.closed.is_some());
        let reply = replies.last().filter(|reply| reply.status == 200)?;
        Some(reply.body.clone())
    };
    let (setup, pairing) = setup_messages(code, &newcomer(), |m| ask("/pair-setup", m));
    let verify = match &pairing {
        Some(pairing) => verify_messages(&newcomer(), pairing, |m| ask("/pair-verify", m)),
        None => Vec::new(),
    };
    let mut stream = vec![0u8];
    for message in &setup {
        stream.extend(post("/pair-setup", message));
    }
    for message in &verify {
        stream.extend(post("/pair-verify", message));
    }
    stream
}

fn unverified_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![setup_then_verify(CODE), setup_then_verify("111-22-333")];
    // A paired accessory: pair-verify as the owner and as a stranger.
    for who in [owner(), stranger()] {
        let mut accessory = Accessory::new(flags::PAIRED);
        let mut buffers = adapter_buffers();
        let mut conn = accessory.accept(&mut buffers);
        let sent = verify_messages(who, &accessory_pairing(), |m| {
            let mut outcome = Outcome::default();
            accessory.feed(&mut conn, &post("/pair-verify", m), &mut outcome);
            messages(&outcome.transmitted, true)
                .last()
                .map(|reply| reply.body.clone())
        });
        let mut seed = vec![flags::PAIRED];
        for message in &sent {
            seed.extend(post("/pair-verify", message));
        }
        seeds.push(seed);
    }
    for request in [
        get("/accessories"),
        post("/identify", b""),
        post("/pair-setup", &[6, 1, 1, 0, 1, 0]),
        b"\x00\x01garbage\r\n\r\n".to_vec(),
    ] {
        seeds.push([&[0u8][..], &request].concat());
        seeds.push([&[flags::PAIRED][..], &request].concat());
    }
    seeds
}

fn verified_seeds() -> Vec<Vec<u8>> {
    let requests = requests();
    let mut seeds: Vec<Vec<u8>> = requests
        .iter()
        .map(|request| [&[0u8][..], request].concat())
        .collect();
    let everything = requests.concat();
    for flag_bits in [
        flags::AS_GUEST,
        flags::SILENT_APPLICATION,
        flags::STORAGE_FAILS,
        0x10,
        0x20,
        0x30,
    ] {
        seeds.push([&[flag_bits][..], &everything].concat());
    }
    seeds
}

fn chunked_seeds() -> Vec<Vec<u8>> {
    // Requests in turn, each seed as many as fit in what the target reads.
    let mut streams = vec![Vec::new()];
    for request in requests() {
        if streams.last().unwrap().len() + request.len() > MAX_CHUNKED_STREAM {
            streams.push(Vec::new());
        }
        streams.last_mut().unwrap().extend(request);
    }
    let mut seeds = Vec::new();
    for (index, stream) in (0u8..).zip(&streams) {
        // Small frames, so that pieces of the ciphertext cut through frames.
        let frames = [0x10, 0x20, 0x30, 0][usize::from(index % 4)];
        seeds.push([&[flags::VERIFIED | frames, index % 4][..], stream].concat());
    }
    let setup = setup_then_verify(CODE);
    seeds.push([&[0u8, 1][..], &setup[1..]].concat());
    seeds.push([&[0u8, 3][..], &setup[1..]].concat());
    seeds
}

/// TLV8 messages: every pairing message above, and values over one fragment.
fn tlv_messages() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        pairings_list(),
        pairings_add(),
        pairings_remove(&owner().id),
        tlv(&[
            (tlv_type::PUBLIC_KEY, &[0xAB; 600]),
            (tlv_type::STATE, &[2]),
        ]),
        tlv(&[(1, b"a"), (0xFF, b""), (1, b"b")]),
    ];
    let mut harness = PairingHarness::new(Handler::Setup.selector(false));
    let (sent, _) = setup_messages(CODE, &newcomer(), |m| {
        let reply = harness.message(0, m);
        if let Some(reply) = &reply {
            seeds.push(reply.clone());
        }
        reply
    });
    seeds.extend(sent);
    seeds
}

fn tlv_round_trip_seeds() -> Vec<Vec<u8>> {
    let item = |ty: u8, value: &[u8]| -> Vec<u8> {
        let len = u16::try_from(value.len()).unwrap();
        [&[ty][..], &len.to_le_bytes(), value].concat()
    };
    vec![
        [item(6, &[1]), item(0, &[0])].concat(),
        [item(3, &[0x5A; 384]), item(6, &[2]), item(2, &[7; 16])].concat(),
        [
            item(1, b"one"),
            item(1, b"two"),
            item(0xFF, b""),
            item(5, &[0; 255]),
        ]
        .concat(),
    ]
}

fn frame_decoder_seeds() -> Vec<Vec<u8>> {
    let mut encryptor = FrameEncryptor::new(Key::from_bytes([0x42; 32]));
    let plaintext = requests().concat();
    let mut wire = vec![0; FrameEncryptor::sealed_len(plaintext.len())];
    let sealed = encryptor.seal(&plaintext, &mut wire).unwrap();
    wire.truncate(sealed.written);
    vec![
        [&[0u8][..], &wire].concat(),
        [&[7u8][..], &wire[..300]].concat(),
        [&[1u8][..], &[0xFF, 0xFF, 0, 0]].concat(),
    ]
}

fn session_plaintext_seeds() -> Vec<Vec<u8>> {
    requests()
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            let frame_len = [1023u16, 0, 100, 12][i % 4];
            let piece = [0u8, 1, 33, 200][i % 4];
            let flip = [0u16, 17, 100, 2000][i % 4];
            [
                &frame_len.to_le_bytes()[..],
                &[piece],
                &flip.to_le_bytes(),
                &request,
            ]
            .concat()
        })
        .collect()
}

fn characteristic_body_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = bodies().into_iter().map(String::into_bytes).collect();
    seeds.push(b"id=1.9,1.10,2.9&meta=1&perms=0&type=true&ev=false".to_vec());
    seeds.push(br#"{"characteristics":[{"aid":1,"iid":10,"value":-0.0e+5}]}"#.to_vec());
    seeds
}

/// Runs of `completions`: operations as (operation, argument, operands) bytes after the
/// flags byte. Operation 1 is a PUT (argument: items - 1; operands: item and value per
/// item, then the pid choice), 2 a GET (argument: ids - 1; operands: an id each), 3 and 4
/// complete a write or a read (argument: which token; operand: the answer, bit 7 for a
/// failure), 5 lets time pass, 6 sets a value and 7 loses a connection.
fn completion_seeds() -> Vec<Vec<u8>> {
    // On and Brightness of the lamp and the fan's On, confirmed, then a plain Hue.
    let batch = [1u8, 3, 0, 0, 1, 50, 5, 0, 2, 10, 0];
    let confirm = [3u8, 0, 0, 3, 1, 0];
    let fail = [3u8, 0, 0x84, 3, 1, 0x8C];
    // The temperature and On, read; the read completed with a value, then a failure.
    let read = [2u8, 1, 0, 1];
    let answer = [4u8, 0, 80];
    let refuse = [4u8, 1, 0x84];
    let wait = [5u8, 100];
    let lose = [7u8, 0];
    // A timed write: its preparation (pid 1), then the vault door with pid 1.
    let timed = [8u8, 49, 0, 1, 0, 3, 1, 1];
    vec![
        [&[0u8][..], &batch, &confirm].concat(),
        [&[0u8][..], &batch, &fail].concat(),
        [&[1u8][..], &batch, &wait, &confirm].concat(),
        [&[0u8][..], &read, &answer, &read, &refuse, &read, &wait].concat(),
        [&[0u8][..], &batch, &read, &lose, &confirm, &answer].concat(),
        [&[0u8][..], &timed, &confirm].concat(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::connection::{adapter_buffers, messages, Accessory, Outcome};
    use super::*;

    /// The setup seeds really pair and verify when replayed, so the fuzzer starts from
    /// an encrypted session.
    #[test]
    fn the_setup_seed_ends_verified() {
        let seed = setup_then_verify(CODE);
        let mut accessory = Accessory::new(seed[0]);
        let mut buffers = adapter_buffers();
        let mut conn = accessory.accept(&mut buffers);
        let mut outcome = Outcome::default();
        accessory.feed(&mut conn, &seed[1..], &mut outcome);
        assert!(conn.is_encrypted());
        assert!(outcome
            .events
            .iter()
            .any(|e| matches!(e, crate::server::Event::Verified { .. })));
        assert_eq!(messages(&outcome.transmitted, false).len(), 5);
    }

    #[test]
    fn the_wrong_code_seed_is_refused_at_m4() {
        let seed = setup_then_verify("111-22-333");
        assert_eq!(seed.windows(11).filter(|w| w == b"/pair-setup").count(), 2);
        assert_eq!(seed.windows(12).filter(|w| w == b"/pair-verify").count(), 0);
    }
}
