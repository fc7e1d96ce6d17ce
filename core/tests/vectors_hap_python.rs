//! Replays the exchanges recorded between HAP-python 5.0.0 and aiohomekit 4.0.1
//! (`vectors/hap-python-5.0.0`, see `vectors/README.md`) through `hap-core`, in both
//! roles, with the recorded identities and randomness.
//!
//! - Accessory role: the controller's recorded requests go into `hap-core`'s accessory
//!   with HAP-python's identity, salt, SRP b and X25519 secret, and its answers must
//!   carry the same TLV items, byte for byte, as HAP-python's.
//! - Controller role: HAP-python's recorded answers go into `hap-core`'s controller with
//!   aiohomekit's identity and randomness, and its requests must carry the same TLV items
//!   as aiohomekit's, derive the same session keys, and open every recorded frame.
//!
//! TLV items are compared as lists sorted by type: the two implementations put some
//! items in another order (listed in `vectors/README.md`), which HAP does not constrain.

use std::collections::VecDeque;
use std::path::PathBuf;

use hap_core::crypto::{Ed25519KeyPair, Key};
use hap_core::pairing::setup::{
    PairSetup, PairSetupClient, SetupClientOutput, SetupOutput, MAX_SETUP_MESSAGE_LEN,
};
use hap_core::pairing::verify::{PairVerify, PairVerifyClient, VerifyClientOutput, VerifyOutput};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, Pairing, PairingError, PairingId};
use hap_core::session::{FrameDecryptor, FrameEncryptor, SessionKeys};
use hap_core::setup::{DeviceId, SetupCode};
use hap_core::state::{AccessoryState, SetupVerifier};
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_core::{CryptoRng, RngCore};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Reading the recordings.

fn recording(exchange: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/hap-python-5.0.0")
        .join(format!("{exchange}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("a hex string")).expect("valid hex")
}

fn array<const N: usize>(value: &Value) -> [u8; N] {
    bytes(value).try_into().expect("the recorded length")
}

/// The draws of `side` whose `where` ends with `function`, in order.
fn draws(recording: &Value, side: &str, function: &str) -> Vec<Vec<u8>> {
    recording["randomness"]
        .as_array()
        .expect("randomness")
        .iter()
        .filter(|d| d["side"] == side && d["where"].as_str().unwrap().ends_with(function))
        .map(|d| bytes(&d["hex"]))
        .collect()
}

/// The plaintext HTTP messages of the recording's first connection, and their senders.
fn plaintext(recording: &Value) -> Vec<(String, Vec<u8>)> {
    recording["connections"][0]["plaintext"]
        .as_array()
        .expect("plaintext messages")
        .iter()
        .map(|m| (m["from"].as_str().unwrap().to_owned(), bytes(&m["http"])))
        .collect()
}

/// The requests (from the controller) and the responses (from the accessory), paired.
fn round_trips(recording: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let messages = plaintext(recording);
    messages
        .chunks(2)
        .map(|pair| {
            assert_eq!(
                (pair[0].0.as_str(), pair[1].0.as_str()),
                ("controller", "accessory")
            );
            (body(&pair[0].1).to_vec(), body(&pair[1].1).to_vec())
        })
        .collect()
}

/// The bodies one side sent: requests (`from` controller) or responses (accessory).
fn bodies(recording: &Value, from: &str) -> Vec<Vec<u8>> {
    round_trips(recording)
        .into_iter()
        .map(|(request, response)| {
            if from == "controller" {
                request
            } else {
                response
            }
        })
        .collect()
}

/// Each of `ours` carries the same TLV items as the recorded message at its place.
fn assert_same_items(ours: &[Vec<u8>], theirs: &[Vec<u8>]) {
    assert_eq!(ours.len(), theirs.len(), "the number of messages");
    for (index, (ours, theirs)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(items(ours), items(theirs), "message {index}");
    }
}

/// An HTTP message's body.
fn body(message: &[u8]) -> &[u8] {
    let at = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    &message[at + 4..]
}

/// TLV8 items with fragments joined, sorted by type (stable for repeated types).
///
/// Deliberately not `hap_core::tlv`: the reader under test should not also judge.
fn items(body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut items: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut at = 0;
    let mut continues = false;
    while at < body.len() {
        let (kind, len) = (body[at], usize::from(body[at + 1]));
        let value = &body[at + 2..at + 2 + len];
        match items.last_mut() {
            Some((last, joined)) if continues && *last == kind => joined.extend_from_slice(value),
            _ => items.push((kind, value.to_vec())),
        }
        continues = len == 255;
        at += 2 + len;
    }
    items.sort_by_key(|(kind, _)| *kind);
    items
}

/// Hands out recorded random values, in order, one per draw of the right length.
struct Recorded(VecDeque<Vec<u8>>);

impl Recorded {
    fn new(values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self(values.into_iter().collect())
    }
}

impl RngCore for Recorded {
    fn next_u32(&mut self) -> u32 {
        panic!("an unexpected draw of a u32");
    }
    fn next_u64(&mut self) -> u64 {
        panic!("an unexpected draw of a u64");
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let value = self
            .0
            .pop_front()
            .unwrap_or_else(|| panic!("an unexpected draw of {} bytes", dest.len()));
        // A shorter recorded secret is the same number, left-padded (aiohomekit's SRP a
        // is 16 bytes; hap-core draws 32).
        assert!(
            value.len() <= dest.len(),
            "a recorded value longer than the draw"
        );
        let pad = dest.len() - value.len();
        dest[..pad].fill(0);
        dest[pad..].copy_from_slice(&value);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Recorded {}

// ---------------------------------------------------------------------------------------
// The two parties, as recorded.

fn setup_code(recording: &Value) -> SetupCode {
    recording["accessory"]["setup_code"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn device_id(recording: &Value) -> DeviceId {
    recording["accessory"]["device_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn accessory_keys(recording: &Value) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed(&array(&recording["accessory"]["ltsk"]))
}

/// HAP-python's state before pair-setup attempt `attempt` (0 for the first), with the
/// salt it drew for that attempt: HAP-python draws a salt per attempt, `hap-core` keeps
/// one, so the replay takes the attempt's.
fn accessory_state(recording: &Value, attempt: usize) -> (AccessoryState, Vec<u8>) {
    let srp = draws(recording, "accessory", "pyhap.hsrp.__init__");
    let (salt, b) = (&srp[2 * attempt], &srp[2 * attempt + 1]);
    let verifier = SetupVerifier::new(&setup_code(recording), salt.clone().try_into().unwrap());
    let state = AccessoryState::new(device_id(recording), accessory_keys(recording), verifier);
    (state, b.clone())
}

/// The controller that pair-setup paired.
fn controller(recording: &Value) -> ControllerIdentity {
    ControllerIdentity {
        id: PairingId::new(
            recording["controller"]["pairing_id"]
                .as_str()
                .unwrap()
                .as_bytes(),
        )
        .unwrap(),
        keys: Ed25519KeyPair::from_seed(&array(&recording["controller"]["ltsk"])),
    }
}

fn accessory_pairing(recording: &Value) -> AccessoryPairing {
    AccessoryPairing {
        id: PairingId::new(
            recording["accessory"]["device_id"]
                .as_str()
                .unwrap()
                .as_bytes(),
        )
        .unwrap(),
        public_key: array(&recording["accessory"]["ltpk"]),
    }
}

/// HAP-python's state once paired with the recorded controller.
fn paired_state(recording: &Value) -> AccessoryState {
    let (mut state, _) = accessory_state(recording, 0);
    let owner = controller(recording);
    state
        .pairings
        .insert(Pairing {
            id: owner.id.clone(),
            public_key: owner.keys.public_key(),
            admin: true,
        })
        .unwrap();
    state
}

/// The accessory's answers to `requests`, through `hap-core`'s pair-setup.
fn accessory_setup_replies(
    state: &mut AccessoryState,
    rng: &mut Recorded,
    requests: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    let mut setup = PairSetup::new();
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let conn = ConnectionId(1);
    let now = Instant::from_millis(1_000);
    requests
        .iter()
        .map(|request| {
            let mut output = setup
                .handle(now, conn, request, state, rng, &mut out)
                .unwrap();
            if let SetupOutput::Persist(_) = output {
                output = setup.persisted(conn, state, &mut out).unwrap();
            }
            match output {
                SetupOutput::Reply(len) => out[..len].to_vec(),
                other => panic!("an unexpected pair-setup output {other:?}"),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Pair-setup.

#[test]
fn accessory_answers_pair_setup_m1_to_m6_as_hap_python_did() {
    let recording = recording("pair-setup");
    // The first attempt, with the wrong code, is in its own file; this is the second.
    let (mut state, b) = accessory_state(&recording, 1);
    let trips = round_trips(&recording);
    assert_eq!(trips.len(), 3, "M1/M2, M3/M4, M5/M6");
    let requests = bodies(&recording, "controller");
    let replies = accessory_setup_replies(&mut state, &mut Recorded::new([b]), &requests);
    assert_same_items(&replies, &bodies(&recording, "accessory"));
    // M2's public key B and M3's A are 384 bytes: fragmented on the wire.
    assert!(items(&trips[0].1).iter().any(|(_, v)| v.len() == 384));
    assert!(state.is_paired(), "the controller is paired");
    let owner = controller(&recording);
    let stored = state
        .pairings
        .get(owner.id.as_bytes())
        .expect("the pairing");
    assert_eq!(stored.public_key, owner.keys.public_key());
}

#[test]
fn accessory_refuses_the_wrong_code_as_hap_python_did() {
    let recording = recording("pair-setup-wrong-code");
    let (mut state, b) = accessory_state(&recording, 0);
    let trips = round_trips(&recording);
    assert_eq!(trips.len(), 2, "M1/M2, M3/M4 with Authentication");
    let requests = bodies(&recording, "controller");
    let replies = accessory_setup_replies(&mut state, &mut Recorded::new([b]), &requests);
    assert_same_items(&replies, &bodies(&recording, "accessory"));
    assert_eq!(items(&replies[1]), vec![(6, vec![4]), (7, vec![2])]);
    assert!(!state.is_paired());
}

/// aiohomekit's randomness for pair-setup attempt `attempt`: its SRP a, then (in the
/// successful attempt) nothing else that hap-core draws; the pairing id and key pair come
/// from `controller`.
fn controller_srp_secret(recording: &Value, attempt: usize) -> Vec<u8> {
    draws(recording, "controller", "generate_private_key")[attempt].clone()
}

/// `hap-core`'s controller fed HAP-python's answers: its requests, and how it ended.
fn controller_setup_requests(
    recording: &Value,
    attempt: usize,
) -> (Vec<Vec<u8>>, Result<SetupClientOutput, PairingError>) {
    let identity = controller(recording);
    let mut rng = Recorded::new([controller_srp_secret(recording, attempt)]);
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (mut client, len) =
        PairSetupClient::start(setup_code_tried(recording), 0, &mut out).unwrap();
    let mut requests = vec![out[..len].to_vec()];
    for (_, answer) in round_trips(recording) {
        match client.handle_response(&answer, &identity, &mut rng, &mut out) {
            Ok(SetupClientOutput::Send(len)) => requests.push(out[..len].to_vec()),
            ended => return (requests, ended),
        }
    }
    panic!("the recording ended before pair-setup did");
}

/// The code aiohomekit tried in this recording.
fn setup_code_tried(recording: &Value) -> SetupCode {
    match recording["exchange"].as_str().unwrap() {
        // capture.py tries this code first.
        "pair-setup-wrong-code" => "111-22-333".parse().unwrap(),
        _ => setup_code(recording),
    }
}

#[test]
fn controller_sends_aiohomekits_pair_setup_requests_and_accepts_hap_python() {
    let recording = recording("pair-setup");
    let (ours, ended) = controller_setup_requests(&recording, 1);
    assert_same_items(&ours, &bodies(&recording, "controller"));
    match ended {
        Ok(SetupClientOutput::Paired(pairing)) => {
            assert_eq!(pairing, accessory_pairing(&recording))
        }
        other => panic!("pair-setup ended with {other:?}"),
    }
}

#[test]
fn controller_sends_aiohomekits_requests_with_the_wrong_code_and_hears_authentication() {
    let recording = recording("pair-setup-wrong-code");
    let (ours, ended) = controller_setup_requests(&recording, 0);
    assert_same_items(&ours, &bodies(&recording, "controller"));
    assert!(
        matches!(ended, Err(PairingError::Rejected(_))),
        "ended with {ended:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Pair-verify and the session.

/// The session keys the recording derived.
fn recorded_keys(recording: &Value) -> SessionKeys {
    let session = &recording["connections"][0]["session"];
    SessionKeys {
        accessory_to_controller: Key::from_bytes(array(&session["accessory_to_controller_key"])),
        controller_to_accessory: Key::from_bytes(array(&session["controller_to_accessory_key"])),
    }
}

/// Pair-verify's X25519 secrets in `recording`: (controller's, accessory's), per attempt.
fn verify_secrets(recording: &Value, side: &str) -> Vec<Vec<u8>> {
    recording["randomness"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["side"] == side && d["what"] == "x25519 secret")
        .map(|d| bytes(&d["hex"]))
        .collect()
}

#[test]
fn accessory_answers_pair_verify_as_hap_python_did_and_derives_the_session_keys() {
    let recording = recording("session");
    let state = paired_state(&recording);
    // The session's pair-verify is the first in the recording.
    let secret = verify_secrets(&recording, "accessory")[0].clone();
    let mut rng = Recorded::new([secret]);
    let mut verify = PairVerify::new();
    let mut keys = None;
    for (request, theirs) in round_trips(&recording) {
        let mut out = [0u8; 256];
        let len = match verify.handle(&request, &state, &mut rng, &mut out).unwrap() {
            VerifyOutput::Reply(len) => len,
            VerifyOutput::Verified {
                reply_len,
                keys: derived,
                ..
            } => {
                keys = Some(derived);
                reply_len
            }
        };
        assert_eq!(items(&out[..len]), items(&theirs));
    }
    assert_eq!(keys, Some(recorded_keys(&recording)));
}

#[test]
fn accessory_refuses_an_unknown_controller_as_hap_python_did() {
    let recording = recording("pair-verify-unknown-controller");
    let state = paired_state(&recording);
    // This connection's pair-verify is the recording's second.
    let secret = verify_secrets(&recording, "accessory")[1].clone();
    let mut rng = Recorded::new([secret]);
    let mut verify = PairVerify::new();
    let trips = round_trips(&recording);
    for (request, theirs) in &trips {
        let mut out = [0u8; 256];
        let len = match verify.handle(request, &state, &mut rng, &mut out).unwrap() {
            VerifyOutput::Reply(len) => len,
            VerifyOutput::Verified { .. } => panic!("an unknown controller verified"),
        };
        assert_eq!(items(&out[..len]), items(theirs));
    }
    assert_eq!(items(&trips[1].1), vec![(6, vec![4]), (7, vec![2])]);
}

#[test]
fn controller_sends_aiohomekits_pair_verify_requests_and_derives_the_session_keys() {
    let recording = recording("session");
    let identity = controller(&recording);
    let secret = verify_secrets(&recording, "controller")[0].clone();
    let mut out = [0u8; 256];
    let (mut client, len) =
        PairVerifyClient::start(&mut Recorded::new([secret]), &mut out).unwrap();
    let mut ours = vec![out[..len].to_vec()];
    let mut keys = None;
    for (_, answer) in round_trips(&recording) {
        match client
            .handle_response(&answer, &identity, &accessory_pairing(&recording), &mut out)
            .unwrap()
        {
            VerifyClientOutput::Send(len) => ours.push(out[..len].to_vec()),
            VerifyClientOutput::Verified(derived) => keys = Some(derived),
        }
    }
    assert_same_items(&ours, &bodies(&recording, "controller"));
    assert_eq!(keys, Some(recorded_keys(&recording)));
}

/// The recorded frames one side sent: (wire bytes, plaintext).
fn frames(recording: &Value, from: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    recording["connections"][0]["frames"][from]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (bytes(&f["wire"]), bytes(&f["plaintext"])))
        .collect()
}

#[test]
fn controller_opens_every_frame_hap_python_sent() {
    let recording = recording("session");
    let keys = recorded_keys(&recording);
    let mut decryptor = FrameDecryptor::new(keys.accessory_to_controller);
    let recorded = frames(&recording, "accessory");
    assert!(recorded.len() >= 10, "responses and an EVENT");
    let wire: Vec<u8> = recorded.iter().flat_map(|(w, _)| w.clone()).collect();
    let mut at = 0;
    let mut opened = Vec::new();
    while at < wire.len() {
        let frame = decryptor.open(&wire[at..]).expect("a frame that opens");
        at += frame.consumed;
        opened.push(frame.plaintext.expect("whole frames").to_vec());
    }
    let plaintexts: Vec<Vec<u8>> = recorded.into_iter().map(|(_, p)| p).collect();
    assert_eq!(opened, plaintexts);
}

#[test]
fn controller_seals_aiohomekits_requests_into_the_same_frames() {
    let recording = recording("session");
    let keys = recorded_keys(&recording);
    let mut encryptor = FrameEncryptor::new(keys.controller_to_accessory);
    for (wire, plaintext) in frames(&recording, "controller") {
        let mut out = vec![0u8; wire.len() + 64];
        let sealed = encryptor.seal(&plaintext, &mut out).unwrap();
        assert_eq!(sealed.consumed, plaintext.len());
        assert_eq!(out[..sealed.written], wire[..]);
    }
}

#[test]
fn accessory_opens_every_frame_aiohomekit_sent() {
    let recording = recording("session");
    let keys = recorded_keys(&recording);
    let mut decryptor = FrameDecryptor::new(keys.controller_to_accessory);
    for (wire, plaintext) in frames(&recording, "controller") {
        let frame = decryptor.open(&wire).unwrap();
        assert_eq!(frame.consumed, wire.len());
        assert_eq!(frame.plaintext, Some(&plaintext[..]));
    }
}
