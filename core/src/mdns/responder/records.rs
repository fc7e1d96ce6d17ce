//! Our resource records: which ones exist, how each is written, and how a received record
//! compares with them. Records are named by bits of a [`RecordSet`], so a pending answer
//! or announcement is one small integer, not a list.

use core::net::IpAddr;

use super::super::wire::{
    rtype, Name, NameRef, RData, Record, RecordData, RecordOut, WriteError, Writer, CLASS_IN,
};
use super::super::{TxtEntry, SERVICE_TYPE, TXT_KEYS};
use super::{HOST_RECORD_TTL, MAX_ADDRESSES, MAX_LABEL, OTHER_RECORD_TTL};

/// The DNS-SD meta-query name (RFC 6763 §9).
pub(super) const SERVICES_NAME: &str = "_services._dns-sd._udp.local";
/// The domain of the host name.
const LOCAL: &str = "local";

/// A set of our records, one bit each. The address bits index the interface's address
/// list, so a set is only meaningful for one interface.
pub(super) type RecordSet = u16;

/// `_hap._tcp.local` PTR `<instance>._hap._tcp.local` (shared).
pub(super) const PTR: RecordSet = 1 << 0;
/// `<instance>._hap._tcp.local` SRV (unique).
pub(super) const SRV: RecordSet = 1 << 1;
/// `<instance>._hap._tcp.local` TXT (unique).
pub(super) const TXT: RecordSet = 1 << 2;
/// The first address bit; `<host>.local` A or AAAA for address `i` is `ADDR0 << i`.
const ADDR_SHIFT: u32 = 3;
/// All address bits.
pub(super) const ADDRS: RecordSet = ((1 << MAX_ADDRESSES) - 1) << ADDR_SHIFT;
/// `_services._dns-sd._udp.local` PTR `_hap._tcp.local` (shared, RFC 6763 §9).
pub(super) const SERVICES_PTR: RecordSet = 1 << 7;
/// NSEC for the instance name: it has SRV and TXT only (RFC 6762 §6.1).
pub(super) const NSEC_INSTANCE: RecordSet = 1 << 8;
/// NSEC for the host name: the address types this interface has.
pub(super) const NSEC_HOST: RecordSet = 1 << 9;
/// How many record bits there are.
pub(super) const RECORD_BITS: usize = 10;
/// The shared records: answers holding them wait 20-120 ms (RFC 6762 §6).
pub(super) const SHARED: RecordSet = PTR | SERVICES_PTR;

/// The address bit for address index `i`.
pub(super) const fn addr_bit(i: usize) -> RecordSet {
    1 << (ADDR_SHIFT as usize + i)
}

/// The bits of the addresses an interface has.
pub(super) fn addr_bits(addresses: &[IpAddr]) -> RecordSet {
    (0..addresses.len().min(MAX_ADDRESSES)).fold(0, |set, i| set | addr_bit(i))
}

/// The bits of the records announced on an interface (RFC 6762 §8.3).
pub(super) fn announced(addresses: &[IpAddr]) -> RecordSet {
    PTR | SRV | TXT | SERVICES_PTR | addr_bits(addresses)
}

/// The bits of a set, lowest first.
pub(super) fn bits(set: RecordSet) -> impl Iterator<Item = RecordSet> {
    (0..RECORD_BITS)
        .map(|i| 1 << i)
        .filter(move |bit| set & bit != 0)
}

/// The index of a single bit, for per-record arrays.
pub(super) fn bit_index(bit: RecordSet) -> usize {
    bit.trailing_zeros() as usize
}

/// The TTL we give a record (RFC 6762 §10: 120 s for records naming the host).
pub(super) fn ttl_of(bit: RecordSet) -> u32 {
    if bit & (PTR | TXT | SERVICES_PTR | NSEC_INSTANCE) != 0 {
        OTHER_RECORD_TTL
    } else {
        HOST_RECORD_TTL
    }
}

/// Whether a record is unique (cache-flush bit in multicast, RFC 6762 §10.2).
pub(super) fn is_unique(bit: RecordSet) -> bool {
    bit & SHARED == 0
}

/// Which of our names a question or record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OurName {
    /// `_hap._tcp.local`.
    ServiceType,
    /// `_services._dns-sd._udp.local`.
    Services,
    /// `<instance>._hap._tcp.local`.
    Instance,
    /// `<host>.local`.
    Host,
}

/// What is advertised on every interface: the names, the port and the TXT strings.
#[derive(Debug)]
pub(super) struct Service {
    /// The instance label now advertised (after any rename).
    pub(super) instance: heapless::String<MAX_LABEL>,
    /// The host label now advertised (after any rename).
    pub(super) host: heapless::String<MAX_LABEL>,
    pub(super) port: u16,
    pub(super) txt: heapless::Vec<TxtEntry, TXT_KEYS>,
}

/// How records are written into one message.
#[derive(Clone, Copy, Debug)]
pub(super) struct Style {
    /// Set the cache-flush bit on unique records (RFC 6762 §10.2: not in legacy unicast
    /// replies nor in a probe's proposed records).
    pub(super) flush: bool,
    /// The TTL of every record, for goodbyes (0, RFC 6762 §10.1).
    pub(super) ttl: Option<u32>,
    /// The highest TTL, for legacy unicast replies (10 s, RFC 6762 §6.7).
    pub(super) max_ttl: u32,
}

impl Style {
    pub(super) const MULTICAST: Self = Self {
        flush: true,
        ttl: None,
        max_ttl: u32::MAX,
    };
    /// A reply to a QU question, to port 5353: a full mDNS response, cache-flush bits
    /// included (§10.2 forbids them only in legacy unicast replies and probes;
    /// mDNSResponder sets them).
    pub(super) const UNICAST: Self = Self::MULTICAST;
    pub(super) const LEGACY: Self = Self {
        flush: false,
        ttl: None,
        max_ttl: 10,
    };
    /// Proposed records in a probe: no cache-flush bit (RFC 6762 §8.2 compares classes
    /// without it; Avahi sends none).
    pub(super) const PROBE: Self = Self {
        flush: false,
        ..Self::MULTICAST
    };
    pub(super) const GOODBYE: Self = Self {
        flush: true,
        ttl: Some(0),
        max_ttl: u32::MAX,
    };
}

/// The section a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Answer,
    Authority,
    Additional,
}

const HOST_TYPES_A: &[u16] = &[rtype::A];
const HOST_TYPES_AAAA: &[u16] = &[rtype::AAAA];
const HOST_TYPES_BOTH: &[u16] = &[rtype::A, rtype::AAAA];
const INSTANCE_TYPES: &[u16] = &[rtype::TXT, rtype::SRV];

impl Service {
    pub(super) fn instance_name(&self) -> Option<Name<'_>> {
        Name::with_instance(&self.instance, SERVICE_TYPE).ok()
    }

    pub(super) fn host_name(&self) -> Option<Name<'_>> {
        Name::with_instance(&self.host, LOCAL).ok()
    }

    /// Which of our names `name` is.
    pub(super) fn which(&self, name: &NameRef<'_>) -> Option<OurName> {
        let is = |plain: Option<Name<'_>>| plain.is_some_and(|plain| name.eq_name(&plain));
        if is(Name::new(SERVICE_TYPE).ok()) {
            Some(OurName::ServiceType)
        } else if is(Name::new(SERVICES_NAME).ok()) {
            Some(OurName::Services)
        } else if is(self.instance_name()) {
            Some(OurName::Instance)
        } else if is(self.host_name()) {
            Some(OurName::Host)
        } else {
            None
        }
    }

    /// The plain form of one of our names.
    pub(super) fn name(&self, which: OurName) -> Option<Name<'_>> {
        match which {
            OurName::ServiceType => Name::new(SERVICE_TYPE).ok(),
            OurName::Services => Name::new(SERVICES_NAME).ok(),
            OurName::Instance => self.instance_name(),
            OurName::Host => self.host_name(),
        }
    }

    /// The records answering a question for `qtype` on `which`, NSEC for a type the
    /// name lacks (RFC 6762 §6.1).
    pub(super) fn answers(which: OurName, qtype: u16, addresses: &[IpAddr]) -> RecordSet {
        let any = qtype == rtype::ANY;
        match which {
            OurName::ServiceType if any || qtype == rtype::PTR => PTR,
            OurName::Services if any || qtype == rtype::PTR => SERVICES_PTR,
            OurName::ServiceType | OurName::Services => 0,
            OurName::Instance if any => SRV | TXT,
            OurName::Instance if qtype == rtype::SRV => SRV,
            OurName::Instance if qtype == rtype::TXT => TXT,
            OurName::Instance => NSEC_INSTANCE,
            OurName::Host => {
                let of = |want_v4: bool| {
                    addresses
                        .iter()
                        .take(MAX_ADDRESSES)
                        .enumerate()
                        .filter(|(_, a)| a.is_ipv4() == want_v4)
                        .fold(0, |set, (i, _)| set | addr_bit(i))
                };
                let set = match qtype {
                    rtype::ANY => of(true) | of(false),
                    rtype::A => of(true),
                    rtype::AAAA => of(false),
                    _ => 0,
                };
                if set == 0 && !addresses.is_empty() {
                    NSEC_HOST
                } else {
                    set
                }
            }
        }
    }

    /// The additional records for a set of answers (RFC 6763 §12, RFC 6762 §6.2).
    pub(super) fn additionals(answers: RecordSet, addresses: &[IpAddr]) -> RecordSet {
        let addrs = addr_bits(addresses);
        let host = addrs
            | if host_types(addresses).len() < 2 {
                NSEC_HOST
            } else {
                0
            };
        let mut set = 0;
        if answers & PTR != 0 {
            set |= SRV | TXT | host;
        }
        if answers & SRV != 0 {
            set |= host;
        }
        if answers & ADDRS != 0 {
            set |= host;
        }
        if addresses.is_empty() {
            set &= !NSEC_HOST;
        }
        set & !answers
    }

    /// Our record `bit` on an interface with `addresses`, ready to write.
    pub(super) fn record<'x>(
        &'x self,
        bit: RecordSet,
        addresses: &'x [IpAddr],
        style: Style,
    ) -> Option<RecordOut<'x>> {
        let service_type = Name::new(SERVICE_TYPE).ok()?;
        let (name, data) = match bit {
            PTR => (service_type, RecordData::Ptr(self.instance_name()?.into())),
            SERVICES_PTR => (
                Name::new(SERVICES_NAME).ok()?,
                RecordData::Ptr(service_type.into()),
            ),
            SRV => (
                self.instance_name()?,
                RecordData::Srv {
                    priority: 0,
                    weight: 0,
                    port: self.port,
                    target: self.host_name()?.into(),
                },
            ),
            TXT => (self.instance_name()?, RecordData::TxtEntries(&self.txt)),
            NSEC_INSTANCE => {
                let name = self.instance_name()?;
                let data = RecordData::Nsec {
                    next: name.into(),
                    types: INSTANCE_TYPES,
                };
                (name, data)
            }
            NSEC_HOST => {
                let name = self.host_name()?;
                let types = host_types(addresses);
                if types.is_empty() {
                    return None;
                }
                (
                    name,
                    RecordData::Nsec {
                        next: name.into(),
                        types,
                    },
                )
            }
            _ => {
                let index = bit_index(bit).checked_sub(ADDR_SHIFT as usize)?;
                let data = match addresses.get(index)? {
                    IpAddr::V4(v4) => RecordData::A(*v4),
                    IpAddr::V6(v6) => RecordData::Aaaa(*v6),
                };
                (self.host_name()?, data)
            }
        };
        let ttl = style.ttl.unwrap_or(ttl_of(bit)).min(style.max_ttl);
        Some(RecordOut::new(
            name,
            style.flush && is_unique(bit),
            ttl,
            data,
        ))
    }

    /// Writes the records of `set` in `section` until the message is full, and returns
    /// those written. A record that does not fit even an empty message is counted as
    /// written, so that it cannot hold up the queue forever.
    pub(super) fn write(
        &self,
        writer: &mut Writer<'_>,
        section: Section,
        set: RecordSet,
        addresses: &[IpAddr],
        style: Style,
    ) -> RecordSet {
        let mut written = 0;
        for bit in bits(set) {
            let Some(record) = self.record(bit, addresses, style) else {
                written |= bit;
                continue;
            };
            let result = match section {
                Section::Answer => writer.answer(&record),
                Section::Authority => writer.authority(&record),
                Section::Additional => writer.additional(&record),
            };
            match result {
                Ok(()) => written |= bit,
                Err(WriteError::Full) if !writer.is_empty() => break,
                // Refused even alone, or invalid: drop it rather than loop.
                Err(_) => written |= bit,
            }
        }
        written
    }

    /// Which of our records on an interface with `addresses` `record` is, the data
    /// included (the TTL and the cache-flush bit aside).
    pub(super) fn matching(&self, record: &Record<'_>, addresses: &[IpAddr]) -> Option<RecordSet> {
        if record.class != CLASS_IN {
            return None;
        }
        let which = self.which(&record.name)?;
        let is = |name: Option<Name<'_>>, target: &NameRef<'_>| {
            name.is_some_and(|name| target.eq_name(&name))
        };
        match (which, record.rdata) {
            (OurName::ServiceType, RData::Ptr(target)) => {
                is(self.instance_name(), &target).then_some(PTR)
            }
            (OurName::Services, RData::Ptr(target)) => {
                is(Name::new(SERVICE_TYPE).ok(), &target).then_some(SERVICES_PTR)
            }
            (
                OurName::Instance,
                RData::Srv {
                    priority: 0,
                    weight: 0,
                    port,
                    target,
                },
            ) => (port == self.port && is(self.host_name(), &target)).then_some(SRV),
            (OurName::Instance, RData::Txt(txt)) => {
                let mut ours = self.txt.iter();
                let mut theirs = txt.strings();
                loop {
                    match (ours.next(), theirs.next()) {
                        (None, None) => return Some(TXT),
                        (Some(entry), Some(string)) if txt_string_is(entry, string) => {}
                        _ => return None,
                    }
                }
            }
            (OurName::Host, RData::A(v4)) => address_bit(addresses, IpAddr::V4(v4)),
            (OurName::Host, RData::Aaaa(v6)) => address_bit(addresses, IpAddr::V6(v6)),
            _ => None,
        }
    }
}

/// The address types present, for the host's NSEC.
fn host_types(addresses: &[IpAddr]) -> &'static [u16] {
    let v4 = addresses.iter().any(IpAddr::is_ipv4);
    let v6 = addresses.iter().any(IpAddr::is_ipv6);
    match (v4, v6) {
        (true, true) => HOST_TYPES_BOTH,
        (true, false) => HOST_TYPES_A,
        (false, true) => HOST_TYPES_AAAA,
        (false, false) => &[],
    }
}

fn address_bit(addresses: &[IpAddr], address: IpAddr) -> Option<RecordSet> {
    addresses
        .iter()
        .take(MAX_ADDRESSES)
        .position(|a| *a == address)
        .map(addr_bit)
}

/// Whether a TXT string is `key=value` of `entry`, byte for byte.
fn txt_string_is(entry: &TxtEntry, string: &[u8]) -> bool {
    let (key, value) = (entry.key.as_bytes(), entry.value.as_bytes());
    string.len() == key.len() + 1 + value.len()
        && string.starts_with(key)
        && string.get(key.len()) == Some(&b'=')
        && string.ends_with(value)
}
