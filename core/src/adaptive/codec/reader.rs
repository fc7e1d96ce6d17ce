//! Reading: a walk over one level of nested TLV8 that joins fragments in place, and the
//! readers of the values it finds.

use core::ops::Range;

use super::{CodecError, DELIMITER};
use crate::tlv::{TlvError, MAX_FRAGMENT_LEN};

/// One logical item of a [`Level`]: its type, and where its value lies in the buffer,
/// its fragments joined.
#[derive(Clone, Debug)]
pub(super) struct Found {
    pub(super) ty: u8,
    pub(super) value: Range<usize>,
}

/// A walk over the items of one level of nesting, `buf[start..end]`: the whole input, or
/// the value of an item found on the level above.
///
/// Each step joins the fragments of the item it reads *in place*, moving the value's
/// bytes over the fragment headers. That only rewrites bytes inside the item's own
/// encoding, so the values found before stay intact and the walk of the levels above
/// goes on undisturbed: one copy of the input serves every level. (`crate::tlv` borrows
/// its input, so it would need a buffer per level to join.)
#[derive(Clone, Debug)]
pub(super) struct Level {
    start: usize,
    pos: usize,
    end: usize,
}

impl Level {
    /// The level made of the value at `range`.
    pub(super) fn of(range: &Range<usize>) -> Self {
        Level {
            start: range.start,
            pos: range.start,
            end: range.end,
        }
    }

    /// The type and length of the raw item at `at`, checked to lie within the level.
    fn header(&self, buf: &[u8], at: usize) -> Result<(u8, usize), CodecError> {
        let truncated = CodecError::Malformed(TlvError::Truncated {
            offset: at - self.start,
        });
        match buf.get(at..self.end) {
            Some([ty, len, rest @ ..]) if rest.len() >= usize::from(*len) => {
                Ok((*ty, usize::from(*len)))
            }
            _ => Err(truncated),
        }
    }

    /// The next item, its fragments joined in place, or `None` at the end of the level.
    pub(super) fn next(&mut self, buf: &mut [u8]) -> Result<Option<Found>, CodecError> {
        // Keep every index below within `buf`, whatever the caller passed.
        self.end = self.end.min(buf.len());
        if self.pos >= self.end {
            return Ok(None);
        }
        let (ty, first_len) = self.header(buf, self.pos)?;
        let value_start = self.pos + 2;
        let mut value_end = value_start + first_len;
        let mut next = value_end;
        // Delimiters are empty and stand alone; only real values are joined.
        if ty != DELIMITER {
            let mut last_len = first_len;
            while last_len == MAX_FRAGMENT_LEN && next < self.end && buf.get(next) == Some(&ty) {
                let (_, len) = self.header(buf, next)?;
                buf.copy_within(next + 2..next + 2 + len, value_end);
                value_end += len;
                next += 2 + len;
                last_len = len;
            }
            if next < self.end && buf.get(next) == Some(&ty) {
                return Err(CodecError::Malformed(TlvError::ShortFragment {
                    offset: next - self.start,
                }));
            }
        }
        self.pos = next;
        Ok(Some(Found {
            ty,
            value: value_start..value_end,
        }))
    }
}

/// The bytes of `range`, which the walk keeps within `buf`.
pub(super) fn bytes<'a>(buf: &'a [u8], range: &Range<usize>) -> &'a [u8] {
    buf.get(range.clone()).unwrap_or(&[])
}

/// Records the value of an item that may appear once.
pub(super) fn once(
    slot: &mut Option<Range<usize>>,
    found: Found,
    what: &'static str,
) -> Result<(), CodecError> {
    match slot.replace(found.value) {
        Some(_) => Err(CodecError::Repeated(what)),
        None => Ok(()),
    }
}

/// The value of a required item.
pub(super) fn required(
    slot: Option<Range<usize>>,
    what: &'static str,
) -> Result<Range<usize>, CodecError> {
    slot.ok_or(CodecError::Missing(what))
}

/// A varuint: 1, 2, 4 or 8 bytes, little-endian (HAP-NodeJS `readVariableUIntLE`).
pub(super) fn read_varuint(value: &[u8], what: &'static str) -> Result<u64, CodecError> {
    match value.len() {
        1 | 2 | 4 | 8 => Ok(value
            .iter()
            .rev()
            .fold(0, |acc, byte| (acc << 8) | u64::from(*byte))),
        _ => Err(CodecError::Invalid(what)),
    }
}

/// A varuint for a 32-bit field.
pub(super) fn read_varuint32(value: &[u8], what: &'static str) -> Result<u32, CodecError> {
    u32::try_from(read_varuint(value, what)?).map_err(|_| CodecError::Invalid(what))
}

/// A finite `f32`, little-endian.
pub(super) fn read_f32(value: &[u8], what: &'static str) -> Result<f32, CodecError> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| CodecError::Invalid(what))?;
    let number = f32::from_le_bytes(bytes);
    if number.is_finite() {
        Ok(number)
    } else {
        Err(CodecError::Invalid(what))
    }
}

/// A fixed-length value.
pub(super) fn read_array<const N: usize>(
    value: &[u8],
    what: &'static str,
) -> Result<[u8; N], CodecError> {
    value.try_into().map_err(|_| CodecError::Invalid(what))
}
