//! DNS messages as multicast DNS uses them (RFC 1035, RFC 6762): a strict parser that
//! borrows the datagram, and a writer into a caller's buffer. Neither allocates.
//!
//! [`Packet::parse`] checks the whole datagram once: the header, every question and
//! every record, every name and every pointer. After that its iterators cannot fail.
//! It never panics, on any input. Names stay in the datagram as [`NameRef`]s, read
//! through their compression pointers, which must point backwards ([`MAX_POINTER_JUMPS`]
//! bounds them besides). Messages with an opcode or a response code other than zero are
//! refused, as RFC 6762 §18.3 and §18.11 say to silently ignore them. A datagram is whole,
//! so a short one is an error, not a partial result; bytes after the last counted record
//! are ignored.
//!
//! [`Writer`] writes a message section by section and compresses names through a table of
//! [`COMPRESSION_ENTRIES`] earlier names. When an item does not fit it returns
//! [`WriteError::Full`] and leaves the message as it was before that item, so the caller
//! can send what fits (setting TC if it is a query with more known answers) and go on in a
//! new message.
//!
//! The mDNS bits are split out of the class fields: the unicast-response (QU) bit of a
//! question (§5.4) and the cache-flush bit of a record (§10.2).
//!
//! ```
//! use core::net::Ipv4Addr;
//! use hap_core::mdns::wire::{Name, Packet, RData, RecordData, RecordOut, Writer, Header, rtype};
//!
//! let host = Name::new("123456789ABC.local").unwrap();
//! let mut buf = [0; 512];
//! let mut writer = Writer::new(&mut buf, 0, Header::RESPONSE).unwrap();
//! writer.answer(&RecordOut::new(host, true, 120, RecordData::A(Ipv4Addr::new(192, 0, 2, 7)))).unwrap();
//! let len = writer.finish().len();
//!
//! let packet = Packet::parse(&buf[..len]).unwrap();
//! let record = packet.answers().next().unwrap();
//! assert!(record.name.eq_name(&Name::new("123456789abc.LOCAL").unwrap()));
//! assert_eq!(record.rtype, rtype::A);
//! assert!(record.cache_flush);
//! assert_eq!(record.rdata, RData::A(Ipv4Addr::new(192, 0, 2, 7)));
//! ```

use core::cmp::Ordering;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::TxtEntry;

/// The length of the DNS header.
pub const HEADER_LEN: usize = 12;
/// The longest label, in bytes (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The longest name in wire form, length bytes and the root included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The most compression pointers followed while reading one name. Pointers must point
/// backwards, so they cannot loop; this bounds the work for a name regardless.
pub const MAX_POINTER_JUMPS: usize = 128;
/// How many earlier names the writer remembers for compression.
pub const COMPRESSION_ENTRIES: usize = 16;
/// The most labels a name can have: one byte of length and one of text each, in 255.
const MAX_LABELS: usize = MAX_NAME_LEN / 2;
/// Offsets at or above this cannot be the target of a 14-bit compression pointer.
const MAX_POINTER_TARGET: usize = 0x3FFF;

/// Record and question types used by mDNS and DNS-SD.
pub mod rtype {
    /// An IPv4 address.
    pub const A: u16 = 1;
    /// A pointer to a name (DNS-SD browsing).
    pub const PTR: u16 = 12;
    /// Text strings (DNS-SD metadata).
    pub const TXT: u16 = 16;
    /// An IPv6 address.
    pub const AAAA: u16 = 28;
    /// A service location: priority, weight, port, host.
    pub const SRV: u16 = 33;
    /// The types a name has (mDNS negative answers, RFC 6762 §6.1).
    pub const NSEC: u16 = 47;
    /// Every type: a question only, as in probes (RFC 6762 §8.1).
    pub const ANY: u16 = 255;
}

/// The Internet class.
pub const CLASS_IN: u16 = 1;
/// The top bit of the class: QU in a question, cache-flush in a record.
const CLASS_TOP_BIT: u16 = 0x8000;

/// Why a datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The datagram ends inside the header, a question, a record or a name.
    Truncated,
    /// The opcode is not 0 (standard query); RFC 6762 §18.3 says to ignore it.
    Opcode,
    /// The response code is not 0; RFC 6762 §18.11 says to ignore it.
    Rcode,
    /// A label is longer than [`MAX_LABEL_LEN`], or uses the reserved 0x40/0x80 types.
    Label,
    /// A name is longer than [`MAX_NAME_LEN`] in wire form.
    NameTooLong,
    /// A compression pointer does not point backwards, or more than
    /// [`MAX_POINTER_JUMPS`] are chained.
    Pointer,
    /// A record's data does not match its type and length.
    Rdata,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "DNS message truncated",
            Self::Opcode => "DNS opcode is not a standard query",
            Self::Rcode => "DNS response code is not zero",
            Self::Label => "DNS label too long or of a reserved type",
            Self::NameTooLong => "DNS name longer than 255 bytes",
            Self::Pointer => "DNS compression pointer not backwards or chained too long",
            Self::Rdata => "DNS record data does not match its type",
        })
    }
}

impl core::error::Error for ParseError {}

/// Why the writer refused an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The buffer is full; the message holds everything written before this item.
    Full,
    /// A name has an empty label, a label over [`MAX_LABEL_LEN`], or is over
    /// [`MAX_NAME_LEN`].
    InvalidName,
    /// A class with its top bit set (use the QU or cache-flush flag), or TXT data that
    /// does not fit in a string of 255 bytes.
    InvalidField,
    /// A question after a record, or a record in a section before one already written.
    OutOfOrder,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "DNS message buffer full",
            Self::InvalidName => "invalid DNS name",
            Self::InvalidField => "DNS field out of range",
            Self::OutOfOrder => "DNS sections written out of order",
        })
    }
}

impl core::error::Error for WriteError {}

/// The fixed header of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The query id: 0 in multicast, echoed in legacy unicast replies (RFC 6762 §6.7).
    pub id: u16,
    /// The flags word: QR, opcode, AA, TC, RD, RA, Z and rcode.
    pub flags: u16,
    /// The number of questions.
    pub questions: u16,
    /// The number of answer records.
    pub answers: u16,
    /// The number of authority records.
    pub authorities: u16,
    /// The number of additional records.
    pub additionals: u16,
}

impl Header {
    /// Query/response: set in responses.
    pub const QR: u16 = 0x8000;
    /// Authoritative answer: set in every mDNS response (RFC 6762 §18.4).
    pub const AA: u16 = 0x0400;
    /// Truncated: in a query, more known answers follow (RFC 6762 §7.2).
    pub const TC: u16 = 0x0200;
    /// Recursion desired: echoed in legacy unicast replies.
    pub const RD: u16 = 0x0100;
    /// The flags of an mDNS response: QR and AA.
    pub const RESPONSE: u16 = Self::QR | Self::AA;
    /// The flags of an mDNS query: none.
    pub const QUERY: u16 = 0;

    /// Whether this is a response (QR set).
    pub fn is_response(&self) -> bool {
        self.flags & Self::QR != 0
    }

    /// The opcode; always 0 in a parsed packet.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    /// Whether AA is set.
    pub fn is_authoritative(&self) -> bool {
        self.flags & Self::AA != 0
    }

    /// Whether TC is set.
    pub fn is_truncated(&self) -> bool {
        self.flags & Self::TC != 0
    }

    /// The response code; always 0 in a parsed packet.
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }

    fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let field = |i: usize| -> Result<u16, ParseError> { read_u16(bytes, 2 * i) };
        Ok(Self {
            id: field(0)?,
            flags: field(1)?,
            questions: field(2)?,
            answers: field(3)?,
            authorities: field(4)?,
            additionals: field(5)?,
        })
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16, ParseError> {
    match bytes.get(at..at.wrapping_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(ParseError::Truncated),
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ParseError> {
    Ok(u32::from(read_u16(bytes, at)?) << 16 | u32::from(read_u16(bytes, at + 2)?))
}

/// A plain name to write or compare with: an optional first label that may hold dots
/// (a DNS-SD instance name, RFC 6763 §4.1.1), then a dotted domain such as
/// `_hap._tcp.local`. There is no escaping; the empty domain is the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name<'s> {
    instance: Option<&'s str>,
    domain: &'s str,
}

impl<'s> Name<'s> {
    /// The name `domain`, such as `123456789ABC.local`; a trailing dot is allowed.
    pub fn new(domain: &'s str) -> Result<Self, WriteError> {
        Self::build(None, domain)
    }

    /// The name whose first label is `instance`, dots and all, followed by `domain`:
    /// `Virtual Light` in `_hap._tcp.local`.
    pub fn with_instance(instance: &'s str, domain: &'s str) -> Result<Self, WriteError> {
        Self::build(Some(instance), domain)
    }

    fn build(instance: Option<&'s str>, domain: &'s str) -> Result<Self, WriteError> {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let name = Self { instance, domain };
        let mut len = 1;
        for label in name.labels() {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(WriteError::InvalidName);
            }
            len += 1 + label.len();
        }
        if len > MAX_NAME_LEN {
            return Err(WriteError::InvalidName);
        }
        Ok(name)
    }

    /// The labels, first to last, without the root.
    pub fn labels(&self) -> impl Iterator<Item = &'s [u8]> + Clone {
        let domain = self.domain;
        let domain_labels = (!domain.is_empty())
            .then(|| domain.split('.'))
            .into_iter()
            .flatten();
        self.instance
            .into_iter()
            .chain(domain_labels)
            .map(str::as_bytes)
    }
}

/// A name inside a parsed datagram, read through its compression pointers.
///
/// Comparisons ignore ASCII case and compare other bytes exactly (RFC 6762 §16).
#[derive(Clone, Copy, Debug)]
pub struct NameRef<'a> {
    packet: &'a [u8],
    offset: usize,
}

impl<'a> NameRef<'a> {
    /// The labels, first to last, without the root.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            packet: self.packet,
            pos: self.offset,
            jumps: 0,
        }
    }

    /// Whether this is `name`, ignoring ASCII case.
    pub fn eq_name(&self, name: &Name<'_>) -> bool {
        labels_eq_ignore_case(self.labels(), name.labels())
    }

    /// Whether this is `other` (from any packet), ignoring ASCII case.
    pub fn eq_ignore_ascii_case(&self, other: &NameRef<'_>) -> bool {
        labels_eq_ignore_case(self.labels(), other.labels())
    }

    /// The name's uncompressed wire form, byte by byte, case kept: the form RFC 6762
    /// §8.2 compares.
    pub fn wire_bytes(&self) -> impl Iterator<Item = u8> + Clone + 'a {
        self.labels()
            .flat_map(|label| {
                // A parsed label is at most 63 bytes, so its length fits.
                core::iter::once(label.len() as u8).chain(label.iter().copied())
            })
            .chain(core::iter::once(0))
    }
}

impl fmt::Display for NameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for label in self.labels() {
            for chunk in label.utf8_chunks() {
                f.write_str(chunk.valid())?;
                for byte in chunk.invalid() {
                    write!(f, "\\{byte:03}")?;
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

fn labels_eq_ignore_case<'x, 'y>(
    mut a: impl Iterator<Item = &'x [u8]>,
    mut b: impl Iterator<Item = &'y [u8]>,
) -> bool {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
            _ => return false,
        }
    }
}

/// The labels of a [`NameRef`].
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    packet: &'a [u8],
    pos: usize,
    jumps: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // The name was checked when the packet was parsed; a malformed one ends early.
        loop {
            let len = *self.packet.get(self.pos)?;
            match len {
                0 => return None,
                1..=0x3F => {
                    let start = self.pos + 1;
                    let label = self.packet.get(start..start + usize::from(len))?;
                    self.pos = start + usize::from(len);
                    return Some(label);
                }
                0xC0..=0xFF => {
                    let target = usize::from(read_u16(self.packet, self.pos).ok()? & 0x3FFF);
                    self.jumps += 1;
                    if target >= self.pos || self.jumps > MAX_POINTER_JUMPS {
                        return None;
                    }
                    self.pos = target;
                }
                _ => return None,
            }
        }
    }
}

/// Checks the name at `start` and returns it with the offset just after its in-place
/// bytes (after the root or the first pointer).
fn parse_name(packet: &[u8], start: usize) -> Result<(NameRef<'_>, usize), ParseError> {
    let mut pos = start;
    let mut end = None;
    let mut len = 1;
    let mut jumps = 0;
    loop {
        let byte = *packet.get(pos).ok_or(ParseError::Truncated)?;
        match byte {
            0 => break,
            1..=0x3F => {
                let label_len = usize::from(byte);
                len += 1 + label_len;
                if len > MAX_NAME_LEN {
                    return Err(ParseError::NameTooLong);
                }
                pos += 1 + label_len;
                if pos >= packet.len() {
                    return Err(ParseError::Truncated);
                }
            }
            0xC0..=0xFF => {
                let target = usize::from(read_u16(packet, pos)? & 0x3FFF);
                jumps += 1;
                if target >= pos || jumps > MAX_POINTER_JUMPS {
                    return Err(ParseError::Pointer);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(ParseError::Label),
        }
    }
    let end = end.unwrap_or(pos + 1);
    Ok((
        NameRef {
            packet,
            offset: start,
        },
        end,
    ))
}

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

/// A name to write: a plain [`Name`] or a name read from another packet.
#[derive(Clone, Copy, Debug)]
pub enum NameArg<'x> {
    /// A plain name.
    Plain(Name<'x>),
    /// A name from a parsed packet, such as a question echoed in a legacy reply.
    Parsed(NameRef<'x>),
}

impl<'x> From<Name<'x>> for NameArg<'x> {
    fn from(name: Name<'x>) -> Self {
        Self::Plain(name)
    }
}

impl<'x> From<NameRef<'x>> for NameArg<'x> {
    fn from(name: NameRef<'x>) -> Self {
        Self::Parsed(name)
    }
}

/// The labels of a name to write, checked, in a fixed array.
struct LabelList<'x> {
    labels: [&'x [u8]; MAX_LABELS],
    len: usize,
}

impl<'x> LabelList<'x> {
    fn new(name: &NameArg<'x>) -> Result<Self, WriteError> {
        let mut list = Self {
            labels: [&[]; MAX_LABELS],
            len: 0,
        };
        let mut wire_len = 1;
        let mut push = |label: &'x [u8]| -> Result<(), WriteError> {
            wire_len += 1 + label.len();
            if label.is_empty() || label.len() > MAX_LABEL_LEN || wire_len > MAX_NAME_LEN {
                return Err(WriteError::InvalidName);
            }
            // 255 bytes hold at most 127 labels, so the index is in range.
            *list
                .labels
                .get_mut(list.len)
                .ok_or(WriteError::InvalidName)? = label;
            list.len += 1;
            Ok(())
        };
        match name {
            NameArg::Plain(name) => name.labels().try_for_each(&mut push)?,
            NameArg::Parsed(name) => name.labels().try_for_each(&mut push)?,
        }
        Ok(list)
    }

    fn as_slice(&self) -> &[&'x [u8]] {
        &self.labels[..self.len]
    }
}

/// Data of a record to write.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum RecordData<'x> {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A name.
    Ptr(NameArg<'x>),
    /// A service location.
    Srv {
        /// The priority; 0 in DNS-SD.
        priority: u16,
        /// The weight; 0 in DNS-SD.
        weight: u16,
        /// The port.
        port: u16,
        /// The host name.
        target: NameArg<'x>,
    },
    /// `key=value` strings, such as [`Advertisement::txt`](super::Advertisement::txt).
    TxtEntries(&'x [TxtEntry]),
    /// The types a name has, in mDNS form: the next name is the owner's (RFC 6762 §6.1).
    Nsec {
        /// The next name; pass the owner name.
        next: NameArg<'x>,
        /// The types, in any order.
        types: &'x [u16],
    },
    /// Data copied from a parsed record, re-written with its names.
    Parsed(RData<'x>),
    /// Raw data of the given record type.
    Raw(&'x [u8]),
}

/// A record to write.
#[derive(Clone, Copy, Debug)]
pub struct RecordOut<'x> {
    /// The owner name.
    pub name: NameArg<'x>,
    /// The type; [`RecordOut::new`] derives it from the data.
    pub rtype: u16,
    /// The class, without the cache-flush bit.
    pub class: u16,
    /// Whether to set the cache-flush bit (unique records, RFC 6762 §10.2).
    pub cache_flush: bool,
    /// The time to live in seconds.
    pub ttl: u32,
    /// The data.
    pub data: RecordData<'x>,
}

impl<'x> RecordOut<'x> {
    /// A record of class IN whose type follows from `data` (for [`RecordData::Raw`] it
    /// is 0: set [`RecordOut::rtype`]).
    pub fn new(
        name: impl Into<NameArg<'x>>,
        cache_flush: bool,
        ttl: u32,
        data: RecordData<'x>,
    ) -> Self {
        let rtype = match &data {
            RecordData::A(_) => rtype::A,
            RecordData::Aaaa(_) => rtype::AAAA,
            RecordData::Ptr(_) => rtype::PTR,
            RecordData::Srv { .. } => rtype::SRV,
            RecordData::TxtEntries(_) => rtype::TXT,
            RecordData::Nsec { .. } => rtype::NSEC,
            RecordData::Parsed(rdata) => match rdata {
                RData::A(_) => rtype::A,
                RData::Aaaa(_) => rtype::AAAA,
                RData::Ptr(_) => rtype::PTR,
                RData::Srv { .. } => rtype::SRV,
                RData::Txt(_) => rtype::TXT,
                RData::Nsec { .. } => rtype::NSEC,
                RData::Other(_) => 0,
            },
            RecordData::Raw(_) => 0,
        };
        Self {
            name: name.into(),
            rtype,
            class: CLASS_IN,
            cache_flush,
            ttl,
            data,
        }
    }
}

impl<'x> From<&Record<'x>> for RecordOut<'x> {
    fn from(record: &Record<'x>) -> Self {
        Self {
            name: record.name.into(),
            rtype: record.rtype,
            class: record.class,
            cache_flush: record.cache_flush,
            ttl: record.ttl,
            data: RecordData::Parsed(record.rdata),
        }
    }
}

/// The section being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Question = 0,
    Answer = 1,
    Authority = 2,
    Additional = 3,
}

/// Writes a message into a caller's buffer, compressing names.
///
/// Write questions, then answers, then authorities, then additionals; then
/// [`Writer::finish`] fills in the counts. An item that does not fit returns
/// [`WriteError::Full`] and is left out whole.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    section: Section,
    counts: [u16; 4],
    /// Offsets of names (and their suffixes) already written, for compression.
    names: [u16; COMPRESSION_ENTRIES],
    names_len: usize,
}

impl<'b> Writer<'b> {
    /// A writer for a message with `id` and `flags` (such as [`Header::RESPONSE`]).
    pub fn new(buf: &'b mut [u8], id: u16, flags: u16) -> Result<Self, WriteError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(WriteError::Full)?;
        header.fill(0);
        header[..2].copy_from_slice(&id.to_be_bytes());
        header[2..4].copy_from_slice(&flags.to_be_bytes());
        Ok(Self {
            buf,
            len: HEADER_LEN,
            section: Section::Question,
            counts: [0; 4],
            names: [0; COMPRESSION_ENTRIES],
            names_len: 0,
        })
    }

    /// Sets or clears flags in the header, such as [`Header::TC`].
    pub fn set_flags(&mut self, flags: u16) {
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    /// The length written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing but the header is written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Writes a question; `unicast_response` sets the QU bit.
    pub fn question<'n>(
        &mut self,
        name: impl Into<NameArg<'n>>,
        qtype: u16,
        qclass: u16,
        unicast_response: bool,
    ) -> Result<(), WriteError> {
        if self.section != Section::Question {
            return Err(WriteError::OutOfOrder);
        }
        if qclass & CLASS_TOP_BIT != 0 {
            return Err(WriteError::InvalidField);
        }
        let class = qclass | if unicast_response { CLASS_TOP_BIT } else { 0 };
        let name = name.into();
        self.transaction(|w| {
            w.name(&name)?;
            w.put(&qtype.to_be_bytes())?;
            w.put(&class.to_be_bytes())
        })?;
        self.counts[0] += 1;
        Ok(())
    }

    /// Writes a record in the answer section.
    pub fn answer(&mut self, record: &RecordOut<'_>) -> Result<(), WriteError> {
        self.record(Section::Answer, record)
    }

    /// Writes a record in the authority section.
    pub fn authority(&mut self, record: &RecordOut<'_>) -> Result<(), WriteError> {
        self.record(Section::Authority, record)
    }

    /// Writes a record in the additional section.
    pub fn additional(&mut self, record: &RecordOut<'_>) -> Result<(), WriteError> {
        self.record(Section::Additional, record)
    }

    /// Fills in the counts and returns the message.
    pub fn finish(self) -> &'b [u8] {
        for (i, count) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }
        &self.buf[..self.len]
    }

    fn record(&mut self, section: Section, record: &RecordOut<'_>) -> Result<(), WriteError> {
        if section < self.section {
            return Err(WriteError::OutOfOrder);
        }
        if record.class & CLASS_TOP_BIT != 0 {
            return Err(WriteError::InvalidField);
        }
        let class = record.class | if record.cache_flush { CLASS_TOP_BIT } else { 0 };
        let count = &self.counts[section as usize];
        if *count == u16::MAX {
            return Err(WriteError::Full);
        }
        self.transaction(|w| {
            w.name(&record.name)?;
            w.put(&record.rtype.to_be_bytes())?;
            w.put(&class.to_be_bytes())?;
            w.put(&record.ttl.to_be_bytes())?;
            let length_at = w.len;
            w.put(&[0, 0])?;
            w.rdata(&record.data)?;
            let rdlength =
                u16::try_from(w.len - length_at - 2).map_err(|_| WriteError::InvalidField)?;
            w.buf[length_at..length_at + 2].copy_from_slice(&rdlength.to_be_bytes());
            Ok(())
        })?;
        self.section = section;
        self.counts[section as usize] += 1;
        Ok(())
    }

    /// Runs `write`; on failure restores the length and the compression table.
    fn transaction(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let (len, names_len) = (self.len, self.names_len);
        let result = write(self);
        if result.is_err() {
            self.len = len;
            self.names_len = names_len;
        }
        result
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(WriteError::Full)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn rdata(&mut self, data: &RecordData<'_>) -> Result<(), WriteError> {
        match *data {
            RecordData::A(addr) => self.put(&addr.octets()),
            RecordData::Aaaa(addr) => self.put(&addr.octets()),
            RecordData::Ptr(name) => self.name(&name),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.put(&priority.to_be_bytes())?;
                self.put(&weight.to_be_bytes())?;
                self.put(&port.to_be_bytes())?;
                self.name(&target)
            }
            RecordData::TxtEntries(entries) => {
                if entries.is_empty() {
                    return self.put(&[0]);
                }
                for entry in entries {
                    let len = entry.key.len() + 1 + entry.value.len();
                    let len = u8::try_from(len).map_err(|_| WriteError::InvalidField)?;
                    self.put(&[len])?;
                    self.put(entry.key.as_bytes())?;
                    self.put(b"=")?;
                    self.put(entry.value.as_bytes())?;
                }
                Ok(())
            }
            RecordData::Nsec { next, types } => {
                // RFC 4034 §4.1.1: the next name is not compressed.
                self.uncompressed_name(&next)?;
                self.type_bitmap(types)
            }
            RecordData::Parsed(rdata) => match rdata {
                RData::A(addr) => self.put(&addr.octets()),
                RData::Aaaa(addr) => self.put(&addr.octets()),
                RData::Ptr(name) => self.name(&name.into()),
                RData::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => self.rdata(&RecordData::Srv {
                    priority,
                    weight,
                    port,
                    target: target.into(),
                }),
                RData::Txt(txt) => self.put(txt.bytes),
                RData::Nsec { next, types } => {
                    self.uncompressed_name(&next.into())?;
                    self.put(types.bytes)
                }
                RData::Other(bytes) => self.put(bytes),
            },
            RecordData::Raw(bytes) => self.put(bytes),
        }
    }

    fn type_bitmap(&mut self, types: &[u16]) -> Result<(), WriteError> {
        let mut window = types.iter().map(|t| t >> 8).min();
        while let Some(current) = window {
            let mut bits = [0u8; 32];
            let mut used = 0;
            for t in types.iter().filter(|t| *t >> 8 == current) {
                let bit = usize::from(t & 0xFF);
                bits[bit / 8] |= 0x80 >> (bit % 8);
                used = used.max(bit / 8 + 1);
            }
            // `current` and `used` fit in a byte: a window is t >> 8, and used ≤ 32.
            self.put(&[current as u8, used as u8])?;
            self.put(&bits[..used])?;
            window = types.iter().map(|t| t >> 8).filter(|w| *w > current).min();
        }
        Ok(())
    }

    fn uncompressed_name(&mut self, name: &NameArg<'_>) -> Result<(), WriteError> {
        let labels = LabelList::new(name)?;
        for label in labels.as_slice() {
            self.put(&[label.len() as u8])?;
            self.put(label)?;
        }
        self.put(&[0])
    }

    /// Writes `name`, ending in a pointer to the longest suffix already written.
    fn name(&mut self, name: &NameArg<'_>) -> Result<(), WriteError> {
        let labels = LabelList::new(name)?;
        let labels = labels.as_slice();
        let mut pointer = None;
        let mut own = labels.len();
        'suffixes: for start in 0..labels.len() {
            for &offset in &self.names[..self.names_len] {
                if self.suffix_at(usize::from(offset), &labels[start..]) {
                    pointer = Some(offset);
                    own = start;
                    break 'suffixes;
                }
            }
        }
        for label in &labels[..own] {
            if self.len <= MAX_POINTER_TARGET && self.names_len < COMPRESSION_ENTRIES {
                self.names[self.names_len] = self.len as u16;
                self.names_len += 1;
            }
            // A checked label is 1 to 63 bytes.
            self.put(&[label.len() as u8])?;
            self.put(label)?;
        }
        match pointer {
            Some(offset) => self.put(&(0xC000 | offset).to_be_bytes()),
            None => self.put(&[0]),
        }
    }

    /// Whether the name written at `offset` is exactly `labels`.
    fn suffix_at(&self, offset: usize, labels: &[&[u8]]) -> bool {
        let written = Labels {
            packet: &self.buf[..self.len],
            pos: offset,
            jumps: 0,
        };
        written.eq(labels.iter().copied())
    }
}

#[cfg(test)]
mod tests;
