//! Event notifications: per-connection subscriptions, the value store that feeds them,
//! coalescing, and button presses.
//!
//! A change is noticed by comparing each subscribed slot's version with the version the
//! connection last told. The first change goes out at once; later ones within the
//! server's event window wait for the window to close and go out as the latest value.
//! Button presses (ProgrammableSwitchEvent, ButtonEvent) are different: every press
//! counts, so each is logged with a sequence number and told to every subscriber, never
//! coalesced. A connection too slow to take its presses before the log wraps is closed
//! rather than told a wrong story.
//!
//! An EVENT carries a Content-Length, so each is built whole: changes go out together in
//! a buffer of [`MAX_RESPONSE_LEN`] on the stack, as many as fit. A value too long for it
//! (only a TLV8 or data value with `alloc`, over about 1.3 KiB) goes out alone, in an
//! event built on the heap, as long as the connection's output buffer can hold it:
//! [`EVENT_OUTPUT_LEN`] bytes hold any. With a smaller output buffer, that change is
//! not told to that connection (its controller sees the value when it next reads it);
//! the connection stays open and its other events go out as usual.

use heapless::Deque;

use super::render::{self, HapStatus};
use super::{CloseReason, Connection, Server, MAX_RESPONSE_LEN, MIN_OUTPUT_LEN};
use crate::database::bytes::ENCODED_BYTES_CAPACITY;
use crate::database::{CharacteristicRef, Database, OwnedValue};
use crate::http::{content_type, write_head, StatusCode};
use crate::json::{Full, JsonWriter};
use crate::session::FrameEncryptor;
use crate::time::Instant;
use crate::ConnectionId;

/// How many button presses are kept for connections that have not been told yet.
pub const BUTTON_LOG_LEN: usize = 16;

/// The room an EVENT's head may take.
const EVENT_HEAD_LEN: usize = 128;
/// The room for the body of events built on the stack.
const EVENT_BODY_LEN: usize = MAX_RESPONSE_LEN - EVENT_HEAD_LEN;
/// The longest EVENT body: one TLV8 or data value of
/// [`BYTES_CAPACITY`](crate::database::BYTES_CAPACITY) bytes, with the longest aid and
/// iid.
const MAX_EVENT_BODY_LEN: usize =
    r#"{"characteristics":[{"aid":,"iid":,"value":""}]}"#.len() + 2 * 20 + ENCODED_BYTES_CAPACITY;

/// The output buffer that can carry an EVENT for any value, framed: 5,788 bytes with
/// `alloc` (a 4 KiB TLV8 value is 5,464 bytes of base64), [`MIN_OUTPUT_LEN`] without,
/// where every value fits the largest response. The host adapters give every connection
/// this much output, 3.7 KiB more than the minimum.
///
/// Events for several changes share one message built on the stack; a value too long to
/// share (over about 1.3 KiB) goes out alone, built on the heap. A smaller output buffer
/// (down to [`MIN_OUTPUT_LEN`]) carries events for TLV8 and data values of up to about
/// 1.3 KiB; a longer value's change is then not told to that connection, whose other
/// events still go out and which stays open. Its controller sees the value when it next
/// reads it.
pub const EVENT_OUTPUT_LEN: usize = {
    let largest = FrameEncryptor::sealed_len(EVENT_HEAD_LEN + MAX_EVENT_BODY_LEN);
    if largest > MIN_OUTPUT_LEN {
        largest
    } else {
        MIN_OUTPUT_LEN
    }
};

// Without a heap there is nowhere to build a longer event: every value must fit.
#[cfg(not(feature = "alloc"))]
const _: () = assert!(MAX_EVENT_BODY_LEN <= EVENT_BODY_LEN);

/// One connection's subscription to a characteristic's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub(super) at: CharacteristicRef,
    pub(super) iid: u64,
    /// The slot version last told (or current when subscribing).
    pub(super) seen: u32,
    /// When an event for it was last sent, for coalescing.
    pub(super) last_sent: Option<Instant>,
}

impl Subscription {
    /// An unused entry, to fill [`ConnectionBuffers::subscriptions`](super::ConnectionBuffers)
    /// with.
    pub const EMPTY: Subscription = Subscription {
        at: CharacteristicRef {
            aid: 0,
            entry: 0,
            slot: 0,
        },
        iid: 0,
        seen: 0,
        last_sent: None,
    };
}

/// A press of a button-type characteristic.
#[derive(Clone, Debug)]
pub(super) struct ButtonPress {
    pub seq: u64,
    pub at: CharacteristicRef,
    pub iid: u64,
    pub value: OwnedValue,
    pub writer: Option<ConnectionId>,
}

/// The recent button presses, oldest first.
#[derive(Debug, Default)]
pub(super) struct ButtonLog {
    presses: Deque<ButtonPress, BUTTON_LOG_LEN>,
    next_seq: u64,
}

impl ButtonLog {
    pub(super) fn record(
        &mut self,
        at: CharacteristicRef,
        iid: u64,
        value: OwnedValue,
        writer: Option<ConnectionId>,
    ) {
        if self.presses.is_full() {
            self.presses.pop_front();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // Room was made above.
        let _ = self.presses.push_back(ButtonPress {
            seq,
            at,
            iid,
            value,
            writer,
        });
    }

    /// The sequence number the next press will get: where a new connection starts.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether presses from `cursor` on are all still logged.
    pub(super) fn covers(&self, cursor: u64) -> bool {
        self.presses.front().is_none_or(|first| first.seq <= cursor)
    }

    /// Presses from `cursor` on.
    pub(super) fn since(&self, cursor: u64) -> impl Iterator<Item = &ButtonPress> {
        self.presses.iter().filter(move |p| p.seq >= cursor)
    }
}

/// Stores a checked value, logging it first if the characteristic is a button, and
/// returns whether it changed.
pub(super) fn store(
    db: &mut Database<'_>,
    buttons: &mut ButtonLog,
    at: CharacteristicRef,
    iid: u64,
    value: OwnedValue,
    writer: Option<ConnectionId>,
) -> bool {
    if db.definition(at).is_button() {
        buttons.record(at, iid, value.clone(), writer);
    }
    db.store(at, value, writer)
}

/// Whether `conn` is subscribed to the characteristic in `slot`.
pub(super) fn subscribed(subscriptions: &[Subscription], slot: usize) -> bool {
    subscriptions.iter().any(|s| s.at.slot == slot)
}

/// Subscribes or unsubscribes; subscribing starts from the current version, so only
/// later changes are told.
pub(super) fn subscribe(
    subscriptions: &mut [Subscription],
    subscribed: &mut usize,
    at: CharacteristicRef,
    iid: u64,
    on: bool,
    version: u32,
) -> HapStatus {
    let existing = subscriptions[..*subscribed]
        .iter()
        .position(|s| s.at.slot == at.slot);
    match (existing, on) {
        (Some(_), true) => HapStatus::Success,
        (Some(index), false) => {
            subscriptions.copy_within(index + 1..*subscribed, index);
            *subscribed -= 1;
            HapStatus::Success
        }
        (None, false) => HapStatus::Success,
        (None, true) => {
            let Some(entry) = subscriptions.get_mut(*subscribed) else {
                return HapStatus::OutOfResources;
            };
            *entry = Subscription {
                at,
                iid,
                seen: version,
                last_sent: None,
            };
            *subscribed += 1;
            HapStatus::Success
        }
    }
}

impl Server<'_> {
    /// Writes an EVENT message for `conn` with what changed since it was last told, if
    /// anything is due and the connection is idle.
    pub(super) fn write_events(&self, conn: &mut Connection<'_>, now: Instant) {
        let verified = conn.controller.is_some();
        if !verified
            || !conn.is_idle()
            || conn.closing.is_some()
            || conn.output_room() < MIN_OUTPUT_LEN
        {
            return;
        }
        if !self.buttons.covers(conn.button_cursor) {
            let db = &self.database;
            let hears_buttons = conn
                .subscriptions()
                .iter()
                .any(|sub| db.definition(sub.at).is_button());
            if hears_buttons {
                // Presses it was never told are gone; better to drop it than to lie.
                return conn.close(CloseReason::Resources);
            }
            conn.button_cursor = self.buttons.next_seq();
        }
        let db = &self.database;
        let window = self.config.event_window;
        let id = conn.id;
        let (room, capacity) = (conn.output_room(), conn.buffers.output.len());
        let mut body = [0u8; EVENT_BODY_LEN];
        let mut w = JsonWriter::new(&mut body);
        let mut items = 0;
        let mut item = |w: &mut JsonWriter<'_>, aid: u64, iid: u64, value: &OwnedValue| {
            let mark = w.len();
            let written = event_item(w, items == 0, aid, iid, value);
            // Leave room to close the document.
            if written.is_err() || w.len() + 2 > EVENT_BODY_LEN {
                w.truncate(mark);
                return false;
            }
            items += 1;
            true
        };
        // An event for one value too long for `body`, built on the heap.
        #[cfg(feature = "alloc")]
        let mut alone: Option<alloc::vec::Vec<u8>> = None;
        let mut cursor = conn.button_cursor;
        for press in self.buttons.since(conn.button_cursor) {
            let wanted =
                press.writer != Some(id) && subscribed(conn.subscriptions(), press.at.slot);
            if wanted && !item(&mut w, press.at.aid, press.iid, &press.value) {
                break;
            }
            cursor = press.seq + 1;
        }
        conn.button_cursor = cursor;
        let count = conn.subscribed;
        for sub in &mut conn.buffers.subscriptions[..count] {
            let slot = db.slot(sub.at.slot);
            if slot.version == sub.seen {
                continue;
            }
            if db.definition(sub.at).is_button() || slot.writer == Some(id) {
                // Presses go through the log; and nobody hears the echo of their own write.
                sub.seen = slot.version;
                continue;
            }
            if sub.last_sent.is_some_and(|sent| now < sent + window) {
                continue;
            }
            if item(&mut w, sub.at.aid, sub.iid, &slot.value) {
                sub.seen = slot.version;
                sub.last_sent = Some(now);
                continue;
            }
            if !w.is_empty() {
                // The next message, then.
                break;
            }
            match alone_event(sub.at.aid, sub.iid, &slot.value, room, capacity) {
                #[cfg(feature = "alloc")]
                Alone::Waits => break,
                Alone::Untold => sub.seen = slot.version,
                #[cfg(feature = "alloc")]
                Alone::Ready(bytes) => {
                    sub.seen = slot.version;
                    sub.last_sent = Some(now);
                    alone = Some(bytes);
                    break;
                }
            }
        }
        #[cfg(feature = "alloc")]
        if let Some(alone) = alone {
            return queue_event(conn, &alone);
        }
        if items == 0 {
            return;
        }
        if w.raw("]}").is_err() {
            return conn.close(CloseReason::Resources);
        }
        queue_event(conn, w.written());
    }

    /// The earliest time a coalesced event of `conn` falls due.
    /// None while the connection is not idle: events wait for the request in progress,
    /// and the poll that ends it writes them, so there is no timeout to wait for.
    pub(super) fn event_deadline(&self, conn: &Connection<'_>) -> Option<Instant> {
        if !conn.is_idle() {
            return None;
        }
        let db = &self.database;
        conn.subscriptions()
            .iter()
            .filter(|sub| db.slot(sub.at.slot).version != sub.seen)
            .filter_map(|sub| sub.last_sent)
            .map(|sent| sent + self.config.event_window)
            .min()
    }
}

/// Writes one item of an EVENT body, opening the body first if it is the first.
fn event_item(
    w: &mut JsonWriter<'_>,
    first: bool,
    aid: u64,
    iid: u64,
    value: &OwnedValue,
) -> Result<(), Full> {
    w.raw(if first { "{\"characteristics\":[" } else { "," })?;
    w.raw("{\"aid\":")?;
    w.uint(aid)?;
    w.raw(",\"iid\":")?;
    w.uint(iid)?;
    w.raw(",\"value\":")?;
    render::event_value(w, value)?;
    w.raw("}")
}

/// What becomes of a change too long to share an event.
enum Alone {
    /// Its event, built.
    #[cfg(feature = "alloc")]
    Ready(alloc::vec::Vec<u8>),
    /// The output has too little room now, but will have enough.
    #[cfg(feature = "alloc")]
    Waits,
    /// No event for it fits the output buffer (or, without a heap, `body`).
    Untold,
}

/// Builds the EVENT body for one change too long for the stack buffer, if its message
/// fits `room`, the free output, and waits if it only fits the whole output buffer,
/// `capacity` bytes.
#[cfg_attr(not(feature = "alloc"), allow(unused_variables))]
fn alone_event(aid: u64, iid: u64, value: &OwnedValue, room: usize, capacity: usize) -> Alone {
    #[cfg(feature = "alloc")]
    {
        let write = |w: &mut JsonWriter<'_>| {
            event_item(w, true, aid, iid, value)?;
            w.raw("]}")
        };
        let mut measure = JsonWriter::window(&mut [], 0);
        let len = match (write(&mut measure), measure.extent()) {
            (Ok(()), Some(extent)) => extent.len,
            _ => return Alone::Untold,
        };
        let sealed = FrameEncryptor::sealed_len(EVENT_HEAD_LEN + len);
        if sealed > capacity {
            return Alone::Untold;
        }
        if sealed > room {
            return Alone::Waits;
        }
        let mut bytes = alloc::vec![0u8; len];
        let mut w = JsonWriter::new(&mut bytes);
        if write(&mut w).is_err() {
            return Alone::Untold;
        }
        Alone::Ready(bytes)
    }
    #[cfg(not(feature = "alloc"))]
    Alone::Untold
}

/// Queues an EVENT message with `body`, closing the connection if it cannot.
fn queue_event(conn: &mut Connection<'_>, body: &[u8]) {
    let mut head = [0u8; EVENT_HEAD_LEN];
    let Ok(head_len) = write_head(
        &mut head,
        "EVENT/1.0",
        StatusCode::Ok,
        Some(content_type::HAP_JSON),
        body.len(),
    ) else {
        return conn.close(CloseReason::Resources);
    };
    if conn.split().out.queue(&[&head[..head_len], body]).is_err() {
        conn.close(CloseReason::Resources);
    }
}
