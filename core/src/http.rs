//! The HTTP/1.1 subset HAP uses, without a heap.
//!
//! [`parse_request`] reads one request from the front of a buffer that the connection
//! fills as bytes arrive. Incomplete input is [`Status::Partial`], not an error, so a
//! request may arrive split anywhere. A request is refused when its head or body would
//! exceed the connection's limit. Following HomeKitADK, malformed requests, a
//! Content-Length that is not a plain decimal number, and a duplicate Content-Length or
//! Content-Type are [`HttpError`]s after which the connection closes without an answer.
//! A request with a body must say how long it is; chunked requests are refused.
//!
//! [`write_response`] and [`write_head`] write a status line, headers and body into a
//! caller buffer.

use core::fmt::Write as _;

/// The default limit on a request's size, head and body together.
pub const DEFAULT_MAX_REQUEST_LEN: usize = 8 * 1024;
/// The most header lines a request may carry.
pub const MAX_HEADERS: usize = 16;

/// Why a request cannot be served; the connection closes without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The bytes are not an HTTP/1.1 request.
    Malformed,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// Content-Length or Content-Type appears twice.
    DuplicateHeader,
    /// Content-Length is not a decimal number, or a chunked body was sent.
    BadLength,
    /// The request exceeds the size limit.
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl core::fmt::Display for HttpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HttpError::Malformed => f.write_str("malformed HTTP request"),
            HttpError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} headers"),
            HttpError::DuplicateHeader => f.write_str("duplicate Content-Length or Content-Type"),
            HttpError::BadLength => f.write_str("missing, invalid or chunked body length"),
            HttpError::TooLarge { limit } => write!(f, "request larger than {limit} bytes"),
        }
    }
}

impl core::error::Error for HttpError {}

/// Whether a whole request is present yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// More bytes are needed.
    Partial,
    /// A whole request.
    Complete(T),
}

/// The request methods HAP uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// PUT.
    Put,
    /// POST.
    Post,
    /// Any other method; answered with 405 where the path exists.
    Other,
}

/// One parsed request, borrowing from the input buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: &'a str,
    /// The query after `?`, if any.
    pub query: Option<&'a str>,
    /// The Content-Type, if given.
    pub content_type: Option<&'a [u8]>,
    /// The body.
    pub body: &'a [u8],
    /// Bytes the request occupies at the front of the buffer, head and body.
    pub len: usize,
}

/// Parses the request at the front of `buf`, refusing requests over `max_len` bytes.
pub fn parse_request(buf: &[u8], max_len: usize) -> Result<Status<Request<'_>>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_len => {
            return Err(HttpError::TooLarge { limit: max_len })
        }
        Ok(httparse::Status::Partial) => return Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(_) => return Err(HttpError::Malformed),
    };
    if parsed.version != Some(1) {
        return Err(HttpError::Malformed);
    }
    let mut content_length: Option<usize> = None;
    let mut content_type: Option<&[u8]> = None;
    for header in parsed.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(HttpError::DuplicateHeader);
            }
            content_length = Some(parse_length(header.value)?);
        } else if header.name.eq_ignore_ascii_case("content-type") {
            if content_type.is_some() {
                return Err(HttpError::DuplicateHeader);
            }
            content_type = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::BadLength);
        }
    }
    let body_len = content_length.unwrap_or(0);
    let len = head_len.checked_add(body_len).filter(|len| *len <= max_len);
    let Some(len) = len else {
        return Err(HttpError::TooLarge { limit: max_len });
    };
    if buf.len() < len {
        return Ok(Status::Partial);
    }
    let target = parsed.path.ok_or(HttpError::Malformed)?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let method = match parsed.method {
        Some("GET") => Method::Get,
        Some("PUT") => Method::Put,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    Ok(Status::Complete(Request {
        method,
        path,
        query,
        content_type,
        body: &buf[head_len..len],
        len,
    }))
}

/// A plain decimal Content-Length: digits only, no sign, no spaces, no overflow.
fn parse_length(value: &[u8]) -> Result<usize, HttpError> {
    parse_decimal(value).ok_or(HttpError::BadLength)
}

/// A plain decimal number of up to ten digits that fits a `usize`: no sign, no spaces.
/// Checked, because on a 32-bit target ten digits can exceed `usize` and a wrapped
/// length would let the peer choose where the next message starts.
pub(crate) fn parse_decimal(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0usize, |acc, d| {
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// The status codes HAP answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    /// 200 OK.
    Ok,
    /// 204 No Content.
    NoContent,
    /// 207 Multi-Status.
    MultiStatus,
    /// 400 Bad Request.
    BadRequest,
    /// 404 Not Found.
    NotFound,
    /// 405 Method Not Allowed.
    MethodNotAllowed,
    /// 422 Unprocessable Entity.
    UnprocessableEntity,
    /// 470 Connection Authorization Required: the endpoint needs a verified session.
    ConnectionAuthorizationRequired,
    /// 500 Internal Server Error.
    InternalServerError,
    /// 503 Service Unavailable.
    ServiceUnavailable,
}

impl StatusCode {
    /// The status line's number and reason.
    pub const fn parts(self) -> (u16, &'static str) {
        match self {
            StatusCode::Ok => (200, "OK"),
            StatusCode::NoContent => (204, "No Content"),
            StatusCode::MultiStatus => (207, "Multi-Status"),
            StatusCode::BadRequest => (400, "Bad Request"),
            StatusCode::NotFound => (404, "Not Found"),
            StatusCode::MethodNotAllowed => (405, "Method Not Allowed"),
            StatusCode::UnprocessableEntity => (422, "Unprocessable Entity"),
            StatusCode::ConnectionAuthorizationRequired => {
                (470, "Connection Authorization Required")
            }
            StatusCode::InternalServerError => (500, "Internal Server Error"),
            StatusCode::ServiceUnavailable => (503, "Service Unavailable"),
        }
    }
}

/// Content types of HAP bodies.
pub mod content_type {
    /// JSON bodies.
    pub const HAP_JSON: &str = "application/hap+json";
    /// TLV8 bodies of pairing requests.
    pub const PAIRING_TLV8: &str = "application/pairing+tlv8";
}

/// The output buffer is too small; `required` bytes are needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// The size needed.
    pub required: usize,
}

/// Writes a response head into `out`: `HTTP/1.1` (or `EVENT/1.0` for events), the
/// status, Content-Type when there is a body, and Content-Length. Returns its length.
pub fn write_head(
    out: &mut [u8],
    protocol: &str,
    status: StatusCode,
    content_type: Option<&str>,
    body_len: usize,
) -> Result<usize, BufferTooSmall> {
    head(out, protocol, status, content_type, Some(body_len))
}

/// Writes the head of a response whose body follows in chunks
/// (`Transfer-Encoding: chunked`), for bodies streamed before their length is known.
pub fn write_chunked_head(
    out: &mut [u8],
    status: StatusCode,
    content_type: &str,
) -> Result<usize, BufferTooSmall> {
    head(out, "HTTP/1.1", status, Some(content_type), None)
}

/// A head with a Content-Length, or chunked when the length is `None`.
fn head(
    out: &mut [u8],
    protocol: &str,
    status: StatusCode,
    content_type: Option<&str>,
    body_len: Option<usize>,
) -> Result<usize, BufferTooSmall> {
    let mut cursor = Cursor::new(out);
    let (code, reason) = status.parts();
    let _ = write!(cursor, "{protocol} {code} {reason}\r\n");
    if let Some(content_type) = content_type {
        let _ = write!(cursor, "Content-Type: {content_type}\r\n");
    }
    let _ = match body_len {
        Some(len) => write!(cursor, "Content-Length: {len}\r\n\r\n"),
        None => write!(cursor, "Transfer-Encoding: chunked\r\n\r\n"),
    };
    cursor.finish()
}

/// Writes a whole response: head and `body`.
pub fn write_response(
    out: &mut [u8],
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    let head = write_head(out, "HTTP/1.1", status, content_type, body.len()).map_err(
        |BufferTooSmall { required }| BufferTooSmall {
            required: required + body.len(),
        },
    )?;
    let total = head + body.len();
    let Some(space) = out.get_mut(head..total) else {
        return Err(BufferTooSmall { required: total });
    };
    space.copy_from_slice(body);
    Ok(total)
}

/// A `fmt::Write` over a byte slice that counts what did not fit, so that a failed
/// write still says how much room it needed.
pub(crate) struct Cursor<'a> {
    out: &'a mut [u8],
    len: usize,
    overflow: usize,
}

impl<'a> Cursor<'a> {
    /// An empty cursor at the start of `out`.
    pub(crate) fn new(out: &'a mut [u8]) -> Self {
        Self {
            out,
            len: 0,
            overflow: 0,
        }
    }

    /// The length written, or the room everything written would have needed.
    pub(crate) fn finish(self) -> Result<usize, BufferTooSmall> {
        match self.overflow {
            0 => Ok(self.len),
            extra => Err(BufferTooSmall {
                required: self.len + extra,
            }),
        }
    }
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.overflow > 0 || self.len + s.len() > self.out.len() {
            self.overflow += s.len();
            return Ok(());
        }
        self.out[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUT: &[u8] = b"PUT /characteristics HTTP/1.1\r\nHost: lights.local\r\nContent-Type: application/hap+json\r\nContent-Length: 49\r\n\r\n{\"characteristics\":[{\"aid\":1,\"iid\":9,\"value\":1}]}";

    #[test]
    fn whole_request() {
        let Status::Complete(request) = parse_request(PUT, DEFAULT_MAX_REQUEST_LEN).unwrap() else {
            panic!()
        };
        assert_eq!(request.method, Method::Put);
        assert_eq!(request.path, "/characteristics");
        assert_eq!(request.query, None);
        assert_eq!(request.content_type, Some(&b"application/hap+json"[..]));
        assert_eq!(request.body, &PUT[PUT.len() - 49..]);
        assert_eq!(request.len, PUT.len());
    }

    #[test]
    fn every_prefix_is_partial() {
        for end in 0..PUT.len() {
            assert_eq!(
                parse_request(&PUT[..end], DEFAULT_MAX_REQUEST_LEN),
                Ok(Status::Partial),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn pipelined_requests_are_taken_one_at_a_time() {
        let mut two = PUT.to_vec();
        two.extend_from_slice(b"GET /characteristics?id=1.9,1.10&ev=1 HTTP/1.1\r\n\r\n");
        let Status::Complete(first) = parse_request(&two, DEFAULT_MAX_REQUEST_LEN).unwrap() else {
            panic!()
        };
        let Status::Complete(second) =
            parse_request(&two[first.len..], DEFAULT_MAX_REQUEST_LEN).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (second.method, second.path, second.query),
            (Method::Get, "/characteristics", Some("id=1.9,1.10&ev=1"))
        );
        assert_eq!(first.len + second.len, two.len());
    }

    #[test]
    fn duplicate_framing_headers_are_refused() {
        let twice_length =
            b"POST /pairings HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(
            parse_request(twice_length, 8192),
            Err(HttpError::DuplicateHeader)
        );
        let twice_type = b"POST /pairings HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n";
        assert_eq!(
            parse_request(twice_type, 8192),
            Err(HttpError::DuplicateHeader)
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        // Spaces around the value are optional whitespace in HTTP and are allowed.
        for value in ["-1", "+3", "3 3", "0x10", "", "99999999999", "1,1"] {
            let request =
                std::format!("POST /pair-setup HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
            let result = parse_request(request.as_bytes(), 8192);
            assert!(
                matches!(result, Err(HttpError::BadLength | HttpError::Malformed)),
                "{value:?}: {result:?}"
            );
        }
        let chunked = b"POST /pair-setup HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_request(chunked, 8192), Err(HttpError::BadLength));
    }

    #[test]
    fn oversize_requests_are_refused_early() {
        let absurd = b"PUT /characteristics HTTP/1.1\r\nContent-Length: 4294967295\r\n\r\n";
        assert_eq!(
            parse_request(absurd, 8192),
            Err(HttpError::TooLarge { limit: 8192 })
        );
        // A head that never ends is partial until it passes the limit.
        let endless_head = [b'a'; 9000];
        assert_eq!(
            parse_request(&endless_head[..8192], 8192),
            Ok(Status::Partial)
        );
        assert_eq!(
            parse_request(&endless_head, 8192),
            Err(HttpError::TooLarge { limit: 8192 })
        );
        let mut long_header = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long_header.extend_from_slice(&[b'a'; 8200]);
        assert_eq!(
            parse_request(&long_header, 8192),
            Err(HttpError::TooLarge { limit: 8192 })
        );
    }

    #[test]
    fn garbage_and_other_versions_are_malformed() {
        assert_eq!(
            parse_request(
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                8192
            ),
            Err(HttpError::Malformed)
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.0\r\n\r\n", 8192),
            Err(HttpError::Malformed)
        );
        let many: std::string::String = (0..20).map(|i| std::format!("X-{i}: y\r\n")).collect();
        let request = std::format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_request(request.as_bytes(), 8192),
            Err(HttpError::TooManyHeaders)
        );
    }

    #[test]
    fn responses_and_events() {
        let mut out = [0u8; 128];
        let len = write_response(&mut out, StatusCode::NoContent, None, b"").unwrap();
        assert_eq!(
            &out[..len],
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
        );
        let body = br#"{"characteristics":[]}"#;
        let len = write_head(
            &mut out,
            "EVENT/1.0",
            StatusCode::Ok,
            Some(content_type::HAP_JSON),
            body.len(),
        )
        .unwrap();
        assert_eq!(
            &out[..len],
            b"EVENT/1.0 200 OK\r\nContent-Type: application/hap+json\r\nContent-Length: 22\r\n\r\n"
        );
        let mut small = [0u8; 20];
        let required = write_response(
            &mut [0u8; 200],
            StatusCode::Ok,
            Some(content_type::HAP_JSON),
            body,
        )
        .unwrap();
        assert_eq!(
            write_response(
                &mut small,
                StatusCode::Ok,
                Some(content_type::HAP_JSON),
                body
            ),
            Err(BufferTooSmall { required })
        );
        let len = write_response(
            &mut out,
            StatusCode::ConnectionAuthorizationRequired,
            None,
            b"",
        )
        .unwrap();
        assert!(out[..len].starts_with(b"HTTP/1.1 470 Connection Authorization Required\r\n"));
    }
}
