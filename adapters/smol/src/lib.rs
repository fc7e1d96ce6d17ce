//! HomeKit accessories on the [smol](https://docs.rs/smol) async runtime.
//!
//! [`serve`] binds a TCP listener (by default `[::]`, for IPv6 and IPv4 at once: see
//! [`hap_std::Bind`]) and spawns one task per connection on smol's global executor;
//! connections get TCP keepalive (see [`hap_std::socket`]). Each task waits for bytes, a
//! wake-up from another connection or the application, or the core's next deadline (an
//! `async-io` timer), and then drives the shared [`Host`] from `hap-std`, which owns the
//! state, the store and the mDNS responder. All protocol logic is in [`hap_core`].
//!
//! Two choices keep a request to one thread, as the examples make them:
//! - handle [`Running::events`] in a task on smol's executor (`smol::spawn`), where the
//!   connections run, so that an event wakes no other thread;
//! - make a main thread that only waits do so with `smol::future::block_on`, not
//!   `smol::block_on`: the latter makes the main thread poll the sockets, and every
//!   request then costs a wake-up of the executor's thread.
//!
//! On the benchmark machine each of the two was worth 15 to 20 µs of CPU per request.
//!
//! mDNS is hap-std's ([`hap_std::mdns`], or [`hap_std::avahi`]): the built-in responder
//! drives the core's responder on threads of its own (one per socket and one for its
//! deadlines and the interface check), not on smol's executor, so that its blocking
//! waits never hold up a connection and it needs nothing from the runtime. The
//! features `mdns`, `store`, `app` and `qr` are hap-std's, forwarded.
//!
//! ```no_run
//! # use hap_core::database::{builder::{AccessoryInfo, DatabaseBuilder}, ids::IdMap, Database};
//! # fn database(ids: &mut IdMap) -> Database<'static> {
//! #     let mut builder = DatabaseBuilder::new(ids);
//! #     builder.accessory("light", &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"));
//! #     builder.service(&hap_core::catalog::service::LIGHTBULB).primary();
//! #     builder.build().unwrap()
//! # }
//! use hap_core::catalog::Category;
//! use hap_std::{store::MemoryStore, Options, Setup};
//!
//! smol::future::block_on(async {
//!     let mut setup = Setup::load_or_create(Box::new(MemoryStore::default()), None, None)?;
//!     let database = database(setup.ids());
//!     let running = hap_smol::serve(setup, database, Options::new("Light", "L1", Category::LIGHTBULB)).await?;
//!     let events = running.events().clone();
//!     smol::spawn(async move {
//!         while let Ok(event) = events.recv().await {
//!             println!("{event:?}");
//!         }
//!     })
//!     .await;
//!     running.wait().await;
//!     Ok::<_, hap_std::StartError>(())
//! })?;
//! # Ok::<_, hap_std::StartError>(())
//! ```
#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use async_io::{Async, Timer};
use atomic_waker::AtomicWaker;
use hap_core::database::{Database, OwnedValue, SetValueError};
use hap_core::server::{AcceptError, CompleteError, Connection, Event, HapStatus, Token};
use hap_std::host::SharedHost;
use hap_std::socket;
use hap_std::{Host, Options, Setup, StartError};
use smol::channel::{self, Receiver, Sender};
use smol::future::{self, FutureExt as _};
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::Task;

pub use hap_core;
pub use hap_std;

// The README's Rust examples compile as doctests (and run, unless marked `no_run`). They
// live here because this crate can reach every crate they use.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "app")]
pub mod app;

/// How many received bytes a connection buffers before it stops reading.
const RECEIVE_LIMIT: usize = 16 * 1024;

/// How long a send may take before the peer, which stopped reading, is dropped.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Binds the socket and starts serving `database` with the state in `setup`.
///
/// Returns once the socket accepts connections. Events for the application arrive on
/// [`Running::events`]; a [`Handle`] changes values and shuts the accessory down.
pub async fn serve(
    setup: Setup,
    database: Database<'static>,
    options: Options,
) -> Result<Running, StartError> {
    let (listener, local_addr) = socket::listen(options.bind, options.port)?;
    let listener = Async::new(listener).map_err(|source| StartError::Bind {
        address: local_addr,
        source,
    })?;
    let (event_sender, events) = channel::unbounded();
    let host = setup.into_host(
        database,
        options,
        local_addr.port(),
        Box::new(move |event| {
            // The application may have stopped listening; the accessory goes on.
            let _ = event_sender.try_send(event);
        }),
    )?;
    let (stop, stopped) = channel::bounded(1);
    let handle = Handle {
        host: SharedHost::new(host),
        local_addr,
        stop,
    };
    let acceptor = smol::spawn(accept_loop(handle.host.clone(), listener, stopped));
    Ok(Running {
        handle,
        events,
        acceptor,
    })
}

/// A served accessory. Keep it for as long as the accessory should run: dropping it
/// stops accepting and closes every connection, without the mDNS goodbye that
/// [`Handle::shut_down`] sends.
#[derive(Debug)]
pub struct Running {
    handle: Handle,
    events: Receiver<Event>,
    acceptor: Task<()>,
}

impl Running {
    /// The handle, to change values and shut down from any task or thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Writes, identify requests, reads on demand and pairing changes, in order. The
    /// stream ends when the accessory shuts down.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Waits until [`Handle::shut_down`] was called and every connection has closed.
    pub async fn wait(self) {
        self.acceptor.await;
    }
}

/// Changes values and shuts the accessory down; cheap to clone and share.
#[derive(Clone, Debug)]
pub struct Handle {
    host: SharedHost,
    local_addr: SocketAddr,
    stop: Sender<()>,
}

impl Handle {
    /// The address connections are accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sets a characteristic's value; subscribed controllers get events. Answers
    /// [`Event::Read`] too. Returns whether the value changed.
    pub fn set_value(&self, aid: u64, iid: u64, value: OwnedValue) -> Result<bool, SetValueError> {
        self.host.set_value(aid, iid, value)
    }

    /// Answers a confirmed write ([`Event::WriteRequest`]) under its token: `Ok(())`
    /// commits the values (subscribers get events), `Err(status)` fails every item with
    /// it, such as [`HapStatus::ServiceCommunicationFailure`] for a device that does not
    /// answer. A stale or unknown token is refused.
    pub fn complete_write(
        &self,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        self.host.complete_write(token, result)
    }

    /// Answers a read on demand ([`Event::Read`]) under its token, with a value or a
    /// status. A stale or unknown token is refused.
    pub fn complete_read(
        &self,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        self.host.complete_read(token, result)
    }

    /// A characteristic's current value.
    pub fn value(&self, aid: u64, iid: u64) -> Option<OwnedValue> {
        self.host.value(aid, iid)
    }

    /// Runs `f` with the host, to read state such as the setup code.
    pub fn with_host<T>(&self, f: impl FnOnce(&Host) -> T) -> T {
        f(&self.host.lock())
    }

    /// Sends the mDNS goodbye, closes every connection and stops accepting. Returns at
    /// once; [`Running::wait`] waits for the tasks.
    pub fn shut_down(&self) {
        self.host.lock().shut_down();
        let _ = self.stop.try_send(());
    }
}

/// What ended one wait of the accept loop.
enum Accepting {
    Accepted(std::io::Result<(Async<TcpStream>, SocketAddr)>),
    Stopped,
    /// The host deadline passed, or moved.
    HostTimer,
}

/// Accepts connections, and does the host's own timed work (such as retrying a failed
/// mDNS announcement) at [`Host::poll_host_timeout`], so that it happens with no
/// connection open.
async fn accept_loop(host: SharedHost, listener: Async<TcpListener>, stopped: Receiver<()>) {
    let mut connections: Vec<Task<()>> = Vec::new();
    let host_woken = Arc::new(WakeSignal::default());
    {
        let wake = host_woken.clone();
        host.lock().set_host_waker(Box::new(move || wake.wake()));
    }
    let mut timer = Timer::never();
    loop {
        match host.lock().poll_host_timeout() {
            Some(at) => timer.set_at(at),
            None => timer = Timer::never(),
        }
        let accepted = async { Accepting::Accepted(listener.accept().await) }
            .or(async {
                let _ = stopped.recv().await;
                Accepting::Stopped
            })
            .or(async {
                (&mut timer).await;
                Accepting::HostTimer
            })
            .or(async {
                host_woken.wait().await;
                Accepting::HostTimer
            })
            .await;
        // Under a flood of connections the stop signal may lose every race.
        if host.lock().is_shutting_down() {
            break;
        }
        let accepted = match accepted {
            Accepting::Accepted(accepted) => accepted,
            Accepting::Stopped => break,
            Accepting::HostTimer => {
                // Early after a mere change of the deadline, which does no harm.
                host.lock().handle_host_timeout();
                continue;
            }
        };
        connections.retain(|c| !c.is_finished());
        match accepted {
            Ok((stream, _)) => {
                connections.push(smol::spawn(serve_connection(host.clone(), stream)))
            }
            // Out of descriptors, or the peer gave up before accept: keep serving.
            Err(e) => {
                log::warn!("accept failed: {e}");
                Timer::after(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    for connection in connections {
        connection.await;
    }
}

/// Wake-ups of one connection by the host: a flag and the waker of the connection's task.
/// Unlike a channel's receiver, waiting on it allocates nothing, and it is waited on once
/// per request.
#[derive(Default)]
struct WakeSignal {
    pending: AtomicBool,
    waker: AtomicWaker,
}

impl WakeSignal {
    /// Marks a wake-up and wakes the waiting task, if any. Wake-ups before the next wait
    /// merge into one.
    fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Waits until [`WakeSignal::wake`] was called since the last wait returned.
    async fn wait(&self) {
        future::poll_fn(|cx| {
            if self.pending.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A wake between the check and the registration found no waker to wake.
            if self.pending.swap(false, Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

enum Wake {
    Received(std::io::Result<usize>),
    Woken,
    Due,
}

async fn serve_connection(host: SharedHost, stream: Async<TcpStream>) {
    let peer = stream.get_ref().peer_addr().ok();
    if let Err(e) = socket::configure_accepted(stream.get_ref()) {
        log::warn!("cannot set the socket options of {peer:?}: {e}");
    }
    let woken = Arc::new(WakeSignal::default());
    let wake = woken.clone();
    let mut buffers = host.lock().connection_buffers();
    let accepted = host
        .lock()
        .accept(buffers.borrow(), Box::new(move || wake.wake()));
    let mut conn = match accepted {
        Ok(conn) => conn,
        Err(AcceptError::TooManyConnections) => {
            log::info!("refused {peer:?}: too many connections");
            let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
            return;
        }
        Err(e) => {
            log::error!("refused {peer:?}: {e}");
            return;
        }
    };
    drive(&host, &stream, &mut conn, &woken).await;
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
}

/// The connection's run loop: wait, feed, drain, send.
async fn drive(
    host: &SharedHost,
    mut stream: &Async<TcpStream>,
    conn: &mut Connection<'_>,
    woken: &WakeSignal,
) {
    let mut received = Vec::new();
    let mut transmit = Vec::new();
    let mut chunk = vec![0u8; 4096];
    // Whether the core refused the bytes in `received` until a wake-up or a timeout.
    let mut stalled = false;
    let mut deadline = host.lock().poll_timeout(conn);
    // One timer for the connection's life, moved only when the deadline moves: every
    // registration of a timer wakes the reactor, and the unverified deadline stays put.
    let mut timer = Timer::never();
    let mut armed = None;
    loop {
        if deadline != armed {
            match deadline {
                Some(at) => timer.set_at(at),
                None => timer = Timer::never(),
            }
            armed = deadline;
        }
        let reading = !stalled && received.len() < RECEIVE_LIMIT;
        // Input left over only because the reply grew large is offered at once.
        let ready = !stalled && !received.is_empty();
        let wake = if ready {
            Wake::Woken
        } else {
            async {
                if reading {
                    Wake::Received(stream.read(&mut chunk).await)
                } else {
                    future::pending().await
                }
            }
            .or(async {
                woken.wait().await;
                Wake::Woken
            })
            .or(async {
                // A timer that has fired, or was never set, stays pending.
                (&mut timer).await;
                Wake::Due
            })
            .await
        };
        if let Wake::Due = wake {
            // A fired timer does not fire again: set it anew even for the same deadline.
            armed = None;
        }

        // The lock is held in this block only, never across an await.
        let close = {
            let mut guard = host.lock();
            match wake {
                Wake::Received(Ok(0)) | Wake::Received(Err(_)) => {
                    guard.connection_lost(conn);
                    return;
                }
                Wake::Received(Ok(n)) => received.extend_from_slice(&chunk[..n]),
                // The core may take the refused bytes now.
                Wake::Woken | Wake::Due => {}
            }
            // Checked on every pass: a peer that keeps sending must not outrun its
            // deadlines.
            if deadline.is_some_and(|at| std::time::Instant::now() >= at) {
                guard.handle_timeout(conn);
            }
            let exchange = guard.handle_input(conn, &received, &mut transmit);
            received.drain(..exchange.taken);
            stalled = !received.is_empty() && !exchange.close && !exchange.saturated;
            deadline = guard.poll_timeout(conn);
            exchange.close
        };

        if !transmit.is_empty() {
            let sent = async { stream.write_all(&transmit).await.is_ok() }
                .or(async {
                    Timer::after(WRITE_TIMEOUT).await;
                    false
                })
                .await;
            if !sent {
                host.lock().connection_lost(conn);
                return;
            }
            transmit.clear();
        }
        if close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wake_ups_before_a_wait_merge_into_one() {
        let signal = WakeSignal::default();
        signal.wake();
        signal.wake();
        assert_eq!(future::block_on(future::poll_once(signal.wait())), Some(()));
        assert_eq!(
            future::block_on(future::poll_once(signal.wait())),
            None,
            "the second wake-up was merged into the first"
        );
    }

    #[test]
    fn a_wake_up_from_another_thread_ends_the_wait() {
        let signal = Arc::new(WakeSignal::default());
        let waker = signal.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            waker.wake();
        });
        let woken = future::block_on(
            async {
                signal.wait().await;
                true
            }
            .or(async {
                Timer::after(Duration::from_secs(10)).await;
                false
            }),
        );
        thread.join().unwrap();
        assert!(woken, "the wait did not end within 10 s");
    }
}
