//! Pair-setup (M1–M6): SRP proves the setup code, then both sides exchange long-term keys.
//!
//! [`PairSetup`] is the accessory's side. There is one per accessory, because only one
//! controller may run pair-setup at a time; the connection that sent M1 holds a lock
//! until it completes, fails, restarts with a new M1 or closes. There is no inactivity
//! timer: iOS sends M1 and only then asks its user for the setup code, which a person may
//! take a minute to type. As in HomeKitADK (`HAPPairingPairSetup.c`), an attempt is
//! abandoned only when another connection sends M1 and [`SETUP_TAKEOVER_AFTER`] has passed
//! since the attempt started. [`PairSetupClient`] is the controller's side.
//!
//! Answers follow HomeKitADK: Unavailable, MaxTries and Busy at M2 (checked in that
//! order), Authentication at M4 for a wrong code and at M6 for a bad signature, MaxPeers
//! at M6 when no slot is free. A transient pair-setup (flag 0x10) ends at M4 with session
//! keys derived from SRP and stores nothing. Split (flag 0x01000000) is echoed in M2; the
//! accessory always keeps its salt and verifier, so a split setup reuses them by design.
//!
//! The failed-attempt counter is reset when the new pairing is stored (M5), or at M4 of a
//! transient setup. HomeKitADK resets it at M4; resetting only with the stored pairing
//! means an exchange abandoned after a correct code leaves the count as it was, which
//! errs on the safe side and needs no extra write.

use alloc::boxed::Box;
use core::time::Duration;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{
    flags, method, tlv_type, write_error, write_sealed, ErrorCode, Pairing, PairingError,
    PairingId, SessionsToClose, SubTlv, MAX_FAILED_ATTEMPTS,
};
use crate::crypto::{ed25519_verify_parts, hkdf_sha512, Ed25519KeyPair, Key};
use crate::session::SessionKeys;
use crate::srp::{SrpError, SrpServer, SrpTables, GROUP_LEN, HASH_LEN, SECRET_LEN};
use crate::state::{AccessoryState, StateChange};
use crate::time::Instant;
use crate::tlv::{Tlv, TlvWriter};
use crate::ConnectionId;

/// How long after an attempt started another connection's M1 may take its place; before
/// that, the other connection is told Busy. HomeKitADK's value (`HAPPairingPairSetup.c`).
pub const SETUP_TAKEOVER_AFTER: Duration = Duration::from_secs(30);
/// A buffer this large holds any pair-setup message.
pub const MAX_SETUP_MESSAGE_LEN: usize = 512;

const SRP_USER: &[u8] = b"Pair-Setup";
/// Room for the signed material: a 32-byte HKDF output, an identifier and a public key.
const SIGNED_LEN: usize = 32 + super::MAX_PAIRING_ID_LEN + 32;

fn encrypt_key(session_key: &[u8]) -> Key {
    hkdf_sha512(
        session_key,
        b"Pair-Setup-Encrypt-Salt",
        b"Pair-Setup-Encrypt-Info",
    )
}

fn controller_sign_key(session_key: &[u8]) -> Key {
    hkdf_sha512(
        session_key,
        b"Pair-Setup-Controller-Sign-Salt",
        b"Pair-Setup-Controller-Sign-Info",
    )
}

fn accessory_sign_key(session_key: &[u8]) -> Key {
    hkdf_sha512(
        session_key,
        b"Pair-Setup-Accessory-Sign-Salt",
        b"Pair-Setup-Accessory-Sign-Info",
    )
}

/// The identity proof that M5 and M6 carry, encrypted: a pairing identifier, a long-term
/// public key, and a signature over an HKDF output of the session, the identifier and
/// the key.
struct ExchangeProof {
    id: PairingId,
    public_key: [u8; 32],
    signature: [u8; 64],
}

impl ExchangeProof {
    /// Signs for `id` with `keys`, bound to the session by `signed_key`.
    fn sign(keys: &Ed25519KeyPair, id: &[u8], signed_key: &Key) -> Result<Self, PairingError> {
        let id = PairingId::new(id).ok_or(PairingError::InvalidItem(tlv_type::IDENTIFIER))?;
        let public_key = keys.public_key();
        let signature = keys
            .sign_parts::<SIGNED_LEN>(&[signed_key.as_bytes(), id.as_bytes(), &public_key])
            .ok_or(PairingError::BufferTooSmall {
                required: SIGNED_LEN,
            })?;
        Ok(Self {
            id,
            public_key,
            signature,
        })
    }

    /// Reads a proof from a decrypted sub-TLV; missing or malformed items are errors.
    fn read(sub: &SubTlv) -> Result<Self, PairingError> {
        let inner = sub.tlv()?;
        let item = |ty| inner.get(ty).ok_or(PairingError::MissingItem(ty));
        let invalid = PairingError::InvalidItem;
        let id = item(tlv_type::IDENTIFIER)?
            .contiguous()
            .and_then(PairingId::new)
            .ok_or(invalid(tlv_type::IDENTIFIER))?;
        let public_key = item(tlv_type::PUBLIC_KEY)?
            .to_array()
            .ok_or(invalid(tlv_type::PUBLIC_KEY))?;
        let signature = item(tlv_type::SIGNATURE)?
            .to_array()
            .ok_or(invalid(tlv_type::SIGNATURE))?;
        Ok(Self {
            id,
            public_key,
            signature,
        })
    }

    /// Whether the signature is valid for the session's `signed_key`.
    fn verify(&self, signed_key: &Key) -> bool {
        let signed = [
            &signed_key.as_bytes()[..],
            self.id.as_bytes(),
            &self.public_key,
        ];
        ed25519_verify_parts::<SIGNED_LEN>(&self.public_key, &signed, &self.signature)
    }

    /// Appends the proof, encrypted under `session_key` with the `label` nonce.
    fn write(
        &self,
        writer: &mut TlvWriter<'_>,
        session_key: &[u8],
        label: &'static [u8; 8],
    ) -> Result<(), PairingError> {
        write_sealed(writer, &encrypt_key(session_key), label, |sub| {
            sub.item(tlv_type::IDENTIFIER, self.id.as_bytes())?
                .item(tlv_type::PUBLIC_KEY, &self.public_key)?
                .item(tlv_type::SIGNATURE, &self.signature)?;
            Ok(())
        })
    }
}

/// What the accessory should do after a pair-setup message.
#[derive(Debug, PartialEq, Eq)]
pub enum SetupOutput {
    /// Send the first `len` bytes of the output buffer as the response body.
    Reply(usize),
    /// The persistent state changed. Store it, then call [`PairSetup::persisted`] for the
    /// reply, or [`PairSetup::persist_failed`] if storing failed.
    Persist(StateChange),
    /// A transient pair-setup succeeded: send the reply in plaintext, then encrypt the
    /// connection with `keys`.
    Transient {
        /// Length of the reply in the output buffer.
        reply_len: usize,
        /// The session keys.
        keys: SessionKeys,
    },
}

/// The accessory's pair-setup state, shared by all connections.
#[derive(Debug, Default)]
pub struct PairSetup {
    lock: Option<Lock>,
    stage: Stage,
    /// Whether to keep `tables` while unpaired.
    keep_tables: bool,
    tables: Option<Box<SrpTables>>,
}

#[derive(Debug)]
struct Lock {
    owner: ConnectionId,
    /// When the owner's M1 arrived.
    started: Instant,
}

#[derive(Debug, Default)]
enum Stage {
    #[default]
    Idle,
    AwaitingM3 {
        srp: Box<SrpServer>,
        transient: bool,
    },
    AwaitingM5 {
        session_key: Zeroizing<[u8; HASH_LEN]>,
    },
    Persisting(Pending),
}

/// A reply held back until the state change it depends on is stored.
#[derive(Debug)]
enum Pending {
    FailedAttempt,
    Transient {
        proof: [u8; HASH_LEN],
        session_key: Zeroizing<[u8; HASH_LEN]>,
        previous_failures: u8,
    },
    Paired {
        session_key: Zeroizing<[u8; HASH_LEN]>,
        controller: PairingId,
        previous_failures: u8,
    },
}

impl PairSetup {
    /// No pair-setup in progress. With `keep_tables`, the first pair-setup builds
    /// [`SrpTables`] for the stored verifier and later ones reuse them, also after the
    /// accessory is unpaired and paired again; without, every pair-setup computes from
    /// scratch.
    pub fn new(keep_tables: bool) -> Self {
        Self {
            // Fuzzed runs build a server per input; the tables would cost 20 ms each time.
            keep_tables: keep_tables && !cfg!(fuzzing),
            ..Self::default()
        }
    }

    /// Handles one pair-setup request from connection `conn` and writes the response into
    /// `out` (see [`MAX_SETUP_MESSAGE_LEN`]).
    pub fn handle<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        request: &[u8],
        state: &mut AccessoryState,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        let result = self.dispatch(now, conn, request, state, rng, out);
        // Any error from the lock holder ends its attempt, as in HomeKitADK, unless its
        // reply is waiting for storage.
        if result.is_err() && self.is_owner(conn) && !matches!(self.stage, Stage::Persisting(_)) {
            self.release();
        }
        result
    }

    fn dispatch<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        request: &[u8],
        state: &mut AccessoryState,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        let message = Tlv::parse(request)?;
        let number = message
            .get_u8(tlv_type::STATE)
            .ok_or(PairingError::MissingItem(tlv_type::STATE))?;
        let owner = self.is_owner(conn);
        if owner && matches!(self.stage, Stage::Persisting(_)) {
            // The caller must finish storing before it passes this connection's next request.
            return Err(PairingError::UnexpectedState(number));
        }
        match number {
            1 => self.m1(now, conn, &message, state, rng, out),
            3 if owner => self.m3(&message, state, out),
            5 if owner => self.m5(&message, state, out),
            other => Err(PairingError::UnexpectedState(other)),
        }
    }

    fn m1<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        message: &Tlv<'_>,
        state: &AccessoryState,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        let requested_method = message
            .get_u8(tlv_type::METHOD)
            .ok_or(PairingError::MissingItem(tlv_type::METHOD))?;
        if requested_method != method::PAIR_SETUP
            && requested_method != method::PAIR_SETUP_WITH_AUTH
        {
            return Err(PairingError::InvalidItem(tlv_type::METHOD));
        }
        let requested_flags = match message.get(tlv_type::FLAGS) {
            None => 0,
            Some(item) if item.is_empty() => 0,
            Some(item) if item.len() <= 4 => item.to_uint_le().unwrap_or(0) as u32,
            Some(_) => return Err(PairingError::InvalidItem(tlv_type::FLAGS)),
        };
        // Like HomeKitADK, flags only apply to method 0, and unknown bits are ignored.
        let setup_flags = match requested_method {
            method::PAIR_SETUP => requested_flags & (flags::TRANSIENT | flags::SPLIT),
            _ => 0,
        };
        if self.is_owner(conn) {
            // The same controller starting over.
            self.release();
        }
        let refusal = if state.is_paired() {
            Some(ErrorCode::Unavailable)
        } else if state.failed_attempts >= MAX_FAILED_ATTEMPTS {
            Some(ErrorCode::MaxTries)
        } else if self
            .lock
            .as_ref()
            .is_some_and(|lock| !self.may_take_over(lock, now))
        {
            Some(ErrorCode::Busy)
        } else {
            None
        };
        if let Some(code) = refusal {
            return Ok(SetupOutput::Reply(write_error(out, 2, code)?));
        }

        let mut b = Zeroizing::new([0u8; SECRET_LEN]);
        rng.fill_bytes(&mut *b);
        let verifier = &state.setup.verifier;
        let stale = !self.tables.as_ref().is_some_and(|t| t.is_for(verifier));
        if self.keep_tables && stale {
            self.tables = Some(Box::new(SrpTables::new(verifier)));
        }
        let tables = self.tables.as_deref();
        let srp = SrpServer::new(SRP_USER, &state.setup.salt, verifier, &b, tables);
        let mut writer = TlvWriter::new(out);
        writer
            .u8(tlv_type::STATE, 2)?
            .item(tlv_type::PUBLIC_KEY, srp.public_key())?
            .item(tlv_type::SALT, &state.setup.salt)?;
        if setup_flags & flags::SPLIT != 0 {
            writer.uint_le(tlv_type::FLAGS, u64::from(setup_flags))?;
        }
        let len = writer.len();
        self.lock = Some(Lock {
            owner: conn,
            started: now,
        });
        self.stage = Stage::AwaitingM3 {
            srp: Box::new(srp),
            transient: setup_flags & flags::TRANSIENT != 0,
        };
        Ok(SetupOutput::Reply(len))
    }

    fn m3(
        &mut self,
        message: &Tlv<'_>,
        state: &mut AccessoryState,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        let Stage::AwaitingM3 { srp, transient } = core::mem::take(&mut self.stage) else {
            return Err(PairingError::UnexpectedState(3));
        };
        let public_key = message
            .get(tlv_type::PUBLIC_KEY)
            .ok_or(PairingError::MissingItem(tlv_type::PUBLIC_KEY))?;
        let mut a = [0u8; GROUP_LEN];
        let a = public_key
            .copy_to(&mut a)
            .map_err(|_| PairingError::InvalidItem(tlv_type::PUBLIC_KEY))?;
        let proof = message
            .get(tlv_type::PROOF)
            .ok_or(PairingError::MissingItem(tlv_type::PROOF))?;
        let proof: [u8; HASH_LEN] = proof
            .to_array()
            .ok_or(PairingError::InvalidItem(tlv_type::PROOF))?;

        match srp.verify_client(a, &proof, self.tables.as_deref()) {
            Err(SrpError::IllegalPublicKey) => {
                // Not a guess at the code, so HomeKitADK does not count it.
                self.release();
                Ok(SetupOutput::Reply(write_error(
                    out,
                    4,
                    ErrorCode::Authentication,
                )?))
            }
            Err(SrpError::BadProof) => {
                state.failed_attempts = state.failed_attempts.saturating_add(1);
                self.stage = Stage::Persisting(Pending::FailedAttempt);
                Ok(SetupOutput::Persist(StateChange::FailedAttempt))
            }
            Ok(server_proof) => {
                let session_key = Zeroizing::new(server_proof.session_key);
                if !transient {
                    // The counter is reset with the pairing, at M5.
                    self.stage = Stage::AwaitingM5 { session_key };
                    let mut writer = TlvWriter::new(out);
                    writer
                        .u8(tlv_type::STATE, 4)?
                        .item(tlv_type::PROOF, &server_proof.proof)?;
                    return Ok(SetupOutput::Reply(writer.len()));
                }
                let previous_failures = core::mem::take(&mut state.failed_attempts);
                self.stage = Stage::Persisting(Pending::Transient {
                    proof: server_proof.proof,
                    session_key,
                    previous_failures,
                });
                if previous_failures > 0 {
                    Ok(SetupOutput::Persist(StateChange::FailedAttemptsReset))
                } else {
                    self.reply_to_persisted(state, out)
                }
            }
        }
    }

    fn m5(
        &mut self,
        message: &Tlv<'_>,
        state: &mut AccessoryState,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        let Stage::AwaitingM5 { session_key } = core::mem::take(&mut self.stage) else {
            return Err(PairingError::UnexpectedState(5));
        };
        let refuse = |this: &mut Self, out: &mut [u8], code| {
            this.release();
            Ok(SetupOutput::Reply(write_error(out, 6, code)?))
        };
        let Some(sub) = SubTlv::open(message, &encrypt_key(&*session_key), b"PS-Msg05")? else {
            return refuse(self, out, ErrorCode::Authentication);
        };
        let proof = ExchangeProof::read(&sub)?;
        if !proof.verify(&controller_sign_key(&*session_key)) {
            return refuse(self, out, ErrorCode::Authentication);
        }
        let ExchangeProof { id, public_key, .. } = proof;
        if state.is_paired() {
            return refuse(self, out, ErrorCode::Unavailable);
        }
        let pairing = Pairing {
            id: id.clone(),
            public_key,
            admin: true,
        };
        if state.pairings.insert(pairing).is_err() {
            return refuse(self, out, ErrorCode::MaxPeers);
        }
        let previous_failures = core::mem::take(&mut state.failed_attempts);
        self.stage = Stage::Persisting(Pending::Paired {
            session_key,
            controller: id,
            previous_failures,
        });
        Ok(SetupOutput::Persist(StateChange::PairingAdded))
    }

    /// Produces the reply that waited for storage, once the caller has stored the state
    /// after a [`SetupOutput::Persist`].
    pub fn persisted(
        &mut self,
        conn: ConnectionId,
        state: &AccessoryState,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        if !self.is_owner(conn) || !matches!(self.stage, Stage::Persisting(_)) {
            return Err(PairingError::NotPending);
        }
        self.reply_to_persisted(state, out)
    }

    fn reply_to_persisted(
        &mut self,
        state: &AccessoryState,
        out: &mut [u8],
    ) -> Result<SetupOutput, PairingError> {
        let Stage::Persisting(pending) = &self.stage else {
            return Err(PairingError::NotPending);
        };
        // Write first: if `out` is too small the reply stays pending and can be retried.
        let output = match pending {
            Pending::FailedAttempt => {
                SetupOutput::Reply(write_error(out, 4, ErrorCode::Authentication)?)
            }
            Pending::Transient {
                proof, session_key, ..
            } => {
                let mut writer = TlvWriter::new(out);
                writer
                    .u8(tlv_type::STATE, 4)?
                    .item(tlv_type::PROOF, proof)?;
                SetupOutput::Transient {
                    reply_len: writer.len(),
                    keys: SessionKeys::from_transient_setup(&**session_key),
                }
            }
            Pending::Paired { session_key, .. } => {
                let signed_key = accessory_sign_key(&**session_key);
                let proof =
                    ExchangeProof::sign(&state.identity, &state.device_id.to_ascii(), &signed_key)?;
                let mut writer = TlvWriter::new(out);
                writer.u8(tlv_type::STATE, 6)?;
                proof.write(&mut writer, &**session_key, b"PS-Msg06")?;
                SetupOutput::Reply(writer.len())
            }
        };
        self.release();
        Ok(output)
    }

    /// Undoes the change of a [`SetupOutput::Persist`] that could not be stored, so that
    /// memory matches storage, and ends the attempt. The caller answers with a server
    /// error, and closes the sessions named: the new controller may have verified on
    /// another connection meanwhile. A counted failure stays counted, erring on the safe
    /// side.
    pub fn persist_failed(
        &mut self,
        conn: ConnectionId,
        state: &mut AccessoryState,
    ) -> Result<SessionsToClose, PairingError> {
        if !self.is_owner(conn) {
            return Err(PairingError::NotPending);
        }
        let Stage::Persisting(pending) = core::mem::take(&mut self.stage) else {
            return Err(PairingError::NotPending);
        };
        let closes = match pending {
            Pending::FailedAttempt => SessionsToClose::None,
            Pending::Transient {
                previous_failures, ..
            } => {
                state.failed_attempts = previous_failures;
                SessionsToClose::None
            }
            Pending::Paired {
                controller,
                previous_failures,
                ..
            } => {
                state.pairings.remove(controller.as_bytes());
                state.failed_attempts = previous_failures;
                SessionsToClose::Controller(controller)
            }
        };
        self.release();
        Ok(closes)
    }

    /// Releases the lock if `conn` held it. Call this when a connection closes.
    ///
    /// A change already reported with [`SetupOutput::Persist`] keeps the lock until the
    /// caller reports the outcome with [`PairSetup::persisted`] (whose reply then goes
    /// nowhere) or [`PairSetup::persist_failed`], so that a failed store can still be
    /// undone.
    pub fn connection_closed(&mut self, conn: ConnectionId) {
        if self.is_owner(conn) && !matches!(self.stage, Stage::Persisting(_)) {
            self.release();
        }
    }

    /// Whether another connection's M1 at `now` may end the attempt under `lock`: it
    /// started [`SETUP_TAKEOVER_AFTER`] ago or more, and no reply of it waits for storage.
    fn may_take_over(&self, lock: &Lock, now: Instant) -> bool {
        !matches!(self.stage, Stage::Persisting(_)) && now >= lock.started + SETUP_TAKEOVER_AFTER
    }

    /// Whether a pair-setup is in progress.
    pub fn is_busy(&self) -> bool {
        self.lock.is_some()
    }

    /// The connection whose pair-setup is in progress, if any.
    pub fn owner(&self) -> Option<ConnectionId> {
        self.lock.as_ref().map(|lock| lock.owner)
    }

    fn is_owner(&self, conn: ConnectionId) -> bool {
        self.lock.as_ref().is_some_and(|lock| lock.owner == conn)
    }

    fn release(&mut self) {
        self.lock = None;
        self.stage = Stage::Idle;
    }
}

mod client;
pub use client::{PairSetupClient, SetupClientOutput};

#[cfg(test)]
mod tests;
