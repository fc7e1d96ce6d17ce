//! The bodies and queries of `/characteristics` and `/prepare` requests.
//!
//! Each request is checked whole when it arrives; a malformed one is answered 400 before
//! anything is applied. Items are then read again one at a time, by index, straight from
//! the request still in the input buffer, so that no table of items is needed.

use crate::catalog::value::{Scalar, ValueError};
use crate::json::{number_scalar, JsonReader, Token};

/// The request is malformed: answer 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// GET `/characteristics?id=1.9,1.10&meta=1&perms=1&type=1&ev=1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadQuery<'a> {
    ids: &'a str,
    /// How many ids there are.
    pub count: usize,
    /// Include format, unit and limits.
    pub meta: bool,
    /// Include permissions.
    pub perms: bool,
    /// Include the type.
    pub kind: bool,
    /// Include whether this connection is subscribed.
    pub ev: bool,
}

impl<'a> ReadQuery<'a> {
    pub(crate) fn parse(query: Option<&'a str>) -> Result<Self, Malformed> {
        let mut read = ReadQuery {
            ids: "",
            count: 0,
            meta: false,
            perms: false,
            kind: false,
            ev: false,
        };
        let mut has_ids = false;
        for pair in query.ok_or(Malformed)?.split('&') {
            let (key, value) = pair.split_once('=').ok_or(Malformed)?;
            let flag = || match value {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(Malformed),
            };
            match key {
                "id" if !has_ids => {
                    has_ids = true;
                    read.ids = value;
                }
                "meta" => read.meta = flag()?,
                "perms" => read.perms = flag()?,
                "type" => read.kind = flag()?,
                "ev" => read.ev = flag()?,
                _ => return Err(Malformed),
            }
        }
        if !has_ids {
            return Err(Malformed);
        }
        for id in read.ids.split(',') {
            parse_id(id)?;
            read.count += 1;
        }
        Ok(read)
    }

    /// The ids, in order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        // `parse` checked every id.
        self.ids.split(',').filter_map(|id| parse_id(id).ok())
    }

    /// The id at `index`.
    pub(crate) fn id(&self, index: usize) -> Option<(u64, u64)> {
        self.ids().nth(index)
    }
}

/// `aid.iid`, both decimal and positive.
fn parse_id(id: &str) -> Result<(u64, u64), Malformed> {
    let (aid, iid) = id.split_once('.').ok_or(Malformed)?;
    let number = |text: &str| -> Result<u64, Malformed> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Malformed);
        }
        text.parse::<u64>().map_err(|_| Malformed)
    };
    Ok((number(aid)?, number(iid)?))
}

/// One item of a PUT `/characteristics` body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WriteItem<'a> {
    pub aid: u64,
    pub iid: u64,
    /// The value token, if the item writes one.
    pub value: Option<Token<'a>>,
    /// Subscribe (`true`) or unsubscribe (`false`).
    pub ev: Option<bool>,
    /// Whether the controller wants the value back (write response).
    pub response: bool,
}

/// A PUT `/characteristics` body: `{"characteristics":[...],"pid":n}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriteBody<'a> {
    body: &'a str,
    /// How many items there are.
    pub count: usize,
    /// The timed write this executes, if any.
    pub pid: Option<u64>,
}

impl<'a> WriteBody<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        let body = core::str::from_utf8(body).map_err(|_| Malformed)?;
        let mut parsed = WriteBody {
            body,
            count: 0,
            pid: None,
        };
        let mut has_items = false;
        let mut reader = JsonReader::new(body);
        expect(&mut reader, Token::ObjectStart)?;
        loop {
            match reader.next_token().map_err(|_| Malformed)? {
                Some(Token::ObjectEnd) => break,
                Some(Token::Key(key)) if key.eq_str("characteristics") && !has_items => {
                    has_items = true;
                    expect(&mut reader, Token::ArrayStart)?;
                    while read_item(&mut reader)?.is_some() {
                        parsed.count += 1;
                    }
                }
                Some(Token::Key(key)) if key.eq_str("pid") => {
                    parsed.pid = Some(uint(&mut reader)?);
                }
                Some(Token::Key(_)) => skip(&mut reader)?,
                _ => return Err(Malformed),
            }
        }
        if !has_items || reader.next_token().map_err(|_| Malformed)?.is_some() {
            return Err(Malformed);
        }
        Ok(parsed)
    }

    /// The items, in order, read in one pass.
    pub(crate) fn items(&self) -> impl Iterator<Item = WriteItem<'a>> + 'a {
        let mut reader = JsonReader::new(self.body);
        let mut in_array = false;
        core::iter::from_fn(move || {
            if !in_array {
                seek_items(&mut reader)?;
                in_array = true;
            }
            // `parse` checked every item.
            read_item(&mut reader).ok()?
        })
    }

    /// The item at `index`.
    pub(crate) fn item(&self, index: usize) -> Option<WriteItem<'a>> {
        self.items().nth(index)
    }
}

/// Moves `reader` into the `characteristics` array.
fn seek_items(reader: &mut JsonReader<'_>) -> Option<()> {
    expect(reader, Token::ObjectStart).ok()?;
    loop {
        match reader.next_token().ok()?? {
            Token::Key(key) if key.eq_str("characteristics") => {
                return expect(reader, Token::ArrayStart).ok();
            }
            Token::Key(_) => skip(reader).ok()?,
            _ => return None,
        }
    }
}

/// PUT `/prepare`: `{"ttl":ms,"pid":n}`.
pub(crate) fn parse_prepare(body: &[u8]) -> Result<(u64, u64), Malformed> {
    let body = core::str::from_utf8(body).map_err(|_| Malformed)?;
    let mut reader = JsonReader::new(body);
    expect(&mut reader, Token::ObjectStart)?;
    let (mut ttl, mut pid) = (None, None);
    loop {
        match reader.next_token().map_err(|_| Malformed)? {
            Some(Token::ObjectEnd) => break,
            Some(Token::Key(key)) if key.eq_str("ttl") => ttl = Some(uint(&mut reader)?),
            Some(Token::Key(key)) if key.eq_str("pid") => pid = Some(uint(&mut reader)?),
            Some(Token::Key(_)) => skip(&mut reader)?,
            _ => return Err(Malformed),
        }
    }
    if reader.next_token().map_err(|_| Malformed)?.is_some() {
        return Err(Malformed);
    }
    Ok((ttl.ok_or(Malformed)?, pid.ok_or(Malformed)?))
}

/// Converts a value token to a scalar, decoding escapes into `buf`.
pub(crate) fn scalar<'b>(token: Token<'_>, buf: &'b mut [u8]) -> Result<Scalar<'b>, ValueError> {
    match token {
        Token::Bool(b) => Ok(Scalar::Bool(b)),
        Token::Number(text) => number_scalar(text).ok_or(ValueError::OutOfFormatRange),
        Token::Str(text) => text
            .decode_into(buf)
            .map(Scalar::Str)
            .map_err(|_| ValueError::TooLong),
        _ => Err(ValueError::WrongType),
    }
}

/// Reads the next item of the `characteristics` array, or `None` at its end.
fn read_item<'a>(reader: &mut JsonReader<'a>) -> Result<Option<WriteItem<'a>>, Malformed> {
    match reader.next_token().map_err(|_| Malformed)? {
        Some(Token::ArrayEnd) => return Ok(None),
        Some(Token::ObjectStart) => {}
        _ => return Err(Malformed),
    }
    let (mut aid, mut iid) = (None, None);
    let mut item = WriteItem {
        aid: 0,
        iid: 0,
        value: None,
        ev: None,
        response: false,
    };
    loop {
        let key = match reader.next_token().map_err(|_| Malformed)? {
            Some(Token::ObjectEnd) => break,
            Some(Token::Key(key)) => key,
            _ => return Err(Malformed),
        };
        if key.eq_str("aid") {
            aid = Some(uint(reader)?);
        } else if key.eq_str("iid") {
            iid = Some(uint(reader)?);
        } else if key.eq_str("value") {
            let token = reader
                .next_token()
                .map_err(|_| Malformed)?
                .ok_or(Malformed)?;
            // Containers are not values; keep the first token so the item fails with
            // -70410, and skip the rest.
            reader.skip_value(token).map_err(|_| Malformed)?;
            item.value = Some(token);
        } else if key.eq_str("ev") {
            item.ev = Some(flag(reader)?);
        } else if key.eq_str("r") {
            item.response = flag(reader)?;
        } else {
            skip(reader)?;
        }
    }
    item.aid = aid.ok_or(Malformed)?;
    item.iid = iid.ok_or(Malformed)?;
    Ok(Some(item))
}

fn expect(reader: &mut JsonReader<'_>, wanted: Token<'_>) -> Result<(), Malformed> {
    match reader.next_token() {
        Ok(Some(token)) if token == wanted => Ok(()),
        _ => Err(Malformed),
    }
}

fn skip(reader: &mut JsonReader<'_>) -> Result<(), Malformed> {
    let token = reader
        .next_token()
        .map_err(|_| Malformed)?
        .ok_or(Malformed)?;
    reader.skip_value(token).map_err(|_| Malformed)
}

fn uint(reader: &mut JsonReader<'_>) -> Result<u64, Malformed> {
    match reader.next_token().map_err(|_| Malformed)? {
        Some(Token::Number(text)) if text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().map_err(|_| Malformed)
        }
        _ => Err(Malformed),
    }
}

/// A bool, which controllers also send as 0 or 1.
fn flag(reader: &mut JsonReader<'_>) -> Result<bool, Malformed> {
    match reader.next_token().map_err(|_| Malformed)? {
        Some(Token::Bool(b)) => Ok(b),
        Some(Token::Number("0")) => Ok(false),
        Some(Token::Number("1")) => Ok(true),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_queries() {
        let query = ReadQuery::parse(Some("id=1.9,2.10&meta=1&ev=1")).unwrap();
        assert_eq!(query.count, 2);
        assert!(query.meta && query.ev && !query.perms && !query.kind);
        assert_eq!(
            query.ids().collect::<heapless::Vec<_, 4>>(),
            [(1, 9), (2, 10)]
        );
        assert_eq!(query.id(1), Some((2, 10)));
        for bad in [
            None,
            Some(""),
            Some("meta=1"),
            Some("id="),
            Some("id=1"),
            Some("id=1.x"),
            Some("id=1.2,"),
            Some("id=1.2&meta=yes"),
            Some("id=1.2&id=1.3"),
            Some("id=-1.2"),
            Some("id=1.99999999999999999999999"),
        ] {
            assert_eq!(ReadQuery::parse(bad), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn write_bodies() {
        let body = br#"{"characteristics":[{"aid":1,"iid":9,"value":true},{"aid":1,"iid":10,"ev":true,"r":1,"value":"a\"b"},{"aid":2,"iid":3,"value":[1,2]}],"pid":7}"#;
        let parsed = WriteBody::parse(body).unwrap();
        assert_eq!((parsed.count, parsed.pid), (3, Some(7)));
        let first = parsed.item(0).unwrap();
        assert_eq!(
            (first.aid, first.iid, first.value),
            (1, 9, Some(Token::Bool(true)))
        );
        let second = parsed.item(1).unwrap();
        assert_eq!((second.ev, second.response), (Some(true), true));
        let mut buf = [0u8; 8];
        assert_eq!(
            scalar(second.value.unwrap(), &mut buf),
            Ok(Scalar::Str("a\"b"))
        );
        let third = parsed.item(2).unwrap();
        assert_eq!(
            scalar(third.value.unwrap(), &mut buf),
            Err(ValueError::WrongType)
        );
        assert_eq!(parsed.item(3), None);

        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            br#"{"characteristics":{}}"#,
            br#"{"characteristics":[{"iid":1,"value":1}]}"#,
            br#"{"characteristics":[{"aid":1,"iid":"1"}]}"#,
            br#"{"characteristics":[{"aid":1,"iid":1,"ev":"yes"}]}"#,
            br#"{"characteristics":[]} x"#,
            br#"{"characteristics":[],"pid":-1}"#,
            b"\xff",
        ] {
            assert_eq!(
                WriteBody::parse(bad),
                Err(Malformed),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn prepare_bodies() {
        assert_eq!(parse_prepare(br#"{"ttl":2500,"pid":42}"#), Ok((2500, 42)));
        assert_eq!(parse_prepare(br#"{"ttl":2500}"#), Err(Malformed));
        assert_eq!(parse_prepare(br#"{"ttl":1.5,"pid":1}"#), Err(Malformed));
    }
}
