//! Operations waiting for the application: writes to characteristics marked
//! [`confirmed`](crate::database::CharacteristicDef::confirmed), and reads on demand.
//!
//! Each is an entry in a fixed table in the [`Server`], found by the [`Token`] its event
//! carried. The application's answer is recorded in the entry (and a confirmed value is
//! committed at once); the job that asked picks it up on its connection's next poll, and
//! the entry goes when the job no longer needs it, when the job finishes, or when its
//! connection is released.

use super::events;
use super::Server;
use crate::database::{CharacteristicRef, OwnedValue, SetValueError};
use crate::status::HapStatus;
use crate::ConnectionId;

/// How many operations may wait for the application at once, across all connections.
/// A request that would need more waits for room (its deadline still applies). Each
/// entry holds the value written, about 300 bytes.
pub const PENDING_OPERATIONS: usize = 32;

/// How many of the [`PENDING_OPERATIONS`] one connection may hold at once, so that one
/// controller can never take the whole table from the others. A read asks once per
/// characteristic, however often its request names it; a batch of confirmed writes
/// larger than this comes in chunks of at most this many items, each under its own
/// token (see [`Event::WriteRequest`](super::Event::WriteRequest)).
pub const PENDING_PER_CONNECTION: usize = 8;
const _: () = assert!(PENDING_PER_CONNECTION <= PENDING_OPERATIONS);

/// Identifies one operation waiting for the application: a batch of confirmed writes
/// ([`Event::WriteRequest`](super::Event::WriteRequest)) or one read on demand
/// ([`Event::Read`](super::Event::Read)). Pass it back to [`Server::complete_write`] or
/// [`Server::complete_read`].
///
/// A token names the connection, the request (by a serial unique for the server's
/// lifetime) and the item, so a token of a request that has finished, or of an earlier
/// connection with the same [`ConnectionId`], is refused as
/// [`CompleteError::UnknownToken`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    connection: ConnectionId,
    serial: u64,
    item: u32,
}

impl Token {
    pub(super) fn new(connection: ConnectionId, serial: u64, item: usize) -> Self {
        Self {
            connection,
            serial,
            // A request holds far fewer items than that.
            item: u32::try_from(item).unwrap_or(u32::MAX),
        }
    }

    /// The connection whose request this is.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }
}

/// Why [`Server::complete_write`] or [`Server::complete_read`] refused a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompleteError {
    /// No operation waits under this token: it was never issued, was completed already,
    /// timed out, or its connection closed.
    UnknownToken,
    /// A read's token given to [`Server::complete_write`], or a write's to
    /// [`Server::complete_read`].
    WrongKind,
    /// `Err(HapStatus::Success)`: a failure needs a failing status.
    NotAFailure,
    /// The value read does not suit the characteristic, as [`Server::set_value`] checks.
    Value(SetValueError),
}

impl core::fmt::Display for CompleteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CompleteError::UnknownToken => {
                f.write_str("no operation waits under this token (completed, timed out or closed)")
            }
            CompleteError::WrongKind => {
                f.write_str("the token is of the other kind (a read's for a write, or back)")
            }
            CompleteError::NotAFailure => f.write_str("a failure was completed with status 0"),
            CompleteError::Value(error) => write!(f, "cannot complete the read: {error}"),
        }
    }
}

impl core::error::Error for CompleteError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CompleteError::Value(error) => Some(error),
            _ => None,
        }
    }
}

/// Whether an entry is a write or a read.
// Entries live in a fixed table, and without a heap there is nowhere to box the value.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    /// A confirmed write, holding the value until it is committed.
    Write(OwnedValue),
    Read,
}

/// One item waiting for the application.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The token the application has; shared by the items of one write batch.
    pub token: Token,
    /// The item's index in its request.
    pub item: usize,
    pub kind: Kind,
    pub at: CharacteristicRef,
    pub iid: u64,
    /// A write item's status for its subscription change (`ev`) as far as it could be
    /// checked before the write is decided.
    pub subscription: HapStatus,
    /// A write item's subscription change, made only if the write succeeds: for a
    /// confirmed characteristic, an item's `ev` and value stand or fall together.
    pub ev: Option<bool>,
    /// Whether the application has had the entry's event. A write chunk's entries are
    /// all reserved at once; their events follow as the event queue has room.
    pub told: bool,
    /// Whether the entry is the last of its write chunk.
    pub last: bool,
    /// The application's answer, once it has given one.
    pub answer: Option<HapStatus>,
}

/// The items waiting for the application, server-wide.
#[derive(Debug, Default)]
pub(super) struct Table {
    entries: heapless::Vec<Entry, PENDING_OPERATIONS>,
}

impl Table {
    /// How many entries the table holds.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `count` more entries of `connection` fit: in the table, and within
    /// [`PENDING_PER_CONNECTION`].
    pub(super) fn has_room(&self, connection: ConnectionId, count: usize) -> bool {
        let held = self
            .entries
            .iter()
            .filter(|e| e.token.connection == connection)
            .count();
        self.entries.len() + count <= PENDING_OPERATIONS && held + count <= PENDING_PER_CONNECTION
    }

    /// Adds an entry; the caller checked for room with [`Table::has_room`]. Entries stay
    /// in the order added, which is the order a batch is committed in (request order).
    pub(super) fn insert(&mut self, entry: Entry) {
        let _ = self.entries.push(entry);
    }

    /// The read entry of request `serial` on `connection` for the characteristic in
    /// `slot`, which every item of the request naming it shares.
    pub(super) fn find_read(
        &self,
        connection: ConnectionId,
        serial: u64,
        slot: usize,
    ) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.token.connection == connection
                && e.token.serial == serial
                && e.at.slot == slot
                && e.kind == Kind::Read
        })
    }

    /// Whether request `serial` on `connection` still waits for an answer.
    pub(super) fn waits(&self, connection: ConnectionId, serial: u64) -> bool {
        self.entries.iter().any(|e| {
            e.token.connection == connection && e.token.serial == serial && e.answer.is_none()
        })
    }

    /// The entries of request `serial` on `connection` whose events the application has
    /// not had, in the order they were added.
    pub(super) fn untold(
        &mut self,
        connection: ConnectionId,
        serial: u64,
    ) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut().filter(move |e| {
            e.token.connection == connection && e.token.serial == serial && !e.told
        })
    }

    /// Answers every unanswered read of the characteristic in `slot`, whose value was
    /// just supplied: their tokens are then refused.
    pub(super) fn answer_reads(&mut self, slot: usize) {
        for entry in self.entries.iter_mut() {
            if entry.at.slot == slot && entry.kind == Kind::Read && entry.answer.is_none() {
                entry.answer = Some(HapStatus::Success);
            }
        }
    }

    /// The entry of item `item` of request `serial` on `connection`.
    pub(super) fn find(
        &self,
        connection: ConnectionId,
        serial: u64,
        item: usize,
    ) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.token.connection == connection && e.token.serial == serial && e.item == item
        })
    }

    /// Removes the entry of item `item`, returning it.
    pub(super) fn take(
        &mut self,
        connection: ConnectionId,
        serial: u64,
        item: usize,
    ) -> Option<Entry> {
        let index = self.entries.iter().position(|e| {
            e.token.connection == connection && e.token.serial == serial && e.item == item
        })?;
        // In order, so that the entries left keep theirs.
        Some(self.entries.remove(index))
    }

    /// Removes an answered entry of request `serial` on `connection` and returns it;
    /// with `keep_failed`, only one answered with success.
    pub(super) fn take_answered(
        &mut self,
        connection: ConnectionId,
        serial: u64,
        keep_failed: bool,
    ) -> Option<Entry> {
        let index = self.entries.iter().position(|e| {
            e.token.connection == connection
                && e.token.serial == serial
                && e.answer
                    .is_some_and(|a| a == HapStatus::Success || !keep_failed)
        })?;
        Some(self.entries.remove(index))
    }

    /// Removes the entries of request `serial` on `connection` that `drop` selects.
    pub(super) fn forget(
        &mut self,
        connection: ConnectionId,
        serial: u64,
        mut drop: impl FnMut(&Entry) -> bool,
    ) {
        self.entries
            .retain(|e| !(e.token.connection == connection && e.token.serial == serial && drop(e)));
    }

    /// Removes every entry of `connection`.
    pub(super) fn release(&mut self, connection: ConnectionId) {
        self.entries.retain(|e| e.token.connection != connection);
    }

    /// The unanswered entries under `token`, after checking that they are of the kind
    /// wanted.
    fn unanswered(
        &mut self,
        token: Token,
        write: bool,
    ) -> Result<impl Iterator<Item = &mut Entry>, CompleteError> {
        let mut found = self
            .entries
            .iter()
            .filter(|e| e.token == token && e.answer.is_none())
            .peekable();
        let first = found.peek().ok_or(CompleteError::UnknownToken)?;
        if matches!(first.kind, Kind::Write(_)) != write {
            return Err(CompleteError::WrongKind);
        }
        Ok(self
            .entries
            .iter_mut()
            .filter(move |e| e.token == token && e.answer.is_none()))
    }
}

impl Server<'_> {
    /// Completes a batch of confirmed writes ([`Event::WriteRequest`](super::Event::WriteRequest))
    /// under `token`.
    ///
    /// With `Ok(())` every item of the batch is stored, in request order, and succeeds:
    /// other subscribers get events, and the writer does not (its own write is no news
    /// to it); an item's subscription change (`ev`) takes effect with it. With
    /// `Err(status)` every item gets that status (for a bridged device that does not
    /// answer, [`HapStatus::ServiceCommunicationFailure`]); the values and the
    /// subscriptions stay as they were and nobody gets events. Complete after the item
    /// with `last: true`: a completion before it answers the items still to come as
    /// well, and their events are not given.
    ///
    /// For an item with the write-response permission that asked for a response,
    /// complete first, then give the response value with [`Server::set_value`]; if none
    /// comes before the read timeout ([`Config::read_timeout`](super::Config::read_timeout)),
    /// the item succeeds with the value stored, since it was committed.
    ///
    /// The request is answered on its connection's next poll: then drain
    /// [`Server::poll_wake`], which names it (and every connection, if a value changed).
    pub fn complete_write(
        &mut self,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        if result == Err(HapStatus::Success) {
            return Err(CompleteError::NotAFailure);
        }
        let mut changed = false;
        let entries = self.pending.unanswered(token, true)?;
        for entry in entries {
            match result {
                Ok(()) => {
                    let value = match core::mem::replace(&mut entry.kind, Kind::Read) {
                        Kind::Write(value) => value,
                        // `unanswered` checked the kind.
                        Kind::Read => continue,
                    };
                    changed |= events::store(
                        &mut self.database,
                        &mut self.buttons,
                        entry.at,
                        entry.iid,
                        value,
                        Some(token.connection),
                    );
                    entry.answer = Some(HapStatus::Success);
                }
                Err(status) => entry.answer = Some(status),
            }
            // Answered, so there is nothing left to ask.
            entry.told = true;
        }
        self.wake_after(token.connection, changed);
        Ok(())
    }

    /// Completes a read on demand ([`Event::Read`](super::Event::Read)) under `token`.
    ///
    /// `Ok(value)` is checked and stored as [`Server::set_value`] does (subscribers get
    /// events if it changed, and every read of the characteristic waiting is answered
    /// with it, so their tokens are refused from then on); the item succeeds with it.
    /// `Err(status)` gives the item that status and leaves the value as it was. Drain
    /// [`Server::poll_wake`] afterwards.
    pub fn complete_read(
        &mut self,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        if let Err(HapStatus::Success) = result {
            return Err(CompleteError::NotAFailure);
        }
        let (at, iid) = {
            let mut entries = self.pending.unanswered(token, false)?;
            // A read's token names one item.
            let entry = entries.next().ok_or(CompleteError::UnknownToken)?;
            (entry.at, entry.iid)
        };
        let changed = match result {
            Ok(mut value) => {
                self.database
                    .check(at, &mut value)
                    .map_err(CompleteError::Value)?;
                let changed =
                    events::store(&mut self.database, &mut self.buttons, at, iid, value, None);
                self.pending.answer_reads(at.slot);
                // Like `set_value`, it answers every read of it waiting.
                self.wake_waiting();
                changed
            }
            Err(status) => {
                self.mark_read(token, status);
                false
            }
        };
        self.wake_after(token.connection, changed);
        Ok(())
    }

    fn mark_read(&mut self, token: Token, status: HapStatus) {
        if let Some(entry) = self.pending.entries.iter_mut().find(|e| e.token == token) {
            entry.answer = Some(status);
        }
    }
}
