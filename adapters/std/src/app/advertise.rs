//! Choosing how the accessory is advertised (`--mdns`), and the banner line saying so.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hap_core::mdns::{MdnsEvent, NameKind};

use super::flags::{Flags, MdnsMode};
use super::inbox::{Inbox, Inner};
use super::AppError;
use crate::avahi::{AvahiError, AvahiResponder};
use crate::host::Announcer;
use crate::mdns::{MdnsConfig, MdnsResponder, ServedInterface};

/// How the accessory ended up advertised, for the banner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Advertising {
    /// By the built-in responder, on these interfaces.
    Builtin(Vec<ServedInterface>),
    /// Through avahi-daemon.
    Avahi,
    /// Not at all.
    Off,
}

/// How long avahi-daemon may stay not ready (registering its host name, as at boot)
/// before `auto` gives up on it and `avahi` fails.
const AVAHI_READY_WAIT: Duration = Duration::from_secs(5);

/// How long to wait between two tries while avahi-daemon is not ready.
const AVAHI_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The responder `flags` ask for, with what it hears going to `inbox`: `auto` tries
/// avahi-daemon and falls back to the built-in responder, saying why in the log. With
/// interfaces named (`--mdns-interface`), `auto` takes the built-in responder: Avahi
/// would advertise on all of the daemon's interfaces.
pub(crate) fn start(
    flags: &Flags,
    inbox: &Arc<Inbox>,
) -> Result<(Option<Box<dyn Announcer>>, Advertising), AppError> {
    let builtin = || {
        let config = MdnsConfig {
            interfaces: flags.mdns_interfaces.clone(),
            ..MdnsConfig::default()
        };
        let responder = MdnsResponder::new(config, sink(inbox.clone()))
            .map_err(|e| AppError::Mdns(e.to_string()))?;
        let served = responder.interfaces();
        Ok::<_, AppError>((
            Some(Box::new(responder) as Box<dyn Announcer>),
            Advertising::Builtin(served),
        ))
    };
    let avahi = || {
        until_ready(AVAHI_READY_WAIT, AVAHI_RETRY_PAUSE, || {
            AvahiResponder::connect(sink(inbox.clone()))
        })
    };
    match flags.mdns_mode() {
        MdnsMode::Off => Ok((None, Advertising::Off)),
        MdnsMode::Builtin => builtin(),
        MdnsMode::Avahi => match avahi() {
            Ok(responder) => {
                log::info!("mDNS: registering through avahi-daemon (--mdns avahi)");
                Ok((Some(Box::new(responder)), Advertising::Avahi))
            }
            Err(e) => Err(AppError::Mdns(format!(
                "--mdns avahi, but avahi-daemon cannot be reached: {e}"
            ))),
        },
        // `auto`, and any mode added later.
        _ if !flags.mdns_interfaces.is_empty() => {
            log::info!(
                "mDNS: using the built-in responder (--mdns auto with --mdns-interface): \
                 avahi-daemon would advertise on all of its interfaces"
            );
            builtin()
        }
        _ => match avahi() {
            Ok(responder) => {
                log::info!("mDNS: avahi-daemon runs; registering through it (--mdns auto)");
                Ok((Some(Box::new(responder)), Advertising::Avahi))
            }
            Err(e) => {
                log::info!(
                    "mDNS: avahi-daemon cannot be reached ({e}); using the built-in \
                     responder (--mdns auto)"
                );
                builtin()
            }
        },
    }
}

/// Calls `connect` until avahi-daemon is ready: while it answers
/// [`AvahiError::NotReady`] (still registering its host name, as at boot), tries again
/// every `pause` for up to `limit`. Any other answer is returned at once.
fn until_ready<T>(
    limit: Duration,
    pause: Duration,
    mut connect: impl FnMut() -> Result<T, AvahiError>,
) -> Result<T, AvahiError> {
    let deadline = Instant::now() + limit;
    loop {
        match connect() {
            Err(AvahiError::NotReady { state }) if Instant::now() + pause <= deadline => {
                log::debug!("mDNS: avahi-daemon is not ready (state {state}); trying again");
                std::thread::sleep(pause);
            }
            other => return other,
        }
    }
}

/// What a responder reports, as the application loop wants it: a new instance name to
/// store and show; the rest is in the responder's own log.
fn sink(inbox: Arc<Inbox>) -> Box<dyn Fn(MdnsEvent) + Send + Sync> {
    Box::new(move |event| match event {
        MdnsEvent::Renamed {
            kind: NameKind::Instance,
            name,
        } => inbox.post(Inner::Renamed(name.as_str().to_owned())),
        MdnsEvent::Renamed {
            kind: NameKind::Host,
            name,
        } => log::info!("mDNS: another host has our host name; ours is now {name}.local"),
        _ => {}
    })
}

/// The banner line: how the accessory named `name` is advertised.
pub(crate) fn banner_line(name: &str, advertising: &Advertising) -> String {
    match advertising {
        Advertising::Off => "Not advertised (--mdns off)".to_owned(),
        Advertising::Avahi => format!("Advertised as {name:?} through avahi-daemon"),
        Advertising::Builtin(served) if served.is_empty() => format!(
            "Advertised as {name:?} by the built-in mDNS responder, once an interface is up"
        ),
        Advertising::Builtin(served) => {
            let on: Vec<String> = served
                .iter()
                .map(|iface| {
                    let addresses: Vec<String> =
                        iface.addresses.iter().map(IpAddr::to_string).collect();
                    format!("{} ({})", iface.name, addresses.join(", "))
                })
                .collect();
            format!(
                "Advertised as {name:?} by the built-in mDNS responder on {}",
                on.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hap_core::mdns::InterfaceId;

    #[test]
    fn the_banner_says_how_and_where() {
        let eth0 = ServedInterface {
            name: "eth0".into(),
            id: InterfaceId(2),
            addresses: vec!["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()],
        };
        assert_eq!(
            banner_line("Virtual Light", &Advertising::Builtin(vec![eth0.clone()])),
            "Advertised as \"Virtual Light\" by the built-in mDNS responder on eth0 \
             (192.0.2.2, 2001:db8::2)"
        );
        let wlan0 = ServedInterface {
            name: "wlan0".into(),
            id: InterfaceId(3),
            addresses: vec!["198.51.100.7".parse().unwrap()],
        };
        assert!(banner_line("L", &Advertising::Builtin(vec![eth0, wlan0]))
            .ends_with("on eth0 (192.0.2.2, 2001:db8::2), wlan0 (198.51.100.7)"));
        assert_eq!(
            banner_line("L", &Advertising::Builtin(Vec::new())),
            "Advertised as \"L\" by the built-in mDNS responder, once an interface is up"
        );
        assert_eq!(
            banner_line("Virtual Light", &Advertising::Avahi),
            "Advertised as \"Virtual Light\" through avahi-daemon"
        );
        assert_eq!(
            banner_line("L", &Advertising::Off),
            "Not advertised (--mdns off)"
        );
    }

    #[test]
    fn off_starts_nothing_and_avahi_without_a_daemon_fails_clearly() {
        let inbox = Arc::new(Inbox::default());
        let flags = Flags {
            no_mdns: true,
            ..Flags::default()
        };
        let (announcer, advertising) = start(&flags, &inbox).unwrap();
        assert!(announcer.is_none());
        assert_eq!(advertising, Advertising::Off);

        // Where no avahi-daemon runs (as here, usually), `avahi` refuses to start and
        // says why; where one runs, it registers through it.
        let flags = Flags {
            mdns: MdnsMode::Avahi,
            ..Flags::default()
        };
        match start(&flags, &inbox) {
            Err(error) => {
                let text = error.to_string();
                assert!(text.contains("--mdns avahi, but avahi-daemon"), "{text}");
            }
            Ok((announcer, advertising)) => {
                assert!(announcer.is_some());
                assert_eq!(advertising, Advertising::Avahi);
            }
        }
    }

    #[test]
    fn a_daemon_not_ready_is_tried_again_for_a_while() {
        let mut tries = 0;
        let ready = until_ready(Duration::from_secs(5), Duration::from_millis(1), || {
            tries += 1;
            if tries < 3 {
                Err(AvahiError::NotReady { state: 1 })
            } else {
                Ok(tries)
            }
        });
        assert_eq!(ready.unwrap(), 3);

        let start = Instant::now();
        let mut tries = 0;
        let never = until_ready(Duration::from_millis(50), Duration::from_millis(10), || {
            tries += 1;
            Err::<(), _>(AvahiError::NotReady { state: 1 })
        });
        assert!(matches!(never, Err(AvahiError::NotReady { state: 1 })));
        assert!(start.elapsed() < Duration::from_secs(1), "bounded");
        assert!((2..=6).contains(&tries), "{tries} tries");

        let mut tries = 0;
        let absent = until_ready(Duration::from_secs(5), Duration::from_millis(1), || {
            tries += 1;
            Err::<(), _>(AvahiError::NotRunning)
        });
        assert!(matches!(absent, Err(AvahiError::NotRunning)));
        assert_eq!(tries, 1, "only NotReady is tried again");
    }

    #[test]
    fn auto_with_interfaces_named_takes_the_built_in_responder() {
        let inbox = Arc::new(Inbox::default());
        let flags = Flags {
            mdns: MdnsMode::Auto,
            mdns_interfaces: vec!["lo".into()],
            ..Flags::default()
        };
        let (announcer, advertising) = start(&flags, &inbox).unwrap();
        assert!(announcer.is_some());
        assert!(
            matches!(&advertising, Advertising::Builtin(served)
                if served.iter().all(|iface| iface.name == "lo")),
            "{advertising:?}"
        );
    }

    #[test]
    fn an_instance_rename_reaches_the_inbox() {
        let inbox = Arc::new(Inbox::default());
        let events = sink(inbox.clone());
        events(MdnsEvent::Withdrawn);
        events(MdnsEvent::Renamed {
            kind: NameKind::Host,
            name: "light-2".try_into().unwrap(),
        });
        events(MdnsEvent::Renamed {
            kind: NameKind::Instance,
            name: "Light (2)".try_into().unwrap(),
        });
        let message = inbox.recv_until(Some(std::time::Instant::now()));
        assert!(matches!(message.map(|m| m.0), Some(Inner::Renamed(name)) if name == "Light (2)"));
        assert!(inbox.recv_until(Some(std::time::Instant::now())).is_none());
    }
}
