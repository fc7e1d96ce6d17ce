//! The accessory's persistent state, as plain data.
//!
//! The core keeps no storage of its own. The caller loads an [`AccessoryState`] at start,
//! and stores it whenever an exchange reports a change, before asking that exchange for
//! the reply that depends on the change. Each field is public so that any format can
//! hold it.

use crate::crypto::Ed25519KeyPair;
use crate::pairing::Pairings;
use crate::setup::DeviceId;
#[cfg(feature = "alloc")]
use crate::setup::SetupCode;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SRP's salt and verifier for the setup code.
///
/// The verifier is computed once from the code, so the accessory never needs to keep the
/// code itself.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SetupVerifier {
    /// The 16-byte salt.
    pub salt: [u8; 16],
    /// The verifier g^x mod N, big-endian, padded to 384 bytes.
    pub verifier: [u8; 384],
}

impl SetupVerifier {
    /// The verifier for `code` with `salt`.
    #[cfg(feature = "alloc")]
    pub fn new(code: &SetupCode, salt: [u8; 16]) -> Self {
        let verifier = crate::srp::verifier(b"Pair-Setup", code.as_bytes(), &salt);
        Self { salt, verifier }
    }

    /// The verifier for `code` with a fresh salt from `rng`.
    #[cfg(feature = "alloc")]
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(
        code: &SetupCode,
        rng: &mut R,
    ) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        Self::new(code, salt)
    }
}

impl core::fmt::Debug for SetupVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SetupVerifier(..)")
    }
}

/// Everything the accessory must remember across restarts for pairing.
#[derive(Clone, Debug)]
pub struct AccessoryState {
    /// The accessory's pairing identifier, advertised as `id`.
    pub device_id: DeviceId,
    /// The accessory's Ed25519 long-term key pair.
    pub identity: Ed25519KeyPair,
    /// Salt and verifier for the setup code.
    pub setup: SetupVerifier,
    /// The paired controllers.
    pub pairings: Pairings,
    /// Failed pair-setup attempts since the last success; at
    /// [`MAX_FAILED_ATTEMPTS`](crate::pairing::MAX_FAILED_ATTEMPTS) pair-setup is refused.
    pub failed_attempts: u8,
}

impl AccessoryState {
    /// A new, unpaired accessory.
    pub fn new(device_id: DeviceId, identity: Ed25519KeyPair, setup: SetupVerifier) -> Self {
        Self {
            device_id,
            identity,
            setup,
            pairings: Pairings::default(),
            failed_attempts: 0,
        }
    }

    /// A new, unpaired accessory with a random device id, key pair and salt.
    #[cfg(feature = "alloc")]
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(
        code: &SetupCode,
        rng: &mut R,
    ) -> Self {
        let device_id = DeviceId::generate(rng);
        let identity = Ed25519KeyPair::generate(rng);
        Self::new(device_id, identity, SetupVerifier::generate(code, rng))
    }

    /// Whether any controller is paired.
    pub fn is_paired(&self) -> bool {
        !self.pairings.is_empty()
    }
}

impl PartialEq for AccessoryState {
    fn eq(&self, other: &Self) -> bool {
        self.device_id == other.device_id
            && self.identity.seed() == other.identity.seed()
            && self.setup == other.setup
            && self.pairings == other.pairings
            && self.failed_attempts == other.failed_attempts
    }
}

impl Eq for AccessoryState {}

/// A change to the persistent state that the caller must store before the reply that
/// depends on it may be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// A failed pair-setup attempt was counted.
    FailedAttempt,
    /// The failed-attempt counter was reset by a successful setup.
    FailedAttemptsReset,
    /// A pairing was added or changed.
    PairingAdded,
    /// Pairings were removed.
    PairingRemoved,
}
