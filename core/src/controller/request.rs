//! The controller's requests, written into caller buffers.
//!
//! [`Connection`](super::Connection) uses these; they are public so that a test can send
//! a request the connection would not, or send it in pieces of its choosing.

use core::fmt::Write as _;

use crate::catalog::value::Scalar;
use crate::http::{content_type, BufferTooSmall};
use crate::json::JsonWriter;
use crate::pairing::{method, tlv_type};
use crate::tlv::TlvWriter;

/// A characteristic, by accessory id and instance id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CharacteristicId {
    /// The accessory (`aid`).
    pub aid: u64,
    /// The characteristic (`iid`).
    pub iid: u64,
}

/// What a read asks for besides the values (the query's `meta`, `perms`, `type` and
/// `ev`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Format, unit and limits.
    pub meta: bool,
    /// Permissions.
    pub perms: bool,
    /// Characteristic types.
    pub types: bool,
    /// Whether this controller is subscribed to each.
    pub ev: bool,
}

/// One item of a write (`PUT /characteristics`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Write<'a> {
    /// The characteristic.
    pub id: CharacteristicId,
    /// The value to write, if any.
    pub value: Option<Scalar<'a>>,
    /// Subscribe (`true`) or unsubscribe (`false`) from its events, if given.
    pub ev: Option<bool>,
    /// Ask for a write response (`"r": true`): the accessory answers with a value.
    pub response: bool,
}

impl<'a> Write<'a> {
    /// A write of `value`.
    pub fn value(id: CharacteristicId, value: Scalar<'a>) -> Self {
        Self {
            id,
            value: Some(value),
            ev: None,
            response: false,
        }
    }

    /// A subscription change without a value.
    pub fn subscribe(id: CharacteristicId, on: bool) -> Self {
        Self {
            id,
            value: None,
            ev: Some(on),
            response: false,
        }
    }
}

/// Why a request could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The buffer is too small; `required` bytes are needed, or more where the size
    /// could not be known in advance.
    BufferTooSmall {
        /// The size needed.
        required: usize,
    },
    /// An integer value outside what JSON numbers of HAP carry (`i64` and `u64`).
    IntegerOutOfRange,
    /// A write item with neither a value nor a subscription change.
    EmptyWrite,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::BufferTooSmall { required } => {
                write!(f, "request buffer too small: {required} bytes needed")
            }
            WriteError::IntegerOutOfRange => f.write_str("integer value out of range"),
            WriteError::EmptyWrite => f.write_str("a write item needs a value or `ev`"),
        }
    }
}

impl core::error::Error for WriteError {}

impl From<BufferTooSmall> for WriteError {
    fn from(error: BufferTooSmall) -> Self {
        WriteError::BufferTooSmall {
            required: error.required,
        }
    }
}

/// A `fmt::Write` over a byte slice that fails when full.
struct Cursor<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dest = self.out.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The most a request head other than a GET's takes: the longest request line and
/// Content-Type, and a Content-Length of up to ten digits.
const MAX_HEAD_LEN: usize = 128;

/// Writes `method path` with a body of `body_len` bytes that already sits at
/// `out[MAX_HEAD_LEN..]`, moving it up behind the head. Returns the request's length.
fn finish_with_body(
    out: &mut [u8],
    method: &str,
    path: &str,
    content_type: &str,
    body_len: usize,
) -> Result<usize, BufferTooSmall> {
    let mut head = [0u8; MAX_HEAD_LEN];
    let mut cursor = Cursor {
        out: &mut head,
        len: 0,
    };
    write!(
        cursor,
        "{method} {path} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .map_err(|_| BufferTooSmall {
        required: MAX_HEAD_LEN + body_len,
    })?;
    let head_len = cursor.len;
    out.copy_within(MAX_HEAD_LEN..MAX_HEAD_LEN + body_len, head_len);
    out[..head_len].copy_from_slice(&head[..head_len]);
    Ok(head_len + body_len)
}

/// Writes a POST of `body` to `path` with `content_type`.
pub fn post(
    out: &mut [u8],
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    let required = MAX_HEAD_LEN + body.len();
    let Some(space) = out.get_mut(MAX_HEAD_LEN..required) else {
        return Err(BufferTooSmall { required });
    };
    space.copy_from_slice(body);
    finish_with_body(out, "POST", path, content_type, body.len())
}

/// Writes a POST of a TLV8 pairing message to `path` (`/pair-setup`, `/pair-verify` or
/// `/pairings`).
pub fn post_tlv(out: &mut [u8], path: &str, body: &[u8]) -> Result<usize, BufferTooSmall> {
    post(out, path, content_type::PAIRING_TLV8, body)
}

/// Writes any request: `method path`, a Content-Type if given, and a Content-Length
/// unless it is a GET without a body. For the requests the other builders do not write
/// (other methods and paths, bodies of any shape), as a test sends them.
pub fn custom(
    out: &mut [u8],
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    let head = write_get_like(out, |c| {
        write!(c, "{method} {path} HTTP/1.1\r\n")?;
        if let Some(content_type) = content_type {
            write!(c, "Content-Type: {content_type}\r\n")?;
        }
        if method != "GET" || !body.is_empty() {
            write!(c, "Content-Length: {}\r\n", body.len())?;
        }
        c.write_str("\r\n")
    })
    .map_err(|error| BufferTooSmall {
        required: error.required + body.len(),
    })?;
    let end = head + body.len();
    let dest = out
        .get_mut(head..end)
        .ok_or(BufferTooSmall { required: end })?;
    dest.copy_from_slice(body);
    Ok(end)
}

/// Writes `POST /identify`, which an unpaired accessory answers with 204.
pub fn identify(out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    write_get_like(out, |c| {
        c.write_str("POST /identify HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    })
}

/// Writes `GET /accessories`.
pub fn get_accessories(out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    write_get_like(out, |c| c.write_str("GET /accessories HTTP/1.1\r\n\r\n"))
}

/// Writes `GET /characteristics?id=1.9,1.10` with the query options asked for.
pub fn get_characteristics(
    out: &mut [u8],
    ids: &[CharacteristicId],
    options: ReadOptions,
) -> Result<usize, BufferTooSmall> {
    write_get_like(out, |c| {
        c.write_str("GET /characteristics?id=")?;
        for (index, id) in ids.iter().enumerate() {
            let comma = if index == 0 { "" } else { "," };
            write!(c, "{comma}{}.{}", id.aid, id.iid)?;
        }
        for (asked, name) in [
            (options.meta, "meta"),
            (options.perms, "perms"),
            (options.types, "type"),
            (options.ev, "ev"),
        ] {
            if asked {
                write!(c, "&{name}=1")?;
            }
        }
        c.write_str(" HTTP/1.1\r\n\r\n")
    })
}

/// Writes a bodiless request with `fill`; on overflow, reports a size that would have
/// fitted, found by writing it into nothing.
fn write_get_like(
    out: &mut [u8],
    fill: impl Fn(&mut dyn core::fmt::Write) -> core::fmt::Result,
) -> Result<usize, BufferTooSmall> {
    let mut cursor = Cursor { out, len: 0 };
    if fill(&mut cursor).is_ok() {
        return Ok(cursor.len);
    }
    let mut counter = Counter(0);
    let _ = fill(&mut counter);
    Err(BufferTooSmall {
        required: counter.0,
    })
}

/// Counts what would be written.
struct Counter(usize);

impl core::fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes `PUT /characteristics` with `writes`.
pub fn put_characteristics(out: &mut [u8], writes: &[Write<'_>]) -> Result<usize, WriteError> {
    let too_small = |out: &[u8]| WriteError::BufferTooSmall {
        required: out.len() + 1,
    };
    let Some(body_space) = out.get_mut(MAX_HEAD_LEN..) else {
        return Err(too_small(out));
    };
    let mut json = JsonWriter::new(body_space);
    let written = write_items(&mut json, writes);
    let body_len = json.len();
    match written {
        Ok(()) => {}
        Err(ItemsError::Full) => return Err(too_small(out)),
        Err(ItemsError::Other(error)) => return Err(error),
    }
    Ok(finish_with_body(
        out,
        "PUT",
        "/characteristics",
        content_type::HAP_JSON,
        body_len,
    )?)
}

enum ItemsError {
    Full,
    Other(WriteError),
}

impl From<crate::json::Full> for ItemsError {
    fn from(_: crate::json::Full) -> Self {
        ItemsError::Full
    }
}

fn write_items(json: &mut JsonWriter<'_>, writes: &[Write<'_>]) -> Result<(), ItemsError> {
    json.raw("{\"characteristics\":[")?;
    for (index, write) in writes.iter().enumerate() {
        if write.value.is_none() && write.ev.is_none() {
            return Err(ItemsError::Other(WriteError::EmptyWrite));
        }
        if index > 0 {
            json.raw(",")?;
        }
        json.raw("{\"aid\":")?;
        json.uint(write.id.aid)?;
        json.raw(",\"iid\":")?;
        json.uint(write.id.iid)?;
        if let Some(value) = write.value {
            json.raw(",\"value\":")?;
            match value {
                Scalar::Bool(b) => json.bool(b)?,
                Scalar::Integer(i) => {
                    if let Ok(signed) = i64::try_from(i) {
                        json.int(signed)?;
                    } else if let Ok(unsigned) = u64::try_from(i) {
                        json.uint(unsigned)?;
                    } else {
                        return Err(ItemsError::Other(WriteError::IntegerOutOfRange));
                    }
                }
                Scalar::Float(f) => json.float(f)?,
                Scalar::Str(s) => json.string(s)?,
            }
        }
        if let Some(ev) = write.ev {
            json.raw(",\"ev\":")?;
            json.bool(ev)?;
        }
        if write.response {
            json.raw(",\"r\":true")?;
        }
        json.raw("}")?;
    }
    json.raw("]}")?;
    Ok(())
}

/// Writes the TLV body of a `/pairings` list request.
pub fn list_pairings_body(out: &mut [u8]) -> Result<usize, WriteError> {
    let mut writer = TlvWriter::new(out);
    writer
        .u8(tlv_type::STATE, 1)
        .and_then(|w| w.u8(tlv_type::METHOD, method::LIST_PAIRINGS))
        .map_err(tlv_full)?;
    Ok(writer.len())
}

/// Writes the TLV body of a `/pairings` request that adds controller `id` with its
/// long-term `public_key`, as an admin or not.
pub fn add_pairing_body(
    out: &mut [u8],
    id: &[u8],
    public_key: &[u8; 32],
    admin: bool,
) -> Result<usize, WriteError> {
    let mut writer = TlvWriter::new(out);
    writer
        .u8(tlv_type::STATE, 1)
        .and_then(|w| w.u8(tlv_type::METHOD, method::ADD_PAIRING))
        .and_then(|w| w.item(tlv_type::IDENTIFIER, id))
        .and_then(|w| w.item(tlv_type::PUBLIC_KEY, public_key))
        .and_then(|w| w.u8(tlv_type::PERMISSIONS, u8::from(admin)))
        .map_err(tlv_full)?;
    Ok(writer.len())
}

/// Writes the TLV body of a `/pairings` request that removes controller `id`.
pub fn remove_pairing_body(out: &mut [u8], id: &[u8]) -> Result<usize, WriteError> {
    let mut writer = TlvWriter::new(out);
    writer
        .u8(tlv_type::STATE, 1)
        .and_then(|w| w.u8(tlv_type::METHOD, method::REMOVE_PAIRING))
        .and_then(|w| w.item(tlv_type::IDENTIFIER, id))
        .map_err(tlv_full)?;
    Ok(writer.len())
}

fn tlv_full(error: crate::tlv::TlvError) -> WriteError {
    match error {
        crate::tlv::TlvError::BufferTooSmall { required } => {
            WriteError::BufferTooSmall { required }
        }
        // The writer fails only for room.
        _ => WriteError::BufferTooSmall { required: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Method, Status};

    fn id(aid: u64, iid: u64) -> CharacteristicId {
        CharacteristicId { aid, iid }
    }

    #[test]
    fn a_custom_request_carries_its_method_headers_and_body() {
        let mut out = [0u8; 128];
        let len = custom(
            &mut out,
            "DELETE",
            "/x",
            Some("application/hap+json"),
            b"{}",
        )
        .unwrap();
        assert_eq!(
            &out[..len],
            b"DELETE /x HTTP/1.1\r\nContent-Type: application/hap+json\r\nContent-Length: 2\r\n\r\n{}"
        );
        let len = custom(&mut out, "GET", "/accessories", None, b"").unwrap();
        assert_eq!(&out[..len], b"GET /accessories HTTP/1.1\r\n\r\n");
        let mut small = [0u8; 30];
        assert_eq!(
            custom(&mut small, "PUT", "/characteristics", None, &[b' '; 10]),
            Err(BufferTooSmall { required: 63 })
        );
    }

    #[test]
    fn reads_carry_ids_and_options_in_the_query() {
        let mut out = [0u8; 128];
        let options = ReadOptions {
            meta: true,
            ev: true,
            ..ReadOptions::default()
        };
        let len = get_characteristics(&mut out, &[id(1, 9), id(2, 10)], options).unwrap();
        let Status::Complete(request) = parse_request(&out[..len], 1024).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/characteristics");
        assert_eq!(request.query, Some("id=1.9,2.10&meta=1&ev=1"));
        let mut small = [0u8; 20];
        assert_eq!(
            get_characteristics(&mut small, &[id(1, 9), id(2, 10)], options),
            Err(BufferTooSmall { required: len })
        );
    }

    #[test]
    fn writes_are_json_with_their_options() {
        let mut out = [0u8; 512];
        let writes = [
            Write::value(id(1, 9), Scalar::Bool(true)),
            Write {
                response: true,
                ev: Some(false),
                ..Write::value(id(1, 10), Scalar::Str("a\"b"))
            },
            Write::subscribe(id(1, 11), true),
        ];
        let len = put_characteristics(&mut out, &writes).unwrap();
        let Status::Complete(request) = parse_request(&out[..len], 1024).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(request.method, Method::Put);
        assert_eq!(request.content_type, Some(&b"application/hap+json"[..]));
        assert_eq!(
            request.body,
            br#"{"characteristics":[{"aid":1,"iid":9,"value":true},{"aid":1,"iid":10,"value":"a\"b","ev":false,"r":true},{"aid":1,"iid":11,"ev":true}]}"#
        );
        let huge = [Write::value(id(1, 9), Scalar::Integer(i128::MAX))];
        assert_eq!(
            put_characteristics(&mut out, &huge),
            Err(WriteError::IntegerOutOfRange)
        );
        let empty = [Write {
            value: None,
            ev: None,
            response: false,
            id: id(1, 1),
        }];
        assert_eq!(
            put_characteristics(&mut out, &empty),
            Err(WriteError::EmptyWrite)
        );
        assert!(matches!(
            put_characteristics(&mut out[..140], &writes),
            Err(WriteError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn posts_carry_their_body_and_length() {
        let mut out = [0u8; 256];
        let mut body = [0u8; 64];
        let body_len = remove_pairing_body(&mut body, b"guest").unwrap();
        let len = post_tlv(&mut out, "/pairings", &body[..body_len]).unwrap();
        let Status::Complete(request) = parse_request(&out[..len], 1024).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!((request.method, request.path), (Method::Post, "/pairings"));
        assert_eq!(request.body, &body[..body_len]);
        assert_eq!(request.len, len);
        let len = identify(&mut out).unwrap();
        assert_eq!(
            &out[..len],
            b"POST /identify HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
