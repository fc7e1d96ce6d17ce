//! [`ValueBytes`], the payload of a TLV8 or data value, and its capacity.
//!
//! HAP caps strings at 256 bytes but leaves TLV8 and data to each characteristic's
//! `maxDataLen` (2 MiB by default). Real ones are longer than 256 bytes: Adaptive
//! Lighting's transition control carries a curve of about 1 KiB each way, and a camera's
//! stream configurations list every resolution it supports. How much room that takes is
//! a choice per build, made here once:
//!
//! | build | [`BYTES_CAPACITY`] | where the bytes live | a value costs |
//! |---|---|---|---|
//! | with `alloc` | 4096 | the heap, exactly its length | its length, plus a 16-byte pointer inline |
//! | without `alloc` | 256 | inline, in every [`OwnedValue`](super::OwnedValue) | 256 bytes inline, whatever its length |
//!
//! Inline storage is paid by every database slot, every queued [`Event`], and every entry
//! of the server's button log, whatever their format, so without a heap it stays at
//! HAP's string maximum (an [`OwnedValue`](super::OwnedValue) is 272 bytes on 64-bit
//! targets either way: its inline string sets the size). With a heap, only values that
//! exist take room. Either way the API is the same, so code moves between builds
//! unchanged.
//!
//! [`Event`]: crate::server::Event

use crate::catalog::value::ValueError;

/// The longest TLV8 or data value, in decoded bytes: 4096 with `alloc` (held on the
/// heap, at its length), 256 without (held inline).
///
/// 4 KiB is four times the longest value known in use, Adaptive Lighting's transition
/// curve (about 1 KiB), and an event for it fits the host adapters' output buffers
/// ([`EVENT_OUTPUT_LEN`](crate::server::EVENT_OUTPUT_LEN)). Writes of longer values fail
/// with -70410 whatever the
/// characteristic's `maxDataLen` says; the application's own longer values are refused
/// by [`ValueBytes::from_slice`].
#[cfg(feature = "alloc")]
pub const BYTES_CAPACITY: usize = 4096;
/// The longest TLV8 or data value, in decoded bytes: 4096 with `alloc` (held on the
/// heap, at its length), 256 without (held inline).
///
/// Without a heap every value is held inline at this size, so it is HAP's string
/// maximum. Writes of longer values fail with -70410 whatever the characteristic's
/// `maxDataLen` says; the application's own longer values are refused by
/// [`ValueBytes::from_slice`].
#[cfg(not(feature = "alloc"))]
pub const BYTES_CAPACITY: usize = 256;

/// The longest base64 text of a value of [`BYTES_CAPACITY`] bytes, padding included.
pub const ENCODED_BYTES_CAPACITY: usize = BYTES_CAPACITY.div_ceil(3) * 4;

#[cfg(feature = "alloc")]
type Storage = alloc::boxed::Box<[u8]>;
#[cfg(not(feature = "alloc"))]
type Storage = heapless::Vec<u8, BYTES_CAPACITY>;

/// The decoded bytes of a TLV8 or data value: at most [`BYTES_CAPACITY`] of them, on the
/// heap with `alloc` and inline without (see the [module docs](self) for the cost).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ValueBytes(Storage);

impl ValueBytes {
    /// The most bytes a value holds: [`BYTES_CAPACITY`].
    pub const CAPACITY: usize = BYTES_CAPACITY;

    /// No bytes. Never allocates.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of `bytes`, or `None` if there are more than [`BYTES_CAPACITY`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > BYTES_CAPACITY {
            return None;
        }
        #[cfg(feature = "alloc")]
        return Some(Self(bytes.into()));
        #[cfg(not(feature = "alloc"))]
        return heapless::Vec::from_slice(bytes).ok().map(Self);
    }

    /// Decodes standard, padded base64, as values travel in JSON. Fails with
    /// [`ValueError::TooLong`] past [`BYTES_CAPACITY`] bytes (before decoding anything
    /// when the text alone shows it) and [`ValueError::BadEncoding`] on bad base64.
    pub fn from_base64(encoded: &str) -> Result<Self, ValueError> {
        use base64::Engine as _;
        if encoded.len() > ENCODED_BYTES_CAPACITY {
            return Err(ValueError::TooLong);
        }
        // Base64 is a third longer than its bytes, so this holds any text that got here.
        let mut buf = [0u8; BYTES_CAPACITY];
        let len = base64::engine::general_purpose::STANDARD
            .decode_slice(encoded, &mut buf)
            .map_err(|error| match error {
                base64::DecodeSliceError::OutputSliceTooSmall => ValueError::TooLong,
                base64::DecodeSliceError::DecodeError(_) => ValueError::BadEncoding,
            })?;
        Self::from_slice(&buf[..len]).ok_or(ValueError::TooLong)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// How many bytes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl core::ops::Deref for ValueBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for ValueBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<'a> TryFrom<&'a [u8]> for ValueBytes {
    type Error = TooManyBytes;
    fn try_from(bytes: &'a [u8]) -> Result<Self, TooManyBytes> {
        Self::from_slice(bytes).ok_or(TooManyBytes)
    }
}

impl core::fmt::Debug for ValueBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// More bytes than [`BYTES_CAPACITY`] were given to [`ValueBytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyBytes;

impl core::fmt::Display for TooManyBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "a TLV8 or data value holds at most {BYTES_CAPACITY} bytes"
        )
    }
}

impl core::error::Error for TooManyBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_up_to_the_capacity_and_refuses_one_more() {
        let full = [0xA5u8; BYTES_CAPACITY + 1];
        let at = ValueBytes::from_slice(&full[..BYTES_CAPACITY]).unwrap();
        assert_eq!(at.len(), BYTES_CAPACITY);
        assert_eq!(at.as_slice(), &full[..BYTES_CAPACITY]);
        assert_eq!(&at[..2], [0xA5, 0xA5]);
        assert_eq!(ValueBytes::from_slice(&full), None);
        assert_eq!(ValueBytes::try_from(&full[..]), Err(TooManyBytes));
        assert_eq!(ValueBytes::CAPACITY, BYTES_CAPACITY);
    }

    #[test]
    fn empty_is_the_default() {
        let empty = ValueBytes::new();
        assert!(empty.is_empty());
        assert_eq!(empty, ValueBytes::default());
        assert_eq!(ValueBytes::from_slice(&[]), Some(empty));
        assert_eq!(
            std::format!("{:?}", ValueBytes::from_slice(&[1, 2])),
            "Some([1, 2])"
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn the_host_capacity_covers_adaptive_lightings_curve() {
        const { assert!(BYTES_CAPACITY >= 1024) };
        // Only the pointer is inline.
        assert_eq!(
            core::mem::size_of::<ValueBytes>(),
            2 * core::mem::size_of::<usize>()
        );
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_value_is_as_large_as_its_inline_string_in_either_build() {
        use crate::database::OwnedValue;
        assert_eq!(core::mem::size_of::<OwnedValue>(), 272);
        assert!(core::mem::size_of::<ValueBytes>() <= 264);
    }

    #[test]
    fn base64_decodes_up_to_the_capacity() {
        use base64::Engine as _;
        let mut text = [0u8; ENCODED_BYTES_CAPACITY + 4];
        let mut encode = |bytes: &[u8]| -> std::string::String {
            let len = base64::engine::general_purpose::STANDARD
                .encode_slice(bytes, &mut text)
                .unwrap();
            core::str::from_utf8(&text[..len]).unwrap().into()
        };
        let bytes: std::vec::Vec<u8> = (0..BYTES_CAPACITY + 3).map(|n| n as u8).collect();
        for len in [0, 1, 2, 3, BYTES_CAPACITY - 1, BYTES_CAPACITY] {
            let decoded = ValueBytes::from_base64(&encode(&bytes[..len])).unwrap();
            assert_eq!(decoded.as_slice(), &bytes[..len], "{len} bytes");
        }
        // One more byte has base64 as long as the capacity's, or one group longer.
        for len in [BYTES_CAPACITY + 1, BYTES_CAPACITY + 3] {
            let encoded = encode(&bytes[..len]);
            assert_eq!(
                ValueBytes::from_base64(&encoded),
                Err(ValueError::TooLong),
                "{len}"
            );
        }
        assert_eq!(
            ValueBytes::from_base64("AQI*"),
            Err(ValueError::BadEncoding)
        );
        assert_eq!(ValueBytes::from_base64("AQI"), Err(ValueError::BadEncoding));
    }
}
