//! The part of an adapter that does not depend on how sockets are waited for: the
//! shared [`Server`], its store and mDNS responder, the clock and the random number
//! generator, and the loop that drains a connection's outputs.
//!
//! A runtime shares one [`Host`] behind a mutex. For each connection it keeps the
//! [`ConnectionBuffers`] and the [`Connection`] made by [`Host::accept`], and repeats:
//! wait for bytes, a wake-up or the [`Host::poll_timeout`]; then, under the lock, call
//! [`Host::handle_timeout`] if it is due and [`Host::handle_input`], and send what
//! `handle_input` collected once the lock is released. Wake-ups come from the waker given to
//! `accept`: the host calls it for each connection the core names
//! ([`Server::poll_wake`]) after another connection or the application changed
//! something this connection may have to tell its controller.
//!
//! Beside the connections, the runtime waits for [`Host::poll_host_timeout`] and then
//! calls [`Host::handle_host_timeout`]: work due with no connection open, such as
//! retrying a failed mDNS announcement. The waker given to [`Host::set_host_waker`]
//! says when that deadline changed.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hap_core::catalog::Category;
use hap_core::database::config::ConfigNumber;
use hap_core::database::ids::IdMap;
use hap_core::database::{Database, OwnedValue, SetValueError};
use hap_core::mdns::{Advertisement, Advertiser, Responder};
use hap_core::persist::Snapshot;
pub use hap_core::server::OwnedBuffers;
use hap_core::server::{
    AcceptError, CompleteError, Config, Connection, ConnectionBuffers, Event, HapStatus, Output,
    Server, Token,
};
use hap_core::setup::{SetupCode, SetupId};
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_core::OsRng;

use crate::socket::Bind;
use crate::store::{Store, StoreError};

/// How many response bytes one [`Host::handle_input`] collects before it stops taking
/// input, so that a peer pipelining requests cannot make the host build a huge reply
/// while it holds the lock.
pub const TRANSMIT_LIMIT: usize = 64 * 1024;

/// How many connections [`Options::new`] serves at once ([`Config::host`]): double
/// the core's default of 16 (HAP's minimum), which suits a microcontroller. On a host,
/// iPhones, iPads, Macs and home hubs of a household add up; when all slots are taken, the
/// connection idle longest (60 s or more) makes room for a newcomer.
pub const MAX_CONNECTIONS: usize = hap_core::server::HOST_MAX_CONNECTIONS;

/// Publishes the advertisement; any [`Responder`] whose error can be shown is one.
pub trait Announcer: Send {
    /// Publishes or replaces the advertisement.
    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), String>;
    /// Withdraws it.
    fn goodbye(&mut self) -> Result<(), String>;
}

impl<R> Announcer for R
where
    R: Responder + Send,
    R::Error: fmt::Display,
{
    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), String> {
        Responder::announce(self, advertisement).map_err(|e| e.to_string())
    }

    fn goodbye(&mut self) -> Result<(), String> {
        Responder::goodbye(self).map_err(|e| e.to_string())
    }
}

/// So that the core's [`Advertiser`] can drive whichever announcer the options hold.
impl Responder for Box<dyn Announcer> {
    type Error = String;

    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), String> {
        (**self).announce(advertisement)
    }

    fn goodbye(&mut self) -> Result<(), String> {
        (**self).goodbye()
    }
}

/// What mDNS advertises besides the state: the accessory's name, model, category and
/// port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The instance name.
    pub name: String,
    /// The model, `md`.
    pub model: String,
    /// The category, `ci`.
    pub category: Category,
    /// The TCP port.
    pub port: u16,
}

/// How to serve an accessory.
pub struct Options {
    /// Where to listen ([`Bind::Any`]: `[::]` for both IPv6 and IPv4, or `0.0.0.0`
    /// where the machine has no IPv6).
    pub bind: Bind,
    /// The TCP port (51826); 0 picks a free one.
    pub port: u16,
    /// The name advertised over mDNS.
    pub name: String,
    /// The model advertised over mDNS.
    pub model: String,
    /// The category advertised over mDNS and in the setup URI.
    pub category: Category,
    /// The core's limits and timeouts ([`Config::host`]: 32 connections, requests of up
    /// to 32 KiB).
    pub config: Config,
    /// The mDNS responder, or `None` to advertise nothing.
    pub announcer: Option<Box<dyn Announcer>>,
}

impl Options {
    /// Defaults for an accessory named `name`, of `model` and `category` (such as
    /// [`Category::LIGHTBULB`]), without mDNS.
    pub fn new(name: &str, model: &str, category: Category) -> Self {
        Self {
            bind: Bind::Any,
            port: 51826,
            name: name.to_owned(),
            model: model.to_owned(),
            category,
            config: Config::host(),
            announcer: None,
        }
    }
}

/// Why an accessory could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be read or written.
    Store(StoreError),
    /// The socket could not be bound.
    Bind {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::Bind { address, source } => write!(f, "cannot listen on {address}: {source}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::Bind { source, .. } => Some(source),
        }
    }
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// An accessory's stored state, loaded or created, before it is served.
///
/// Build the database with [`Setup::ids`] so that ids stay stable across restarts, then
/// hand it to [`Setup::into_host`].
pub struct Setup {
    store: Box<dyn Store>,
    snapshot: Snapshot,
}

impl Setup {
    /// Loads the state from `store`, or creates and stores a new accessory, by the
    /// core's state policy ([`Snapshot::load_or_create`]): a new accessory gets `code`
    /// or a random valid setup code, and `setup_id` or a random one; an existing one
    /// keeps its identity and pairings, and a `code` that differs from the stored one
    /// makes a new verifier, so that new pairings need `code`.
    pub fn load_or_create(
        mut store: Box<dyn Store>,
        code: Option<SetupCode>,
        setup_id: Option<SetupId>,
    ) -> Result<Self, StartError> {
        let loaded = Snapshot::load_or_create(store.load()?, code, setup_id, &mut OsRng);
        if loaded.must_store {
            store.save(&loaded.setup)?;
        }
        Ok(Self {
            store,
            snapshot: loaded.setup,
        })
    }

    /// The id map to build the database with.
    pub fn ids(&mut self) -> &mut IdMap {
        &mut self.snapshot.ids
    }

    /// The stored state.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Where the state is stored.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Takes the database, bumps and stores the configuration number if its shape
    /// changed, announces over mDNS that the accessory listens on `port`, and returns
    /// the host to serve from. A failed announcement is logged and retried
    /// [`ANNOUNCE_RETRY`](hap_core::mdns::ANNOUNCE_RETRY) later, at the
    /// [`Host::poll_host_timeout`]: the network may not be up yet.
    pub fn into_host(
        mut self,
        database: Database<'static>,
        options: Options,
        port: u16,
        events: Box<dyn Fn(Event) + Send>,
    ) -> Result<Host, StartError> {
        let identity = Identity {
            name: options.name,
            model: options.model,
            category: options.category,
            port,
        };
        let ids_changed = self.snapshot.ids.take_changed();
        let config_changed = self.snapshot.config.observe(database.shape());
        if ids_changed || config_changed {
            self.store.save(&self.snapshot)?;
        }
        let Snapshot {
            state,
            setup_code,
            setup_id,
            config: config_number,
            ids,
        } = self.snapshot;
        let mut host = Host {
            server: Server::new(state, database, options.config),
            store: self.store,
            advertiser: options.announcer.map(Advertiser::new),
            rng: OsRng,
            epoch: std::time::Instant::now(),
            wakers: Vec::new(),
            events,
            next_id: 0,
            identity,
            setup_code,
            setup_id,
            config_number,
            ids,
            shutting_down: false,
            host_waker: None,
            notified_host_deadline: None,
        };
        host.announce();
        host.notify_host_deadline();
        Ok(host)
    }
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("location", &self.store.location())
            .finish_non_exhaustive()
    }
}

/// What [`Host::handle_input`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// How many input bytes the core took.
    pub taken: usize,
    /// Input was left because [`TRANSMIT_LIMIT`] was reached, not because the core
    /// waits: send, then call again without waiting.
    pub saturated: bool,
    /// The connection is finished: send what was collected, then close the socket.
    pub close: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Drained {
    close: bool,
}

/// The state every connection of one accessory shares; see the [module docs](self).
pub struct Host {
    server: Server<'static>,
    store: Box<dyn Store>,
    advertiser: Option<Advertiser<Box<dyn Announcer>>>,
    rng: OsRng,
    epoch: std::time::Instant,
    wakers: Vec<(ConnectionId, Box<dyn Fn() + Send>)>,
    events: Box<dyn Fn(Event) + Send>,
    next_id: u32,
    identity: Identity,
    setup_code: Option<SetupCode>,
    setup_id: Option<SetupId>,
    config_number: ConfigNumber,
    ids: IdMap,
    shutting_down: bool,
    /// Called when [`Host::poll_host_timeout`] changed, so that the loop waiting for it
    /// looks again.
    host_waker: Option<Box<dyn Fn() + Send>>,
    /// The host deadline as of the last call of `host_waker`.
    notified_host_deadline: Option<Instant>,
}

impl Host {
    /// Now, on the core's clock: milliseconds since the host started.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// The server, for reading the database and state.
    pub fn server(&self) -> &Server<'static> {
        &self.server
    }

    /// The setup code, if stored.
    pub fn setup_code(&self) -> Option<&SetupCode> {
        self.setup_code.as_ref()
    }

    /// The setup id, if stored.
    pub fn setup_id(&self) -> Option<&SetupId> {
        self.setup_id.as_ref()
    }

    /// The advertised name, model, category and port.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether [`Host::shut_down`] was called; connections should close.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Memory for one connection, owned by the task or thread that serves it: enough for
    /// the largest request the configuration allows and a subscription to every evented
    /// characteristic ([`OwnedBuffers::for_database`]).
    pub fn connection_buffers(&self) -> OwnedBuffers {
        OwnedBuffers::for_database(self.server.config(), self.server.database())
    }

    /// Opens a connection, or refuses it when the connection limit is reached and no
    /// connection has been idle long enough to make room ([`Server::make_room`]; the
    /// evicted one is woken and closes). `wake` is called when the connection has
    /// something to send unprompted.
    pub fn accept<'b>(
        &mut self,
        buffers: ConnectionBuffers<'b>,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<Connection<'b>, AcceptError> {
        if self.shutting_down {
            return Err(AcceptError::TooManyConnections);
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = ConnectionId(self.next_id);
        let now = self.now();
        if !self.server.has_room() {
            if let Some(evicted) = self.server.make_room(now) {
                log::info!(
                    "closing connection {} to make room: idle longest",
                    evicted.0
                );
                self.wake_named(None);
            }
        }
        let conn = self.server.accept(id, buffers, now)?;
        self.wakers.push((id, wake));
        Ok(conn)
    }

    /// Drains the connection, then feeds it `input` for as long as it takes bytes,
    /// draining after each step. The bytes to send are appended to `transmit`. Keep the
    /// bytes not taken and offer them again after a wake-up or a timeout.
    pub fn handle_input(
        &mut self,
        conn: &mut Connection<'_>,
        input: &[u8],
        transmit: &mut Vec<u8>,
    ) -> Exchange {
        let mut drained = self.drain(conn, transmit);
        let mut taken = 0;
        let mut saturated = false;
        while !drained.close && taken < input.len() {
            if transmit.len() >= TRANSMIT_LIMIT {
                saturated = true;
                break;
            }
            let now = self.now();
            let step = self
                .server
                .handle_input(conn, now, &input[taken..], &mut self.rng);
            taken += step;
            drained = self.drain(conn, transmit);
            if step == 0 {
                break;
            }
        }
        Exchange {
            taken,
            saturated,
            close: drained.close,
        }
    }

    /// Applies the timeouts due; follow with [`Host::handle_input`].
    pub fn handle_timeout(&mut self, conn: &mut Connection<'_>) {
        let now = self.now();
        self.server.handle_timeout(conn, now);
    }

    /// When [`Host::handle_timeout`] next has work, if ever.
    pub fn poll_timeout(&self, conn: &Connection<'_>) -> Option<std::time::Instant> {
        self.server
            .poll_timeout(conn)
            .map(|at| self.epoch + Duration::from_millis(at.as_millis()))
    }

    /// When [`Host::handle_host_timeout`] next has work, if ever: work that is due
    /// whether or not any connection is open, such as retrying a failed mDNS
    /// announcement. A runtime waits for it beside accepting connections; the waker
    /// given to [`Host::set_host_waker`] says when it changed.
    ///
    /// A pairing change the core holds back until its controller has the reply is not
    /// here: its deadline is that connection's [`Host::poll_timeout`], and the
    /// connection's end releases it too.
    pub fn poll_host_timeout(&self) -> Option<std::time::Instant> {
        self.host_deadline()
            .map(|at| self.epoch + Duration::from_millis(at.as_millis()))
    }

    /// Does the work due by now that belongs to no connection: announces over mDNS if
    /// due (a failure is logged and retried later), and passes on server-wide events.
    /// Calling it early does nothing harmful.
    pub fn handle_host_timeout(&mut self) {
        self.handle_server_events();
        self.announce();
        self.notify_host_deadline();
        self.wake_named(None);
    }

    /// Sets what to call when [`Host::poll_host_timeout`] changed (an announcement
    /// failed and is due again, or the host shuts down), typically to wake the loop that
    /// waits for it. Calls it once now, so that the loop looks at the current deadline.
    pub fn set_host_waker(&mut self, wake: Box<dyn Fn() + Send>) {
        wake();
        self.notified_host_deadline = self.host_deadline();
        self.host_waker = Some(wake);
    }

    /// The advertiser's deadline on the core's clock; nothing once shutting down.
    fn host_deadline(&self) -> Option<Instant> {
        if self.shutting_down {
            return None;
        }
        self.advertiser.as_ref().and_then(Advertiser::poll_timeout)
    }

    /// Calls the host waker if the host deadline changed since it was last called.
    fn notify_host_deadline(&mut self) {
        let deadline = self.host_deadline();
        if deadline == self.notified_host_deadline {
            return;
        }
        self.notified_host_deadline = deadline;
        if let Some(wake) = &self.host_waker {
            wake();
        }
    }

    /// Passes server-wide events to the advertiser and the application.
    fn handle_server_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            let now = self.now();
            if let Some(advertiser) = self.advertiser.as_mut() {
                advertiser.handle_event(&event, now);
            }
            (self.events)(event);
        }
    }

    /// Runs the connection's outputs to the end, appending the bytes to send to
    /// `transmit`, storing the state when asked, and passing events to the application.
    fn drain(&mut self, conn: &mut Connection<'_>, transmit: &mut Vec<u8>) -> Drained {
        let mut drained = Drained::default();
        loop {
            let now = self.now();
            match self.server.poll_output(conn, now, &mut self.rng) {
                None => break,
                Some(Output::Transmit(bytes)) => transmit.extend_from_slice(bytes),
                Some(Output::Persist) => {
                    let stored = self.persist();
                    self.server
                        .state_persisted(conn, now, stored, &mut self.rng);
                }
                Some(Output::Event(event)) => (self.events)(event),
                Some(Output::Close) => {
                    drained.close = true;
                    break;
                }
                Some(other) => {
                    // hap-std is built with the hap-core it depends on, so this is a bug.
                    log::error!("closing on an output hap-std does not know: {other:?}");
                    drained.close = true;
                    break;
                }
            }
        }
        // A change of the paired state is reported once its controller has the reply,
        // which this connection's input or end may have just shown.
        self.handle_server_events();
        // Announces a change of `sf` at once; a failure is retried at the host deadline.
        self.announce();
        self.notify_host_deadline();
        if self.shutting_down && !drained.close {
            self.server.connection_lost(conn);
            drained.close = true;
        }
        if drained.close {
            self.forget(conn);
        }
        // This connection was drained just now; waking it too would cost its task a pass
        // that finds nothing to do.
        self.wake_named(Some(conn.id()));
        drained
    }

    /// The socket closed or failed; frees what the connection held.
    pub fn connection_lost(&mut self, conn: &mut Connection<'_>) {
        self.server.connection_lost(conn);
        // A pairing change may still have to be stored.
        let mut ignored = Vec::new();
        self.drain(conn, &mut ignored);
        self.forget(conn);
    }

    /// Sets a characteristic's value from the application ([`Server::set_value`]) and
    /// wakes the connections the core names: subscribers get events, and a read on
    /// demand or a write response waiting for the value is answered. Returns whether the
    /// value changed.
    pub fn set_value(
        &mut self,
        aid: u64,
        iid: u64,
        value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        let changed = self.server.set_value(aid, iid, value)?;
        self.wake_named(None);
        Ok(changed)
    }

    /// Sets a value without telling subscribers ([`Server::set_value_quietly`]), and
    /// wakes the connections waiting for it.
    pub fn set_value_quietly(
        &mut self,
        aid: u64,
        iid: u64,
        value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        let changed = self.server.set_value_quietly(aid, iid, value)?;
        self.wake_named(None);
        Ok(changed)
    }

    /// Tells subscribers a value, changed or not ([`Server::notify`]).
    pub fn notify(&mut self, aid: u64, iid: u64) -> Result<(), SetValueError> {
        self.server.notify(aid, iid)?;
        self.wake_named(None);
        Ok(())
    }

    /// Completes a confirmed write ([`Event::WriteRequest`]) with success or a status
    /// ([`Server::complete_write`]), and wakes the connections the core names: the
    /// writer's gets its answer, subscribers their events.
    pub fn complete_write(
        &mut self,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        self.server.complete_write(token, result)?;
        self.wake_named(None);
        Ok(())
    }

    /// Completes a read on demand ([`Event::Read`]) with a value or a status
    /// ([`Server::complete_read`]), and wakes the connections the core names.
    pub fn complete_read(
        &mut self,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        self.server.complete_read(token, result)?;
        self.wake_named(None);
        Ok(())
    }

    /// Starts shutting down: sends the mDNS goodbye, ends the stream of events, and wakes
    /// every connection, which closes at its next [`Host::handle_input`]. New connections are
    /// refused.
    pub fn shut_down(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        // Dropping the sink ends the application's stream of events.
        self.events = Box::new(|_| {});
        if let Some(advertiser) = self.advertiser.as_mut() {
            if let Err(e) = advertiser.goodbye() {
                log::warn!("mDNS goodbye failed: {e}");
            }
        }
        self.wake_all();
        // The loop waiting for the host deadline ends.
        if let Some(wake) = &self.host_waker {
            wake();
        }
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.server.connection_count()
    }

    fn forget(&mut self, conn: &Connection<'_>) {
        let id = conn.id();
        self.wakers.retain(|(other, _)| *other != id);
    }

    /// Wakes the connections [`Server::poll_wake`] names, but `drained`, which was
    /// drained just now.
    fn wake_named(&mut self, drained: Option<ConnectionId>) {
        while let Some(id) = self.server.poll_wake() {
            if Some(id) == drained {
                continue;
            }
            for (_, wake) in self.wakers.iter().filter(|(other, _)| *other == id) {
                wake();
            }
        }
    }

    /// Wakes every connection, for what the core does not know of: a shutdown.
    fn wake_all(&self) {
        for (_, wake) in &self.wakers {
            wake();
        }
    }

    fn persist(&mut self) -> bool {
        let snapshot = Snapshot {
            state: self.server.state().clone(),
            setup_code: self.setup_code,
            setup_id: self.setup_id,
            config: self.config_number,
            ids: self.ids.clone(),
        };
        match self.store.save(&snapshot) {
            Ok(()) => true,
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    /// Announces over mDNS if the [`Advertiser`] says it is due; a failure is logged,
    /// and the advertiser makes the announcement due again later.
    fn announce(&mut self) {
        let now = self.now();
        let Some(advertiser) = self.advertiser.as_mut() else {
            return;
        };
        let advertisement = Advertisement {
            name: &self.identity.name,
            port: self.identity.port,
            model: &self.identity.model,
            device_id: self.server.state().device_id,
            config_number: self.config_number.number,
            category: self.identity.category,
            paired: self.server.state().is_paired(),
            setup_id: self.setup_id,
        };
        if let Err(e) = advertiser.handle_timeout(now, &advertisement) {
            log::warn!("mDNS announcement failed, retrying: {e}");
        }
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("identity", &self.identity)
            .field("connections", &self.server.connection_count())
            .finish_non_exhaustive()
    }
}

/// A [`Host`] shared by the connections and the application; cheap to clone.
#[derive(Clone, Debug)]
pub struct SharedHost(Arc<Mutex<Host>>);

impl SharedHost {
    /// Shares `host`.
    pub fn new(host: Host) -> Self {
        Self(Arc::new(Mutex::new(host)))
    }

    /// Locks the host. Hold it only between waits, never across one. A poisoned lock
    /// means a connection panicked mid-call; the state is still the best there is, so
    /// carry on with it.
    pub fn lock(&self) -> MutexGuard<'_, Host> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// [`Host::set_value`]: subscribed controllers get events, and a waiting read on
    /// demand is answered. Returns whether the value changed.
    pub fn set_value(&self, aid: u64, iid: u64, value: OwnedValue) -> Result<bool, SetValueError> {
        self.lock().set_value(aid, iid, value)
    }

    /// [`Host::set_value_quietly`]: sets a value without telling subscribers.
    pub fn set_value_quietly(
        &self,
        aid: u64,
        iid: u64,
        value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        self.lock().set_value_quietly(aid, iid, value)
    }

    /// [`Host::notify`]: tells subscribers a value, changed or not.
    pub fn notify(&self, aid: u64, iid: u64) -> Result<(), SetValueError> {
        self.lock().notify(aid, iid)
    }

    /// [`Host::complete_write`]: answers a confirmed write ([`Event::WriteRequest`]).
    pub fn complete_write(
        &self,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        self.lock().complete_write(token, result)
    }

    /// [`Host::complete_read`]: answers a read on demand ([`Event::Read`]).
    pub fn complete_read(
        &self,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        self.lock().complete_read(token, result)
    }

    /// A characteristic's current value.
    pub fn value(&self, aid: u64, iid: u64) -> Option<OwnedValue> {
        self.lock().server().database().get(aid, iid).cloned()
    }
}
