//! The parser: a datagram checked once, then read through infallible iterators.

use core::cmp::Ordering;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::{
    parse_name, read_u16, read_u32, rtype, Header, Labels, NameRef, ParseError, CLASS_TOP_BIT,
    HEADER_LEN,
};

/// A question. Equality compares names exactly, as [`NameRef`]'s does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question<'a> {
    /// The name asked about.
    pub name: NameRef<'a>,
    /// The type asked for; [`rtype::ANY`] in probes.
    pub qtype: u16,
    /// The class, without the QU bit.
    pub qclass: u16,
    /// The QU bit: the asker prefers a unicast reply (RFC 6762 §5.4).
    pub unicast_response: bool,
}

fn parse_question(packet: &[u8], pos: usize) -> Result<(Question<'_>, usize), ParseError> {
    let (name, pos) = parse_name(packet, pos)?;
    let qtype = read_u16(packet, pos)?;
    let class = read_u16(packet, pos + 2)?;
    let question = Question {
        name,
        qtype,
        qclass: class & !CLASS_TOP_BIT,
        unicast_response: class & CLASS_TOP_BIT != 0,
    };
    Ok((question, pos + 4))
}

/// A resource record. Equality compares names exactly, as [`NameRef`]'s does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The owner name.
    pub name: NameRef<'a>,
    /// The type, as in [`rtype`]; also for data this module does not decode.
    pub rtype: u16,
    /// The class, without the cache-flush bit.
    pub class: u16,
    /// The cache-flush bit: this record set replaces the cached one (RFC 6762 §10.2).
    pub cache_flush: bool,
    /// The time to live, in seconds; 0 is a goodbye (RFC 6762 §10.1).
    pub ttl: u32,
    /// The data.
    pub rdata: RData<'a>,
}

impl Record<'_> {
    /// The data in uncompressed wire form, byte by byte.
    pub fn rdata_bytes(&self) -> CanonicalRdata<'_> {
        self.rdata.canonical()
    }

    /// Orders two records as RFC 6762 §8.2 does for probe tiebreaking: by class (without
    /// the cache-flush bit), then type, then uncompressed data as unsigned bytes.
    pub fn cmp_for_tiebreak(&self, other: &Record<'_>) -> Ordering {
        self.class
            .cmp(&other.class)
            .then(self.rtype.cmp(&other.rtype))
            .then_with(|| self.rdata_bytes().cmp(other.rdata_bytes()))
    }
}

fn parse_record(packet: &[u8], pos: usize) -> Result<(Record<'_>, usize), ParseError> {
    let (name, pos) = parse_name(packet, pos)?;
    let rtype = read_u16(packet, pos)?;
    let class = read_u16(packet, pos + 2)?;
    let ttl = read_u32(packet, pos + 4)?;
    let rdlength = usize::from(read_u16(packet, pos + 8)?);
    let start = pos + 10;
    let end = start + rdlength;
    if end > packet.len() {
        return Err(ParseError::Truncated);
    }
    let rdata = RData::parse(packet, rtype, start, end)?;
    let record = Record {
        name,
        rtype,
        class: class & !CLASS_TOP_BIT,
        cache_flush: class & CLASS_TOP_BIT != 0,
        ttl,
        rdata,
    };
    Ok((record, end))
}

/// The data of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RData<'a> {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A name.
    Ptr(NameRef<'a>),
    /// A service location.
    Srv {
        /// The priority; 0 in DNS-SD.
        priority: u16,
        /// The weight; 0 in DNS-SD.
        weight: u16,
        /// The port.
        port: u16,
        /// The host name.
        target: NameRef<'a>,
    },
    /// Character strings.
    Txt(Txt<'a>),
    /// The types a name has.
    Nsec {
        /// The next name; the owner's own name in mDNS.
        next: NameRef<'a>,
        /// The type bitmap.
        types: TypeBitmap<'a>,
    },
    /// Data of another type, undecoded.
    Other(&'a [u8]),
}

/// Exact equality of the labels, for the derived `PartialEq` of [`RData`]: data
/// compare byte for byte (RFC 6762 §8.2). Use [`NameRef::eq_ignore_ascii_case`] to
/// compare names as DNS does.
impl PartialEq for NameRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.labels().eq(other.labels())
    }
}

impl Eq for NameRef<'_> {}

impl<'a> RData<'a> {
    fn parse(packet: &'a [u8], rtype: u16, start: usize, end: usize) -> Result<Self, ParseError> {
        // Names inside the data may point anywhere before them, but their own bytes must
        // end exactly where the data ends.
        let data = &packet[start..end];
        let name_to_end = |at: usize| -> Result<NameRef<'a>, ParseError> {
            let (name, name_end) = parse_name(&packet[..end], at)?;
            if name_end != end {
                return Err(ParseError::Rdata);
            }
            Ok(NameRef { packet, ..name })
        };
        match rtype {
            rtype::A => <[u8; 4]>::try_from(data)
                .map(|octets| Self::A(octets.into()))
                .map_err(|_| ParseError::Rdata),
            rtype::AAAA => <[u8; 16]>::try_from(data)
                .map(|octets| Self::Aaaa(octets.into()))
                .map_err(|_| ParseError::Rdata),
            rtype::PTR => Ok(Self::Ptr(name_to_end(start).map_err(rdata_error)?)),
            rtype::SRV => {
                if data.len() < 7 {
                    return Err(ParseError::Rdata);
                }
                Ok(Self::Srv {
                    priority: read_u16(data, 0)?,
                    weight: read_u16(data, 2)?,
                    port: read_u16(data, 4)?,
                    target: name_to_end(start + 6).map_err(rdata_error)?,
                })
            }
            rtype::TXT => Txt::parse(data).map(Self::Txt),
            rtype::NSEC => {
                let (next, name_end) = parse_name(&packet[..end], start).map_err(rdata_error)?;
                let types = TypeBitmap::parse(&packet[name_end..end])?;
                Ok(Self::Nsec {
                    next: NameRef { packet, ..next },
                    types,
                })
            }
            _ => Ok(Self::Other(data)),
        }
    }

    /// The data in uncompressed wire form, byte by byte.
    pub fn canonical(&self) -> CanonicalRdata<'a> {
        let mut head = [0u8; 16];
        let (head_len, name, tail): (usize, Option<NameRef<'a>>, &'a [u8]) = match *self {
            Self::A(addr) => {
                head[..4].copy_from_slice(&addr.octets());
                (4, None, &[])
            }
            Self::Aaaa(addr) => {
                head = addr.octets();
                (16, None, &[])
            }
            Self::Ptr(name) => (0, Some(name), &[]),
            Self::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                head[..2].copy_from_slice(&priority.to_be_bytes());
                head[2..4].copy_from_slice(&weight.to_be_bytes());
                head[4..6].copy_from_slice(&port.to_be_bytes());
                (6, Some(target), &[])
            }
            Self::Txt(txt) => (0, None, txt.bytes),
            Self::Nsec { next, types } => (0, Some(next), types.bytes),
            Self::Other(bytes) => (0, None, bytes),
        };
        CanonicalRdata {
            head,
            head_pos: 0,
            head_len,
            name: name.map(|name| name.labels()),
            label: &[],
            root_pending: name.is_some(),
            tail,
        }
    }
}

/// A name that fails inside record data makes the data invalid; a short datagram
/// stays short.
fn rdata_error(error: ParseError) -> ParseError {
    match error {
        ParseError::Truncated => ParseError::Rdata,
        other => other,
    }
}

/// Record data in uncompressed wire form: fixed fields, then a name, then raw bytes.
#[derive(Clone, Debug)]
pub struct CanonicalRdata<'a> {
    head: [u8; 16],
    head_pos: usize,
    head_len: usize,
    name: Option<Labels<'a>>,
    /// The rest of the current label, its length byte already yielded.
    label: &'a [u8],
    root_pending: bool,
    tail: &'a [u8],
}

impl Iterator for CanonicalRdata<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.head_pos < self.head_len {
            self.head_pos += 1;
            return self.head.get(self.head_pos - 1).copied();
        }
        if let Some((first, rest)) = self.label.split_first() {
            self.label = rest;
            return Some(*first);
        }
        if let Some(labels) = &mut self.name {
            if let Some(label) = labels.next() {
                self.label = label;
                return Some(label.len() as u8);
            }
            self.name = None;
        }
        if self.root_pending {
            self.root_pending = false;
            return Some(0);
        }
        let (first, rest) = self.tail.split_first()?;
        self.tail = rest;
        Some(*first)
    }
}

/// TXT data: one or more length-prefixed strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Txt<'a> {
    bytes: &'a [u8],
}

impl<'a> Txt<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        // RFC 1035 §3.3.14: at least one string; RFC 6763 §6.1 writes an empty record as
        // one empty string.
        if bytes.is_empty() {
            return Err(ParseError::Rdata);
        }
        let mut rest = bytes;
        while let Some((&len, after)) = rest.split_first() {
            rest = after.get(usize::from(len)..).ok_or(ParseError::Rdata)?;
        }
        Ok(Self { bytes })
    }

    /// The strings, such as `sf=1`, without their length bytes.
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> + Clone {
        let mut rest = self.bytes;
        core::iter::from_fn(move || {
            let (&len, after) = rest.split_first()?;
            let (string, next) = after.split_at_checked(usize::from(len))?;
            rest = next;
            Some(string)
        })
    }

    /// The value of the first `key=value` string whose key is `key` (ASCII case
    /// ignored, RFC 6763 §6.4); an empty value for a string without `=`.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.strings().find_map(|string| {
            let (k, value) = match string.iter().position(|&b| b == b'=') {
                Some(eq) => (&string[..eq], &string[eq + 1..]),
                None => (string, &string[string.len()..]),
            };
            k.eq_ignore_ascii_case(key).then_some(value)
        })
    }

    /// The data as on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// An NSEC type bitmap (RFC 4034 §4.1.2): windows of up to 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeBitmap<'a> {
    bytes: &'a [u8],
}

impl<'a> TypeBitmap<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let mut rest = bytes;
        let mut last_window = None;
        while let [window, len, after @ ..] = rest {
            if !(1..=32).contains(len) || last_window.is_some_and(|last| last >= *window) {
                return Err(ParseError::Rdata);
            }
            last_window = Some(*window);
            rest = after.get(usize::from(*len)..).ok_or(ParseError::Rdata)?;
        }
        if !rest.is_empty() {
            return Err(ParseError::Rdata);
        }
        Ok(Self { bytes })
    }

    /// Whether `rtype` is in the bitmap.
    pub fn contains(&self, rtype: u16) -> bool {
        self.types().any(|t| t == rtype)
    }

    /// The types in the bitmap, in ascending order.
    pub fn types(&self) -> impl Iterator<Item = u16> + 'a {
        let mut rest = self.bytes;
        core::iter::from_fn(move || {
            let [window, len, after @ ..] = rest else {
                return None;
            };
            let (bits, next) = after.split_at_checked(usize::from(*len))?;
            rest = next;
            let base = u16::from(*window) << 8;
            Some((0..bits.len() * 8).filter_map(move |bit| {
                (bits[bit / 8] & (0x80 >> (bit % 8)) != 0).then_some(base | bit as u16)
            }))
        })
        .flatten()
    }

    /// The bitmap as on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A whole datagram, checked.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    header: Header,
    /// Where the answer, authority and additional sections start, and where the last
    /// one ends.
    sections: [usize; 4],
}

impl<'a> Packet<'a> {
    /// Checks the whole datagram: header, questions, records, names and data.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let header = Header::parse(bytes)?;
        if header.opcode() != 0 {
            return Err(ParseError::Opcode);
        }
        if header.rcode() != 0 {
            return Err(ParseError::Rcode);
        }
        let mut pos = HEADER_LEN;
        for _ in 0..header.questions {
            pos = parse_question(bytes, pos)?.1;
        }
        let mut sections = [pos; 4];
        let counts = [header.answers, header.authorities, header.additionals];
        for (section, count) in counts.into_iter().enumerate() {
            for _ in 0..count {
                pos = parse_record(bytes, pos)?.1;
            }
            sections[section + 1] = pos;
        }
        Ok(Self {
            bytes,
            header,
            sections,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The datagram's bytes up to the end of its last record.
    pub fn as_bytes(&self) -> &'a [u8] {
        &self.bytes[..self.sections[3]]
    }

    /// The questions.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            packet: self.bytes,
            pos: HEADER_LEN,
            left: self.header.questions,
        }
    }

    /// The answer records.
    pub fn answers(&self) -> Records<'a> {
        self.records_from(0, self.header.answers)
    }

    /// The authority records: a probe's proposed records (RFC 6762 §8.2).
    pub fn authorities(&self) -> Records<'a> {
        self.records_from(1, self.header.authorities)
    }

    /// The additional records.
    pub fn additionals(&self) -> Records<'a> {
        self.records_from(2, self.header.additionals)
    }

    /// Every record: answers, then authorities, then additionals.
    pub fn records(&self) -> Records<'a> {
        let h = &self.header;
        let count = u32::from(h.answers) + u32::from(h.authorities) + u32::from(h.additionals);
        Records {
            packet: self.bytes,
            pos: self.sections[0],
            left: count,
        }
    }

    fn records_from(&self, section: usize, count: u16) -> Records<'a> {
        Records {
            packet: self.bytes,
            pos: self.sections[section],
            left: u32::from(count),
        }
    }
}

/// The questions of a [`Packet`].
#[derive(Clone, Debug)]
pub struct Questions<'a> {
    packet: &'a [u8],
    pos: usize,
    left: u16,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Question<'a>;

    fn next(&mut self) -> Option<Question<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Checked by `Packet::parse`, so this does not fail.
        let (question, pos) = parse_question(self.packet, self.pos).ok()?;
        self.pos = pos;
        Some(question)
    }
}

/// Records of a [`Packet`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    packet: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Checked by `Packet::parse`, so this does not fail.
        let (record, pos) = parse_record(self.packet, self.pos).ok()?;
        self.pos = pos;
        Some(record)
    }
}
