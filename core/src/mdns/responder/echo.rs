//! Our own datagrams, remembered so that they are not taken for another host's when they
//! come back.
//!
//! Multicast loopback hands every datagram we send back to us (RFC 6762 §15.1: several
//! responders on one host share the port and must hear each other, so loopback stays
//! on). After a change (a new TXT record when the accessory is paired, a new address)
//! our earlier announcement, still on its way back, carries records that differ from
//! ours now and would look like another host claiming our names. A datagram identical
//! to one we sent within [`ECHO_WINDOW`] is ours, and is dropped.

use core::time::Duration;

use crate::time::Instant;

/// How many datagrams sent are remembered.
pub(super) const ECHO_MEMORY: usize = 16;
/// How long a datagram sent is remembered: loopback brings it back within milliseconds.
pub(super) const ECHO_WINDOW: Duration = Duration::from_secs(2);

/// The fingerprints of the datagrams sent lately.
#[derive(Debug, Default)]
pub(super) struct Echoes {
    sent: heapless::Deque<Fingerprint, ECHO_MEMORY>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    hash: u64,
    len: usize,
    at: Instant,
}

impl Echoes {
    /// Remembers a datagram sent at `now`, forgetting the oldest when full.
    pub(super) fn remember(&mut self, datagram: &[u8], now: Instant) {
        if self.sent.is_full() {
            self.sent.pop_front();
        }
        let _ = self.sent.push_back(Fingerprint {
            hash: fnv1a(datagram),
            len: datagram.len(),
            at: now,
        });
    }

    /// Whether `datagram` is one sent within [`ECHO_WINDOW`] before `now`. It stays
    /// remembered: the copies of both families, or of several interfaces, come back.
    pub(super) fn is_echo(&self, datagram: &[u8], now: Instant) -> bool {
        let hash = fnv1a(datagram);
        self.sent.iter().any(|sent| {
            sent.len == datagram.len() && sent.hash == hash && now < sent.at + ECHO_WINDOW
        })
    }
}

/// 64-bit FNV-1a: enough to tell our few recent datagrams from others (a collision
/// drops one datagram, which mDNS repeats), and needs neither a key nor `std`.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_datagram_is_recognised_within_the_window_only() {
        let at = Instant::from_millis;
        let mut echoes = Echoes::default();
        echoes.remember(b"ours", at(100));
        assert!(echoes.is_echo(b"ours", at(101)));
        assert!(echoes.is_echo(b"ours", at(102)), "both copies come back");
        assert!(!echoes.is_echo(b"theirs", at(101)));
        assert!(!echoes.is_echo(b"ours", at(2_100)), "forgotten after 2 s");
    }

    #[test]
    fn the_memory_is_bounded() {
        let at = Instant::from_millis(0);
        let mut echoes = Echoes::default();
        for n in 0..ECHO_MEMORY + 3 {
            echoes.remember(&n.to_be_bytes(), at);
        }
        assert!(!echoes.is_echo(&0usize.to_be_bytes(), at));
        assert!(echoes.is_echo(&(ECHO_MEMORY + 2).to_be_bytes(), at));
    }
}
