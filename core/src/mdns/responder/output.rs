//! Writing datagrams: what is ready, in what order, and taking it off the queue once
//! written.

use core::net::IpAddr;

use super::records::{self, bits, RecordSet, Section, Service, Style};
use super::schedule::{family_of, Outbox, LEGACY_MAX};
use super::{Destination, MdnsResponder, Transmit};
use crate::mdns::wire::{rtype, Header, Name, RecordData, RecordOut, Writer, CLASS_IN};
use crate::mdns::SERVICE_TYPE;
use crate::time::Instant;

/// One datagram to write.
#[derive(Clone, Copy, Debug)]
pub(super) enum Output {
    Unicast,
    Goodbye(usize),
    Stale(usize),
    Probe(usize),
    Announce(usize),
    Response(usize),
}

impl MdnsResponder {
    /// The next datagram to write, if any is ready.
    pub(super) fn next_output(&self, now: Instant) -> Option<(usize, Output)> {
        for (index, iface) in self.ifaces.iter().enumerate() {
            if !iface.unicast.is_empty() {
                return Some((index, Output::Unicast));
            }
            for (family, outbox) in iface.outbox.iter().enumerate() {
                let output = if outbox.goodbye != 0 {
                    Output::Goodbye(family)
                } else if outbox.stale {
                    Output::Stale(family)
                } else if outbox.probe {
                    Output::Probe(family)
                } else if outbox.announce != 0 {
                    Output::Announce(family)
                } else if outbox.answers != 0 && outbox.due.is_some_and(|due| due <= now) {
                    Output::Response(family)
                } else {
                    continue;
                };
                return Some((index, output));
            }
        }
        None
    }

    /// Writes one datagram and takes what it holds off the queue.
    pub(super) fn write_output<'b>(
        &mut self,
        now: Instant,
        index: usize,
        output: Output,
        buf: &'b mut [u8],
    ) -> Option<Transmit<'b>> {
        let service = &self.service;
        let iface = &mut self.ifaces[index];
        let id = iface.id;
        let addresses = &iface.addresses;
        let multicast = |family: usize| Destination::Multicast(family_of(family));
        let (destination, len) = match output {
            Output::Unicast => {
                let reply = iface.unicast.front_mut()?;
                let limit = if reply.legacy { LEGACY_MAX } else { buf.len() };
                // Avahi and python-zeroconf answer a legacy query (RD set) with QR|AA
                // only; so do we.
                let flags = Header::RESPONSE;
                let mut writer = Writer::new(&mut buf[..limit], reply.id, flags).ok()?;
                for question in &reply.questions {
                    if let Some(name) = service.name(question.name) {
                        let _ = writer.question(name, question.qtype, question.qclass, false);
                    }
                }
                let style = if reply.legacy {
                    Style::LEGACY
                } else {
                    Style::UNICAST
                };
                let written = service.write(
                    &mut writer,
                    Section::Answer,
                    reply.answers,
                    addresses,
                    style,
                );
                reply.answers &= !written;
                if reply.answers != 0 && reply.legacy {
                    // §6.7: a legacy querier retries over TCP, which we do not serve;
                    // TC tells it the answer is partial.
                    writer.set_flags(flags | Header::TC);
                    reply.answers = 0;
                }
                if reply.answers == 0 {
                    // Additionals only where they fit: they are a courtesy.
                    service.write(
                        &mut writer,
                        Section::Additional,
                        reply.additionals,
                        addresses,
                        style,
                    );
                }
                let destination = Destination::Unicast(reply.destination);
                if reply.answers == 0 {
                    iface.unicast.pop_front();
                }
                (destination, writer.finish().len())
            }
            Output::Goodbye(family) => {
                let outbox = &mut iface.outbox[family];
                let mut writer = Writer::new(buf, 0, Header::RESPONSE).ok()?;
                let written = service.write(
                    &mut writer,
                    Section::Answer,
                    outbox.goodbye,
                    addresses,
                    Style::GOODBYE,
                );
                outbox.goodbye &= !written;
                (multicast(family), writer.finish().len())
            }
            Output::Stale(family) => {
                let mut writer = Writer::new(buf, 0, Header::RESPONSE).ok()?;
                write_stale(
                    &mut writer,
                    iface.stale_ptr.as_deref(),
                    &iface.stale_addresses,
                    service,
                );
                iface.outbox[family].stale = false;
                if iface.outbox.iter().all(|outbox| !outbox.stale) {
                    iface.stale_ptr = None;
                    iface.stale_addresses.clear();
                }
                (multicast(family), writer.finish().len())
            }
            Output::Probe(family) => {
                iface.outbox[family].probe = false;
                let mut writer = Writer::new(buf, 0, Header::QUERY).ok()?;
                // §8.1: one ANY question per name, proposed records in Authority. QM,
                // not the QU §8.1 suggests: where port 5353 is shared (Avahi and us, or
                // two accessories on one host), a defender's unicast reply reaches only
                // one of the sockets and we could miss it (§15.1); a multicast reply
                // reaches all. Avahi probes QM too (avahi-core/probe-sched.c).
                for name in [service.instance_name(), service.host_name()]
                    .into_iter()
                    .flatten()
                {
                    let _ = writer.question(name, rtype::ANY, CLASS_IN, false);
                }
                let proposed = records::SRV | records::TXT | records::addr_bits(addresses);
                service.write(
                    &mut writer,
                    Section::Authority,
                    proposed,
                    addresses,
                    Style::PROBE,
                );
                (multicast(family), writer.finish().len())
            }
            Output::Announce(family) => {
                let outbox = &mut iface.outbox[family];
                let mut writer = Writer::new(buf, 0, Header::RESPONSE).ok()?;
                let written = service.write(
                    &mut writer,
                    Section::Answer,
                    outbox.announce,
                    addresses,
                    Style::MULTICAST,
                );
                outbox.announce &= !written;
                mark_multicast(outbox, written, now);
                (multicast(family), writer.finish().len())
            }
            Output::Response(family) => {
                let outbox = &mut iface.outbox[family];
                let mut writer = Writer::new(buf, 0, Header::RESPONSE).ok()?;
                let written = service.write(
                    &mut writer,
                    Section::Answer,
                    outbox.answers,
                    addresses,
                    Style::MULTICAST,
                );
                outbox.answers &= !written;
                let additionals = outbox.additionals & !written;
                if outbox.answers == 0 {
                    service.write(
                        &mut writer,
                        Section::Additional,
                        additionals,
                        addresses,
                        Style::MULTICAST,
                    );
                    outbox.additionals = 0;
                    outbox.due = None;
                }
                mark_multicast(outbox, written, now);
                (multicast(family), writer.finish().len())
            }
        };
        Some(Transmit {
            iface: id,
            destination,
            payload: &buf[..len],
        })
    }
}

/// Remembers when records were multicast, for the rate limit and QU (§5.4, §6).
fn mark_multicast(outbox: &mut Outbox, written: RecordSet, now: Instant) {
    for bit in bits(written) {
        outbox.last_multicast[records::bit_index(bit)] = Some(now);
    }
}

/// The goodbye (TTL 0) of records given up: the PTR of an old instance name, removed
/// addresses (§8.4, §10.1).
fn write_stale(
    writer: &mut Writer<'_>,
    old_instance: Option<&str>,
    addresses: &[IpAddr],
    service: &Service,
) {
    if let (Some(old), Ok(service_type)) = (old_instance, Name::new(SERVICE_TYPE)) {
        if let Ok(old_name) = Name::with_instance(old, SERVICE_TYPE) {
            let _ = writer.answer(&RecordOut::new(
                service_type,
                false,
                0,
                RecordData::Ptr(old_name.into()),
            ));
        }
    }
    if let Some(host) = service.host_name() {
        for address in addresses {
            let data = match address {
                IpAddr::V4(v4) => RecordData::A(*v4),
                IpAddr::V6(v6) => RecordData::Aaaa(*v6),
            };
            let _ = writer.answer(&RecordOut::new(host, true, 0, data));
        }
    }
}
