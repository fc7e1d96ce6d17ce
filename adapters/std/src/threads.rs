//! Serving an accessory with blocking sockets and threads, with no async runtime.
//!
//! One thread accepts connections, and another does the host's own timed work, such as
//! retrying a failed mDNS announcement, with or without connections. Each connection has
//! a thread that drives the core and a thread that reads the socket into a bounded
//! mailbox; the mailbox is also where other threads wake the driver when it has events
//! to send.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use hap_core::database::{Database, OwnedValue, SetValueError};
use hap_core::server::{AcceptError, CompleteError, Event, HapStatus, Token};

use crate::host::{Host, Options, Setup, SharedHost, StartError};
use crate::socket;

/// How many received bytes a connection buffers before its reader waits.
const MAILBOX_LIMIT: usize = 16 * 1024;

/// How long a send may block before the peer, which stopped reading, is dropped.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Binds the socket and starts serving `database` with the state in `setup`.
///
/// Returns once the socket accepts connections. Events for the application arrive on
/// [`Running::events`]; [`Handle`] changes values and shuts the accessory down.
pub fn serve(
    setup: Setup,
    database: Database<'static>,
    options: Options,
) -> Result<Running, StartError> {
    let (listener, local_addr) = socket::listen(options.bind, options.port)?;
    let (sender, events) = mpsc::channel();
    let host = setup.into_host(
        database,
        options,
        local_addr.port(),
        Box::new(move |event| {
            // The application may have stopped listening; the accessory goes on.
            let _ = sender.send(event);
        }),
    )?;
    let handle = Handle {
        host: SharedHost::new(host),
        local_addr,
    };
    let accepting = handle.clone();
    let acceptor = thread::Builder::new()
        .name("hap-accept".into())
        .spawn(move || accept_loop(&accepting, &listener))
        .map_err(|source| StartError::Bind {
            address: local_addr,
            source,
        })?;
    Ok(Running {
        handle,
        events,
        acceptor,
    })
}

/// A served accessory.
#[derive(Debug)]
pub struct Running {
    handle: Handle,
    events: Receiver<Event>,
    acceptor: JoinHandle<()>,
}

impl Running {
    /// The handle, to change values and shut down from any thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Writes, identify requests, reads on demand and pairing changes, in order. The
    /// stream ends when the accessory shuts down.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Waits until [`Handle::shut_down`] was called and every connection has closed.
    pub fn wait(self) {
        if self.acceptor.join().is_err() {
            log::error!("the accepting thread panicked");
        }
    }
}

/// Changes values and shuts the accessory down; cheap to clone and share.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(crate) host: SharedHost,
    local_addr: SocketAddr,
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
    /// once; [`Running::wait`] waits for the threads.
    pub fn shut_down(&self) {
        self.host.lock().shut_down();
        // Unblock the acceptor, which then sees the flag. `[::]` may be listening for
        // IPv4 only in effect: a machine where IPv6 is disabled has no `::1`.
        let port = self.local_addr.port();
        let wake: &[IpAddr] = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            IpAddr::V6(ip) if ip.is_unspecified() => &[
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ],
            ip => &[ip],
        };
        for ip in wake {
            if TcpStream::connect(SocketAddr::new(*ip, port)).is_ok() {
                break;
            }
        }
    }
}

fn accept_loop(handle: &Handle, listener: &TcpListener) {
    let timer = {
        let host = handle.host.clone();
        thread::Builder::new()
            .name("hap-host-timer".into())
            .spawn(move || host_timer_loop(&host))
    };
    let timer = match timer {
        Ok(timer) => Some(timer),
        Err(e) => {
            log::error!("cannot start the host timer thread: {e}");
            None
        }
    };
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if handle.host.lock().is_shutting_down() {
            break;
        }
        connections.retain(|c| !c.is_finished());
        match stream {
            Ok(stream) => {
                let host = handle.host.clone();
                match thread::Builder::new()
                    .name("hap-connection".into())
                    .spawn(move || serve_connection(&host, stream))
                {
                    Ok(thread) => connections.push(thread),
                    Err(e) => log::error!("cannot start a connection thread: {e}"),
                }
            }
            // Out of descriptors, or the peer gave up before accept: keep serving.
            Err(e) => {
                log::warn!("accept failed: {e}");
                thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
    for connection in connections {
        if connection.join().is_err() {
            log::error!("a connection thread panicked");
        }
    }
    if timer.is_some_and(|timer| timer.join().is_err()) {
        log::error!("the host timer thread panicked");
    }
}

/// Wake-ups of the host timer thread: the host deadline changed.
#[derive(Default)]
struct HostSignal {
    woken: Mutex<bool>,
    changed: Condvar,
}

/// Waits for [`Host::poll_host_timeout`] and calls [`Host::handle_host_timeout`], until
/// the host shuts down.
fn host_timer_loop(host: &SharedHost) {
    let signal = Arc::new(HostSignal::default());
    {
        let signal = signal.clone();
        host.lock().set_host_waker(Box::new(move || {
            *signal.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
            signal.changed.notify_all();
        }));
    }
    loop {
        let deadline = {
            let host = host.lock();
            if host.is_shutting_down() {
                return;
            }
            host.poll_host_timeout()
        };
        let mut woken = signal.woken.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *woken || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            woken = match deadline {
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    match signal.changed.wait_timeout(woken, wait) {
                        Ok((woken, _)) => woken,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
                None => signal
                    .changed
                    .wait(woken)
                    .unwrap_or_else(|p| p.into_inner()),
            };
        }
        *woken = false;
        drop(woken);
        // Early after a mere change of the deadline, which does no harm.
        host.lock().handle_host_timeout();
    }
}

/// Received bytes and wake-ups for one connection's driver.
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
    changed: Condvar,
}

#[derive(Default)]
struct MailboxState {
    data: Vec<u8>,
    eof: bool,
    woken: bool,
    closed: bool,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, MailboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        self.lock().woken = true;
        self.changed.notify_all();
    }

    /// Reads the socket into the mailbox until EOF, an error or the driver closes it.
    fn fill(&self, mut stream: TcpStream) {
        let mut buf = [0u8; 4096];
        loop {
            let read = match stream.read(&mut buf) {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(n),
            };
            let mut state = self.lock();
            let Some(n) = read else {
                state.eof = true;
                self.changed.notify_all();
                return;
            };
            // Backpressure: wait while the driver is behind.
            while state.data.len() >= MAILBOX_LIMIT && !state.closed {
                state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.closed {
                return;
            }
            state.data.extend_from_slice(&buf[..n]);
            self.changed.notify_all();
        }
    }
}

fn serve_connection(host: &SharedHost, stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    if let Err(e) = socket::configure_accepted(&stream) {
        log::warn!("cannot set the socket options of {peer:?}: {e}");
    }
    // A peer that stops reading must not hold the connection forever.
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mailbox = Arc::new(Mailbox::default());
    let mut buffers = host.lock().connection_buffers();
    let waker = {
        let mailbox = mailbox.clone();
        Box::new(move || mailbox.wake())
    };
    let accepted = host.lock().accept(buffers.borrow(), waker);
    let mut conn = match accepted {
        Ok(conn) => conn,
        Err(AcceptError::TooManyConnections) => {
            log::info!("refused {peer:?}: too many connections");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        Err(e) => {
            log::error!("refused {peer:?}: {e}");
            return;
        }
    };
    let reader = match stream.try_clone() {
        Ok(read_half) => {
            let mailbox = mailbox.clone();
            thread::Builder::new()
                .name("hap-read".into())
                .spawn(move || mailbox.fill(read_half))
                .ok()
        }
        Err(_) => None,
    };
    if reader.is_none() {
        host.lock().connection_lost(&mut conn);
        return;
    }
    drive(host, &mailbox, &mut conn, &stream);
    let _ = stream.shutdown(Shutdown::Both);
    mailbox.lock().closed = true;
    mailbox.changed.notify_all();
    if let Some(reader) = reader {
        let _ = reader.join();
    }
}

/// The connection's run loop: wait, feed, drain, send.
fn drive(
    host: &SharedHost,
    mailbox: &Mailbox,
    conn: &mut hap_core::server::Connection<'_>,
    mut stream: &TcpStream,
) {
    let mut transmit = Vec::new();
    let mut offer = Vec::new();
    // Bytes the core refused until a wake-up or a timeout.
    let mut stalled = false;
    let mut deadline = host.lock().poll_timeout(conn);
    loop {
        // Wait for something to do.
        let eof = {
            let mut state = mailbox.lock();
            loop {
                let has_input = !stalled && !state.data.is_empty();
                let due = deadline.is_some_and(|d| Instant::now() >= d);
                if has_input || state.woken || state.eof || due {
                    break;
                }
                state = match deadline {
                    Some(d) => {
                        let wait = d.saturating_duration_since(Instant::now());
                        self::wait_timeout(&mailbox.changed, state, wait)
                    }
                    None => mailbox
                        .changed
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner()),
                };
            }
            // After a wake-up the core may take bytes it refused.
            state.woken = false;
            offer.clear();
            offer.extend_from_slice(&state.data);
            state.eof
        };

        let mut host_guard = host.lock();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            host_guard.handle_timeout(conn);
        }
        let exchange = host_guard.handle_input(conn, &offer, &mut transmit);
        let offered = exchange.taken;
        stalled = offered < offer.len() && !exchange.close && !exchange.saturated;
        deadline = host_guard.poll_timeout(conn);
        drop(host_guard);

        if offered > 0 {
            let mut state = mailbox.lock();
            state.data.drain(..offered);
            mailbox.changed.notify_all();
        }
        if !transmit.is_empty() {
            if stream.write_all(&transmit).is_err() {
                host.lock().connection_lost(conn);
                return;
            }
            transmit.clear();
        }
        if exchange.close {
            return;
        }
        let unprocessed = offer.len() - offered;
        if eof && (unprocessed == 0 || stalled) {
            host.lock().connection_lost(conn);
            return;
        }
    }
}

fn wait_timeout<'a>(
    changed: &Condvar,
    state: MutexGuard<'a, MailboxState>,
    wait: std::time::Duration,
) -> MutexGuard<'a, MailboxState> {
    match changed.wait_timeout(state, wait) {
        Ok((state, _)) => state,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
