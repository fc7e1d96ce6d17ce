//! The controller's side of pair-setup.

use alloc::boxed::Box;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{accessory_sign_key, controller_sign_key, encrypt_key, ExchangeProof, SRP_USER};
use crate::pairing::{
    check_rejected, expect_state, flags, method, tlv_type, AccessoryPairing, ControllerIdentity,
    PairingError, SubTlv,
};
use crate::session::SessionKeys;
use crate::setup::SetupCode;
use crate::srp::{SrpClient, GROUP_LEN, HASH_LEN, SALT_LEN, SECRET_LEN};
use crate::tlv::{Tlv, TlvWriter};

/// What the controller should do after a pair-setup response.
#[derive(Debug, PartialEq, Eq)]
pub enum SetupClientOutput {
    /// Send the first `len` bytes of the output buffer as the next request.
    Send(usize),
    /// Pair-setup is complete; keep this to pair-verify later.
    Paired(AccessoryPairing),
    /// A transient pair-setup is complete; encrypt the connection with these keys.
    Transient(SessionKeys),
}

/// The controller's side of one pair-setup.
#[derive(Debug)]
pub struct PairSetupClient {
    code: SetupCode,
    transient: bool,
    stage: ClientStage,
}

#[derive(Debug)]
enum ClientStage {
    AwaitingM2,
    AwaitingM4 {
        srp: Box<SrpClient>,
    },
    AwaitingM6 {
        session_key: Zeroizing<[u8; HASH_LEN]>,
    },
    Finished,
}

impl PairSetupClient {
    /// Starts pair-setup with `code` and `setup_flags` (see [`flags`]), writing M1 into
    /// `out`.
    pub fn start(
        code: SetupCode,
        setup_flags: u32,
        out: &mut [u8],
    ) -> Result<(Self, usize), PairingError> {
        let mut writer = TlvWriter::new(out);
        writer
            .u8(tlv_type::STATE, 1)?
            .u8(tlv_type::METHOD, method::PAIR_SETUP)?;
        if setup_flags != 0 {
            writer.uint_le(tlv_type::FLAGS, u64::from(setup_flags))?;
        }
        let client = Self {
            code,
            transient: setup_flags & flags::TRANSIENT != 0,
            stage: ClientStage::AwaitingM2,
        };
        Ok((client, writer.len()))
    }

    /// Handles the accessory's response and writes the next request into `out`.
    pub fn handle_response<R: RngCore + CryptoRng>(
        &mut self,
        response: &[u8],
        identity: &ControllerIdentity,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<SetupClientOutput, PairingError> {
        let message = Tlv::parse(response)?;
        check_rejected(&message)?;
        match core::mem::replace(&mut self.stage, ClientStage::Finished) {
            ClientStage::AwaitingM2 => {
                expect_state(&message, 2)?;
                let salt = message
                    .get(tlv_type::SALT)
                    .ok_or(PairingError::MissingItem(tlv_type::SALT))?;
                let salt: [u8; SALT_LEN] = salt
                    .to_array()
                    .ok_or(PairingError::InvalidItem(tlv_type::SALT))?;
                let b = message
                    .get(tlv_type::PUBLIC_KEY)
                    .ok_or(PairingError::MissingItem(tlv_type::PUBLIC_KEY))?;
                let mut b_bytes = [0u8; GROUP_LEN];
                let b = b
                    .copy_to(&mut b_bytes)
                    .map_err(|_| PairingError::InvalidItem(tlv_type::PUBLIC_KEY))?;
                let mut a = Zeroizing::new([0u8; SECRET_LEN]);
                rng.fill_bytes(&mut *a);
                let srp = SrpClient::new(SRP_USER, self.code.as_bytes(), &salt, b, &a)
                    .map_err(|_| PairingError::Authentication)?;
                let mut writer = TlvWriter::new(out);
                writer
                    .u8(tlv_type::STATE, 3)?
                    .item(tlv_type::PUBLIC_KEY, srp.public_key())?
                    .item(tlv_type::PROOF, srp.proof())?;
                self.stage = ClientStage::AwaitingM4 { srp: Box::new(srp) };
                Ok(SetupClientOutput::Send(writer.len()))
            }
            ClientStage::AwaitingM4 { srp } => {
                expect_state(&message, 4)?;
                let proof = message
                    .get(tlv_type::PROOF)
                    .ok_or(PairingError::MissingItem(tlv_type::PROOF))?;
                let proof = proof
                    .contiguous()
                    .ok_or(PairingError::InvalidItem(tlv_type::PROOF))?;
                let session_key = Zeroizing::new(
                    srp.verify_server(proof)
                        .map_err(|_| PairingError::Authentication)?,
                );
                if self.transient {
                    return Ok(SetupClientOutput::Transient(
                        SessionKeys::from_transient_setup(&*session_key),
                    ));
                }
                let proof = ExchangeProof::sign(
                    &identity.keys,
                    identity.id.as_bytes(),
                    &controller_sign_key(&*session_key),
                )?;
                let mut writer = TlvWriter::new(out);
                writer.u8(tlv_type::STATE, 5)?;
                proof.write(&mut writer, &*session_key, b"PS-Msg05")?;
                self.stage = ClientStage::AwaitingM6 { session_key };
                Ok(SetupClientOutput::Send(writer.len()))
            }
            ClientStage::AwaitingM6 { session_key } => {
                expect_state(&message, 6)?;
                let sub = SubTlv::open(&message, &encrypt_key(&*session_key), b"PS-Msg06")?
                    .ok_or(PairingError::Authentication)?;
                let proof = ExchangeProof::read(&sub)?;
                if !proof.verify(&accessory_sign_key(&*session_key)) {
                    return Err(PairingError::Authentication);
                }
                Ok(SetupClientOutput::Paired(AccessoryPairing {
                    id: proof.id,
                    public_key: proof.public_key,
                }))
            }
            ClientStage::Finished => Err(PairingError::UnexpectedState(
                message.get_u8(tlv_type::STATE).unwrap_or(0),
            )),
        }
    }
}
