//! The accessory's answers: HTTP responses and `EVENT/1.0` messages, and their bodies.
//!
//! [`parse_message`] finds one message at the front of a buffer; incomplete input is
//! [`Status::Partial`]. A chunked body (the server streams `/accessories` that way) is
//! joined in place. The body parsers ([`Characteristics`], [`top_level_status`],
//! [`PairingsReply`]) never panic and borrow from the body.

use crate::http::Status;
use crate::json::{number_scalar, JsonError, JsonReader, JsonStr, Token};
use crate::pairing::{check_rejected, expect_state, tlv_type, PairingError};
use crate::status::HapStatus;
use crate::tlv::Tlv;

/// The most header lines a response may carry.
pub const MAX_RESPONSE_HEADERS: usize = 16;

/// Why an answer from the accessory cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not an HTTP/1.1 response or an `EVENT/1.0` message.
    Malformed,
    /// A bad or duplicate Content-Length, or a malformed chunk.
    BadLength,
    /// The body is not the JSON expected.
    Json(JsonError),
    /// The body is JSON, but not of the shape expected.
    UnexpectedShape,
}

impl core::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ResponseError::Malformed => f.write_str("malformed HTTP response"),
            ResponseError::BadLength => f.write_str("bad body length or chunk"),
            ResponseError::Json(error) => write!(f, "bad JSON body: {error}"),
            ResponseError::UnexpectedShape => f.write_str("JSON body of an unexpected shape"),
        }
    }
}

impl core::error::Error for ResponseError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ResponseError::Json(error) => Some(error),
            _ => None,
        }
    }
}

impl From<JsonError> for ResponseError {
    fn from(error: JsonError) -> Self {
        ResponseError::Json(error)
    }
}

/// One message found by [`parse_message`]: its body is `buf[body_start..body_end]`
/// after the call, and it occupied `buf[..len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Whether it is an `EVENT/1.0` rather than a response.
    pub event: bool,
    /// The status code.
    pub status: u16,
    /// Where the body starts.
    pub body_start: usize,
    /// Where the body ends (a chunked body is joined in place).
    pub body_end: usize,
    /// The bytes the message occupied at the front of the buffer, to drop once used.
    pub len: usize,
}

enum BodyLen {
    Length(usize),
    Chunked,
}

/// Finds the message at the front of `buf`. A chunked body is joined in place once it is
/// complete, so `buf` must be mutable.
pub fn parse_message(buf: &mut [u8]) -> Result<Status<Message>, ResponseError> {
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
        // A status line is short; a long run without one is garbage.
        return if buf.len() > 256 {
            Err(ResponseError::Malformed)
        } else {
            Ok(Status::Partial)
        };
    };
    let (event, status) = parse_status_line(&buf[..line_end])?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let headers_start = line_end + 2;
    let (headers_len, headers) = match httparse::parse_headers(&buf[headers_start..], &mut headers)
    {
        Ok(httparse::Status::Complete(parsed)) => parsed,
        Ok(httparse::Status::Partial) => return Ok(Status::Partial),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let mut body_len = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            if body_len.is_some() {
                return Err(ResponseError::BadLength);
            }
            body_len = Some(BodyLen::Length(parse_decimal(header.value)?));
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !header.value.eq_ignore_ascii_case(b"chunked") || body_len.is_some() {
                return Err(ResponseError::BadLength);
            }
            body_len = Some(BodyLen::Chunked);
        }
    }
    let body_start = headers_start + headers_len;
    match body_len.unwrap_or(BodyLen::Length(0)) {
        BodyLen::Length(len) => {
            let Some(end) = body_start.checked_add(len) else {
                return Err(ResponseError::BadLength);
            };
            if buf.len() < end {
                return Ok(Status::Partial);
            }
            Ok(Status::Complete(Message {
                event,
                status,
                body_start,
                body_end: end,
                len: end,
            }))
        }
        BodyLen::Chunked => match join_chunks(buf, body_start)? {
            Status::Partial => Ok(Status::Partial),
            Status::Complete((body_end, len)) => Ok(Status::Complete(Message {
                event,
                status,
                body_start,
                body_end,
                len,
            })),
        },
    }
}

/// `HTTP/1.1 200 OK` or `EVENT/1.0 200 OK`: whether it is an event, and the code.
fn parse_status_line(line: &[u8]) -> Result<(bool, u16), ResponseError> {
    let event = if line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 ") {
        false
    } else if line.starts_with(b"EVENT/1.0 ") {
        true
    } else {
        return Err(ResponseError::Malformed);
    };
    let rest = &line[if event { 10 } else { 9 }..];
    let code = rest.get(..3).ok_or(ResponseError::Malformed)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| *b != b' ') {
        return Err(ResponseError::Malformed);
    }
    let status = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Ok((event, status))
}

fn parse_decimal(value: &[u8]) -> Result<usize, ResponseError> {
    crate::http::parse_decimal(value.trim_ascii()).ok_or(ResponseError::BadLength)
}

/// Checks that the chunked body starting at `start` is complete, then moves the chunks'
/// data together. Returns where the joined body ends and where the message ended.
fn join_chunks(buf: &mut [u8], start: usize) -> Result<Status<(usize, usize)>, ResponseError> {
    // First pass: find the end without changing anything, as more bytes may be needed.
    let mut at = start;
    loop {
        let Some((size, data)) = chunk_header(buf, at)? else {
            return Ok(Status::Partial);
        };
        if size == 0 {
            // Trailer lines, then an empty line.
            let mut line = data;
            loop {
                let Some(end) = find_crlf(buf, line) else {
                    return Ok(Status::Partial);
                };
                if end == line {
                    at = end + 2;
                    break;
                }
                line = end + 2;
            }
            break;
        }
        let Some(after) = data.checked_add(size).and_then(|end| end.checked_add(2)) else {
            return Err(ResponseError::BadLength);
        };
        if buf.len() < after {
            return Ok(Status::Partial);
        }
        if &buf[after - 2..after] != b"\r\n" {
            return Err(ResponseError::BadLength);
        }
        at = after;
    }
    let message_end = at;
    // Second pass: join the data, which only ever moves towards the front.
    let mut read = start;
    let mut write = start;
    loop {
        let Some((size, data)) = chunk_header(buf, read)? else {
            return Err(ResponseError::BadLength);
        };
        if size == 0 {
            break;
        }
        buf.copy_within(data..data + size, write);
        write += size;
        read = data + size + 2;
    }
    Ok(Status::Complete((write, message_end)))
}

/// The size and data offset of the chunk whose size line starts at `at`, or `None` if
/// the line is not complete yet.
fn chunk_header(buf: &[u8], at: usize) -> Result<Option<(usize, usize)>, ResponseError> {
    let Some(end) = find_crlf(buf, at) else {
        if buf.len().saturating_sub(at) > 32 {
            return Err(ResponseError::BadLength);
        }
        return Ok(None);
    };
    let line = &buf[at..end];
    let digits = line
        .iter()
        .position(|b| *b == b';')
        .map_or(line, |semicolon| &line[..semicolon])
        .trim_ascii();
    if digits.is_empty() || digits.len() > 8 {
        return Err(ResponseError::BadLength);
    }
    let mut size = 0usize;
    for digit in digits {
        let value = (*digit as char)
            .to_digit(16)
            .ok_or(ResponseError::BadLength)?;
        size = size * 16 + value as usize;
    }
    Ok(Some((size, end + 2)))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|at| from + at)
}

/// A value as the accessory reported it. Numbers keep their JSON form's kind; strings
/// keep their escapes until decoded ([`JsonStr::decode_into`]). A `bool`
/// characteristic may arrive as `1` or `0` (HomeKitADK writes them so, in
/// `HAPIPAccessoryProtocol.c`): read it with [`ReportedValue::as_bool`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReportedValue<'a> {
    /// `true` or `false`.
    Bool(bool),
    /// A number written without fraction or exponent.
    Integer(i128),
    /// Any other number.
    Float(f64),
    /// A string (also how `tlv8` and `data` values travel).
    Str(JsonStr<'a>),
    /// `null`.
    Null,
}

impl ReportedValue<'_> {
    /// The value of a `bool` characteristic: `true` or `false`, or `1` or `0` as
    /// HomeKitADK and others write it; `None` for anything else.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            ReportedValue::Bool(b) => Some(b),
            ReportedValue::Integer(0) => Some(false),
            ReportedValue::Integer(1) => Some(true),
            _ => None,
        }
    }
}

/// One item of a `characteristics` array: a read's result, a write's status, or an
/// event's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CharacteristicReport<'a> {
    /// The accessory.
    pub aid: u64,
    /// The characteristic.
    pub iid: u64,
    /// The value, if the item carries one.
    pub value: Option<ReportedValue<'a>>,
    /// The item's status: [`HapStatus::Success`] when absent. A status HAP does not
    /// define reads as `None`.
    pub status: Option<HapStatus>,
    /// The subscription state, if the item carries `ev`.
    pub ev: Option<bool>,
}

/// The items of a `{"characteristics": [...]}` body, checked once and then read
/// without errors. Keys other than those of [`CharacteristicReport`] are skipped.
#[derive(Clone, Debug)]
pub struct Characteristics<'a> {
    reader: JsonReader<'a>,
    remaining: usize,
}

impl<'a> Characteristics<'a> {
    /// Checks `body` and counts its items. An empty body (a 204) has none.
    pub fn parse(body: &'a [u8]) -> Result<Self, ResponseError> {
        let text = core::str::from_utf8(body).map_err(|_| ResponseError::UnexpectedShape)?;
        let mut reader = JsonReader::new(text);
        if text.trim_ascii().is_empty() {
            return Ok(Self {
                reader,
                remaining: 0,
            });
        }
        enter_characteristics(&mut reader)?;
        let start = reader.clone();
        let mut remaining = 0;
        while next_item(&mut reader)?.is_some() {
            remaining += 1;
        }
        // The rest of the top-level object, then nothing.
        while reader.next_token()?.is_some() {}
        Ok(Self {
            reader: start,
            remaining,
        })
    }

    /// How many items remain.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Whether no items remain.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Characteristics<'a> {
    type Item = CharacteristicReport<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Checked by `parse`, so neither fails nor ends early.
        next_item(&mut self.reader).ok().flatten()
    }
}

/// Reads up to the `[` of the top-level object's `characteristics` key.
fn enter_characteristics(reader: &mut JsonReader<'_>) -> Result<(), ResponseError> {
    if reader.next_token()? != Some(Token::ObjectStart) {
        return Err(ResponseError::UnexpectedShape);
    }
    loop {
        match reader.next_token()? {
            Some(Token::Key(key)) => {
                let value = reader.next_token()?.ok_or(ResponseError::UnexpectedShape)?;
                if key.eq_str("characteristics") {
                    return match value {
                        Token::ArrayStart => Ok(()),
                        _ => Err(ResponseError::UnexpectedShape),
                    };
                }
                reader.skip_value(value)?;
            }
            _ => return Err(ResponseError::UnexpectedShape),
        }
    }
}

/// The next item of the array, or `None` at its end.
fn next_item<'a>(
    reader: &mut JsonReader<'a>,
) -> Result<Option<CharacteristicReport<'a>>, ResponseError> {
    match reader.next_token()? {
        Some(Token::ArrayEnd) => return Ok(None),
        Some(Token::ObjectStart) => {}
        _ => return Err(ResponseError::UnexpectedShape),
    }
    let (mut aid, mut iid) = (None, None);
    let mut item = CharacteristicReport {
        aid: 0,
        iid: 0,
        value: None,
        status: Some(HapStatus::Success),
        ev: None,
    };
    loop {
        let key = match reader.next_token()? {
            Some(Token::ObjectEnd) => break,
            Some(Token::Key(key)) => key,
            _ => return Err(ResponseError::UnexpectedShape),
        };
        let value = reader.next_token()?.ok_or(ResponseError::UnexpectedShape)?;
        if key.eq_str("aid") {
            aid = Some(unsigned(value)?);
        } else if key.eq_str("iid") {
            iid = Some(unsigned(value)?);
        } else if key.eq_str("value") {
            item.value = Some(reported_value(value)?);
        } else if key.eq_str("status") {
            item.status = status_of(value)?;
        } else if key.eq_str("ev") {
            item.ev = Some(match value {
                Token::Bool(b) => b,
                _ => return Err(ResponseError::UnexpectedShape),
            });
        } else {
            reader.skip_value(value)?;
        }
    }
    match (aid, iid) {
        (Some(aid), Some(iid)) => Ok(Some(CharacteristicReport { aid, iid, ..item })),
        _ => Err(ResponseError::UnexpectedShape),
    }
}

/// A `value` token as a [`ReportedValue`].
pub(super) fn reported_value(token: Token<'_>) -> Result<ReportedValue<'_>, ResponseError> {
    Ok(match token {
        Token::Bool(b) => ReportedValue::Bool(b),
        Token::Null => ReportedValue::Null,
        Token::Str(s) => ReportedValue::Str(s),
        Token::Number(text) => match number_scalar(text) {
            Some(crate::catalog::value::Scalar::Integer(i)) => ReportedValue::Integer(i),
            Some(crate::catalog::value::Scalar::Float(f)) => ReportedValue::Float(f),
            _ => return Err(ResponseError::UnexpectedShape),
        },
        // Values are scalars in HAP; anything else is not an answer we know.
        _ => return Err(ResponseError::UnexpectedShape),
    })
}

pub(super) fn unsigned(token: Token<'_>) -> Result<u64, ResponseError> {
    match token {
        Token::Number(text) => text.parse().map_err(|_| ResponseError::UnexpectedShape),
        _ => Err(ResponseError::UnexpectedShape),
    }
}

fn status_of(token: Token<'_>) -> Result<Option<HapStatus>, ResponseError> {
    match token {
        Token::Number(text) => {
            let code: i32 = text.parse().map_err(|_| ResponseError::UnexpectedShape)?;
            Ok(HapStatus::from_code(code))
        }
        _ => Err(ResponseError::UnexpectedShape),
    }
}

/// The `status` of a body such as `{"status": -70401}` (how `/identify` and errors of
/// whole requests are answered); `Ok(None)` for an empty body or one without it. A
/// status HAP does not define is [`ResponseError::UnexpectedShape`].
pub fn top_level_status(body: &[u8]) -> Result<Option<HapStatus>, ResponseError> {
    let text = core::str::from_utf8(body).map_err(|_| ResponseError::UnexpectedShape)?;
    if text.trim_ascii().is_empty() {
        return Ok(None);
    }
    let mut reader = JsonReader::new(text);
    if reader.next_token()? != Some(Token::ObjectStart) {
        return Err(ResponseError::UnexpectedShape);
    }
    let mut status = None;
    while let Some(token) = reader.next_token()? {
        let Token::Key(key) = token else { continue };
        let value = reader.next_token()?.ok_or(ResponseError::UnexpectedShape)?;
        if key.eq_str("status") && status.is_none() {
            status = Some(status_of(value)?.ok_or(ResponseError::UnexpectedShape)?);
        } else {
            reader.skip_value(value)?;
        }
    }
    Ok(status)
}

/// A pairing listed by `/pairings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedPairing<'a> {
    /// The controller's pairing identifier.
    pub id: &'a [u8],
    /// Its long-term public key.
    pub public_key: [u8; 32],
    /// Whether it is an admin.
    pub admin: bool,
}

/// The answer to a `/pairings` request.
#[derive(Clone, Copy, Debug)]
pub struct PairingsReply<'a> {
    tlv: Tlv<'a>,
}

impl<'a> PairingsReply<'a> {
    /// Checks the reply: state 2, and no error code; a refusal (an error code) is
    /// [`PairingError::Rejected`].
    pub fn parse(body: &'a [u8]) -> Result<Self, PairingError> {
        let tlv = Tlv::parse(body)?;
        // A refusal first: its state is 2 too, but some accessories get that wrong.
        check_rejected(&tlv)?;
        expect_state(&tlv, 2)?;
        let reply = Self { tlv };
        // Check every entry now, so that iterating cannot fail.
        for entry in reply.entries() {
            entry?;
        }
        Ok(reply)
    }

    /// The pairings listed, in the accessory's order (none for an add or a remove).
    pub fn pairings(&self) -> impl Iterator<Item = ListedPairing<'a>> + 'a {
        self.entries().filter_map(Result::ok)
    }

    fn entries(&self) -> impl Iterator<Item = Result<ListedPairing<'a>, PairingError>> + 'a {
        let mut items = self.tlv.items().peekable();
        core::iter::from_fn(move || {
            // Skip to the next identifier; separators and the state come between.
            let id = loop {
                let item = items.next()?;
                if item.ty() == tlv_type::IDENTIFIER {
                    break item;
                }
            };
            let Some(id) = id.contiguous() else {
                return Some(Err(PairingError::InvalidItem(tlv_type::IDENTIFIER)));
            };
            let mut public_key = None;
            let mut admin = None;
            while let Some(item) = items.peek() {
                match item.ty() {
                    tlv_type::PUBLIC_KEY => public_key = item.to_array::<32>(),
                    tlv_type::PERMISSIONS => admin = item.to_uint_le().map(|p| p & 1 == 1),
                    tlv_type::SEPARATOR | tlv_type::IDENTIFIER => break,
                    _ => {}
                }
                items.next();
            }
            Some(match (public_key, admin) {
                (Some(public_key), Some(admin)) => Ok(ListedPairing {
                    id,
                    public_key,
                    admin,
                }),
                (None, _) => Err(PairingError::InvalidItem(tlv_type::PUBLIC_KEY)),
                (_, None) => Err(PairingError::InvalidItem(tlv_type::PERMISSIONS)),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::ErrorCode;
    use std::vec::Vec;

    #[test]
    fn bools_are_read_as_adk_writes_them_too() {
        for (value, expected) in [
            (ReportedValue::Bool(true), Some(true)),
            (ReportedValue::Integer(1), Some(true)),
            (ReportedValue::Integer(0), Some(false)),
            (ReportedValue::Integer(2), None),
            (ReportedValue::Null, None),
        ] {
            assert_eq!(value.as_bool(), expected, "{value:?}");
        }
        // A refusal with a wrong state is still a refusal.
        assert_eq!(
            PairingsReply::parse(&[0x06, 1, 4, 0x07, 1, 7]).unwrap_err(),
            PairingError::Rejected(ErrorCode::Busy)
        );
    }

    fn whole(bytes: &[u8]) -> (Message, Vec<u8>) {
        let mut buf = bytes.to_vec();
        let Status::Complete(message) = parse_message(&mut buf).unwrap() else {
            panic!("partial")
        };
        let body = buf[message.body_start..message.body_end].to_vec();
        (message, body)
    }

    #[test]
    fn responses_events_and_prefixes() {
        let response = b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/hap+json\r\nContent-Length: 2\r\n\r\n{}";
        let (message, body) = whole(response);
        assert_eq!(
            (message.event, message.status, message.len),
            (false, 207, response.len())
        );
        assert_eq!(body, b"{}");
        let event = b"EVENT/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1";
        let (message, body) = whole(event);
        assert_eq!(
            (message.event, message.status, message.len),
            (true, 200, 42)
        );
        assert_eq!(body, b"abc");
        for end in 0..response.len() {
            let mut prefix = response[..end].to_vec();
            assert_eq!(parse_message(&mut prefix), Ok(Status::Partial), "{end}");
        }
        let (message, body) = whole(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((message.status, body.len()), (204, 0));
    }

    #[test]
    fn chunked_bodies_are_joined_in_place() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA;x=y\r\n, world!!!\r\n0\r\n\r\nrest";
        let (message, body) = whole(chunked);
        assert_eq!(body, b"hello, world!!!");
        assert_eq!(message.len, chunked.len() - 4);
        for end in 0..message.len {
            let mut prefix = chunked[..end].to_vec();
            assert_eq!(parse_message(&mut prefix), Ok(Status::Partial), "{end}");
            assert_eq!(prefix, &chunked[..end], "a partial body is left alone");
        }
        let mut bad =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n".to_vec();
        assert_eq!(parse_message(&mut bad), Err(ResponseError::BadLength));
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 20\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        ] {
            assert!(parse_message(&mut bad.to_vec()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn characteristics_items_with_values_and_statuses() {
        let body = br#"{"characteristics":[{"aid":1,"iid":9,"value":true},{"iid":10,"aid":1,"status":-70402},{"aid":2,"iid":3,"value":"a\nb","ev":false,"perms":["pr"]},{"aid":2,"iid":4,"value":-2.5,"status":-1}]}"#;
        let items: Vec<_> = Characteristics::parse(body).unwrap().collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].value, Some(ReportedValue::Bool(true)));
        assert_eq!(items[0].status, Some(HapStatus::Success));
        assert_eq!((items[1].aid, items[1].iid), (1, 10));
        assert_eq!(
            items[1].status,
            Some(HapStatus::ServiceCommunicationFailure)
        );
        let Some(ReportedValue::Str(text)) = items[2].value else {
            panic!("a string")
        };
        assert_eq!(text.decode_into(&mut [0u8; 8]), Ok("a\nb"));
        assert_eq!(items[2].ev, Some(false));
        assert_eq!(items[3].value, Some(ReportedValue::Float(-2.5)));
        assert_eq!(items[3].status, None);
        assert_eq!(Characteristics::parse(b"").unwrap().len(), 0);
        for bad in [
            &br#"{"characteristics":[{"aid":1}]}"#[..],
            br#"{"characteristics":{}}"#,
            br#"{"characteristics":[{"aid":1,"iid":2,"value":[1]}]}"#,
            br#"{"characteristics":[]} x"#,
            br#"[]"#,
        ] {
            assert!(Characteristics::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn top_level_statuses() {
        assert_eq!(
            top_level_status(br#"{"status":-70401}"#),
            Ok(Some(HapStatus::InsufficientPrivileges))
        );
        assert_eq!(top_level_status(b""), Ok(None));
        assert_eq!(top_level_status(br#"{"x":[1,{"status":1}]}"#), Ok(None));
        assert!(top_level_status(br#"{"status":5}"#).is_err());
    }

    #[test]
    fn pairings_replies() {
        let list = [
            0x06, 1, 2, 0x01, 2, b'a', b'b', 0x03, 32, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
            7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0x0B, 1, 1, 0xFF, 0, 0x01, 1, b'c',
            0x03, 32, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
            8, 8, 8, 8, 8, 8, 0x0B, 1, 0,
        ];
        let reply = PairingsReply::parse(&list).unwrap();
        let listed: Vec<_> = reply.pairings().collect();
        assert_eq!(listed.len(), 2);
        assert_eq!((listed[0].id, listed[0].admin), (&b"ab"[..], true));
        assert_eq!(
            (listed[1].id, listed[1].public_key, listed[1].admin),
            (&b"c"[..], [8; 32], false)
        );
        assert_eq!(
            PairingsReply::parse(&[0x06, 1, 2, 0x07, 1, 2]).unwrap_err(),
            PairingError::Rejected(ErrorCode::Authentication)
        );
        assert_eq!(
            PairingsReply::parse(&[0x06, 1, 2])
                .unwrap()
                .pairings()
                .count(),
            0
        );
        assert!(PairingsReply::parse(&[0x06, 1, 2, 0x01, 1, b'a']).is_err());
    }
}
