//! `/pairings`: add, remove and list pairings, over an already verified session.
//!
//! Only admins may use it; others get Authentication. Adding an existing identifier with
//! a different key fails with Unknown, and with no free slot with MaxPeers. Removing an
//! absent pairing succeeds. Removing the last admin removes every pairing, leaving the
//! accessory unpaired. A list puts the state first and a separator between entries.
//!
//! A change is made in memory at once, and its reply is held in a
//! [`PendingPairingsReply`] until the caller has stored the state.

use super::{
    expect_state, method, tlv_type, write_error, ErrorCode, Pairing, PairingError, PairingId,
    Pairings,
};
use crate::state::{AccessoryState, StateChange};
use crate::tlv::{Tlv, TlvWriter};

/// A buffer this large holds a list of [`MAX_PAIRINGS`](super::MAX_PAIRINGS) pairings.
pub const MAX_PAIRINGS_MESSAGE_LEN: usize = 3
    + super::MAX_PAIRINGS * (2 + super::MAX_PAIRING_ID_LEN + 34 + 3)
    + (super::MAX_PAIRINGS - 1) * 2;

/// What the accessory should do after a `/pairings` request.
// The pending reply carries the previous table for undo; without a heap there is nowhere
// to box it, and it is moved only once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PairingsOutput {
    /// Nothing changed: send the first `len` bytes of the output buffer.
    Reply(usize),
    /// The state changed. Store it, then call [`PendingPairingsReply::persisted`] for the
    /// reply, or [`PendingPairingsReply::persist_failed`] if storing failed.
    Persist {
        /// What changed.
        change: StateChange,
        /// The withheld reply.
        reply: PendingPairingsReply,
    },
}

/// Sessions that must close once the reply to a removal has been sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionsToClose {
    /// None.
    None,
    /// Those of this controller.
    Controller(PairingId),
    /// All of them: the last admin was removed and the accessory is unpaired.
    All,
}

/// A `/pairings` reply waiting for the state to be stored.
#[derive(Debug)]
#[must_use = "the reply may only be sent after the state is stored"]
pub struct PendingPairingsReply {
    previous: Pairings,
    closes: SessionsToClose,
}

impl PendingPairingsReply {
    /// Writes the success reply into `out`, now that the state is stored, and says whose
    /// sessions to close after sending it.
    pub fn persisted(self, out: &mut [u8]) -> Result<(usize, SessionsToClose), PairingError> {
        let mut writer = TlvWriter::new(out);
        writer.u8(tlv_type::STATE, 2)?;
        Ok((writer.len(), self.closes))
    }

    /// Restores the pairings as they were, because storing the change failed. The caller
    /// answers with a server error.
    pub fn persist_failed(self, state: &mut AccessoryState) {
        state.pairings = self.previous;
    }
}

/// Handles a `/pairings` request from the verified controller `controller`, writing any
/// immediate reply into `out` (see [`MAX_PAIRINGS_MESSAGE_LEN`]).
pub fn handle_pairings(
    request: &[u8],
    controller: &PairingId,
    state: &mut AccessoryState,
    out: &mut [u8],
) -> Result<PairingsOutput, PairingError> {
    let message = Tlv::parse(request)?;
    expect_state(&message, 1)?;
    let requested = message
        .get_u8(tlv_type::METHOD)
        .ok_or(PairingError::MissingItem(tlv_type::METHOD))?;
    if !matches!(
        requested,
        method::ADD_PAIRING | method::REMOVE_PAIRING | method::LIST_PAIRINGS
    ) {
        return Err(PairingError::InvalidItem(tlv_type::METHOD));
    }
    if !state
        .pairings
        .get(controller.as_bytes())
        .is_some_and(|p| p.admin)
    {
        return Ok(PairingsOutput::Reply(write_error(
            out,
            2,
            ErrorCode::Authentication,
        )?));
    }
    let identifier = || -> Result<PairingId, PairingError> {
        let item = message
            .get(tlv_type::IDENTIFIER)
            .ok_or(PairingError::MissingItem(tlv_type::IDENTIFIER))?;
        item.contiguous()
            .and_then(PairingId::new)
            .ok_or(PairingError::InvalidItem(tlv_type::IDENTIFIER))
    };
    let previous = state.pairings.clone();
    match requested {
        method::ADD_PAIRING => {
            let id = identifier()?;
            let key = message
                .get(tlv_type::PUBLIC_KEY)
                .ok_or(PairingError::MissingItem(tlv_type::PUBLIC_KEY))?;
            let public_key: [u8; 32] = key
                .to_array()
                .ok_or(PairingError::InvalidItem(tlv_type::PUBLIC_KEY))?;
            let permissions = message
                .get_u8(tlv_type::PERMISSIONS)
                .ok_or(PairingError::MissingItem(tlv_type::PERMISSIONS))?;
            if state
                .pairings
                .get(id.as_bytes())
                .is_some_and(|p| p.public_key != public_key)
            {
                return Ok(PairingsOutput::Reply(write_error(
                    out,
                    2,
                    ErrorCode::Unknown,
                )?));
            }
            let pairing = Pairing {
                id,
                public_key,
                admin: permissions & 1 == 1,
            };
            if state.pairings.insert(pairing).is_err() {
                return Ok(PairingsOutput::Reply(write_error(
                    out,
                    2,
                    ErrorCode::MaxPeers,
                )?));
            }
            let reply = PendingPairingsReply {
                previous,
                closes: SessionsToClose::None,
            };
            Ok(PairingsOutput::Persist {
                change: StateChange::PairingAdded,
                reply,
            })
        }
        method::REMOVE_PAIRING => {
            let id = identifier()?;
            let Some(removed) = state.pairings.remove(id.as_bytes()) else {
                let mut writer = TlvWriter::new(out);
                writer.u8(tlv_type::STATE, 2)?;
                return Ok(PairingsOutput::Reply(writer.len()));
            };
            let closes = if state.pairings.has_admin() {
                SessionsToClose::Controller(removed.id)
            } else {
                state.pairings.clear();
                SessionsToClose::All
            };
            let reply = PendingPairingsReply { previous, closes };
            Ok(PairingsOutput::Persist {
                change: StateChange::PairingRemoved,
                reply,
            })
        }
        _ => {
            let mut writer = TlvWriter::new(out);
            writer.u8(tlv_type::STATE, 2)?;
            for (index, pairing) in state.pairings.iter().enumerate() {
                if index > 0 {
                    writer.separator()?;
                }
                writer
                    .item(tlv_type::IDENTIFIER, pairing.id.as_bytes())?
                    .item(tlv_type::PUBLIC_KEY, &pairing.public_key)?
                    .u8(tlv_type::PERMISSIONS, u8::from(pairing.admin))?;
            }
            Ok(PairingsOutput::Reply(writer.len()))
        }
    }
}
