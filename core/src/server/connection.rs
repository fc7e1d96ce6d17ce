//! One TCP connection: its buffers, its HTTP input, and its session once verified.

use heapless::Deque;

use super::events::Subscription;
use super::{pairing_error_status, AwaitingStorage, CloseReason, Event, Job};
use crate::http::{write_head, StatusCode};
use crate::pairing::verify::PairVerify;
use crate::pairing::{PairingError, PairingId};
use crate::session::{FrameEncryptor, Role, Session, SessionKeys, MAX_FRAME_PLAINTEXT};
use crate::time::Instant;
use crate::ConnectionId;

/// The buffers a connection works in, provided by the caller.
///
/// - `input` holds received requests until they are complete: at least
///   [`MIN_INPUT_LEN`]. Requests are limited to its size less one decrypted frame
///   ([`MAX_FRAME_PLAINTEXT`]), or to the server's `max_request_len` if smaller; give it
///   `max_request_len + MAX_FRAME_PLAINTEXT` bytes to accept what the server allows.
/// - `scratch` holds the body of the request being answered: at least
///   [`MIN_SCRATCH_LEN`]; larger bodies close the connection.
///   It also holds one status byte per item of a PUT `/characteristics`, so it bounds
///   the items one write may carry.
/// - `output` holds responses until they are polled: at least
///   [`MIN_OUTPUT_LEN`], the largest response once framed. More lets pipelined requests
///   be answered in one go, and large responses be streamed in fewer polls.
/// - `subscriptions` holds the characteristics the controller asked events for; its
///   length is how many it may subscribe to. Further subscriptions get -70407. iOS
///   subscribes to most characteristics of a home, so give a bridge one entry per
///   evented characteristic.
#[derive(Debug)]
pub struct ConnectionBuffers<'b> {
    /// Received bytes (decrypted, once the session is encrypted).
    pub input: &'b mut [u8],
    /// The body of the request being served.
    pub scratch: &'b mut [u8],
    /// Bytes waiting to be sent.
    pub output: &'b mut [u8],
    /// Event subscriptions; fill with [`Subscription::EMPTY`].
    pub subscriptions: &'b mut [Subscription],
}

/// The largest response the server writes, head included, before framing.
pub const MAX_RESPONSE_LEN: usize = 2048;
/// The smallest output buffer: one largest response, framed.
pub const MIN_OUTPUT_LEN: usize = crate::session::FrameEncryptor::sealed_len(MAX_RESPONSE_LEN);
/// The smallest input buffer: a pairing request (about 1 KiB) and one decrypted frame.
pub const MIN_INPUT_LEN: usize = 2 * MAX_FRAME_PLAINTEXT;
/// The smallest scratch buffer: the largest pairing request body.
pub const MIN_SCRATCH_LEN: usize = MAX_FRAME_PLAINTEXT;

/// The default input length: the minimum, so requests of up to 1 KiB.
pub const DEFAULT_INPUT_LEN: usize = MIN_INPUT_LEN;
/// The default scratch length: the minimum, so request bodies of up to 1 KiB, which holds
/// a write of about 25 values.
pub const DEFAULT_SCRATCH_LEN: usize = MIN_SCRATCH_LEN;
/// The default output length: the minimum, one largest response.
pub const DEFAULT_OUTPUT_LEN: usize = MIN_OUTPUT_LEN;
/// The default number of subscriptions per connection: every characteristic of a
/// typical single accessory.
pub const DEFAULT_SUBSCRIPTIONS: usize = 16;

/// The bytes one connection takes at the default buffer lengths: its [`Connection`] state
/// plus its input, scratch, output and subscriptions. This is all the core needs per
/// connection without `alloc`; an adapter adds its own socket buffers.
///
/// The defaults suit one accessory on a microcontroller (11,036 bytes with Rust 1.95 on a
/// 64-bit target; HomeKitADK's default is 64 KiB). A bridge should give more: input and
/// scratch for its largest writes (iOS writes a scene's values in one request), and a
/// subscription per evented characteristic.
pub const CONNECTION_MEMORY_AT_DEFAULTS: usize = core::mem::size_of::<Connection<'static>>()
    + DEFAULT_INPUT_LEN
    + DEFAULT_SCRATCH_LEN
    + DEFAULT_OUTPUT_LEN
    + DEFAULT_SUBSCRIPTIONS * core::mem::size_of::<Subscription>();

// The budget of issue 7, checked when the crate compiles.
const _: () = assert!(CONNECTION_MEMORY_AT_DEFAULTS <= 12 * 1024);

/// A connection's buffers on the heap, for callers that have one.
#[cfg(feature = "alloc")]
pub struct OwnedBuffers {
    input: alloc::vec::Vec<u8>,
    scratch: alloc::vec::Vec<u8>,
    output: alloc::vec::Vec<u8>,
    subscriptions: alloc::vec::Vec<Subscription>,
}

#[cfg(feature = "alloc")]
impl OwnedBuffers {
    /// Zeroed buffers of these lengths, with room for `subscriptions` subscriptions.
    pub fn new(input: usize, scratch: usize, output: usize, subscriptions: usize) -> Self {
        Self {
            input: alloc::vec![0; input],
            scratch: alloc::vec![0; scratch],
            output: alloc::vec![0; output],
            subscriptions: alloc::vec![Subscription::EMPTY; subscriptions],
        }
    }

    /// Buffers that serve anything `config` allows on `database`: input for a request of
    /// `max_request_len` plus one decrypted frame, scratch with a status byte for every
    /// characteristic, and a subscription for every evented one (HomeKitADK keeps one
    /// subscription slot per characteristic). Output is
    /// [`EVENT_OUTPUT_LEN`](super::EVENT_OUTPUT_LEN), enough for an event carrying the
    /// longest value; responses are streamed through it. With
    /// [`Config::host`](super::Config::host) and a 150-accessory bridge of 600 evented
    /// characteristics, that is about 33 KiB of input and 33 KiB of subscriptions per
    /// connection.
    pub fn for_database(config: &super::Config, database: &crate::database::Database<'_>) -> Self {
        Self::new(
            MIN_INPUT_LEN.max(config.max_request_len + MAX_FRAME_PLAINTEXT),
            MIN_SCRATCH_LEN.max(database.characteristic_count()),
            super::EVENT_OUTPUT_LEN,
            database.evented_count().max(1),
        )
    }

    /// The buffers as [`Server::accept`](super::Server::accept) takes them.
    pub fn borrow(&mut self) -> ConnectionBuffers<'_> {
        ConnectionBuffers {
            input: &mut self.input,
            scratch: &mut self.scratch,
            output: &mut self.output,
            subscriptions: &mut self.subscriptions,
        }
    }
}

#[cfg(feature = "alloc")]
impl core::fmt::Debug for OwnedBuffers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnedBuffers")
            .field("input", &self.input.len())
            .field("scratch", &self.scratch.len())
            .field("output", &self.output.len())
            .field("subscriptions", &self.subscriptions.len())
            .finish()
    }
}

/// A buffer given to [`Server::accept`](super::Server::accept) is below its minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuffersTooSmall {
    /// Which buffer: `"input"`, `"scratch"` or `"output"`.
    pub buffer: &'static str,
    /// Its minimum size.
    pub minimum: usize,
}

impl core::fmt::Display for BuffersTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the {} buffer needs at least {} bytes",
            self.buffer, self.minimum
        )
    }
}

impl core::error::Error for BuffersTooSmall {}

/// One connection's state. Create one per accepted TCP connection and drive it through
/// the [`Server`](super::Server).
#[derive(Debug)]
pub struct Connection<'b> {
    pub(super) id: ConnectionId,
    pub(super) buffers: ConnectionBuffers<'b>,
    pub(super) input_len: usize,
    pub(super) output_len: usize,
    pub(super) session: Option<Session>,
    /// The session came from a transient pair-setup: encrypted but not verified.
    pub(super) transient: bool,
    pub(super) verify: PairVerify,
    pub(super) controller: Option<PairingId>,
    pub(super) closing: Option<CloseReason>,
    pub(super) closed_reported: bool,
    pub(super) events: Deque<Event, 4>,
    pub(super) awaiting: Option<AwaitingStorage>,
    pub(super) persist_requested: bool,
    /// The request at the front of the input that is being answered over several polls.
    pub(super) job: Option<Job>,
    /// How many of `buffers.subscriptions` are in use.
    pub(super) subscribed: usize,
    /// The next button press this connection has to be told about.
    pub(super) button_cursor: u64,
    /// The timed write prepared with `/prepare`: its pid and when it expires.
    pub(super) prepared: Option<(u64, Instant)>,
    /// Whether this connection holds a place in the server's connection count.
    pub(super) counted: bool,
}

impl<'b> Connection<'b> {
    /// A connection identified by `id` (unique among open ones), or an error naming a
    /// buffer below its minimum. Made through [`Server::accept`](super::Server::accept),
    /// which counts connections.
    pub(super) fn new(
        id: ConnectionId,
        buffers: ConnectionBuffers<'b>,
    ) -> Result<Self, BuffersTooSmall> {
        for (buffer, len, minimum) in [
            ("input", buffers.input.len(), MIN_INPUT_LEN),
            ("scratch", buffers.scratch.len(), MIN_SCRATCH_LEN),
            ("output", buffers.output.len(), MIN_OUTPUT_LEN),
        ] {
            if len < minimum {
                return Err(BuffersTooSmall { buffer, minimum });
            }
        }
        Ok(Self {
            id,
            buffers,
            input_len: 0,
            output_len: 0,
            session: None,
            transient: false,
            verify: PairVerify::new(),
            controller: None,
            closing: None,
            closed_reported: false,
            events: Deque::new(),
            awaiting: None,
            persist_requested: false,
            job: None,
            subscribed: 0,
            button_cursor: 0,
            prepared: None,
            counted: false,
        })
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The verified controller, once pair-verify has completed.
    pub fn controller(&self) -> Option<&PairingId> {
        self.controller.as_ref()
    }

    /// Whether the traffic is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.session.is_some()
    }

    /// Why the connection is closing, if it is.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing
    }

    /// Gives the buffers back for the next connection once this one is over: after
    /// [`Output::Close`](super::Output::Close), or after
    /// [`Server::connection_lost`](super::Server::connection_lost) and any
    /// [`Output::Persist`](super::Output::Persist) it still yields has been handled.
    /// An adapter without a heap needs this to serve connections from a fixed set of
    /// buffers. Dropping a connection that the server still counts leaves it counted.
    pub fn into_buffers(self) -> ConnectionBuffers<'b> {
        self.buffers
    }

    /// Takes as many received bytes into the input buffer as fit, decrypting them once
    /// the session is encrypted, and returns how many were taken.
    pub(super) fn receive(&mut self, bytes: &[u8]) -> Result<usize, CloseReason> {
        let capacity = self.buffers.input.len();
        let Some(session) = &mut self.session else {
            let take = bytes.len().min(capacity - self.input_len);
            self.buffers.input[self.input_len..self.input_len + take]
                .copy_from_slice(&bytes[..take]);
            self.input_len += take;
            return Ok(take);
        };
        let mut taken = 0;
        // Decrypt only while a whole frame's plaintext is sure to fit.
        while taken < bytes.len() && capacity - self.input_len >= MAX_FRAME_PLAINTEXT {
            let opened = session
                .inbound
                .open(&bytes[taken..])
                .map_err(CloseReason::Frame)?;
            if let Some(plaintext) = opened.plaintext {
                let end = self.input_len + plaintext.len();
                self.buffers.input[self.input_len..end].copy_from_slice(plaintext);
                self.input_len = end;
            }
            taken += opened.consumed;
        }
        Ok(taken)
    }

    /// Whether answering must wait: for storage, for output room, or for the
    /// application to take events.
    pub(super) fn is_blocked(&self) -> bool {
        self.awaiting.is_some()
            || self.persist_requested
            || self.output_room() < MIN_OUTPUT_LEN
            || self.events.is_full()
    }

    /// Whether no request is in progress: none is being answered or waits for storage,
    /// and no byte of the next one has arrived, not even part of a frame. Events go out
    /// only then, as in HomeKitADK (`HAPIPAccessoryServer.c` sends them only to a
    /// session that is reading with an empty inbound buffer) and HAP-NodeJS: a
    /// controller never finds an EVENT where it expects its response.
    pub(super) fn is_idle(&self) -> bool {
        self.input_len == 0
            && self.job.is_none()
            && self.awaiting.is_none()
            && !self
                .session
                .as_ref()
                .is_some_and(|session| session.inbound.is_mid_frame())
    }

    /// Free space in the output buffer.
    pub(super) fn output_room(&self) -> usize {
        self.buffers.output.len() - self.output_len
    }

    /// The subscriptions in use.
    pub(super) fn subscriptions(&self) -> &[Subscription] {
        &self.buffers.subscriptions[..self.subscribed]
    }

    /// The connection's buffers and queues, borrowed apart.
    pub(super) fn split(&mut self) -> Parts<'_> {
        Parts {
            input: &self.buffers.input[..self.input_len],
            scratch: self.buffers.scratch,
            subscriptions: self.buffers.subscriptions,
            subscribed: &mut self.subscribed,
            events: &mut self.events,
            out: Outbox {
                buf: self.buffers.output,
                len: &mut self.output_len,
                encryptor: self.session.as_mut().map(|s| &mut s.outbound),
            },
        }
    }

    /// Drops the first `len` bytes of input, a request that has been taken.
    pub(super) fn consume_input(&mut self, len: usize) {
        self.buffers.input.copy_within(len..self.input_len, 0);
        self.input_len -= len;
    }

    /// Switches to an encrypted session after the response just queued. Bytes that
    /// arrived after the request that opened it are encrypted already.
    pub(super) fn start_session(&mut self, keys: SessionKeys, transient: bool) {
        let mut session = Session::new(keys, Role::Accessory);
        let (mut read, mut write) = (0, 0);
        while read < self.input_len {
            match session
                .inbound
                .open(&self.buffers.input[read..self.input_len])
            {
                Ok(opened) => {
                    read += opened.consumed;
                    if let Some(plaintext) = opened.plaintext {
                        // A frame is 18 bytes longer than its plaintext, so writing
                        // never overtakes reading.
                        self.buffers.input[write..write + plaintext.len()]
                            .copy_from_slice(plaintext);
                        write += plaintext.len();
                    }
                }
                Err(error) => return self.close(CloseReason::Frame(error)),
            }
        }
        self.input_len = write;
        self.session = Some(session);
        self.transient = transient;
    }

    /// Queues an HTTP response, encrypted if the session is.
    pub(super) fn respond(&mut self, status: StatusCode, content_type: Option<&str>, body: &[u8]) {
        let mut head = [0u8; 128];
        let Ok(head_len) = write_head(&mut head, "HTTP/1.1", status, content_type, body.len())
        else {
            return self.close(CloseReason::Resources);
        };
        if self.queue(&[&head[..head_len], body]).is_err() {
            self.close(CloseReason::Resources);
        }
    }

    /// Appends `parts` to the output, sealing them when the session is encrypted.
    fn queue(&mut self, parts: &[&[u8]]) -> Result<(), ()> {
        self.split().out.queue(parts)
    }

    pub(super) fn respond_to_pairing_error(&mut self, error: PairingError) {
        self.respond(pairing_error_status(error), None, b"");
    }

    pub(super) fn await_storage(&mut self, awaiting: AwaitingStorage) {
        self.awaiting = Some(awaiting);
        self.persist_requested = true;
    }

    pub(super) fn push_event(&mut self, event: Event) {
        // Four slots cover the most one request can raise; drop rather than fail if an
        // application never drains them.
        let _ = self.events.push_back(event);
    }

    pub(super) fn close(&mut self, reason: CloseReason) {
        if self.closing.is_none() {
            self.closing = Some(reason);
        }
    }
}

/// A connection's parts, borrowed apart so that a request in the input can be answered
/// into the output.
#[derive(Debug)]
pub(super) struct Parts<'a> {
    /// The received bytes.
    pub input: &'a [u8],
    /// The scratch buffer.
    pub scratch: &'a mut [u8],
    /// All subscription entries; the first `subscribed` are in use.
    pub subscriptions: &'a mut [Subscription],
    pub subscribed: &'a mut usize,
    /// Events for the application.
    pub events: &'a mut Deque<Event, 4>,
    /// Where responses go.
    pub out: Outbox<'a>,
}

/// Where responses go: the output buffer, sealed into frames once the session is
/// encrypted.
#[derive(Debug)]
pub(super) struct Outbox<'a> {
    buf: &'a mut [u8],
    len: &'a mut usize,
    encryptor: Option<&'a mut FrameEncryptor>,
}

impl Outbox<'_> {
    /// Free space in the output buffer.
    pub(super) fn room(&self) -> usize {
        self.buf.len() - *self.len
    }

    /// Appends `parts` as one message, sealing them into frames of up to 1024 bytes when
    /// the session is encrypted. Nothing is appended if it does not fit.
    pub(super) fn queue(&mut self, parts: &[&[u8]]) -> Result<(), ()> {
        let output = &mut self.buf[*self.len..];
        let Some(encryptor) = &mut self.encryptor else {
            let total: usize = parts.iter().map(|p| p.len()).sum();
            let out = output.get_mut(..total).ok_or(())?;
            let mut at = 0;
            for part in parts {
                out[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            *self.len += total;
            return Ok(());
        };
        // Check first: a frame sealed but not kept would desynchronise the nonces.
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if FrameEncryptor::sealed_len(total) > output.len() {
            return Err(());
        }
        // Gather the parts into full frames so a response is not split at part ends.
        let mut chunk = [0u8; MAX_FRAME_PLAINTEXT];
        let mut filled = 0;
        let mut written = 0;
        let mut flush = |chunk: &[u8], written: &mut usize| -> Result<(), ()> {
            let sealed = encryptor
                .seal(chunk, &mut output[*written..])
                .map_err(|_| ())?;
            if sealed.consumed != chunk.len() {
                return Err(());
            }
            *written += sealed.written;
            Ok(())
        };
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                let take = rest.len().min(MAX_FRAME_PLAINTEXT - filled);
                chunk[filled..filled + take].copy_from_slice(&rest[..take]);
                filled += take;
                rest = &rest[take..];
                if filled == MAX_FRAME_PLAINTEXT {
                    flush(&chunk, &mut written)?;
                    filled = 0;
                }
            }
        }
        if filled > 0 {
            flush(&chunk[..filled], &mut written)?;
        }
        *self.len += written;
        Ok(())
    }
}
