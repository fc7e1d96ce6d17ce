//! Pairing: pair-setup, pair-verify and the `/pairings` operations, in both roles.
//!
//! Each exchange is a state machine that takes a request's TLV body and writes the
//! response's TLV body into a caller buffer. The HTTP layer around them belongs to the
//! connection. Returning `Err` means the request itself was malformed or out of order
//! (HomeKitADK answers HTTP 400); a well-formed request that fails gets a TLV error code in
//! the response instead. Unknown item types are ignored and, where a type appears twice,
//! the first item counts.
//!
//! Replies that depend on a change to the persistent state (M6 of pair-setup, a counted
//! failure at M4, `/pairings` changes) are withheld until the caller confirms that the
//! change is stored, so a crash can never leave a controller believing in a pairing that
//! the accessory forgot.

use crate::crypto::Ed25519KeyPair;
use crate::tlv::TlvError;

pub mod pairings;
#[cfg(feature = "alloc")]
pub mod setup;
pub mod verify;

/// TLV types of pairing messages.
pub mod tlv_type {
    /// Method of the request, one of [`super::method`].
    pub const METHOD: u8 = 0x00;
    /// Pairing identifier.
    pub const IDENTIFIER: u8 = 0x01;
    /// SRP salt.
    pub const SALT: u8 = 0x02;
    /// SRP, X25519 or Ed25519 public key.
    pub const PUBLIC_KEY: u8 = 0x03;
    /// SRP proof.
    pub const PROOF: u8 = 0x04;
    /// Encrypted sub-TLV with its tag.
    pub const ENCRYPTED_DATA: u8 = 0x05;
    /// Message number: 1 to 6.
    pub const STATE: u8 = 0x06;
    /// Error code, one of [`super::ErrorCode`].
    pub const ERROR: u8 = 0x07;
    /// Ed25519 signature.
    pub const SIGNATURE: u8 = 0x0A;
    /// Permissions of a pairing: 1 for admin.
    pub const PERMISSIONS: u8 = 0x0B;
    /// Pair-setup flags, one of [`super::flags`].
    pub const FLAGS: u8 = 0x13;
    /// Empty item that separates list entries.
    pub const SEPARATOR: u8 = crate::tlv::SEPARATOR;
}

/// Pairing methods.
pub mod method {
    /// Pair-setup.
    pub const PAIR_SETUP: u8 = 0;
    /// Pair-setup with MFi authentication; accepted like [`PAIR_SETUP`], as HAP-python
    /// and HAP-NodeJS do.
    pub const PAIR_SETUP_WITH_AUTH: u8 = 1;
    /// Add a pairing through `/pairings`.
    pub const ADD_PAIRING: u8 = 3;
    /// Remove a pairing through `/pairings`.
    pub const REMOVE_PAIRING: u8 = 4;
    /// List pairings through `/pairings`.
    pub const LIST_PAIRINGS: u8 = 5;
}

/// Pair-setup flags.
pub mod flags {
    /// Transient pair-setup: no pairing is stored and the session keys come from SRP.
    pub const TRANSIENT: u32 = 0x10;
    /// Split pair-setup: reuse the stored setup information.
    pub const SPLIT: u32 = 0x0100_0000;
}

/// The error codes a pairing response carries (`kTLVError_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A generic failure.
    Unknown = 1,
    /// A wrong setup code, an unknown controller or a bad signature.
    Authentication = 2,
    /// The client must wait before retrying.
    Backoff = 3,
    /// The pairing table is full.
    MaxPeers = 4,
    /// Too many failed pair-setup attempts.
    MaxTries = 5,
    /// The accessory is already paired.
    Unavailable = 6,
    /// Another controller's pair-setup is in progress.
    Busy = 7,
}

impl ErrorCode {
    /// The code for a wire value; unknown values map to [`ErrorCode::Unknown`].
    pub fn from_u8(value: u8) -> Self {
        match value {
            2 => ErrorCode::Authentication,
            3 => ErrorCode::Backoff,
            4 => ErrorCode::MaxPeers,
            5 => ErrorCode::MaxTries,
            6 => ErrorCode::Unavailable,
            7 => ErrorCode::Busy,
            _ => ErrorCode::Unknown,
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            ErrorCode::Unknown => "unknown error",
            ErrorCode::Authentication => "authentication failed",
            ErrorCode::Backoff => "retry later",
            ErrorCode::MaxPeers => "no room for more pairings",
            ErrorCode::MaxTries => "too many failed pair-setup attempts",
            ErrorCode::Unavailable => "already paired",
            ErrorCode::Busy => "another pair-setup is in progress",
        };
        write!(f, "{text} (kTLVError {})", *self as u8)
    }
}

/// How many pairings the accessory keeps.
pub const MAX_PAIRINGS: usize = 16;
/// Failed pair-setup attempts after which pair-setup answers MaxTries for good.
pub const MAX_FAILED_ATTEMPTS: u8 = 100;
/// The longest controller pairing identifier accepted. iOS uses 36-byte UUIDs;
/// HomeKitADK allows 36, and other controllers have been seen with longer ids.
pub const MAX_PAIRING_ID_LEN: usize = 64;

/// Why a pairing message could not be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairingError {
    /// The peer sent a malformed TLV body.
    Tlv(TlvError),
    /// A required item of the given type is missing.
    MissingItem(u8),
    /// An item of the given type has the wrong length or value.
    InvalidItem(u8),
    /// The message's state number does not fit the exchange.
    UnexpectedState(u8),
    /// The accessory answered with an error code (controller role).
    Rejected(ErrorCode),
    /// The accessory failed to prove its identity or knowledge of the code
    /// (controller role).
    Authentication,
    /// The output buffer is too small; `required` bytes are needed.
    BufferTooSmall {
        /// The size needed.
        required: usize,
    },
    /// The call does not fit the exchange: nothing is waiting for storage, or the
    /// connection is not the one pairing.
    NotPending,
}

impl PairingError {
    /// Whether the peer caused the error (as opposed to a local limit or API misuse).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            PairingError::Tlv(TlvError::Truncated { .. } | TlvError::ShortFragment { .. })
                | PairingError::MissingItem(_)
                | PairingError::InvalidItem(_)
                | PairingError::UnexpectedState(_)
                | PairingError::Rejected(_)
                | PairingError::Authentication
        )
    }
}

impl From<TlvError> for PairingError {
    fn from(error: TlvError) -> Self {
        match error {
            TlvError::BufferTooSmall { required } => PairingError::BufferTooSmall { required },
            other => PairingError::Tlv(other),
        }
    }
}

impl core::fmt::Display for PairingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PairingError::Tlv(error) => write!(f, "malformed pairing message: {error}"),
            PairingError::MissingItem(ty) => write!(f, "pairing message lacks TLV type {ty:#04x}"),
            PairingError::InvalidItem(ty) => {
                write!(f, "pairing message has an invalid TLV type {ty:#04x}")
            }
            PairingError::UnexpectedState(state) => write!(f, "unexpected pairing state M{state}"),
            PairingError::Rejected(code) => write!(f, "accessory answered with error: {code}"),
            PairingError::Authentication => f.write_str("accessory failed authentication"),
            PairingError::BufferTooSmall { required } => {
                write!(f, "buffer too small: {required} bytes needed")
            }
            PairingError::NotPending => f.write_str("no pairing reply is waiting for storage"),
        }
    }
}

impl core::error::Error for PairingError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PairingError::Tlv(error) => Some(error),
            _ => None,
        }
    }
}

/// A controller's or accessory's pairing identifier. It is kept and listed byte for byte
/// as the controller sent it, because iOS 16 matches the identifiers it reads back
/// case-sensitively (HAP-python #424). Looking one up ignores ASCII case, as HAP-python
/// does, which is harmless: no two controllers' UUIDs differ only in case.
#[derive(Clone, Debug, Default)]
pub struct PairingId(heapless::Vec<u8, MAX_PAIRING_ID_LEN>);

impl PairingId {
    /// The identifier for `bytes`, if it is 1 to [`MAX_PAIRING_ID_LEN`] bytes long.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return None;
        }
        heapless::Vec::from_slice(bytes).ok().map(Self)
    }

    /// The identifier's bytes, as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `other` names the same identifier, ignoring ASCII case.
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl PartialEq for PairingId {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for PairingId {}

/// A controller paired with the accessory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairing {
    /// The controller's pairing identifier.
    pub id: PairingId,
    /// The controller's Ed25519 long-term public key.
    pub public_key: [u8; 32],
    /// Whether the controller may add, remove and list pairings.
    pub admin: bool,
}

/// The accessory's pairing table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairings {
    entries: heapless::Vec<Pairing, MAX_PAIRINGS>,
}

impl FromIterator<Pairing> for Pairings {
    /// Collects up to [`MAX_PAIRINGS`] pairings; any beyond are dropped.
    fn from_iter<I: IntoIterator<Item = Pairing>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().take(MAX_PAIRINGS).collect(),
        }
    }
}

/// The pairing table has no free slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

impl Pairings {
    /// The pairing with identifier `id`, ignoring case.
    pub fn get(&self, id: &[u8]) -> Option<&Pairing> {
        self.entries.iter().find(|p| p.id.matches(id))
    }

    /// Adds a pairing, or updates the public key and admin flag of an existing one.
    pub fn insert(&mut self, pairing: Pairing) -> Result<(), TableFull> {
        match self.entries.iter_mut().find(|p| p.id == pairing.id) {
            Some(existing) => *existing = pairing,
            None => self.entries.push(pairing).map_err(|_| TableFull)?,
        }
        Ok(())
    }

    /// Removes the pairing with identifier `id`, if present.
    pub fn remove(&mut self, id: &[u8]) -> Option<Pairing> {
        let index = self.entries.iter().position(|p| p.id.matches(id))?;
        Some(self.entries.remove(index))
    }

    /// Removes every pairing.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Every pairing, in the order they were added.
    pub fn iter(&self) -> core::slice::Iter<'_, Pairing> {
        self.entries.iter()
    }

    /// The number of pairings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none, meaning the accessory is unpaired.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any pairing is an admin.
    pub fn has_admin(&self) -> bool {
        self.entries.iter().any(|p| p.admin)
    }
}

/// Sessions that must close after a change to the pairings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionsToClose {
    /// None.
    None,
    /// Those of this controller.
    Controller(PairingId),
    /// All of them: the accessory is unpaired.
    All,
}

/// A controller's long-term identity.
#[derive(Clone, Debug)]
pub struct ControllerIdentity {
    /// The controller's pairing identifier, usually an upper-case UUID.
    pub id: PairingId,
    /// The controller's Ed25519 long-term key pair.
    pub keys: Ed25519KeyPair,
}

/// What a controller keeps about an accessory after pair-setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessoryPairing {
    /// The accessory's pairing identifier, its device id as `XX:XX:XX:XX:XX:XX`.
    pub id: PairingId,
    /// The accessory's Ed25519 long-term public key.
    pub public_key: [u8; 32],
}

/// Room for the largest encrypted sub-TLV any pairing message carries.
const MAX_SUB_TLV_LEN: usize = 256;

/// Writes an error response: State, then Error.
fn write_error(out: &mut [u8], state: u8, code: ErrorCode) -> Result<usize, PairingError> {
    let mut writer = crate::tlv::TlvWriter::new(out);
    writer
        .u8(tlv_type::STATE, state)?
        .u8(tlv_type::ERROR, code as u8)?;
    Ok(writer.len())
}

/// Fails with [`PairingError::Rejected`] if `response` carries an error code.
pub(crate) fn check_rejected(response: &crate::tlv::Tlv<'_>) -> Result<(), PairingError> {
    match response.get(tlv_type::ERROR) {
        Some(item) => {
            let code = item.to_uint_le().and_then(|v| u8::try_from(v).ok());
            Err(PairingError::Rejected(
                code.map_or(ErrorCode::Unknown, ErrorCode::from_u8),
            ))
        }
        None => Ok(()),
    }
}

/// Fails with [`PairingError::UnexpectedState`] unless `message` is at state `expected`.
pub(crate) fn expect_state(
    message: &crate::tlv::Tlv<'_>,
    expected: u8,
) -> Result<(), PairingError> {
    match message.get_u8(tlv_type::STATE) {
        Some(state) if state == expected => Ok(()),
        Some(state) => Err(PairingError::UnexpectedState(state)),
        None => Err(PairingError::MissingItem(tlv_type::STATE)),
    }
}

/// An encrypted sub-TLV, decrypted in a fixed buffer.
struct SubTlv {
    buf: [u8; MAX_SUB_TLV_LEN],
    len: usize,
}

impl SubTlv {
    /// Decrypts the `ENCRYPTED_DATA` item of `message` with `key` and the `label` nonce.
    /// `None` covers a missing, oversize or unauthentic item.
    fn open(
        message: &crate::tlv::Tlv<'_>,
        key: &crate::crypto::Key,
        label: &'static [u8; 8],
    ) -> Result<Option<Self>, PairingError> {
        use crate::crypto::{open_in_place, Nonce, TAG_LEN};
        let item = message
            .get(tlv_type::ENCRYPTED_DATA)
            .ok_or(PairingError::MissingItem(tlv_type::ENCRYPTED_DATA))?;
        let mut sub = SubTlv {
            buf: [0; MAX_SUB_TLV_LEN],
            len: 0,
        };
        let Ok(sealed) = item.copy_to(&mut sub.buf) else {
            return Err(PairingError::InvalidItem(tlv_type::ENCRYPTED_DATA));
        };
        let Some(plain_len) = sealed.len().checked_sub(TAG_LEN) else {
            return Err(PairingError::InvalidItem(tlv_type::ENCRYPTED_DATA));
        };
        let (body, tag) = sealed.split_at_mut(plain_len);
        let tag: [u8; TAG_LEN] = (&*tag)
            .try_into()
            .map_err(|_| PairingError::InvalidItem(tlv_type::ENCRYPTED_DATA))?;
        if open_in_place(key, Nonce::Label(label), &[], body, &tag).is_err() {
            return Ok(None);
        }
        sub.len = plain_len;
        Ok(Some(sub))
    }

    fn tlv(&self) -> Result<crate::tlv::Tlv<'_>, PairingError> {
        Ok(crate::tlv::Tlv::parse(&self.buf[..self.len])?)
    }
}

/// Encrypts the sub-TLV written by `fill` with `key` and the `label` nonce, and appends it
/// to `writer` as `ENCRYPTED_DATA`.
fn write_sealed(
    writer: &mut crate::tlv::TlvWriter<'_>,
    key: &crate::crypto::Key,
    label: &'static [u8; 8],
    fill: impl FnOnce(&mut crate::tlv::TlvWriter<'_>) -> Result<(), PairingError>,
) -> Result<(), PairingError> {
    use crate::crypto::{seal_in_place, Nonce, TAG_LEN};
    let mut buf = [0u8; MAX_SUB_TLV_LEN];
    let mut sub = crate::tlv::TlvWriter::new(&mut buf[..MAX_SUB_TLV_LEN - TAG_LEN]);
    fill(&mut sub)?;
    let len = sub.len();
    let tag = seal_in_place(key, Nonce::Label(label), &[], &mut buf[..len]);
    buf[len..len + TAG_LEN].copy_from_slice(&tag);
    writer.item(tlv_type::ENCRYPTED_DATA, &buf[..len + TAG_LEN])?;
    Ok(())
}
