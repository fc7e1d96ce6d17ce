//! The accessory server: connections carrying HTTP over TCP, plaintext until pair-verify
//! and encrypted after, with the pairing state they share.
//!
//! # The run loop
//!
//! [`Server`] owns what connections share: the persistent [`AccessoryState`], the
//! accessory [`Database`], the pair-setup lock and the button-press log. Each TCP
//! connection has a [`Connection`], made by [`Server::accept`] with buffers the caller
//! provides. An adapter drives them with one loop per connection:
//!
//! 1. When bytes arrive, call [`Server::handle_input`] with them and the current time. It
//!    returns how many it took; keep the rest and offer it again after step 2. If it
//!    took nothing, the connection is waiting (for output to drain, for storage, or for
//!    the application): stop reading it until a step below produces output, a timeout
//!    passes, or [`Server::poll_wake`] names it.
//! 2. Drain [`Server::poll_output`] until it returns `None`, acting on each [`Output`]:
//!    send [`Output::Transmit`] bytes, store the state on [`Output::Persist`] and report
//!    the result with [`Server::state_persisted`], pass [`Output::Event`]s to the
//!    application, and close the socket on [`Output::Close`]. Then drain
//!    [`Server::poll_event`], the server-wide events (a change of the paired state: mDNS
//!    `sf`).
//! 3. Sleep until [`Server::poll_timeout`], or until more bytes arrive, and then call
//!    [`Server::handle_timeout`] and drain again.
//!
//! Some things concern other connections than the one being driven: a handled
//! [`Output::Persist`] (a change to the pairings may close other controllers'
//! sessions), [`Server::set_value`] (subscribers get events), the application's
//! completions, an eviction by [`Server::make_room`], and a connection's input that
//! changed a value (its subscribers get events). So after each step above, and after
//! the application acted, drain [`Server::poll_wake`] and poll each connection it names.
//! When a socket closes or fails, call [`Server::connection_lost`].
//!
//! # Connections a home leaves open
//!
//! Nothing closes a connection for being idle, verified or not: a Home hub keeps one open
//! for days, and a person may take minutes to type the setup code between pair-setup's M2
//! and M3. Instead, as in HomeKitADK (`HAPIPAccessoryServer.c`), slots are reclaimed when
//! they are needed: before accepting a connection when [`Server::has_room`] is false,
//! call [`Server::make_room`]. It evicts the connection idle longest, if it has been idle
//! for [`Config::idle_eviction`], preferring one that never completed pair-verify; poll
//! that connection and it closes. So an iPhone that left the Wi-Fi without closing its
//! connection holds a slot only until someone else needs it.
//!
//! Events are written only while a connection is idle: no request is being answered and
//! no byte of the next one has arrived. A controller never finds an EVENT between its
//! request and the response.
//!
//! # Operations the application completes
//!
//! A write to a characteristic marked
//! [`confirmed`](crate::database::CharacteristicDef::confirmed) reaches the application
//! as an [`Event::WriteRequest`], with a [`Token`], before anything is stored or
//! answered; the items of one request for one accessory share the token (see the
//! event). A read of a characteristic marked read-on-demand comes as an [`Event::Read`].
//! The application answers with [`Server::complete_write`] or [`Server::complete_read`]
//! (a value, or a [`HapStatus`] such as -70402 for a device that does not answer), or
//! the item fails with -70408 at the read timeout. A write-response's value is given
//! with [`Server::set_value`] (after completing, if the write is confirmed). Until then,
//! and only then, the connection that asked waits; other connections are served.

use core::time::Duration;

use rand_core::{CryptoRng, RngCore};

use crate::database::{Database, OwnedValue, SetValueError};
use crate::http::{self, content_type, parse_request, HttpError, Method, Request, StatusCode};
use crate::pairing::pairings::{handle_pairings, PairingsOutput, PendingPairingsReply};
#[cfg(feature = "alloc")]
use crate::pairing::setup::{PairSetup, SetupOutput};
use crate::pairing::verify::VerifyOutput;
use crate::pairing::{PairingError, PairingId};
use crate::session::FrameError;
use crate::state::AccessoryState;
use crate::time::Instant;

mod attributes;
mod connection;
mod events;
mod pending;
mod render;
pub(crate) mod requests;
mod typed;
use attributes::Job;
#[cfg(feature = "alloc")]
pub use connection::OwnedBuffers;
pub use connection::{
    BuffersTooSmall, Connection, ConnectionBuffers, CONNECTION_MEMORY_AT_DEFAULTS,
    DEFAULT_INPUT_LEN, DEFAULT_OUTPUT_LEN, DEFAULT_SCRATCH_LEN, DEFAULT_SUBSCRIPTIONS,
    MAX_RESPONSE_LEN, MIN_INPUT_LEN, MIN_OUTPUT_LEN, MIN_SCRATCH_LEN,
};
pub use events::{Subscription, BUTTON_LOG_LEN, EVENT_OUTPUT_LEN};
pub use pending::{CompleteError, Token, PENDING_OPERATIONS, PENDING_PER_CONNECTION};
pub use render::HapStatus;

// The scenarios pair first, which needs SRP and so a heap.
#[cfg(all(test, feature = "alloc"))]
mod tests;

/// Limits and timeouts. The defaults are in parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The largest request accepted, head and body (8 KiB); also bounded by the input
    /// buffer.
    pub max_request_len: usize,
    /// How many connections [`Server::accept`] allows at once (16; at most
    /// [`MAX_CONNECTIONS`], and values above count as that). When all are taken,
    /// [`Server::make_room`] evicts one that has been idle for `idle_eviction`.
    pub max_connections: usize,
    /// How long a connection must have been idle, with no byte received or sent, before
    /// [`Server::make_room`] may close it for a new one (60 s, as HomeKitADK). Idle
    /// connections are never closed while there is room: a Home hub keeps one open for
    /// days.
    pub idle_eviction: Duration,
    /// After an event for a characteristic, how long further changes wait and coalesce
    /// into one event with the latest value (1 s, as HomeKitADK). The first change goes
    /// out at once; button presses are never coalesced.
    pub event_window: Duration,
    /// How long a read on demand, a write to a confirmed characteristic
    /// ([`Event::WriteRequest`]), or a write response, waits for the application before
    /// its item fails with -70408 (9 s, inside the 10 s iOS waits for a response). A
    /// confirmed write-response already committed succeeds with its stored value
    /// instead.
    pub read_timeout: Duration,
    /// Whether pair-setup keeps tables of powers of g and of the verifier (yes): about
    /// 2.5 ms less CPU per pair-setup for about 1.6 MB of heap, built by the first
    /// pair-setup (about 20 ms) and kept by the server. Turn it off where memory is
    /// scarcer than time; see [`SrpTables`](crate::srp::SrpTables).
    pub pair_setup_tables: bool,
}

impl Config {
    /// The limits the host adapters (hap-std, hap-smol) use by default, for machines with
    /// memory to spare: requests of up to 32 KiB, HomeKitADK's inbound buffer, so that
    /// iOS can subscribe to every characteristic of a 150-accessory bridge in one PUT;
    /// and 32 connections. The rest as [`Config::default`], which suits a
    /// microcontroller.
    pub fn host() -> Self {
        Self {
            max_request_len: HOST_MAX_REQUEST_LEN,
            max_connections: HOST_MAX_CONNECTIONS,
            ..Self::default()
        }
    }
}

/// The request limit of [`Config::host`]: 32 KiB.
pub const HOST_MAX_REQUEST_LEN: usize = 32 * 1024;

/// The connection limit of [`Config::host`]: 32.
pub const HOST_MAX_CONNECTIONS: usize = 32;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_request_len: http::DEFAULT_MAX_REQUEST_LEN,
            max_connections: 16,
            idle_eviction: Duration::from_secs(60),
            event_window: Duration::from_secs(1),
            read_timeout: Duration::from_secs(9),
            pair_setup_tables: true,
        }
    }
}

/// The most connections one server tracks: the ceiling of [`Config::max_connections`].
/// The server keeps 24 bytes per connection for choosing whom to evict (1.7 KiB for all).
pub const MAX_CONNECTIONS: usize = 64;

/// Room in the server's table for connections that [`Server::make_room`] has evicted but
/// that have not closed yet, on top of [`MAX_CONNECTIONS`].
const EVICTIONS_IN_FLIGHT: usize = 8;

/// Why [`Server::accept`] refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptError {
    /// [`Config::max_connections`] are open and none has been evicted to make room (see
    /// [`Server::make_room`]); close the socket.
    TooManyConnections,
    /// A buffer is too small.
    Buffers(BuffersTooSmall),
}

impl core::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AcceptError::TooManyConnections => {
                f.write_str("all connection slots are taken and none was freed")
            }
            AcceptError::Buffers(error) => write!(f, "cannot accept the connection: {error}"),
        }
    }
}

impl core::error::Error for AcceptError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            AcceptError::Buffers(error) => Some(error),
            AcceptError::TooManyConnections => None,
        }
    }
}

/// Something the application should know about.
///
/// New kinds of events may be added; an application ignores (or logs) those it does not
/// know.
// A written value is carried inline: without a heap there is nowhere to box it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An unpaired accessory was asked to identify itself (POST `/identify`).
    Identify,
    /// A controller wrote a value to a characteristic that is not
    /// [`confirmed`](crate::database::CharacteristicDef::confirmed); it is stored and
    /// answered already. If the characteristic has the write-response permission and the
    /// controller asked for a response, answer with [`Server::set_value`].
    Write {
        /// The accessory.
        aid: u64,
        /// The characteristic.
        iid: u64,
        /// The value written.
        value: OwnedValue,
        /// Who wrote it.
        controller: PairingId,
    },
    /// A controller wrote a value to a [`confirmed`](crate::database::CharacteristicDef::confirmed)
    /// characteristic. It is checked (permissions, timed write, format and limits) but
    /// neither stored nor answered: complete it with [`Server::complete_write`] before
    /// the read timeout ([`Config::read_timeout`]), or its item fails with -70408.
    ///
    /// The confirmed items of one PUT that target the same accessory form one batch:
    /// they come in request order under one token, one after another, and the last has
    /// `last: true`, so
    /// the application can act on them together (On and Brightness of a light) and then
    /// complete the token once. Items that fail their checks are answered with their
    /// status and never come here. A batch of more than [`PENDING_PER_CONNECTION`]
    /// items comes in chunks of at most that many, each under its own token with
    /// `last: true` on its final item; complete each. A chunk's events come only once
    /// room for all its items is reserved, so its `last` always comes.
    ///
    /// An item's subscription change (`ev`) stands or falls with its value: it takes
    /// effect only if the write succeeds. For an item that asked for a write response,
    /// give the response value with [`Server::set_value`] after completing; if none
    /// comes before the read timeout, the item succeeds with the value stored.
    WriteRequest {
        /// What [`Server::complete_write`] needs; the same for the whole batch.
        token: Token,
        /// The accessory.
        aid: u64,
        /// The characteristic.
        iid: u64,
        /// The value written.
        value: OwnedValue,
        /// Who wrote it.
        controller: PairingId,
        /// Whether this is the batch's last item.
        last: bool,
    },
    /// A controller reads a characteristic marked read-on-demand: answer with
    /// [`Server::complete_read`] (or [`Server::set_value`], which answers every read of
    /// it) before the read timeout, or its item fails with -70408.
    Read {
        /// What [`Server::complete_read`] needs.
        token: Token,
        /// The accessory.
        aid: u64,
        /// The characteristic.
        iid: u64,
    },
    /// A controller completed pair-verify on this connection.
    Verified {
        /// The controller.
        controller: PairingId,
    },
    /// The set of pairings changed; the accessory may have become paired or unpaired
    /// (mDNS `sf`).
    PairingsChanged {
        /// Whether any controller is paired now.
        paired: bool,
    },
}

/// What the caller should do next for a connection; see the [module docs](self).
///
/// Marked `#[non_exhaustive]` so that new outputs can be added without breaking
/// adapters. An adapter that meets one it does not know is older than this crate: that
/// is a bug, and closing the connection is the safe answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Output<'c> {
    /// Send these bytes.
    Transmit(&'c [u8]),
    /// Store [`Server::state`], then call [`Server::state_persisted`].
    Persist,
    /// Tell the application.
    Event(Event),
    /// Close the connection; nothing more will be produced.
    Close,
}

/// Why a connection closes. A reason rather than an error (a peer that disconnects has
/// done nothing wrong), so it implements `Display` but not `Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer sent malformed HTTP.
    Http(HttpError),
    /// A frame failed decryption or framing.
    Frame(FrameError),
    /// All connection slots were taken and this one had been idle longest; see
    /// [`Server::make_room`].
    Evicted,
    /// The controller's pairing was removed.
    PairingRemoved,
    /// A response did not fit the output buffer, the state could not be stored, or the
    /// connection fell too far behind on button presses.
    Resources,
    /// The peer disconnected (reported with [`Server::connection_lost`]).
    PeerClosed,
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CloseReason::Http(error) => write!(f, "the peer sent a bad request: {error}"),
            CloseReason::Frame(error) => write!(f, "the peer sent a bad frame: {error}"),
            CloseReason::Evicted => f.write_str("evicted to make room for a new connection"),
            CloseReason::PairingRemoved => f.write_str("the controller's pairing was removed"),
            CloseReason::Resources => f.write_str("a local resource limit was reached"),
            CloseReason::PeerClosed => f.write_str("the peer disconnected"),
        }
    }
}

/// The state shared by all connections of one accessory.
#[derive(Debug)]
pub struct Server<'d> {
    state: AccessoryState,
    database: Database<'d>,
    buttons: events::ButtonLog,
    /// The open connections, for eviction.
    peers: heapless::Vec<Peer, { MAX_CONNECTIONS + EVICTIONS_IN_FLIGHT }>,
    /// Pair-setup needs SRP and so a heap; without one, `/pair-setup` answers 500.
    #[cfg(feature = "alloc")]
    setup: PairSetup,
    config: Config,
    /// The paired state as of the last stored change, to tell when it flips.
    stored_paired: bool,
    /// Whether the accessory is paired, if that changed since [`Server::poll_event`]
    /// last reported it.
    pairing_change: Option<bool>,
    /// A change of the paired state whose reply is on its way to the controller that
    /// made it: reported once that controller surely has the reply, so that mDNS `sf`
    /// does not change while a pairing is in progress.
    held_change: Option<HeldChange>,
    /// Operations waiting for the application.
    pending: pending::Table,
    /// The serial of the next request answered as a job, for [`Token`]s.
    next_serial: u64,
}

/// A change of the paired state held until the controller that made it surely has the
/// reply; see [`Server::poll_event`].
#[derive(Clone, Copy, Debug)]
struct HeldChange {
    /// The connection the reply went to.
    conn: crate::ConnectionId,
    /// Whether the accessory is paired now.
    paired: bool,
    /// When the controller has the reply at the latest.
    deadline: Instant,
}

/// What the server knows of an open connection to choose whom to evict.
#[derive(Clone, Copy, Debug)]
struct Peer {
    id: crate::ConnectionId,
    /// When it was accepted.
    opened: Instant,
    /// When a byte was last received or sent: HomeKitADK's idle clock
    /// (`HAPIPAccessoryServer.c` refreshes it on every I/O).
    last_io: Instant,
    /// Whether it completed pair-verify.
    verified: bool,
    /// Whether [`Server::make_room`] chose it; it closes on its next poll.
    evicted: bool,
    /// Whether something outside its own poll gave it work: [`Server::poll_wake`] names
    /// it.
    wake: bool,
    /// Whether its request waits for the application, which [`Server::set_value`] may
    /// answer.
    waits: bool,
}

/// A reply held until the state it depends on is stored.
// A pending `/pairings` reply carries the pairings it may have to restore; without a heap
// there is nowhere to box it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum AwaitingStorage {
    #[cfg(feature = "alloc")]
    Setup,
    Pairings(PendingPairingsReply),
}

impl<'d> Server<'d> {
    /// A server for an accessory with the loaded `state` and its `database`.
    pub fn new(state: AccessoryState, database: Database<'d>, config: Config) -> Self {
        let paired = state.is_paired();
        Self {
            state,
            database,
            buttons: events::ButtonLog::default(),
            peers: heapless::Vec::new(),
            #[cfg(feature = "alloc")]
            setup: PairSetup::new(config.pair_setup_tables),
            config,
            stored_paired: paired,
            pairing_change: None,
            held_change: None,
            pending: pending::Table::default(),
            next_serial: 0,
        }
    }

    /// The persistent state, to store when asked.
    pub fn state(&self) -> &AccessoryState {
        &self.state
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The accessory database.
    pub fn database(&self) -> &Database<'d> {
        &self.database
    }

    /// Sets a characteristic's value from the application, as
    /// [`Database::set`] checks it (a float near a step is rounded onto it). A changed
    /// value, or any button press, is told to subscribers. Also answers every
    /// [`Event::Read`] of it (their tokens are refused from then on), and gives the
    /// response value of a write-response. Drain [`Server::poll_wake`] afterwards.
    pub fn set_value(
        &mut self,
        aid: u64,
        iid: u64,
        mut value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        let at = self.find(aid, iid)?;
        self.database.check(at, &mut value)?;
        let changed = events::store(&mut self.database, &mut self.buttons, at, iid, value, None);
        self.pending.answer_reads(at.slot);
        if changed {
            self.wake_all();
        } else {
            // The value may answer a read or a write-response.
            self.wake_waiting();
        }
        Ok(changed)
    }

    /// Sets a characteristic's value from the application, checked as
    /// [`Server::set_value`] checks it, without telling subscribers: they hear of it with
    /// a later change or [`Server::notify`]. Reads see it at once (and a read on demand
    /// waiting for it is answered). For a value that moves more often than controllers
    /// asked to hear of it: Adaptive Lighting's colour temperature, told at the notify
    /// interval the controller chose. Returns whether the value differs from the one
    /// stored. A button press is never quiet: it goes through [`Server::set_value`].
    pub fn set_value_quietly(
        &mut self,
        aid: u64,
        iid: u64,
        mut value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        let at = self.find(aid, iid)?;
        if self.database.definition(at).is_button() {
            return self.set_value(aid, iid, value);
        }
        self.database.check(at, &mut value)?;
        let changed = self.database.store_quietly(at, value);
        self.pending.answer_reads(at.slot);
        self.wake_waiting();
        Ok(changed)
    }

    /// Tells the subscribers of characteristic `aid`.`iid` its current value, as a change
    /// by the application, whether or not it changed since they were last told (it may
    /// have been set with [`Server::set_value_quietly`]). Drain [`Server::poll_wake`]
    /// afterwards.
    pub fn notify(&mut self, aid: u64, iid: u64) -> Result<(), SetValueError> {
        let at = self.find(aid, iid)?;
        self.database.touch(at);
        self.wake_all();
        Ok(())
    }

    /// The characteristic `aid`.`iid`, for the application's calls.
    fn find(
        &self,
        aid: u64,
        iid: u64,
    ) -> Result<crate::database::CharacteristicRef, SetValueError> {
        self.database.find(aid, iid).ok_or(SetValueError::NotFound)
    }

    /// Marks the connections whose requests wait for the application for
    /// [`Server::poll_wake`].
    fn wake_waiting(&mut self) {
        for peer in self.peers.iter_mut().filter(|peer| peer.waits) {
            peer.wake = true;
        }
    }

    /// The next connection to poll (drain [`Server::poll_output`]) because something
    /// happened outside its own poll, or `None` when there is none left. Drain it after
    /// [`Server::set_value`], [`Server::complete_write`], [`Server::complete_read`],
    /// [`Server::state_persisted`], [`Server::make_room`], and after any connection's
    /// [`Server::handle_input`] or [`Server::poll_output`] (its input may have changed a
    /// value that others subscribe to). Each connection is named once per wake-up,
    /// however many things happened.
    pub fn poll_wake(&mut self) -> Option<crate::ConnectionId> {
        let peer = self.peers.iter_mut().find(|peer| peer.wake)?;
        peer.wake = false;
        Some(peer.id)
    }

    /// Marks every connection for [`Server::poll_wake`].
    fn wake_all(&mut self) {
        for peer in self.peers.iter_mut() {
            peer.wake = true;
        }
    }

    /// Marks `id` for [`Server::poll_wake`], and every connection if a value `changed`.
    fn wake_after(&mut self, id: crate::ConnectionId, changed: bool) {
        if changed {
            self.wake_all();
        } else if let Some(peer) = self.peer(id) {
            peer.wake = true;
        }
    }

    /// Opens a connection accepted at `now`, identified by `id` (unique among open
    /// ones), or refuses it: when [`Config::max_connections`] are open (not counting
    /// those [`Server::make_room`] evicted), or when a buffer is below its minimum. It
    /// counts until [`Output::Close`] or [`Server::connection_lost`].
    pub fn accept<'b>(
        &mut self,
        id: crate::ConnectionId,
        buffers: ConnectionBuffers<'b>,
        now: Instant,
    ) -> Result<Connection<'b>, AcceptError> {
        if !self.has_room() || self.peers.is_full() {
            return Err(AcceptError::TooManyConnections);
        }
        let mut conn = Connection::new(id, buffers).map_err(AcceptError::Buffers)?;
        let peer = Peer {
            id,
            opened: now,
            last_io: now,
            verified: false,
            evicted: false,
            wake: false,
            waits: false,
        };
        // Checked above.
        let _ = self.peers.push(peer);
        conn.counted = true;
        Ok(conn)
    }

    /// How many connections are open, including evicted ones that have not closed yet.
    pub fn connection_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether [`Server::accept`] would take another connection now.
    pub fn has_room(&self) -> bool {
        let evicted = self.peers.iter().filter(|peer| peer.evicted).count();
        self.peers.len() - evicted < self.config.max_connections.min(MAX_CONNECTIONS)
    }

    /// Lowers [`Config::max_connections`] to `slots`, for an adapter that has buffers for
    /// only that many connections, so that [`Server::has_room`] and
    /// [`Server::make_room`] count the adapter's slots. Never raises it.
    pub fn limit_connections(&mut self, slots: usize) {
        self.config.max_connections = self.config.max_connections.min(slots);
    }

    /// Makes room for a new connection when every slot is taken, as HomeKitADK does
    /// (`HAPIPAccessoryServer.c`): closes the connection idle longest, if it has been
    /// idle for at least [`Config::idle_eviction`]. Returns the evicted connection: poll
    /// it, and it yields [`Output::Close`] (after any reply waiting for storage).
    /// [`Server::accept`] counts it out at once, so the caller may accept the new
    /// connection before the evicted one has closed if it has the buffers.
    ///
    /// Among the candidates, connections that never completed pair-verify go first, and
    /// the one running pair-setup goes last (its user may be typing the code). An
    /// unverified connection open for `idle_eviction` is a candidate even if it keeps
    /// sending bytes, unless it runs pair-setup: otherwise a host trickling a byte a
    /// minute on every slot would lock every controller out.
    ///
    /// Returns `None`, and closes nothing, while there is room or when every connection
    /// is busier than that: then refuse the new one. An idle connection is never closed
    /// while there is room, so a Home hub's session lasts as long as the hub wants.
    pub fn make_room(&mut self, now: Instant) -> Option<crate::ConnectionId> {
        if self.has_room() {
            return None;
        }
        let idle_eviction = self.config.idle_eviction;
        #[cfg(feature = "alloc")]
        let pairing = self.setup.owner();
        #[cfg(not(feature = "alloc"))]
        let pairing: Option<crate::ConnectionId> = None;
        let victim = self
            .peers
            .iter_mut()
            .filter(|peer| !peer.evicted)
            .filter(|peer| {
                let idle = now >= peer.last_io + idle_eviction;
                let stale = !peer.verified
                    && pairing != Some(peer.id)
                    && now >= peer.opened + idle_eviction;
                idle || stale
            })
            .min_by_key(|peer| (pairing == Some(peer.id), peer.verified, peer.last_io))?;
        victim.evicted = true;
        victim.wake = true;
        Some(victim.id)
    }

    fn peer(&mut self, id: crate::ConnectionId) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|peer| peer.id == id)
    }

    /// Restarts `conn`'s idle clock.
    fn touch(&mut self, conn: &Connection<'_>, now: Instant) {
        if let Some(peer) = self.peer(conn.id) {
            peer.last_io = now;
        }
    }

    /// Closes `conn` if [`Server::make_room`] chose it.
    fn close_if_evicted(&mut self, conn: &mut Connection<'_>) {
        if self.peer(conn.id).is_some_and(|peer| peer.evicted) {
            conn.close(CloseReason::Evicted);
        }
    }

    /// Reports the held change of the paired state, if its reply went to `id`.
    fn report_after_reply(&mut self, id: crate::ConnectionId) {
        if self.held_change.is_some_and(|held| held.conn == id) {
            self.report_held_change();
        }
    }

    /// Reports the held change of the paired state, if any.
    fn report_held_change(&mut self) {
        if let Some(held) = self.held_change.take() {
            self.pairing_change = Some(held.paired);
        }
    }

    fn release(&mut self, conn: &mut Connection<'_>) {
        self.report_after_reply(conn.id);
        let held = self.pending.len();
        self.pending.release(conn.id);
        if self.pending.len() < held {
            // Requests elsewhere may wait for room.
            self.wake_waiting();
        }
        if core::mem::take(&mut conn.counted) {
            if let Some(index) = self.peers.iter().position(|peer| peer.id == conn.id) {
                self.peers.swap_remove(index);
            }
        }
    }

    /// Feeds bytes received on `conn` and returns how many were taken.
    ///
    /// Fewer than all are taken only while the connection cannot buffer more: its output
    /// is full, a reply waits for storage, or a request waits for the application. Offer
    /// the rest again after draining [`Server::poll_output`]; when nothing at all was
    /// taken, wait for output, a timeout (see [`Server::poll_timeout`]) or until
    /// [`Server::poll_wake`] names the connection first, rather than spinning. A closed connection takes and discards everything.
    pub fn handle_input<R: RngCore + CryptoRng>(
        &mut self,
        conn: &mut Connection<'_>,
        now: Instant,
        bytes: &[u8],
        rng: &mut R,
    ) -> usize {
        self.close_if_evicted(conn);
        if !bytes.is_empty() {
            self.touch(conn, now);
            // It sent something after its reply, so it has the reply.
            self.report_after_reply(conn.id);
        }
        // Take what fits, answer what is complete, and repeat: pipelined requests may
        // add up to more than the input buffer holds.
        let mut taken = 0;
        while conn.closing.is_none() && taken < bytes.len() {
            let step = match conn.receive(&bytes[taken..]) {
                Ok(step) => step,
                Err(reason) => {
                    conn.close(reason);
                    break;
                }
            };
            taken += step;
            let buffered = conn.input_len;
            self.process(conn, now, rng);
            if step == 0 && conn.input_len == buffered {
                if conn.is_blocked() || conn.job.is_some() {
                    // Backpressure: the caller keeps the rest until output drains, or
                    // until the request being answered is done.
                    return taken;
                }
                // Nothing fits and nothing can be answered: the request is too large.
                let limit = self.request_limit(conn);
                conn.close(CloseReason::Http(HttpError::TooLarge { limit }));
            }
        }
        if conn.closing.is_some() {
            return bytes.len();
        }
        taken
    }

    /// The next thing to do for `conn`, or `None` until more input or a timeout.
    ///
    /// Once earlier output has been taken, this answers requests that were waiting for
    /// room, which is why it needs the time and randomness. After [`Output::Close`] it
    /// returns nothing more, except [`Output::Persist`] for a change that must still be
    /// stored.
    pub fn poll_output<'c, R: RngCore + CryptoRng>(
        &mut self,
        conn: &'c mut Connection<'_>,
        now: Instant,
        rng: &mut R,
    ) -> Option<Output<'c>> {
        if core::mem::take(&mut conn.persist_requested) {
            return Some(Output::Persist);
        }
        if conn.closed_reported {
            return None;
        }
        if let Some(event) = conn.events.pop_front() {
            return Some(Output::Event(event));
        }
        if conn.awaiting.is_none() {
            self.close_if_unpaired(conn);
            self.close_if_evicted(conn);
        }
        if conn.output_len == 0 {
            self.process(conn, now, rng);
            self.write_events(conn, now);
            // A request answered just now may wait for storage: say so now, or the
            // caller, seeing `None`, would wait for input that may never come.
            if core::mem::take(&mut conn.persist_requested) {
                return Some(Output::Persist);
            }
        }
        if let Some(event) = conn.events.pop_front() {
            return Some(Output::Event(event));
        }
        if conn.output_len > 0 {
            self.touch(conn, now);
            let len = core::mem::take(&mut conn.output_len);
            return Some(Output::Transmit(&conn.buffers.output[..len]));
        }
        // A reply waiting for storage still has to be resolved before closing.
        if conn.closing.is_some() && conn.awaiting.is_none() {
            conn.closed_reported = true;
            #[cfg(feature = "alloc")]
            self.setup.connection_closed(conn.id);
            self.release(conn);
            return Some(Output::Close);
        }
        None
    }

    /// Server-wide events, not tied to a connection: [`Event::PairingsChanged`] when the
    /// paired state changed (update mDNS `sf` then). Drain it after each
    /// [`Server::handle_input`] and after draining [`Server::poll_output`].
    ///
    /// A change is reported once it is stored and the controller that made it surely has
    /// its reply: when that connection sends its next bytes or ends, when any connection
    /// completes pair-verify, or 10 s after the reply (a deadline of that connection's
    /// [`Server::poll_timeout`]). Announcing `sf=0` before iOS has read M6 makes
    /// it think another controller took the accessory, and it abandons the pairing (iOS
    /// 13; HAP-Java #95, HAP-python #246).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.pairing_change
            .take()
            .map(|paired| Event::PairingsChanged { paired })
    }

    /// Tells the server that `conn` is gone: the peer disconnected, or the adapter closed
    /// it. Releases what the connection held in shared state, such as the pair-setup
    /// lock, so another controller need not wait for it to time out. A change waiting for
    /// storage is kept: if [`Server::poll_output`] still yields [`Output::Persist`], store
    /// the state and call [`Server::state_persisted`] as usual.
    pub fn connection_lost(&mut self, conn: &mut Connection<'_>) {
        conn.close(CloseReason::PeerClosed);
        conn.closed_reported = true;
        // Nowhere to send it any more.
        conn.output_len = 0;
        conn.input_len = 0;
        conn.events.clear();
        conn.job = None;
        #[cfg(feature = "alloc")]
        self.setup.connection_closed(conn.id);
        self.release(conn);
    }

    /// Reports whether storing the state succeeded, releasing the reply that waited. On
    /// failure the change is undone and the request answered with 500. On a closed
    /// connection the change is kept or undone all the same, and nothing is sent.
    pub fn state_persisted<R: RngCore + CryptoRng>(
        &mut self,
        conn: &mut Connection<'_>,
        now: Instant,
        stored: bool,
        rng: &mut R,
    ) {
        let Some(awaiting) = conn.awaiting.take() else {
            return;
        };
        // A change to the pairings may close other controllers' sessions.
        self.wake_all();
        let mut body = [0u8; crate::pairing::pairings::MAX_PAIRINGS_MESSAGE_LEN];
        let reply = match (awaiting, stored) {
            #[cfg(feature = "alloc")]
            (AwaitingStorage::Setup, true) => {
                match self.setup.persisted(conn.id, &self.state, &mut body) {
                    Ok(SetupOutput::Reply(len)) => Some((len, None)),
                    Ok(SetupOutput::Transient { reply_len, keys }) => Some((reply_len, Some(keys))),
                    Ok(SetupOutput::Persist(_)) | Err(_) => None,
                }
            }
            #[cfg(feature = "alloc")]
            (AwaitingStorage::Setup, false) => {
                let _ = self.setup.persist_failed(conn.id, &mut self.state);
                None
            }
            (AwaitingStorage::Pairings(pending), true) => pending
                .persisted(&mut body)
                .ok()
                .map(|(len, _)| (len, None)),
            (AwaitingStorage::Pairings(pending), false) => {
                // Sessions of a controller the failed change added close on their next
                // poll, since the pairing is gone again.
                pending.persist_failed(&mut self.state);
                None
            }
        };
        if self.state.is_paired() != self.stored_paired {
            self.stored_paired = self.state.is_paired();
            self.report_after_reply(conn.id);
            if conn.closing.is_some() || reply.is_none() {
                self.pairing_change = Some(self.stored_paired);
            } else {
                self.held_change = Some(HeldChange {
                    conn: conn.id,
                    paired: self.stored_paired,
                    deadline: now + REPLY_RECEIVED_WITHIN,
                });
            }
        }
        if conn.closing.is_some() {
            return;
        }
        match reply {
            Some((len, transient_keys)) => {
                conn.respond(
                    StatusCode::Ok,
                    Some(content_type::PAIRING_TLV8),
                    &body[..len],
                );
                if let Some(keys) = transient_keys {
                    conn.start_session(keys, true);
                }
            }
            None => conn.respond(
                StatusCode::InternalServerError,
                Some(content_type::HAP_JSON),
                OUT_OF_RESOURCES,
            ),
        }
        self.process(conn, now, rng);
    }

    /// The earliest time at which [`Server::handle_timeout`] has work for `conn`.
    pub fn poll_timeout(&self, conn: &Connection<'_>) -> Option<Instant> {
        if conn.closing.is_some() {
            return None;
        }
        // No idle timer: idle connections close only to make room (`make_room`), and a
        // pair-setup waits for its person as long as nobody else wants to pair.
        let job = Self::job_deadline(conn);
        let event = self.event_deadline(conn);
        let reported = self
            .held_change
            .filter(|held| held.conn == conn.id)
            .map(|held| held.deadline);
        [job, event, reported].into_iter().flatten().min()
    }

    /// Applies timeouts that have passed by `now`. Reads and writes waiting for the
    /// application, and coalesced events, are answered on the next
    /// [`Server::poll_output`].
    pub fn handle_timeout(&mut self, conn: &mut Connection<'_>, now: Instant) {
        // Everything else due is found by the next poll; this is also where a connection
        // an adapter was told to poll learns that it was evicted.
        if self
            .held_change
            .is_some_and(|held| held.conn == conn.id && now >= held.deadline)
        {
            self.report_held_change();
        }
        self.close_if_evicted(conn);
    }

    /// The largest request `conn` accepts: the configured limit, or what its input buffer
    /// holds with room for one decrypted frame, so encrypted and plaintext requests are
    /// held to the same limit.
    fn request_limit(&self, conn: &Connection<'_>) -> usize {
        self.config
            .max_request_len
            .min(conn.buffers.input.len() - crate::session::MAX_FRAME_PLAINTEXT)
    }

    /// Closes a verified connection whose controller is no longer paired.
    fn close_if_unpaired(&self, conn: &mut Connection<'_>) {
        let removed = conn
            .controller
            .as_ref()
            .is_some_and(|c| self.state.pairings.get(c.as_bytes()).is_none());
        if removed {
            conn.close(CloseReason::PairingRemoved);
        }
    }

    /// Answers the complete requests buffered on `conn`, in order, until one must wait
    /// for storage or the input holds no complete request.
    fn process<R: RngCore + CryptoRng>(
        &mut self,
        conn: &mut Connection<'_>,
        now: Instant,
        rng: &mut R,
    ) {
        while conn.closing.is_none() && !conn.is_blocked() {
            // Never serve a controller whose pairing is gone.
            self.close_if_unpaired(conn);
            if conn.closing.is_some() {
                return;
            }
            // Empty lines before a request line are ignored (RFC 9112 §2.2); left in the
            // input they would keep the connection from being idle, and its events.
            let blank = conn.buffers.input[..conn.input_len]
                .iter()
                .take_while(|byte| matches!(byte, b'\r' | b'\n'))
                .count();
            if blank > 0 && conn.job.is_none() {
                conn.consume_input(blank);
            }
            let limit = self.request_limit(conn);
            let input = &conn.buffers.input[..conn.input_len];
            let request = match parse_request(input, limit) {
                Ok(http::Status::Complete(request)) => request,
                Ok(http::Status::Partial) => return,
                Err(error) => return conn.close(CloseReason::Http(error)),
            };
            let consumed = request.len;
            let route = Route::of(&request);
            let verified = conn.session.is_some() && !conn.transient;
            if route.is_job() && verified {
                if conn.job.is_none() {
                    conn.job = self.start_job(conn, route, now);
                    if conn.job.is_none() {
                        // Answered at once (malformed): take the request.
                        conn.consume_input(consumed);
                        continue;
                    }
                }
                match self.drive_job(conn, now) {
                    attributes::Progress::Done => conn.consume_input(consumed),
                    attributes::Progress::Waiting => return,
                }
                continue;
            }
            // The request borrows the input buffer, so route it with a copy of its body
            // in the scratch buffer.
            let body_len = request.body.len();
            let Some(scratch) = conn.buffers.scratch.get_mut(..body_len) else {
                return conn.close(CloseReason::Resources);
            };
            scratch.copy_from_slice(request.body);
            conn.consume_input(consumed);
            self.serve(conn, route, body_len, now, rng);
        }
    }

    fn serve<R: RngCore + CryptoRng>(
        &mut self,
        conn: &mut Connection<'_>,
        route: Route,
        body_len: usize,
        now: Instant,
        rng: &mut R,
    ) {
        // A transient session exists only for what the setup that made it needs;
        // HomeKitADK refuses everything else on it.
        if conn.transient && route != Route::Identify {
            return conn.respond(StatusCode::BadRequest, None, b"");
        }
        // Past that, an encrypted session is a verified one.
        let verified = conn.session.is_some();
        match route {
            Route::PairSetup | Route::PairVerify if verified => {
                conn.respond(StatusCode::BadRequest, None, b"")
            }
            #[cfg(feature = "alloc")]
            Route::PairSetup => self.pair_setup(conn, body_len, now, rng),
            #[cfg(not(feature = "alloc"))]
            Route::PairSetup => conn.respond(
                StatusCode::InternalServerError,
                Some(content_type::HAP_JSON),
                OUT_OF_RESOURCES,
            ),
            Route::PairVerify => self.pair_verify(conn, body_len, rng),
            _ if route.is_protected() && !verified => {
                conn.respond(StatusCode::ConnectionAuthorizationRequired, None, b"")
            }
            Route::Pairings => self.pairings(conn, body_len),
            Route::Prepare => self.prepare(conn, body_len, now),
            Route::Identify if self.state.is_paired() => conn.respond(
                StatusCode::BadRequest,
                Some(content_type::HAP_JSON),
                b"{\"status\":-70401}",
            ),
            Route::Identify => {
                conn.push_event(Event::Identify);
                conn.respond(StatusCode::NoContent, None, b"");
            }
            // Jobs are started before serving; reaching here means the request was taken
            // as a whole instead, which `process` never does for them.
            Route::Accessories | Route::ReadCharacteristics | Route::WriteCharacteristics => {
                conn.respond(StatusCode::InternalServerError, None, b"")
            }
            Route::Resource | Route::Unknown => conn.respond(StatusCode::NotFound, None, b""),
            Route::WrongMethod { .. } => conn.respond(StatusCode::MethodNotAllowed, None, b""),
        }
    }

    #[cfg(feature = "alloc")]
    fn pair_setup<R: RngCore + CryptoRng>(
        &mut self,
        conn: &mut Connection<'_>,
        body_len: usize,
        now: Instant,
        rng: &mut R,
    ) {
        let mut reply = [0u8; crate::pairing::setup::MAX_SETUP_MESSAGE_LEN];
        let request = &conn.buffers.scratch[..body_len];
        match self
            .setup
            .handle(now, conn.id, request, &mut self.state, rng, &mut reply)
        {
            Ok(SetupOutput::Reply(len)) => conn.respond(
                StatusCode::Ok,
                Some(content_type::PAIRING_TLV8),
                &reply[..len],
            ),
            Ok(SetupOutput::Persist(_)) => conn.await_storage(AwaitingStorage::Setup),
            Ok(SetupOutput::Transient { reply_len, keys }) => {
                conn.respond(
                    StatusCode::Ok,
                    Some(content_type::PAIRING_TLV8),
                    &reply[..reply_len],
                );
                conn.start_session(keys, true);
            }
            Err(error) => conn.respond_to_pairing_error(error),
        }
    }

    fn pair_verify<R: RngCore + CryptoRng>(
        &mut self,
        conn: &mut Connection<'_>,
        body_len: usize,
        rng: &mut R,
    ) {
        let mut reply = [0u8; crate::pairing::verify::MAX_VERIFY_MESSAGE_LEN];
        let request = &conn.buffers.scratch[..body_len];
        match conn.verify.handle(request, &self.state, rng, &mut reply) {
            Ok(VerifyOutput::Reply(len)) => conn.respond(
                StatusCode::Ok,
                Some(content_type::PAIRING_TLV8),
                &reply[..len],
            ),
            Ok(VerifyOutput::Verified {
                reply_len,
                keys,
                controller,
            }) => {
                conn.respond(
                    StatusCode::Ok,
                    Some(content_type::PAIRING_TLV8),
                    &reply[..reply_len],
                );
                self.enter_session(conn, keys, controller.clone());
                if let Some(peer) = self.peer(conn.id) {
                    peer.verified = true;
                }
                // A controller verifying has its pairing's reply, wherever it came from.
                self.report_held_change();
                conn.push_event(Event::Verified { controller });
            }
            Err(error) => conn.respond_to_pairing_error(error),
        }
    }

    /// Encrypts `conn` with `keys` for the verified `controller`. The fuzz targets call
    /// it directly, with fixed keys, so that each run need not pay for pair-verify.
    pub(crate) fn enter_session(
        &self,
        conn: &mut Connection<'_>,
        keys: crate::session::SessionKeys,
        controller: PairingId,
    ) {
        conn.start_session(keys, false);
        conn.controller = Some(controller);
        conn.button_cursor = self.buttons.next_seq();
    }

    fn pairings(&mut self, conn: &mut Connection<'_>, body_len: usize) {
        let Some(controller) = conn.controller.clone() else {
            return conn.respond(StatusCode::ConnectionAuthorizationRequired, None, b"");
        };
        let mut reply = [0u8; crate::pairing::pairings::MAX_PAIRINGS_MESSAGE_LEN];
        let request = &conn.buffers.scratch[..body_len];
        match handle_pairings(request, &controller, &mut self.state, &mut reply) {
            Ok(PairingsOutput::Reply(len)) => conn.respond(
                StatusCode::Ok,
                Some(content_type::PAIRING_TLV8),
                &reply[..len],
            ),
            Ok(PairingsOutput::Persist { reply, .. }) => {
                conn.await_storage(AwaitingStorage::Pairings(reply))
            }
            Err(error) => conn.respond_to_pairing_error(error),
        }
    }
}

/// How long after a reply that changed the paired state its controller surely has it, if
/// it neither sends more nor closes: iOS gives each pairing step about 10 s.
const REPLY_RECEIVED_WITHIN: Duration = Duration::from_secs(10);

/// HAP's body for a 500 answer: out of resources (-70407).
const OUT_OF_RESOURCES: &[u8] = b"{\"status\":-70407}";

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    PairSetup,
    PairVerify,
    Pairings,
    Identify,
    /// GET `/accessories`.
    Accessories,
    /// GET `/characteristics`.
    ReadCharacteristics,
    /// PUT `/characteristics`.
    WriteCharacteristics,
    /// PUT `/prepare`.
    Prepare,
    /// POST `/resource`: camera snapshots, which no accessory here offers.
    Resource,
    /// A known path with the wrong method.
    WrongMethod {
        protected: bool,
    },
    Unknown,
}

impl Route {
    /// Whether the route needs a verified session.
    fn is_protected(self) -> bool {
        matches!(
            self,
            Route::Pairings
                | Route::Accessories
                | Route::ReadCharacteristics
                | Route::WriteCharacteristics
                | Route::Prepare
                | Route::Resource
                | Route::WrongMethod { protected: true }
        )
    }

    /// Whether the route is answered by a [`Job`] over several polls.
    fn is_job(self) -> bool {
        matches!(
            self,
            Route::Accessories | Route::ReadCharacteristics | Route::WriteCharacteristics
        )
    }

    fn of(request: &Request<'_>) -> Self {
        let (allowed, route, protected): (&[Method], Route, bool) = match request.path {
            "/pair-setup" => (&[Method::Post], Route::PairSetup, false),
            "/pair-verify" => (&[Method::Post], Route::PairVerify, false),
            "/identify" => (&[Method::Post], Route::Identify, false),
            "/pairings" => (&[Method::Post], Route::Pairings, true),
            "/accessories" => (&[Method::Get], Route::Accessories, true),
            "/characteristics" if request.method == Method::Put => {
                (&[Method::Put], Route::WriteCharacteristics, true)
            }
            "/characteristics" => (&[Method::Get], Route::ReadCharacteristics, true),
            "/prepare" => (&[Method::Put], Route::Prepare, true),
            "/resource" => (&[Method::Post], Route::Resource, true),
            _ => return Route::Unknown,
        };
        if allowed.contains(&request.method) {
            route
        } else {
            Route::WrongMethod { protected }
        }
    }
}

/// Maps a pairing-layer error to the connection's answer.
fn pairing_error_status(error: PairingError) -> StatusCode {
    match error {
        PairingError::BufferTooSmall { .. } => StatusCode::InternalServerError,
        _ => StatusCode::BadRequest,
    }
}
