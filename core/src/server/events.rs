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

use heapless::Deque;

use super::render::{self, HapStatus};
use super::{CloseReason, Connection, Server, MAX_RESPONSE_LEN, MIN_OUTPUT_LEN};
use crate::database::{CharacteristicRef, Database, OwnedValue};
use crate::http::{content_type, write_head, StatusCode};
use crate::json::JsonWriter;
use crate::time::Instant;
use crate::ConnectionId;

/// How many button presses are kept for connections that have not been told yet.
pub const BUTTON_LOG_LEN: usize = 16;

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
        self.presses
            .front()
            .map_or(true, |first| first.seq <= cursor)
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
        let mut body = [0u8; MAX_RESPONSE_LEN - 128];
        let mut w = JsonWriter::new(&mut body);
        let mut items = 0;
        let mut item = |w: &mut JsonWriter<'_>, aid: u64, iid: u64, value: &OwnedValue| {
            let mark = w.len();
            let written = (|| {
                w.raw(if items == 0 {
                    "{\"characteristics\":["
                } else {
                    ","
                })?;
                w.raw("{\"aid\":")?;
                w.uint(aid)?;
                w.raw(",\"iid\":")?;
                w.uint(iid)?;
                w.raw(",\"value\":")?;
                render::event_value(w, value)?;
                w.raw("}")
            })();
            // Leave room to close the document.
            if written.is_err() || w.len() + 2 > MAX_RESPONSE_LEN - 128 {
                w.truncate(mark);
                return false;
            }
            items += 1;
            true
        };
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
            if !item(&mut w, sub.at.aid, sub.iid, &slot.value) {
                break;
            }
            sub.seen = slot.version;
            sub.last_sent = Some(now);
        }
        if items == 0 {
            return;
        }
        if w.raw("]}").is_err() {
            return conn.close(CloseReason::Resources);
        }
        let mut head = [0u8; 128];
        let Ok(head_len) = write_head(
            &mut head,
            "EVENT/1.0",
            StatusCode::Ok,
            Some(content_type::HAP_JSON),
            w.len(),
        ) else {
            return conn.close(CloseReason::Resources);
        };
        if conn
            .split()
            .out
            .queue(&[&head[..head_len], w.written()])
            .is_err()
        {
            conn.close(CloseReason::Resources);
        }
    }

    /// The earliest time a coalesced event of `conn` falls due.
    pub(super) fn event_deadline(&self, conn: &Connection<'_>) -> Option<Instant> {
        let db = &self.database;
        conn.subscriptions()
            .iter()
            .filter(|sub| db.slot(sub.at.slot).version != sub.seen)
            .filter_map(|sub| sub.last_sent)
            .map(|sent| sent + self.config.event_window)
            .min()
    }
}
