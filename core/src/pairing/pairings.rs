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
    Pairings, SessionsToClose,
};
use crate::state::{AccessoryState, StateChange};
use crate::tlv::{Tlv, TlvWriter};

/// A buffer this large holds a list of [`MAX_PAIRINGS`](super::MAX_PAIRINGS) pairings.
pub const MAX_PAIRINGS_MESSAGE_LEN: usize = 3
    + super::MAX_PAIRINGS * (2 + super::MAX_PAIRING_ID_LEN + 34 + 3)
    + (super::MAX_PAIRINGS - 1) * 2;

/// What the accessory should do after a `/pairings` request.
// The pending reply carries what it must restore if storing fails; without a heap there
// is nowhere to box it, and it is moved only once.
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

/// A `/pairings` reply waiting for the state to be stored.
///
/// It remembers only this request's own change, so undoing it leaves other requests'
/// changes alone even if their stores overlap.
#[derive(Debug)]
#[must_use = "the reply may only be sent after the state is stored"]
pub struct PendingPairingsReply {
    /// A pairing this request added, to take out again.
    added: Option<PairingId>,
    /// Pairings this request removed or overwrote, to put back.
    replaced: Pairings,
    /// Sessions to close once the reply is sent.
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

    /// Undoes this request's change because storing it failed, and says whose sessions
    /// to close: a controller added by the request may have verified in the meantime.
    /// The caller answers with a server error.
    pub fn persist_failed(self, state: &mut AccessoryState) -> SessionsToClose {
        if let Some(id) = &self.added {
            state.pairings.remove(id.as_bytes());
        }
        for pairing in self.replaced.iter() {
            // These entries were in the table before this request, so there is room for
            // them unless another request filled the slot meanwhile; callers that store
            // one change at a time, as they should, never see that.
            let _ = state.pairings.insert(pairing.clone());
        }
        self.added
            .map_or(SessionsToClose::None, SessionsToClose::Controller)
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
    match requested {
        method::ADD_PAIRING => {
            let id = identifier()?;
            let key = message
                .get(tlv_type::PUBLIC_KEY)
                .ok_or(PairingError::MissingItem(tlv_type::PUBLIC_KEY))?;
            let public_key: [u8; 32] = key
                .to_array()
                .ok_or(PairingError::InvalidItem(tlv_type::PUBLIC_KEY))?;
            let admin = match message.get_u8(tlv_type::PERMISSIONS) {
                Some(0) => false,
                Some(1) => true,
                Some(_) => return Err(PairingError::InvalidItem(tlv_type::PERMISSIONS)),
                None => return Err(PairingError::MissingItem(tlv_type::PERMISSIONS)),
            };
            let existing = state.pairings.get(id.as_bytes()).cloned();
            if existing
                .as_ref()
                .is_some_and(|p| p.public_key != public_key)
            {
                return Ok(PairingsOutput::Reply(write_error(
                    out,
                    2,
                    ErrorCode::Unknown,
                )?));
            }
            let previous = state.pairings.clone();
            if state
                .pairings
                .insert(Pairing {
                    id: id.clone(),
                    public_key,
                    admin,
                })
                .is_err()
            {
                return Ok(PairingsOutput::Reply(write_error(
                    out,
                    2,
                    ErrorCode::MaxPeers,
                )?));
            }
            let reply = if !state.pairings.has_admin() {
                // The last admin demoted itself: like HomeKitADK, unpair entirely rather
                // than leave an accessory nobody can manage.
                state.pairings.clear();
                PendingPairingsReply {
                    added: None,
                    replaced: previous,
                    closes: SessionsToClose::All,
                }
            } else {
                let (added, replaced) = match existing {
                    Some(old) => (None, Pairings::from_iter([old])),
                    None => (Some(id), Pairings::default()),
                };
                PendingPairingsReply {
                    added,
                    replaced,
                    closes: SessionsToClose::None,
                }
            };
            Ok(PairingsOutput::Persist {
                change: StateChange::PairingAdded,
                reply,
            })
        }
        method::REMOVE_PAIRING => {
            let id = identifier()?;
            let previous = state.pairings.clone();
            let Some(removed) = state.pairings.remove(id.as_bytes()) else {
                let mut writer = TlvWriter::new(out);
                writer.u8(tlv_type::STATE, 2)?;
                return Ok(PairingsOutput::Reply(writer.len()));
            };
            let reply = if state.pairings.has_admin() {
                let closes = SessionsToClose::Controller(removed.id.clone());
                PendingPairingsReply {
                    added: None,
                    replaced: Pairings::from_iter([removed]),
                    closes,
                }
            } else {
                state.pairings.clear();
                PendingPairingsReply {
                    added: None,
                    replaced: previous,
                    closes: SessionsToClose::All,
                }
            };
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
