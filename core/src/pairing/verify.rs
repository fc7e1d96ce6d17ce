//! Pair-verify (M1–M4): an X25519 exchange, signed by both sides' long-term keys, that
//! opens an encrypted session. Needs no heap.
//!
//! [`PairVerify`] is the accessory's side, one per connection. An unknown controller, a
//! bad signature or undecryptable data gets Authentication at M4, which iOS 16.2 and later
//! rely on. A new M1 restarts the exchange. [`PairVerifyClient`] is the controller's side.

use rand_core::{CryptoRng, RngCore};

use super::{
    check_rejected, expect_state, tlv_type, write_error, write_sealed, AccessoryPairing,
    ControllerIdentity, ErrorCode, PairingError, PairingId, SubTlv,
};
use crate::crypto::{ed25519_verify_parts, hkdf_sha512, Key, SharedSecret, X25519Secret};
use crate::session::SessionKeys;
use crate::state::AccessoryState;
use crate::tlv::{Tlv, TlvWriter};

/// A buffer this large holds any pair-verify message.
pub const MAX_VERIFY_MESSAGE_LEN: usize = 256;
/// Room for the signed material: two X25519 keys and an identifier.
const SIGNED_LEN: usize = 32 + super::MAX_PAIRING_ID_LEN + 32;

fn encrypt_key(shared: &SharedSecret) -> Key {
    hkdf_sha512(
        shared.as_bytes(),
        b"Pair-Verify-Encrypt-Salt",
        b"Pair-Verify-Encrypt-Info",
    )
}

fn public_key_of(message: &Tlv<'_>) -> Result<[u8; 32], PairingError> {
    let item = message
        .get(tlv_type::PUBLIC_KEY)
        .ok_or(PairingError::MissingItem(tlv_type::PUBLIC_KEY))?;
    item.to_array()
        .ok_or(PairingError::InvalidItem(tlv_type::PUBLIC_KEY))
}

/// Reads the identifier and signature of a decrypted pair-verify sub-TLV.
fn identity_proof(sub: &SubTlv) -> Option<(PairingId, [u8; 64])> {
    let inner = sub.tlv().ok()?;
    let id = PairingId::new(inner.get(tlv_type::IDENTIFIER)?.contiguous()?)?;
    let signature = inner.get(tlv_type::SIGNATURE)?.to_array()?;
    Some((id, signature))
}

/// What the accessory should do after a pair-verify message.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyOutput {
    /// Send the first `len` bytes of the output buffer as the response body.
    Reply(usize),
    /// The controller is verified: send the reply in plaintext, then encrypt the
    /// connection with `keys`.
    Verified {
        /// Length of the reply in the output buffer.
        reply_len: usize,
        /// The session keys.
        keys: SessionKeys,
        /// The verified controller's pairing identifier.
        controller: PairingId,
    },
}

/// The accessory's side of pair-verify on one connection.
#[derive(Debug, Default)]
pub struct PairVerify {
    stage: Option<AwaitingM3>,
}

#[derive(Debug)]
struct AwaitingM3 {
    shared: SharedSecret,
    accessory_public: [u8; 32],
    controller_public: [u8; 32],
}

impl PairVerify {
    /// No exchange in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one pair-verify request and writes the response into `out` (see
    /// [`MAX_VERIFY_MESSAGE_LEN`]).
    pub fn handle<R: RngCore + CryptoRng>(
        &mut self,
        request: &[u8],
        state: &AccessoryState,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<VerifyOutput, PairingError> {
        let message = Tlv::parse(request)?;
        let stage = self.stage.take();
        match message.get_u8(tlv_type::STATE) {
            Some(1) => self.m1(&message, state, rng, out),
            Some(3) => match stage {
                Some(stage) => Self::m3(stage, &message, state, out),
                None => Err(PairingError::UnexpectedState(3)),
            },
            Some(other) => Err(PairingError::UnexpectedState(other)),
            None => Err(PairingError::MissingItem(tlv_type::STATE)),
        }
    }

    fn m1<R: RngCore + CryptoRng>(
        &mut self,
        message: &Tlv<'_>,
        state: &AccessoryState,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<VerifyOutput, PairingError> {
        let controller_public = public_key_of(message)?;
        let secret = X25519Secret::generate(rng);
        let accessory_public = secret.public_key();
        let shared = secret
            .agree(&controller_public)
            .ok_or(PairingError::InvalidItem(tlv_type::PUBLIC_KEY))?;
        let accessory_id = state.device_id.to_ascii();
        let signature = state
            .identity
            .sign_parts::<SIGNED_LEN>(&[&accessory_public, &accessory_id, &controller_public])
            .ok_or(PairingError::BufferTooSmall {
                required: SIGNED_LEN,
            })?;
        let mut writer = TlvWriter::new(out);
        writer
            .u8(tlv_type::STATE, 2)?
            .item(tlv_type::PUBLIC_KEY, &accessory_public)?;
        write_sealed(&mut writer, &encrypt_key(&shared), b"PV-Msg02", |sub| {
            sub.item(tlv_type::IDENTIFIER, &accessory_id)?
                .item(tlv_type::SIGNATURE, &signature)?;
            Ok(())
        })?;
        let len = writer.len();
        self.stage = Some(AwaitingM3 {
            shared,
            accessory_public,
            controller_public,
        });
        Ok(VerifyOutput::Reply(len))
    }

    fn m3(
        stage: AwaitingM3,
        message: &Tlv<'_>,
        state: &AccessoryState,
        out: &mut [u8],
    ) -> Result<VerifyOutput, PairingError> {
        let proof = SubTlv::open(message, &encrypt_key(&stage.shared), b"PV-Msg03")?;
        let verified = proof
            .as_ref()
            .and_then(identity_proof)
            .and_then(|(id, signature)| {
                let pairing = state.pairings.get(id.as_bytes())?;
                let signed = [
                    &stage.controller_public[..],
                    id.as_bytes(),
                    &stage.accessory_public,
                ];
                ed25519_verify_parts::<SIGNED_LEN>(&pairing.public_key, &signed, &signature)
                    .then_some(pairing.id.clone())
            });
        let Some(controller) = verified else {
            return Ok(VerifyOutput::Reply(write_error(
                out,
                4,
                ErrorCode::Authentication,
            )?));
        };
        let mut writer = TlvWriter::new(out);
        writer.u8(tlv_type::STATE, 4)?;
        Ok(VerifyOutput::Verified {
            reply_len: writer.len(),
            keys: SessionKeys::from_pair_verify(&stage.shared),
            controller,
        })
    }
}

/// What the controller should do after a pair-verify response.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyClientOutput {
    /// Send the first `len` bytes of the output buffer as the next request.
    Send(usize),
    /// The accessory is verified: encrypt the connection with these keys.
    Verified(SessionKeys),
}

/// The controller's side of one pair-verify.
#[derive(Debug)]
pub struct PairVerifyClient {
    secret: X25519Secret,
    shared: Option<SharedSecret>,
}

impl PairVerifyClient {
    /// Starts pair-verify, writing M1 into `out`.
    pub fn start<R: RngCore + CryptoRng>(
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(Self, usize), PairingError> {
        let secret = X25519Secret::generate(rng);
        let mut writer = TlvWriter::new(out);
        writer
            .u8(tlv_type::STATE, 1)?
            .item(tlv_type::PUBLIC_KEY, &secret.public_key())?;
        let len = writer.len();
        Ok((
            Self {
                secret,
                shared: None,
            },
            len,
        ))
    }

    /// Handles the accessory's response and writes the next request into `out`.
    pub fn handle_response(
        &mut self,
        response: &[u8],
        identity: &ControllerIdentity,
        accessory: &AccessoryPairing,
        out: &mut [u8],
    ) -> Result<VerifyClientOutput, PairingError> {
        let message = Tlv::parse(response)?;
        check_rejected(&message)?;
        if let Some(shared) = self.shared.take() {
            expect_state(&message, 4)?;
            return Ok(VerifyClientOutput::Verified(SessionKeys::from_pair_verify(
                &shared,
            )));
        }
        expect_state(&message, 2)?;
        let accessory_public = public_key_of(&message)?;
        let controller_public = self.secret.public_key();
        let shared = self
            .secret
            .agree(&accessory_public)
            .ok_or(PairingError::Authentication)?;
        let key = encrypt_key(&shared);
        let proof =
            SubTlv::open(&message, &key, b"PV-Msg02")?.ok_or(PairingError::Authentication)?;
        let (id, signature) = identity_proof(&proof).ok_or(PairingError::Authentication)?;
        let signed = [&accessory_public[..], id.as_bytes(), &controller_public];
        if id != accessory.id
            || !ed25519_verify_parts::<SIGNED_LEN>(&accessory.public_key, &signed, &signature)
        {
            return Err(PairingError::Authentication);
        }
        let signature = identity
            .keys
            .sign_parts::<SIGNED_LEN>(&[
                &controller_public,
                identity.id.as_bytes(),
                &accessory_public,
            ])
            .ok_or(PairingError::BufferTooSmall {
                required: SIGNED_LEN,
            })?;
        let mut writer = TlvWriter::new(out);
        writer.u8(tlv_type::STATE, 3)?;
        write_sealed(&mut writer, &key, b"PV-Msg03", |sub| {
            sub.item(tlv_type::IDENTIFIER, identity.id.as_bytes())?
                .item(tlv_type::SIGNATURE, &signature)?;
            Ok(())
        })?;
        self.shared = Some(shared);
        Ok(VerifyClientOutput::Send(writer.len()))
    }
}
