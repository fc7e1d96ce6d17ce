//! The application loop: hands events, typed lines and timers to the application's
//! handlers, one at a time.

use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::time::Instant;

use hap_core::database::OwnedValue;
use hap_core::server::Event;

use super::inbox::{Inbox, Inner, Message};
use super::timers::Timers;
use super::{AppError, Backend, Device};

/// Called with a value a controller wrote, once it is stored.
pub(crate) type ChangeFn = Box<dyn FnMut(&OwnedValue) + Send>;
/// Called with a line typed on stdin.
pub(crate) type LineFn = Box<dyn FnMut(&str) + Send>;
/// Called when a controller asks the accessory to identify itself.
pub(crate) type IdentifyFn = Box<dyn FnMut() + Send>;

/// The application's handlers, by characteristic.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) changes: HashMap<(u64, u64), Vec<ChangeFn>>,
    pub(crate) line: Option<LineFn>,
    pub(crate) identify: Option<IdentifyFn>,
}

/// The loop that runs the application's handlers and timers, without the waiting, which
/// is the runtime's: wait on [`AppLoop::inbox`] until [`AppLoop::next_deadline`], then
/// call [`AppLoop::turn`] with what arrived, until it returns `false`.
/// [`AppLoop::run_blocking`] is that loop for a thread.
pub struct AppLoop {
    handlers: Handlers,
    timers: Timers,
    device: Device,
    inbox: Arc<Inbox>,
}

impl std::fmt::Debug for AppLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppLoop").finish_non_exhaustive()
    }
}

impl AppLoop {
    pub(crate) fn new(handlers: Handlers, device: Device, inbox: Arc<Inbox>) -> Self {
        Self {
            handlers,
            timers: Timers::default(),
            device,
            inbox,
        }
    }

    /// Where the server's events, typed lines and the stop go.
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// Call once the accessory accepts connections: connects the [`Device`] to
    /// `backend`, prints `listening on ADDR`, makes Ctrl+C and SIGTERM shut it down, and
    /// starts reading stdin if the application handles typed lines.
    pub fn started(&self, backend: Arc<dyn Backend>) -> Result<(), AppError> {
        self.device.attach(backend.clone());
        println!("listening on {}", backend.local_addr());
        let _ = std::io::stdout().flush();
        ctrlc::set_handler(move || backend.shut_down())
            .map_err(|e| AppError::Signals(e.to_string()))?;
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
        self.timers.next_deadline()
    }

    /// Handles `message` (`None` when the wait ended at the deadline), then runs the
    /// timers due at `now`. Returns `false` once the loop should end.
    pub fn turn(&mut self, message: Option<Message>, now: Instant) -> bool {
        if let Some(Message(message)) = message {
            match message {
                Inner::Event(event) => self.dispatch(event),
                Inner::Line(line) => {
                    if let Some(handler) = self.handlers.line.as_mut() {
                        handler(&line);
                    }
                }
                Inner::Timer(id, delay, job) => self.timers.add(id, now + delay, job),
                Inner::Cancel(id) => self.timers.cancel(id),
                Inner::Stop => return false,
            }
        }
        self.timers.run_due(now, &self.device);
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

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Write {
                aid, iid, value, ..
            } => self.changed(aid, iid, &value),
            Event::Identify => match self.handlers.identify.as_mut() {
                Some(handler) => handler(),
                None => println!("Identify"),
            },
            Event::Verified { controller } => println!(
                "Controller {} connected",
                String::from_utf8_lossy(controller.as_bytes())
            ),
            Event::PairingsChanged { paired: true } => println!("Paired"),
            Event::PairingsChanged { paired: false } => println!("Unpaired; ready to pair again"),
            other => log::debug!("no handler for {other:?}"),
        }
    }

    /// Tells the change handlers of `aid`.`iid` about a stored write.
    fn changed(&mut self, aid: u64, iid: u64, value: &OwnedValue) {
        if let Some(handlers) = self.handlers.changes.get_mut(&(aid, iid)) {
            for handler in handlers {
                handler(value);
            }
        }
    }
}
