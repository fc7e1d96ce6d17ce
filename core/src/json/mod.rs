//! JSON without a heap: a strict pull reader for HAP's request bodies, and a writer for
//! its responses ([`writer`]).
//!
//! HAP's JSON is small but untyped where it matters: a characteristic's `value` may be a
//! bool, a number or a string. serde-json-core cannot read such a field (it refuses
//! `deserialize_any`), so requests are read token by token instead. Strings are borrowed
//! from the input; escaped ones are decoded on demand into a caller buffer. Nesting is
//! limited to [`MAX_DEPTH`], and any deviation from RFC 8259 is an error.

use crate::catalog::value::Scalar;

pub mod writer;
pub use writer::{Full, JsonWriter};

/// The deepest nesting accepted; HAP's bodies need three levels.
pub const MAX_DEPTH: usize = 16;

/// Where and why JSON input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong.
    pub kind: JsonErrorKind,
}

/// What was wrong with JSON input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// A byte that cannot appear here.
    UnexpectedByte,
    /// A malformed number.
    BadNumber,
    /// A malformed string or escape.
    BadString,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Something other than whitespace after the top-level value.
    TrailingData,
    /// A decoded string does not fit the caller's buffer.
    BufferTooSmall,
}

impl core::fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JsonErrorKind::UnexpectedEnd => f.write_str("the input ends inside a value"),
            JsonErrorKind::UnexpectedByte => f.write_str("unexpected byte"),
            JsonErrorKind::BadNumber => f.write_str("malformed number"),
            JsonErrorKind::BadString => f.write_str("malformed string or escape"),
            JsonErrorKind::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            JsonErrorKind::TrailingData => f.write_str("data after the top-level value"),
            JsonErrorKind::BufferTooSmall => {
                f.write_str("a decoded string does not fit the buffer")
            }
        }
    }
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.kind)
    }
}

impl core::error::Error for JsonError {}

/// A string token, borrowed from the input, escapes still encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// The string, if it contains no escapes and so needs no decoding.
    pub fn as_plain(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }

    /// The string as written between its quotes, escapes still encoded. Its length
    /// bounds the decoded string's, so it sizes a buffer for [`JsonStr::decode_into`].
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the decoded string equals `text`.
    pub fn eq_str(&self, text: &str) -> bool {
        if !self.escaped {
            return self.raw == text;
        }
        let mut buf = [0u8; 64];
        text.len() <= buf.len()
            && self
                .decode_into(&mut buf)
                .is_ok_and(|decoded| decoded == text)
    }

    /// Decodes the string into `buf` and returns it.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, JsonErrorKind> {
        let mut out = 0usize;
        self.decode_with(|bytes| {
            let end = out + bytes.len();
            buf.get_mut(out..end)
                .ok_or(JsonErrorKind::BufferTooSmall)?
                .copy_from_slice(bytes);
            out = end;
            Ok(())
        })?;
        // Only whole UTF-8 sequences were copied, so this cannot fail.
        core::str::from_utf8(&buf[..out]).map_err(|_| JsonErrorKind::BadString)
    }

    /// Checks every escape without decoding anywhere.
    fn validate(&self) -> Result<(), JsonErrorKind> {
        self.decode_with(|_| Ok(()))
    }

    /// Decodes the string piece by piece into `emit`, which gets whole UTF-8 sequences.
    fn decode_with(
        &self,
        mut emit: impl FnMut(&[u8]) -> Result<(), JsonErrorKind>,
    ) -> Result<(), JsonErrorKind> {
        let bytes = self.raw.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'\\' {
                let run = bytes[i..]
                    .iter()
                    .position(|b| *b == b'\\')
                    .unwrap_or(bytes.len() - i);
                emit(&bytes[i..i + run])?;
                i += run;
                continue;
            }
            let escape = *bytes.get(i + 1).ok_or(JsonErrorKind::BadString)?;
            i += 2;
            let simple = match escape {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(0x08),
                b'f' => Some(0x0C),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'u' => None,
                _ => return Err(JsonErrorKind::BadString),
            };
            if let Some(byte) = simple {
                emit(&[byte])?;
                continue;
            }
            let high = hex4(bytes, i)?;
            i += 4;
            let code = if (0xD800..0xDC00).contains(&high) {
                if bytes.get(i..i + 2) != Some(b"\\u") {
                    return Err(JsonErrorKind::BadString);
                }
                let low = hex4(bytes, i + 2)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return Err(JsonErrorKind::BadString);
                }
                i += 6;
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            } else {
                high
            };
            let c = char::from_u32(code).ok_or(JsonErrorKind::BadString)?;
            emit(c.encode_utf8(&mut [0u8; 4]).as_bytes())?;
        }
        Ok(())
    }
}

fn hex4(bytes: &[u8], at: usize) -> Result<u32, JsonErrorKind> {
    let digits = bytes.get(at..at + 4).ok_or(JsonErrorKind::BadString)?;
    digits.iter().try_fold(0u32, |acc, d| {
        let value = (*d as char).to_digit(16).ok_or(JsonErrorKind::BadString)?;
        Ok(acc * 16 + value)
    })
}

/// One token of JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    /// `{`
    ObjectStart,
    /// `}`
    ObjectEnd,
    /// `[`
    ArrayStart,
    /// `]`
    ArrayEnd,
    /// An object key.
    Key(JsonStr<'a>),
    /// A string value.
    Str(JsonStr<'a>),
    /// A number, as written.
    Number(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`
    Null,
}

/// What the reader expects next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A value (or, right after `[`, the end of the array).
    Value { or_end: bool },
    /// A key (or, right after `{`, the end of the object).
    Key { or_end: bool },
    /// A comma or the end of the current container.
    CommaOrEnd,
    /// Nothing but whitespace: the top-level value is complete.
    Done,
}

/// Reads JSON token by token.
#[derive(Clone, Debug)]
pub struct JsonReader<'a> {
    input: &'a str,
    pos: usize,
    /// For each open container, whether it is an object.
    stack: [bool; MAX_DEPTH],
    depth: usize,
    expect: Expect,
}

impl<'a> JsonReader<'a> {
    /// A reader over `input`, which must hold exactly one JSON value.
    pub fn new(input: &'a str) -> Self {
        Self {
            input,
            pos: 0,
            stack: [false; MAX_DEPTH],
            depth: 0,
            expect: Expect::Value { or_end: false },
        }
    }

    fn error(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.pos,
            kind,
        }
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.input.as_bytes();
        while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    /// The next token, or `None` once the whole value has been read.
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, JsonError> {
        self.skip_whitespace();
        match self.expect {
            Expect::Done => match self.peek() {
                None => Ok(None),
                Some(_) => Err(self.error(JsonErrorKind::TrailingData)),
            },
            Expect::CommaOrEnd => match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.expect = if self.in_object() {
                        Expect::Key { or_end: false }
                    } else {
                        Expect::Value { or_end: false }
                    };
                    self.next_token()
                }
                Some(b'}') if self.in_object() => self.close(Token::ObjectEnd),
                Some(b']') if self.depth > 0 && !self.in_object() => self.close(Token::ArrayEnd),
                Some(_) => Err(self.error(JsonErrorKind::UnexpectedByte)),
                None => Err(self.error(JsonErrorKind::UnexpectedEnd)),
            },
            Expect::Key { or_end } => match self.peek() {
                Some(b'}') if or_end => self.close(Token::ObjectEnd),
                Some(b'"') => {
                    let key = self.string()?;
                    self.skip_whitespace();
                    if self.peek() != Some(b':') {
                        return Err(self.error(if self.peek().is_none() {
                            JsonErrorKind::UnexpectedEnd
                        } else {
                            JsonErrorKind::UnexpectedByte
                        }));
                    }
                    self.pos += 1;
                    self.expect = Expect::Value { or_end: false };
                    Ok(Some(Token::Key(key)))
                }
                Some(_) => Err(self.error(JsonErrorKind::UnexpectedByte)),
                None => Err(self.error(JsonErrorKind::UnexpectedEnd)),
            },
            Expect::Value { or_end } => {
                let token = match self.peek() {
                    Some(b']') if or_end => return self.close(Token::ArrayEnd),
                    Some(b'{') => return self.open(true),
                    Some(b'[') => return self.open(false),
                    Some(b'"') => Token::Str(self.string()?),
                    Some(b't') => self.literal("true", Token::Bool(true))?,
                    Some(b'f') => self.literal("false", Token::Bool(false))?,
                    Some(b'n') => self.literal("null", Token::Null)?,
                    Some(b'-' | b'0'..=b'9') => Token::Number(self.number()?),
                    Some(_) => return Err(self.error(JsonErrorKind::UnexpectedByte)),
                    None => return Err(self.error(JsonErrorKind::UnexpectedEnd)),
                };
                self.after_value();
                Ok(Some(token))
            }
        }
    }

    /// Skips the value whose first token was just read (`first`), nested or not.
    pub fn skip_value(&mut self, first: Token<'a>) -> Result<(), JsonError> {
        let target = match first {
            Token::ObjectStart | Token::ArrayStart => self.depth - 1,
            _ => return Ok(()),
        };
        while self.depth > target {
            if self.next_token()?.is_none() {
                return Err(self.error(JsonErrorKind::UnexpectedEnd));
            }
        }
        Ok(())
    }

    fn in_object(&self) -> bool {
        self.depth > 0 && self.stack[self.depth - 1]
    }

    fn open(&mut self, object: bool) -> Result<Option<Token<'a>>, JsonError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error(JsonErrorKind::TooDeep));
        }
        self.stack[self.depth] = object;
        self.depth += 1;
        self.pos += 1;
        self.expect = if object {
            Expect::Key { or_end: true }
        } else {
            Expect::Value { or_end: true }
        };
        Ok(Some(if object {
            Token::ObjectStart
        } else {
            Token::ArrayStart
        }))
    }

    fn close(&mut self, token: Token<'a>) -> Result<Option<Token<'a>>, JsonError> {
        self.depth -= 1;
        self.pos += 1;
        self.after_value();
        Ok(Some(token))
    }

    fn after_value(&mut self) {
        self.expect = if self.depth == 0 {
            Expect::Done
        } else {
            Expect::CommaOrEnd
        };
    }

    fn literal(&mut self, word: &str, token: Token<'a>) -> Result<Token<'a>, JsonError> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(token)
        } else {
            Err(self.error(JsonErrorKind::UnexpectedByte))
        }
    }

    /// Reads a string starting at its opening quote; escapes are checked later, when
    /// decoded, except that the closing quote must not be escaped.
    fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        let bytes = self.input.as_bytes();
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match bytes.get(i) {
                None => {
                    return Err(JsonError {
                        offset: i,
                        kind: JsonErrorKind::UnexpectedEnd,
                    })
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(0..=0x1F) => {
                    return Err(JsonError {
                        offset: i,
                        kind: JsonErrorKind::BadString,
                    })
                }
                Some(_) => i += 1,
            }
        }
        // The input is a str and the quotes are ASCII, so these are char boundaries.
        let raw = &self.input[start..i];
        self.pos = i + 1;
        let string = JsonStr { raw, escaped };
        if escaped {
            // Reject bad escapes now, so callers that only compare never see them.
            string.validate().map_err(|kind| JsonError {
                offset: start,
                kind,
            })?;
        }
        Ok(string)
    }

    fn number(&mut self) -> Result<&'a str, JsonError> {
        let bytes = self.input.as_bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let begin = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - begin
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        let int_digits = digits(&mut i);
        let bad = |at| JsonError {
            offset: at,
            kind: JsonErrorKind::BadNumber,
        };
        if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
            return Err(bad(start));
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(bad(i));
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(bad(i));
            }
        }
        self.pos = i;
        Ok(&self.input[start..i])
    }
}

/// A number token as a [`Scalar`]: an integer when written without fraction or exponent.
pub fn number_scalar(text: &str) -> Option<Scalar<'static>> {
    if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
        // Up to 38 digits fit an i128; longer integers are out of every format's range.
        if let Ok(integer) = text.parse::<i128>() {
            return Some(Scalar::Integer(integer));
        }
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Scalar::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn tokens(input: &str) -> Result<Vec<Token<'_>>, JsonError> {
        let mut reader = JsonReader::new(input);
        let mut out = Vec::new();
        while let Some(token) = reader.next_token()? {
            out.push(token);
        }
        Ok(out)
    }

    fn kind(input: &str) -> JsonErrorKind {
        tokens(input).unwrap_err().kind
    }

    #[test]
    fn reads_a_write_request() {
        let body = r#"{"characteristics":[{"aid":1,"iid":9,"value":true},{"aid":1,"iid":10,"value":-5.5e1,"r":true}]}"#;
        let all = tokens(body).unwrap();
        assert_eq!(all.len(), 23);
        assert!(matches!(all[1], Token::Key(k) if k.eq_str("characteristics")));
        assert_eq!(all[9], Token::Bool(true));
        assert_eq!(all[17], Token::Number("-5.5e1"));
        assert_eq!(number_scalar("-5.5e1"), Some(Scalar::Float(-55.0)));
        assert_eq!(number_scalar("42"), Some(Scalar::Integer(42)));
        assert_eq!(
            number_scalar("18446744073709551615"),
            Some(Scalar::Integer(u64::MAX.into()))
        );
    }

    #[test]
    fn empty_containers_and_scalars() {
        assert_eq!(
            tokens("{}").unwrap(),
            [Token::ObjectStart, Token::ObjectEnd]
        );
        assert_eq!(
            tokens(" [ ] ").unwrap(),
            [Token::ArrayStart, Token::ArrayEnd]
        );
        assert_eq!(tokens("null").unwrap(), [Token::Null]);
        assert_eq!(tokens("[1,[2],{}]").unwrap().len(), 8);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(kind(""), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind("{"), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind(r#"{"a":1,}"#), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind("[1,]"), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind("[1 2]"), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind(r#"{"a" 1}"#), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind(r#"{1:1}"#), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind("[1]]"), JsonErrorKind::TrailingData);
        assert_eq!(kind("{}{}"), JsonErrorKind::TrailingData);
        assert_eq!(kind("tru"), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind("01"), JsonErrorKind::BadNumber);
        assert_eq!(kind("1."), JsonErrorKind::BadNumber);
        assert_eq!(kind("-"), JsonErrorKind::BadNumber);
        assert_eq!(kind("1e"), JsonErrorKind::BadNumber);
        assert_eq!(kind("+1"), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind("\"a\u{1}\""), JsonErrorKind::BadString);
        assert_eq!(kind(r#""\x""#), JsonErrorKind::BadString);
        // After plain characters too (found by the serde_json comparison in properties.rs).
        assert_eq!(kind(r#""{\{""#), JsonErrorKind::BadString);
        assert_eq!(kind(r#""ab\n\q""#), JsonErrorKind::BadString);
        assert_eq!(kind(r#""ab\u12""#), JsonErrorKind::BadString);
        assert_eq!(kind(r#""\ud800""#), JsonErrorKind::BadString);
        assert_eq!(kind("\"abc"), JsonErrorKind::UnexpectedEnd);
        assert_eq!(kind("[}"), JsonErrorKind::UnexpectedByte);
        assert_eq!(kind("{]"), JsonErrorKind::UnexpectedByte);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(tokens(&deep).is_ok());
        let deeper = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(kind(&deeper), JsonErrorKind::TooDeep);
    }

    #[test]
    fn escapes_decode_on_demand() {
        let all = tokens(r#"["plain","a\"b\\c\/d\n","\u00e9\ud83d\ude00"]"#).unwrap();
        let Token::Str(plain) = all[1] else { panic!() };
        assert_eq!(plain.as_plain(), Some("plain"));
        let Token::Str(escaped) = all[2] else {
            panic!()
        };
        assert_eq!(escaped.as_plain(), None);
        let mut buf = [0u8; 32];
        assert_eq!(escaped.decode_into(&mut buf), Ok("a\"b\\c/d\n"));
        let Token::Str(unicode) = all[3] else {
            panic!()
        };
        assert_eq!(unicode.decode_into(&mut buf), Ok("é😀"));
        assert_eq!(
            unicode.decode_into(&mut [0u8; 3]),
            Err(JsonErrorKind::BufferTooSmall)
        );
        let key = tokens(r#"{"\u0061id":1}"#).unwrap();
        assert!(matches!(key[1], Token::Key(k) if k.eq_str("aid")));
    }

    #[test]
    fn skipping_unknown_values() {
        let mut reader = JsonReader::new(r#"{"x":{"y":[1,{"z":2}]},"aid":3}"#);
        assert_eq!(reader.next_token().unwrap(), Some(Token::ObjectStart));
        assert!(matches!(reader.next_token().unwrap(), Some(Token::Key(_))));
        let first = reader.next_token().unwrap().unwrap();
        reader.skip_value(first).unwrap();
        assert!(matches!(reader.next_token().unwrap(), Some(Token::Key(k)) if k.eq_str("aid")));
        assert_eq!(reader.next_token().unwrap(), Some(Token::Number("3")));
        assert_eq!(reader.next_token().unwrap(), Some(Token::ObjectEnd));
        assert_eq!(reader.next_token().unwrap(), None);
    }

    #[test]
    fn huge_and_odd_numbers() {
        assert_eq!(number_scalar("1e400"), None);
        assert_eq!(
            number_scalar("123456789012345678901234567890123456789012"),
            Some(Scalar::Float(1.2345678901234568e41))
        );
        assert_eq!(number_scalar("-0"), Some(Scalar::Integer(0)));
    }
}
