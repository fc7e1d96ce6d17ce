//! Where the light listens: by default on `[::]`, for IPv6 and IPv4 at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::accessory::{Accessory, SETUP_CODE};
use crate::controller::Controller;
use crate::harness::{check_paired_served, check_unpaired_served, Case, Context, Ids, ADMIN};

pub(crate) const CASES: &[Case] = &[Case {
    name: "net/ipv6-default-bind",
    run: ipv6_default_bind,
}];

/// Whether the machine has `::1`, as the kernel lists its IPv6 addresses.
fn has_ipv6_loopback() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|table| {
        table
            .lines()
            .any(|line| line.starts_with("00000000000000000000000000000001 "))
    })
}

fn ipv6_default_bind(context: &Context) -> String {
    let mut accessory = Accessory::start_on(&context.target, None, &context.data("light"), &[]);
    let listening = accessory.listening;
    let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listening.port());
    if !has_ipv6_loopback() {
        accessory.address = v4;
        return format!(
            "IPV6 NOT TESTED: this machine has no ::1 (not in /proc/net/if_inet6); the light listened on {listening} and over 127.0.0.1 {}",
            check_unpaired_served(&accessory)
        );
    }
    assert_eq!(
        listening.ip(),
        IpAddr::from(Ipv6Addr::UNSPECIFIED),
        "the light printed {listening}"
    );
    let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listening.port());
    let mut admin = Controller::connect(v6, ADMIN);
    let pairing = admin.pair_setup(SETUP_CODE);
    let ids = Ids::of(&v6, &pairing);
    check_paired_served(v6, &pairing, &ids);
    // The same socket takes IPv4 too.
    check_paired_served(v4, &pairing, &ids);
    format!(
        "listening on {listening}: over [::1] a controller paired, then verified, read and wrote; over 127.0.0.1 it verified, read and wrote"
    )
}
