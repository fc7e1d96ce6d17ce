//! An application layer: what an accessory program needs besides its accessories.
//!
//! [`App`] takes care of the parts every accessory program repeats:
//! - the standard command line ([`Flags`], for `clap`'s derive API, to flatten into
//!   your own arguments);
//! - the state at `--data` ([`crate::store::FileStore`]), logging at `--log`;
//! - mDNS as `--mdns` says ([`MdnsMode`]): through avahi-daemon when it runs
//!   ([`crate::avahi`]), else the built-in responder ([`crate::mdns`]) on every
//!   interface or those named by `--mdns-interface`. When another accessory has the
//!   name, the responder (or Avahi) picks "Name (2)": the new name is logged, stored in
//!   `--data` (file `mdns-name`) so the next start advertises it unless `--name` says
//!   otherwise, and set as the primary accessory's Name;
//! - the start-up [`banner`]: name, setup code, setup URI and its QR code, and how the
//!   accessory is advertised (`Advertised as "Virtual Light" by the built-in mDNS
//!   responder on eth0 (192.0.2.2, 2001:db8::2)`, `... through avahi-daemon`, or
//!   `Not advertised (--mdns off)`); then the line `listening on ADDR` once connections
//!   are accepted, and `stopped` at the end;
//! - Ctrl+C and SIGTERM, which send the mDNS goodbye and stop cleanly (a second one ends
//!   the process at once, with status 130);
//! - handlers, run one at a time on the application's loop, by typed
//!   [`Handle`]: for a controller's writes, which the
//!   application confirms or fails with a [`HapStatus`] ([`AppOn::on_write`], or
//!   [`AppOn::on_service_write`] for a service's writes of one request at once) or only
//!   hears of once stored ([`AppOn::on_change`]); for reads on demand
//!   ([`AppOn::on_read`]); for lines typed on stdin ([`AppOn::on_line`]) and for identify
//!   ([`AppOn::on_identify`]). The `*_value` twins take raw ids and values. A handler
//!   must not block, as the loop (on smol, the executor serving the connections) waits
//!   for it: a slow device answers later through a [`Reply`] or [`ReadReply`]
//!   ([`AppOn::on_write_deferred`], [`AppOn::on_read_deferred`]). A handler that panics
//!   fails its write or read with -70402, and the loop goes on;
//! - a [`Device`] to set values from the hardware's side and to start timers
//!   ([`Device::after`], [`Device::every`]) on the same loop.
//!
//! Everything protocol is still [`hap_core`]'s: this is a convenience over
//! [`crate::serve`] and the core's pending operations
//! ([`Server::complete_write`](hap_core::server::Server::complete_write) and
//! [`complete_read`](hap_core::server::Server::complete_read)), and `hap_smol::app` runs
//! the same [`AppOn`] on smol. The pairing lines it prints are `Paired`,
//! `Unpaired; ready to pair again` and `Controller ID connected`.
//!
//! A garage door opener whose door controller may be unreachable, with a flag of its own:
//!
//! ```no_run
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use clap::Parser as _;
//! use hap_core::catalog::typed::{self as t, CurrentDoorState, TargetDoorState};
//! use hap_core::catalog::{service as s, Category};
//! use hap_core::database::builder::AccessoryInfo;
//! use hap_core::status::HapStatus;
//! use hap_std::app::{App, AppError, Flags};
//!
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     flags: Flags,
//!     /// Start with the door controller unreachable
//!     #[arg(long)]
//!     unreachable: bool,
//! }
//!
//! fn main() -> Result<(), AppError> {
//!     let args = Args::parse();
//!     let mut app = App::new(&args.flags, "Garage", Category::GARAGE_DOOR_OPENER)?;
//!     let (target, current) = app.build(|b, name| {
//!         b.accessory("garage", &AccessoryInfo::new(name, "Acme", "G1", "1", "1.0"));
//!         let door = b.service(&s::GARAGE_DOOR_OPENER).primary();
//!         Some((door.handle(t::TARGET_DOOR_STATE)?, door.handle(t::CURRENT_DOOR_STATE)?))
//!     })?;
//!     let reachable = Arc::new(AtomicBool::new(!args.unreachable));
//!     let device = app.device();
//!     let link = reachable.clone();
//!     // A write succeeds only if the door controller takes it: the Home app otherwise
//!     // shows "No Response", and the value stays.
//!     app.on_write(target, move |wanted| {
//!         if !link.load(Ordering::Relaxed) {
//!             return Err(HapStatus::ServiceCommunicationFailure);
//!         }
//!         let (moving, done) = match wanted {
//!             TargetDoorState::Open => (CurrentDoorState::Opening, CurrentDoorState::Open),
//!             TargetDoorState::Closed => (CurrentDoorState::Closing, CurrentDoorState::Closed),
//!         };
//!         let _ = device.set(current, moving);
//!         device.after(Duration::from_secs(3), move |device| {
//!             let _ = device.set(current, done);
//!         });
//!         Ok(())
//!     });
//!     // Typing `reachable` or `unreachable` changes that; other lines are ignored.
//!     app.on_line(move |line| match line.trim() {
//!         "reachable" => reachable.store(true, Ordering::Relaxed),
//!         "unreachable" => reachable.store(false, Ordering::Relaxed),
//!         _ => {}
//!     });
//!     app.run()
//! }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args as _, FromArgMatches as _};
use hap_core::catalog::typed::CharacteristicValue;
use hap_core::catalog::Category;
use hap_core::database::builder::{BuildError, DatabaseBuilder};
use hap_core::database::handle::Handle;
use hap_core::database::{Database, OwnedValue};
use hap_core::status::HapStatus;

use crate::store::{FileStore, StoreError};
use crate::{Options, Setup, StartError};

mod adaptive;
mod advertise;
mod banner;
mod device;
mod dispatch;
mod flags;
mod inbox;
mod reply;
mod stored_name;
mod timers;

pub use banner::banner;
pub use device::{Backend, Device, DeviceError};
pub use dispatch::{AppLoop, Batch};
use dispatch::{Handlers, ReadFn, Renames, ServiceWrites, WriteFn};
pub use flags::{Flags, MdnsMode};
pub use inbox::{Inbox, Message};
pub use reply::{ReadReply, Reply};
pub use stored_name::FILE_NAME as NAME_FILE;
pub use timers::TimerId;

/// Why an application could not start or run.
///
/// Its `Debug` is its `Display`, so that `fn main() -> Result<(), AppError>` prints the
/// reason as a sentence.
#[non_exhaustive]
pub enum AppError {
    /// The state could not be stored or loaded.
    Store(StoreError),
    /// The accessory could not start.
    Start(StartError),
    /// The accessories built with [`AppOn::build`] were refused.
    Build(BuildError),
    /// [`AppOn::run`] before [`AppOn::build`].
    NotBuilt,
    /// [`AppOn::build`]'s closure returned `None`: a characteristic it looked for is not
    /// there.
    MissingCharacteristic,
    /// A handler was given for a characteristic that is not there (raw ids of
    /// [`AppOn::on_change_value`] and the like).
    NoSuchCharacteristic {
        /// The accessory.
        aid: u64,
        /// The characteristic.
        iid: u64,
    },
    /// [`AppOn::on_service_write`] was given a service that is not there.
    NoSuchService {
        /// The accessory.
        aid: u64,
        /// The service's iid.
        service: u64,
    },
    /// [`AppOn::adaptive_lighting`] was given a service that is not a light it can run
    /// on.
    AdaptiveLighting(hap_core::adaptive::SetupError),
    /// mDNS could not start.
    Mdns(String),
    /// A thread could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::Start(e) => write!(f, "{e}"),
            Self::Build(e) => write!(f, "the accessories are not valid: {e}"),
            Self::NotBuilt => f.write_str("no accessories: call App::build before App::run"),
            Self::MissingCharacteristic => {
                f.write_str("App::build: a characteristic looked for is not there")
            }
            Self::NoSuchCharacteristic { aid, iid } => {
                write!(
                    f,
                    "a handler was given for characteristic {aid}.{iid}, which is not there"
                )
            }
            Self::NoSuchService { aid, service } => {
                write!(
                    f,
                    "a handler was given for service {aid}.{service}, which is not there"
                )
            }
            Self::AdaptiveLighting(e) => write!(f, "cannot run Adaptive Lighting: {e}"),
            Self::Mdns(e) => write!(f, "cannot start mDNS (--mdns off runs without): {e}"),
            Self::Thread(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::Start(e) => Some(e),
            Self::Build(e) => Some(e),
            Self::Thread(e) => Some(e),
            Self::AdaptiveLighting(e) => Some(e),
            Self::NotBuilt
            | Self::MissingCharacteristic
            | Self::NoSuchCharacteristic { .. }
            | Self::NoSuchService { .. }
            | Self::Mdns(_) => None,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<StartError> for AppError {
    fn from(e: StartError) -> Self {
        Self::Start(e)
    }
}

impl From<BuildError> for AppError {
    fn from(e: BuildError) -> Self {
        Self::Build(e)
    }
}

/// How an [`App`] serves: [`Threads`] here, `hap_smol::app::Smol` on smol.
pub trait Runtime {
    /// Serves `prepared` until the accessory shuts down: starts serving, calls
    /// [`AppLoop::started`], forwards the server's events to [`AppLoop::inbox`] (and
    /// [`Inbox::stop`] when they end), runs the [`AppLoop`], and waits for the
    /// connections to close.
    fn run(prepared: Prepared) -> Result<(), AppError>;
}

/// What a [`Runtime`] serves: the state, the database, the options and the loop, with
/// the banner printed already.
#[non_exhaustive]
pub struct Prepared {
    /// The stored state.
    pub setup: Setup,
    /// The accessories, with the handlers' characteristics marked.
    pub database: Database<'static>,
    /// Where and how to serve, from the flags.
    pub options: Options,
    /// The application's loop.
    pub app_loop: AppLoop,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

/// Serves an [`App`] with [`crate::serve`]: a thread per connection, and the
/// application's loop on a thread of its own.
#[derive(Debug)]
pub struct Threads;

impl Runtime for Threads {
    fn run(prepared: Prepared) -> Result<(), AppError> {
        let Prepared {
            setup,
            database,
            options,
            app_loop,
        } = prepared;
        let running = crate::serve(setup, database, options)?;
        let mut app_loop = app_loop;
        app_loop.started(Arc::new(running.handle()))?;
        let inbox = app_loop.inbox().clone();
        let looping = std::thread::Builder::new()
            .name("hap-app".into())
            .spawn(move || app_loop.run_blocking())
            .map_err(AppError::Thread)?;
        for event in running.events() {
            inbox.post_event(event);
        }
        inbox.stop();
        if looping.join().is_err() {
            log::error!("an application handler panicked");
        }
        running.wait();
        Ok(())
    }
}

/// An accessory program served by [`Threads`]: see the [module docs](self).
pub type App = AppOn<Threads>;

/// An accessory program served by runtime `R`: see the [module docs](self). [`App`] is
/// the one on threads, `hap_smol::app::App` the one on smol.
pub struct AppOn<R: Runtime> {
    name: String,
    model: String,
    category: Category,
    flags: Flags,
    /// The `--data` directory, where a renamed name is stored.
    data: std::path::PathBuf,
    setup: Setup,
    database: Option<Database<'static>>,
    handlers: Handlers,
    inbox: Arc<Inbox>,
    device: Device,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> fmt::Debug for AppOn<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> AppOn<R> {
    /// An accessory program of `category`, named `name` unless `--name` says otherwise.
    /// Starts logging at `--log`, and loads the state from `--data` (by default
    /// `./NAME-data`, see [`Flags::data_or`]) or creates it with `--pin` and `--setup-id`.
    /// The model advertised over mDNS is `name` without spaces; see [`AppOn::model`].
    ///
    /// The name shown is `--name`, else the name an mDNS rename stored in `--data`
    /// ([`NAME_FILE`]), else `name`.
    pub fn new(flags: &Flags, name: &str, category: Category) -> Result<Self, AppError> {
        if let Some(level) = flags.log {
            // Another logger may be installed already; it keeps logging.
            let _ = env_logger::Builder::new().filter_level(level).try_init();
        }
        let data = flags.data_or(name);
        let store = FileStore::open(&data)?;
        let setup = Setup::load_or_create(Box::new(store), flags.pin, flags.setup_id)?;
        let inbox = Arc::new(Inbox::default());
        let shown = match (&flags.name, stored_name::load(&data)) {
            (Some(given), _) => given.clone(),
            (None, Some(stored)) => {
                log::info!("advertising the name {stored:?}, chosen by an earlier rename");
                stored
            }
            (None, None) => name.to_owned(),
        };
        Ok(Self {
            name: shown,
            model: name.split_whitespace().collect(),
            category,
            flags: flags.clone(),
            data,
            setup,
            database: None,
            handlers: Handlers::default(),
            device: Device::new(inbox.clone()),
            inbox,
            runtime: PhantomData,
        })
    }

    /// [`AppOn::new`] with the [`Flags`] of the command line, for a program that has no
    /// flags of its own; `--help` lists them. A bad flag ends the process with a message
    /// and exit status 2.
    pub fn from_args(name: &str, category: Category) -> Result<Self, AppError> {
        // Usage shows the program's own name: clap takes it from argv[0]. The about is
        // set after the flags, whose own documentation would replace it.
        let command = Flags::augment_args(clap::Command::new("accessory"))
            .about(format!("{name}, a HomeKit accessory."))
            .long_about(None);
        let matches = command.get_matches();
        let flags = Flags::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        Self::new(&flags, name, category)
    }

    /// The name shown in the Home app: `--name`, or the program's.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the model advertised over mDNS (`md`).
    pub fn model(&mut self, model: &str) -> &mut Self {
        model.clone_into(&mut self.model);
        self
    }

    /// Builds the accessories: `build` gets a builder whose ids stay stable across
    /// restarts, and the name. What it returns in `Some` (the handles it wants to keep) is
    /// returned; `None`, from a [`ServiceBuilder::handle`] that found no such
    /// characteristic, say, is [`AppError::MissingCharacteristic`].
    ///
    /// [`ServiceBuilder::handle`]: hap_core::database::builder::ServiceBuilder::handle
    pub fn build<T>(
        &mut self,
        build: impl FnOnce(&mut DatabaseBuilder<'_>, &str) -> Option<T>,
    ) -> Result<T, AppError> {
        let mut builder = DatabaseBuilder::new(self.setup.ids());
        let kept = build(&mut builder, &self.name).ok_or(AppError::MissingCharacteristic)?;
        self.database = Some(builder.build()?);
        Ok(kept)
    }

    /// The device side, to set values and start timers from handlers and threads.
    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// Calls `handler` with each value a controller writes to `characteristic`, once it
    /// is stored. The write has succeeded already; for a device that may refuse, use
    /// [`AppOn::on_write`]. Change handlers add up: each one given is called, in order.
    /// (Write and read handlers replace: one per characteristic.)
    pub fn on_change<T: CharacteristicValue + 'static>(
        &mut self,
        characteristic: Handle<T>,
        mut handler: impl FnMut(T) + Send + 'static,
    ) -> &mut Self {
        self.on_change_value(characteristic.aid(), characteristic.iid(), move |value| {
            if let Some(value) = T::from_owned(value) {
                handler(value);
            }
        })
    }

    /// Asks `handler` about each value a controller writes to `characteristic`, before
    /// it is stored: `Ok(())` stores it and the write succeeds; an error fails the write
    /// with that status (such as [`HapStatus::ServiceCommunicationFailure`], -70402, for
    /// a device that cannot be reached), the value stays and no one hears of it.
    /// [`AppOn::on_write_value`] tells the details.
    pub fn on_write<T: CharacteristicValue + 'static>(
        &mut self,
        characteristic: Handle<T>,
        mut handler: impl FnMut(T) -> Result<(), HapStatus> + Send + 'static,
    ) -> &mut Self {
        self.on_write_value(characteristic.aid(), characteristic.iid(), move |value| {
            // The core checked the format, so this holds; a refusal is the honest answer.
            T::from_owned(value).map_or(Err(HapStatus::InvalidValueInRequest), &mut handler)
        })
    }

    /// Asks `handler` for the value of `characteristic` whenever a controller reads it:
    /// `Ok` answers with the value (stored, so subscribers hear of a change), an error
    /// fails the read with that status. The characteristic is marked read on demand.
    pub fn on_read<T: CharacteristicValue + 'static>(
        &mut self,
        characteristic: Handle<T>,
        mut handler: impl FnMut() -> Result<T, HapStatus> + Send + 'static,
    ) -> &mut Self {
        self.on_read_value(characteristic.aid(), characteristic.iid(), move || {
            handler().map(T::into_owned)
        })
    }

    /// Calls `handler` with each value a controller writes to characteristic
    /// `aid`.`iid`, once it is stored: [`AppOn::on_change`] without the type.
    pub fn on_change_value(
        &mut self,
        aid: u64,
        iid: u64,
        handler: impl FnMut(&OwnedValue) + Send + 'static,
    ) -> &mut Self {
        self.handlers
            .changes
            .entry((aid, iid))
            .or_default()
            .push(Box::new(handler));
        self
    }

    /// [`AppOn::on_write`] without the type. Asks `handler` about each value a controller
    /// writes to characteristic `aid`.`iid`, before it is stored: `Ok(())` stores it and the write succeeds; an
    /// error fails the write with that status (-70402,
    /// [`HapStatus::ServiceCommunicationFailure`], for a device that cannot be reached),
    /// the value stays and no one hears of it. The characteristic is marked
    /// [`confirmed`](hap_core::database::CharacteristicDef::confirmed).
    ///
    /// When one request writes several characteristics of an accessory, their handlers
    /// are asked in request order, and the first error fails all of them (those after it
    /// are not asked). Unanswered within the core's read timeout (9 s), the write fails
    /// with -70408. After a success, the [`AppOn::on_change_value`] handlers are called.
    ///
    /// The handler runs on the application's loop, which handles every event one at a
    /// time (on smol, on the executor that serves the connections): it must not block.
    /// A device that answers slowly is for [`AppOn::on_write_deferred_value`]. A handler
    /// that panics fails the write with -70402; the loop goes on.
    ///
    /// It replaces an earlier write handler of the same characteristic, deferred or not
    /// ([`AppOn::on_change_value`] handlers add up instead).
    pub fn on_write_value(
        &mut self,
        aid: u64,
        iid: u64,
        mut handler: impl FnMut(&OwnedValue) -> Result<(), HapStatus> + Send + 'static,
    ) -> &mut Self {
        let handler = move |value: &OwnedValue| handler(value).map(|()| None);
        self.handlers
            .writes
            .insert((aid, iid), WriteFn::Now(Box::new(handler)));
        self
    }

    /// [`AppOn::on_write`] for a characteristic with a write response
    /// ([`Perms::WRITE_RESPONSE`](hap_core::catalog::Perms::WRITE_RESPONSE)), such as a
    /// TLV8 control point: `Ok` stores the value written, and answers a controller that
    /// asked for a response (`"r":true`) with the value `handler` returned, which is
    /// stored too. An error fails the write.
    pub fn on_write_response<T: CharacteristicValue + 'static>(
        &mut self,
        characteristic: Handle<T>,
        mut handler: impl FnMut(T) -> Result<T, HapStatus> + Send + 'static,
    ) -> &mut Self {
        self.on_write_response_value(characteristic.aid(), characteristic.iid(), move |value| {
            T::from_owned(value)
                .map_or(Err(HapStatus::InvalidValueInRequest), &mut handler)
                .map(T::into_owned)
        })
    }

    /// [`AppOn::on_write_response`] without the type; as [`AppOn::on_write_value`]
    /// otherwise.
    pub fn on_write_response_value(
        &mut self,
        aid: u64,
        iid: u64,
        mut handler: impl FnMut(&OwnedValue) -> Result<OwnedValue, HapStatus> + Send + 'static,
    ) -> &mut Self {
        let handler = move |value: &OwnedValue| handler(value).map(Some);
        self.handlers
            .writes
            .insert((aid, iid), WriteFn::Now(Box::new(handler)));
        self
    }

    /// [`AppOn::on_write`] for a handler that answers later, from any thread: it gets the
    /// value and a [`Reply`] to answer with, and returns at once, so the loop goes on
    /// (a door controller on a slow serial link, say). Dropping the reply unanswered
    /// fails the write with -70402.
    pub fn on_write_deferred<T: CharacteristicValue + 'static>(
        &mut self,
        characteristic: Handle<T>,
        mut handler: impl FnMut(T, Reply) + Send + 'static,
    ) -> &mut Self {
        self.on_write_deferred_value(
            characteristic.aid(),
            characteristic.iid(),
            move |value, reply| match T::from_owned(value) {
                Some(value) => handler(value, reply),
                None => reply.fail(HapStatus::InvalidValueInRequest),
            },
        )
    }

    /// [`AppOn::on_write_deferred`] without the type; as [`AppOn::on_write_value`]
    /// otherwise. In a request with several items, the handlers after one that failed at
    /// once are not asked, but those after a deferred one are, before it answers.
    pub fn on_write_deferred_value(
        &mut self,
        aid: u64,
        iid: u64,
        handler: impl FnMut(&OwnedValue, Reply) + Send + 'static,
    ) -> &mut Self {
        self.handlers
            .writes
            .insert((aid, iid), WriteFn::Later(Box::new(handler)));
        self
    }

    /// [`AppOn::on_read`] for a handler that answers later, from any thread, through the
    /// [`ReadReply`] it gets; it returns at once, so the loop goes on. Dropping the reply
    /// unanswered fails the read with -70402.
    pub fn on_read_deferred<T: CharacteristicValue + 'static>(
        &mut self,
        characteristic: Handle<T>,
        handler: impl FnMut(ReadReply) + Send + 'static,
    ) -> &mut Self {
        self.on_read_deferred_value(characteristic.aid(), characteristic.iid(), handler)
    }

    /// [`AppOn::on_read_deferred`] without the type.
    pub fn on_read_deferred_value(
        &mut self,
        aid: u64,
        iid: u64,
        handler: impl FnMut(ReadReply) + Send + 'static,
    ) -> &mut Self {
        self.handlers
            .reads
            .insert((aid, iid), ReadFn::Later(Box::new(handler)));
        self
    }

    /// Asks `handler` about the writes of one request to the writable characteristics of
    /// service `service` of accessory `aid` (the service's iid, from
    /// [`ServiceBuilder::iid`](hap_core::database::builder::ServiceBuilder::iid)), all
    /// at once: HomeSpan's `update()`. As [`AppOn::on_write_value`] otherwise.
    ///
    /// A [`Batch`] is what the core completes under one token, which holds at most
    /// [`PENDING_PER_CONNECTION`](hap_core::server::PENDING_PER_CONNECTION) (8) items: a
    /// request that writes more to one accessory comes as several batches, one call
    /// each, confirmed or failed each on its own. Of a batch, this handler sees the items
    /// of its service only, after the items' own write handlers.
    pub fn on_service_write(
        &mut self,
        aid: u64,
        service: u64,
        handler: impl FnMut(&Batch) -> Result<(), HapStatus> + Send + 'static,
    ) -> &mut Self {
        self.handlers.services.push(ServiceWrites {
            aid,
            service,
            members: Vec::new(),
            handler: Box::new(handler),
        });
        self
    }

    /// [`AppOn::on_read`] without the type. Asks `handler` for the value of characteristic
    /// `aid`.`iid` whenever a controller reads it: `Ok` answers with the value (stored, so
    /// subscribers hear of a change), an error fails the read with that status, and so
    /// does a value that does not suit the characteristic (-70410). The characteristic is
    /// marked read on demand.
    ///
    /// The handler runs on the application's loop and must not block (see
    /// [`AppOn::on_write_value`]); a slow device is for [`AppOn::on_read_deferred_value`].
    /// It replaces an earlier read handler of the same characteristic.
    pub fn on_read_value(
        &mut self,
        aid: u64,
        iid: u64,
        handler: impl FnMut() -> Result<OwnedValue, HapStatus> + Send + 'static,
    ) -> &mut Self {
        self.handlers
            .reads
            .insert((aid, iid), ReadFn::Now(Box::new(handler)));
        self
    }

    /// Runs Adaptive Lighting on the light that is service `service` (its iid, from
    /// [`ServiceBuilder::iid`](hap_core::database::builder::ServiceBuilder::iid)) of
    /// accessory `aid`, built with
    /// [`ServiceBuilder::adaptive_lighting`](hap_core::database::builder::ServiceBuilder::adaptive_lighting):
    /// the Home app then offers it, and the light follows the curve it sends. Each new
    /// colour temperature reaches the [`AppOn::on_change`] handlers of ColorTemperature,
    /// as a controller's write would (not its [`AppOn::on_write`] handler: the step is
    /// not a request to refuse); subscribers hear of it at the interval the controller
    /// asked for. A new brightness, from a controller or from [`Device::set`], moves it
    /// at once. A controller's write of ColorTemperature (or Hue or Saturation) ends the
    /// transition, as turning it off in the Home app does, and so does unpairing. The
    /// running transition is kept in `--data` and resumes after a restart. The lines
    /// printed are `Adaptive Lighting started`, `Adaptive Lighting resumed` and
    /// `Adaptive Lighting ended: REASON`.
    ///
    /// Call it after [`AppOn::build`]; a service without Brightness, ColorTemperature and
    /// the three Adaptive Lighting characteristics is [`AppError::AdaptiveLighting`].
    /// The engine is [`hap_core::adaptive`]'s.
    pub fn adaptive_lighting(&mut self, aid: u64, service: u64) -> Result<&mut Self, AppError> {
        let database = self.database.as_mut().ok_or(AppError::NotBuilt)?;
        let light = hap_core::adaptive::LightCharacteristics::find(database, aid, service)
            .map_err(AppError::AdaptiveLighting)?;
        let adaptive = &mut self.handlers.adaptive;
        // A second call for the same light changes nothing.
        if adaptive
            .iter()
            .any(|l| l.is_temperature(aid, light.temperature))
        {
            return Ok(self);
        }
        let light = adaptive::AdaptiveLight::new(light, Some(&self.data));
        // It never changes: stored before serving, it is read (and shown in
        // /accessories) like any value.
        let (at, supported) = light.supported_configuration();
        if let Err(e) = database.set(aid, at, supported) {
            log::warn!("Adaptive Lighting: cannot set the supported configuration: {e}");
        }
        self.device.follow(aid, light.light().brightness);
        adaptive.push(light);
        Ok(self)
    }

    /// Calls `handler` with each line typed on stdin.
    pub fn on_line(&mut self, handler: impl FnMut(&str) + Send + 'static) -> &mut Self {
        self.handlers.line = Some(Box::new(handler));
        self
    }

    /// Calls `handler` with the accessory's aid when it is asked to identify itself: by
    /// a controller's write of its Identify characteristic (the Home app's Identify, once
    /// paired), or by `/identify` while unpaired (aid 1, the primary accessory). Without
    /// a handler, `Identify` is printed.
    pub fn on_identify(&mut self, handler: impl FnMut(u64) + Send + 'static) -> &mut Self {
        self.handlers.identify = Some(Box::new(handler));
        self
    }

    /// Prints the banner, serves until Ctrl+C, SIGTERM or [`Device::shut_down`], and
    /// prints `stopped`. A handler given for a characteristic or service that is not
    /// there is refused first, as [`AppError::NoSuchCharacteristic`] or
    /// [`AppError::NoSuchService`].
    pub fn run(self) -> Result<(), AppError> {
        let prepared = self.prepare()?;
        R::run(prepared)?;
        println!("stopped");
        Ok(())
    }

    /// Makes Ctrl+C and SIGTERM shut the accessory down, from now on: a signal before it
    /// serves shuts it down as soon as it starts. A second signal ends the process at
    /// once with status 130, for a shutdown that hangs on a connection.
    fn handle_signals(&self) {
        let device = self.device.clone();
        let signalled = AtomicBool::new(false);
        let handler = move || {
            if signalled.swap(true, Ordering::SeqCst) {
                eprintln!("stopped at once");
                std::process::exit(130);
            }
            device.shut_down();
        };
        // Only one handler per process: an application that installed its own keeps it,
        // and shuts down through its Device.
        if let Err(e) = ctrlc::set_handler(handler) {
            log::warn!("Ctrl+C and SIGTERM are not handled here: {e}");
        }
    }

    /// The banner printed, the options made from the flags: what [`Runtime::run`] gets.
    fn prepare(mut self) -> Result<Prepared, AppError> {
        let database = self.database.take().ok_or(AppError::NotBuilt)?;
        let database = self.handlers.mark(database)?;
        self.handle_signals();
        print!("{}", banner(&self.name, self.category, &self.setup));
        let mut options = Options::new(&self.name, &self.model, self.category);
        options.bind = self.flags.bind();
        options.port = self.flags.port;
        if let Some(max) = self.flags.max_connections {
            options.config.max_connections = max;
        }
        let (announcer, advertising) = advertise::start(&self.flags, &self.inbox)?;
        options.announcer = announcer;
        println!("{}", advertise::banner_line(&self.name, &advertising));
        let renames = Renames {
            data: Some(self.data),
            name_at: Renames::name_characteristic(&database),
        };
        Ok(Prepared {
            setup: self.setup,
            database,
            options,
            app_loop: AppLoop::new(self.handlers, renames, self.device, self.inbox),
        })
    }
}
