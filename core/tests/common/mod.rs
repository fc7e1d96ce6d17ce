//! An in-memory controller and accessory, with seeded randomness and a virtual clock.
#![allow(dead_code, unreachable_pub)]

use hap_core::crypto::Ed25519KeyPair;
use hap_core::pairing::pairings::{handle_pairings, PairingsOutput};
use hap_core::pairing::setup::{
    PairSetup, PairSetupClient, SetupClientOutput, SetupOutput, MAX_SETUP_MESSAGE_LEN,
};
use hap_core::pairing::verify::{PairVerify, PairVerifyClient, VerifyClientOutput, VerifyOutput};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, PairingError, PairingId};
use hap_core::session::SessionKeys;
use hap_core::setup::SetupCode;
use hap_core::state::{AccessoryState, SetupVerifier};
use hap_core::time::Instant;
use hap_core::tlv::Tlv;
use hap_core::ConnectionId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const CODE: &str = "518-08-582";

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn controller(name: &str, seed: u8) -> ControllerIdentity {
    ControllerIdentity {
        id: PairingId::new(name.as_bytes()).unwrap(),
        keys: Ed25519KeyPair::from_seed(&[seed; 32]),
    }
}

/// The accessory's shared state, as a server would hold it.
pub struct Accessory {
    pub state: AccessoryState,
    pub setup: PairSetup,
    pub rng: ChaCha20Rng,
    pub now: Instant,
    /// Every state the caller was asked to store, in order.
    pub stored: Vec<AccessoryState>,
}

impl Accessory {
    pub fn new(seed: u64) -> Self {
        let mut rng = rng(seed);
        let state = AccessoryState::generate(&CODE.parse().unwrap(), &mut rng);
        Self {
            state,
            setup: PairSetup::new(true),
            rng,
            now: Instant::from_millis(1_000),
            stored: Vec::new(),
        }
    }

    /// Simulates a restart: the state goes through its plain fields, as a store would
    /// keep them, and everything else starts afresh.
    pub fn restart(&mut self) {
        let stored = self
            .stored
            .last()
            .cloned()
            .unwrap_or_else(|| self.state.clone());
        let mut reloaded = AccessoryState::new(
            stored.device_id,
            Ed25519KeyPair::from_seed(&stored.identity.seed()),
            SetupVerifier {
                salt: stored.setup.salt,
                verifier: stored.setup.verifier,
            },
        );
        reloaded.pairings = stored.pairings.clone();
        reloaded.failed_attempts = stored.failed_attempts;
        self.state = reloaded;
        self.setup = PairSetup::new(true);
    }

    /// One pair-setup request; state changes are stored before the reply is produced.
    pub fn setup_request(&mut self, conn: u32, body: &[u8]) -> Result<SetupReply, PairingError> {
        let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
        let conn = ConnectionId(conn);
        let mut output = self.setup.handle(
            self.now,
            conn,
            body,
            &mut self.state,
            &mut self.rng,
            &mut out,
        )?;
        if let SetupOutput::Persist(_) = output {
            self.stored.push(self.state.clone());
            output = self.setup.persisted(conn, &self.state, &mut out)?;
        }
        Ok(match output {
            SetupOutput::Reply(len) => SetupReply {
                body: out[..len].to_vec(),
                keys: None,
            },
            SetupOutput::Transient { reply_len, keys } => SetupReply {
                body: out[..reply_len].to_vec(),
                keys: Some(keys),
            },
            SetupOutput::Persist(_) => unreachable!("persisted() never asks to persist again"),
        })
    }

    pub fn pairings_request(
        &mut self,
        controller: &PairingId,
        body: &[u8],
    ) -> Result<Vec<u8>, PairingError> {
        let mut out = vec![0u8; hap_core::pairing::pairings::MAX_PAIRINGS_MESSAGE_LEN];
        match handle_pairings(body, controller, &mut self.state, &mut out)? {
            PairingsOutput::Reply(len) => Ok(out[..len].to_vec()),
            PairingsOutput::Persist { reply, .. } => {
                self.stored.push(self.state.clone());
                let (len, _) = reply.persisted(&mut out)?;
                Ok(out[..len].to_vec())
            }
        }
    }
}

pub struct SetupReply {
    pub body: Vec<u8>,
    pub keys: Option<SessionKeys>,
}

/// The state and error items of a response.
pub fn state_and_error(body: &[u8]) -> (Option<u8>, Option<u8>) {
    let tlv = Tlv::parse(body).unwrap();
    (tlv.get_u8(0x06), tlv.get_u8(0x07))
}

/// An accessory (seed 1) already paired with the admin controller `owner`.
pub fn paired_accessory() -> (Accessory, ControllerIdentity) {
    let mut accessory = Accessory::new(1);
    let owner = controller("owner", 1);
    pair(&mut accessory, 1, &owner, CODE, &mut rng(2)).unwrap();
    (accessory, owner)
}

/// Runs a whole pair-setup on connection `conn` and returns what the controller keeps.
pub fn pair(
    accessory: &mut Accessory,
    conn: u32,
    identity: &ControllerIdentity,
    code: &str,
    rng: &mut ChaCha20Rng,
) -> Result<AccessoryPairing, PairingError> {
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (mut client, len) =
        PairSetupClient::start(code.parse::<SetupCode>().unwrap(), 0, &mut out)?;
    let mut request = out[..len].to_vec();
    loop {
        let reply = accessory.setup_request(conn, &request)?;
        match client.handle_response(&reply.body, identity, rng, &mut out)? {
            SetupClientOutput::Send(len) => request = out[..len].to_vec(),
            SetupClientOutput::Paired(pairing) => return Ok(pairing),
            SetupClientOutput::Transient(_) => unreachable!("not a transient setup"),
        }
    }
}

/// Runs a whole pair-verify and returns the accessory's and the controller's keys.
pub fn verify(
    accessory: &mut Accessory,
    identity: &ControllerIdentity,
    pairing: &AccessoryPairing,
    rng: &mut ChaCha20Rng,
) -> Result<(SessionKeys, SessionKeys), PairingError> {
    let mut out = [0u8; 256];
    let mut accessory_side = PairVerify::new();
    let (mut client, len) = PairVerifyClient::start(rng, &mut out)?;
    let mut request = out[..len].to_vec();
    loop {
        let mut reply = [0u8; 256];
        let (reply_len, accessory_keys) = match accessory_side.handle(
            &request,
            &accessory.state,
            &mut accessory.rng,
            &mut reply,
        )? {
            VerifyOutput::Reply(len) => (len, None),
            VerifyOutput::Verified {
                reply_len, keys, ..
            } => (reply_len, Some(keys)),
        };
        match client.handle_response(&reply[..reply_len], identity, pairing, &mut out)? {
            VerifyClientOutput::Send(len) => request = out[..len].to_vec(),
            VerifyClientOutput::Verified(keys) => {
                return Ok((accessory_keys.expect("accessory verified too"), keys))
            }
        }
    }
}
