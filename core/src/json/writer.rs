//! A JSON writer into a caller's buffer.
//!
//! Responses are assembled piece by piece into fixed buffers. Every method either writes
//! all of its piece or reports [`Full`], leaving the position where the piece started
//! untouched by later pieces only if the caller rolls back with [`JsonWriter::truncate`].
//!
//! A piece longer than any buffer (a long TLV8 value, say) is written through a
//! [window](JsonWriter::window) instead: the piece is written whole each time, and the
//! writer keeps the part from a given offset that fits, so the piece goes out over as
//! many buffers as it needs.

use core::fmt::{self, Write as _};

/// The buffer has no room for the piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the output buffer is full")
    }
}

impl core::error::Error for Full {}

/// Writes JSON text into a byte buffer.
#[derive(Debug)]
pub struct JsonWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    window: Option<Window>,
}

/// What a [windowed](JsonWriter::window) writer has seen: every byte written to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// How many bytes were written, kept or not.
    pub len: usize,
    /// Their FNV-1a hash, to tell whether a piece written again came out the same.
    pub digest: u32,
}

#[derive(Debug)]
struct Window {
    skip: usize,
    seen: Extent,
}

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

impl<'b> JsonWriter<'b> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            window: None,
        }
    }

    /// A writer that keeps, of everything written to it, the bytes from offset `skip`
    /// on, as many as fit `buf`, and counts the rest in its [`extent`](Self::extent). It
    /// never reports [`Full`]. An empty `buf` measures a piece without keeping any.
    pub fn window(buf: &'b mut [u8], skip: usize) -> Self {
        Self {
            buf,
            len: 0,
            window: Some(Window {
                skip,
                seen: Extent {
                    len: 0,
                    digest: FNV_OFFSET,
                },
            }),
        }
    }

    /// For a [windowed](Self::window) writer, everything written so far.
    pub fn extent(&self) -> Option<Extent> {
        self.window.as_ref().map(|window| window.seen)
    }

    /// How many bytes have been written (kept, for a windowed writer).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What has been written.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets everything after the first `len` bytes, to undo a piece that did not fit.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends raw JSON text, such as punctuation or a literal.
    pub fn raw(&mut self, text: &str) -> Result<(), Full> {
        self.bytes(text.as_bytes())
    }

    /// Appends a string, quoted and escaped.
    pub fn string(&mut self, text: &str) -> Result<(), Full> {
        self.raw("\"")?;
        let mut plain_from = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape: Option<&str> = match byte {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                0..=0x1F => None,
                _ => continue,
            };
            self.bytes(&text.as_bytes()[plain_from..at])?;
            match escape {
                Some(escape) => self.raw(escape)?,
                None => write!(self, "\\u{byte:04x}").map_err(|_| Full)?,
            }
            plain_from = at + 1;
        }
        self.bytes(&text.as_bytes()[plain_from..])?;
        self.raw("\"")
    }

    /// Appends bytes as a quoted base64 string (standard alphabet, padded).
    pub fn base64(&mut self, bytes: &[u8]) -> Result<(), Full> {
        use base64::Engine as _;
        self.raw("\"")?;
        // Whole groups of three bytes, so only the last piece is padded.
        let mut text = [0u8; 64];
        for group in bytes.chunks(48) {
            let len = base64::engine::general_purpose::STANDARD
                .encode_slice(group, &mut text)
                .map_err(|_| Full)?;
            self.bytes(&text[..len])?;
        }
        self.raw("\"")
    }

    /// Appends an object key and its colon.
    pub fn key(&mut self, key: &str) -> Result<(), Full> {
        self.string(key)?;
        self.raw(":")
    }

    /// Appends an unsigned integer.
    pub fn uint(&mut self, value: u64) -> Result<(), Full> {
        write!(self, "{value}").map_err(|_| Full)
    }

    /// Appends a signed integer.
    pub fn int(&mut self, value: i64) -> Result<(), Full> {
        write!(self, "{value}").map_err(|_| Full)
    }

    /// Appends a finite float in its shortest exact form; non-finite values, which JSON
    /// cannot express, are written as `null`.
    pub fn float(&mut self, value: f64) -> Result<(), Full> {
        let magnitude = if value < 0.0 { -value } else { value };
        if magnitude == 0.0 || (1e-5..1e16).contains(&magnitude) {
            write!(self, "{value}").map_err(|_| Full)
        } else if value.is_finite() {
            // Plain notation would spell out hundreds of digits.
            write!(self, "{value:e}").map_err(|_| Full)
        } else {
            self.raw("null")
        }
    }

    /// Appends `true` or `false`.
    pub fn bool(&mut self, value: bool) -> Result<(), Full> {
        self.raw(if value { "true" } else { "false" })
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Full> {
        if let Some(window) = &mut self.window {
            let at = window.seen.len;
            window.seen.len += bytes.len();
            for byte in bytes {
                window.seen.digest =
                    (window.seen.digest ^ u32::from(*byte)).wrapping_mul(FNV_PRIME);
            }
            let kept = &bytes[window.skip.saturating_sub(at).min(bytes.len())..];
            let take = kept.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + take].copy_from_slice(&kept[..take]);
            self.len += take;
            return Ok(());
        }
        let end = self.len + bytes.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(Full)?;
        dest.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl fmt::Write for JsonWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut JsonWriter<'_>) -> Result<(), Full>) -> std::string::String {
        let mut buf = [0u8; 256];
        let mut w = JsonWriter::new(&mut buf);
        f(&mut w).unwrap();
        std::string::String::from_utf8(w.written().to_vec()).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        let text = written(|w| w.string("a\"b\\c\n\u{1}é"));
        assert_eq!(text, "\"a\\\"b\\\\c\\n\\u0001é\"");
        let parsed: std::string::String = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn numbers_round_trip_through_serde_json() {
        for value in [0.0, -1.5, 21.3, 1e-7, 1e300, f64::MIN_POSITIVE] {
            let text = written(|w| w.float(value));
            let parsed: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, value, "{text}");
        }
        assert_eq!(written(|w| w.float(f64::NAN)), "null");
        assert_eq!(written(|w| w.uint(u64::MAX)), "18446744073709551615");
        assert_eq!(written(|w| w.int(-2_147_483_648)), "-2147483648");
        assert_eq!(written(|w| w.base64(b"\x01\x02\x03\x04")), "\"AQIDBA==\"");
    }

    #[test]
    fn windows_cut_a_long_piece_into_buffers() {
        let piece = |w: &mut JsonWriter<'_>| {
            w.raw("{\"value\":")?;
            w.base64(&[7u8; 150])?;
            w.raw("}")
        };
        let whole = written(|w| piece(w));
        let mut measure = JsonWriter::window(&mut [], 0);
        piece(&mut measure).unwrap();
        let extent = measure.extent().unwrap();
        assert_eq!(extent.len, whole.len());
        assert_eq!(JsonWriter::new(&mut [0u8; 1]).extent(), None);
        let mut joined = std::vec::Vec::new();
        while joined.len() < extent.len {
            let mut buf = [0u8; 37];
            let mut w = JsonWriter::window(&mut buf, joined.len());
            piece(&mut w).unwrap();
            assert_eq!(w.extent(), Some(extent), "the same piece, the same extent");
            joined.extend_from_slice(w.written());
        }
        assert_eq!(joined, whole.as_bytes());
        let mut other = JsonWriter::window(&mut [], 0);
        other.raw("{\"value\":").unwrap();
        other.base64(&[8u8; 150]).unwrap();
        other.raw("}").unwrap();
        assert_ne!(other.extent().unwrap().digest, extent.digest);
    }

    #[test]
    fn a_piece_that_does_not_fit_reports_full() {
        let mut buf = [0u8; 4];
        let mut w = JsonWriter::new(&mut buf);
        assert_eq!(w.string("long"), Err(Full));
        assert_eq!(w.uint(12345), Err(Full));
        w.truncate(0);
        w.raw("ok").unwrap();
        assert_eq!(w.written(), b"ok");
    }
}
