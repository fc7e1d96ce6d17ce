//! The device side of the accessory: values set by the hardware, and timers.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hap_core::catalog::typed::CharacteristicValue;
use hap_core::database::handle::Handle;
use hap_core::database::{OwnedValue, SetValueError};
use hap_core::server::{CompleteError, Token};
use hap_core::status::HapStatus;

use super::inbox::{Inbox, Inner};
use super::timers::{Job, TimerId};
use crate::host::SharedHost;

/// What the application layer needs from a runtime's handle: the thread adapter's
/// [`crate::Handle`] and `hap_smol::Handle` implement it.
pub trait Backend: Send + Sync {
    /// The host the runtime serves from; the value and completion methods below go
    /// through it, the same for every runtime.
    fn host(&self) -> &SharedHost;
    /// The address connections are accepted on.
    fn local_addr(&self) -> SocketAddr;
    /// Sends the mDNS goodbye, closes every connection and stops accepting.
    fn shut_down(&self);

    /// Sets a value; subscribed controllers get events.
    fn set_value(&self, aid: u64, iid: u64, value: OwnedValue) -> Result<bool, SetValueError> {
        self.host().set_value(aid, iid, value)
    }
    /// Sets a value without telling subscribers (Adaptive Lighting's steps).
    fn set_value_quietly(
        &self,
        aid: u64,
        iid: u64,
        value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        self.host().set_value_quietly(aid, iid, value)
    }
    /// Tells subscribers a value, changed or not.
    fn notify(&self, aid: u64, iid: u64) -> Result<(), SetValueError> {
        self.host().notify(aid, iid)
    }
    /// A value.
    fn value(&self, aid: u64, iid: u64) -> Option<OwnedValue> {
        self.host().value(aid, iid)
    }
    /// Completes a batch of confirmed writes.
    fn complete_write(
        &self,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        self.host().complete_write(token, result)
    }
    /// Completes a read on demand.
    fn complete_read(
        &self,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        self.host().complete_read(token, result)
    }
}

impl Backend for crate::Handle {
    fn host(&self) -> &SharedHost {
        &self.host
    }

    fn local_addr(&self) -> SocketAddr {
        crate::Handle::local_addr(self)
    }

    fn shut_down(&self) {
        crate::Handle::shut_down(self);
    }
}

/// Why a [`Device`] could not set a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    /// The accessory is not running yet ([`super::AppOn::run`] has not started it) or has
    /// shut down.
    NotRunning,
    /// The database refused the value.
    Value(SetValueError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRunning => f.write_str("the accessory is not running"),
            Self::Value(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotRunning => None,
            Self::Value(e) => Some(e),
        }
    }
}

impl From<SetValueError> for DeviceError {
    fn from(e: SetValueError) -> Self {
        Self::Value(e)
    }
}

/// The device side of a running accessory: sets values as the hardware changes them,
/// reads them, and starts timers on the application's loop. Cheap to clone; get one from
/// [`super::AppOn::device`] before the accessory runs, and move clones into handlers, timers
/// and threads.
#[derive(Clone)]
pub struct Device {
    shared: Arc<Shared>,
}

struct Shared {
    backend: OnceLock<Arc<dyn Backend>>,
    inbox: Arc<Inbox>,
    next_timer: AtomicU64,
    /// [`Device::shut_down`] was called: the backend is shut down as soon as it is
    /// attached.
    stopping: AtomicBool,
    /// The characteristics whose changes by the device the loop follows (Adaptive
    /// Lighting's brightness), as `(aid, iid)`.
    followed: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("running", &self.shared.backend.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Device {
    pub(crate) fn new(inbox: Arc<Inbox>) -> Self {
        Self {
            shared: Arc::new(Shared {
                backend: OnceLock::new(),
                inbox,
                next_timer: AtomicU64::new(1),
                stopping: AtomicBool::new(false),
                followed: std::sync::Mutex::default(),
            }),
        }
    }

    /// A device of no accessory, for tests of the loop's parts.
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        Self::new(Arc::default())
    }

    /// Connects the device to the running accessory, once only, and shuts it down if
    /// [`Device::shut_down`] came first.
    pub(crate) fn attach(&self, backend: Arc<dyn Backend>) {
        let _ = self.shared.backend.set(backend);
        // With shut_down's order (flag, then backend), one of the two sees the other.
        if self.shared.stopping.load(Ordering::SeqCst) {
            if let Some(backend) = self.backend() {
                backend.shut_down();
            }
        }
    }

    /// Tells the loop of the device's changes of `aid`.`iid` from now on.
    pub(crate) fn follow(&self, aid: u64, iid: u64) {
        let mut followed = self
            .shared
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        followed.push((aid, iid));
    }

    fn follows(&self, aid: u64, iid: u64) -> bool {
        let followed = self
            .shared
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        followed.contains(&(aid, iid))
    }

    pub(crate) fn backend(&self) -> Option<&Arc<dyn Backend>> {
        self.shared.backend.get()
    }

    /// Sets the value of `characteristic`, as the hardware changed it; subscribed
    /// controllers get events (and a read on demand waiting for it is answered). Returns
    /// whether the value changed.
    pub fn set<T: CharacteristicValue>(
        &self,
        characteristic: Handle<T>,
        value: T,
    ) -> Result<bool, DeviceError> {
        self.set_value(
            characteristic.aid(),
            characteristic.iid(),
            value.into_owned(),
        )
    }

    /// The value of `characteristic`; `None` if the accessory is not running.
    pub fn get<T: CharacteristicValue>(&self, characteristic: Handle<T>) -> Option<T> {
        T::from_owned(&self.value(characteristic.aid(), characteristic.iid())?)
    }

    /// [`Device::set`] without the type: sets the value of characteristic `aid`.`iid`;
    /// subscribed controllers get events. Returns whether the value changed.
    pub fn set_value(&self, aid: u64, iid: u64, value: OwnedValue) -> Result<bool, DeviceError> {
        let backend = self.backend().ok_or(DeviceError::NotRunning)?;
        let changed = backend.set_value(aid, iid, value)?;
        if changed && self.follows(aid, iid) {
            self.shared.inbox.post(Inner::DeviceSet(aid, iid));
        }
        Ok(changed)
    }

    /// [`Device::get`] without the type: the value of characteristic `aid`.`iid`; `None`
    /// if there is none or the accessory is not running.
    pub fn value(&self, aid: u64, iid: u64) -> Option<OwnedValue> {
        self.backend()?.value(aid, iid)
    }

    /// The address connections are accepted on, once running.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        Some(self.backend()?.local_addr())
    }

    /// Runs `job` once on the application's loop after `delay`.
    pub fn after(&self, delay: Duration, job: impl FnOnce(&Device) + Send + 'static) -> TimerId {
        self.start_timer(delay, Job::Once(Box::new(job)))
    }

    /// Runs `job` on the application's loop every `period`, the first time one period from
    /// now, until [`Device::cancel`].
    pub fn every(&self, period: Duration, job: impl FnMut(&Device) + Send + 'static) -> TimerId {
        self.start_timer(period, Job::Every(period, Box::new(job)))
    }

    /// Cancels a timer. Nothing happens if it ran already (once) or was cancelled.
    pub fn cancel(&self, timer: TimerId) {
        self.shared.inbox.post(Inner::Cancel(timer));
    }

    /// Shuts the accessory down, as Ctrl+C does: the mDNS goodbye, every connection
    /// closed, and [`super::AppOn::run`] returns. Called before the accessory runs, it
    /// shuts down as soon as it has started.
    pub fn shut_down(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(backend) = self.backend() {
            backend.shut_down();
        }
    }

    fn start_timer(&self, delay: Duration, job: Job) -> TimerId {
        let id = TimerId(self.shared.next_timer.fetch_add(1, Ordering::Relaxed));
        // Due counting from now, not from when the loop takes the message.
        let at = Instant::now() + delay;
        self.shared.inbox.post(Inner::Timer(id, at, job));
        id
    }
}
