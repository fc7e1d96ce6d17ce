//! The controller's requests, written into caller buffers.
//!
//! [`Connection`](super::Connection) uses these; they are public so that a test can send
//! a request the connection would not, or send it in pieces of its choosing.

use core::fmt::Write as _;

use crate::catalog::value::Scalar;
use crate::http::{content_type, BufferTooSmall, Cursor};
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
    /// A read or a write of no characteristics.
    NoItems,
    /// A float that is NaN or infinite: JSON has no such number.
    NonFiniteFloat,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::BufferTooSmall { required } => {
                write!(f, "request buffer too small: {required} bytes needed")
            }
            WriteError::IntegerOutOfRange => f.write_str("integer value out of range"),
            WriteError::EmptyWrite => f.write_str("a write item needs a value or `ev`"),
            WriteError::NoItems => f.write_str("a request of no characteristics"),
            WriteError::NonFiniteFloat => f.write_str("a float that is NaN or infinite"),
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

/// The head of a request: request line, `Host`, and for a request with a body its
/// Content-Type and Content-Length. `target` writes the method and the path with its
/// query.
fn write_head(
    out: &mut [u8],
    target: impl Fn(&mut Cursor<'_>) -> core::fmt::Result,
    host: &str,
    body: Option<(&str, usize)>,
) -> Result<usize, BufferTooSmall> {
    let mut cursor = Cursor::new(out);
    // The cursor counts what does not fit instead of failing.
    let _ = target(&mut cursor);
    // h11 (HAP-python) and Node's HTTP server (HAP-NodeJS) refuse an HTTP/1.1 request
    // without Host, as RFC 9112 §3.2 says a server must.
    let _ = write!(cursor, " HTTP/1.1\r\nHost: {host}\r\n");
    let _ = match body {
        Some((content_type, len)) => write!(
            cursor,
            "Content-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n"
        ),
        None => cursor.write_str("\r\n"),
    };
    cursor.finish()
}

/// Writes a POST of `body` to `path` on `host`, with `content_type`.
pub fn post(
    out: &mut [u8],
    host: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    let target = |c: &mut Cursor<'_>| write!(c, "POST {path}");
    let head = write_head(out, target, host, Some((content_type, body.len()))).map_err(
        |BufferTooSmall { required }| BufferTooSmall {
            required: required + body.len(),
        },
    )?;
    let total = head + body.len();
    let space = out
        .get_mut(head..total)
        .ok_or(BufferTooSmall { required: total })?;
    space.copy_from_slice(body);
    Ok(total)
}

/// Writes a POST of a TLV8 pairing message to `path` (`/pair-setup`, `/pair-verify` or
/// `/pairings`) on `host`.
pub fn post_tlv(
    out: &mut [u8],
    host: &str,
    path: &str,
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    post(out, host, path, content_type::PAIRING_TLV8, body)
}

/// Writes any request: `method path`, a Content-Type if given, and a Content-Length
/// unless it is a GET without a body, and no Host. For the requests the other builders
/// do not write (other methods and paths, bodies of any shape), as a test of a server
/// sends them.
pub fn custom(
    out: &mut [u8],
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    let mut cursor = Cursor::new(out);
    let _ = write!(cursor, "{method} {path} HTTP/1.1\r\n");
    if let Some(content_type) = content_type {
        let _ = write!(cursor, "Content-Type: {content_type}\r\n");
    }
    if method != "GET" || !body.is_empty() {
        let _ = write!(cursor, "Content-Length: {}\r\n", body.len());
    }
    let _ = cursor.write_str("\r\n");
    let head = cursor
        .finish()
        .map_err(|BufferTooSmall { required }| BufferTooSmall {
            required: required + body.len(),
        })?;
    let end = head + body.len();
    let dest = out
        .get_mut(head..end)
        .ok_or(BufferTooSmall { required: end })?;
    dest.copy_from_slice(body);
    Ok(end)
}

/// Writes `POST /identify` to `host`, which an unpaired accessory answers with 204.
pub fn identify(out: &mut [u8], host: &str) -> Result<usize, BufferTooSmall> {
    // No Content-Type: there is no body.
    let mut cursor = Cursor::new(out);
    let _ = write!(
        cursor,
        "POST /identify HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    );
    cursor.finish()
}

/// Writes `GET /accessories` to `host`.
pub fn get_accessories(out: &mut [u8], host: &str) -> Result<usize, BufferTooSmall> {
    write_head(out, |c| c.write_str("GET /accessories"), host, None)
}

/// Writes `GET /characteristics?id=1.9,1.10` to `host`, with the query options asked
/// for.
pub fn get_characteristics(
    out: &mut [u8],
    host: &str,
    ids: &[CharacteristicId],
    options: ReadOptions,
) -> Result<usize, WriteError> {
    if ids.is_empty() {
        return Err(WriteError::NoItems);
    }
    let target = |c: &mut Cursor<'_>| {
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
        Ok(())
    };
    Ok(write_head(out, target, host, None)?)
}

/// Writes `PUT /characteristics` with `writes` to `host`.
pub fn put_characteristics(
    out: &mut [u8],
    host: &str,
    writes: &[Write<'_>],
) -> Result<usize, WriteError> {
    if writes.is_empty() {
        return Err(WriteError::NoItems);
    }
    let target = |c: &mut Cursor<'_>| c.write_str("PUT /characteristics");
    let json = Some((content_type::HAP_JSON, 0));
    // The body's length is known only once written: write it behind room for the
    // longest head (a Content-Length as long as the buffer's), then move it up.
    let longest_head = write_head(
        &mut [],
        target,
        host,
        Some((content_type::HAP_JSON, out.len())),
    )
    .err()
    .map_or(0, |too_small| too_small.required);
    let Some(body_space) = out.get_mut(longest_head..) else {
        let shortest = write_head(&mut [], target, host, json)
            .err()
            .map_or(0, |too_small| too_small.required);
        return Err(WriteError::BufferTooSmall {
            required: shortest.max(out.len() + 1),
        });
    };
    let mut writer = JsonWriter::new(body_space);
    let written = write_items(&mut writer, writes);
    let body_len = writer.len();
    match written {
        Ok(()) => {}
        Err(ItemsError::Full) => {
            return Err(WriteError::BufferTooSmall {
                required: out.len() + 1,
            })
        }
        Err(ItemsError::Other(error)) => return Err(error),
    }
    let head_len = write_head(
        &mut [],
        target,
        host,
        Some((content_type::HAP_JSON, body_len)),
    )
    .err()
    .map_or(0, |too_small| too_small.required);
    out.copy_within(longest_head..longest_head + body_len, head_len);
    // Fits: it is no longer than the head room left.
    write_head(
        &mut out[..head_len],
        target,
        host,
        Some((content_type::HAP_JSON, body_len)),
    )?;
    Ok(head_len + body_len)
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
                Scalar::Float(f) if !f.is_finite() => {
                    return Err(ItemsError::Other(WriteError::NonFiniteFloat))
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

    const HOST: &str = "192.0.2.7:51826";

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
        let len = get_characteristics(&mut out, HOST, &[id(1, 9), id(2, 10)], options).unwrap();
        let Status::Complete(request) = parse_request(&out[..len], 1024).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/characteristics");
        assert_eq!(request.query, Some("id=1.9,2.10&meta=1&ev=1"));
        let mut small = [0u8; 20];
        assert_eq!(
            get_characteristics(&mut small, HOST, &[id(1, 9), id(2, 10)], options),
            Err(WriteError::BufferTooSmall { required: len })
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
        let len = put_characteristics(&mut out, HOST, &writes).unwrap();
        let Status::Complete(request) = parse_request(&out[..len], 1024).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(request.method, Method::Put);
        assert_eq!(request.len, len);
        assert_eq!(request.content_type, Some(&b"application/hap+json"[..]));
        assert_eq!(
            request.body,
            br#"{"characteristics":[{"aid":1,"iid":9,"value":true},{"aid":1,"iid":10,"value":"a\"b","ev":false,"r":true},{"aid":1,"iid":11,"ev":true}]}"#
        );
        let huge = [Write::value(id(1, 9), Scalar::Integer(i128::MAX))];
        assert_eq!(
            put_characteristics(&mut out, HOST, &huge),
            Err(WriteError::IntegerOutOfRange)
        );
        let empty = [Write {
            value: None,
            ev: None,
            response: false,
            id: id(1, 1),
        }];
        assert_eq!(
            put_characteristics(&mut out, HOST, &empty),
            Err(WriteError::EmptyWrite)
        );
        assert!(matches!(
            put_characteristics(&mut out[..140], HOST, &writes),
            Err(WriteError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn posts_carry_their_body_and_length() {
        let mut out = [0u8; 256];
        let mut body = [0u8; 64];
        let body_len = remove_pairing_body(&mut body, b"guest").unwrap();
        let len = post_tlv(&mut out, HOST, "/pairings", &body[..body_len]).unwrap();
        let Status::Complete(request) = parse_request(&out[..len], 1024).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!((request.method, request.path), (Method::Post, "/pairings"));
        assert_eq!(request.body, &body[..body_len]);
        assert_eq!(request.len, len);
        let len = identify(&mut out, HOST).unwrap();
        assert_eq!(
            &out[..len],
            b"POST /identify HTTP/1.1\r\nHost: 192.0.2.7:51826\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn every_request_names_its_host() {
        let mut out = [0u8; 512];
        let mut lens = [0usize; 5];
        lens[0] = identify(&mut out, HOST).unwrap();
        let write = [Write::value(id(1, 9), Scalar::Bool(true))];
        for (index, len) in lens.iter_mut().enumerate().skip(1) {
            *len = match index {
                1 => get_accessories(&mut out, HOST).unwrap(),
                2 => get_characteristics(&mut out, HOST, &[id(1, 9)], ReadOptions::default())
                    .unwrap(),
                3 => put_characteristics(&mut out, HOST, &write).unwrap(),
                _ => post_tlv(&mut out, HOST, "/pair-verify", &[6, 1, 1]).unwrap(),
            };
            let Status::Complete(request) = parse_request(&out[..*len], 1024).unwrap() else {
                panic!("incomplete")
            };
            assert_eq!(request.len, *len);
            let text = core::str::from_utf8(&out[..*len]).unwrap();
            assert!(text.contains("\r\nHost: 192.0.2.7:51826\r\n"), "{text}");
        }
    }

    #[test]
    fn empty_requests_and_non_finite_floats_are_refused() {
        let mut out = [0u8; 512];
        assert_eq!(
            get_characteristics(&mut out, HOST, &[], ReadOptions::default()),
            Err(WriteError::NoItems)
        );
        assert_eq!(
            put_characteristics(&mut out, HOST, &[]),
            Err(WriteError::NoItems)
        );
        for float in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let write = [Write::value(id(1, 9), Scalar::Float(float))];
            assert_eq!(
                put_characteristics(&mut out, HOST, &write),
                Err(WriteError::NonFiniteFloat)
            );
        }
    }

    #[test]
    fn a_write_reports_the_room_it_needs() {
        let writes = [Write::value(id(1, 9), Scalar::Str("a long enough value"))];
        let mut big = [0u8; 512];
        let len = put_characteristics(&mut big, HOST, &writes).unwrap();
        // Fits exactly once the room for the longest Content-Length is there too.
        for size in 0..len + 8 {
            let mut out = [0u8; 600];
            match put_characteristics(&mut out[..size], HOST, &writes) {
                Ok(written) => assert_eq!(&out[..written], &big[..len]),
                Err(WriteError::BufferTooSmall { required }) => assert!(required > size),
                Err(other) => panic!("{other:?}"),
            }
        }
    }
}
