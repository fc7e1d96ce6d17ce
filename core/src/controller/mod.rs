//! The controller's side of a connection to an accessory: pair-setup, pair-verify, and
//! then requests over the encrypted session, with their responses and the accessory's
//! events. The mirror of [`server`](crate::server).
//!
//! # The run loop
//!
//! A [`Connection`] is one TCP connection, in buffers the caller provides
//! ([`Buffers`]). The caller owns the socket and the clock:
//!
//! 1. Start something: [`Connection::pair_setup`], [`Connection::pair_verify`], or a
//!    request such as [`Connection::get_characteristics`]. Requests are queued in the
//!    output buffer; several may be in flight and are answered in order.
//! 2. Drain [`Connection::poll_output`] until it returns `None`: send
//!    [`Output::Transmit`] bytes, act on [`Output::Event`]s (a response, an event from
//!    the accessory, the end of a pairing exchange), close on [`Output::Close`]. An
//!    event borrows the connection's input buffer; the next poll releases it.
//! 3. When bytes arrive, call [`Connection::handle_input`]; it returns how many it took.
//!    Keep the rest and offer it again after draining (step 2), which frees room. If the
//!    deadline of [`Connection::poll_timeout`] passes first, call
//!    [`Connection::handle_timeout`]; when the socket closes, call
//!    [`Connection::connection_lost`]. Then drain again.
//!
//! Here the controller asks an unpaired accessory to identify itself; `socket` stands
//! in for TCP and answers as an accessory would, in two pieces:
//!
//! ```
//! use hap_core::controller::{self, Buffers, Connection, Event, Output};
//! use hap_core::time::Instant;
//! # use rand_core::SeedableRng;
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! # struct Socket { sent: Vec<u8>, answer: Vec<&'static [u8]> }
//! # impl Socket {
//! #     fn send(&mut self, bytes: &[u8]) { self.sent.extend_from_slice(bytes) }
//! #     fn receive(&mut self) -> Option<&'static [u8]> { self.answer.pop() }
//! # }
//! # let mut socket = Socket {
//! #     sent: Vec::new(),
//! #     answer: vec![b"Length: 0\r\n\r\n", b"HTTP/1.1 204 No Content\r\nContent-"],
//! # };
//! let mut input = [0u8; controller::MIN_INPUT_LEN];
//! let mut scratch = [0u8; controller::MIN_SCRATCH_LEN];
//! let mut output = [0u8; controller::min_output_len(controller::MIN_SCRATCH_LEN)];
//! let buffers = Buffers { input: &mut input, scratch: &mut scratch, output: &mut output };
//! let mut conn = Connection::new(buffers, "192.0.2.7:51826").unwrap();
//! let now = Instant::from_millis(0);
//!
//! conn.identify(now).unwrap();
//! let mut answered = None;
//! while answered.is_none() {
//!     while let Some(output) = conn.poll_output(&mut rng) {
//!         match output {
//!             Output::Transmit(bytes) => socket.send(bytes),
//!             Output::Event(Event::Response(response)) => answered = Some(response.status),
//!             Output::Event(_) => {}
//!             Output::Close(reason) => panic!("closed: {reason}"),
//!             _ => panic!("an output newer than this code"),
//!         }
//!     }
//!     match socket.receive() {
//!         // This accessory sends little; others may need the rest offered again.
//!         Some(bytes) => assert_eq!(conn.handle_input(now, bytes), bytes.len()),
//!         None => conn.connection_lost(),
//!     }
//! }
//! assert!(socket.sent.starts_with(b"POST /identify HTTP/1.1\r\nHost: 192.0.2.7:51826\r\n"));
//! assert_eq!(answered, Some(204));
//! ```
//!
//! Pair-setup and pair-verify run by themselves once started: each answer is checked
//! and the next message sent within step 2, and one event tells how they ended. Pair-setup
//! needs the `alloc` feature (SRP); everything else works in the caller's buffers, with
//! no allocation.
//!
//! # Limits
//!
//! A response must fit in the input buffer less one frame ([`MAX_FRAME_PLAINTEXT`]); a
//! larger one closes the connection with [`CloseReason::ResponseTooLarge`]. The
//! `/accessories` of a large bridge can take hundreds of KiB, so size the input buffer
//! for the accessories the controller meets. A request must fit the scratch buffer.
//! At most [`MAX_IN_FLIGHT`] requests wait for their responses; HomeKitADK and
//! HAP-python answer pipelined requests in order, but aiohomekit sends one at a time
//! because some accessories do not, so a controller meeting unknown accessories should
//! too. Timed writes (`/prepare`, for characteristics with the `tw` permission) are not
//! written yet, and a Backoff refusal's retry delay is not carried.
//!
//! # Tests that drive it
//!
//! The test controllers are built on this module: the std adapters' blocking
//! `tests/support/controller.rs` (also used by the hostile suite and the benchmark)
//! runs pair-setup and pair-verify in a [`Connection`] and then takes its session with
//! [`Connection::into_session`], so that it can also send what a connection would not
//! (tampered or split frames, more than [`MAX_IN_FLIGHT`] requests at once); the
//! embedded adapter's tests verify through a [`Connection`]; and the server's unit tests
//! and the hostile suite write requests and `/pairings` bodies with [`request`] and read
//! answers with [`response`]. [`request::custom`] writes any request, as a test sends it.
//! Still on their own: the in-memory pairing loops of `core/tests/common/mod.rs`, the
//! benchmark's peer (`core/benches/protocol.rs`), the server unit tests' pair and verify
//! loops, and the fuzz harness's reader of the accessory's output, which checks more
//! than a controller needs (a Content-Length on every response, the statuses the
//! server sends).
//!

use core::time::Duration;

use heapless::Deque;
use rand_core::{CryptoRng, RngCore};

use crate::http::Status;
#[cfg(feature = "alloc")]
use crate::pairing::setup::{PairSetupClient, SetupClientOutput, MAX_SETUP_MESSAGE_LEN};
use crate::pairing::verify::{PairVerifyClient, VerifyClientOutput, MAX_VERIFY_MESSAGE_LEN};
use crate::pairing::{AccessoryPairing, ControllerIdentity, PairingError};
use crate::session::{FrameEncryptor, FrameError, Role, Session, MAX_FRAME_PLAINTEXT};
#[cfg(feature = "alloc")]
use crate::setup::SetupCode;
use crate::status::HapStatus;
use crate::time::Instant;

pub mod accessories;
pub mod names;
pub mod request;
pub mod response;

pub use accessories::{
    Accessories, AccessoryReport, CharacteristicInfo, Perms, ServiceCharacteristics, ServiceReport,
    Services,
};
pub use request::{CharacteristicId, ReadOptions, Write, WriteError};
pub use response::{
    CharacteristicReport, Characteristics, ListedPairing, PairingsReply, ReportedValue,
    ResponseError,
};

/// The most requests in flight at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// The smallest input buffer: a pairing response and one decrypted frame.
pub const MIN_INPUT_LEN: usize = 2 * MAX_FRAME_PLAINTEXT;
/// The smallest scratch buffer: the largest pairing request, with its HTTP head.
pub const MIN_SCRATCH_LEN: usize = MAX_FRAME_PLAINTEXT;
/// The smallest output buffer for a scratch buffer of `scratch` bytes: any request,
/// framed.
pub const fn min_output_len(scratch: usize) -> usize {
    FrameEncryptor::sealed_len(scratch)
}
/// How long the controller waits for a response before giving up (10 s, as iOS does),
/// counted from the request or from the last byte received, whichever is later.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `Host` value a connection keeps: a DNS name of 253 bytes with a port.
pub const MAX_HOST_LEN: usize = 260;

/// Why [`Connection::new`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NewConnectionError {
    /// A buffer is smaller than its minimum.
    BuffersTooSmall {
        /// Which buffer: `input`, `scratch` or `output`.
        buffer: &'static str,
        /// Its smallest length.
        minimum: usize,
    },
    /// The host is empty, longer than [`MAX_HOST_LEN`], or not printable ASCII without
    /// spaces.
    BadHost,
}

impl core::fmt::Display for NewConnectionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NewConnectionError::BuffersTooSmall { buffer, minimum } => {
                write!(
                    f,
                    "the {buffer} buffer is smaller than its minimum of {minimum} bytes"
                )
            }
            NewConnectionError::BadHost => {
                write!(f, "not a host: printable ASCII, 1 to {MAX_HOST_LEN} bytes")
            }
        }
    }
}

impl core::error::Error for NewConnectionError {}

/// The buffers a connection works in, provided by the caller.
///
/// - `input` holds what arrived (decrypted, once verified) until a whole message is
///   there: at least [`MIN_INPUT_LEN`]; the largest response is its length less
///   [`MAX_FRAME_PLAINTEXT`].
/// - `scratch` holds a request while it is written: at least [`MIN_SCRATCH_LEN`]. Its
///   length bounds the requests (a write of many values, a read of many ids).
/// - `output` holds requests until they are polled: at least
///   [`min_output_len`]`(scratch.len())`.
#[derive(Debug)]
pub struct Buffers<'b> {
    /// Received bytes.
    pub input: &'b mut [u8],
    /// The request being written.
    pub scratch: &'b mut [u8],
    /// Bytes waiting to be sent.
    pub output: &'b mut [u8],
}

/// A connection's buffers on the heap.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct OwnedBuffers {
    input: alloc::vec::Vec<u8>,
    scratch: alloc::vec::Vec<u8>,
    output: alloc::vec::Vec<u8>,
}

#[cfg(feature = "alloc")]
impl OwnedBuffers {
    /// Buffers for responses of up to `max_response` bytes and requests of up to
    /// `max_request` bytes (each raised to its minimum).
    pub fn new(max_response: usize, max_request: usize) -> Self {
        let scratch = max_request.max(MIN_SCRATCH_LEN);
        Self {
            input: alloc::vec![0; (max_response + MAX_FRAME_PLAINTEXT).max(MIN_INPUT_LEN)],
            output: alloc::vec![0; min_output_len(scratch)],
            scratch: alloc::vec![0; scratch],
        }
    }

    /// The buffers as [`Connection::new`] takes them.
    pub fn borrow(&mut self) -> Buffers<'_> {
        Buffers {
            input: &mut self.input,
            scratch: &mut self.scratch,
            output: &mut self.output,
        }
    }
}

/// The requests a connection sends over the session (and `/identify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Request {
    /// `POST /identify`.
    Identify,
    /// `GET /accessories`.
    Accessories,
    /// `GET /characteristics`.
    ReadCharacteristics,
    /// `PUT /characteristics`.
    WriteCharacteristics,
    /// `POST /pairings`, list.
    ListPairings,
    /// `POST /pairings`, add.
    AddPairing,
    /// `POST /pairings`, remove.
    RemovePairing,
}

/// What is waiting for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlight {
    #[cfg(feature = "alloc")]
    Setup,
    Verify,
    Request(Request),
}

/// A whole message at the front of the input.
struct Arrival {
    kind: Arrived,
    status: u16,
    /// Where its body is in the input buffer.
    body: core::ops::Range<usize>,
    /// Its length, head and body.
    len: usize,
}

enum Arrived {
    Event,
    /// The answer to this.
    Answer(InFlight),
}

/// The pairing exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PairingExchange {
    /// Pair-setup.
    Setup,
    /// Pair-verify.
    Verify,
}

/// Why a pairing exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairingFailure {
    /// The accessory refused (for a wrong setup code,
    /// `Rejected(ErrorCode::Authentication)` at M4), failed to prove itself, or sent a
    /// malformed message.
    Pairing(PairingError),
    /// The accessory answered with this HTTP status instead of a pairing message.
    Status(u16),
    /// The exchange's next message could not be sent (the connection is closing, or
    /// the output buffer is full).
    NotSent(RequestError),
}

impl core::fmt::Display for PairingFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PairingFailure::Pairing(error) => error.fmt(f),
            PairingFailure::Status(status) => write!(f, "the accessory answered HTTP {status}"),
            PairingFailure::NotSent(error) => write!(f, "the next message was not sent: {error}"),
        }
    }
}

impl core::error::Error for PairingFailure {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PairingFailure::Pairing(error) => Some(error),
            PairingFailure::NotSent(error) => Some(error),
            PairingFailure::Status(_) => None,
        }
    }
}

/// The answer to a [`Request`], borrowing its body from the input buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// What it answers.
    pub request: Request,
    /// The HTTP status: 200, 204 or 207 for success (207 means per-item statuses);
    /// 470 when the session is not verified, 4xx and 5xx for other failures.
    pub status: u16,
    /// The body: JSON for characteristics and accessories, TLV8 for `/pairings`.
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    /// The items of a read, a write (207, or 200 with write responses) or an event.
    pub fn characteristics(&self) -> Result<Characteristics<'a>, ResponseError> {
        Characteristics::parse(self.body)
    }

    /// The accessories, services and characteristics of a `GET /accessories` answer.
    pub fn accessories(&self) -> Result<Accessories<'a>, ResponseError> {
        Accessories::parse(self.body)
    }

    /// The `status` of a whole-request answer such as `/identify`'s `{"status":-70401}`.
    pub fn hap_status(&self) -> Result<Option<HapStatus>, ResponseError> {
        response::top_level_status(self.body)
    }

    /// The answer to a `/pairings` request.
    pub fn pairings(&self) -> Result<PairingsReply<'a>, PairingError> {
        PairingsReply::parse(self.body)
    }

    /// Whether the status is a 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Something the application should know about.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Pair-setup completed: keep this, with the controller's identity, to pair-verify.
    Paired(AccessoryPairing),
    /// Pair-verify completed: the connection is encrypted, and requests may be sent.
    Verified,
    /// A pairing exchange failed. The connection stays open and unencrypted, but after
    /// a failed pair-setup close it and connect again: HomeKitADK keeps pair-setup
    /// reserved to the connection that started it until that connection closes
    /// (`HAPPairingPairSetup.c`, `sessionThatIsCurrentlyPairing`), and answers any other
    /// controller Busy meanwhile.
    PairingFailed {
        /// Which exchange.
        exchange: PairingExchange,
        /// Why.
        failure: PairingFailure,
    },
    /// The answer to the oldest request in flight.
    Response(Response<'a>),
    /// An `EVENT/1.0`: characteristics the controller subscribed to changed.
    Changed(Characteristics<'a>),
    /// An `EVENT/1.0` whose body could not be read (HAP-python, for one, writes a NaN
    /// float as `NaN`, which is not JSON). It is dropped; the connection goes on.
    UnreadableEvent(ResponseError),
}

/// What the caller should do next; see the [module docs](self).
#[derive(Debug)]
#[non_exhaustive]
pub enum Output<'c> {
    /// Send these bytes.
    Transmit(&'c [u8]),
    /// Tell the application.
    Event(Event<'c>),
    /// Close the connection; nothing more will be produced. Requests in flight are lost.
    Close(CloseReason),
}

/// Why a connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The accessory sent something that is not a response or an event we can read.
    Response(ResponseError),
    /// A frame failed decryption or framing.
    Frame(FrameError),
    /// A response arrived with no request in flight.
    Unsolicited,
    /// A response is longer than the input buffer can hold.
    ResponseTooLarge {
        /// The longest message the input buffer holds: its length, less one frame
        /// ([`MAX_FRAME_PLAINTEXT`]) once the session is encrypted.
        limit: usize,
    },
    /// No response came within the response timeout.
    Timeout,
    /// The accessory disconnected (reported with [`Connection::connection_lost`]).
    PeerClosed,
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CloseReason::Response(error) => write!(f, "the accessory sent a bad answer: {error}"),
            CloseReason::Frame(error) => write!(f, "the accessory sent a bad frame: {error}"),
            CloseReason::Unsolicited => f.write_str("the accessory answered an unasked request"),
            CloseReason::ResponseTooLarge { limit } => {
                write!(
                    f,
                    "a response longer than the {limit} bytes the input buffer holds"
                )
            }
            CloseReason::Timeout => f.write_str("the accessory did not answer in time"),
            CloseReason::PeerClosed => f.write_str("the accessory disconnected"),
        }
    }
}

/// Why a request or an exchange could not be started: misuse, or a local limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A pairing exchange is running, or (to start one) requests are in flight.
    Busy,
    /// [`MAX_IN_FLIGHT`] requests are waiting for responses.
    TooManyInFlight,
    /// The request needs a verified session.
    NotVerified,
    /// The session is already verified; pairing exchanges run before.
    AlreadyVerified,
    /// The output buffer holds unsent bytes and has no room: drain
    /// [`Connection::poll_output`] first.
    OutputFull,
    /// The connection is closed.
    Closed,
    /// The request could not be written (too large for the scratch buffer, or a bad
    /// value).
    Write(WriteError),
    /// The pairing exchange could not start.
    Pairing(PairingError),
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RequestError::Busy => f.write_str("a pairing exchange or requests are in flight"),
            RequestError::TooManyInFlight => {
                write!(f, "{MAX_IN_FLIGHT} requests are already in flight")
            }
            RequestError::NotVerified => f.write_str("the session is not verified"),
            RequestError::AlreadyVerified => f.write_str("the session is already verified"),
            RequestError::OutputFull => f.write_str("unsent output fills the buffer"),
            RequestError::Closed => f.write_str("the connection is closed"),
            RequestError::Write(error) => error.fmt(f),
            RequestError::Pairing(error) => error.fmt(f),
        }
    }
}

impl core::error::Error for RequestError {}

impl From<WriteError> for RequestError {
    fn from(error: WriteError) -> Self {
        RequestError::Write(error)
    }
}

impl From<crate::http::BufferTooSmall> for RequestError {
    fn from(error: crate::http::BufferTooSmall) -> Self {
        RequestError::Write(error.into())
    }
}

/// The pairing exchange in progress.
// One at a time, and without a heap there is nowhere to box the larger one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Exchange {
    Idle,
    #[cfg(feature = "alloc")]
    Setup {
        client: PairSetupClient,
        identity: ControllerIdentity,
    },
    Verify {
        client: PairVerifyClient,
        identity: ControllerIdentity,
        accessory: AccessoryPairing,
    },
}

/// One connection to an accessory; see the [module docs](self).
#[derive(Debug)]
pub struct Connection<'b> {
    input: &'b mut [u8],
    /// Bytes of `input` filled.
    received: usize,
    /// Bytes at the front of `input` that the last event borrowed, to drop next.
    release: usize,
    scratch: &'b mut [u8],
    output: &'b mut [u8],
    /// Bytes of `output` waiting to be polled.
    unsent: usize,
    session: Option<Session>,
    exchange: Exchange,
    in_flight: Deque<InFlight, MAX_IN_FLIGHT>,
    /// When the oldest request was sent, or a byte of its response last arrived.
    progress: Instant,
    /// When bytes last arrived.
    last_input: Instant,
    /// The `Host` header's value.
    host: heapless::String<MAX_HOST_LEN>,
    response_timeout: Duration,
    closing: Option<CloseReason>,
    closed: bool,
}

impl<'b> Connection<'b> {
    /// A connection in `buffers`, unencrypted and idle, to the accessory at `host`: the
    /// `Host` header's value, such as `192.0.2.7:51826`, `[2001:db8::7]:51826` or
    /// `Virtual-Light.local:51826`.
    pub fn new(buffers: Buffers<'b>, host: &str) -> Result<Self, NewConnectionError> {
        let Buffers {
            input,
            scratch,
            output,
        } = buffers;
        for (buffer, len, minimum) in [
            ("input", input.len(), MIN_INPUT_LEN),
            ("scratch", scratch.len(), MIN_SCRATCH_LEN),
            ("output", output.len(), min_output_len(scratch.len())),
        ] {
            if len < minimum {
                return Err(NewConnectionError::BuffersTooSmall { buffer, minimum });
            }
        }
        // A header value must not end the header early or split the request.
        let printable = host.bytes().all(|b| b.is_ascii_graphic());
        let host = match heapless::String::try_from(host) {
            Ok(host) if printable && !host.is_empty() => host,
            _ => return Err(NewConnectionError::BadHost),
        };
        Ok(Self {
            input,
            received: 0,
            release: 0,
            scratch,
            output,
            unsent: 0,
            session: None,
            exchange: Exchange::Idle,
            in_flight: Deque::new(),
            progress: Instant::from_millis(0),
            last_input: Instant::from_millis(0),
            host,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            closing: None,
            closed: false,
        })
    }

    /// Sets how long to wait for a response ([`DEFAULT_RESPONSE_TIMEOUT`]).
    pub fn set_response_timeout(&mut self, timeout: Duration) {
        self.response_timeout = timeout;
    }

    /// Whether pair-verify completed and the connection is encrypted.
    pub fn is_verified(&self) -> bool {
        self.session.is_some()
    }

    /// Encrypts the connection with `keys`, as if pair-verify had completed. The fuzz
    /// targets call it directly, with fixed keys, so that each run need not pay for
    /// pair-verify.
    #[cfg(any(feature = "fuzzing", all(test, feature = "std")))]
    pub(crate) fn enter_session(&mut self, keys: crate::session::SessionKeys) {
        self.session = Some(Session::new(keys, Role::Controller));
    }

    /// Ends the connection and hands over its session once pair-verify completed
    /// (`None` before), for a test that writes frames this connection would not:
    /// tampered, split at will, or more requests at once than [`MAX_IN_FLIGHT`]. Bytes
    /// received and not yet polled are dropped.
    pub fn into_session(self) -> Option<Session> {
        self.session
    }

    /// How many requests wait for their answers (a pairing exchange counts as one).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts pair-setup with the accessory's setup `code`, as `identity`. Ends with
    /// [`Event::Paired`] or [`Event::PairingFailed`].
    #[cfg(feature = "alloc")]
    pub fn pair_setup(
        &mut self,
        now: Instant,
        code: SetupCode,
        identity: &ControllerIdentity,
    ) -> Result<(), RequestError> {
        self.check_can_pair()?;
        let mut body = [0u8; MAX_SETUP_MESSAGE_LEN];
        let (client, len) =
            PairSetupClient::start(code, 0, &mut body).map_err(RequestError::Pairing)?;
        self.send(now, InFlight::Setup, |out, host| {
            Ok(request::post_tlv(out, host, "/pair-setup", &body[..len])?)
        })?;
        self.exchange = Exchange::Setup {
            client,
            identity: identity.clone(),
        };
        Ok(())
    }

    /// Starts pair-verify with an accessory paired before, as `identity`. Ends with
    /// [`Event::Verified`] or [`Event::PairingFailed`].
    pub fn pair_verify<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        identity: &ControllerIdentity,
        accessory: &AccessoryPairing,
        rng: &mut R,
    ) -> Result<(), RequestError> {
        self.check_can_pair()?;
        let mut body = [0u8; MAX_VERIFY_MESSAGE_LEN];
        let (client, len) =
            PairVerifyClient::start(rng, &mut body).map_err(RequestError::Pairing)?;
        self.send(now, InFlight::Verify, |out, host| {
            Ok(request::post_tlv(out, host, "/pair-verify", &body[..len])?)
        })?;
        self.exchange = Exchange::Verify {
            client,
            identity: identity.clone(),
            accessory: accessory.clone(),
        };
        Ok(())
    }

    /// Asks the accessory to identify itself; an unpaired accessory answers 204, a paired
    /// one 400 with -70401.
    pub fn identify(&mut self, now: Instant) -> Result<(), RequestError> {
        if !matches!(self.exchange, Exchange::Idle) {
            return Err(RequestError::Busy);
        }
        self.send(now, InFlight::Request(Request::Identify), |out, host| {
            Ok(request::identify(out, host)?)
        })
    }

    /// Reads the accessory database (`GET /accessories`).
    pub fn get_accessories(&mut self, now: Instant) -> Result<(), RequestError> {
        self.send_verified(now, Request::Accessories, |out, host| {
            Ok(request::get_accessories(out, host)?)
        })
    }

    /// Reads characteristics.
    pub fn get_characteristics(
        &mut self,
        now: Instant,
        ids: &[CharacteristicId],
        options: ReadOptions,
    ) -> Result<(), RequestError> {
        self.send_verified(now, Request::ReadCharacteristics, |out, host| {
            Ok(request::get_characteristics(out, host, ids, options)?)
        })
    }

    /// Writes values and changes subscriptions.
    pub fn put_characteristics(
        &mut self,
        now: Instant,
        writes: &[Write<'_>],
    ) -> Result<(), RequestError> {
        self.send_verified(now, Request::WriteCharacteristics, |out, host| {
            Ok(request::put_characteristics(out, host, writes)?)
        })
    }

    /// Lists the accessory's pairings (admins only).
    pub fn list_pairings(&mut self, now: Instant) -> Result<(), RequestError> {
        let mut body = [0u8; 8];
        let len = request::list_pairings_body(&mut body)?;
        self.send_verified(now, Request::ListPairings, |out, host| {
            Ok(request::post_tlv(out, host, "/pairings", &body[..len])?)
        })
    }

    /// Adds a pairing for controller `id` with its long-term `public_key` (admins only).
    pub fn add_pairing(
        &mut self,
        now: Instant,
        id: &[u8],
        public_key: &[u8; 32],
        admin: bool,
    ) -> Result<(), RequestError> {
        let mut body = [0u8; 2 * crate::tlv::MAX_FRAGMENT_LEN];
        let len = request::add_pairing_body(&mut body, id, public_key, admin)?;
        self.send_verified(now, Request::AddPairing, |out, host| {
            Ok(request::post_tlv(out, host, "/pairings", &body[..len])?)
        })
    }

    /// Removes the pairing of controller `id` (admins only); removing this controller's
    /// own pairing unpairs it, and the accessory then closes the connection.
    pub fn remove_pairing(&mut self, now: Instant, id: &[u8]) -> Result<(), RequestError> {
        let mut body = [0u8; 2 * crate::tlv::MAX_FRAGMENT_LEN];
        let len = request::remove_pairing_body(&mut body, id)?;
        self.send_verified(now, Request::RemovePairing, |out, host| {
            Ok(request::post_tlv(out, host, "/pairings", &body[..len])?)
        })
    }

    /// Takes bytes received from the accessory and returns how many it took. It takes
    /// fewer when the input buffer is full: drain [`Connection::poll_output`] and offer
    /// the rest again.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        if self.closed || self.closing.is_some() {
            return bytes.len();
        }
        self.release_event();
        if !bytes.is_empty() {
            // Counted as progress only once it is known to be part of a response: an
            // accessory that sends events but never answers must still time out.
            self.last_input = self.last_input.max(now);
        }
        let Some(session) = &mut self.session else {
            let take = bytes.len().min(self.input.len() - self.received);
            self.input[self.received..self.received + take].copy_from_slice(&bytes[..take]);
            self.received += take;
            return take;
        };
        let mut taken = 0;
        // A frame's plaintext must fit whole, so open one only with room for the largest.
        while taken < bytes.len() && self.input.len() - self.received >= MAX_FRAME_PLAINTEXT {
            match session.inbound.open(&bytes[taken..]) {
                Ok(opened) => {
                    taken += opened.consumed;
                    if let Some(plain) = opened.plaintext {
                        self.input[self.received..self.received + plain.len()]
                            .copy_from_slice(plain);
                        self.received += plain.len();
                    }
                }
                Err(error) => {
                    self.closing = Some(CloseReason::Frame(error));
                    return bytes.len();
                }
            }
        }
        taken
    }

    /// The next thing to do; call until it returns `None`. See the [module docs](self).
    pub fn poll_output<R: RngCore + CryptoRng>(&mut self, rng: &mut R) -> Option<Output<'_>> {
        self.release_event();
        if self.unsent > 0 {
            let len = core::mem::take(&mut self.unsent);
            return Some(Output::Transmit(&self.output[..len]));
        }
        if self.closed {
            return None;
        }
        // Messages that arrived whole before the accessory closed or a later frame
        // failed are still answers: an accessory closes right after confirming that it
        // removed this controller's pairing (HomeKitADK, HAP-python).
        if matches!(
            self.closing,
            None | Some(CloseReason::PeerClosed | CloseReason::Frame(_))
        ) {
            if let Some(message) = self.next_message() {
                let body = message.body;
                return match message.kind {
                    Arrived::Event => Some(Output::Event(
                        match Characteristics::parse(&self.input[body]) {
                            Ok(changed) => Event::Changed(changed),
                            Err(error) => Event::UnreadableEvent(error),
                        },
                    )),
                    Arrived::Answer(InFlight::Request(request)) => {
                        Some(Output::Event(Event::Response(Response {
                            request,
                            status: message.status,
                            body: &self.input[body],
                        })))
                    }
                    #[cfg(feature = "alloc")]
                    Arrived::Answer(InFlight::Setup) => {
                        self.pairing_event(message.status, body, message.len, rng)
                    }
                    Arrived::Answer(InFlight::Verify) => {
                        self.pairing_event(message.status, body, message.len, rng)
                    }
                };
            }
        }
        let reason = self.closing.take()?;
        self.closed = true;
        self.received = 0;
        self.release = 0;
        self.in_flight.clear();
        self.exchange = Exchange::Idle;
        Some(Output::Close(reason))
    }

    /// The next whole message in the input, marked to be released at the next poll;
    /// `None` when there is none yet or the connection must close (then `closing` says
    /// why).
    fn next_message(&mut self) -> Option<Arrival> {
        let message = match response::parse_message(&mut self.input[..self.received]) {
            Ok(Status::Complete(message)) => message,
            Ok(Status::Partial) => {
                if self.received > 0 && !self.input.starts_with(b"EVENT") {
                    // A response is arriving: the wait for it makes progress.
                    self.progress = self.progress.max(self.last_input);
                }
                let room = self.input.len() - self.received;
                let stuck = match self.session {
                    // A frame is opened only with room for the largest.
                    Some(_) => room < MAX_FRAME_PLAINTEXT,
                    None => room == 0,
                };
                if stuck && self.closing.is_none() {
                    let limit = self.max_message_len();
                    self.closing = Some(CloseReason::ResponseTooLarge { limit });
                }
                return None;
            }
            Err(error) => {
                self.closing = Some(CloseReason::Response(error));
                return None;
            }
        };
        self.release = message.len;
        let body_range = message.body_start..message.body_end;
        if message.event {
            if self.session.is_none() {
                // Events travel only in the encrypted session; in plaintext, anyone on
                // the network could have written this.
                self.closing = Some(CloseReason::Unsolicited);
                return None;
            }
            return Some(Arrival {
                kind: Arrived::Event,
                status: message.status,
                body: body_range,
                len: message.len,
            });
        }
        let Some(in_flight) = self.in_flight.pop_front() else {
            self.closing = Some(CloseReason::Unsolicited);
            return None;
        };
        // The next request's wait starts now.
        self.progress = self.progress.max(self.last_input);
        Some(Arrival {
            kind: Arrived::Answer(in_flight),
            status: message.status,
            body: body_range,
            len: message.len,
        })
    }

    /// The longest message the input buffer surely holds: all of it in plaintext, less
    /// one frame once encrypted (a frame is opened only with that much free).
    fn max_message_len(&self) -> usize {
        match self.session {
            Some(_) => self.input.len() - MAX_FRAME_PLAINTEXT,
            None => self.input.len(),
        }
    }

    /// Takes a pairing answer: the exchange's end, or its next message.
    fn pairing_event<R: RngCore + CryptoRng>(
        &mut self,
        status: u16,
        body: core::ops::Range<usize>,
        message_len: usize,
        rng: &mut R,
    ) -> Option<Output<'_>> {
        match self.pairing_step(status, body, message_len, rng) {
            Some(event) => Some(Output::Event(event)),
            None => self.poll_output(rng),
        }
    }

    /// When [`Connection::handle_timeout`] should be called, if a response is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight.is_empty() || self.closed {
            return None;
        }
        Some(self.progress + self.response_timeout)
    }

    /// Gives up on the connection if a response is overdue at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) && self.closing.is_none() {
            self.closing = Some(CloseReason::Timeout);
        }
    }

    /// The socket closed or failed; the next poll reports it.
    pub fn connection_lost(&mut self) {
        if !self.closed && self.closing.is_none() {
            self.closing = Some(CloseReason::PeerClosed);
        }
    }

    /// Drops the message the last event borrowed.
    fn release_event(&mut self) {
        if self.release > 0 {
            self.input.copy_within(self.release..self.received, 0);
            self.received -= self.release;
            self.release = 0;
        }
    }

    fn check_can_pair(&self) -> Result<(), RequestError> {
        if self.session.is_some() {
            return Err(RequestError::AlreadyVerified);
        }
        if !matches!(self.exchange, Exchange::Idle) || !self.in_flight.is_empty() {
            return Err(RequestError::Busy);
        }
        Ok(())
    }

    fn send_verified(
        &mut self,
        now: Instant,
        request: Request,
        write: impl FnOnce(&mut [u8], &str) -> Result<usize, RequestError>,
    ) -> Result<(), RequestError> {
        if self.session.is_none() {
            return Err(RequestError::NotVerified);
        }
        self.send(now, InFlight::Request(request), write)
    }

    /// Writes a request with `write` into the scratch buffer, frames it if the session is
    /// encrypted, and queues it for sending.
    fn send(
        &mut self,
        now: Instant,
        in_flight: InFlight,
        write: impl FnOnce(&mut [u8], &str) -> Result<usize, RequestError>,
    ) -> Result<(), RequestError> {
        if self.closed || self.closing.is_some() {
            return Err(RequestError::Closed);
        }
        if self.in_flight.is_full() {
            return Err(RequestError::TooManyInFlight);
        }
        let len = write(self.scratch, &self.host)?;
        let plaintext = &self.scratch[..len];
        let free = &mut self.output[self.unsent..];
        let written = match &mut self.session {
            None => {
                let dest = free.get_mut(..len).ok_or(RequestError::OutputFull)?;
                dest.copy_from_slice(plaintext);
                len
            }
            Some(session) => {
                if free.len() < FrameEncryptor::sealed_len(len) {
                    return Err(RequestError::OutputFull);
                }
                match session.outbound.seal(plaintext, free) {
                    Ok(sealed) if sealed.consumed == len => sealed.written,
                    // Room was checked, so only an exhausted counter stops it, and that
                    // ends the session.
                    Ok(_) => return Err(self.exhausted(FrameError::CounterExhausted)),
                    Err(error) => return Err(self.exhausted(error)),
                }
            }
        };
        self.unsent += written;
        if self.in_flight.is_empty() {
            self.progress = now;
        }
        // Room was checked above.
        let _ = self.in_flight.push_back(in_flight);
        Ok(())
    }

    /// The session can send no more: close the connection.
    fn exhausted(&mut self, error: FrameError) -> RequestError {
        self.closing = Some(CloseReason::Frame(error));
        RequestError::Closed
    }

    /// Feeds a pairing answer to the exchange: sends the next message and returns
    /// nothing, or returns how the exchange ended.
    fn pairing_step<R: RngCore + CryptoRng>(
        &mut self,
        status: u16,
        body: core::ops::Range<usize>,
        message_len: usize,
        rng: &mut R,
    ) -> Option<Event<'static>> {
        // Only pair-setup needs randomness after it started.
        #[cfg(not(feature = "alloc"))]
        let _ = rng;
        let exchange = core::mem::replace(&mut self.exchange, Exchange::Idle);
        let which = match exchange {
            #[cfg(feature = "alloc")]
            Exchange::Setup { .. } => PairingExchange::Setup,
            _ => PairingExchange::Verify,
        };
        if status != 200 {
            return Some(Event::PairingFailed {
                exchange: which,
                failure: PairingFailure::Status(status),
            });
        }
        let failed = |error| {
            Some(Event::PairingFailed {
                exchange: which,
                failure: PairingFailure::Pairing(error),
            })
        };
        let not_sent = |error| {
            Some(Event::PairingFailed {
                exchange: which,
                failure: PairingFailure::NotSent(error),
            })
        };
        match exchange {
            Exchange::Idle => None,
            #[cfg(feature = "alloc")]
            Exchange::Setup {
                mut client,
                identity,
            } => {
                let mut next = [0u8; MAX_SETUP_MESSAGE_LEN];
                match client.handle_response(&self.input[body], &identity, rng, &mut next) {
                    Ok(SetupClientOutput::Send(len)) => {
                        if let Err(error) =
                            self.send_next(InFlight::Setup, "/pair-setup", &next[..len])
                        {
                            return not_sent(error);
                        }
                        self.exchange = Exchange::Setup { client, identity };
                        None
                    }
                    Ok(SetupClientOutput::Paired(pairing)) => Some(Event::Paired(pairing)),
                    // Only a transient setup ends so, and this connection starts none.
                    Ok(SetupClientOutput::Transient(_)) => failed(PairingError::UnexpectedState(4)),
                    Err(error) => failed(error),
                }
            }
            Exchange::Verify {
                mut client,
                identity,
                accessory,
            } => {
                let mut next = [0u8; MAX_VERIFY_MESSAGE_LEN];
                match client.handle_response(&self.input[body], &identity, &accessory, &mut next) {
                    Ok(VerifyClientOutput::Send(len)) => {
                        if let Err(error) =
                            self.send_next(InFlight::Verify, "/pair-verify", &next[..len])
                        {
                            return not_sent(error);
                        }
                        self.exchange = Exchange::Verify {
                            client,
                            identity,
                            accessory,
                        };
                        None
                    }
                    Ok(VerifyClientOutput::Verified(keys)) => {
                        if self.received > message_len {
                            // The accessory cannot have sent anything encrypted before
                            // it saw an encrypted request; this is not HAP.
                            self.closing = Some(CloseReason::Response(ResponseError::Malformed));
                            return None;
                        }
                        self.session = Some(Session::new(keys, Role::Controller));
                        Some(Event::Verified)
                    }
                    Err(error) => failed(error),
                }
            }
        }
    }

    /// Queues the next message of a pairing exchange; the progress clock restarts.
    fn send_next(
        &mut self,
        in_flight: InFlight,
        path: &str,
        body: &[u8],
    ) -> Result<(), RequestError> {
        let now = self.progress;
        self.send(now, in_flight, |out, host| {
            Ok(request::post_tlv(out, host, path, body)?)
        })
    }
}

// The buffers come from the heap.
#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::session::SessionKeys;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const HOST: &str = "192.0.2.7:51826";

    /// A verified connection, with the accessory's end of its session.
    fn encrypted(buffers: &mut OwnedBuffers) -> (Connection<'_>, Session) {
        let keys = SessionKeys::from_transient_setup(b"a test session");
        let mut connection = Connection::new(buffers.borrow(), HOST).unwrap();
        connection.session = Some(Session::new(keys.clone(), Role::Controller));
        (connection, Session::new(keys, Role::Accessory))
    }

    fn sealed(accessory: &mut Session, plaintext: &[u8]) -> std::vec::Vec<u8> {
        let mut out = std::vec![0; FrameEncryptor::sealed_len(plaintext.len())];
        let sealed = accessory.outbound.seal(plaintext, &mut out).unwrap();
        assert_eq!(sealed.consumed, plaintext.len());
        out.truncate(sealed.written);
        out
    }

    fn event(body: &str) -> std::string::String {
        std::format!(
            "EVENT/1.0 200 OK\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Drains the connection, describing each output.
    fn drain(
        connection: &mut Connection<'_>,
        rng: &mut ChaCha20Rng,
    ) -> std::vec::Vec<std::string::String> {
        let mut seen = std::vec::Vec::new();
        while let Some(output) = connection.poll_output(rng) {
            seen.push(match output {
                Output::Transmit(_) => "transmit".into(),
                Output::Event(Event::Response(response)) => {
                    std::format!("{:?} {}", response.request, response.status)
                }
                Output::Event(Event::Changed(items)) => std::format!("changed {}", items.len()),
                Output::Event(Event::UnreadableEvent(error)) => {
                    std::format!("unreadable {error:?}")
                }
                Output::Event(other) => std::format!("{other:?}"),
                Output::Close(reason) => std::format!("close {reason:?}"),
            });
        }
        seen
    }

    #[test]
    fn an_answer_that_came_before_the_close_is_still_delivered() {
        // HomeKitADK and HAP-python confirm the removal of the controller's own pairing,
        // then close; an adapter may see both before it polls.
        let mut buffers = OwnedBuffers::new(0, 0);
        let (mut connection, mut accessory) = encrypted(&mut buffers);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let now = Instant::from_millis(0);
        connection.remove_pairing(now, b"me").unwrap();
        assert_eq!(drain(&mut connection, &mut rng), ["transmit"]);
        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/pairing+tlv8\r\nContent-Length: 3\r\n\r\n\x06\x01\x02";
        let bytes = sealed(&mut accessory, answer);
        assert_eq!(connection.handle_input(now, &bytes), bytes.len());
        connection.connection_lost();
        assert_eq!(
            drain(&mut connection, &mut rng),
            ["RemovePairing 200", "close PeerClosed"]
        );
    }

    #[test]
    fn an_event_in_plaintext_closes_the_connection() {
        let mut buffers = OwnedBuffers::new(0, 0);
        let mut connection = Connection::new(buffers.borrow(), HOST).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let now = Instant::from_millis(0);
        connection.identify(now).unwrap();
        let forged = event(r#"{"characteristics":[{"aid":1,"iid":9,"value":true}]}"#);
        connection.handle_input(now, forged.as_bytes());
        assert_eq!(
            drain(&mut connection, &mut rng),
            ["transmit", "close Unsolicited"]
        );
    }

    #[test]
    fn an_unreadable_event_is_reported_and_the_session_goes_on() {
        let mut buffers = OwnedBuffers::new(0, 0);
        let (mut connection, mut accessory) = encrypted(&mut buffers);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let now = Instant::from_millis(0);
        let id = CharacteristicId { aid: 1, iid: 9 };
        connection
            .get_characteristics(now, &[id], ReadOptions::default())
            .unwrap();
        assert_eq!(drain(&mut connection, &mut rng), ["transmit"]);
        let mut bytes = sealed(
            &mut accessory,
            event(r#"{"characteristics":[{"aid":1,"iid":10,"value":NaN}]}"#).as_bytes(),
        );
        let body = r#"{"characteristics":[{"aid":1,"iid":9,"value":1}]}"#;
        let answer = std::format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/hap+json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        bytes.extend(sealed(&mut accessory, answer.as_bytes()));
        assert_eq!(connection.handle_input(now, &bytes), bytes.len());
        assert_eq!(
            drain(&mut connection, &mut rng),
            [
                "unreadable Json(JsonError { offset: 46, kind: UnexpectedByte })",
                "ReadCharacteristics 200"
            ]
        );
    }

    #[test]
    fn events_do_not_hold_off_the_response_timeout_but_a_response_does() {
        let mut buffers = OwnedBuffers::new(0, 0);
        let (mut connection, mut accessory) = encrypted(&mut buffers);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = CharacteristicId { aid: 1, iid: 9 };
        connection
            .get_characteristics(Instant::from_millis(0), &[id], ReadOptions::default())
            .unwrap();
        assert_eq!(drain(&mut connection, &mut rng), ["transmit"]);
        let changed = event(r#"{"characteristics":[{"aid":1,"iid":10,"value":3}]}"#);
        for at in [4_000, 8_000] {
            let bytes = sealed(&mut accessory, changed.as_bytes());
            connection.handle_input(Instant::from_millis(at), &bytes);
            assert_eq!(drain(&mut connection, &mut rng), ["changed 1"]);
        }
        assert_eq!(
            connection.poll_timeout(),
            Some(Instant::from_millis(10_000))
        );
        // The first piece of the response moves the deadline.
        let bytes = sealed(
            &mut accessory,
            b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n",
        );
        connection.handle_input(Instant::from_millis(9_000), &bytes);
        assert!(drain(&mut connection, &mut rng).is_empty());
        assert_eq!(
            connection.poll_timeout(),
            Some(Instant::from_millis(19_000))
        );
        connection.handle_timeout(Instant::from_millis(19_000));
        assert_eq!(drain(&mut connection, &mut rng), ["close Timeout"]);
    }
}
