//! The application loop's mailbox: events from the server, typed lines, timers to add or
//! cancel. Any thread posts; one loop receives, blocking or as a future.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;

use hap_core::database::OwnedValue;
use hap_core::server::Event;

use super::timers::{Job, TimerId};

/// Something for the application loop to do; made by [`Inbox`]'s `post_*` methods and by
/// a [`Device`](super::Device).
pub struct Message(pub(crate) Inner);

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Event(event) => f.debug_tuple("Event").field(event).finish(),
            Inner::Line(line) => f.debug_tuple("Line").field(line).finish(),
            Inner::Timer(id, at, _) => f.debug_tuple("Timer").field(id).field(at).finish(),
            Inner::Cancel(id) => f.debug_tuple("Cancel").field(id).finish(),
            Inner::Changed(items) => f.debug_tuple("Changed").field(items).finish(),
            Inner::Renamed(name) => f.debug_tuple("Renamed").field(name).finish(),
            Inner::DeviceSet(aid, iid) => f.debug_tuple("DeviceSet").field(aid).field(iid).finish(),
            Inner::Stop => f.write_str("Stop"),
        }
    }
}

// Nearly every message is an event; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Inner {
    /// From the server.
    Event(Event),
    /// Typed on stdin.
    Line(String),
    /// A timer to start, due at the instant.
    Timer(TimerId, Instant, Job),
    /// A timer to cancel.
    Cancel(TimerId),
    /// Writes stored after a deferred answer: `(aid, iid, value)`, for the change
    /// handlers.
    Changed(Vec<(u64, u64, OwnedValue)>),
    /// mDNS renamed the instance after a conflict: store the name and show it.
    Renamed(String),
    /// The device changed characteristic `(aid, iid)` ([`super::Device::set_value`]):
    /// Adaptive Lighting follows a new brightness.
    DeviceSet(u64, u64),
    /// The accessory shut down: the loop ends.
    Stop,
}

/// The application loop's mailbox. Cheap to post to from any thread; see the
/// [module docs](super) for who posts what.
#[derive(Default)]
pub struct Inbox {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    messages: VecDeque<Message>,
    /// The task waiting in [`Inbox::recv`], if any.
    waker: Option<Waker>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.lock().messages.len())
            .finish()
    }
}

impl Inbox {
    /// Passes an event from the server to the application's handlers.
    pub fn post_event(&self, event: Event) {
        self.post(Inner::Event(event));
    }

    /// Passes a line typed on stdin to the application's line handler.
    pub fn post_line(&self, line: String) {
        self.post(Inner::Line(line));
    }

    /// Ends the loop once the messages before this one are handled: the accessory shut
    /// down.
    pub fn stop(&self) {
        self.post(Inner::Stop);
    }

    pub(crate) fn post(&self, message: Inner) {
        let waker = {
            let mut state = self.lock();
            state.messages.push_back(Message(message));
            state.waker.take()
        };
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Waits for the next message until `deadline` (forever if `None`); `None` if the
    /// deadline passed first.
    pub fn recv_until(&self, deadline: Option<Instant>) -> Option<Message> {
        let mut state = self.lock();
        loop {
            if let Some(message) = state.messages.pop_front() {
                return Some(message);
            }
            state = match deadline {
                None => self
                    .ready
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(at) => {
                    let left = at.checked_duration_since(Instant::now())?;
                    self.ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }

    /// The next message, as a future for an async runtime. One task at a time may wait.
    pub fn recv(&self) -> impl Future<Output = Message> + '_ {
        std::future::poll_fn(|cx| {
            let mut state = self.lock();
            match state.messages.pop_front() {
                Some(message) => Poll::Ready(message),
                None => {
                    state.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked while posting leaves the queue intact.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::{Context, Wake};
    use std::time::Duration;

    use super::*;

    #[test]
    fn messages_arrive_in_order_and_a_deadline_ends_the_wait() {
        let inbox = Inbox::default();
        inbox.post_line("one".into());
        inbox.post_line("two".into());
        let line = |m: Option<Message>| match m.map(|m| m.0) {
            Some(Inner::Line(line)) => line,
            _ => panic!("not a line"),
        };
        assert_eq!(line(inbox.recv_until(None)), "one");
        assert_eq!(line(inbox.recv_until(Some(Instant::now()))), "two");
        let started = Instant::now();
        let deadline = started + Duration::from_millis(5);
        assert!(inbox.recv_until(Some(deadline)).is_none());
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn a_post_from_another_thread_wakes_a_blocked_receiver() {
        let inbox = Arc::new(Inbox::default());
        let poster = inbox.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            poster.stop();
        });
        let received = inbox.recv_until(Some(Instant::now() + Duration::from_secs(10)));
        thread.join().unwrap();
        assert!(matches!(received.map(|m| m.0), Some(Inner::Stop)));
    }

    struct Flag(std::sync::atomic::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_post_wakes_the_waiting_task() {
        let inbox = Inbox::default();
        let flag = Arc::new(Flag(Default::default()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut receiving = Box::pin(inbox.recv());
        assert!(receiving.as_mut().poll(&mut cx).is_pending());
        inbox.post_line("hello".into());
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(
            receiving.as_mut().poll(&mut cx),
            Poll::Ready(Message(Inner::Line(line))) if line == "hello"
        ));
    }
}
