//! The writer: a message into a caller's buffer, names compressed.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::{
    rtype, Labels, Name, NameRef, RData, Record, WriteError, CLASS_IN, CLASS_TOP_BIT,
    COMPRESSION_ENTRIES, HEADER_LEN, MAX_LABELS, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_POINTER_TARGET,
};
use crate::mdns::TxtEntry;

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
    /// `key=value` strings, such as [`Advertisement::txt`](crate::mdns::Advertisement::txt).
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
    /// Raw data of the record's type, written as it is: it must be valid for the type
    /// and hold no compression pointers.
    Raw(&'x [u8]),
}

impl RecordData<'_> {
    /// The record type the data is of, unless it is raw.
    fn implied_type(&self) -> Option<u16> {
        Some(match self {
            Self::A(_) | Self::Parsed(RData::A(_)) => rtype::A,
            Self::Aaaa(_) | Self::Parsed(RData::Aaaa(_)) => rtype::AAAA,
            Self::Ptr(_) | Self::Parsed(RData::Ptr(_)) => rtype::PTR,
            Self::Srv { .. } | Self::Parsed(RData::Srv { .. }) => rtype::SRV,
            Self::TxtEntries(_) | Self::Parsed(RData::Txt(_)) => rtype::TXT,
            Self::Nsec { .. } | Self::Parsed(RData::Nsec { .. }) => rtype::NSEC,
            Self::Parsed(RData::Other(_)) | Self::Raw(_) => return None,
        })
    }
}

/// A record to write.
#[derive(Clone, Copy, Debug)]
pub struct RecordOut<'x> {
    /// The owner name.
    pub name: NameArg<'x>,
    /// The type; [`RecordOut::new`] derives it from the data. The writer refuses a type
    /// that disagrees with the data.
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
        Self {
            name: name.into(),
            rtype: data.implied_type().unwrap_or(0),
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
    /// A writer for a message with `id` and `flags` (such as [`Header::RESPONSE`](super::Header::RESPONSE)).
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

    /// Sets or clears flags in the header, such as [`Header::TC`](super::Header::TC).
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
        if record.class & CLASS_TOP_BIT != 0
            || record
                .data
                .implied_type()
                .is_some_and(|implied| implied != record.rtype)
        {
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
                RData::Txt(txt) => self.put(txt.as_bytes()),
                RData::Nsec { next, types } => {
                    self.uncompressed_name(&next.into())?;
                    self.put(types.as_bytes())
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
