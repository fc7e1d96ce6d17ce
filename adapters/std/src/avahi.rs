//! Registering the accessory through avahi-daemon over D-Bus, as HomeKitADK's Linux
//! platform (through Avahi's `dns_sd` shim) and Homebridge do.
//!
//! On a Linux machine that runs avahi-daemon, port 5353 belongs to it: a second responder
//! there would answer beside it and miss its conflict checks. [`AvahiResponder`] instead
//! asks the daemon to publish the service. Avahi then probes the name, announces it,
//! answers queries, follows the machine's interfaces and addresses, and sends the
//! goodbyes. What is left here is the naming: when another host already has the instance
//! name (the group reports a collision), or another registration with the same daemon has
//! it (`AddService` answers `CollisionError`), the registration is renamed with
//! [`next_instance_name`] (`Light` becomes `Light (2)`, as the built-in responder does)
//! and an [`MdnsEvent::Renamed`] tells the application. [`MdnsEvent::Announced`] with
//! [`ALL_INTERFACES`] reports the group established.
//!
//! The calls, all to `org.freedesktop.Avahi` on the system bus:
//! - the bus's `GetNameOwner`, then `Server.GetState` and `Server.EntryGroupNew` at
//!   [`AvahiResponder::connect`], which fails unless the daemon is there, its state is 2
//!   (running) and it lets us make an entry group (so that a caller can still fall back
//!   to the built-in responder);
//! - on the group, `AddService` (any interface, any protocol, no flags, the name,
//!   `_hap._tcp`, the default domain and host, the port, the TXT strings) and `Commit` at
//!   the first [`Responder::announce`];
//! - `UpdateServiceTxt` when only the TXT record changed (Avahi announces it again without
//!   probing), or `Reset`, `AddService`, `Commit` when the name or port changed;
//! - `Free` at [`Responder::goodbye`] and on drop.
//!
//! A thread watches the daemon's signals: the group's `StateChanged` (established,
//! collision, failure) and the server's `StateChanged`. When the server leaves the running
//! state (2), to claim a new host name for example, the service is withdrawn, and published
//! again once it runs, as Avahi's examples do; when a new avahi-daemon replaced the one that
//! held the group (it restarted), the service is published again in a new group. Every
//! call and state change is logged at debug level.
//!
//! Each call waits at most [`CALL_TIMEOUT`], and one that times out ends what was being
//! done (the daemon is not answering); finding a free name tries further names for at
//! most [`RENAME_BUDGET`]. So the watching thread, which holds the registration while it
//! publishes again, holds up [`Responder::announce`] and drop for a bounded time.
//!
//! Not followed: a restart of the D-Bus system bus itself. The connection then ends, the
//! thread stops, and [`Responder::announce`] returns errors; make a new responder.

use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hap_core::mdns::{
    next_instance_name, Advertisement, InterfaceId, MdnsEvent, NameKind, Responder,
};
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type as MessageType;
use zbus::zvariant::OwnedObjectPath;
use zbus::MatchRule;

/// How long [`AvahiResponder::connect`] waits for the bus and the daemon.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a call to avahi-daemon may take; it answers at once when it runs.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The D-Bus service type registered.
pub const SERVICE_TYPE: &str = "_hap._tcp";

/// avahi-daemon's name on the bus.
const AVAHI: &str = "org.freedesktop.Avahi";
const SERVER: &str = "org.freedesktop.Avahi.Server";
const ENTRY_GROUP: &str = "org.freedesktop.Avahi.EntryGroup";
/// What Avahi's methods answer when a local registration already has the name.
const COLLISION_ERROR: &str = "org.freedesktop.Avahi.CollisionError";

/// `AVAHI_IF_UNSPEC` and `AVAHI_PROTO_UNSPEC`: every interface, IPv4 and IPv6.
const ANY: i32 = -1;

/// The server state in which services can be published (`AVAHI_SERVER_RUNNING`).
const SERVER_RUNNING: i32 = 2;

/// An entry group's states (`AvahiEntryGroupState`).
const GROUP_ESTABLISHED: i32 = 2;
const GROUP_COLLISION: i32 = 3;
const GROUP_FAILURE: i32 = 4;

/// How many names [`Responder::announce`] tries when local registrations already hold
/// them, before it gives up.
const MAX_LOCAL_RENAMES: usize = 16;

/// How long one publication may go on trying further names when local registrations
/// hold them: no new name is tried after this (each try is a call to the daemon).
pub const RENAME_BUDGET: Duration = Duration::from_secs(4);

/// The interface [`MdnsEvent::Announced`] names: 0 means "Avahi, on all interfaces", since
/// Avahi reports the group as established once, not per interface.
pub const ALL_INTERFACES: InterfaceId = InterfaceId(0);

/// What the application is told about the registration, from the watching thread.
pub type EventHandler = Box<dyn Fn(MdnsEvent) + Send + Sync>;

/// Why avahi-daemon could not be used, or a registration failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AvahiError {
    /// The D-Bus system bus could not be reached.
    Bus(DbusError),
    /// avahi-daemon is not on the system bus.
    NotRunning,
    /// avahi-daemon is on the bus but not running its server (state other than 2), for
    /// example while it probes its host name.
    NotReady {
        /// The server state it reported (`AvahiServerState`).
        state: i32,
    },
    /// The bus or the daemon did not answer within [`CONNECT_TIMEOUT`].
    Timeout,
    /// A call to avahi-daemon failed.
    Call {
        /// The method, such as `AddService`.
        method: &'static str,
        /// What D-Bus or the daemon said.
        error: DbusError,
    },
    /// [`Responder::goodbye`] withdrew the service; it is not published again.
    Withdrawn,
    /// The thread that watches avahi-daemon could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for AvahiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bus(error) => write!(
                f,
                "cannot reach the D-Bus system bus ({error}); start dbus, set \
                 DBUS_SYSTEM_BUS_ADDRESS, or use the built-in mDNS responder"
            ),
            Self::NotRunning => f.write_str(
                "avahi-daemon is not running on the system bus; start it \
                 (systemctl start avahi-daemon) or use the built-in mDNS responder",
            ),
            Self::NotReady { state } => write!(
                f,
                "avahi-daemon is not ready (server state {state}, not 2); try again, or use \
                 the built-in mDNS responder"
            ),
            Self::Timeout => write!(
                f,
                "the D-Bus system bus or avahi-daemon did not answer within {CONNECT_TIMEOUT:?}; \
                 check them, or use the built-in mDNS responder"
            ),
            Self::Call { method, error } => write!(f, "avahi-daemon refused {method}: {error}"),
            Self::Withdrawn => {
                f.write_str("the service was withdrawn (goodbye); make a new responder")
            }
            Self::Thread(error) => {
                write!(f, "cannot start the thread watching avahi-daemon: {error}")
            }
        }
    }
}

/// What D-Bus or avahi-daemon said, in an [`AvahiError`].
#[derive(Debug)]
pub struct DbusError(Box<zbus::Error>);

impl DbusError {
    fn new(error: zbus::Error) -> Self {
        Self(Box::new(error))
    }

    /// The D-Bus error name, when the daemon or the bus answered with an error, such as
    /// `org.freedesktop.Avahi.CollisionError`.
    pub fn name(&self) -> Option<&str> {
        match &*self.0 {
            zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for DbusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl std::error::Error for AvahiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bus(error) | Self::Call { error, .. } => Some(error),
            Self::Thread(error) => Some(error),
            _ => None,
        }
    }
}

/// Publishes an accessory's `_hap._tcp` service through avahi-daemon.
///
/// Made by [`AvahiResponder::connect`]; implements [`Responder`], so an
/// [`Advertiser`](hap_core::mdns::Advertiser) drives it like the built-in responder.
/// Dropping it withdraws the service and ends its thread.
pub struct AvahiResponder {
    shared: Arc<Shared>,
    watcher: Option<JoinHandle<()>>,
}

impl fmt::Debug for AvahiResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvahiResponder")
            .field("registration", &*self.shared.lock())
            .finish_non_exhaustive()
    }
}

/// What the caller's thread and the watching thread share.
struct Shared {
    connection: Connection,
    registration: Mutex<Registration>,
    events: EventHandler,
}

/// The service as published, or to be published.
#[derive(Debug, Default)]
struct Registration {
    /// The entry group, once made.
    group: Option<OwnedObjectPath>,
    /// The unique bus name of the avahi-daemon that holds `group` (or that answered at
    /// connect): a signal from another one means the daemon was replaced.
    daemon: String,
    /// The name the application asked for last.
    requested: String,
    /// The name registered: `requested`, or what it was renamed to.
    name: String,
    port: u16,
    txt: Vec<Vec<u8>>,
    /// Whether the application announced (so there is something to publish).
    announced: bool,
    /// Whether the group holds the service now (added since the last reset).
    added: bool,
    /// Whether the application said goodbye.
    withdrawn: bool,
    /// Whether the daemon's server runs (state 2), so that services can be added.
    server_running: bool,
}

impl AvahiResponder {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the default socket),
    /// checks that avahi-daemon runs there (its server state is 2), and starts the thread
    /// that watches it. `events` is called from that thread, and from
    /// [`Responder::announce`] for a rename it makes at once (when another registration
    /// with the same daemon has the name).
    ///
    /// Fails within about [`CONNECT_TIMEOUT`] when there is no bus or no daemon (and
    /// within [`CALL_TIMEOUT`] more when the daemon refuses `EntryGroupNew`), so a caller
    /// can fall back to the built-in responder. The daemon is not started by bus
    /// activation: a stopped avahi-daemon counts as absent.
    ///
    /// The D-Bus handshake has no time limit of its own, so it runs on a thread named
    /// `avahi-connect`. After a timeout that thread is left behind, detached: it ends by
    /// itself when the bus answers or closes the socket (each call it makes is bounded by
    /// [`CALL_TIMEOUT`]), and the connection it made, if any, is then dropped unused.
    pub fn connect(events: EventHandler) -> Result<Self, AvahiError> {
        // The D-Bus handshake has no time limit of its own: do it on a thread and stop
        // waiting after the timeout (the thread ends when the bus answers or hangs up).
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("avahi-connect".into())
            .spawn(move || {
                let _ = sender.send(open());
            })
            .map_err(AvahiError::Thread)?;
        let (connection, signals, daemon) = match receiver.recv_timeout(CONNECT_TIMEOUT) {
            Ok(result) => result?,
            Err(_) => return Err(AvahiError::Timeout),
        };
        let shared = Arc::new(Shared {
            connection,
            registration: Mutex::new(Registration {
                daemon,
                server_running: true,
                ..Registration::default()
            }),
            events,
        });
        // Made now rather than at the first announce: a daemon that refuses entry groups
        // (a policy, a limit of groups per client) is found while the caller can still
        // choose another responder.
        shared.group(&mut shared.lock())?;
        let watching = Arc::clone(&shared);
        let watcher = std::thread::Builder::new()
            .name("avahi-watch".into())
            .spawn(move || watch(&watching, signals))
            .map_err(AvahiError::Thread)?;
        Ok(Self {
            shared,
            watcher: Some(watcher),
        })
    }

    /// The instance name registered now: the announced name, or what it was renamed to
    /// after a conflict; empty before the first announcement.
    pub fn instance_name(&self) -> String {
        self.shared.lock().name.clone()
    }
}

/// Opens the connection, subscribes to avahi-daemon's signals and checks its state;
/// returns the unique bus name of the daemon too.
fn open() -> Result<(Connection, MessageIterator, String), AvahiError> {
    let connection = zbus::blocking::connection::Builder::system()
        .and_then(|builder| builder.method_timeout(CALL_TIMEOUT).build())
        .map_err(bus_error)?;
    // Subscribe before any registration, so that no state change is missed. The group's
    // signals are addressed to us; the server's are broadcast and need the rule.
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(AVAHI)
        .map_err(bus_error)?
        .build();
    let signals = MessageIterator::for_match_rule(rule, &connection, None).map_err(bus_error)?;
    // Asking the bus who owns the name neither starts the daemon by activation nor waits.
    log::debug!("avahi: GetNameOwner({AVAHI})");
    let daemon: String = match connection.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        "GetNameOwner",
        &(AVAHI,),
    ) {
        Ok(reply) => reply.body().deserialize().map_err(bus_error)?,
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
        {
            return Err(AvahiError::NotRunning)
        }
        Err(error) => return Err(timeout_or(error, bus_error)),
    };
    log::debug!("avahi: GetState on {daemon}");
    let state: i32 = connection
        .call_method(Some(daemon.as_str()), "/", Some(SERVER), "GetState", &())
        .and_then(|reply| reply.body().deserialize())
        .map_err(|error| timeout_or(error, |error| call_error("GetState", error)))?;
    log::debug!("avahi: server state {state}");
    if state != SERVER_RUNNING {
        return Err(AvahiError::NotReady { state });
    }
    Ok((connection, signals, daemon))
}

fn bus_error(error: zbus::Error) -> AvahiError {
    AvahiError::Bus(DbusError::new(error))
}

fn call_error(method: &'static str, error: zbus::Error) -> AvahiError {
    AvahiError::Call {
        method,
        error: DbusError::new(error),
    }
}

/// Whether a call failed because the daemon did not answer in time.
fn is_timeout(error: &AvahiError) -> bool {
    match error {
        AvahiError::Timeout => true,
        AvahiError::Call { error, .. } => matches!(
            &*error.0,
            zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut
        ),
        _ => false,
    }
}

/// [`AvahiError::Timeout`] for a call that timed out, else `other(error)`.
fn timeout_or(error: zbus::Error, other: impl FnOnce(zbus::Error) -> AvahiError) -> AvahiError {
    match &error {
        zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            AvahiError::Timeout
        }
        _ => other(error),
    }
}

/// The TXT record as Avahi takes it: one `key=value` byte string per entry.
fn txt_strings(advertisement: &Advertisement<'_>) -> Vec<Vec<u8>> {
    advertisement
        .txt()
        .iter()
        .map(|entry| format!("{}={}", entry.key, entry.value).into_bytes())
        .collect()
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registration> {
        // A panic elsewhere leaves the registration consistent enough to go on.
        self.registration
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `method` of the entry group `group`, logging it.
    fn group_call<B>(
        &self,
        group: &OwnedObjectPath,
        method: &'static str,
        body: &B,
    ) -> Result<(), AvahiError>
    where
        B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
    {
        log::debug!("avahi: {method} on {}", group.as_str());
        self.connection
            .call_method(Some(AVAHI), group.as_str(), Some(ENTRY_GROUP), method, body)
            .map(drop)
            .map_err(|error| {
                log::debug!("avahi: {method} failed: {error}");
                call_error(method, error)
            })
    }

    /// The entry group, made if there is none yet.
    fn group(&self, registration: &mut Registration) -> Result<OwnedObjectPath, AvahiError> {
        if let Some(group) = &registration.group {
            return Ok(group.clone());
        }
        log::debug!("avahi: EntryGroupNew");
        let reply = self
            .connection
            .call_method(Some(AVAHI), "/", Some(SERVER), "EntryGroupNew", &())
            .map_err(|error| call_error("EntryGroupNew", error))?;
        let group: OwnedObjectPath = reply
            .body()
            .deserialize()
            .map_err(|error| call_error("EntryGroupNew", error))?;
        if let Some(sender) = reply.header().sender() {
            registration.daemon = sender.to_string();
        }
        log::debug!(
            "avahi: entry group {} of {}",
            group.as_str(),
            registration.daemon
        );
        registration.group = Some(group.clone());
        registration.added = false;
        Ok(group)
    }

    /// Adds the service under `registration.name` to a reset (or new) group and commits
    /// it. When a local registration already has the name, tries the next names; returns
    /// the names it had to give up on, for [`MdnsEvent::Renamed`].
    fn publish(&self, registration: &mut Registration) -> Result<Option<String>, AvahiError> {
        let group = self.group(registration)?;
        if registration.added {
            self.group_call(&group, "Reset", &())?;
            registration.added = false;
        }
        let mut renamed = None;
        let started = std::time::Instant::now();
        for _ in 0..MAX_LOCAL_RENAMES {
            if renamed.is_some() && started.elapsed() > RENAME_BUDGET {
                break;
            }
            let body = (
                ANY,
                ANY,
                0u32,
                registration.name.as_str(),
                SERVICE_TYPE,
                "",
                "",
                registration.port,
                &registration.txt,
            );
            match self.group_call(&group, "AddService", &body) {
                Ok(()) => {
                    registration.added = true;
                    if let Err(error) = self.group_call(&group, "Commit", &()) {
                        // Leave the group empty, so the next try starts afresh; unless
                        // the daemon is not answering at all.
                        if !is_timeout(&error) && self.group_call(&group, "Reset", &()).is_ok() {
                            registration.added = false;
                        }
                        return Err(error);
                    }
                    return Ok(renamed);
                }
                Err(AvahiError::Call { error, .. }) if error.name() == Some(COLLISION_ERROR) => {
                    let next = next_instance_name(&registration.name);
                    log::info!(
                        "avahi: {:?} is registered here already; trying {:?}",
                        registration.name,
                        next.as_str()
                    );
                    registration.name = next.as_str().to_owned();
                    renamed = Some(registration.name.clone());
                }
                Err(error) => return Err(error),
            }
        }
        Err(call_error(
            "AddService",
            zbus::Error::Failure(format!(
                "the names up to {:?} are registered here already",
                registration.name
            )),
        ))
    }

    /// Handles one signal from avahi-daemon; returns the events to report (the caller
    /// reports them after releasing the lock, so that a handler may call back).
    fn handle_signal(&self, message: &zbus::Message) -> Vec<MdnsEvent> {
        let header = message.header();
        let (Some(interface), Some(member), Some(path)) =
            (header.interface(), header.member(), header.path())
        else {
            return Vec::new();
        };
        if member.as_str() != "StateChanged" {
            return Vec::new();
        }
        let Ok((state, error)) = message.body().deserialize::<(i32, String)>() else {
            log::debug!("avahi: a StateChanged signal without (state, error)");
            return Vec::new();
        };
        let sender = header
            .sender()
            .map(|sender| sender.to_string())
            .unwrap_or_default();
        let mut registration = self.lock();
        match interface.as_str() {
            ENTRY_GROUP
                if registration
                    .group
                    .as_ref()
                    .is_some_and(|group| group.as_str() == path.as_str()) =>
            {
                self.group_state_changed(&mut registration, state, &error)
            }
            ENTRY_GROUP => {
                log::debug!("avahi: state {state} of {path}, not our group");
                Vec::new()
            }
            SERVER => self.server_state_changed(&mut registration, &sender, state),
            _ => Vec::new(),
        }
    }

    fn group_state_changed(
        &self,
        registration: &mut Registration,
        state: i32,
        error: &str,
    ) -> Vec<MdnsEvent> {
        log::debug!(
            "avahi: group state {state} for {:?} {error}",
            registration.name
        );
        let mut events = Vec::new();
        match state {
            GROUP_ESTABLISHED => {
                log::info!("avahi: {:?} is published", registration.name);
                events.push(MdnsEvent::Announced {
                    iface: ALL_INTERFACES,
                });
            }
            GROUP_COLLISION if !registration.withdrawn => {
                let next = next_instance_name(&registration.name);
                log::info!(
                    "avahi: another host has {:?}; renaming to {:?}",
                    registration.name,
                    next.as_str()
                );
                registration.name = next.as_str().to_owned();
                let mut name = registration.name.clone();
                match self.publish(registration) {
                    Ok(further) => name = further.unwrap_or(name),
                    Err(error) => {
                        log::error!("avahi: cannot register {:?}: {error}", registration.name)
                    }
                }
                events.push(renamed(&name));
            }
            GROUP_FAILURE => {
                log::error!("avahi: registering {:?} failed: {error}", registration.name)
            }
            _ => {}
        }
        events
    }

    fn server_state_changed(
        &self,
        registration: &mut Registration,
        sender: &str,
        state: i32,
    ) -> Vec<MdnsEvent> {
        log::debug!("avahi: server {sender} state {state}");
        if !sender.is_empty() && sender != registration.daemon {
            // A new daemon: the old one's group went with it.
            log::info!(
                "avahi: avahi-daemon restarted ({} → {sender})",
                registration.daemon
            );
            registration.daemon = sender.to_owned();
            registration.group = None;
            registration.added = false;
        }
        registration.server_running = state == SERVER_RUNNING;
        let mut events = Vec::new();
        match state {
            // The host name is being (re)claimed, or the server failed: withdraw, and
            // publish again when it runs.
            state if state != SERVER_RUNNING && registration.added => {
                if let Some(group) = registration.group.clone() {
                    if let Err(error) = self.group_call(&group, "Reset", &()) {
                        log::warn!("avahi: {error}");
                    }
                }
                registration.added = false;
            }
            SERVER_RUNNING
                if registration.announced && !registration.withdrawn && !registration.added =>
            {
                match self.publish(registration) {
                    Ok(Some(name)) => events.push(renamed(&name)),
                    Ok(None) => {}
                    Err(error) => log::error!(
                        "avahi: cannot register {:?} again: {error}",
                        registration.name
                    ),
                }
            }
            _ => {}
        }
        events
    }

    fn report(&self, events: Vec<MdnsEvent>) {
        for event in events {
            (self.events)(event);
        }
    }
}

/// [`MdnsEvent::Renamed`] for the instance.
fn renamed(name: &str) -> MdnsEvent {
    MdnsEvent::Renamed {
        kind: NameKind::Instance,
        // next_instance_name made it, so it fits a label.
        name: name.try_into().unwrap_or_default(),
    }
}

/// The watching thread: handles avahi-daemon's signals until the connection closes.
fn watch(shared: &Shared, signals: MessageIterator) {
    for message in signals {
        match message {
            Ok(message) => {
                let events = shared.handle_signal(&message);
                shared.report(events);
            }
            Err(error) => log::debug!("avahi: the bus connection ended: {error}"),
        }
    }
    log::debug!("avahi: watching thread ends");
}

impl Responder for AvahiResponder {
    type Error = AvahiError;

    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), AvahiError> {
        let txt = txt_strings(advertisement);
        let events = {
            let mut registration = self.shared.lock();
            if registration.withdrawn {
                return Err(AvahiError::Withdrawn);
            }
            let mut moved = !registration.announced || advertisement.port != registration.port;
            if advertisement.name == registration.name {
                // The same name, or the application adopted the new one.
                registration.requested = registration.name.clone();
            } else if advertisement.name != registration.requested {
                registration.requested = advertisement.name.to_owned();
                registration.name = advertisement.name.to_owned();
                moved = true;
            }
            registration.announced = true;
            registration.port = advertisement.port;
            if !registration.server_running {
                // Published when the server runs again (see server_state_changed).
                log::debug!("avahi: the server is not running; publishing later");
                registration.txt = txt;
                return Ok(());
            }
            if registration.added && !moved {
                if txt != registration.txt {
                    let group = self.shared.group(&mut registration)?;
                    let name = registration.name.as_str();
                    let body = (ANY, ANY, 0u32, name, SERVICE_TYPE, "", &txt);
                    self.shared.group_call(&group, "UpdateServiceTxt", &body)?;
                    registration.txt = txt;
                }
                return Ok(());
            }
            registration.txt = txt;
            match self.shared.publish(&mut registration)? {
                Some(name) => vec![renamed(&name)],
                None => Vec::new(),
            }
        };
        self.shared.report(events);
        Ok(())
    }

    fn goodbye(&mut self) -> Result<(), AvahiError> {
        let mut registration = self.shared.lock();
        registration.withdrawn = true;
        registration.added = false;
        match registration.group.take() {
            Some(group) => self.shared.group_call(&group, "Free", &()),
            None => Ok(()),
        }
    }
}

impl Drop for AvahiResponder {
    fn drop(&mut self) {
        if let Err(error) = self.goodbye() {
            log::debug!("avahi: {error}");
        }
        // Closing the connection ends the signal iterator, and so the thread.
        if let Err(error) = self.shared.connection.clone().close() {
            log::debug!("avahi: closing the bus connection: {error}");
        }
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Set in the child process that [`connect_fails_fast_when_the_bus_is_absent`] runs.
    const CHILD_VAR: &str = "HAP_AVAHI_NO_BUS_CHILD";
    const NO_BUS_TEST: &str = "avahi::tests::connect_fails_fast_when_the_bus_is_absent";

    #[test]
    fn connect_fails_fast_when_the_bus_is_absent() {
        if std::env::var_os(CHILD_VAR).is_none() {
            // Run again with DBUS_SYSTEM_BUS_ADDRESS naming a socket that does not exist,
            // in a child, so this process's environment stays as it is.
            let dir = std::env::temp_dir().join(format!("hap-avahi-no-bus-{}", std::process::id()));
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args([NO_BUS_TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_VAR, "1")
                .env(
                    "DBUS_SYSTEM_BUS_ADDRESS",
                    format!("unix:path={}/bus", dir.display()),
                )
                .output()
                .expect("run the test again");
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{text}");
            assert!(text.contains("1 passed"), "the child ran the test: {text}");
            return;
        }
        let start = Instant::now();
        let error = AvahiResponder::connect(Box::new(|_| {})).expect_err("there is no bus");
        let took = start.elapsed();
        println!("connect failed after {took:?}: {error}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert!(matches!(error, AvahiError::Bus(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("system bus") && message.contains("built-in"),
            "{message}"
        );
    }

    #[test]
    fn the_responder_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<AvahiResponder>();
        send::<AvahiError>();
    }

    #[test]
    fn txt_strings_are_key_equals_value() {
        let advertisement = Advertisement {
            name: "Light",
            port: 51826,
            model: "VirtualLight",
            device_id: "12:34:56:78:9A:BC".parse().unwrap(),
            config_number: 3,
            category: hap_core::catalog::Category::LIGHTBULB,
            paired: false,
            setup_id: None,
        };
        let strings = txt_strings(&advertisement);
        assert_eq!(strings[0], b"c#=3");
        assert!(strings.contains(&b"sf=1".to_vec()));
        assert!(strings.contains(&b"md=VirtualLight".to_vec()));
    }
}
