//! Event notifications: per-connection subscriptions, coalescing, and button presses.
//!
//! A change is noticed by comparing each subscribed slot's version with the version the
//! connection last told. The first change goes out at once; later ones within the
//! server's event window wait for the window to close and go out as the latest value.
//! Button presses (ProgrammableSwitchEvent, ButtonEvent) are different: every press
//! counts, so each is logged with a sequence number and told to every subscriber, never
//! coalesced. A connection too slow to take its presses before the log wraps is closed
//! rather than told a wrong story.

use heapless::Deque;

use crate::database::{CharacteristicRef, OwnedValue};
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
