//! `hapctl`: pair with HomeKit accessories over IP, read and write their
//! characteristics, watch their events, and manage their pairings.

use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant, SystemTime};

use clap::{Parser, Subcommand};
use hap_core::catalog::value::Scalar;
use hap_core::controller::{CharacteristicId, OwnedBuffers, ReadOptions, Write};
use hap_core::pairing::{ErrorCode, PairingError};
use hap_core::setup::SetupCode;
use hap_core::status::HapStatus;
use hapctl::client::{self, Answer, Client, ClientError};
use hapctl::discovery::{self, Found};
use hapctl::pairing_file::{PairingFile, StoredAccessory};
use hapctl::tree::{AccessoryRef, Resolved, Selector, Tree};
use hapctl::{from_hex, to_hex, Error, ErrorKind, Reported};
use rand_core::OsRng;
use serde_json::{json, Value};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  failed          anything not below
  2  usage           bad arguments, or a bad CHAR or VALUE
  3  not-found       alias or id not in the file; name or id not discovered; characteristic not found or ambiguous
  4  unreachable     cannot connect; connection lost; no answer in time
  5  authentication  wrong setup code; pair-verify failed (the accessory forgot us)
  6  refused         the accessory answered with an error (a characteristic status, a refused pairing, an HTTP error)
  7  protocol        a malformed or unexpected answer
  8  storage         the pairing file cannot be read, parsed or written

CHAR is AID.IID, NAME, ACCESSORY_NAME/NAME or AID/NAME, where NAME is a characteristic's
catalog name (\"Brightness\", \"on\", \"ColorTemperature\"). VALUE is JSON (true, 50, \"text\");
a bare word that is not JSON is a string, and so is any value for a string, tlv8 or data
characteristic (tlv8 and data as base64).";

/// A HomeKit controller for accessories on IP.
#[derive(Debug, Parser)]
#[command(name = "hapctl", version, after_help = EXIT_CODES)]
struct Cli {
    /// The pairing file [default: $HAPCTL_FILE, else $XDG_CONFIG_HOME/hapctl/pairings.json,
    /// else ~/.config/hapctl/pairings.json]
    #[arg(long, global = true, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Print JSON on stdout (one document per command; JSON lines for watch).
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for each network step (connect, each answer, discovery).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Interfaces to browse mDNS on [default: every non-loopback one].
    #[arg(long = "interface", global = true, value_name = "IFACE")]
    interfaces: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the accessories advertised with mDNS.
    Discover {
        /// How long to listen.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Only those not paired yet.
        #[arg(long)]
        unpaired: bool,
    },
    /// Pair with an accessory (HOST:PORT, device id, or discovered name).
    Pair {
        /// HOST:PORT, [IPV6]:PORT, a device id (AA:BB:CC:DD:EE:FF) or an instance name.
        target: String,
        /// The setup code, XXX-XX-XXX or XXXXXXXX.
        #[arg(long)]
        code: String,
        /// The name to store it under [default: its instance name, else its id].
        #[arg(long)]
        alias: Option<String>,
    },
    /// Remove this controller's pairing from the accessory and the file.
    Unpair {
        /// An alias or accessory id from the pairing file.
        accessory: String,
        /// Only drop it from the file, without asking the accessory: for one that was
        /// reset, forgot this controller, or is gone for good.
        #[arg(long)]
        forget: bool,
    },
    /// Show the accessory's services and characteristics.
    Accessories {
        /// An alias or accessory id from the pairing file.
        accessory: String,
    },
    /// Read characteristics.
    Get {
        /// An alias or accessory id from the pairing file.
        accessory: String,
        /// The characteristics (see CHAR below).
        #[arg(required = true, value_name = "CHAR")]
        characteristics: Vec<String>,
    },
    /// Write characteristics.
    ///
    /// A characteristic with write response (`wr` in its permissions, such as a TLV8
    /// control point) is written with `"r":true`, and the value the accessory answers
    /// with is printed instead of the one written: `1.14 NAME = AgA=` (strings, so tlv8
    /// as base64, as received), and `"response"` in `--json`.
    Put {
        /// An alias or accessory id from the pairing file.
        accessory: String,
        /// CHAR=VALUE pairs.
        #[arg(required = true, value_name = "CHAR=VALUE")]
        writes: Vec<String>,
        /// Ask every write for a response (`"r":true`), not only those with write
        /// response.
        #[arg(long)]
        response: bool,
    },
    /// Print characteristics' changes as they happen.
    Watch {
        /// An alias or accessory id from the pairing file.
        accessory: String,
        /// The characteristics (see CHAR below).
        #[arg(required = true, value_name = "CHAR")]
        characteristics: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Make an accessory identify itself (paired: by alias; unpaired: by target).
    Identify {
        /// An alias or id from the file, or HOST:PORT, device id or name of an unpaired one.
        target: String,
    },
    /// List, add or remove the accessory's pairings (admins only).
    #[command(subcommand)]
    Pairings(PairingsCommand),
    /// Print this controller's pairing id and public key (for `pairings add` elsewhere).
    Id,
}

#[derive(Debug, Subcommand)]
enum PairingsCommand {
    /// List the controllers paired with the accessory.
    List {
        /// An alias or accessory id from the pairing file.
        accessory: String,
    },
    /// Pair another controller with the accessory.
    Add {
        /// An alias or accessory id from the pairing file.
        accessory: String,
        /// The controller's pairing id.
        #[arg(long)]
        id: String,
        /// The controller's Ed25519 public key, hex.
        #[arg(long)]
        key: String,
        /// Make it an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Remove a controller's pairing from the accessory.
    Remove {
        /// An alias or accessory id from the pairing file.
        accessory: String,
        /// The controller's pairing id.
        id: String,
    },
}

/// What every command needs.
struct Ctx {
    file: PathBuf,
    json: bool,
    timeout: Duration,
    interfaces: Vec<String>,
}

impl Ctx {
    fn load(&self) -> Result<PairingFile, Error> {
        Ok(PairingFile::load(&self.file)?)
    }

    /// Prints the command's result.
    fn emit(&self, text: impl FnOnce() -> String, json: impl FnOnce() -> Value) {
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(out, "{}", json())
        } else {
            let text = text();
            if text.is_empty() {
                Ok(())
            } else {
                writeln!(out, "{}", text.trim_end_matches('\n'))
            }
        };
        let _ = out.flush();
    }

    /// Where "in N s on IFACES" messages say discovery looked.
    fn where_looked(&self, duration: Duration) -> String {
        let on = if self.interfaces.is_empty() {
            "every interface".to_string()
        } else {
            self.interfaces.join(", ")
        };
        format!("in {} s on {on}", duration.as_secs_f64())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let usage = error.use_stderr();
            let _ = error.print();
            if usage && std::env::args().any(|a| a == "--json") {
                println!(
                    "{}",
                    error_json(ErrorKind::Usage, &error.kind().to_string())
                );
            }
            return ExitCode::from(if usage { 2 } else { 0 });
        }
    };
    let ctx = seconds(cli.timeout, "--timeout").and_then(|timeout| {
        let file = match cli.file.clone() {
            Some(file) => file,
            None => hapctl::pairing_file::default_path(|name| std::env::var_os(name)).ok_or_else(
                || {
                    Error::new(
                        ErrorKind::Storage,
                        "no pairing file: set --file, HAPCTL_FILE or HOME",
                    )
                },
            )?,
        };
        Ok(Ctx {
            file,
            json: cli.json,
            timeout,
            interfaces: cli.interfaces.clone(),
        })
    });
    let result = ctx.and_then(|ctx| run(&ctx, cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if cli.json && !JSON_ERROR_PRINTED.load(Ordering::SeqCst) {
                println!("{}", error_json(error.kind, &error.message));
            }
            eprintln!("hapctl: {}", error.message);
            ExitCode::from(error.kind.exit_code())
        }
    }
}

/// Set when the `--json` document already carries the error (a read or write where
/// some items failed), so that stdout keeps one document.
static JSON_ERROR_PRINTED: AtomicBool = AtomicBool::new(false);

fn error_json(kind: ErrorKind, message: &str) -> Value {
    json!({"error": {"kind": kind.as_str(), "message": message}})
}

fn run(ctx: &Ctx, command: Command) -> Result<(), Error> {
    match command {
        Command::Discover { seconds, unpaired } => discover(ctx, seconds, unpaired),
        Command::Pair {
            target,
            code,
            alias,
        } => pair(ctx, &target, &code, alias),
        Command::Unpair { accessory, forget } => unpair(ctx, &accessory, forget),
        Command::Accessories { accessory } => accessories(ctx, &accessory),
        Command::Get {
            accessory,
            characteristics,
        } => get(ctx, &accessory, &characteristics),
        Command::Put {
            accessory,
            writes,
            response,
        } => put(ctx, &accessory, &writes, response),
        Command::Watch {
            accessory,
            characteristics,
            count,
            seconds,
        } => watch(ctx, &accessory, &characteristics, count, seconds),
        Command::Identify { target } => identify(ctx, &target),
        Command::Pairings(PairingsCommand::List { accessory }) => list_pairings(ctx, &accessory),
        Command::Pairings(PairingsCommand::Add {
            accessory,
            id,
            key,
            admin,
        }) => add_pairing(ctx, &accessory, &id, &key, admin),
        Command::Pairings(PairingsCommand::Remove { accessory, id }) => {
            remove_pairing(ctx, &accessory, &id)
        }
        Command::Id => show_id(ctx),
    }
}

/// The longest wait a flag may ask for: a year, far below where adding it to a clock
/// would overflow.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A flag's number of seconds: positive, finite, at most [`MAX_SECONDS`].
fn seconds(value: f64, name: &str) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero() && value <= MAX_SECONDS)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "{name} must be a number of seconds above 0 and at most a year, not {value}"
                ),
            )
        })
}

fn discover(ctx: &Ctx, seconds_flag: f64, unpaired: bool) -> Result<(), Error> {
    let duration = seconds(seconds_flag, "--seconds")?;
    let mut found = discovery::browse(duration, &ctx.interfaces, None)?;
    if unpaired {
        found.retain(|f| f.is_paired() == Some(false));
    }
    ctx.emit(
        || {
            found
                .iter()
                .map(discovery::to_text)
                .collect::<Vec<_>>()
                .join("\n")
        },
        || Value::Array(found.iter().map(discovery::to_json).collect()),
    );
    Ok(())
}

/// What a TARGET names.
enum Target {
    Address(SocketAddr),
    /// A host name's addresses, in the resolver's order.
    Resolved(Vec<SocketAddr>),
    Id(String),
    Name(String),
}

fn parse_target(text: &str) -> Result<Target, Error> {
    if text.parse::<hap_core::setup::DeviceId>().is_ok() {
        return Ok(Target::Id(text.to_ascii_uppercase()));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(Target::Address(address));
    }
    if let Some((host, port)) = text.rsplit_once(':') {
        if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() {
            let addresses: Vec<SocketAddr> = text
                .to_socket_addrs()
                .map_err(|error| {
                    Error::new(
                        ErrorKind::Unreachable,
                        format!("cannot resolve {host}: {error}"),
                    )
                })?
                .collect();
            if addresses.is_empty() {
                return Err(Error::new(
                    ErrorKind::Unreachable,
                    format!("{host} has no address"),
                ));
            }
            return Ok(Target::Resolved(addresses));
        }
    }
    Ok(Target::Name(text.to_string()))
}

/// The address of a target, and what discovery said about it.
fn locate(ctx: &Ctx, target: &str) -> Result<(SocketAddr, Option<Found>), Error> {
    let (found, what) = match parse_target(target)? {
        Target::Address(address) => return Ok((address, None)),
        // `localhost` is often ::1 first, while an accessory may listen on IPv4 only.
        Target::Resolved(addresses) => return Ok((first_answering(ctx, &addresses), None)),
        Target::Id(id) => (
            discovery::find_id(&id, ctx.timeout, &ctx.interfaces)?,
            format!("no accessory with id {id}"),
        ),
        Target::Name(name) => (
            discovery::find_name(&name, ctx.timeout, &ctx.interfaces)?,
            format!("no accessory named {name:?}"),
        ),
    };
    let missing = || {
        Error::new(
            ErrorKind::NotFound,
            format!("{what} found {}", ctx.where_looked(ctx.timeout)),
        )
    };
    let found = found.ok_or_else(missing)?;
    let address = discovery::socket_addr(&found).ok_or_else(missing)?;
    Ok((address, Some(found)))
}

/// The first of a name's addresses that accepts a connection, or else the first (whose
/// failure the caller then reports).
fn first_answering(ctx: &Ctx, addresses: &[SocketAddr]) -> SocketAddr {
    if addresses.len() == 1 {
        return addresses[0];
    }
    let each = ctx.timeout / u32::try_from(addresses.len()).unwrap_or(u32::MAX);
    addresses
        .iter()
        .copied()
        .find(|address| std::net::TcpStream::connect_timeout(address, each).is_ok())
        .unwrap_or(addresses[0])
}

/// `123-45-678` or `12345678`.
fn parse_code(text: &str) -> Result<SetupCode, Error> {
    let dashed = if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &text[..3], &text[3..5], &text[5..])
    } else {
        text.to_string()
    };
    dashed.parse().map_err(|error| {
        Error::new(
            ErrorKind::Usage,
            format!("{text:?} is not a setup code ({error}); use XXX-XX-XXX"),
        )
    })
}

fn pair(ctx: &Ctx, target: &str, code: &str, alias: Option<String>) -> Result<(), Error> {
    let code = parse_code(code)?;
    let mut file = ctx.load()?;
    let (address, found) = locate(ctx, target)?;
    // An alias names one accessory: pairing another under it would lose the first
    // one's keys. Pairing the same accessory again (after a reset) replaces its entry.
    let planned = alias
        .clone()
        .or_else(|| found.as_ref().map(|f| f.name.clone()));
    if let Some(planned) = &planned {
        if let Some(stored) = file.contents.accessories.get(planned) {
            // Without a discovered id, the same address and port stand for the same
            // accessory.
            let same = match found.as_ref().and_then(|f| f.id.as_deref()) {
                Some(id) => id.eq_ignore_ascii_case(&stored.id),
                None => stored.port == address.port() && stored.address == stored_ip(address),
            };
            if !same {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!(
                        "{planned:?} already names accessory {} in {}; choose another name with --alias, or unpair it first",
                        stored.id,
                        file.path().display()
                    ),
                ));
            }
        }
    }
    // Saved before pairing: an accessory paired to keys that were then not kept would
    // refuse everyone until reset.
    let identity = file.identity_or_create(&mut OsRng)?;
    let mut buffers = client::buffers();
    let mut client = Client::connect(address, ctx.timeout, &mut buffers)?;
    let label = found
        .as_ref()
        .map_or_else(|| target.to_string(), |f| f.name.clone());
    let pairing = client
        .pair_setup(code, &identity)
        .map_err(|error| pair_setup_error(&label, error))?;
    drop(client);
    let id = String::from_utf8_lossy(pairing.id.as_bytes()).into_owned();
    let alias = alias
        .or_else(|| found.as_ref().map(|f| f.name.clone()))
        .unwrap_or_else(|| id.clone());
    let entry = StoredAccessory {
        id: id.clone(),
        ltpk: to_hex(&pairing.public_key),
        address: stored_ip(address),
        port: address.port(),
        name: found.as_ref().map(|f| f.name.clone()),
        config_number: found.as_ref().and_then(|f| f.config_number),
    };
    file.update(|contents| {
        // One entry per accessory: an older one (under another alias, before a reset)
        // holds keys that no longer verify.
        contents
            .accessories
            .retain(|_, stored| !stored.id.eq_ignore_ascii_case(&id));
        contents.accessories.insert(alias.clone(), entry);
    })
    .map_err(|error| {
        Error::new(
            ErrorKind::Storage,
            format!(
                "{error}; the accessory {id} IS paired now, with key {}: free the file and pair it again after resetting it, or add this pairing by hand",
                to_hex(&pairing.public_key)
            ),
        )
    })?;
    ctx.emit(
        || format!("Paired with {alias:?} (id {id}) at {address}."),
        || json!({"alias": alias, "id": id, "address": address.ip().to_string(), "port": address.port()}),
    );
    Ok(())
}

fn pair_setup_error(label: &str, error: ClientError) -> Error {
    use hap_core::controller::PairingFailure;
    let kind = error.kind();
    let message = match &error {
        ClientError::Pairing {
            failure: PairingFailure::Pairing(PairingError::Rejected(code)),
            ..
        } => match code {
            ErrorCode::Authentication => format!(
                "wrong setup code for {label:?} (the accessory said Authentication); check the code and try again"
            ),
            ErrorCode::Unavailable => format!(
                "{label:?} is already paired with another controller; remove that pairing or reset the accessory"
            ),
            ErrorCode::MaxTries => {
                format!("{label:?} refuses pairing after too many wrong codes (MaxTries); reset the accessory")
            }
            ErrorCode::MaxPeers => format!("{label:?} has no room for another pairing (MaxPeers)"),
            ErrorCode::Busy => format!("{label:?} is pairing with another controller (Busy); try again later"),
            ErrorCode::Backoff => format!("{label:?} asks to wait before trying again (Backoff)"),
            _ => format!("{label:?} refused pairing: {code}"),
        },
        ClientError::Pairing { .. } => format!("pairing with {label:?} failed: {error}"),
        _ => error.to_string(),
    };
    Error::new(kind, message)
}

/// Two buffers: one for the stored address, one for a rediscovered one.
type BufferPair = [OwnedBuffers; 2];

fn buffer_pair() -> BufferPair {
    [client::buffers(), client::buffers()]
}

/// An address as the pairing file keeps it: the IP, with the scope of an IPv6
/// link-local one (`fe80::1%2`), without which it cannot be reached again.
fn stored_ip(address: SocketAddr) -> String {
    match address {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
        _ => address.ip().to_string(),
    }
}

/// The socket address of a stored IP (as [`stored_ip`] writes it) and port.
fn stored_socket(ip: &str, port: u16) -> Option<SocketAddr> {
    let text = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    text.parse().ok()
}

/// The alias and entry of the accessory `key` names in the file: an alias or an id.
fn stored(file: &PairingFile, key: &str) -> Result<(String, StoredAccessory), Error> {
    let Some((alias, stored)) = file.find(key) else {
        let aliases = file.aliases();
        let paired = if aliases.is_empty() {
            "none".to_string()
        } else {
            aliases.join(", ")
        };
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{key:?} is not in {} (paired: {paired})",
                file.path().display()
            ),
        ));
    };
    Ok((alias.to_string(), stored.clone()))
}

/// A verified connection to the accessory `key` names in the file: at its stored
/// address, or (when that fails) where mDNS finds its id now, which is then stored.
fn session<'b>(
    ctx: &Ctx,
    file: &mut PairingFile,
    key: &str,
    buffers: &'b mut BufferPair,
) -> Result<(String, StoredAccessory, Client<'b>), Error> {
    let (alias, stored) = stored(file, key)?;
    let identity = file.identity().ok_or_else(|| {
        Error::new(
            ErrorKind::Storage,
            format!(
                "{} lists accessories but no controller",
                file.path().display()
            ),
        )
    })?;
    // Checked when the file was loaded.
    let pairing = stored
        .pairing()
        .ok_or_else(|| Error::new(ErrorKind::Storage, "bad accessory entry"))?;
    let [first, second] = buffers;
    let verify = |address: SocketAddr, buffers: &'b mut OwnedBuffers| {
        let mut client = Client::connect(address, ctx.timeout, buffers)?;
        client.pair_verify(&identity, &pairing)?;
        Ok::<_, ClientError>(client)
    };
    let stored_address = stored_socket(&stored.address, stored.port);
    let first_error = match stored_address {
        Some(address) => match verify(address, first) {
            Ok(client) => return Ok((alias, stored, client)),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::Unreachable | ErrorKind::Authentication
                ) =>
            {
                error
            }
            Err(error) => return Err(session_error(&alias, error)),
        },
        None => ClientError::Malformed(format!("stored address {:?}", stored.address)),
    };
    // The accessory may have moved, or another one took its address.
    let found = match discovery::find_id(&stored.id, ctx.timeout, &ctx.interfaces) {
        Ok(found) => found,
        Err(browse) => {
            let error = session_error(&alias, first_error);
            return Err(Error::new(
                error.kind,
                format!(
                    "{}; looking for it over mDNS failed too: {}",
                    error.message, browse.message
                ),
            ));
        }
    };
    let moved = found
        .as_ref()
        .and_then(discovery::socket_addr)
        .filter(|address| Some(*address) != stored_address);
    let (Some(address), Some(found)) = (moved, found) else {
        let error = session_error(&alias, first_error);
        return Err(Error::new(
            error.kind,
            format!(
                "{}; mDNS shows it at no other address (looked {})",
                error.message,
                ctx.where_looked(ctx.timeout)
            ),
        ));
    };
    let client = verify(address, second).map_err(|error| session_error(&alias, error))?;
    let mut updated = stored.clone();
    updated.address = stored_ip(address);
    updated.port = address.port();
    updated.config_number = found.config_number.or(updated.config_number);
    file.update(|contents| {
        if let Some(entry) = contents.accessories.get_mut(&alias) {
            *entry = updated.clone();
        }
    })?;
    Ok((alias, updated, client))
}

fn session_error(alias: &str, error: ClientError) -> Error {
    match error.kind() {
        ErrorKind::Authentication => Error::new(
            ErrorKind::Authentication,
            format!("pair-verify with {alias:?} failed ({error}); the accessory may have forgotten this controller: pair again, or drop it with `hapctl unpair --forget {alias:?}`"),
        ),
        kind => Error::new(kind, format!("{alias:?}: {error}")),
    }
}

fn tree_of(client: &mut Client<'_>) -> Result<Tree, Error> {
    let answer = client.accessories()?.success()?;
    Tree::parse(&answer.body).map_err(|error| {
        Error::new(
            ErrorKind::Protocol,
            format!("the accessory sent a bad /accessories: {error}"),
        )
    })
}

fn accessories(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let mut file = ctx.load()?;
    let mut buffers = buffer_pair();
    let (_, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    let tree = tree_of(&mut client)?;
    ctx.emit(|| tree.to_text(), || tree.to_json());
    Ok(())
}

/// The items of a read or write answer: 204 means every one succeeded.
fn items_of(answer: &Answer) -> Result<Vec<Reported>, Error> {
    let response = answer.response();
    let items = response.characteristics().map_err(|error| {
        Error::new(
            ErrorKind::Protocol,
            format!("the accessory sent a bad answer: {error}"),
        )
    })?;
    Ok(items.map(Reported::from).collect())
}

fn status_text(status: Option<HapStatus>) -> String {
    status.map_or_else(|| "an unknown status".to_string(), |s| s.to_string())
}

fn status_code(status: Option<HapStatus>) -> Value {
    status.map_or(Value::Null, |s| Value::from(s.code()))
}

/// The error for items that failed, after the rest were printed.
fn item_failures(failed: &[String]) -> Result<(), Error> {
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Refused, failed.join("; ")))
    }
}

fn get(ctx: &Ctx, key: &str, texts: &[String]) -> Result<(), Error> {
    let selectors: Vec<Selector> = texts.iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    let mut file = ctx.load()?;
    let mut buffers = buffer_pair();
    let (_, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    let tree = tree_of(&mut client)?;
    let resolved: Vec<Resolved> = selectors
        .iter()
        .map(|s| tree.resolve(s))
        .collect::<Result<_, _>>()?;
    let ids: Vec<CharacteristicId> = resolved.iter().map(|r| r.id).collect();
    let answer = client.read(&ids, ReadOptions::default())?;
    if answer.status != 207 {
        answer.clone().success()?;
    }
    let items = items_of(&answer)?;
    let name_of = |aid, iid| {
        resolved
            .iter()
            .find(|r| r.id == CharacteristicId { aid, iid })
            .map_or("?", |r| r.name.as_str())
    };
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    let mut json_items = Vec::new();
    for item in &items {
        let name = name_of(item.aid, item.iid);
        if item.is_success() {
            let id = CharacteristicId {
                aid: item.aid,
                iid: item.iid,
            };
            let value = tree.typed(id, item.value.clone().unwrap_or(Value::Null));
            lines.push(format!("{}.{} {name} = {value}", item.aid, item.iid));
            json_items
                .push(json!({"aid": item.aid, "iid": item.iid, "name": name, "value": value}));
        } else {
            failed.push(format!(
                "{}.{} {name}: {}",
                item.aid,
                item.iid,
                status_text(item.status)
            ));
            json_items.push(json!({"aid": item.aid, "iid": item.iid, "name": name,
                                   "value": null, "status": status_code(item.status)}));
        }
    }
    emit_items(ctx, lines, json_items, &failed)
}

/// Prints the items; on failures, `--json` puts the error into the same document.
fn emit_items(
    ctx: &Ctx,
    lines: Vec<String>,
    json_items: Vec<Value>,
    failed: &[String],
) -> Result<(), Error> {
    let result = item_failures(failed);
    let mut document = json!({ "characteristics": json_items });
    if let Err(error) = &result {
        document["error"] = json!({"kind": error.kind.as_str(), "message": error.message});
    }
    ctx.emit(|| lines.join("\n"), || document);
    if result.is_err() && ctx.json {
        JSON_ERROR_PRINTED.store(true, Ordering::SeqCst);
    }
    result
}

/// A VALUE: JSON if it parses, else the bare word as a string.
fn parse_value(text: &str) -> Result<Value, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Bool(_) | Value::Number(_) | Value::String(_))) => Ok(value),
        Ok(_) => Err(Error::new(
            ErrorKind::Usage,
            format!("{text:?}: a value is a boolean, a number or a string"),
        )),
        Err(_) => Ok(Value::String(text.to_string())),
    }
}

fn scalar(value: &Value) -> Option<Scalar<'_>> {
    match value {
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(|i| Scalar::Integer(i.into()))
            .or_else(|| n.as_u64().map(|u| Scalar::Integer(u.into())))
            .or_else(|| n.as_f64().map(Scalar::Float)),
        Value::String(s) => Some(Scalar::Str(s)),
        _ => None,
    }
}

/// What a characteristic of `format` takes from VALUE's `text`: strings, tlv8 and data
/// (base64) take the text itself when it is not a JSON string, so that a base64 of
/// digits only stays a string.
fn value_for(format: Option<&str>, text: &str, parsed: Value) -> Value {
    match (format, &parsed) {
        (Some("string" | "tlv8" | "data"), Value::Bool(_) | Value::Number(_)) => {
            Value::String(text.to_string())
        }
        _ => parsed,
    }
}

/// A value the accessory answered a write with, as `put` prints it: strings (tlv8 and
/// data as base64) as received, anything else as JSON.
fn response_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn put(ctx: &Ctx, key: &str, texts: &[String], response: bool) -> Result<(), Error> {
    let mut parsed = Vec::new();
    for text in texts {
        let Some((selector, value)) = text.split_once('=') else {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{text:?} is not CHAR=VALUE"),
            ));
        };
        parsed.push((selector.parse::<Selector>()?, value, parse_value(value)?));
    }
    let mut file = ctx.load()?;
    let mut buffers = buffer_pair();
    let (_, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    let tree = tree_of(&mut client)?;
    let mut resolved = Vec::new();
    for (selector, text, value) in parsed {
        let r = tree.resolve(&selector)?;
        let node = tree.find(r.id).map(|(_, c)| c);
        let value = value_for(node.and_then(|c| c.format.as_deref()), text, value);
        // A control point answers only a write that asks; others answer when asked.
        let ask = response || node.is_some_and(|c| c.has_write_response());
        resolved.push((r, value, ask));
    }
    let writes: Vec<Write<'_>> = resolved
        .iter()
        .filter_map(|(r, value, ask)| {
            let mut write = Write::value(r.id, scalar(value)?);
            write.response = *ask;
            Some(write)
        })
        .collect();
    let answer = client.write(&writes)?;
    let items = match answer.status {
        207 => items_of(&answer)?,
        _ => {
            answer.clone().success()?;
            Vec::new()
        }
    };
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    let mut json_items = Vec::new();
    for (r, value, ask) in &resolved {
        let item = items
            .iter()
            .find(|item| item.aid == r.id.aid && item.iid == r.id.iid);
        // A 207 lists every write; one it leaves out was not confirmed.
        let status = match item {
            Some(item) => item.status,
            None if answer.status == 207 => None,
            None => Some(HapStatus::Success),
        };
        let returned = item.and_then(|item| item.value.clone());
        let (aid, iid, name) = (r.id.aid, r.id.iid, &r.name);
        if status == Some(HapStatus::Success) {
            lines.push(match (&returned, ask) {
                (Some(returned), _) => format!("{aid}.{iid} {name} = {}", response_text(returned)),
                (None, true) => format!("{aid}.{iid} {name} = {value} (no response)"),
                (None, false) => format!("{aid}.{iid} {name} = {value}"),
            });
        } else {
            failed.push(format!("{aid}.{iid} {name}: {}", status_text(status)));
        }
        let mut json_item =
            json!({"aid": aid, "iid": iid, "name": name, "status": status_code(status)});
        if *ask || returned.is_some() {
            json_item["response"] = returned.unwrap_or(Value::Null);
        }
        json_items.push(json_item);
    }
    emit_items(ctx, lines, json_items, &failed)
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn watch(
    ctx: &Ctx,
    key: &str,
    texts: &[String],
    count: Option<u64>,
    seconds_flag: Option<f64>,
) -> Result<(), Error> {
    let selectors: Vec<Selector> = texts.iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    let deadline = match seconds_flag {
        Some(s) => Some(StdInstant::now() + seconds(s, "--seconds")?),
        None => None,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        // Without a handler Ctrl+C would end the process with a signal status.
        let _ = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst));
    }
    let mut file = ctx.load()?;
    let mut buffers = buffer_pair();
    let (alias, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    let tree = tree_of(&mut client)?;
    let resolved: Vec<Resolved> = selectors
        .iter()
        .map(|s| tree.resolve(s))
        .collect::<Result<_, _>>()?;
    let subscribe: Vec<Write<'_>> = resolved
        .iter()
        .map(|r| Write::subscribe(r.id, true))
        .collect();
    let answer = client.write(&subscribe)?;
    if answer.status == 207 {
        let failed: Vec<String> = items_of(&answer)?
            .iter()
            .filter(|item| !item.is_success())
            .map(|item| {
                format!(
                    "cannot watch {}.{}: {}",
                    item.aid,
                    item.iid,
                    status_text(item.status)
                )
            })
            .collect();
        item_failures(&failed)?;
    } else {
        answer.success()?;
    }
    let name_of = |aid, iid| {
        resolved
            .iter()
            .find(|r| r.id == CharacteristicId { aid, iid })
            .map_or("?".to_string(), |r| r.name.clone())
    };
    let print = |item: &Reported| {
        let id = CharacteristicId {
            aid: item.aid,
            iid: item.iid,
        };
        let value = tree.typed(id, item.value.clone().unwrap_or(Value::Null));
        let name = name_of(item.aid, item.iid);
        let time = timestamp();
        ctx.emit(
            || format!("{time} {}.{} {name} = {value}", item.aid, item.iid),
            || json!({"time": time, "aid": item.aid, "iid": item.iid, "name": name, "value": value}),
        );
    };
    let ids: Vec<CharacteristicId> = resolved.iter().map(|r| r.id).collect();
    let current = client.read(&ids, ReadOptions::default())?;
    if current.status != 207 {
        current.clone().success()?;
    }
    // Ctrl+C while connecting: end as after it, printing nothing.
    if interrupted.load(Ordering::SeqCst) {
        return Ok(());
    }
    for item in items_of(&current)? {
        print(&item);
    }
    let mut seen = 0u64;
    while count.is_none_or(|count| seen < count) {
        if interrupted.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = StdInstant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Ok(());
        }
        // Wake often enough to notice Ctrl+C.
        let slice = now + Duration::from_millis(200);
        let until = deadline.map_or(slice, |deadline| deadline.min(slice));
        let changes = client
            .next_change(until)
            .map_err(|error| match error.kind() {
                ErrorKind::Unreachable => Error::new(
                    ErrorKind::Unreachable,
                    format!("{alias:?} closed the connection: {error}"),
                ),
                _ => error.into(),
            })?;
        for item in changes.into_iter().flatten() {
            if count.is_some_and(|count| seen >= count) {
                break;
            }
            if !ids.contains(&CharacteristicId {
                aid: item.aid,
                iid: item.iid,
            }) {
                continue;
            }
            print(&item);
            seen += 1;
        }
    }
    Ok(())
}

fn identify(ctx: &Ctx, target: &str) -> Result<(), Error> {
    let mut file = ctx.load()?;
    if file.find(target).is_some() {
        let mut buffers = buffer_pair();
        let (alias, _, mut client) = session(ctx, &mut file, target, &mut buffers)?;
        let tree = tree_of(&mut client)?;
        let resolved = tree.resolve(&Selector::Name {
            accessory: Some(AccessoryRef::Aid(1)),
            name: "Identify".into(),
        })?;
        let answer = client.write(&[Write::value(resolved.id, Scalar::Bool(true))])?;
        if answer.status == 207 {
            if let Some(item) = items_of(&answer)?.iter().find(|i| !i.is_success()) {
                return Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "{alias:?} refused to identify: {}",
                        status_text(item.status)
                    ),
                ));
            }
        } else {
            answer.success()?;
        }
        ctx.emit(
            || format!("Identified {alias:?}."),
            || json!({"identified": alias}),
        );
        return Ok(());
    }
    let (address, found) = locate(ctx, target)?;
    let label = found.map_or_else(|| target.to_string(), |f| f.name);
    let mut buffers = client::buffers();
    let mut client = Client::connect(address, ctx.timeout, &mut buffers)?;
    let answer = client.identify()?;
    if let Err(error) = answer.success() {
        let paired = matches!(
            error,
            ClientError::Status {
                hap_status: Some(HapStatus::InsufficientPrivileges),
                ..
            }
        );
        if paired {
            return Err(Error::new(
                ErrorKind::Refused,
                format!("{label:?} is paired and only identifies to its controllers; if it is in {}, use its alias", ctx.file.display()),
            ));
        }
        return Err(error.into());
    }
    ctx.emit(
        || format!("Identified {label:?}."),
        || json!({"identified": label}),
    );
    Ok(())
}

fn list_pairings(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let mut file = ctx.load()?;
    let ours = file
        .identity()
        .map(|identity| identity.id.as_bytes().to_vec());
    let mut buffers = buffer_pair();
    let (alias, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    let answer = client
        .list_pairings()
        .map_err(|error| pairings_error(&alias, error))?;
    let response = answer.response();
    let reply = response
        .pairings()
        .map_err(|error| Error::new(ErrorKind::Protocol, format!("bad pairings list: {error}")))?;
    let listed: Vec<(String, String, bool, bool)> = reply
        .pairings()
        .map(|p| {
            (
                String::from_utf8_lossy(p.id).into_owned(),
                to_hex(&p.public_key),
                p.admin,
                ours.as_deref() == Some(p.id),
            )
        })
        .collect();
    ctx.emit(
        || {
            listed
                .iter()
                .map(|(id, key, admin, this)| {
                    let role = if *admin { "admin" } else { "user" };
                    let mark = if *this { "  (this controller)" } else { "" };
                    format!("{id}  {role}  {key}{mark}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        || {
            let pairings: Vec<Value> = listed
                .iter()
                .map(|(id, key, admin, this)| {
                    json!({"id": id, "public_key": key, "admin": admin, "this_controller": this})
                })
                .collect();
            json!({ "pairings": pairings })
        },
    );
    Ok(())
}

fn pairings_error(alias: &str, error: ClientError) -> Error {
    match &error {
        ClientError::PairingsRefused(ErrorCode::Authentication) => Error::new(
            ErrorKind::Refused,
            format!("{alias:?} refused: only an admin controller may change its pairings"),
        ),
        _ => Error::new(error.kind(), format!("{alias:?}: {error}")),
    }
}

fn add_pairing(ctx: &Ctx, key: &str, id: &str, public_key: &str, admin: bool) -> Result<(), Error> {
    let public_key: [u8; 32] = from_hex(public_key)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| Error::new(ErrorKind::Usage, "--key must be 32 bytes of hex"))?;
    if id.is_empty() || id.len() > hap_core::pairing::MAX_PAIRING_ID_LEN {
        return Err(Error::new(ErrorKind::Usage, "--id must be 1 to 64 bytes"));
    }
    let mut file = ctx.load()?;
    let mut buffers = buffer_pair();
    let (alias, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    client
        .add_pairing(id.as_bytes(), &public_key, admin)
        .map_err(|error| pairings_error(&alias, error))?;
    let role = if admin { "admin" } else { "user" };
    ctx.emit(
        || format!("Added {id} ({role}) to {alias:?}."),
        || json!({"alias": alias, "id": id, "admin": admin}),
    );
    Ok(())
}

fn remove_pairing(ctx: &Ctx, key: &str, id: &str) -> Result<(), Error> {
    let mut file = ctx.load()?;
    let mut buffers = buffer_pair();
    let (alias, _, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    client
        .remove_pairing(id.as_bytes())
        .map_err(|error| pairings_error(&alias, error))?;
    drop(client);
    let ours = file
        .identity()
        .is_some_and(|identity| identity.id.as_bytes() == id.as_bytes());
    if ours {
        // That was this controller's own pairing: the accessory no longer knows us.
        file.update(|contents| contents.accessories.remove(&alias))?;
    }
    ctx.emit(
        || format!("Removed {id} from {alias:?}."),
        || json!({"alias": alias, "id": id}),
    );
    Ok(())
}

fn unpair(ctx: &Ctx, key: &str, forget: bool) -> Result<(), Error> {
    let mut file = ctx.load()?;
    if forget {
        let (alias, stored) = stored(&file, key)?;
        file.update(|contents| contents.accessories.remove(&alias))?;
        ctx.emit(
            || format!("Forgot {alias:?}; the accessory may still list this controller."),
            || json!({"alias": alias, "id": stored.id}),
        );
        return Ok(());
    }
    let mut buffers = buffer_pair();
    let (alias, stored, mut client) = session(ctx, &mut file, key, &mut buffers)?;
    let identity = file
        .identity()
        .ok_or_else(|| Error::new(ErrorKind::Storage, "no controller identity"))?;
    client
        .remove_pairing(identity.id.as_bytes())
        .map_err(|error| pairings_error(&alias, error))?;
    drop(client);
    file.update(|contents| contents.accessories.remove(&alias))?;
    ctx.emit(
        || format!("Unpaired {alias:?}."),
        || json!({"alias": alias, "id": stored.id}),
    );
    Ok(())
}

fn show_id(ctx: &Ctx) -> Result<(), Error> {
    let mut file = ctx.load()?;
    let identity = file.identity_or_create(&mut OsRng)?;
    let id = String::from_utf8_lossy(identity.id.as_bytes()).into_owned();
    let key = to_hex(&identity.keys.public_key());
    ctx.emit(
        || format!("id {id}  public key {key}"),
        || json!({"id": id, "public_key": key}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_for_strings_tlv8_and_data_stay_strings() {
        let parsed = |text| parse_value(text).unwrap();
        // Base64 of digits only, and a word JSON reads as a bool.
        for format in ["tlv8", "data", "string"] {
            assert_eq!(
                value_for(Some(format), "1234", parsed("1234")),
                json!("1234")
            );
            assert_eq!(
                value_for(Some(format), "true", parsed("true")),
                json!("true")
            );
        }
        assert_eq!(value_for(Some("int"), "1234", parsed("1234")), json!(1234));
        assert_eq!(value_for(None, "true", parsed("true")), json!(true));
        // A quoted JSON string is decoded either way.
        assert_eq!(
            value_for(Some("string"), "\"a b\"", parsed("\"a b\"")),
            json!("a b")
        );
    }

    #[test]
    fn responses_print_strings_as_received() {
        assert_eq!(response_text(&json!("AgA=")), "AgA=");
        assert_eq!(response_text(&json!(30)), "30");
        assert_eq!(response_text(&json!(true)), "true");
    }
}
