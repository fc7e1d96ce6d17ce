//! Writing: nested TLV8 in one pass, fragmented in place.

use super::{CodecError, DELIMITER};
use crate::tlv::MAX_FRAGMENT_LEN;

/// Writes nested TLV8 into a caller buffer, in one pass.
///
/// A nested value is written after a placeholder header; when it ends and turns out
/// longer than 255 bytes, it is spread into fragments in place. A write that does not
/// fit goes on counting, so that [`finish`](Self::finish) can say how many bytes were
/// needed.
pub(super) struct Writer<'b> {
    out: &'b mut [u8],
    len: usize,
    fits: bool,
}

impl<'b> Writer<'b> {
    pub(super) fn new(out: &'b mut [u8]) -> Self {
        Writer {
            out,
            len: 0,
            fits: true,
        }
    }

    pub(super) fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.out.get_mut(self.len..end) {
            Some(space) if self.fits => space.copy_from_slice(bytes),
            _ => self.fits = false,
        }
        self.len = end;
    }

    /// Starts an item whose value follows; returns the mark [`end`](Self::end) takes.
    pub(super) fn begin(&mut self, ty: u8) -> usize {
        let mark = self.len;
        self.put(&[ty, 0]);
        mark
    }

    /// Ends the item begun at `mark`: fills in its length, or fragments it.
    pub(super) fn end(&mut self, mark: usize) {
        let value_len = self.len - mark - 2;
        let fragments = value_len.div_ceil(MAX_FRAGMENT_LEN).max(1);
        let new_len = self.len + 2 * (fragments - 1);
        if !self.fits || new_len > self.out.len() {
            self.fits = false;
            self.len = new_len;
            return;
        }
        if fragments == 1 {
            // At most 255 bytes, so the cast is exact.
            self.out[mark + 1] = value_len as u8;
        } else {
            // Move the value to where it would start after all the headers, then walk
            // it back fragment by fragment: each fragment and its header land before
            // the part of the value not yet moved.
            let ty = self.out[mark];
            let moved = mark + 2 * fragments;
            self.out.copy_within(mark + 2..self.len, moved);
            for index in 0..fragments {
                let from = moved + index * MAX_FRAGMENT_LEN;
                let len = (value_len - index * MAX_FRAGMENT_LEN).min(MAX_FRAGMENT_LEN);
                let to = mark + index * (MAX_FRAGMENT_LEN + 2);
                self.out[to] = ty;
                // At most 255 bytes, so the cast is exact.
                self.out[to + 1] = len as u8;
                self.out.copy_within(from..from + len, to + 2);
            }
        }
        self.len = new_len;
    }

    pub(super) fn item(&mut self, ty: u8, value: &[u8]) {
        let mark = self.begin(ty);
        self.put(value);
        self.end(mark);
    }

    /// A varuint as HAP-NodeJS writes it: 1, 2, 4 or 8 bytes (`writeVariableUIntLE`).
    pub(super) fn varuint(&mut self, ty: u8, value: u64) {
        let width = match value {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFFFF_FFFF => 4,
            _ => 8,
        };
        self.item(ty, &value.to_le_bytes()[..width]);
    }

    pub(super) fn delimiter(&mut self) {
        self.put(&[DELIMITER, 0]);
    }

    pub(super) fn finish(self) -> Result<usize, CodecError> {
        if self.fits {
            Ok(self.len)
        } else {
            Err(CodecError::BufferTooSmall { required: self.len })
        }
    }
}
