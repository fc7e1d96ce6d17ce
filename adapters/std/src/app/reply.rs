//! Answers to a controller's pending writes and reads: the loop's own for synchronous
//! handlers, and [`Reply`] and [`ReadReply`] for handlers that answer later, from any
//! thread.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use hap_core::catalog::typed::CharacteristicValue;
use hap_core::database::OwnedValue;
use hap_core::server::{CompleteError, Token};
use hap_core::status::HapStatus;

use super::inbox::{Inbox, Inner};
use super::Backend;

/// Runs `work`, an application's handler or timer job, so that its panic does not end
/// the application's loop: logs it at error, naming `what`, and returns `None`.
pub(crate) fn guarded<R>(what: impl FnOnce() -> String, work: impl FnOnce() -> R) -> Option<R> {
    // The handler's state may be half-updated after a panic; the loop keeps only its
    // own, which the panic did not touch, and the handler is called again next time as
    // the application wrote it.
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => Some(result),
        Err(_) => {
            log::error!("the handler of {} panicked; the loop goes on", what());
            None
        }
    }
}

/// The items of one write batch, as `(aid, iid, value)`.
pub(crate) type Items = Vec<(u64, u64, OwnedValue)>;

/// A write batch waiting for its handlers' answers: completed once the last one comes.
pub(crate) struct PendingWrite {
    token: Token,
    backend: Arc<dyn Backend>,
    inbox: Arc<Inbox>,
    items: Items,
    /// Answers still to come: the loop's own, and one per [`Reply`] given out.
    waiting: usize,
    failure: Option<HapStatus>,
    /// Write-response values, given after the batch succeeds.
    responses: Items,
}

/// A [`PendingWrite`] shared between the loop and the [`Reply`]s of its handlers.
#[derive(Clone)]
pub(crate) struct SharedWrite(Arc<Mutex<PendingWrite>>);

impl SharedWrite {
    /// A batch waiting for the loop's answer only.
    pub(crate) fn new(
        token: Token,
        backend: Arc<dyn Backend>,
        inbox: Arc<Inbox>,
        items: Items,
    ) -> Self {
        Self(Arc::new(Mutex::new(PendingWrite {
            token,
            backend,
            inbox,
            items,
            waiting: 1,
            failure: None,
            responses: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, PendingWrite> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a handler failed the batch already.
    pub(crate) fn failed(&self) -> bool {
        self.lock().failure.is_some()
    }

    /// Fails the batch with `status`, unless it failed already.
    pub(crate) fn fail(&self, status: HapStatus) {
        self.lock().failure.get_or_insert(status);
    }

    /// The write-response value of `aid`.`iid`, answered once the batch succeeds.
    pub(crate) fn respond(&self, aid: u64, iid: u64, value: OwnedValue) {
        self.lock().responses.push((aid, iid, value));
    }

    /// A [`Reply`] that the batch waits for too.
    pub(crate) fn reply(&self) -> Reply {
        self.lock().waiting += 1;
        Reply {
            write: Some(self.clone()),
        }
    }

    /// One answer came. If it was the last, completes the batch and, if it succeeded,
    /// returns its items, for the change handlers.
    pub(crate) fn answer(&self, result: Result<(), HapStatus>) -> Option<Items> {
        let mut write = self.lock();
        if let Err(status) = result {
            write.failure.get_or_insert(status);
        }
        write.waiting = write.waiting.saturating_sub(1);
        if write.waiting > 0 {
            return None;
        }
        let result = write.failure.map_or(Ok(()), Err);
        let backend = write.backend.clone();
        match backend.complete_write(write.token, result) {
            Ok(()) if result.is_ok() => {}
            Ok(()) => return None,
            Err(CompleteError::NotAFailure) => {
                log::warn!(
                    "a write handler failed with status 0 (success); failing the write with -70402"
                );
                retry(backend.complete_write(write.token, Err(FAILED)));
                return None;
            }
            // Timed out (-70408 was sent) or the controller left.
            Err(e) => {
                log::info!("write not completed: {e}");
                return None;
            }
        }
        for (aid, iid, value) in std::mem::take(&mut write.responses) {
            if let Err(e) = backend.set_value(aid, iid, value) {
                log::warn!("the write response of {aid}.{iid} was refused: {e}");
            }
        }
        Some(std::mem::take(&mut write.items))
    }

    /// Where a deferred answer's change handlers are told.
    fn inbox(&self) -> Arc<Inbox> {
        self.lock().inbox.clone()
    }
}

/// The status of a write or read whose handler panicked, dropped its reply, or failed
/// with status 0.
const FAILED: HapStatus = HapStatus::ServiceCommunicationFailure;

fn retry(second: Result<(), CompleteError>) {
    if let Err(e) = second {
        log::info!("not completed: {e}");
    }
}

/// Completes the read `token` of `aid`.`iid` with `result`; a value that does not suit
/// the characteristic fails the read with -70410 (and a failure with status 0, -70402)
/// rather than leaving it to time out.
pub(crate) fn complete_read(
    backend: &dyn Backend,
    token: Token,
    aid: u64,
    iid: u64,
    result: Result<OwnedValue, HapStatus>,
) {
    let status = match backend.complete_read(token, result) {
        Ok(()) => return,
        Err(CompleteError::Value(e)) => {
            log::warn!("the read handler of {aid}.{iid} gave a value that does not suit it: {e}");
            HapStatus::InvalidValueInRequest
        }
        Err(CompleteError::NotAFailure) => {
            log::warn!("the read handler of {aid}.{iid} failed with status 0 (success)");
            FAILED
        }
        Err(e) => {
            log::info!("read of {aid}.{iid} not completed: {e}");
            return;
        }
    };
    retry(backend.complete_read(token, Err(status)));
}

/// The answer to a controller's write, for a handler that gives it later
/// ([`AppOn::on_write_deferred`](super::AppOn::on_write_deferred)): call [`Reply::ok`]
/// or [`Reply::fail`] from any thread. Dropped unanswered, it fails the write with
/// -70402 ([`HapStatus::ServiceCommunicationFailure`]) at once. The write times out
/// with -70408 if no answer comes within the core's read timeout (9 s).
#[must_use = "an unanswered reply fails the write"]
pub struct Reply {
    write: Option<SharedWrite>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("answered", &self.write.is_none())
            .finish()
    }
}

impl Reply {
    /// The write succeeds (if the other items of its request do): the value is stored
    /// and the change handlers hear of it.
    pub fn ok(mut self) {
        self.answer(Ok(()));
    }

    /// The write fails with `status`, and so does the rest of its request's batch.
    pub fn fail(mut self, status: HapStatus) {
        self.answer(Err(status));
    }

    fn answer(&mut self, result: Result<(), HapStatus>) {
        let Some(write) = self.write.take() else {
            return;
        };
        if let Some(items) = write.answer(result) {
            write.inbox().post(Inner::Changed(items));
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.write.is_some() {
            log::warn!("a write's reply was dropped unanswered; failing the write with -70402");
            self.answer(Err(FAILED));
        }
    }
}

/// The answer to a controller's read, for a handler that gives it later
/// ([`AppOn::on_read_deferred`](super::AppOn::on_read_deferred)): call
/// [`ReadReply::ok`] or [`ReadReply::fail`] from any thread. Dropped unanswered, it fails
/// the read with -70402 at once; unanswered, the read times out with -70408 after the
/// core's read timeout (9 s).
#[must_use = "an unanswered reply fails the read"]
pub struct ReadReply {
    read: Option<(Arc<dyn Backend>, Token)>,
    aid: u64,
    iid: u64,
}

impl fmt::Debug for ReadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadReply")
            .field("aid", &self.aid)
            .field("iid", &self.iid)
            .field("answered", &self.read.is_none())
            .finish()
    }
}

impl ReadReply {
    pub(crate) fn new(backend: Arc<dyn Backend>, token: Token, aid: u64, iid: u64) -> Self {
        Self {
            read: Some((backend, token)),
            aid,
            iid,
        }
    }

    /// Answers with `value`, which is stored too, so subscribers hear of a change. A
    /// value that does not suit the characteristic fails the read with -70410.
    pub fn ok<T: CharacteristicValue>(self, value: T) {
        self.ok_value(value.into_owned());
    }

    /// [`ReadReply::ok`] without the type.
    pub fn ok_value(mut self, value: OwnedValue) {
        self.answer(Ok(value));
    }

    /// Fails the read with `status`.
    pub fn fail(mut self, status: HapStatus) {
        self.answer(Err(status));
    }

    fn answer(&mut self, result: Result<OwnedValue, HapStatus>) {
        if let Some((backend, token)) = self.read.take() {
            complete_read(&*backend, token, self.aid, self.iid, result);
        }
    }
}

impl Drop for ReadReply {
    fn drop(&mut self) {
        if self.read.is_some() {
            log::warn!(
                "the read reply of {}.{} was dropped unanswered; failing it with -70402",
                self.aid,
                self.iid
            );
            self.answer(Err(FAILED));
        }
    }
}
