//! The TCP sockets: where the listener binds, and the options every accepted connection
//! gets. Both `hap-std`'s threads and `hap-smol` use these, so the two behave the same.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::host::StartError;

/// Where an accessory accepts connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bind {
    /// Every address of both families, as HomeKitADK and HAP-NodeJS listen: `[::]` with
    /// `IPV6_V6ONLY` off, so that a controller that tries the AAAA record mDNS publishes
    /// is accepted, and so is one that connects over IPv4 (its address then shows as
    /// IPv4-mapped, `::ffff:a.b.c.d`).
    ///
    /// Where the machine has no IPv6, it listens on `0.0.0.0` instead and logs why. Any
    /// failure to create or bind the IPv6 socket counts as having no IPv6, except that the
    /// port is in use or not allowed: IPv4 would hide that, so it is reported.
    #[default]
    Any,
    /// This address only, with no fallback: `0.0.0.0` is every IPv4 address, `::` every
    /// IPv6 address and no IPv4 one (`IPV6_V6ONLY` on), `127.0.0.1` loopback only.
    Only(IpAddr),
}

impl Bind {
    /// The address of the socket tried first: `::` for [`Bind::Any`].
    fn ip(self) -> IpAddr {
        match self {
            Self::Any => Ipv6Addr::UNSPECIFIED.into(),
            Self::Only(ip) => ip,
        }
    }
}

impl From<IpAddr> for Bind {
    fn from(ip: IpAddr) -> Self {
        Self::Only(ip)
    }
}

/// How many connections the kernel queues for `accept`, as std's `TcpListener::bind`.
const BACKLOG: i32 = 128;

/// Creates the listener for `bind` on `port` (0 picks a free port), and returns it with
/// the address it listens on.
pub fn listen(bind: Bind, port: u16) -> Result<(TcpListener, SocketAddr), StartError> {
    let error = |address, source| StartError::Bind { address, source };
    let listener = match bind {
        Bind::Only(ip) => {
            let address = SocketAddr::new(ip, port);
            listen_on(address, true).map_err(|e| error(address, e))?
        }
        Bind::Any => {
            let any6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
            match listen_on(any6, false) {
                Ok(listener) => listener,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    return Err(error(any6, e));
                }
                Err(e) => {
                    log::warn!("cannot listen on {any6} ({e}); listening on IPv4 only");
                    let any4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
                    listen_on(any4, true).map_err(|e| error(any4, e))?
                }
            }
        }
    };
    match listener.local_addr() {
        Ok(address) => Ok((listener, address)),
        Err(e) => Err(error(SocketAddr::new(bind.ip(), port), e)),
    }
}

/// A listening socket on `address`; `v6_only` only matters for IPv6.
fn listen_on(address: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        // Set either way: the system default differs (Linux's `bindv6only`, Windows).
        socket.set_only_v6(v6_only)?;
    }
    // As std's listener: a restarted accessory gets its port back while the old
    // connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// How long a connection may be silent before the system starts probing the peer.
///
/// An iPhone that leaves the Wi-Fi sends no FIN: without keepalive its connection (a slot
/// of the connection limit, its subscriptions and buffers) would stay until the system
/// default of two hours. Controllers that are there answer the probes from their kernel
/// without waking the Home app, and a probe costs a few dozen bytes.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// How long between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How many unanswered probes close the connection: a peer that vanished is noticed
/// about a minute (30 s + 3 × 10 s) after it last sent anything.
pub const KEEPALIVE_PROBES: u32 = 3;

/// How long sent bytes may stay unacknowledged before the connection is closed (Linux
/// and Android only). Keepalive does not probe while data is in flight, so without this
/// an event sent to a vanished iPhone would be retransmitted for about 15 minutes. It
/// equals the keepalive's minute.
pub const UNACKNOWLEDGED_TIMEOUT: Duration = Duration::from_secs(60);

/// Sets up an accepted connection: no Nagle delay (events are small and must not wait for
/// the peer's delayed acknowledgement), and keepalive ([`KEEPALIVE_IDLE`],
/// [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_PROBES`]) so that a peer that vanished without a
/// FIN is eventually closed by the system.
pub fn configure_accepted(stream: &TcpStream) -> io::Result<()> {
    let socket = SockRef::from(stream);
    socket.set_tcp_nodelay(true)?;
    let keepalive = TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "android",
        target_os = "freebsd",
        target_os = "ios",
        target_os = "linux",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "windows",
    ))]
    let keepalive = keepalive
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "android", target_os = "linux"))]
    socket.set_tcp_user_timeout(Some(UNACKNOWLEDGED_TIMEOUT))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;

    fn loopback(listener: &(TcpListener, SocketAddr), ip: IpAddr) -> io::Result<TcpStream> {
        TcpStream::connect(SocketAddr::new(ip, listener.1.port()))
    }

    fn has_ipv6_loopback() -> bool {
        TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
    }

    #[test]
    fn accepted_connections_get_keepalive_and_no_delay() {
        let listener = listen(Bind::Only(Ipv4Addr::LOCALHOST.into()), 0).unwrap();
        let _client = loopback(&listener, Ipv4Addr::LOCALHOST.into()).unwrap();
        let (accepted, _) = listener.0.accept().unwrap();
        let socket = SockRef::from(&accepted);
        assert!(!socket.keepalive().unwrap(), "off before");
        configure_accepted(&accepted).unwrap();
        assert!(socket.keepalive().unwrap());
        assert!(socket.tcp_nodelay().unwrap());
        #[cfg(any(target_os = "android", target_os = "linux"))]
        {
            assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
            assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
            assert_eq!(
                socket.tcp_user_timeout().unwrap(),
                Some(UNACKNOWLEDGED_TIMEOUT)
            );
        }
    }

    #[test]
    fn the_default_accepts_both_families() {
        let listener = listen(Bind::Any, 0).unwrap();
        if !has_ipv6_loopback() {
            // Listening on `[::]` or, without IPv6 at all, on `0.0.0.0`.
            eprintln!(
                "no IPv6 loopback here: {} checked over IPv4 only",
                listener.1
            );
            loopback(&listener, Ipv4Addr::LOCALHOST.into()).unwrap();
            return;
        }
        assert_eq!(listener.1.ip(), IpAddr::from(Ipv6Addr::UNSPECIFIED));
        loopback(&listener, Ipv4Addr::LOCALHOST.into()).expect("IPv4");
        loopback(&listener, Ipv6Addr::LOCALHOST.into()).expect("IPv6");
    }

    #[test]
    fn an_address_binds_that_family_only() {
        let v4 = listen(Bind::Only(Ipv4Addr::UNSPECIFIED.into()), 0).unwrap();
        loopback(&v4, Ipv4Addr::LOCALHOST.into()).expect("IPv4");
        if !has_ipv6_loopback() {
            eprintln!("no IPv6 loopback here: IPv6 binds not checked");
            return;
        }
        let refused = loopback(&v4, Ipv6Addr::LOCALHOST.into()).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let v6 = listen(Bind::Only(Ipv6Addr::UNSPECIFIED.into()), 0).unwrap();
        loopback(&v6, Ipv6Addr::LOCALHOST.into()).expect("IPv6");
        let refused = loopback(&v6, Ipv4Addr::LOCALHOST.into()).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_taken_port_is_an_error_not_a_fallback() {
        let taken = listen(Bind::Any, 0).unwrap();
        let port = taken.1.port();
        match listen(Bind::Any, port) {
            Err(StartError::Bind { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::AddrInUse)
            }
            other => panic!("{other:?}"),
        }
    }
}
