//! The standard command line of an accessory program, for `clap`'s derive API.

use std::net::IpAddr;
use std::path::PathBuf;

use hap_core::setup::{SetupCode, SetupId};

use crate::Bind;

/// The flags every accessory program takes. Flatten them into your own arguments:
///
/// ```
/// use clap::Parser as _;
///
/// /// A garage door opener.
/// #[derive(clap::Parser)]
/// struct Args {
///     #[command(flatten)]
///     flags: hap_std::app::Flags,
///     /// Start with the door unreachable.
///     #[arg(long)]
///     unreachable: bool,
/// }
///
/// let args = Args::parse_from(["garage", "--pin", "314-15-926", "--port", "0", "--unreachable"]);
/// assert_eq!(args.flags.port, 0);
/// assert!(args.unreachable);
/// ```
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// The name shown in the Home app [default: the program's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The setup code; trivial codes such as 111-11-111 are refused [default: generated
    /// once and stored]
    #[arg(long, value_name = "XXX-XX-XXX", value_parser = parse_pin)]
    pub pin: Option<SetupCode>,
    /// The setup id in the setup URI and the mDNS `sh` hash [default: generated once and
    /// stored]
    #[arg(long, value_name = "XXXX", value_parser = parse_setup_id)]
    pub setup_id: Option<SetupId>,
    /// Listen on ADDR only, with no fallback (`::` is then IPv6 only) [default: `[::]`
    /// for IPv6 and IPv4 at once, or 0.0.0.0 where the machine has no IPv6]
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// The TCP port; 0 picks a free one
    #[arg(long, value_name = "PORT", default_value_t = 51826)]
    pub port: u16,
    /// Where the state (identity, pairings, setup code, ids) is stored [default:
    /// ./NAME-data, from the program's name]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// How to advertise over mDNS: `auto` registers through avahi-daemon when it runs
    /// (on the system D-Bus), else uses the built-in responder; `builtin`; `avahi`
    /// (fails if avahi-daemon cannot be reached); or `off`
    #[arg(long, value_name = "HOW", value_enum, default_value_t = MdnsMode::Auto)]
    pub mdns: MdnsMode,
    /// The built-in responder serves only interface NAME (repeatable; loopback allowed)
    /// [default: every interface that is up and takes multicast, but loopback]
    #[arg(long = "mdns-interface", value_name = "NAME")]
    pub mdns_interfaces: Vec<String>,
    /// The same as `--mdns off` (kept for older scripts)
    #[arg(long, hide = true, conflicts_with = "mdns")]
    pub no_mdns: bool,
    /// Connections served at once [default: 32]
    #[arg(long, value_name = "N", value_parser = parse_max_connections)]
    pub max_connections: Option<usize>,
    /// Log to stderr at LEVEL: error, warn, info, debug or trace
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<log::LevelFilter>,
}

/// How an accessory is advertised over mDNS: `--mdns`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MdnsMode {
    /// Through avahi-daemon when it runs, else the built-in responder.
    #[default]
    Auto,
    /// The built-in responder ([`crate::mdns`]).
    Builtin,
    /// Through avahi-daemon ([`crate::avahi`]); start-up fails without it.
    Avahi,
    /// Not advertised.
    Off,
}

impl Flags {
    /// How to advertise: `--mdns`, or [`MdnsMode::Off`] with the older `--no-mdns`.
    pub fn mdns_mode(&self) -> MdnsMode {
        if self.no_mdns {
            MdnsMode::Off
        } else {
            self.mdns
        }
    }

    /// Where to listen: `--bind`'s address only, or both families.
    pub fn bind(&self) -> Bind {
        self.bind.map_or(Bind::Any, Bind::Only)
    }

    /// `--data`, or `./SLUG-data` where SLUG is `name` in lower case with dashes for
    /// spaces ("Virtual Light" gives `./virtual-light-data`).
    pub fn data_or(&self, name: &str) -> PathBuf {
        self.data.clone().unwrap_or_else(|| {
            let slug: String = name
                .split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join("-");
            PathBuf::from(format!("./{slug}-data"))
        })
    }
}

fn parse_pin(text: &str) -> Result<SetupCode, String> {
    text.parse().map_err(|e| {
        format!("{e}; expected XXX-XX-XXX, not a trivial code like 111-11-111 or 123-45-678")
    })
}

fn parse_setup_id(text: &str) -> Result<SetupId, String> {
    text.parse()
        .map_err(|_| "expected 4 characters 0-9 or A-Z".to_owned())
}

fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a number above 0".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Args {
        #[command(flatten)]
        flags: Flags,
        #[arg(long)]
        own: Option<String>,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Args::try_parse_from(std::iter::once("program").chain(args.iter().copied()))
            .map(|args| args.flags)
    }

    #[test]
    fn no_flags_give_the_documented_defaults() {
        let flags = parse(&[]).unwrap();
        assert_eq!(
            flags,
            Flags {
                port: 51826,
                ..Flags::default()
            }
        );
        assert_eq!(flags.bind(), Bind::Any);
        assert_eq!(
            flags.data_or("Virtual Light"),
            PathBuf::from("./virtual-light-data")
        );
    }

    #[test]
    fn every_flag_parses() {
        let flags = parse(&[
            "--name",
            "Desk Lamp",
            "--pin",
            "314-15-926",
            "--setup-id",
            "T3ST",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            "/tmp/lamp",
            "--mdns",
            "builtin",
            "--mdns-interface",
            "eth0",
            "--mdns-interface",
            "lo",
            "--max-connections",
            "4",
            "--log",
            "debug",
        ])
        .unwrap();
        assert_eq!(flags.name.as_deref(), Some("Desk Lamp"));
        assert_eq!(flags.pin, Some("314-15-926".parse().unwrap()));
        assert_eq!(flags.setup_id, Some("T3ST".parse().unwrap()));
        assert_eq!(flags.bind(), Bind::Only([127, 0, 0, 1].into()));
        assert_eq!(flags.port, 0);
        assert_eq!(flags.data_or("x"), PathBuf::from("/tmp/lamp"));
        assert_eq!(flags.mdns_mode(), MdnsMode::Builtin);
        assert_eq!(flags.mdns_interfaces, ["eth0", "lo"]);
        assert_eq!(flags.max_connections, Some(4));
        assert_eq!(flags.log, Some(log::LevelFilter::Debug));
    }

    #[test]
    fn mdns_modes_parse_and_no_mdns_means_off() {
        assert_eq!(parse(&[]).unwrap().mdns_mode(), MdnsMode::Auto);
        for (text, mode) in [
            ("auto", MdnsMode::Auto),
            ("builtin", MdnsMode::Builtin),
            ("avahi", MdnsMode::Avahi),
            ("off", MdnsMode::Off),
        ] {
            assert_eq!(parse(&["--mdns", text]).unwrap().mdns_mode(), mode);
        }
        let old = parse(&["--no-mdns"]).unwrap();
        assert_eq!(old.mdns_mode(), MdnsMode::Off);
        assert!(parse(&["--mdns", "builtin", "--no-mdns"]).is_err());
        assert!(parse(&[]).unwrap().mdns_interfaces.is_empty());
    }

    #[test]
    fn an_application_flag_sits_beside_them() {
        let args = Args::try_parse_from(["program", "--own", "x", "--port", "1"]).unwrap();
        assert_eq!(args.own.as_deref(), Some("x"));
        assert_eq!(args.flags.port, 1);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (args, reason) in [
            (&["--pin", "111-11-111"][..], "trivial"),
            (&["--pin", "1234"][..], "XXX-XX-XXX"),
            (&["--setup-id", "ab"][..], "4 characters"),
            (&["--max-connections", "0"][..], "above 0"),
            (&["--port", "65536"][..], "--port"),
            (&["--bind", "localhost"][..], "--bind"),
            (&["--log", "loud"][..], "--log"),
            (&["--mdns", "bonjour"][..], "builtin"),
            (&["--mdns-interface"][..], "--mdns-interface"),
            (&["--unknown"][..], "--unknown"),
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(reason), "{args:?}: {error}");
        }
    }
}
