//! What the tests share: the accessory's database and state, and a controller's side of
//! HTTP, pair-verify and the encrypted session, independent of how bytes travel.
#![allow(dead_code)]

use hap_core::catalog::{characteristic as c, service as s};
use hap_core::controller::{request, response, Connection, Event, Output, OwnedBuffers};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::database::{CharacteristicDef, Entry, ServiceDef};
use hap_core::http::{content_type::HAP_JSON, Status};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, Pairing, PairingId};
use hap_core::session::{FrameEncryptor, Session};
use hap_core::setup::DeviceId;
use hap_core::state::{AccessoryState, SetupVerifier};
use hap_core::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub(crate) static LIGHT: [Entry<'static>; 12] = [
    Entry::Accessory(1),
    Entry::Service(ServiceDef::new(1, &s::ACCESSORY_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(2, &c::IDENTIFY)),
    Entry::Characteristic(CharacteristicDef::new(3, &c::MANUFACTURER)),
    Entry::Characteristic(CharacteristicDef::new(4, &c::MODEL)),
    Entry::Characteristic(CharacteristicDef::new(5, &c::NAME)),
    Entry::Characteristic(CharacteristicDef::new(6, &c::SERIAL_NUMBER)),
    Entry::Characteristic(CharacteristicDef::new(7, &c::FIRMWARE_REVISION)),
    Entry::Service(ServiceDef::new(8, &s::LIGHTBULB)),
    Entry::Characteristic(CharacteristicDef::new(9, &c::ON)),
    // The primary accessory's HAP Protocol Information, which iOS expects.
    Entry::Service(ServiceDef::new(10, &s::PROTOCOL_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(11, &c::VERSION)),
];

/// Value slots for [`LIGHT`].
pub(crate) const LIGHT_SLOTS: usize = 8;

pub(crate) const DEVICE_ID: DeviceId = DeviceId([1, 2, 3, 4, 5, 6]);

pub(crate) fn accessory_keys() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed(&[1; 32])
}

/// What a paired controller knows about the accessory.
pub(crate) fn accessory_pairing() -> AccessoryPairing {
    AccessoryPairing {
        id: PairingId::new(&DEVICE_ID.to_ascii()).unwrap(),
        public_key: accessory_keys().public_key(),
    }
}

/// Controller `seed`, named `c<seed>`.
pub(crate) fn identity(seed: u8) -> ControllerIdentity {
    ControllerIdentity {
        id: PairingId::new(&[b'c', b'0' + seed]).unwrap(),
        keys: Ed25519KeyPair::from_seed(&[seed; 32]),
    }
}

/// The accessory's state, paired with admin controllers `1..=paired`, entered by hand:
/// pair-setup needs SRP and so a heap.
pub(crate) fn state(paired: u8) -> AccessoryState {
    let mut state = AccessoryState::new(
        DEVICE_ID,
        accessory_keys(),
        SetupVerifier {
            salt: [0; 16],
            verifier: [0; 384],
        },
    );
    for seed in 1..=paired {
        let controller = identity(seed);
        state
            .pairings
            .insert(Pairing {
                id: controller.id.clone(),
                public_key: controller.keys.public_key(),
                admin: true,
            })
            .unwrap();
    }
    state
}

/// One HTTP message from the accessory: a response, or an `EVENT/1.0`.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) status: u16,
    pub(crate) event: bool,
    pub(crate) body: Vec<u8>,
}

impl Message {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Takes one complete message off the front of `buf`, parsed by the core.
pub(crate) fn parse(buf: &mut Vec<u8>) -> Option<Message> {
    let message = match response::parse_message(buf).expect("a well-formed message") {
        Status::Complete(message) => message,
        Status::Partial => return None,
    };
    let body = buf[message.body_start..message.body_end].to_vec();
    buf.drain(..message.len);
    Some(Message {
        status: message.status,
        event: message.event,
        body,
    })
}

/// The JSON text after `"value":` up to the next `}` or `,`.
pub(crate) fn value_of(json: &str) -> String {
    let at = json.find("\"value\":").expect("a value") + "\"value\":".len();
    json[at..]
        .split(['}', ','])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A request written by the core's builder `write`.
fn written<E>(write: impl Fn(&mut [u8]) -> Result<usize, E>) -> Vec<u8> {
    let mut out = vec![0; 1024];
    loop {
        if let Ok(len) = write(&mut out) {
            out.truncate(len);
            return out;
        }
        assert!(out.len() < 1 << 24, "a request of over 16 MiB");
        out.resize(2 * out.len(), 0);
    }
}

pub(crate) fn get(path: &str) -> Vec<u8> {
    written(|out| request::custom(out, "GET", path, None, b""))
}

pub(crate) fn put(body: &str) -> Vec<u8> {
    written(|out| {
        request::custom(
            out,
            "PUT",
            "/characteristics",
            Some(HAP_JSON),
            body.as_bytes(),
        )
    })
}

pub(crate) fn post(path: &str, body: &[u8]) -> Vec<u8> {
    written(|out| request::post_tlv(out, "192.0.2.7:51826", path, body))
}

/// A `/pairings` body that removes the pairing `id`.
pub(crate) fn remove_pairing(id: &PairingId) -> Vec<u8> {
    written(|out| request::remove_pairing_body(out, id.as_bytes()))
}

/// A controller's end of one connection, without the transport.
pub(crate) struct Peer {
    pub(crate) identity: ControllerIdentity,
    pub(crate) session: Option<Session>,
    /// Received plaintext not yet parsed.
    pub(crate) plain: Vec<u8>,
    /// Events that arrived while waiting for a response.
    pub(crate) events: Vec<Message>,
    pub(crate) rng: ChaCha20Rng,
}

impl Peer {
    pub(crate) fn new(seed: u8) -> Self {
        Self {
            identity: identity(seed),
            session: None,
            plain: Vec::new(),
            events: Vec::new(),
            rng: ChaCha20Rng::seed_from_u64(100 + u64::from(seed)),
        }
    }

    /// `request` as it goes on the wire: sealed once the session is encrypted.
    pub(crate) fn wire(&mut self, request: &[u8]) -> Vec<u8> {
        match &mut self.session {
            Some(session) => {
                let mut out = vec![0; FrameEncryptor::sealed_len(request.len())];
                let sealed = session.outbound.seal(request, &mut out).unwrap();
                assert_eq!(sealed.consumed, request.len());
                out.truncate(sealed.written);
                out
            }
            None => request.to_vec(),
        }
    }

    /// Takes bytes from the wire, decrypting them once the session is encrypted.
    pub(crate) fn take(&mut self, mut bytes: &[u8]) {
        let Some(session) = &mut self.session else {
            self.plain.extend_from_slice(bytes);
            return;
        };
        while !bytes.is_empty() {
            let opened = session.inbound.open(bytes).expect("frames decrypt");
            if let Some(text) = opened.plaintext {
                self.plain.extend_from_slice(text);
            }
            bytes = &bytes[opened.consumed..];
        }
    }

    /// The next complete message received, if any.
    pub(crate) fn message(&mut self) -> Option<Message> {
        parse(&mut self.plain)
    }
}

/// How a controller's bytes travel to the accessory and back.
pub(crate) trait Transport {
    /// The controller's end.
    fn peer(&mut self) -> &mut Peer;
    /// Puts `wire` on the way to the accessory.
    fn send_wire(&mut self, wire: &[u8]);
    /// Lets the accessory run and returns what it sent (perhaps nothing yet).
    fn receive_wire(&mut self) -> Vec<u8>;

    /// Sends `request` (plaintext; sealed once verified) and returns the response,
    /// keeping events that come first.
    fn request(&mut self, request: &[u8]) -> Message {
        let wire = self.peer().wire(request);
        self.send_wire(&wire);
        for _ in 0..10_000 {
            while let Some(message) = self.peer().message() {
                if !message.event {
                    return message;
                }
                self.peer().events.push(message);
            }
            let bytes = self.receive_wire();
            self.peer().take(&bytes);
        }
        panic!("no response within 10 000 receives");
    }
}

/// Runs pair-verify over `transport` in the core's controller connection, and takes its
/// session.
pub(crate) fn verify(transport: &mut impl Transport) {
    let mut buffers = OwnedBuffers::new(0, 0);
    let mut conn = Connection::new(buffers.borrow(), "192.0.2.7:51826").unwrap();
    let now = Instant::from_millis(0);
    let peer = transport.peer();
    conn.pair_verify(now, &peer.identity, &accessory_pairing(), &mut peer.rng)
        .unwrap();
    let mut pending = std::mem::take(&mut peer.plain);
    for _ in 0..10_000 {
        while let Some(output) = conn.poll_output(&mut transport.peer().rng) {
            match output {
                Output::Transmit(bytes) => transport.send_wire(bytes),
                Output::Event(Event::Verified) => {
                    transport.peer().session = conn.into_session();
                    return;
                }
                Output::Event(Event::PairingFailed { failure, .. }) => {
                    panic!("pair-verify refused: {failure}")
                }
                other => panic!("during pair-verify: {other:?}"),
            }
        }
        pending.extend(transport.receive_wire());
        let taken = conn.handle_input(now, &pending);
        pending.drain(..taken);
    }
    panic!("pair-verify did not finish");
}
