//! The interfaces the built-in responder serves, and the interface a datagram came in on.
//!
//! Without `IP_PKTINFO` (which needs `recvmsg` and its control messages, out of reach
//! without `unsafe`), the arrival interface is read from the source address: an IPv6
//! link-local source carries its scope id (the interface index), and any other source
//! must sit in the subnet of one of an interface's addresses. A source on no served
//! subnet is off-link, and RFC 6762 §11 says to drop it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hap_core::mdns::responder::MAX_ADDRESSES;
use hap_core::mdns::InterfaceId;

/// One interface as the responder serves it: its index, name and addresses with their
/// prefix lengths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) id: InterfaceId,
    pub(crate) name: String,
    /// Addresses and prefix lengths, IPv4 first, then IPv6 link-local, then other IPv6;
    /// all of them, since each prefix counts for the on-link check even when its address
    /// is not advertised (see [`Link::addresses`]).
    pub(crate) nets: Vec<(IpAddr, u8)>,
}

impl Link {
    /// The addresses advertised, for the responder and the banner: the first
    /// [`MAX_ADDRESSES`], since the responder takes no more per interface.
    pub(crate) fn addresses(&self) -> Vec<IpAddr> {
        self.nets
            .iter()
            .take(MAX_ADDRESSES)
            .map(|(address, _)| *address)
            .collect()
    }

    /// The first IPv4 address: the one `IP_MULTICAST_IF` selects the interface by.
    pub(crate) fn ipv4(&self) -> Option<Ipv4Addr> {
        self.nets.iter().find_map(|(address, _)| match address {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    }

    /// Whether `source` is in the subnet of one of its addresses.
    fn holds(&self, source: IpAddr) -> bool {
        self.nets
            .iter()
            .any(|(address, prefix)| same_subnet(*address, *prefix, source))
    }
}

/// Whether `a` and `b` agree in their first `prefix` bits (and are the same family).
fn same_subnet(a: IpAddr, prefix: u8, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn is_ipv6_link_local(address: &Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

/// The interface a datagram from `source` (with the scope id the socket reported, 0 for
/// IPv4) came in on, among `links`; `None` for an off-link source (RFC 6762 §11).
///
/// - An IPv6 link-local source names its interface by its scope id.
/// - Any other source must be in the subnet of one of an interface's addresses; the
///   first interface that holds it wins.
/// - An IPv4 link-local source (169.254/16) outside every subnet belongs to the only
///   interface with an IPv4 address, if there is exactly one: such a peer has not been
///   given an address in the subnet, yet it is on the link.
pub(crate) fn interface_of(source: IpAddr, scope_id: u32, links: &[Link]) -> Option<InterfaceId> {
    if let IpAddr::V6(v6) = source {
        if is_ipv6_link_local(&v6) {
            return links
                .iter()
                .find(|link| link.id.0 == scope_id)
                .map(|link| link.id);
        }
    }
    let source = match source {
        // A v4-mapped source from a dual-stack socket is an IPv4 peer.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
        v4 => v4,
    };
    if let Some(link) = links.iter().find(|link| link.holds(source)) {
        return Some(link.id);
    }
    match source {
        IpAddr::V4(v4) if v4.is_link_local() => {
            let mut with_v4 = links.iter().filter(|link| link.ipv4().is_some());
            match (with_v4.next(), with_v4.next()) {
                (Some(only), None) => Some(only.id),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The Linux flag of an interface that takes multicast.
#[cfg(target_os = "linux")]
const IFF_MULTICAST: u32 = 0x1000;

/// Whether interface `name` takes multicast: its `IFF_MULTICAST` flag on Linux; assumed
/// elsewhere, or when the flag cannot be read.
fn is_multicast_capable(name: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"));
        if let Some(flags) = flags
            .ok()
            .and_then(|text| u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok())
        {
            return flags & IFF_MULTICAST != 0;
        }
    }
    let _ = name;
    true
}

/// The interfaces to serve now, by index: with `only` empty, every interface that is up,
/// takes multicast and is not loopback; else the interfaces named in `only` that are up
/// (loopback included). Each keeps all its addresses, in the order [`order`] gives.
pub(crate) fn scan(only: &[String]) -> std::io::Result<Vec<Link>> {
    let mut links: Vec<Link> = Vec::new();
    for interface in if_addrs::get_if_addrs()? {
        let Some(index) = interface.index else {
            continue;
        };
        let wanted = if only.is_empty() {
            !interface.is_loopback() && interface.name != "lo"
        } else {
            only.contains(&interface.name)
        };
        if !wanted || !interface.is_oper_up() {
            continue;
        }
        let net = match &interface.addr {
            if_addrs::IfAddr::V4(v4) => (IpAddr::V4(v4.ip), v4.prefixlen),
            if_addrs::IfAddr::V6(v6) => (IpAddr::V6(v6.ip), v6.prefixlen),
        };
        match links.iter_mut().find(|link| link.id.0 == index) {
            Some(link) => link.nets.push(net),
            None => {
                if only.is_empty() && !is_multicast_capable(&interface.name) {
                    continue;
                }
                links.push(Link {
                    id: InterfaceId(index),
                    name: interface.name.clone(),
                    nets: vec![net],
                });
            }
        }
    }
    for link in &mut links {
        order(&mut link.nets);
    }
    links.sort_by_key(|link| link.id);
    Ok(links)
}

/// Sorts addresses IPv4 first, then IPv6 link-local, then other IPv6, without
/// duplicates. Only the first [`MAX_ADDRESSES`] are advertised ([`Link::addresses`]); the
/// rest still define which sources are on-link.
fn order(nets: &mut Vec<(IpAddr, u8)>) {
    nets.sort_by_key(|(address, _)| match address {
        IpAddr::V4(_) => 0,
        IpAddr::V6(v6) if is_ipv6_link_local(v6) => 1,
        IpAddr::V6(_) => 2,
    });
    nets.dedup();
    if nets.len() > MAX_ADDRESSES {
        log::debug!(
            "mDNS: advertising only the first {MAX_ADDRESSES} of {} addresses: {:?}",
            nets.len(),
            nets
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: u32, name: &str, nets: &[(&str, u8)]) -> Link {
        Link {
            id: InterfaceId(id),
            name: name.into(),
            nets: nets
                .iter()
                .map(|(address, prefix)| (address.parse().unwrap(), *prefix))
                .collect(),
        }
    }

    fn links() -> Vec<Link> {
        vec![
            link(
                2,
                "eth0",
                &[("192.0.2.2", 24), ("fe80::2", 64), ("2001:db8::2", 64)],
            ),
            link(3, "wlan0", &[("198.51.100.7", 25), ("fe80::7", 64)]),
        ]
    }

    fn of(source: &str, scope: u32) -> Option<u32> {
        interface_of(source.parse().unwrap(), scope, &links()).map(|id| id.0)
    }

    #[test]
    fn a_source_in_an_interface_subnet_names_it() {
        assert_eq!(of("192.0.2.200", 0), Some(2));
        assert_eq!(of("192.0.2.2", 0), Some(2), "our own looped-back datagram");
        assert_eq!(of("198.51.100.100", 0), Some(3));
        assert_eq!(of("2001:db8::99", 0), Some(2));
        assert_eq!(of("::ffff:192.0.2.9", 0), Some(2), "v4-mapped");
    }

    #[test]
    fn an_ipv6_link_local_source_names_its_scope() {
        assert_eq!(of("fe80::1234", 3), Some(3));
        assert_eq!(of("fe80::1234", 2), Some(2));
        assert_eq!(of("fe80::1234", 9), None, "an interface not served");
        assert_eq!(of("fe80::1234", 0), None, "no scope: unknown link");
    }

    #[test]
    fn an_off_link_source_is_dropped() {
        assert_eq!(of("198.51.100.200", 0), None, "outside the /25");
        assert_eq!(of("203.0.113.1", 0), None);
        assert_eq!(of("2001:db8:1::1", 0), None);
        assert_eq!(of("169.254.1.1", 0), None, "two interfaces with IPv4");
    }

    #[test]
    fn an_ipv4_link_local_source_goes_to_the_only_ipv4_interface() {
        let only = vec![links().remove(0), link(4, "v6only", &[("fe80::4", 64)])];
        let source = "169.254.7.7".parse().unwrap();
        assert_eq!(interface_of(source, 0, &only), Some(InterfaceId(2)));
    }

    #[test]
    fn loopback_sources_match_loopback_when_served() {
        let lo = vec![link(1, "lo", &[("127.0.0.1", 8), ("::1", 128)])];
        assert_eq!(
            interface_of("127.0.0.1".parse().unwrap(), 0, &lo),
            Some(InterfaceId(1))
        );
        assert_eq!(
            interface_of("::1".parse().unwrap(), 0, &lo),
            Some(InterfaceId(1))
        );
        assert_eq!(
            interface_of("127.0.0.1".parse().unwrap(), 0, &links()),
            None
        );
    }

    #[test]
    fn addresses_are_ordered_and_only_the_advertised_ones_capped() {
        let mut eth0 = link(
            2,
            "eth0",
            &[
                ("2001:db8::1", 64),
                ("2001:db8::2", 64),
                ("fe80::1", 64),
                ("192.0.2.1", 24),
                ("2001:db8::3", 64),
                ("2001:db8::3", 64),
            ],
        );
        order(&mut eth0.nets);
        let shown: Vec<String> = eth0.addresses().iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            ["192.0.2.1", "fe80::1", "2001:db8::1", "2001:db8::2"]
        );
        assert_eq!(eth0.nets.len(), 5, "the duplicate went, no prefix did");
    }

    #[test]
    fn a_prefix_whose_address_is_not_advertised_is_still_on_link() {
        let mut eth0 = link(
            2,
            "eth0",
            &[
                ("192.0.2.1", 24),
                ("fe80::1", 64),
                ("2001:db8::1", 64),
                ("2001:db8:1::1", 64),
                ("fd00:1::1", 64),
            ],
        );
        order(&mut eth0.nets);
        let ula: IpAddr = "fd00:1::1".parse().unwrap();
        assert!(!eth0.addresses().contains(&ula), "fifth: not advertised");
        let source = "fd00:1::99".parse().unwrap();
        assert_eq!(interface_of(source, 0, &[eth0]), Some(InterfaceId(2)));
    }

    #[test]
    fn subnets_compare_the_prefix_only() {
        let a = "192.0.2.1".parse().unwrap();
        assert!(same_subnet(a, 0, "203.0.113.9".parse().unwrap()));
        assert!(same_subnet(a, 32, a));
        assert!(!same_subnet(a, 32, "192.0.2.2".parse().unwrap()));
        assert!(!same_subnet(a, 8, "::1".parse().unwrap()));
    }
}
