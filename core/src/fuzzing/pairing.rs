//! The pairing handlers on their own: pair-setup, pair-verify and `/pairings`, fed
//! message bodies without HTTP around them.

use std::sync::OnceLock;
use std::vec::Vec;

use super::{FuzzRng, Input};
use crate::crypto::Ed25519KeyPair;
use crate::pairing::pairings::{handle_pairings, PairingsOutput, MAX_PAIRINGS_MESSAGE_LEN};
use crate::pairing::setup::{PairSetup, SetupOutput, MAX_SETUP_MESSAGE_LEN};
use crate::pairing::verify::{PairVerify, VerifyOutput, MAX_VERIFY_MESSAGE_LEN};
use crate::pairing::{
    tlv_type, AccessoryPairing, ControllerIdentity, Pairing, PairingId, MAX_FAILED_ATTEMPTS,
};
use crate::state::AccessoryState;
use crate::time::Instant;
use crate::tlv::Tlv;
use crate::ConnectionId;

/// The setup code of every harness accessory.
pub(crate) const CODE: &str = "518-08-582";

/// The unpaired accessory every exchange starts from. Computing its SRP verifier takes
/// milliseconds, so it is made once.
pub(crate) fn unpaired() -> &'static AccessoryState {
    static STATE: OnceLock<AccessoryState> = OnceLock::new();
    STATE.get_or_init(|| AccessoryState::generate(&CODE.parse().unwrap(), &mut FuzzRng::new(1)))
}

/// The admin controller paired with [`paired`].
pub(crate) fn owner() -> &'static ControllerIdentity {
    static OWNER: OnceLock<ControllerIdentity> = OnceLock::new();
    OWNER.get_or_init(|| ControllerIdentity {
        id: PairingId::new(b"owner").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[1; 32]),
    })
}

/// A non-admin controller paired with [`paired`].
pub(crate) fn guest() -> &'static ControllerIdentity {
    static GUEST: OnceLock<ControllerIdentity> = OnceLock::new();
    GUEST.get_or_init(|| ControllerIdentity {
        id: PairingId::new(b"guest").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[2; 32]),
    })
}

/// A controller that is not paired.
pub(crate) fn stranger() -> &'static ControllerIdentity {
    static STRANGER: OnceLock<ControllerIdentity> = OnceLock::new();
    STRANGER.get_or_init(|| ControllerIdentity {
        id: PairingId::new(b"stranger").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[7; 32]),
    })
}

/// The accessory of [`unpaired`], paired with [`owner`] (admin) and [`guest`].
pub(crate) fn paired() -> &'static AccessoryState {
    static STATE: OnceLock<AccessoryState> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut state = unpaired().clone();
        for (who, admin) in [(owner(), true), (guest(), false)] {
            state
                .pairings
                .insert(Pairing {
                    id: who.id.clone(),
                    public_key: who.keys.public_key(),
                    admin,
                })
                .unwrap();
        }
        state
    })
}

/// What a controller paired with [`paired`] knows about the accessory.
pub(crate) fn accessory_pairing() -> AccessoryPairing {
    let state = unpaired();
    AccessoryPairing {
        id: PairingId::new(&state.device_id.to_ascii()).unwrap(),
        public_key: state.identity.public_key(),
    }
}

/// Which handler [`pairing_handlers`] drives, from the input's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handler {
    Setup,
    Verify,
    Pairings,
}

impl Handler {
    pub(crate) fn selector(self, storage_fails: bool) -> u8 {
        let handler = match self {
            Handler::Setup => 0,
            Handler::Verify => 1,
            Handler::Pairings => 2,
        };
        handler | if storage_fails { 0x80 } else { 0 }
    }
}

/// Drives one handler as the entry point does, so seeds can be grown reply by reply.
pub(crate) struct PairingHarness {
    handler: Handler,
    storage_fails: bool,
    state: AccessoryState,
    setup: PairSetup,
    verifies: [PairVerify; 4],
    rng: FuzzRng,
    now: Instant,
}

/// The header byte of one message: which connection or controller sends it, and what
/// happens just before.
pub(crate) mod header {
    /// Low two bits: the connection (setup, verify) or controller (`/pairings`: owner,
    /// guest, stranger, stranger).
    pub(crate) const SENDER: u8 = 0b11;
    /// Thirty-one seconds pass first, and timeouts fire.
    pub(crate) const LATER: u8 = 0b100;
    /// The sender's connection closed and reopened first.
    pub(crate) const RECONNECT: u8 = 0b1000;
}

impl PairingHarness {
    pub(crate) fn new(selector: u8) -> Self {
        let handler = match selector & 0b11 {
            0 | 3 => Handler::Setup,
            1 => Handler::Verify,
            _ => Handler::Pairings,
        };
        let state = match handler {
            Handler::Setup => unpaired().clone(),
            Handler::Verify | Handler::Pairings => paired().clone(),
        };
        Self {
            handler,
            storage_fails: selector & 0x80 != 0,
            state,
            setup: PairSetup::new(true),
            verifies: Default::default(),
            rng: FuzzRng::new(2),
            now: Instant::from_millis(0),
        }
    }

    /// Handles one message and returns the reply, if the handler gave one.
    pub(crate) fn message(&mut self, header: u8, body: &[u8]) -> Option<Vec<u8>> {
        let sender = usize::from(header & header::SENDER);
        let conn = ConnectionId(sender as u32);
        if header & header::LATER != 0 {
            // Long enough for another connection's M1 to take over the attempt.
            self.now = self.now + core::time::Duration::from_secs(31);
        }
        if header & header::RECONNECT != 0 {
            self.setup.connection_closed(conn);
            self.verifies[sender] = PairVerify::new();
        }
        let before = self.state.clone();
        let reply = match self.handler {
            Handler::Setup => self.setup_message(conn, body, &before),
            Handler::Verify => self.verify_message(sender, body),
            Handler::Pairings => self.pairings_message(sender, body, &before),
        };
        assert!(self.state.failed_attempts <= MAX_FAILED_ATTEMPTS);
        assert!(
            self.state.pairings.is_empty() || self.state.pairings.has_admin(),
            "paired without an admin"
        );
        if let Some(reply) = &reply {
            let tlv = Tlv::parse(reply).expect("a reply is valid TLV8");
            assert!(
                tlv.get_u8(tlv_type::STATE).is_some(),
                "a reply without a state"
            );
        }
        reply
    }

    fn setup_message(
        &mut self,
        conn: ConnectionId,
        body: &[u8],
        before: &AccessoryState,
    ) -> Option<Vec<u8>> {
        let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
        let output = self
            .setup
            .handle(
                self.now,
                conn,
                body,
                &mut self.state,
                &mut self.rng,
                &mut out,
            )
            .ok()?;
        let output = match output {
            SetupOutput::Persist(_) if self.storage_fails => {
                self.setup
                    .persist_failed(conn, &mut self.state)
                    .expect("the owner may report a failed store");
                assert_eq!(self.state.pairings, before.pairings, "a failed store kept");
                assert!(!self.setup.is_busy(), "a failed store keeps the lock");
                return None;
            }
            SetupOutput::Persist(_) => self
                .setup
                .persisted(conn, &self.state, &mut out)
                .expect("the owner may report a store"),
            other => other,
        };
        let len = match output {
            SetupOutput::Reply(len) => len,
            SetupOutput::Transient { reply_len, .. } => reply_len,
            SetupOutput::Persist(_) => panic!("asked to store twice"),
        };
        Some(out[..len].to_vec())
    }

    fn verify_message(&mut self, sender: usize, body: &[u8]) -> Option<Vec<u8>> {
        let mut out = [0u8; MAX_VERIFY_MESSAGE_LEN];
        match self.verifies[sender]
            .handle(body, &self.state, &mut self.rng, &mut out)
            .ok()?
        {
            VerifyOutput::Reply(len) => Some(out[..len].to_vec()),
            VerifyOutput::Verified {
                reply_len,
                controller,
                ..
            } => {
                assert!(
                    self.state.pairings.get(controller.as_bytes()).is_some(),
                    "verified a controller that is not paired"
                );
                Some(out[..reply_len].to_vec())
            }
        }
    }

    fn pairings_message(
        &mut self,
        sender: usize,
        body: &[u8],
        before: &AccessoryState,
    ) -> Option<Vec<u8>> {
        let controller = match sender {
            0 => &owner().id,
            1 => &guest().id,
            _ => &stranger().id,
        };
        let was_admin = before
            .pairings
            .get(controller.as_bytes())
            .is_some_and(|p| p.admin);
        let mut out = [0u8; MAX_PAIRINGS_MESSAGE_LEN];
        match handle_pairings(body, controller, &mut self.state, &mut out).ok()? {
            PairingsOutput::Reply(len) => {
                assert_eq!(
                    self.state.pairings, before.pairings,
                    "changed without a store"
                );
                Some(out[..len].to_vec())
            }
            PairingsOutput::Persist { reply, .. } => {
                assert!(was_admin, "a non-admin changed the pairings");
                if self.storage_fails {
                    let _ = reply.persist_failed(&mut self.state);
                    assert_eq!(self.state.pairings, before.pairings, "a failed store kept");
                    None
                } else {
                    let (len, _) = reply.persisted(&mut out).expect("room for the reply");
                    Some(out[..len].to_vec())
                }
            }
        }
    }
}

/// The pairing handlers on message bodies. The first byte picks the handler (pair-setup
/// on an unpaired accessory; pair-verify or `/pairings` on one paired with an admin and
/// a guest) and whether storage fails; then come messages, each a `header` byte and a
/// length-prefixed body.
pub fn pairing_handlers(data: &[u8]) {
    let mut input = Input::new(data);
    let mut harness = PairingHarness::new(input.byte());
    // A dozen messages reach every stage of every handler.
    for _ in 0..12 {
        if input.is_empty() {
            break;
        }
        let header = input.byte();
        let body = input.sized();
        harness.message(header, body);
    }
}
