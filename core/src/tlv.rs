//! TLV8, the type-length-value encoding of HAP's pairing messages.
//!
//! Each item is a type byte, a length byte and up to 255 bytes of value. A longer value is
//! split into consecutive items of the same type, all but the last exactly 255 bytes long.
//! A value whose length is a multiple of 255 ends with a full fragment; a trailing empty
//! fragment is accepted on input but never written.
//!
//! [`Tlv::parse`] checks a whole message once; after that, reading it cannot fail, and
//! values are borrowed from the input. A fragmented value can be walked fragment by
//! fragment, or reassembled into a caller buffer with [`Item::copy_to`].
//! [`TlvWriter`] writes into a caller buffer and fragments long values itself.
//!
//! Nothing in this module panics on any input.

/// The type of the empty item that separates entries of a list.
pub const SEPARATOR: u8 = 0xFF;

/// The longest value a single TLV item carries.
pub const MAX_FRAGMENT_LEN: usize = 255;

/// A malformed TLV8 message, or a buffer too small for the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlvError {
    /// The item starting at `offset` runs past the end of the input.
    Truncated {
        /// Byte offset of the item's type byte.
        offset: usize,
    },
    /// The item at `offset` continues a value whose previous fragment was shorter than
    /// 255 bytes, which the fragmentation rule forbids.
    ShortFragment {
        /// Byte offset of the offending item's type byte.
        offset: usize,
    },
    /// The output buffer is too small; `required` bytes are needed.
    BufferTooSmall {
        /// The size the buffer would need.
        required: usize,
    },
}

impl core::fmt::Display for TlvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TlvError::Truncated { offset } => {
                write!(f, "TLV item at byte {offset} runs past the end")
            }
            TlvError::ShortFragment { offset } => {
                write!(
                    f,
                    "TLV item at byte {offset} continues a fragment shorter than 255 bytes"
                )
            }
            TlvError::BufferTooSmall { required } => {
                write!(f, "buffer too small for TLV data: {required} bytes needed")
            }
        }
    }
}

impl core::error::Error for TlvError {}

/// One item as it appears on the wire: type, value, and the bytes after it.
type RawItem<'a> = (u8, &'a [u8], &'a [u8]);

/// Splits the first raw item off `bytes`, or returns `None` at the end. `offset` is where
/// `bytes` starts in the message, for error reports.
fn split_raw(bytes: &[u8], offset: usize) -> Result<Option<RawItem<'_>>, TlvError> {
    match bytes {
        [] => Ok(None),
        [ty, len, rest @ ..] if rest.len() >= usize::from(*len) => {
            let (value, rest) = rest.split_at(usize::from(*len));
            Ok(Some((*ty, value, rest)))
        }
        _ => Err(TlvError::Truncated { offset }),
    }
}

/// A checked TLV8 message whose items can be read without further errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    bytes: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Checks that every item lies within `bytes` and every fragmented value obeys the
    /// 255-byte rule.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, TlvError> {
        let mut rest = bytes;
        let mut previous: Option<(u8, usize)> = None;
        while let Some((ty, value, tail)) = split_raw(rest, bytes.len() - rest.len())? {
            let offset = bytes.len() - rest.len();
            if let Some((prev_ty, prev_len)) = previous {
                if prev_ty == ty && prev_len < MAX_FRAGMENT_LEN {
                    return Err(TlvError::ShortFragment { offset });
                }
            }
            previous = Some((ty, value.len()));
            rest = tail;
        }
        Ok(Self { bytes })
    }

    /// The message's encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The logical items in order, with fragments joined.
    pub fn items(&self) -> Items<'a> {
        Items { rest: self.bytes }
    }

    /// The first item of type `ty`.
    pub fn get(&self, ty: u8) -> Option<Item<'a>> {
        self.items().find(|item| item.ty == ty)
    }

    /// The single-byte value of the first item of type `ty`, if it is exactly one byte.
    pub fn get_u8(&self, ty: u8) -> Option<u8> {
        self.get(ty).and_then(|item| match item.contiguous() {
            Some([byte]) => Some(*byte),
            _ => None,
        })
    }
}

/// Iterator over the logical items of a [`Tlv`].
#[derive(Clone, Debug)]
pub struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        // The message was checked by `Tlv::parse`, so `split_raw` cannot fail here.
        let (ty, first, mut tail) = split_raw(self.rest, 0).ok()??;
        let mut len = first.len();
        let mut last_len = first.len();
        while last_len == MAX_FRAGMENT_LEN {
            match split_raw(tail, 0) {
                Ok(Some((next_ty, value, next_tail))) if next_ty == ty => {
                    len += value.len();
                    last_len = value.len();
                    tail = next_tail;
                }
                _ => break,
            }
        }
        let encoded_len = self.rest.len() - tail.len();
        let item = Item {
            ty,
            encoded: &self.rest[..encoded_len],
            len,
        };
        self.rest = tail;
        Some(item)
    }
}

/// One logical TLV item, possibly spread over several fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    ty: u8,
    /// Every fragment of the item, headers included.
    encoded: &'a [u8],
    len: usize,
}

impl<'a> Item<'a> {
    /// The item's type.
    pub fn ty(&self) -> u8 {
        self.ty
    }

    /// The length of the joined value.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value's fragments, in order.
    pub fn fragments(&self) -> Fragments<'a> {
        Fragments { rest: self.encoded }
    }

    /// The value, borrowed, when it fits in a single fragment.
    pub fn contiguous(&self) -> Option<&'a [u8]> {
        let mut fragments = self.fragments();
        let first = fragments.next()?;
        match fragments.next() {
            None => Some(first),
            // A trailing empty fragment after a full one adds nothing.
            Some([]) if fragments.next().is_none() => Some(first),
            Some(_) => None,
        }
    }

    /// Joins the value into `buf` and returns the filled part.
    pub fn copy_to<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], TlvError> {
        let out = buf
            .get_mut(..self.len)
            .ok_or(TlvError::BufferTooSmall { required: self.len })?;
        let mut at = 0;
        for fragment in self.fragments() {
            out[at..at + fragment.len()].copy_from_slice(fragment);
            at += fragment.len();
        }
        Ok(out)
    }

    /// Joins the value into a fixed-size array, if its length is exactly `N`.
    pub fn to_array<const N: usize>(&self) -> Option<[u8; N]> {
        let mut array = [0; N];
        if self.len != N {
            return None;
        }
        self.copy_to(&mut array).ok()?;
        Some(array)
    }

    /// The value as a little-endian unsigned integer of 1 to 8 bytes.
    pub fn to_uint_le(&self) -> Option<u64> {
        let bytes = self.contiguous()?;
        if bytes.is_empty() || bytes.len() > 8 {
            return None;
        }
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |acc, byte| (acc << 8) | u64::from(*byte)),
        )
    }
}

/// Iterator over the fragments of one [`Item`].
#[derive(Clone, Debug)]
pub struct Fragments<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fragments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (_, value, tail) = split_raw(self.rest, 0).ok()??;
        self.rest = tail;
        Some(value)
    }
}

/// The encoded size of a value of `value_len` bytes, headers included.
pub const fn encoded_len(value_len: usize) -> usize {
    if value_len == 0 {
        2
    } else {
        value_len + 2 * value_len.div_ceil(MAX_FRAGMENT_LEN)
    }
}

/// The number of bytes needed to encode `value` as a minimal little-endian integer.
fn uint_le_len(value: u64) -> usize {
    (((u64::BITS - value.leading_zeros()) as usize).div_ceil(8)).max(1)
}

/// Writes TLV8 items into a caller buffer.
///
/// A write that does not fit leaves the buffer as it was and returns
/// [`TlvError::BufferTooSmall`] with the total size needed.
#[derive(Debug)]
pub struct TlvWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> TlvWriter<'b> {
    /// A writer that fills `buf` from the start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends an item, fragmenting values longer than 255 bytes.
    pub fn item(&mut self, ty: u8, value: &[u8]) -> Result<&mut Self, TlvError> {
        let required = self.len + encoded_len(value.len());
        if required > self.buf.len() {
            return Err(TlvError::BufferTooSmall { required });
        }
        let mut chunks = value.chunks(MAX_FRAGMENT_LEN);
        let first = chunks.next().unwrap_or(&[]);
        for chunk in core::iter::once(first).chain(chunks) {
            self.buf[self.len] = ty;
            // Chunks are at most 255 bytes long, so the cast is exact.
            self.buf[self.len + 1] = chunk.len() as u8;
            self.buf[self.len + 2..self.len + 2 + chunk.len()].copy_from_slice(chunk);
            self.len += 2 + chunk.len();
        }
        Ok(self)
    }

    /// Appends a one-byte item.
    pub fn u8(&mut self, ty: u8, value: u8) -> Result<&mut Self, TlvError> {
        self.item(ty, &[value])
    }

    /// Appends an unsigned integer in the fewest little-endian bytes (at least one).
    pub fn uint_le(&mut self, ty: u8, value: u64) -> Result<&mut Self, TlvError> {
        let bytes = value.to_le_bytes();
        self.item(ty, &bytes[..uint_le_len(value)])
    }

    /// Appends a separator, the empty item of type 0xFF that divides list entries.
    pub fn separator(&mut self) -> Result<&mut Self, TlvError> {
        self.item(SEPARATOR, &[])
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Ends writing and returns the written part of the buffer.
    pub fn finish(self) -> &'b mut [u8] {
        &mut self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_one(ty: u8, value: &[u8]) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0; encoded_len(value.len())];
        let mut writer = TlvWriter::new(&mut buf);
        writer.item(ty, value).unwrap();
        assert_eq!(writer.len(), buf.len());
        buf
    }

    #[test]
    fn short_items_round_trip() {
        let bytes = [0x06, 0x01, 0x03, 0x01, 0x02, 0xAB, 0xCD, 0xFF, 0x00];
        let tlv = Tlv::parse(&bytes).unwrap();
        let items: std::vec::Vec<_> = tlv
            .items()
            .map(|i| (i.ty(), i.contiguous().unwrap()))
            .collect();
        assert_eq!(
            items,
            [(6, &[3][..]), (1, &[0xAB, 0xCD][..]), (0xFF, &[][..])]
        );
        assert_eq!(tlv.get_u8(0x06), Some(3));
        assert_eq!(tlv.get_u8(0x01), None);
        assert!(tlv.get(0x02).is_none());
    }

    #[test]
    fn exact_multiple_of_255_has_no_trailing_fragment() {
        // HAP-python wrote a trailing empty fragment followed by the whole value again.
        let value: std::vec::Vec<u8> = (0..510u32).map(|i| i as u8).collect();
        let encoded = write_one(0x03, &value);
        assert_eq!(encoded.len(), 514);
        assert_eq!(&encoded[..2], &[0x03, 0xFF]);
        assert_eq!(&encoded[257..259], &[0x03, 0xFF]);
        let item = Tlv::parse(&encoded).unwrap().get(0x03).unwrap();
        assert_eq!(item.len(), 510);
        assert_eq!(item.fragments().count(), 2);
        let mut joined = [0u8; 600];
        assert_eq!(item.copy_to(&mut joined).unwrap(), &value[..]);
    }

    #[test]
    fn trailing_empty_fragment_is_accepted() {
        let mut encoded = write_one(0x05, &[7; 255]);
        encoded.extend_from_slice(&[0x05, 0x00, 0x06, 0x01, 0x02]);
        let tlv = Tlv::parse(&encoded).unwrap();
        let item = tlv.get(0x05).unwrap();
        assert_eq!(item.len(), 255);
        assert_eq!(item.contiguous().map(<[u8]>::len), Some(255));
        assert_eq!(tlv.get_u8(0x06), Some(2));
    }

    #[test]
    fn truncated_items_are_rejected() {
        assert_eq!(Tlv::parse(&[0x06]), Err(TlvError::Truncated { offset: 0 }));
        assert_eq!(
            Tlv::parse(&[0x06, 0x02, 0x01]),
            Err(TlvError::Truncated { offset: 0 })
        );
        assert_eq!(
            Tlv::parse(&[0x06, 0x01, 0x01, 0x07]),
            Err(TlvError::Truncated { offset: 3 })
        );
    }

    #[test]
    fn short_fragment_followed_by_same_type_is_rejected() {
        assert_eq!(
            Tlv::parse(&[0x01, 0x01, 0xAA, 0x01, 0x01, 0xBB]),
            Err(TlvError::ShortFragment { offset: 3 })
        );
        // Two separators in a row are the same mistake.
        assert_eq!(
            Tlv::parse(&[0xFF, 0x00, 0xFF, 0x00]),
            Err(TlvError::ShortFragment { offset: 2 })
        );
    }

    #[test]
    fn separators_divide_items_of_the_same_type() {
        let mut buf = [0u8; 64];
        let mut writer = TlvWriter::new(&mut buf);
        writer
            .item(0x01, b"a")
            .unwrap()
            .separator()
            .unwrap()
            .item(0x01, b"b")
            .unwrap();
        let tlv = Tlv::parse(writer.as_bytes()).unwrap();
        let ids: std::vec::Vec<_> = tlv
            .items()
            .filter(|i| i.ty() == 0x01)
            .map(|i| i.contiguous().unwrap())
            .collect();
        assert_eq!(ids, [b"a", b"b"]);
    }

    #[test]
    fn writer_reports_required_size_and_leaves_buffer_intact() {
        let mut buf = [0u8; 10];
        let mut writer = TlvWriter::new(&mut buf);
        writer.u8(0x06, 1).unwrap();
        assert_eq!(
            writer.item(0x03, &[0; 300]).unwrap_err(),
            TlvError::BufferTooSmall { required: 3 + 304 }
        );
        assert_eq!(writer.as_bytes(), &[0x06, 0x01, 0x01]);
    }

    #[test]
    fn copy_to_small_buffer_fails_cleanly() {
        let encoded = write_one(0x03, &[1; 300]);
        let item = Tlv::parse(&encoded).unwrap().get(0x03).unwrap();
        assert_eq!(
            item.copy_to(&mut [0; 299]),
            Err(TlvError::BufferTooSmall { required: 300 })
        );
        assert!(item.to_array::<32>().is_none());
    }

    #[test]
    fn integers_are_minimal_little_endian() {
        let mut buf = [0u8; 32];
        let mut writer = TlvWriter::new(&mut buf);
        writer
            .uint_le(0x13, 0x10)
            .unwrap()
            .uint_le(0x13 + 1, 0x0100_0010)
            .unwrap()
            .uint_le(0x20, 0)
            .unwrap();
        assert_eq!(
            writer.as_bytes(),
            &[0x13, 1, 0x10, 0x14, 4, 0x10, 0, 0, 1, 0x20, 1, 0]
        );
        let tlv = Tlv::parse(writer.as_bytes()).unwrap();
        assert_eq!(tlv.get(0x14).unwrap().to_uint_le(), Some(0x0100_0010));
        assert_eq!(tlv.get(0x20).unwrap().to_uint_le(), Some(0));
    }
}
