//! Timers that run on the application's loop, on an injected clock.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use super::reply::guarded;
use super::Device;

/// Names a timer made by [`Device::after`] or [`Device::every`], to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// What a timer runs.
pub(crate) enum Job {
    /// Once, after a delay.
    Once(Box<dyn FnOnce(&Device) + Send>),
    /// Every period, until cancelled.
    Every(Duration, Box<dyn FnMut(&Device) + Send>),
}

/// The pending timers, earliest first. Time is passed in, so tests run it on a virtual
/// clock.
#[derive(Default)]
pub(crate) struct Timers {
    queue: BinaryHeap<Reverse<(Instant, TimerId)>>,
    jobs: BTreeMap<TimerId, Job>,
}

impl Timers {
    /// Schedules `job` at `at`.
    pub(crate) fn add(&mut self, id: TimerId, at: Instant, job: Job) {
        self.jobs.insert(id, job);
        self.queue.push(Reverse((at, id)));
    }

    /// Cancels a timer; nothing happens if it ran (once) or was cancelled already.
    pub(crate) fn cancel(&mut self, id: TimerId) {
        self.jobs.remove(&id);
    }

    /// When the earliest timer is due, if any is pending.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        // Entries of cancelled timers stay queued until they reach the front.
        while let Some(Reverse((at, id))) = self.queue.peek() {
            if self.jobs.contains_key(id) {
                return Some(*at);
            }
            self.queue.pop();
        }
        None
    }

    /// Runs every timer due at `now`, in the order of their deadlines; a periodic one is
    /// scheduled again one period after its deadline (or after `now`, if it fell more
    /// than a period behind).
    pub(crate) fn run_due(&mut self, now: Instant, device: &Device) {
        while let Some(at) = self.next_deadline().filter(|at| *at <= now) {
            let Some(Reverse((_, id))) = self.queue.pop() else {
                break;
            };
            match self.jobs.remove(&id) {
                Some(Job::Once(job)) => {
                    guarded(|| format!("timer {}", id.0), || job(device));
                }
                Some(Job::Every(period, mut job)) => {
                    // A periodic job that panicked is not run again: its state may be
                    // half-updated, and it would likely panic every period.
                    if guarded(|| format!("timer {}", id.0), || job(device)).is_none() {
                        continue;
                    }
                    // The job may have cancelled itself through the device; that
                    // arrives as a message after this turn, so keep it for now.
                    let next = if at + period > now {
                        at + period
                    } else {
                        now + period
                    };
                    self.add(id, next, Job::Every(period, job));
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn log() -> (Arc<Mutex<Vec<&'static str>>>, impl Fn(&'static str) -> Job) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let once = move |what: &'static str| {
            let record = record.clone();
            Job::Once(Box::new(move |_: &Device| {
                record.lock().unwrap().push(what)
            }))
        };
        (seen, once)
    }

    #[test]
    fn timers_run_in_deadline_order_when_due_and_not_before() {
        let device = Device::detached();
        let start = Instant::now();
        let (seen, once) = log();
        let mut timers = Timers::default();
        timers.add(TimerId(1), start + Duration::from_secs(3), once("three"));
        timers.add(TimerId(2), start + Duration::from_secs(1), once("one"));
        timers.add(TimerId(3), start + Duration::from_secs(2), once("two"));
        assert_eq!(timers.next_deadline(), Some(start + Duration::from_secs(1)));
        timers.run_due(start + Duration::from_millis(999), &device);
        assert!(seen.lock().unwrap().is_empty());
        timers.run_due(start + Duration::from_secs(2), &device);
        assert_eq!(*seen.lock().unwrap(), ["one", "two"]);
        timers.run_due(start + Duration::from_secs(10), &device);
        assert_eq!(*seen.lock().unwrap(), ["one", "two", "three"]);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn a_cancelled_timer_does_not_run() {
        let device = Device::detached();
        let start = Instant::now();
        let (seen, once) = log();
        let mut timers = Timers::default();
        timers.add(
            TimerId(1),
            start + Duration::from_secs(1),
            once("cancelled"),
        );
        timers.add(TimerId(2), start + Duration::from_secs(2), once("kept"));
        timers.cancel(TimerId(1));
        assert_eq!(timers.next_deadline(), Some(start + Duration::from_secs(2)));
        timers.run_due(start + Duration::from_secs(5), &device);
        assert_eq!(*seen.lock().unwrap(), ["kept"]);
    }

    #[test]
    fn a_periodic_timer_repeats_without_drifting_until_cancelled() {
        let device = Device::detached();
        let start = Instant::now();
        let count = Arc::new(Mutex::new(0));
        let counter = count.clone();
        let mut timers = Timers::default();
        let every = Job::Every(
            Duration::from_secs(10),
            Box::new(move |_: &Device| *counter.lock().unwrap() += 1),
        );
        timers.add(TimerId(7), start + Duration::from_secs(10), every);
        // Run a little late each time: the next deadline stays on the 10 s grid.
        timers.run_due(start + Duration::from_millis(10_300), &device);
        assert_eq!(
            timers.next_deadline(),
            Some(start + Duration::from_secs(20))
        );
        timers.run_due(start + Duration::from_millis(20_100), &device);
        assert_eq!(*count.lock().unwrap(), 2);
        // Far behind: once, then a period from now rather than a burst.
        timers.run_due(start + Duration::from_secs(95), &device);
        assert_eq!(*count.lock().unwrap(), 3);
        assert_eq!(
            timers.next_deadline(),
            Some(start + Duration::from_secs(105))
        );
        timers.cancel(TimerId(7));
        timers.run_due(start + Duration::from_secs(200), &device);
        assert_eq!(*count.lock().unwrap(), 3);
    }
}
