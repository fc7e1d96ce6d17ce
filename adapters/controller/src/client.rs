//! A blocking client: one TCP connection to an accessory, driven through
//! [`hap_core::controller::Connection`]'s run loop.
//!
//! The client owns the socket and the clock; the core owns the protocol. Each call
//! starts one thing on the connection (pair-setup, pair-verify, a request) and runs the
//! loop until it ends: poll the outputs, send what the core says, read with the
//! remaining time as the socket's timeout, feed what arrived.

use std::fmt;
use std::io::{self, Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant as StdInstant};

use hap_core::controller::{
    self, CharacteristicId, CloseReason, Connection, Event, Output, OwnedBuffers, PairingExchange,
    PairingFailure, ReadOptions, Request, RequestError, Write,
};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, ErrorCode, PairingError};
use hap_core::setup::SetupCode;
use hap_core::status::HapStatus;
use hap_core::time::Instant;
use rand_core::OsRng;

use crate::{ErrorKind, Reported};

/// The largest response the client reads: `/accessories` of a large bridge.
pub const MAX_RESPONSE_LEN: usize = 512 * 1024;
/// The largest request the client writes.
pub const MAX_REQUEST_LEN: usize = 16 * 1024;

/// Buffers sized for [`Client`]: responses up to [`MAX_RESPONSE_LEN`], requests up to
/// [`MAX_REQUEST_LEN`].
pub fn buffers() -> OwnedBuffers {
    OwnedBuffers::new(MAX_RESPONSE_LEN, MAX_REQUEST_LEN)
}

/// Why a client call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection could not be made.
    Connect {
        /// Where.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The connection closed (the core says why: a timeout, the accessory hanging up,
    /// or a bad answer).
    Closed(CloseReason),
    /// A pairing exchange failed.
    Pairing {
        /// Which one.
        exchange: PairingExchange,
        /// Why.
        failure: PairingFailure,
    },
    /// A request could not be started.
    Request(RequestError),
    /// The accessory answered with an HTTP error status.
    Status {
        /// What was asked.
        request: Request,
        /// The HTTP status.
        status: u16,
        /// The HAP status in the body, if any.
        hap_status: Option<HapStatus>,
    },
    /// The accessory answered `/pairings` with an error code.
    PairingsRefused(ErrorCode),
    /// An answer that cannot be read.
    Malformed(String),
}

impl ClientError {
    /// Which exit-code class the error belongs to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Connect { .. } | ClientError::Io(_) => ErrorKind::Unreachable,
            ClientError::Closed(CloseReason::Timeout | CloseReason::PeerClosed) => {
                ErrorKind::Unreachable
            }
            ClientError::Closed(_) => ErrorKind::Protocol,
            ClientError::Pairing { exchange, failure } => match failure {
                PairingFailure::Pairing(PairingError::Rejected(ErrorCode::Authentication)) => {
                    ErrorKind::Authentication
                }
                PairingFailure::Pairing(PairingError::Authentication) => ErrorKind::Authentication,
                // An accessory that refuses pair-verify does not know us.
                PairingFailure::Pairing(PairingError::Rejected(_))
                    if *exchange == PairingExchange::Verify =>
                {
                    ErrorKind::Authentication
                }
                PairingFailure::Pairing(PairingError::Rejected(_)) | PairingFailure::Status(_) => {
                    ErrorKind::Refused
                }
                PairingFailure::Pairing(_) => ErrorKind::Protocol,
                _ => ErrorKind::Failed,
            },
            ClientError::Request(_) => ErrorKind::Failed,
            ClientError::Status { .. } | ClientError::PairingsRefused(_) => ErrorKind::Refused,
            ClientError::Malformed(_) => ErrorKind::Protocol,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { address, source } => {
                write!(f, "cannot reach {address}: {}", io_text(source))
            }
            ClientError::Io(source) => write!(f, "the connection failed: {}", io_text(source)),
            ClientError::Closed(reason) => reason.fmt(f),
            ClientError::Pairing { exchange, failure } => {
                let name = match exchange {
                    PairingExchange::Setup => "pair-setup",
                    PairingExchange::Verify => "pair-verify",
                    _ => "pairing",
                };
                write!(f, "{name} failed: {failure}")
            }
            ClientError::Request(error) => write!(f, "cannot send the request: {error}"),
            ClientError::Status {
                request,
                status,
                hap_status,
            } => {
                write!(f, "the accessory refused {request:?} with HTTP {status}")?;
                match hap_status {
                    Some(hap) => write!(f, ": {hap}"),
                    None => Ok(()),
                }
            }
            ClientError::PairingsRefused(code) => write!(f, "the accessory refused: {code}"),
            ClientError::Malformed(what) => write!(f, "the accessory sent a bad answer: {what}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io(source) => Some(source),
            ClientError::Pairing { failure, .. } => Some(failure),
            ClientError::Request(error) => Some(error),
            _ => None,
        }
    }
}

impl From<RequestError> for ClientError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Closed => ClientError::Closed(CloseReason::PeerClosed),
            other => ClientError::Request(other),
        }
    }
}

/// The OS's words for the usual connection failures, without "(os error 111)".
fn io_text(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => error.to_string(),
    }
}

/// An owned copy of an answer, so that it outlives the connection's input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// What it answers.
    pub request: Request,
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The answer as the core reads it, borrowing the body.
    pub fn response(&self) -> controller::Response<'_> {
        controller::Response {
            request: self.request,
            status: self.status,
            body: &self.body,
        }
    }

    /// The answer if its status is a 2xx, else [`ClientError::Status`] with the HAP
    /// status the body names.
    pub fn success(self) -> Result<Answer, ClientError> {
        if self.response().is_success() {
            return Ok(self);
        }
        Err(ClientError::Status {
            request: self.request,
            status: self.status,
            hap_status: self.response().hap_status().ok().flatten(),
        })
    }
}

/// What the loop hands back: an event the caller waited for, owned.
enum Owned {
    Paired(AccessoryPairing),
    Verified,
    Failed(PairingExchange, PairingFailure),
    Answer(Answer),
    Changed(Vec<Reported>),
}

/// One connection to an accessory.
pub struct Client<'b> {
    stream: TcpStream,
    connection: Connection<'b>,
    address: SocketAddr,
    timeout: Duration,
    epoch: StdInstant,
    /// Bytes read but not yet taken by the connection.
    pending: Vec<u8>,
    /// Events that arrived while waiting for an answer.
    changes: std::collections::VecDeque<Vec<Reported>>,
}

impl fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("verified", &self.connection.is_verified())
            .finish_non_exhaustive()
    }
}

impl<'b> Client<'b> {
    /// Connects to `address`, waiting at most `timeout` for the connection and then for
    /// each answer, and works in `buffers` (see [`buffers`]).
    pub fn connect(
        address: SocketAddr,
        timeout: Duration,
        buffers: &'b mut OwnedBuffers,
    ) -> Result<Self, ClientError> {
        let stream = TcpStream::connect_timeout(&address, timeout)
            .map_err(|source| ClientError::Connect { address, source })?;
        // Requests are small and answered one at a time: send each at once.
        let _ = stream.set_nodelay(true);
        // A peer that stops reading must not hold a write forever.
        stream
            .set_write_timeout(Some(timeout))
            .map_err(ClientError::Io)?;
        let mut connection = Connection::new(buffers.borrow(), &address.to_string())
            .map_err(|error| ClientError::Malformed(error.to_string()))?;
        connection.set_response_timeout(timeout);
        Ok(Self {
            stream,
            connection,
            address,
            timeout,
            epoch: StdInstant::now(),
            pending: Vec::new(),
            changes: std::collections::VecDeque::new(),
        })
    }

    /// The accessory's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Whether pair-verify completed.
    pub fn is_verified(&self) -> bool {
        self.connection.is_verified()
    }

    fn now(&self) -> Instant {
        let millis = self.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// Pair-setup with `code`, as `identity`: the accessory's pairing.
    pub fn pair_setup(
        &mut self,
        code: SetupCode,
        identity: &ControllerIdentity,
    ) -> Result<AccessoryPairing, ClientError> {
        let now = self.now();
        self.connection.pair_setup(now, code, identity)?;
        match self.wait(None)? {
            Some(Owned::Paired(pairing)) => Ok(pairing),
            Some(Owned::Failed(exchange, failure)) => {
                Err(ClientError::Pairing { exchange, failure })
            }
            _ => Err(ClientError::Malformed("pair-setup ended oddly".into())),
        }
    }

    /// Pair-verify as `identity` with `accessory`: the connection is then encrypted.
    pub fn pair_verify(
        &mut self,
        identity: &ControllerIdentity,
        accessory: &AccessoryPairing,
    ) -> Result<(), ClientError> {
        let now = self.now();
        self.connection
            .pair_verify(now, identity, accessory, &mut OsRng)?;
        match self.wait(None)? {
            Some(Owned::Verified) => Ok(()),
            Some(Owned::Failed(exchange, failure)) => {
                Err(ClientError::Pairing { exchange, failure })
            }
            _ => Err(ClientError::Malformed("pair-verify ended oddly".into())),
        }
    }

    /// `POST /identify` (unpaired accessories).
    pub fn identify(&mut self) -> Result<Answer, ClientError> {
        let now = self.now();
        self.connection.identify(now)?;
        self.answer()
    }

    /// `GET /accessories`.
    pub fn accessories(&mut self) -> Result<Answer, ClientError> {
        let now = self.now();
        self.connection.get_accessories(now)?;
        self.answer()
    }

    /// `GET /characteristics` for `ids`.
    pub fn read(
        &mut self,
        ids: &[CharacteristicId],
        options: ReadOptions,
    ) -> Result<Answer, ClientError> {
        let now = self.now();
        self.connection.get_characteristics(now, ids, options)?;
        self.answer()
    }

    /// `PUT /characteristics`.
    pub fn write(&mut self, writes: &[Write<'_>]) -> Result<Answer, ClientError> {
        let now = self.now();
        self.connection.put_characteristics(now, writes)?;
        self.answer()
    }

    /// Lists the accessory's pairings.
    pub fn list_pairings(&mut self) -> Result<Answer, ClientError> {
        let now = self.now();
        self.connection.list_pairings(now)?;
        self.pairings_answer()
    }

    /// Adds a pairing.
    pub fn add_pairing(
        &mut self,
        id: &[u8],
        public_key: &[u8; 32],
        admin: bool,
    ) -> Result<(), ClientError> {
        let now = self.now();
        self.connection.add_pairing(now, id, public_key, admin)?;
        self.pairings_answer().map(drop)
    }

    /// Removes a pairing. Removing our own, the accessory may close the connection right
    /// after answering; that is fine.
    pub fn remove_pairing(&mut self, id: &[u8]) -> Result<(), ClientError> {
        let now = self.now();
        self.connection.remove_pairing(now, id)?;
        self.pairings_answer().map(drop)
    }

    /// The items of the next `EVENT/1.0`, or `None` if none came by `until`.
    pub fn next_change(&mut self, until: StdInstant) -> Result<Option<Vec<Reported>>, ClientError> {
        if let Some(body) = self.changes.pop_front() {
            return Ok(Some(body));
        }
        match self.wait(Some(until))? {
            Some(Owned::Changed(items)) => Ok(Some(items)),
            None => Ok(None),
            Some(_) => Err(ClientError::Malformed("an answer nobody asked for".into())),
        }
    }

    fn pairings_answer(&mut self) -> Result<Answer, ClientError> {
        let answer = self.answer()?.success()?;
        match answer.response().pairings() {
            Ok(_) => Ok(answer),
            Err(PairingError::Rejected(code)) => Err(ClientError::PairingsRefused(code)),
            Err(error) => Err(ClientError::Malformed(error.to_string())),
        }
    }

    fn answer(&mut self) -> Result<Answer, ClientError> {
        match self.wait(None)? {
            Some(Owned::Answer(answer)) => Ok(answer),
            _ => Err(ClientError::Malformed("no answer".into())),
        }
    }

    /// Runs the loop until the connection reports something other than an event (or,
    /// with `until`, an event or that time). Events met on the way are queued.
    fn wait(&mut self, until: Option<StdInstant>) -> Result<Option<Owned>, ClientError> {
        loop {
            while let Some(output) = self.connection.poll_output(&mut OsRng) {
                match output {
                    Output::Transmit(bytes) => {
                        self.stream.write_all(bytes).map_err(ClientError::Io)?
                    }
                    Output::Event(event) => {
                        let owned = match event {
                            Event::Paired(pairing) => Owned::Paired(pairing),
                            Event::Verified => Owned::Verified,
                            Event::PairingFailed { exchange, failure } => {
                                Owned::Failed(exchange, failure)
                            }
                            Event::Response(response) => Owned::Answer(Answer {
                                request: response.request,
                                status: response.status,
                                body: response.body.to_vec(),
                            }),
                            Event::Changed(items) => {
                                let items = items.map(Reported::from).collect();
                                if until.is_some() {
                                    Owned::Changed(items)
                                } else {
                                    self.changes.push_back(items);
                                    continue;
                                }
                            }
                            _ => continue,
                        };
                        return Ok(Some(owned));
                    }
                    Output::Close(reason) => return Err(ClientError::Closed(reason)),
                    _ => {}
                }
            }
            if until.is_some() {
                if let Some(body) = self.changes.pop_front() {
                    return Ok(Some(Owned::Changed(body)));
                }
            }
            if !self.pending.is_empty() {
                let now = self.now();
                let taken = self.connection.handle_input(now, &self.pending);
                self.pending.drain(..taken);
                if taken > 0 {
                    continue;
                }
            }
            let wall = StdInstant::now();
            let deadline = match (until, self.deadline()) {
                (Some(until), Some(core)) => until.min(core),
                (Some(until), None) => until,
                (None, Some(core)) => core,
                // Nothing awaited and nothing to wait for: an answer can never come.
                (None, None) => return Err(ClientError::Closed(CloseReason::PeerClosed)),
            };
            if wall >= deadline {
                if until.is_some_and(|until| wall >= until) {
                    return Ok(None);
                }
                let now = self.now();
                self.connection.handle_timeout(now);
                continue;
            }
            let wait = (deadline - wall).max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(ClientError::Io)?;
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.connection.connection_lost(),
                Ok(len) => {
                    let now = self.now();
                    let taken = self.connection.handle_input(now, &chunk[..len]);
                    self.pending.extend_from_slice(&chunk[taken..len]);
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.connection.connection_lost(),
            }
        }
    }

    /// The core's deadline, on the wall clock.
    fn deadline(&self) -> Option<StdInstant> {
        let at = self.connection.poll_timeout()?;
        Some(self.epoch + Duration::from_millis(at.as_millis()))
    }

    /// How long each step may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
