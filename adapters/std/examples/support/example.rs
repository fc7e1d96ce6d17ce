//! What the examples share: flags, the light, the start-up banner, and the lines
//! printed for changes. The two virtual lights differ only in their runtime.

// Each example uses a part of what is shared.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::{Database, OwnedValue, SetValueError};
use hap_core::server::Event;
use hap_core::setup::{setup_uri, SetupCode, SetupFlags, SetupId};
use hap_std::host::Announcer;
use hap_std::store::FileStore;
use hap_std::{Bind, Options, Setup};

/// The flags every example takes.
const FLAGS: &str = "[--name NAME] [--pin XXX-XX-XXX] [--setup-id XXXX] [--bind ADDR]
       [--port PORT] [--data DIR] [--no-mdns] [--max-connections N] [--log LEVEL]";

/// The defaults that are not obvious from the flags.
const DEFAULTS: &str =
    "  --bind ADDR          listen on ADDR only (default: [::] for IPv6 and IPv4 at once,
                       or 0.0.0.0 where the machine has no IPv6)
  --port PORT          51826 by default; 0 picks a free port
  --max-connections N  connections served at once (default 32)";

/// What an example is called and how it starts: see [`Args::parse`].
pub(crate) struct Program<'a> {
    /// The program's name, for messages.
    pub(crate) program: &'a str,
    /// The default `--name`.
    pub(crate) name: &'a str,
    /// The default `--data`.
    pub(crate) data: &'a str,
    /// What can be typed, for the usage message.
    pub(crate) help: &'a str,
    /// Flags of this example's own, each taking a value, with their usage.
    pub(crate) extra_flags: &'a [(&'a str, &'a str)],
}

/// The virtual light, on either runtime.
pub(crate) const VIRTUAL_LIGHT: Program<'static> = Program {
    program: "virtual-light",
    name: "Virtual Light",
    data: "./virtual-light-data",
    help: "Type on, off, toggle or brightness N (0-100) and Enter to change the light locally.",
    extra_flags: &[],
};

/// An example's `main`: parses the flags of `program` (see [`Args::parse`]), starts
/// logging, and runs `run`, turning its error into a message and an exit status.
pub(crate) fn main(
    program: &Program<'_>,
    run: impl FnOnce(&Args) -> Result<(), String>,
) -> ExitCode {
    let args = match Args::parse(program, std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    args.init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{}: {message}", program.program);
            ExitCode::FAILURE
        }
    }
}

/// Says where connections are accepted, at once: tests and scripts wait for this line.
pub(crate) fn print_listening(address: SocketAddr) {
    println!("listening on {address}");
    let _ = std::io::stdout().flush();
}

/// The command line.
pub(crate) struct Args {
    pub(crate) name: String,
    pub(crate) pin: Option<SetupCode>,
    pub(crate) setup_id: Option<SetupId>,
    /// `--bind ADDR` listens on that address only; by default, IPv6 and IPv4 at once.
    pub(crate) bind: Bind,
    pub(crate) port: u16,
    pub(crate) data: PathBuf,
    pub(crate) mdns: bool,
    /// How many connections are served at once; `None` keeps the host's default, 32
    /// ([`hap_std::host::MAX_CONNECTIONS`]).
    pub(crate) max_connections: Option<usize>,
    pub(crate) log: Option<log::LevelFilter>,
    /// The values of the example's own flags, as given.
    pub(crate) extra: Vec<(String, String)>,
}

impl Args {
    /// Parses the flags of `program`, or returns the message to print before exiting.
    pub(crate) fn parse(
        program: &Program<'_>,
        mut args: impl Iterator<Item = String>,
    ) -> Result<Self, String> {
        let mut usage = format!("usage: {} {FLAGS}", program.program);
        for (flag, what) in program.extra_flags {
            usage += &format!("\n       [{flag} {what}]");
        }
        usage += &format!("\n\n{DEFAULTS}\n\n{}", program.help);
        let usage = usage.as_str();
        let mut parsed = Args {
            name: program.name.into(),
            pin: None,
            setup_id: None,
            bind: Bind::Any,
            port: 51826,
            data: program.data.into(),
            mdns: true,
            max_connections: None,
            log: None,
            extra: Vec::new(),
        };
        while let Some(flag) = args.next() {
            let mut value = |what: &str| {
                args.next()
                    .ok_or_else(|| format!("{flag} needs {what}\n\n{usage}"))
            };
            let bad = |what: &str, detail: String| format!("invalid {what}: {detail}\n\n{usage}");
            match flag.as_str() {
                "--name" => parsed.name = value("a name")?,
                "--pin" => {
                    let text = value("a setup code")?;
                    parsed.pin = Some(text.parse().map_err(|e| {
                        bad("--pin", format!("{text:?}: {e:?}; expected XXX-XX-XXX, not a trivial code like 111-11-111 or 123-45-678"))
                    })?);
                }
                "--setup-id" => {
                    let text = value("a setup id")?;
                    parsed.setup_id = Some(text.parse().map_err(|_| {
                        bad(
                            "--setup-id",
                            format!("{text:?}: expected 4 characters 0-9 or A-Z"),
                        )
                    })?);
                }
                "--bind" => {
                    let text = value("an address")?;
                    parsed.bind = Bind::Only(
                        text.parse()
                            .map_err(|e| bad("--bind", format!("{text:?}: {e}")))?,
                    );
                }
                "--port" => {
                    let text = value("a port")?;
                    parsed.port = text
                        .parse()
                        .map_err(|e| bad("--port", format!("{text:?}: {e}")))?;
                }
                "--data" => parsed.data = value("a directory")?.into(),
                "--no-mdns" => parsed.mdns = false,
                "--max-connections" => {
                    let text = value("a number")?;
                    parsed.max_connections = match text.parse() {
                        Ok(n) if n > 0 => Some(n),
                        _ => {
                            return Err(bad(
                                "--max-connections",
                                format!("{text:?}: expected a number above 0"),
                            ))
                        }
                    };
                }
                "--log" => {
                    let text = value("a level")?;
                    parsed.log = Some(text.parse().map_err(|_| {
                        bad(
                            "--log",
                            format!("{text:?}: expected error, warn, info, debug or trace"),
                        )
                    })?);
                }
                "-h" | "--help" => return Err(usage.into()),
                own if program.extra_flags.iter().any(|(flag, _)| *flag == own) => {
                    let text = value("a value")?;
                    parsed.extra.push((flag.clone(), text));
                }
                other => return Err(format!("unknown flag {other:?}\n\n{usage}")),
            }
        }
        Ok(parsed)
    }

    /// The last value given for the example's own flag `flag`.
    pub(crate) fn extra(&self, flag: &str) -> Option<&str> {
        self.extra
            .iter()
            .rev()
            .find(|(given, _)| given == flag)
            .map(|(_, value)| value.as_str())
    }

    /// Starts logging to stderr at the chosen level, if any.
    pub(crate) fn init_logging(&self) {
        if let Some(level) = self.log {
            env_logger::Builder::new().filter_level(level).init();
        }
    }

    /// Loads the stored state, or creates it with the flags' setup code and id.
    pub(crate) fn setup(&self) -> Result<Setup, String> {
        let store = FileStore::open(&self.data).map_err(|e| e.to_string())?;
        Setup::load_or_create(Box::new(store), self.pin, self.setup_id).map_err(|e| e.to_string())
    }

    /// Loads or creates the stored state, and builds the light with stable ids.
    pub(crate) fn prepare_light(&self) -> Result<(Setup, Database<'static>, Light), String> {
        let mut setup = self.setup()?;
        let mut builder = DatabaseBuilder::new(setup.ids());
        let info = AccessoryInfo::new(&self.name, "hap-rs", "VirtualLight", "VL-0001", "0.1.0");
        let light = Light::add(&mut builder, "virtual-light", &info);
        let database = builder.build().map_err(|e| format!("{e:?}"))?;
        Ok((setup, database, light))
    }

    /// How to serve: the flags' address, port and mDNS choice.
    pub(crate) fn options(&self, model: &str, category: Category) -> Result<Options, String> {
        let mut options = Options::new(&self.name, model, category);
        options.bind = self.bind;
        options.port = self.port;
        if let Some(max) = self.max_connections {
            options.config.max_connections = max;
        }
        if self.mdns {
            let responder = hap_std::mdns::MdnsResponder::new(hap_std::mdns::MdnsConfig::default())
                .map_err(|e| format!("cannot start mDNS (use --no-mdns to run without): {e}"))?;
            options.announcer = Some(Box::new(responder) as Box<dyn Announcer>);
        }
        Ok(options)
    }
}

/// The line to print for an event about the accessory as a whole, if it deserves one.
pub(crate) fn describe_status(event: &Event) -> Option<String> {
    match event {
        Event::Identify => Some("Identify: blink blink".into()),
        Event::Verified { controller } => Some(format!(
            "Controller {} connected",
            String::from_utf8_lossy(controller.as_bytes())
        )),
        Event::PairingsChanged { paired: true } => Some("Paired".into()),
        Event::PairingsChanged { paired: false } => Some("Unpaired; ready to pair again".into()),
        _ => None,
    }
}

/// The light's ids.
#[derive(Clone, Copy)]
pub(crate) struct Light {
    pub(crate) aid: u64,
    pub(crate) on: u64,
    pub(crate) brightness: u64,
    pub(crate) hue: u64,
    pub(crate) saturation: u64,
}

impl Light {
    /// Adds an accessory keyed `key` with a lightbulb: On, Brightness, Hue, Saturation.
    pub(crate) fn add(
        builder: &mut DatabaseBuilder<'_>,
        key: &str,
        info: &AccessoryInfo<'_>,
    ) -> Self {
        let aid = builder.accessory(key, info);
        let bulb = builder
            .service(&s::LIGHTBULB)
            .primary()
            .characteristic(&c::BRIGHTNESS)
            .characteristic(&c::HUE)
            .characteristic(&c::SATURATION);
        let iid = |kind| bulb.iid_of(kind).unwrap_or(0);
        Light {
            aid,
            on: iid(&c::ON),
            brightness: iid(&c::BRIGHTNESS),
            hue: iid(&c::HUE),
            saturation: iid(&c::SATURATION),
        }
    }

    /// The line to print for a write to the light, or else for the accessory's status.
    pub(crate) fn describe(&self, event: &Event) -> Option<String> {
        match event {
            Event::Write {
                aid, iid, value, ..
            } if *aid == self.aid => self.describe_value(*iid, value),
            _ => describe_status(event),
        }
    }

    /// The line for a new value of characteristic `iid`.
    pub(crate) fn describe_value(&self, iid: u64, value: &OwnedValue) -> Option<String> {
        match (value, iid) {
            (OwnedValue::Bool(on), i) if i == self.on => {
                Some(format!("Light {}", if *on { "ON" } else { "OFF" }))
            }
            (OwnedValue::Int(n), i) if i == self.brightness => Some(format!("Brightness {n}%")),
            (OwnedValue::Float(h), i) if i == self.hue => Some(format!("Hue {h}°")),
            (OwnedValue::Float(s), i) if i == self.saturation => Some(format!("Saturation {s}%")),
            _ => None,
        }
    }

    /// Carries out a typed command, reading the light through `value` and changing it
    /// through `set`, and returns the line to print.
    pub(crate) fn obey(
        &self,
        line: &str,
        value: impl Fn(u64, u64) -> Option<OwnedValue>,
        set: impl FnOnce(u64, u64, OwnedValue) -> Result<bool, SetValueError>,
    ) -> Option<String> {
        if line.trim().is_empty() {
            return None;
        }
        let is_on = value(self.aid, self.on) == Some(OwnedValue::Bool(true));
        Some(match self.command(line, is_on) {
            Ok((iid, value)) => match set(self.aid, iid, value.clone()) {
                Ok(_) => format!(
                    "{} (local)",
                    self.describe_value(iid, &value).unwrap_or_default()
                ),
                Err(e) => format!("cannot set: {e}"),
            },
            Err(message) => message,
        })
    }

    /// The change a typed command asks for, given whether the light is on now.
    pub(crate) fn command(&self, line: &str, is_on: bool) -> Result<(u64, OwnedValue), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["on"] => Ok((self.on, OwnedValue::Bool(true))),
            ["off"] => Ok((self.on, OwnedValue::Bool(false))),
            ["toggle"] => Ok((self.on, OwnedValue::Bool(!is_on))),
            ["brightness", n] => match n.trim_end_matches('%').parse::<i32>() {
                Ok(n) if (0..=100).contains(&n) => Ok((self.brightness, OwnedValue::Int(n))),
                _ => Err(format!("brightness must be 0 to 100, not {n:?}")),
            },
            _ => Err("commands: on, off, toggle, brightness N".into()),
        }
    }
}

/// The start-up banner: name, setup code, URI, QR code and where the data lives.
pub(crate) fn banner(name: &str, category: Category, setup: &Setup) -> String {
    let stored = setup.snapshot();
    let (code, setup_id) = (stored.setup_code.as_ref(), stored.setup_id.as_ref());
    let paired = stored.state.is_paired();
    let data = setup.location();
    let mut out = format!("{name}\n");
    match (code, setup_id) {
        (Some(code), Some(setup_id)) => {
            let flags = SetupFlags {
                paired,
                ip: true,
                ble: false,
            };
            let uri = setup_uri(code, setup_id, category, flags);
            out += &format!(
                "Setup code: {}\nSetup URI:  {}\n",
                code.as_str(),
                uri.as_str()
            );
            match qrcode::QrCode::new(uri.as_bytes()) {
                Ok(qr) => {
                    out += &qr
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build();
                    out.push('\n');
                }
                Err(e) => out += &format!("(cannot draw the QR code: {e})\n"),
            }
        }
        _ => out += "Setup code: not stored; pass --pin to set one\n",
    }
    if paired {
        out += "Already paired; remove it in the Home app to pair again.\n";
    }
    out += &format!("Data: {data}\n");
    out
}
