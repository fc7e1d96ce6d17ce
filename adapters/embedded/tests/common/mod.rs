//! What the tests share: the accessory's database and state, and a controller's side of
//! HTTP, pair-verify and the encrypted session, independent of how bytes travel.
#![allow(dead_code)]

use hap_core::catalog::{characteristic as c, service as s};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::database::{CharacteristicDef, Entry, ServiceDef};
use hap_core::pairing::verify::{PairVerifyClient, VerifyClientOutput};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, Pairing, PairingId};
use hap_core::session::{FrameEncryptor, Role, Session};
use hap_core::setup::DeviceId;
use hap_core::state::{AccessoryState, SetupVerifier};
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

/// One HTTP message: the start line and the body.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) start: String,
    pub(crate) body: Vec<u8>,
}

impl Message {
    pub(crate) fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn is_event(&self) -> bool {
        self.start.starts_with("EVENT/1.0 ")
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Takes one complete message off the front of `buf`, with a Content-Length or chunked
/// body.
pub(crate) fn parse(buf: &mut Vec<u8>) -> Option<Message> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let mut length = 0;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().expect("a length");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let (body, end) = if chunked {
        let mut body = Vec::new();
        let mut at = head_end;
        loop {
            let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size_text = String::from_utf8_lossy(&buf[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("a chunk size");
            let data = line_end + 2;
            if buf.len() < data + size + 2 {
                return None;
            }
            body.extend_from_slice(&buf[data..data + size]);
            at = data + size + 2;
            if size == 0 {
                break (body, at);
            }
        }
    } else {
        if buf.len() < head_end + length {
            return None;
        }
        (buf[head_end..head_end + length].to_vec(), head_end + length)
    };
    buf.drain(..end);
    Some(Message { start, body })
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

pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\n\r\n").into_bytes()
}

pub(crate) fn put(body: &str) -> Vec<u8> {
    format!(
        "PUT /characteristics HTTP/1.1\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/pairing+tlv8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// A `/pairings` body that removes the pairing `id`.
pub(crate) fn remove_pairing(id: &PairingId) -> Vec<u8> {
    let id = id.as_bytes();
    let mut tlv = vec![0x06, 1, 1, 0x00, 1, 4, 0x01, id.len() as u8];
    tlv.extend_from_slice(id);
    tlv
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

/// How a controller exchanges requests with the accessory.
pub(crate) trait Transport {
    /// The controller's end.
    fn peer(&mut self) -> &mut Peer;
    /// Sends `request` (plaintext; the transport seals it) and returns the response.
    fn request(&mut self, request: &[u8]) -> Message;
}

/// Runs pair-verify over `transport` and switches it to the encrypted session.
pub(crate) fn verify(transport: &mut impl Transport) {
    let accessory = accessory_pairing();
    let mut out = [0u8; 1024];
    let (mut client, mut len) =
        PairVerifyClient::start(&mut transport.peer().rng, &mut out).unwrap();
    for _ in 0..4 {
        let response = transport.request(&post("/pair-verify", &out[..len]));
        assert_eq!(response.status(), 200, "{response:?}");
        let peer = transport.peer();
        match client
            .handle_response(&response.body, &peer.identity, &accessory, &mut out)
            .unwrap()
        {
            VerifyClientOutput::Send(next) => len = next,
            VerifyClientOutput::Verified(keys) => {
                assert!(peer.plain.is_empty(), "nothing after the last verify reply");
                peer.session = Some(Session::new(keys, Role::Controller));
                return;
            }
        }
    }
    panic!("pair-verify did not finish");
}
