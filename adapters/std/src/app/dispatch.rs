//! The application loop: hands events, typed lines and timers to the application's
//! handlers, one at a time.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::time::Instant;

use hap_core::catalog::characteristic::IDENTIFY;
use hap_core::catalog::typed::CharacteristicValue;
use hap_core::catalog::Perms;
use hap_core::database::builder::BuildError;
use hap_core::database::handle::Handle;
use hap_core::database::{Database, Entry, OwnedValue, Slot};
use hap_core::server::{Event, Token};
use hap_core::status::HapStatus;

use super::adaptive::{AdaptiveLight, Changes};
use super::inbox::{Inbox, Inner, Message};
use super::reply::{complete_read, guarded, Items, ReadReply, Reply, SharedWrite};
use super::timers::Timers;
use super::{AppError, Backend, Device};

/// Called with a value a controller wrote, once it is stored.
pub(crate) type ChangeFn = Box<dyn FnMut(&OwnedValue) + Send>;
/// Asked about a value a controller writes to a confirmed characteristic, before it is
/// stored.
pub(crate) enum WriteFn {
    /// Answers at once.
    Now(WriteNowFn),
    /// Answers through the [`Reply`], perhaps later.
    Later(WriteLaterFn),
}
/// A write handler that answers at once: an error fails the write; `Ok(Some)` is the
/// write response.
pub(crate) type WriteNowFn =
    Box<dyn FnMut(&OwnedValue) -> Result<Option<OwnedValue>, HapStatus> + Send>;
/// A write handler that answers through the [`Reply`].
pub(crate) type WriteLaterFn = Box<dyn FnMut(&OwnedValue, Reply) + Send>;
/// Called with the items of one request for one service, before they are stored.
pub(crate) type BatchFn = Box<dyn FnMut(&Batch) -> Result<(), HapStatus> + Send>;
/// Asked when a controller reads a characteristic on demand.
pub(crate) enum ReadFn {
    /// Answers at once.
    Now(Box<dyn FnMut() -> Result<OwnedValue, HapStatus> + Send>),
    /// Answers through the [`ReadReply`], perhaps later.
    Later(Box<dyn FnMut(ReadReply) + Send>),
}
/// Called with a line typed on stdin.
pub(crate) type LineFn = Box<dyn FnMut(&str) + Send>;
/// Called with the aid of an accessory a controller asks to identify itself.
pub(crate) type IdentifyFn = Box<dyn FnMut(u64) + Send>;

/// A service that the application handles as a whole: [`super::AppOn::on_service_write`].
pub(crate) struct ServiceWrites {
    pub(crate) aid: u64,
    pub(crate) service: u64,
    /// The iids of its writable characteristics, found when the database is marked.
    pub(crate) members: Vec<u64>,
    pub(crate) handler: BatchFn,
}

/// The application's handlers, by characteristic.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) changes: HashMap<(u64, u64), Vec<ChangeFn>>,
    pub(crate) writes: HashMap<(u64, u64), WriteFn>,
    pub(crate) services: Vec<ServiceWrites>,
    pub(crate) reads: HashMap<(u64, u64), ReadFn>,
    pub(crate) line: Option<LineFn>,
    pub(crate) identify: Option<IdentifyFn>,
    /// The Identify characteristics, as `(aid, iid)`, found when the database is marked.
    pub(crate) identify_at: HashSet<(u64, u64)>,
    /// The lights with Adaptive Lighting.
    pub(crate) adaptive: Vec<AdaptiveLight>,
}

impl Handlers {
    /// `database` with the characteristics that have write handlers (or belong to a
    /// service with one) marked [`confirmed`](hap_core::database::CharacteristicDef::confirmed),
    /// and those with read handlers marked on demand. Rebuilt with the same values only
    /// if something had to be marked.
    ///
    /// A handler of a characteristic or service that is not there is
    /// [`AppError::NoSuchCharacteristic`] or [`AppError::NoSuchService`].
    pub(crate) fn mark(
        &mut self,
        database: Database<'static>,
    ) -> Result<Database<'static>, AppError> {
        let mut entries: Vec<Entry<'static>> = database.entries().to_vec();
        let (mut aid, mut service, mut marked) = (0, 0, false);
        let (mut characteristics, mut services) = (HashSet::new(), HashSet::new());
        for entry in &mut entries {
            match entry {
                Entry::Accessory(at) => aid = *at,
                Entry::Service(def) => {
                    service = def.iid;
                    services.insert((aid, service));
                }
                Entry::Characteristic(def) => {
                    let key = (aid, def.iid);
                    characteristics.insert(key);
                    if def.kind.uuid == IDENTIFY.uuid {
                        self.identify_at.insert(key);
                    }
                    let writable = def.perms.contains(Perms::WRITE);
                    let adaptive = |f: fn(&AdaptiveLight, u64, u64) -> bool| {
                        self.adaptive.iter().any(|light| f(light, aid, def.iid))
                    };
                    let controls = adaptive(AdaptiveLight::controls);
                    let mut confirm = self.writes.contains_key(&key) || controls;
                    for whole in &mut self.services {
                        // Adaptive Lighting's control point is not the application's.
                        if writable && !controls && whole.aid == aid && whole.service == service {
                            whole.members.push(def.iid);
                            confirm = true;
                        }
                    }
                    let on_demand = self.reads.contains_key(&key) || controls;
                    marked |= confirm || on_demand;
                    def.confirm_writes |= confirm;
                    def.read_on_demand |= on_demand;
                }
            }
        }
        let keys = self.writes.keys().chain(self.reads.keys());
        if let Some(&(aid, iid)) = keys
            .chain(self.changes.keys())
            .find(|key| !characteristics.contains(*key))
        {
            return Err(AppError::NoSuchCharacteristic { aid, iid });
        }
        if let Some(whole) = self
            .services
            .iter()
            .find(|whole| !services.contains(&(whole.aid, whole.service)))
        {
            return Err(AppError::NoSuchService {
                aid: whole.aid,
                service: whole.service,
            });
        }
        if !marked {
            return Ok(database);
        }
        let slots = vec![Slot::EMPTY; database.characteristic_count()];
        let mut rebuilt = Database::new(entries, slots).map_err(BuildError::from)?;
        let mut aid = 0;
        for entry in database.entries() {
            match entry {
                Entry::Accessory(at) => aid = *at,
                Entry::Characteristic(def) => {
                    let (old, new) = (database.get(aid, def.iid), rebuilt.get(aid, def.iid));
                    if let Some(value) = old.filter(|old| Some(*old) != new) {
                        rebuilt.set(aid, def.iid, value.clone()).map_err(|error| {
                            AppError::Build(BuildError::Value {
                                aid,
                                iid: def.iid,
                                error,
                            })
                        })?;
                    }
                }
                Entry::Service(_) => {}
            }
        }
        Ok(rebuilt)
    }
}

/// Where a name chosen by an mDNS rename goes: the `--data` directory (for the next
/// start) and the Name characteristic of the primary accessory's Accessory Information.
#[derive(Debug, Default)]
pub(crate) struct Renames {
    pub(crate) data: Option<std::path::PathBuf>,
    pub(crate) name_at: Option<(u64, u64)>,
}

impl Renames {
    /// The Name characteristic of accessory 1's Accessory Information, in `database`.
    pub(crate) fn name_characteristic(database: &Database<'_>) -> Option<(u64, u64)> {
        use hap_core::catalog::characteristic::NAME;
        use hap_core::catalog::service::ACCESSORY_INFORMATION;
        let (mut aid, mut information) = (0, false);
        for entry in database.entries() {
            match entry {
                Entry::Accessory(at) => aid = *at,
                Entry::Service(def) => information = def.kind.uuid == ACCESSORY_INFORMATION.uuid,
                Entry::Characteristic(def)
                    if aid == 1 && information && def.kind.uuid == NAME.uuid =>
                {
                    return Some((aid, def.iid));
                }
                Entry::Characteristic(_) => {}
            }
        }
        None
    }
}

/// The items of one controller's write request for one service that the application
/// handles as a whole ([`super::AppOn::on_service_write`]): On and Brightness of a light,
/// say. Nothing is stored yet. A request with more than
/// [`PENDING_PER_CONNECTION`](hap_core::server::PENDING_PER_CONNECTION) confirmed items
/// for one accessory comes as several batches.
#[derive(Debug)]
pub struct Batch {
    aid: u64,
    items: Vec<(u64, OwnedValue)>,
}

impl Batch {
    /// The accessory.
    pub fn aid(&self) -> u64 {
        self.aid
    }

    /// The value written to `characteristic`, if the request wrote it.
    pub fn get<T: CharacteristicValue>(&self, characteristic: Handle<T>) -> Option<T> {
        if characteristic.aid() != self.aid {
            return None;
        }
        T::from_owned(self.value(characteristic.iid())?)
    }

    /// [`Batch::get`] without the type: the value written to characteristic `iid`, if
    /// the request wrote it.
    pub fn value(&self, iid: u64) -> Option<&OwnedValue> {
        self.items
            .iter()
            .find(|(at, _)| *at == iid)
            .map(|(_, value)| value)
    }

    /// The items, in request order: iid and value.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &OwnedValue)> {
        self.items.iter().map(|(iid, value)| (*iid, value))
    }
}

/// The loop that runs the application's handlers and timers, without the waiting, which
/// is the runtime's: wait on [`AppLoop::inbox`] until [`AppLoop::next_deadline`], then
/// call [`AppLoop::turn`] with what arrived, until it returns `false`.
/// [`AppLoop::run_blocking`] is that loop for a thread.
pub struct AppLoop {
    handlers: Handlers,
    renames: Renames,
    timers: Timers,
    device: Device,
    inbox: Arc<Inbox>,
    /// The items of write batches whose last item has not come yet.
    batches: HashMap<Token, Items>,
}

impl std::fmt::Debug for AppLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppLoop").finish_non_exhaustive()
    }
}

impl AppLoop {
    pub(crate) fn new(
        handlers: Handlers,
        renames: Renames,
        device: Device,
        inbox: Arc<Inbox>,
    ) -> Self {
        Self {
            handlers,
            renames,
            timers: Timers::default(),
            device,
            inbox,
            batches: HashMap::new(),
        }
    }

    /// Where the server's events, typed lines and the stop go.
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// Call once the accessory accepts connections: connects the [`Device`] to
    /// `backend` (shutting it down at once if [`Device::shut_down`], Ctrl+C or SIGTERM
    /// came first), prints `listening on ADDR`, and starts reading stdin if the
    /// application handles typed lines.
    pub fn started(&mut self, backend: Arc<dyn Backend>) -> Result<(), AppError> {
        self.device.attach(backend.clone());
        self.for_lights(AdaptiveLight::start);
        println!("listening on {}", backend.local_addr());
        let _ = std::io::stdout().flush();
        if self.handlers.line.is_some() {
            let inbox = self.inbox.clone();
            // A thread of its own rather than an async runtime's blocking pool, whose idle
            // thread would wake twice a second once stdin ended (as /dev/null does).
            std::thread::Builder::new()
                .name("hap-stdin".into())
                .spawn(move || {
                    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                        inbox.post_line(line);
                    }
                })
                .map_err(AppError::Thread)?;
        }
        Ok(())
    }

    /// When the next timer is due, if any.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let steps = self
            .handlers
            .adaptive
            .iter()
            .filter_map(AdaptiveLight::deadline);
        steps.chain(self.timers.next_deadline()).min()
    }

    /// Handles `message` (`None` when the wait ended at the deadline), then runs the
    /// timers due at `now`. Returns `false` once the loop should end.
    pub fn turn(&mut self, message: Option<Message>, now: Instant) -> bool {
        if let Some(Message(message)) = message {
            match message {
                Inner::Event(event) => self.dispatch(event),
                Inner::Line(line) => {
                    if let Some(handler) = self.handlers.line.as_mut() {
                        guarded(|| "a typed line".into(), || handler(&line));
                    }
                }
                Inner::Changed(items) => self.changed(&items),
                Inner::Renamed(name) => self.renamed(&name),
                Inner::DeviceSet(aid, iid) => {
                    self.for_lights(|light, backend| light.device_set(aid, iid, backend));
                }
                Inner::Timer(id, at, job) => self.timers.add(id, at, job),
                Inner::Cancel(id) => self.timers.cancel(id),
                Inner::Stop => return false,
            }
        }
        self.timers.run_due(now, &self.device);
        self.for_lights(|light, backend| match light.deadline() {
            Some(due) if due <= now => light.run_due(backend),
            _ => Changes::new(),
        });
        true
    }

    /// Runs the loop on this thread until the accessory shuts down.
    pub fn run_blocking(mut self) {
        loop {
            let deadline = self.next_deadline();
            let message = self.inbox.recv_until(deadline);
            if !self.turn(message, Instant::now()) {
                break;
            }
        }
    }

    /// mDNS renamed the instance after a conflict ("Virtual Light (2)"): the name in
    /// the form iOS takes ("Virtual Light 2") is stored for the next start and becomes
    /// the Name of the primary accessory, so subscribers hear it.
    fn renamed(&mut self, renamed: &str) {
        log::info!("mDNS: another accessory has our name; advertised as {renamed:?} from now on");
        let Some(name) = super::stored_name::accessory_name(renamed) else {
            log::warn!("mDNS: {renamed:?} cannot be an accessory name; the Name stays");
            return;
        };
        if let Some(dir) = &self.renames.data {
            match super::stored_name::save(dir, &name) {
                Ok(()) => log::info!(
                    "the accessory is named {name:?} from now on (stored in {})",
                    dir.join(super::stored_name::FILE_NAME).display()
                ),
                Err(e) => log::error!("cannot store the new name in {}: {e}", dir.display()),
            }
        }
        if let Some((aid, iid)) = self.renames.name_at {
            let Some(value) = OwnedValue::string(&name) else {
                return;
            };
            if let Err(e) = self.device.set_value(aid, iid, value) {
                log::warn!("cannot set the Name characteristic to {name:?}: {e}");
            }
        }
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Write { aid, iid, .. } if self.handlers.identify_at.contains(&(aid, iid)) => {
                self.identify(aid);
            }
            Event::Write {
                aid, iid, value, ..
            } => self.changed(&[(aid, iid, value)]),
            Event::WriteRequest {
                token,
                aid,
                iid,
                value,
                last,
                ..
            } => {
                let mut items = self.batches.remove(&token).unwrap_or_default();
                items.push((aid, iid, value));
                if last {
                    self.write(token, items);
                } else {
                    self.batches.insert(token, items);
                }
            }
            Event::Read { token, aid, iid } => self.read(token, aid, iid),
            // Unpaired: the primary accessory.
            Event::Identify => self.identify(1),
            Event::Verified { controller } => println!(
                "Controller {} connected",
                String::from_utf8_lossy(controller.as_bytes())
            ),
            Event::PairingsChanged { paired: true } => println!("Paired"),
            Event::PairingsChanged { paired: false } => {
                println!("Unpaired; ready to pair again");
                self.for_lights(AdaptiveLight::unpaired);
            }
            other => log::debug!("no handler for {other:?}"),
        }
    }

    /// Asks the write handlers about a batch and completes it with the first failure or
    /// success, once every handler answered; on success tells the change handlers.
    fn write(&mut self, token: Token, items: Items) {
        let Some(backend) = self.device.backend().cloned() else {
            return;
        };
        let pending = SharedWrite::new(token, backend.clone(), self.inbox.clone(), items.clone());
        for (aid, iid, value) in &items {
            if pending.failed() {
                break;
            }
            let what = || format!("the write of {aid}.{iid}");
            // Taken at once, even if a later item fails the batch: iOS writes the
            // control point alone.
            let mut adaptive = self.handlers.adaptive.iter_mut();
            if let Some(light) = adaptive.find(|l| l.controls(*aid, *iid)) {
                let (answer, steps) = light.control_write(value, &*backend);
                match answer {
                    Ok(response) => pending.respond(*aid, *iid, response),
                    Err(status) => pending.fail(status),
                }
                self.tell(&steps);
                continue;
            }
            match self.handlers.writes.get_mut(&(*aid, *iid)) {
                Some(WriteFn::Now(handler)) => match guarded(what, || handler(value)) {
                    Some(Ok(Some(response))) => pending.respond(*aid, *iid, response),
                    Some(Ok(None)) => {}
                    Some(Err(status)) => pending.fail(status),
                    None => pending.fail(HapStatus::ServiceCommunicationFailure),
                },
                Some(WriteFn::Later(handler)) => {
                    let reply = pending.reply();
                    // A panic drops the reply, which fails the write.
                    guarded(what, || handler(value, reply));
                }
                None => {}
            }
        }
        for whole in &mut self.handlers.services {
            if pending.failed() {
                break;
            }
            let batch = Batch {
                aid: whole.aid,
                items: items
                    .iter()
                    .filter(|(aid, iid, _)| *aid == whole.aid && whole.members.contains(iid))
                    .map(|(_, iid, value)| (*iid, value.clone()))
                    .collect(),
            };
            if !batch.items.is_empty() {
                let what = || format!("the writes of service {}.{}", whole.aid, whole.service);
                match guarded(what, || (whole.handler)(&batch)) {
                    Some(Ok(())) => {}
                    Some(Err(status)) => pending.fail(status),
                    None => pending.fail(HapStatus::ServiceCommunicationFailure),
                }
            }
        }
        if let Some(stored) = pending.answer(Ok(())) {
            self.changed(&stored);
        }
    }

    /// Asks the read handler of `aid`.`iid`, or else answers with the stored value.
    fn read(&mut self, token: Token, aid: u64, iid: u64) {
        let Some(backend) = self.device.backend().cloned() else {
            return;
        };
        let what = || format!("the read of {aid}.{iid}");
        let mut adaptive = self.handlers.adaptive.iter();
        if let Some(light) = adaptive.find(|l| l.controls(aid, iid)) {
            return complete_read(&*backend, token, aid, iid, light.read());
        }
        let result = match self.handlers.reads.get_mut(&(aid, iid)) {
            Some(ReadFn::Now(handler)) => {
                guarded(what, handler).unwrap_or(Err(HapStatus::ServiceCommunicationFailure))
            }
            Some(ReadFn::Later(handler)) => {
                let reply = ReadReply::new(backend, token, aid, iid);
                // A panic drops the reply, which fails the read.
                guarded(what, || handler(reply));
                return;
            }
            None => backend
                .value(aid, iid)
                .ok_or(HapStatus::ResourceDoesNotExist),
        };
        complete_read(&*backend, token, aid, iid, result);
    }

    /// Calls the identify handler, or prints `Identify`.
    fn identify(&mut self, aid: u64) {
        match self.handlers.identify.as_mut() {
            Some(handler) => {
                guarded(|| format!("identify of {aid}"), || handler(aid));
            }
            None => println!("Identify"),
        }
    }

    /// A controller's writes, stored: the change handlers hear of them, then the lights
    /// with Adaptive Lighting (a colour written by hand ends a transition, a brightness
    /// moves it, and the handlers hear of the new colour temperature).
    fn changed(&mut self, items: &[(u64, u64, OwnedValue)]) {
        self.tell(items);
        let mut steps = Changes::new();
        if let Some(backend) = self.device.backend().cloned() {
            for (aid, iid, value) in items {
                for light in &mut self.handlers.adaptive {
                    steps.extend(light.written(*aid, *iid, value, &*backend));
                }
            }
        }
        // A scene writes Brightness and ColorTemperature at once: the step the brightness
        // made is overtaken by the colour written, which the handlers heard already.
        steps.retain(|(aid, iid, _)| !items.iter().any(|(a, i, _)| (a, i) == (aid, iid)));
        self.tell(&steps);
    }

    /// Runs `f` on every light with Adaptive Lighting, and tells the change handlers
    /// what it changed.
    fn for_lights(&mut self, mut f: impl FnMut(&mut AdaptiveLight, &dyn Backend) -> Changes) {
        let Some(backend) = self.device.backend().cloned() else {
            return;
        };
        let mut steps = Changes::new();
        for light in &mut self.handlers.adaptive {
            steps.extend(f(light, &*backend));
        }
        self.tell(&steps);
    }

    /// Tells the change handlers about new values: a controller's writes, and Adaptive
    /// Lighting's steps.
    fn tell(&mut self, items: &[(u64, u64, OwnedValue)]) {
        for (aid, iid, value) in items {
            if let Some(handlers) = self.handlers.changes.get_mut(&(*aid, *iid)) {
                for handler in handlers {
                    guarded(|| format!("the change of {aid}.{iid}"), || handler(value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hap_core::catalog::{characteristic as c, service as s};
    use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
    use hap_core::database::ids::IdMap;

    use super::*;

    /// A lamp (On, Brightness) with brightness 30, and the iids of its service and both.
    fn lamp() -> (Database<'static>, u64, u64, u64) {
        let mut ids = IdMap::new();
        let mut builder = DatabaseBuilder::new(&mut ids);
        builder.accessory("lamp", &AccessoryInfo::new("Lamp", "Acme", "L", "1", "1.0"));
        let bulb = builder
            .service(&s::LIGHTBULB)
            .primary()
            .value(&c::BRIGHTNESS, OwnedValue::Int(30));
        let (service, on, brightness) = (
            bulb.iid(),
            bulb.iid_of(&c::ON).unwrap(),
            bulb.iid_of(&c::BRIGHTNESS).unwrap(),
        );
        (builder.build().unwrap(), service, on, brightness)
    }

    fn def<'d>(database: &Database<'d>, iid: u64) -> hap_core::database::CharacteristicDef<'d> {
        *database.characteristic(1, iid).unwrap()
    }

    #[test]
    fn nothing_to_mark_keeps_the_database_as_built() {
        let (database, _, on, _) = lamp();
        let marked = Handlers::default().mark(database).unwrap();
        assert!(!def(&marked, on).confirm_writes && !def(&marked, on).read_on_demand);
    }

    #[test]
    fn handlers_mark_their_characteristics_and_values_survive() {
        let (database, _, on, brightness) = lamp();
        let mut handlers = Handlers::default();
        handlers
            .writes
            .insert((1, on), WriteFn::Now(Box::new(|_| Ok(None))));
        handlers.reads.insert(
            (1, brightness),
            ReadFn::Now(Box::new(|| Ok(OwnedValue::Int(1)))),
        );
        let marked = handlers.mark(database).unwrap();
        assert!(def(&marked, on).confirm_writes && !def(&marked, on).read_on_demand);
        let level = def(&marked, brightness);
        assert!(level.read_on_demand && !level.confirm_writes);
        assert_eq!(marked.get(1, brightness), Some(&OwnedValue::Int(30)));
        // Accessory Information keeps its values too.
        let name = marked.entries().iter().find_map(|e| match e {
            Entry::Characteristic(d) if d.kind.uuid == c::NAME.uuid => Some(d.iid),
            _ => None,
        });
        assert_eq!(
            marked.get(1, name.unwrap()),
            OwnedValue::string("Lamp").as_ref()
        );
    }

    #[test]
    fn a_service_handler_confirms_its_writable_characteristics_only() {
        let (database, service, on, brightness) = lamp();
        let mut handlers = Handlers::default();
        handlers.services.push(ServiceWrites {
            aid: 1,
            service,
            members: Vec::new(),
            handler: Box::new(|_| Ok(())),
        });
        let marked = handlers.mark(database).unwrap();
        assert_eq!(handlers.services[0].members, [on, brightness]);
        assert!(def(&marked, on).confirm_writes && def(&marked, brightness).confirm_writes);
        // The Accessory Information's Name is not writable, nor in that service.
        let others = marked.entries().iter().filter(|e| {
            matches!(e, Entry::Characteristic(d) if d.confirm_writes && d.iid != on && d.iid != brightness)
        });
        assert_eq!(others.count(), 0);
    }

    #[test]
    fn a_timer_counts_from_when_it_was_started_not_from_when_the_loop_takes_it() {
        let inbox = Arc::new(Inbox::default());
        let device = Device::new(inbox.clone());
        let mut app_loop = AppLoop::new(
            Handlers::default(),
            Renames::default(),
            device.clone(),
            inbox.clone(),
        );
        let before = Instant::now();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        device.after(std::time::Duration::from_secs(2), move |_| {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let after = Instant::now();
        // The loop takes the message a second late (on the virtual clock).
        let message = inbox.recv_until(Some(after));
        assert!(app_loop.turn(message, before + std::time::Duration::from_secs(1)));
        let due = app_loop.next_deadline().expect("the timer is pending");
        assert!(due >= before + std::time::Duration::from_secs(2));
        assert!(due <= after + std::time::Duration::from_secs(2));
        assert!(app_loop.turn(None, due));
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_handler_of_nothing_is_refused() {
        let (database, service, on, _) = lamp();
        let mut handlers = Handlers::default();
        handlers.changes.entry((1, on)).or_default();
        handlers.changes.entry((2, on)).or_default();
        assert!(matches!(
            handlers.mark(database),
            Err(AppError::NoSuchCharacteristic { aid: 2, iid }) if iid == on
        ));
        let (database, ..) = lamp();
        let mut handlers = Handlers::default();
        handlers.services.push(ServiceWrites {
            aid: 1,
            service: on,
            members: Vec::new(),
            handler: Box::new(|_| Ok(())),
        });
        assert!(matches!(
            handlers.mark(database),
            Err(AppError::NoSuchService { aid: 1, service: s }) if s == on && s != service
        ));
    }

    /// A running accessory without sockets: the host alone, for handlers that set values.
    struct HostOnly(crate::host::SharedHost);

    impl Backend for HostOnly {
        fn host(&self) -> &crate::host::SharedHost {
            &self.0
        }
        fn local_addr(&self) -> std::net::SocketAddr {
            ([127, 0, 0, 1], 0).into()
        }
        fn shut_down(&self) {}
    }

    /// A host serving `database`, with no sockets.
    fn host_of(database: Database<'static>) -> crate::host::SharedHost {
        let setup = crate::Setup::load_or_create(
            Box::new(crate::store::MemoryStore::default()),
            "314-15-926".parse().ok(),
            None,
        )
        .unwrap();
        let options = crate::Options::new("Lamp", "L", hap_core::catalog::Category::LIGHTBULB);
        let host = setup
            .into_host(database, options, 0, Box::new(|_| {}))
            .unwrap();
        crate::host::SharedHost::new(host)
    }

    /// An UPDATE that starts a transition of ColorTemperature `iid` adjusted by
    /// Brightness `brightness`: 400 mired (factor -1) ramping to 300 (factor -2) over
    /// 10 minutes.
    fn start_request(iid: u64, brightness: u64) -> OwnedValue {
        use hap_core::adaptive::{codec, Curve, CurvePoint, TransitionConfig};
        let point = |temperature, brightness_factor, transition_ms| CurvePoint {
            temperature,
            brightness_factor,
            transition_ms,
            hold_ms: 0,
        };
        let config = TransitionConfig {
            iid,
            parameters: hap_core::adaptive::TransitionParameters {
                id: [1; 16],
                start: 800_000_000_000,
                extra: None,
            },
            curve: Curve {
                points: [point(400.0, -1.0, 0), point(300.0, -2.0, 600_000)]
                    .into_iter()
                    .collect(),
                brightness_iid: brightness,
                brightness_range: (10, 100),
            },
            update_interval_ms: 60_000,
            notify_interval_ms: 600_000,
        };
        let mut request = [0u8; 512];
        let len = codec::write_start_request(&config, &mut request).unwrap();
        OwnedValue::tlv8(&request[..len]).unwrap()
    }

    #[test]
    fn adaptive_lighting_runs_on_the_loop_and_is_kept_in_data() {
        use hap_core::adaptive::LightCharacteristics;
        let white_lamp = || {
            let mut ids = IdMap::new();
            let mut builder = DatabaseBuilder::new(&mut ids);
            builder.accessory("lamp", &AccessoryInfo::new("Lamp", "Acme", "L", "1", "1.0"));
            let service = builder
                .service(&s::LIGHTBULB)
                .primary()
                .adaptive_lighting()
                .iid();
            (builder.build().unwrap(), service)
        };
        let (database, service) = white_lamp();
        let light = LightCharacteristics::find(&database, 1, service).unwrap();
        let data = tempfile::tempdir().unwrap();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handlers = |heard: &Arc<std::sync::Mutex<Vec<OwnedValue>>>| {
            let mut handlers = Handlers::default();
            handlers
                .adaptive
                .push(AdaptiveLight::new(light, Some(data.path())));
            let heard = heard.clone();
            handlers
                .changes
                .entry((1, light.temperature))
                .or_default()
                .push(Box::new(move |value| {
                    heard.lock().unwrap().push(value.clone())
                }));
            handlers
        };
        let mut first = handlers(&heard);
        // As AppOn::adaptive_lighting does: the supported configuration is stored before
        // serving, and the device's brightness is followed.
        let (at, supported) = first.adaptive[0].supported_configuration();
        let mut database = database;
        database.set(1, at, supported).unwrap();
        let database = first.mark(database).unwrap();
        let control = def(&database, light.control);
        assert!(control.confirm_writes && control.read_on_demand);
        assert!(!def(&database, light.supported_configuration).read_on_demand);
        let host = host_of(database);
        let backend: Arc<dyn Backend> = Arc::new(HostOnly(host.clone()));
        let inbox = Arc::new(Inbox::default());
        let device = Device::new(inbox.clone());
        device.follow(1, light.brightness);
        let mut app_loop = AppLoop::new(first, Renames::default(), device.clone(), inbox.clone());
        app_loop.started(backend.clone()).unwrap();
        let supported = host.value(1, light.supported_configuration);
        assert!(
            matches!(&supported, Some(OwnedValue::Tlv8(v)) if v.len() == 18),
            "{supported:?}"
        );

        // A controller starts a transition (write() hands the control point's items here).
        let request = start_request(light.temperature, light.brightness);
        let (answer, steps) = app_loop.handlers.adaptive[0].control_write(&request, &*backend);
        assert!(matches!(answer, Ok(OwnedValue::Tlv8(v)) if v.as_slice()[0] == 2 && v.len() > 2));
        app_loop.tell(&steps);
        // Brightness is 0 at first, counted as the range's 10: 400 - 10.
        assert_eq!(host.value(1, light.temperature), Some(OwnedValue::Int(390)));
        assert_eq!(
            host.value(1, light.active_count),
            Some(OwnedValue::Uint8(1))
        );
        let file = data
            .path()
            .join(format!("adaptive-lighting-1-{}.tlv8", light.temperature));
        assert!(file.exists());
        // The device dims the lamp: the colour moves at once, and the handler hears it.
        device
            .set_value(1, light.brightness, OwnedValue::Int(100))
            .unwrap();
        let message = inbox.recv_until(Some(Instant::now()));
        assert!(app_loop.turn(message, Instant::now()));
        assert_eq!(host.value(1, light.temperature), Some(OwnedValue::Int(300)));
        assert_eq!(
            *heard.lock().unwrap(),
            [OwnedValue::Int(390), OwnedValue::Int(300)]
        );
        assert!(app_loop.next_deadline().is_some());

        // Restarted: the transition resumes from --data.
        let mut second = handlers(&Arc::default());
        let restarted_host = host_of(second.mark(white_lamp().0).unwrap());
        let restarted: Arc<dyn Backend> = Arc::new(HostOnly(restarted_host.clone()));
        let inbox = Arc::new(Inbox::default());
        let mut restarted_loop = AppLoop::new(
            second,
            Renames::default(),
            Device::new(inbox.clone()),
            inbox,
        );
        restarted_loop.started(restarted).unwrap();
        let count = restarted_host.value(1, light.active_count);
        assert_eq!(count, Some(OwnedValue::Uint8(1)));

        // A scene sets brightness and colour at once: it ends, the colour written stands
        // (not the step the brightness made), and --data forgets it.
        let scene = vec![
            (1, light.brightness, OwnedValue::Int(50)),
            (1, light.temperature, OwnedValue::Int(200)),
        ];
        for (aid, iid, value) in &scene {
            host.set_value(*aid, *iid, value.clone()).unwrap();
        }
        assert!(app_loop.turn(Some(Message(Inner::Changed(scene))), Instant::now()));
        assert_eq!(host.value(1, light.temperature), Some(OwnedValue::Int(200)));
        assert_eq!(
            host.value(1, light.active_count),
            Some(OwnedValue::Uint8(0))
        );
        assert!(!file.exists());
        assert_eq!(app_loop.next_deadline(), None);
        assert_eq!(heard.lock().unwrap().last(), Some(&OwnedValue::Int(200)));
    }

    #[test]
    fn a_rename_is_stored_and_becomes_the_name_of_the_primary_accessory() {
        let (database, ..) = lamp();
        let name_at = Renames::name_characteristic(&database);
        let host = host_of(database);
        let (aid, iid) = name_at.expect("the lamp has a Name");
        assert_eq!(aid, 1);
        assert_eq!(host.value(aid, iid), OwnedValue::string("Lamp"));

        let data = tempfile::tempdir().unwrap();
        let inbox = Arc::new(Inbox::default());
        let device = Device::new(inbox.clone());
        device.attach(Arc::new(HostOnly(host.clone())));
        let renames = Renames {
            data: Some(data.path().to_owned()),
            name_at,
        };
        let mut app_loop = AppLoop::new(Handlers::default(), renames, device, inbox.clone());
        inbox.post(Inner::Renamed("Lamp (2)".into()));
        let message = inbox.recv_until(Some(Instant::now()));
        assert!(app_loop.turn(message, Instant::now()));

        assert_eq!(host.value(aid, iid), OwnedValue::string("Lamp 2"));
        assert_eq!(
            super::super::stored_name::load(data.path()).as_deref(),
            Some("Lamp 2")
        );
    }
}
