//! DNS messages as multicast DNS uses them (RFC 1035, RFC 6762): a strict parser that
//! borrows the datagram, and a writer into a caller's buffer. Neither allocates.
//!
//! [`Packet::parse`] checks the whole datagram once: the header, every question and
//! every record, every name and every pointer. After that its iterators cannot fail.
//! It never panics, on any input. Names stay in the datagram as [`NameRef`]s, read
//! through their compression pointers, which must point backwards to labels that end
//! before the pointer ([`MAX_POINTER_JUMPS`] bounds them besides). Messages with an opcode or a response code other than zero are
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

use core::fmt;

mod parse;
mod write;

pub use parse::{
    CanonicalRdata, Packet, Question, Questions, RData, Record, Records, Txt, TypeBitmap,
};
pub use write::{NameArg, RecordData, RecordOut, Writer};

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
    /// A class with its top bit set (use the QU or cache-flush flag), a record type that
    /// disagrees with its data, or TXT data that does not fit in a string of 255 bytes.
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
///
/// A pointer names a prior occurrence of the rest of the name (RFC 1035 §4.1.4), so it
/// must point backwards, and what it points to must end before the pointer itself: a
/// label reached through a pointer may not run forwards past it.
fn parse_name(packet: &[u8], start: usize) -> Result<(NameRef<'_>, usize), ParseError> {
    let mut pos = start;
    let mut end = None;
    let mut len = 1;
    let mut jumps = 0;
    // Where the bytes of the name must end: the datagram, then the last pointer.
    let mut limit = packet.len();
    let beyond = |limit: usize| {
        if limit == packet.len() {
            ParseError::Truncated
        } else {
            ParseError::Pointer
        }
    };
    loop {
        let byte = *packet[..limit].get(pos).ok_or(beyond(limit))?;
        match byte {
            0 => break,
            1..=0x3F => {
                let label_len = usize::from(byte);
                len += 1 + label_len;
                if len > MAX_NAME_LEN {
                    return Err(ParseError::NameTooLong);
                }
                pos += 1 + label_len;
                if pos >= limit {
                    return Err(beyond(limit));
                }
            }
            0xC0..=0xFF => {
                if pos + 2 > limit {
                    return Err(beyond(limit));
                }
                let target = usize::from(read_u16(packet, pos)? & 0x3FFF);
                jumps += 1;
                if target >= pos || jumps > MAX_POINTER_JUMPS {
                    return Err(ParseError::Pointer);
                }
                end.get_or_insert(pos + 2);
                limit = pos;
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

#[cfg(test)]
mod tests;
