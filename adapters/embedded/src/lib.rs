//! A HomeKit accessory on embedded sockets: `no_std`, no heap, caller-provided buffers and
//! a fixed number of connection slots.
//!
//! This crate only moves bytes between the sockets of an [`embedded_nal::TcpFullStack`]
//! and a [`hap_core::server::Server`], keeps the time-outs, and hands state to the
//! application's storage; and, to be found, between a UDP socket of an
//! [`embedded_nal::UdpFullStack`] and the core's mDNS responder
//! ([`hap_core::mdns::MdnsResponder`]). TLV8, cryptography, HTTP, JSON and DNS all live
//! in `hap-core`.
//!
//! # The loop
//!
//! Build an [`Accessory`] once, with one [`SlotBuffers`] per connection it may serve at a
//! time, and call [`Accessory::poll`] from the main loop: each call accepts connections,
//! sends what is waiting, reads what arrived, feeds it to the core, passes events to the
//! application, and applies time-outs. `embedded-nal` reports no readiness, so poll on a
//! regular tick (a few milliseconds while connections are open) and no later than the
//! instant `poll` returns. Answer [`Event::WriteRequest`] with
//! [`Accessory::complete_write`], [`Event::Read`] with [`Accessory::complete_read`] (or
//! [`Accessory::set_value`]), and write responses with [`Accessory::set_value`]; the next
//! poll drains the connections the core names ([`Server::poll_wake`]) and tells
//! subscribers.
//!
//! ```
//! use embedded_nal::TcpFullStack;
//! use hap_core::server::{Event, Server};
//! use hap_core::state::AccessoryState;
//! use hap_core::time::Instant;
//! use hap_embedded::{Accessory, Error, SlotStorage};
//! use rand_core::{CryptoRng, RngCore};
//!
//! fn run<T: TcpFullStack>(
//!     stack: &mut T,
//!     server: Server<'_>,
//!     clock: impl Fn() -> Instant,
//!     rng: &mut (impl RngCore + CryptoRng),
//!     mut flash: impl FnMut(&AccessoryState) -> bool,
//! ) -> Result<(), Error<T::Error>> {
//!     // Two connections at a time; often a `static`, for example in a `StaticCell`.
//!     let mut storage: [SlotStorage<4096, 1024, 4096, 16>; 2] =
//!         [SlotStorage::new(), SlotStorage::new()];
//!     let buffers = storage.each_mut().map(SlotStorage::buffers);
//!     let mut accessory = Accessory::new(stack, 51826, server, buffers)?;
//!     loop {
//!         let mut on = None;
//!         let _next = accessory.poll(stack, clock(), rng, &mut flash, |event| {
//!             if let Event::Write { value, .. } = event {
//!                 on = Some(value);
//!             }
//!         })?;
//!         if let Some(_value) = on {
//!             // Switch the light.
//!         }
//!         // Sleep for a tick, or until `_next` if that is sooner.
//!     }
//! }
//! ```
//!
//! # Advertising over mDNS
//!
//! Controllers find the accessory by browsing for `_hap._tcp` over multicast DNS. With
//! no responder in the network stack, let the accessory advertise itself: open a
//! [`UdpResponder`] on the UDP stack (port 5353), start the accessory with it through
//! [`Accessory::with_responder`], and call [`Accessory::poll_mdns`] after each
//! [`Accessory::poll`]. The responder probes for its names, announces them, answers
//! queries, and announces the new `sf` when the accessory is paired or unpaired. Give
//! it new addresses with [`Accessory::set_addresses`] (after a DHCP renewal, say), and
//! withdraw it with [`Accessory::withdraw_mdns`] (then poll until
//! [`Accessory::is_mdns_withdrawn`]) before [`Accessory::shut_down`]. The
//! UDP stack must join the mDNS groups and send with a TTL of 255: see
//! [what the UDP stack must do](UdpResponder#what-the-udp-stack-must-do).
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use embedded_nal::{TcpFullStack, UdpFullStack};
//! use hap_core::mdns::MdnsEvent;
//! use hap_core::server::Server;
//! use hap_core::time::Instant;
//! use hap_embedded::{Accessory, ServiceInfo, SlotStorage, UdpResponder};
//! use rand_core::{CryptoRng, RngCore};
//!
//! // One stack for TCP and UDP, as most embedded-nal stacks are.
//! fn run<T: TcpFullStack + UdpFullStack>(
//!     stack: &mut T,
//!     server: Server<'_>,
//!     info: ServiceInfo<'_>,
//!     clock: impl Fn() -> Instant,
//!     rng: &mut (impl RngCore + CryptoRng),
//! ) -> Result<(), &'static str> {
//!     let mut storage: [SlotStorage<4096, 1024, 4096, 16>; 2] =
//!         [SlotStorage::new(), SlotStorage::new()];
//!     let buffers = storage.each_mut().map(SlotStorage::buffers);
//!     let address = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 40)); // from DHCP
//!     let mdns = UdpResponder::open(stack, "light-3C71BF12AB34", &[address])
//!         .map_err(|_| "cannot bind port 5353")?;
//!     let mut accessory = Accessory::with_responder(stack, 51826, server, buffers, mdns, info)
//!         .map_err(|_| "cannot listen")?;
//!     let mut flash = |_: &_| true;
//!     loop {
//!         let now = clock();
//!         let _next = accessory.poll(stack, now, rng, &mut flash, |_event| {});
//!         let _next_mdns = accessory.poll_mdns(stack, now, rng, |event| {
//!             if let MdnsEvent::Renamed { .. } = event {
//!                 // Store the new name, and use it as the Name characteristic.
//!             }
//!         });
//!         // Sleep for a tick, or until the earlier deadline if that is sooner.
//!     }
//! }
//! ```
//!
//! Users of a stack with its own responder (lwIP's, ESP-IDF's) implement
//! [`Responder`] for it instead and pass that to
//! [`Accessory::with_responder`]; the accessory calls it when the advertisement changes.
//!
//! # Starting up
//!
//! What the device stores is its [`AccessoryState`] (through [`Persist`]), its setup code
//! and setup id if it shows them, and its [`ConfigNumber`]. The core decides what to do
//! with what storage held, as the host adapters do: [`Provisioning::load_or_create`]
//! creates a new accessory when nothing is stored and makes a new verifier when the setup
//! code changed (it needs `alloc`, for SRP; a device without a heap ships with its
//! state made at the factory). The configuration number comes from the database's shape:
//! pass the stored one in [`ServiceInfo::config`] and store
//! [`Accessory::config_number`] when it differs.
//!
//! ```
//! use hap_core::setup::{Provisioning, SetupCode};
//! # use rand_chacha::rand_core::SeedableRng;
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! # let load_from_flash = || None;
//! # let mut store_in_flash = |_: &Provisioning| {};
//! let code: SetupCode = "314-15-926".parse().unwrap();
//! let provisioned = Provisioning::load_or_create(load_from_flash(), Some(code), None, &mut rng);
//! if provisioned.must_store {
//!     store_in_flash(&provisioned.setup);
//! }
//! let state = provisioned.setup.state; // for `Server::new`
//! # let _ = state;
//! ```
//!
//! [`Provisioning::load_or_create`]: hap_core::setup::Provisioning::load_or_create
//!
//! # Why `embedded-nal`
//!
//! [`TcpFullStack`] is non-blocking (`nb`) and covers the whole life of a server socket:
//! `socket`, `bind`, `listen`, `accept`, `receive`, `send`, `close`. One poll loop can
//! therefore serve a fixed number of slots with no executor, no task spawning and no
//! mutex around the shared [`Server`], which matches the core's poll-style run loop.
//!
//! The alternatives fit less well:
//!
//! - `embedded-io`'s `Read` and `Write` describe one byte stream. They have no way to
//!   open, listen or accept, so an adapter would still need a stack-specific accept; and
//!   they block, unless the stack also implements the optional `ReadReady` and
//!   `WriteReady`, so in general one thread cannot wait on several sockets with them.
//! - `embedded-io-async` needs an executor to drive its futures, and then either one task
//!   per connection sharing the `Server` through a mutex (or a `RefCell` never held
//!   across an `await`), or one task selecting over every connection's pending read.
//!
//! # Memory
//!
//! Each slot owns the buffers of one connection ([`ConnectionBuffers`], with the core's
//! minimums [`MIN_INPUT_LEN`], [`MIN_SCRATCH_LEN`] and [`MIN_OUTPUT_LEN`]) plus two of its
//! own: `receive`, where bytes read from the socket wait until the core takes them (any
//! length; it is the read size), and `pending`, where bytes the socket did not take wait
//! to be sent (at least as long as `output`, since the core hands over a whole output
//! buffer at once). [`SlotStorage`] holds all of them in one value.
//!
//! When a connection ends, its buffers are wiped and the slot serves the next one.
//!
//! # Connections and limits
//!
//! The accessory serves as many connections at once as it has slots, or fewer if the
//! server's [`Config::max_connections`](hap_core::server::Config::max_connections) is
//! lower; HAP asks for at least 8, and the core's default is 16. When every slot is
//! taken, a new connection takes the place of the one idle longest if that one has been
//! idle for [`Config::idle_eviction`](hap_core::server::Config::idle_eviction) (60 s),
//! unverified ones first, as HomeKitADK does; otherwise it is closed at once. No timer
//! closes idle connections otherwise, so a home hub's connection lasts.
//!
//! A slot's buffers bound what one connection can do, at the core's minimums: requests of
//! up to 1 KiB (a write of about 25 values), and as many subscriptions as the slot has
//! entries (56 bytes each). A bridge needs larger `input` and `scratch` for iOS's large
//! writes and one subscription per evented characteristic; the host adapters give 32 KiB
//! requests.
//!
//! # Value limits
//!
//! Without a heap (this crate asks `hap-core` for no `alloc`), every value is held
//! inline, so the limits are smaller than on a host:
//!
//! - strings: up to [`STRING_CAPACITY`](hap_core::database::STRING_CAPACITY) (256)
//!   bytes, as everywhere;
//! - TLV8 and data values: up to [`BYTES_CAPACITY`](hap_core::database::BYTES_CAPACITY),
//!   256 bytes here (4096 with `alloc`). A longer write fails with -70410, and
//!   [`OwnedValue::tlv8`] refuses a longer value from the application.
//!
//! Each value costs 272 bytes (on 64-bit targets; a little less on 32-bit ones) in each
//! database slot, in each of a connection's four queued [`Event`]s, and in each of the
//! server's 16 logged button presses, whatever its format, and no more: a value's base64
//! (344 bytes at most) fits one chunk of a read and one EVENT at the core's minimum
//! output, so no slot needs more than [`MIN_OUTPUT_LEN`] of output for it. A write
//! decodes through 600 bytes of stack. Raising the limit would raise the size of every
//! value, which is why it stays at HAP's string maximum here; a build that enables
//! `alloc` gets the host's limit, held on the heap.
#![no_std]
#![forbid(unsafe_code)]

use core::net::IpAddr;

use embedded_nal::{nb, TcpClientStack, TcpFullStack, UdpFullStack};
use hap_core::catalog::Category;
use hap_core::database::config::ConfigNumber;
use hap_core::database::{OwnedValue, SetValueError};
use hap_core::mdns::responder::{MAX_ADDRESSES, MAX_LABEL, MDNS_PORT, MIN_TRANSMIT_BUFFER};
use hap_core::mdns::{
    host_label_checked, Advertisement, Advertiser, InterfaceId, MdnsError, MdnsEvent,
    MdnsResponder, NoResponder, Responder,
};
use hap_core::server::{
    BuffersTooSmall, CompleteError, Connection, ConnectionBuffers, Event, HapStatus, Output,
    Server, Subscription, Token, MIN_INPUT_LEN, MIN_OUTPUT_LEN, MIN_SCRATCH_LEN,
};
use hap_core::setup::SetupId;
use hap_core::state::AccessoryState;
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_core::{CryptoRng, RngCore};

/// The length of [`SlotStorage`]'s receive buffer.
pub const RECEIVE_LEN: usize = 1024;

/// How often one slot goes round send, drain, read and feed in one poll.
const ROUNDS: usize = 8;
/// How many outputs one drain takes from a connection before moving on.
const OUTPUTS_PER_DRAIN: usize = 64;
/// How many times, per slot, one poll drains connections that the core names
/// ([`Server::poll_wake`]) before it leaves the rest to the next poll: draining one can
/// name others again (a stored pairing change, a written value).
const WAKE_ROUNDS: usize = 4;

/// Stores the accessory's state, for example in flash.
///
/// Called when a pairing change must be stored before the controller hears about it.
/// Closures `FnMut(&AccessoryState) -> bool` implement it.
pub trait Persist {
    /// Stores `state` and returns whether it was stored. On `false` the change is undone
    /// in memory and the controller gets an error.
    fn store(&mut self, state: &AccessoryState) -> bool;
}

impl<F: FnMut(&AccessoryState) -> bool> Persist for F {
    fn store(&mut self, state: &AccessoryState) -> bool {
        self(state)
    }
}

/// The buffers of one connection slot; see the [crate docs](crate#memory).
#[derive(Debug)]
pub struct SlotBuffers<'b> {
    /// Received requests, decrypted: at least [`MIN_INPUT_LEN`].
    pub input: &'b mut [u8],
    /// The body of the request being served: at least [`MIN_SCRATCH_LEN`].
    pub scratch: &'b mut [u8],
    /// Responses waiting to be taken: at least [`MIN_OUTPUT_LEN`].
    pub output: &'b mut [u8],
    /// Event subscriptions; the length is how many one controller may have.
    pub subscriptions: &'b mut [Subscription],
    /// Bytes read from the socket and not yet taken by the core: at least one byte; its
    /// length is the most one read asks for.
    pub receive: &'b mut [u8],
    /// Bytes the socket did not take yet: at least as long as `output`.
    pub pending: &'b mut [u8],
}

/// The memory of one slot, for placing in a `static` or on the stack: `INPUT`, `SCRATCH`
/// and `OUTPUT` bytes for the core's buffers, `OUTPUT` again for bytes waiting for the
/// socket, [`RECEIVE_LEN`] for received bytes, and `SUBSCRIPTIONS` subscriptions.
#[derive(Debug)]
pub struct SlotStorage<
    const INPUT: usize,
    const SCRATCH: usize,
    const OUTPUT: usize,
    const SUBSCRIPTIONS: usize,
> {
    input: [u8; INPUT],
    scratch: [u8; SCRATCH],
    output: [u8; OUTPUT],
    pending: [u8; OUTPUT],
    receive: [u8; RECEIVE_LEN],
    subscriptions: [Subscription; SUBSCRIPTIONS],
}

impl<const INPUT: usize, const SCRATCH: usize, const OUTPUT: usize, const SUBSCRIPTIONS: usize>
    SlotStorage<INPUT, SCRATCH, OUTPUT, SUBSCRIPTIONS>
{
    /// Zeroed storage.
    pub const fn new() -> Self {
        Self {
            input: [0; INPUT],
            scratch: [0; SCRATCH],
            output: [0; OUTPUT],
            pending: [0; OUTPUT],
            receive: [0; RECEIVE_LEN],
            subscriptions: [Subscription::EMPTY; SUBSCRIPTIONS],
        }
    }

    /// The storage as the buffers of one slot.
    pub fn buffers(&mut self) -> SlotBuffers<'_> {
        SlotBuffers {
            input: &mut self.input,
            scratch: &mut self.scratch,
            output: &mut self.output,
            subscriptions: &mut self.subscriptions,
            receive: &mut self.receive,
            pending: &mut self.pending,
        }
    }
}

impl<const INPUT: usize, const SCRATCH: usize, const OUTPUT: usize, const SUBSCRIPTIONS: usize>
    Default for SlotStorage<INPUT, SCRATCH, OUTPUT, SUBSCRIPTIONS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// What the accessory advertises over mDNS besides what the server knows (the device id
/// and whether it is paired).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceInfo<'a> {
    /// The instance name, usually the accessory's name.
    pub name: &'a str,
    /// The model, advertised as `md`.
    pub model: &'a str,
    /// The accessory category, advertised as `ci`, such as [`Category::LIGHTBULB`].
    pub category: Category,
    /// The configuration number as last stored (18 bytes of flash), or
    /// [`ConfigNumber::default`] when nothing is stored. The accessory compares it with
    /// the database's shape at start, by the same
    /// [`ConfigNumber::observe`] as the host adapters, and advertises the result as
    /// `c#`: controllers re-read `/accessories` only when it changes, which it does
    /// whenever the shape or a Firmware Revision changes (a firmware update, say).
    /// Store [`Accessory::config_number`] when it differs from this.
    pub config: ConfigNumber,
    /// The setup id, from which `sh` is derived.
    pub setup_id: Option<SetupId>,
}

/// Why the accessory could not start, or why the listening socket failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The stack failed to open, bind or listen on the listening socket, or to accept on
    /// it. From [`Accessory::poll`] the connections have still been served; poll again.
    Stack(E),
    /// The mDNS responder refused its configuration: a host label or instance name it
    /// cannot advertise, or a TXT record that does not fit (see [`UdpResponder`]).
    Mdns(MdnsError),
    /// A slot's buffer is below its minimum.
    Buffers {
        /// The slot's index.
        slot: usize,
        /// Which buffer (`"input"`, `"scratch"`, `"output"`, `"receive"` or
        /// `"pending"`) and its minimum.
        too_small: BuffersTooSmall,
    },
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Stack(error) => write!(f, "network stack error: {error:?}"),
            Error::Mdns(error) => write!(f, "mDNS: {error}"),
            Error::Buffers { slot, too_small } => write!(f, "slot {slot}: {too_small}"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for Error<E> {
    // The stack's error type only promises `Debug`, so it cannot be a source.
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Buffers { too_small, .. } => Some(too_small),
            Error::Mdns(error) => Some(error),
            Error::Stack(_) => None,
        }
    }
}

/// A HomeKit accessory serving up to `N` connections at a time on a
/// [`TcpFullStack`], announced through the responder `M`: none by default, the core's
/// responder on a UDP socket with [`UdpResponder`], or the application's own.
pub struct Accessory<'d, 'b, T: TcpFullStack, const N: usize, M: Responder = NoResponder> {
    server: Server<'d>,
    listener: T::TcpSocket,
    slots: [Slot<'b, T::TcpSocket>; N],
    mdns: Mdns<'d, M>,
    next_id: u32,
}

impl<T: TcpFullStack, const N: usize, M: Responder> core::fmt::Debug
    for Accessory<'_, '_, T, N, M>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Accessory")
            .field("port", &self.mdns.port)
            .field("slots", &N)
            .field("connections", &self.server.connection_count())
            .finish_non_exhaustive()
    }
}

impl<'d, 'b, T: TcpFullStack, const N: usize> Accessory<'d, 'b, T, N, NoResponder> {
    /// Listens on `port` and serves `server` with one slot per entry of `buffers`,
    /// advertising nothing.
    pub fn new(
        stack: &mut T,
        port: u16,
        server: Server<'d>,
        buffers: [SlotBuffers<'b>; N],
    ) -> Result<Self, Error<T::Error>> {
        Self::start(stack, port, server, buffers, NoResponder, None)
    }
}

impl<'d, 'b, T: TcpFullStack, const N: usize, M: Responder> Accessory<'d, 'b, T, N, M> {
    /// Listens on `port` and serves `server` with one slot per entry of `buffers`, and
    /// announces the accessory through `responder`: on the first poll, and again whenever
    /// it becomes paired or unpaired. With a [`UdpResponder`], also call
    /// [`Accessory::poll_mdns`] after each poll.
    pub fn with_responder(
        stack: &mut T,
        port: u16,
        server: Server<'d>,
        buffers: [SlotBuffers<'b>; N],
        responder: M,
        info: ServiceInfo<'d>,
    ) -> Result<Self, Error<T::Error>> {
        Self::start(stack, port, server, buffers, responder, Some(info))
    }

    fn start(
        stack: &mut T,
        port: u16,
        server: Server<'d>,
        buffers: [SlotBuffers<'b>; N],
        responder: M,
        info: Option<ServiceInfo<'d>>,
    ) -> Result<Self, Error<T::Error>> {
        let mut server = server;
        // Room is counted in slots, so that eviction starts when the slots are full.
        server.limit_connections(N);
        for (slot, buffers) in buffers.iter().enumerate() {
            check(buffers).map_err(|too_small| Error::Buffers { slot, too_small })?;
        }
        let mut listener = stack.socket().map_err(Error::Stack)?;
        let listening = stack
            .bind(&mut listener, port)
            .and_then(|()| stack.listen(&mut listener));
        if let Err(error) = listening {
            let _ = stack.close(listener);
            return Err(Error::Stack(error));
        }
        let config = info.map(|info| {
            let mut config = info.config;
            config.observe(server.database().shape());
            config
        });
        Ok(Self {
            server,
            listener,
            slots: buffers.map(Slot::new),
            mdns: Mdns {
                // Announces on the first poll, whatever its time.
                advertiser: Advertiser::new(responder),
                info,
                config: config.unwrap_or_default(),
                port,
            },
            next_id: 0,
        })
    }

    /// The server: the state, the database and the configuration.
    pub fn server(&self) -> &Server<'d> {
        &self.server
    }

    /// The port the accessory listens on.
    pub fn port(&self) -> u16 {
        self.mdns.port
    }

    /// What the accessory advertises, if it was given a responder.
    pub fn advertisement(&self) -> Option<Advertisement<'d>> {
        self.mdns.advertisement(self.server.state())
    }

    /// The responder, for example to let it answer queries.
    pub fn responder_mut(&mut self) -> &mut M {
        self.mdns.advertiser.responder_mut()
    }

    /// The configuration number advertised as `c#`, for the database's shape: from
    /// [`ServiceInfo::config`], raised if the shape changed since. Store it when it
    /// differs from what [`ServiceInfo::config`] held, so that the next start agrees.
    /// Without a responder there is nothing to advertise, and it stays the default.
    pub fn config_number(&self) -> ConfigNumber {
        self.mdns.config
    }

    /// Sets a characteristic's value from the application (see
    /// [`Server::set_value`]), which also answers an [`Event::Read`] or a write
    /// response. The next [`poll`](Self::poll) tells subscribers.
    pub fn set_value(
        &mut self,
        aid: u64,
        iid: u64,
        value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        // The core names the connections to poll; the next poll drains them.
        self.server.set_value(aid, iid, value)
    }

    /// Answers a confirmed write ([`Event::WriteRequest`]) under its token, as
    /// [`Server::complete_write`]: `Ok(())` commits the values, `Err(status)` fails every
    /// item with it (such as [`HapStatus::ServiceCommunicationFailure`] for a device that
    /// does not answer). The next [`poll`](Self::poll) sends the answer and the events.
    pub fn complete_write(
        &mut self,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        self.server.complete_write(token, result)
    }

    /// Answers a read on demand ([`Event::Read`]) under its token with a value or a
    /// status, as [`Server::complete_read`]. The next [`poll`](Self::poll) sends it.
    pub fn complete_read(
        &mut self,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        self.server.complete_read(token, result)
    }

    /// One pass: accepts connections, sends and receives, feeds the core, stores the
    /// state when asked, applies time-outs and announces over mDNS. Events for the
    /// application go to `events`.
    ///
    /// Returns the latest instant at which to poll again (sooner if the network may
    /// have something: `embedded-nal` does not say), or `None` if no time-out is
    /// pending. An error concerns the listening socket only; the connections have been
    /// served all the same.
    pub fn poll<R, P, E>(
        &mut self,
        stack: &mut T,
        now: Instant,
        rng: &mut R,
        persist: &mut P,
        mut events: E,
    ) -> Result<Option<Instant>, Error<T::Error>>
    where
        R: RngCore + CryptoRng,
        P: Persist + ?Sized,
        E: FnMut(Event),
    {
        let Self {
            server,
            listener,
            slots,
            mdns,
            next_id,
        } = self;
        let mut pass = Pass {
            server,
            stack,
            now,
            rng,
            persist,
            events: &mut events,
            mdns,
            again: false,
        };
        // Connections the application answered (set_value, completions) may go on.
        pass.wake(slots);
        // Serve the open connections first, so that slots whose peers left are free
        // for the connections waiting to be accepted.
        for slot in slots.iter_mut() {
            pass.service(slot);
        }
        let accepted = pass.accept(listener, slots, next_id);
        for slot in slots.iter_mut() {
            if core::mem::take(&mut slot.fresh) {
                pass.service(slot);
            }
        }
        // Other connections may have news from what these did: the core names them.
        pass.wake(slots);
        let again = pass.again;
        mdns.run(server.state(), now);

        let mut next = mdns.poll_timeout();
        for slot in slots.iter() {
            if let Link::Open { conn, .. } = &slot.link {
                // A deadline that has passed was handled in this pass; if it is still
                // there, the connection waits for the socket, not for the time.
                let deadline = server.poll_timeout(conn).filter(|&at| at > now);
                next = earliest(next, deadline);
            }
        }
        if again {
            next = Some(now);
        }
        accepted.map_err(Error::Stack)?;
        Ok(next)
    }

    /// Closes every connection and the listening socket, withdraws the mDNS
    /// advertisement, and returns the server. A change still waiting for storage is
    /// stored through `persist`. A [`UdpResponder`] needs its stack to say goodbye: call
    /// [`Accessory::withdraw_mdns`] first, and [`Accessory::poll_mdns`] until
    /// [`Accessory::is_mdns_withdrawn`].
    pub fn shut_down<R, P, E>(
        self,
        stack: &mut T,
        now: Instant,
        rng: &mut R,
        persist: &mut P,
        mut events: E,
    ) -> Server<'d>
    where
        R: RngCore + CryptoRng,
        P: Persist + ?Sized,
        E: FnMut(Event),
    {
        let Self {
            mut server,
            listener,
            mut slots,
            mut mdns,
            ..
        } = self;
        let mut pass = Pass {
            server: &mut server,
            stack,
            now,
            rng,
            persist,
            events: &mut events,
            mdns: &mut mdns,
            again: false,
        };
        for slot in slots.iter_mut() {
            pass.teardown(slot, End::Lost);
        }
        if mdns.info.is_some() {
            let _ = mdns.advertiser.goodbye();
        }
        let _ = stack.close(listener);
        server
    }
}

/// The length of [`UdpResponder`]'s datagram buffer: the payload of a UDP datagram in
/// IPv4 on a 1500-byte link, which also holds the largest datagram the core writes
/// ([`MIN_TRANSMIT_BUFFER`]). A longer datagram arrives cut short and is dropped.
pub const MDNS_DATAGRAM_LEN: usize = 1472;

const _: () = assert!(MDNS_DATAGRAM_LEN >= MIN_TRANSMIT_BUFFER);

/// The one interface a [`UdpResponder`] serves: embedded-nal sockets do not say which
/// interface a datagram came in on, so the stack's interface is the responder's only one.
const MDNS_INTERFACE: InterfaceId = InterfaceId(0);
/// How many datagrams one [`Accessory::poll_mdns`] reads, so that a flood of queries
/// cannot hold up the connections.
const DATAGRAMS_PER_POLL: usize = 16;
/// How many datagrams one [`Accessory::poll_mdns`] sends; more wait for the next poll,
/// which is then due at once.
const TRANSMITS_PER_POLL: usize = 32;

/// The core's [`MdnsResponder`] on one UDP socket of the application's
/// [`UdpFullStack`], bound to port 5353: the accessory advertises itself, with no other
/// responder on the device. Open it with [`UdpResponder::open`], hand it to
/// [`Accessory::with_responder`], and drive it with [`Accessory::poll_mdns`]; see the
/// [crate docs](crate#advertising-over-mdns).
///
/// # What the UDP stack must do
///
/// The responder only sees the datagrams the stack hands to the socket, and its answers
/// only reach other hosts if the stack sends them as mDNS expects (RFC 6762 §11). The
/// stack must:
///
/// - let a socket bind port 5353 ([`MDNS_PORT`]), also when another socket (a host's
///   own responder) holds it (`SO_REUSEADDR`/`SO_REUSEPORT` on a host);
/// - deliver to that socket the datagrams sent to 224.0.0.251 and to ff02::fb port 5353,
///   which means joining those groups on the interface (IGMP for IPv4, MLD for IPv6):
///   smoltcp's `Interface::join_multicast_group`, lwIP's `igmp_joingroup` and
///   `mld6_joingroup`, `IP_ADD_MEMBERSHIP`/`IPV6_JOIN_GROUP` on a host; and a Wi-Fi
///   driver must not filter those groups out;
/// - send datagrams to those groups with a TTL (IPv4) and hop limit (IPv6) of 255, and
///   from port 5353;
/// - report each datagram's real source address and port from
///   [`UdpClientStack::receive`](embedded_nal::UdpClientStack::receive): the responder answers a query from another port
///   (a one-shot query, §6.7) by unicast to that address, and ignores answers that did
///   not come from port 5353;
/// - drop datagrams whose source is not on the local link: an address outside the
///   interface's own prefixes (RFC 6762 §11; a host's responder checks this, and the
///   core's does not, as it does not know the prefixes). A router does not forward
///   224.0.0.251 or ff02::fb, but a unicast datagram to port 5353 from afar would
///   otherwise be answered, and its records could claim our names. Where the stack
///   does not filter, wrap its `receive` and drop a datagram whose source does not
///   share the device's own address and prefix (IPv4), or is not link-local `fe80::/10`
///   or within an IPv6 prefix of the device.
///
/// A stack with only IPv4 leaves the IPv6 datagrams unsent (their `send_to` fails;
/// [`Accessory::poll_mdns`] reports it) and advertises only its IPv4 address; list only
/// the addresses the stack has in [`UdpResponder::open`] and
/// [`Accessory::set_addresses`].
pub struct UdpResponder<S> {
    /// The socket on port 5353, until the goodbye [`Accessory::withdraw_mdns`] starts
    /// was sent and the socket closed.
    socket: Option<S>,
    /// [`Accessory::withdraw_mdns`] started the goodbye: nothing more is advertised.
    withdrawing: bool,
    host_label: heapless::String<MAX_LABEL>,
    /// Made at the first announcement, when the accessory knows what it advertises.
    responder: Option<MdnsResponder>,
    addresses: heapless::Vec<IpAddr, MAX_ADDRESSES>,
    /// The addresses (or the interface, at first) are still to be given to the responder.
    addresses_due: bool,
    /// The accessory announced since the last poll: its advertisement changed.
    announce_due: bool,
    /// Received and sent datagrams, one at a time.
    datagram: [u8; MDNS_DATAGRAM_LEN],
}

impl<S> core::fmt::Debug for UdpResponder<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpResponder")
            .field("open", &self.socket.is_some())
            .field("host_label", &self.host_label)
            .field("responder", &self.responder)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl<S> UdpResponder<S> {
    /// Opens a socket on `udp` bound to port 5353, for the host `<host_label>.local`
    /// with `addresses` (the first [`MAX_ADDRESSES`]; list the stack's own, IPv4 first).
    /// Nothing is sent before the accessory's first [`Accessory::poll`] and
    /// [`Accessory::poll_mdns`].
    ///
    /// The host label is 1 to 63 letters, digits and hyphens, unique on the link, and
    /// usually made from the device id or a MAC address, such as `light-3C71BF12AB34`;
    /// another is refused with [`Error::Mdns`]. A conflict renames it
    /// ([`MdnsEvent::Renamed`]).
    pub fn open<U>(
        udp: &mut U,
        host_label: &str,
        addresses: &[IpAddr],
    ) -> Result<Self, Error<U::Error>>
    where
        U: UdpFullStack<UdpSocket = S>,
    {
        let host_label = host_label_checked(host_label).map_err(Error::Mdns)?;
        let mut socket = udp.socket().map_err(Error::Stack)?;
        if let Err(error) = udp.bind(&mut socket, MDNS_PORT) {
            let _ = udp.close(socket);
            return Err(Error::Stack(error));
        }
        Ok(Self {
            socket: Some(socket),
            host_label,
            responder: None,
            addresses: addresses.iter().take(MAX_ADDRESSES).copied().collect(),
            addresses_due: true,
            announce_due: false,
            withdrawing: false,
            datagram: [0; MDNS_DATAGRAM_LEN],
        })
    }

    /// The responder, once the accessory announced for the first time: its current
    /// names ([`MdnsResponder::instance_name`], [`MdnsResponder::host_name`]).
    pub fn responder(&self) -> Option<&MdnsResponder> {
        self.responder.as_ref()
    }

    /// One pass over the socket, advertising `advertisement`; see
    /// [`Accessory::poll_mdns`].
    fn poll<U, R, E>(
        &mut self,
        udp: &mut U,
        advertisement: &Advertisement<'_>,
        now: Instant,
        rng: &mut R,
        mut events: E,
    ) -> Result<Option<Instant>, Error<U::Error>>
    where
        U: UdpFullStack<UdpSocket = S>,
        R: RngCore,
        E: FnMut(MdnsEvent),
    {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(None);
        };
        let mut failure = None;
        if self.withdrawing {
            // The goodbye is under way: what the accessory announced is not applied.
            self.announce_due = false;
            self.addresses_due = false;
        }
        if core::mem::take(&mut self.announce_due) {
            match self.responder.as_mut() {
                Some(responder) => {
                    if let Err(error) = responder.set_advertisement(advertisement, now) {
                        failure = Some(Error::Mdns(error));
                    }
                }
                // The first announcement: now the accessory knows what it advertises.
                None => match MdnsResponder::new(&self.host_label, advertisement) {
                    Ok(responder) => self.responder = Some(responder),
                    Err(error) => failure = Some(Error::Mdns(error)),
                },
            }
        }
        let Some(responder) = self.responder.as_mut() else {
            // Not announced yet (the accessory's first poll does), or refused.
            return failure.map_or(Ok(None), Err);
        };
        if core::mem::take(&mut self.addresses_due) {
            if let Err(error) = responder.set_interface(MDNS_INTERFACE, &self.addresses, now, rng) {
                failure.get_or_insert(Error::Mdns(error));
            }
        }
        // Whether datagrams may be left for the next poll, which is then due at once.
        let mut more = true;
        for _ in 0..DATAGRAMS_PER_POLL {
            match udp.receive(socket, &mut self.datagram) {
                Ok((len, source)) => {
                    let datagram = self.datagram.get(..len).unwrap_or(&self.datagram);
                    // A malformed or foreign datagram is dropped; there is no log here.
                    let _ = responder.handle_datagram(now, MDNS_INTERFACE, source, datagram, rng);
                }
                Err(nb::Error::WouldBlock) => {
                    more = false;
                    break;
                }
                Err(nb::Error::Other(error)) => {
                    failure.get_or_insert(Error::Stack(error));
                    more = false;
                    break;
                }
            }
        }
        if responder.poll_timeout().is_some_and(|at| at <= now) {
            responder.handle_timeout(now, rng);
        }
        let (sent_all, send_failure) = transmit(udp, socket, responder, &mut self.datagram, now);
        if let Some(error) = send_failure {
            failure.get_or_insert(Error::Stack(error));
        }
        while let Some(event) = responder.poll_event() {
            events(event);
        }
        let next = if sent_all && !more {
            responder.poll_timeout()
        } else {
            Some(now)
        };
        if self.withdrawing && responder.is_withdrawn() {
            if let Some(socket) = self.socket.take() {
                if let Err(error) = udp.close(socket) {
                    failure.get_or_insert(Error::Stack(error));
                }
            }
            return failure.map_or(Ok(None), Err);
        }
        failure.map_or(Ok(next), Err)
    }

    /// Starts the goodbye and sends its first round; see [`Accessory::withdraw_mdns`].
    fn withdraw<U>(&mut self, udp: &mut U, now: Instant) -> Result<Option<Instant>, Error<U::Error>>
    where
        U: UdpFullStack<UdpSocket = S>,
    {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(None);
        };
        self.withdrawing = true;
        let Some(responder) = self.responder.as_mut() else {
            // Never announced: nothing to withdraw.
            let closed = self
                .socket
                .take()
                .map_or(Ok(()), |socket| udp.close(socket));
            return closed.map(|()| None).map_err(Error::Stack);
        };
        responder.goodbye(now);
        let (sent_all, failure) = transmit(udp, socket, responder, &mut self.datagram, now);
        // The second round is due 250 ms later: the caller's polls send it.
        let next = if sent_all {
            responder.poll_timeout()
        } else {
            Some(now)
        };
        failure.map_or(Ok(next), |error| Err(Error::Stack(error)))
    }
}

/// Sends the datagrams due at `now`, up to [`TRANSMITS_PER_POLL`]. Returns whether none
/// is left, and the first failure of the stack. A datagram the stack cannot take now is
/// dropped: mDNS repeats its announcements, and a querier asks again.
fn transmit<U: UdpFullStack>(
    udp: &mut U,
    socket: &mut U::UdpSocket,
    responder: &mut MdnsResponder,
    buf: &mut [u8],
    now: Instant,
) -> (bool, Option<U::Error>) {
    let mut failure = None;
    for _ in 0..TRANSMITS_PER_POLL {
        let Some(transmit) = responder.poll_transmit(now, buf) else {
            return (true, failure);
        };
        match udp.send_to(socket, transmit.destination.socket_addr(), transmit.payload) {
            Ok(()) | Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(error)) => {
                failure.get_or_insert(error);
            }
        }
    }
    (false, failure)
}

impl<S> Responder for UdpResponder<S> {
    type Error = core::convert::Infallible;

    /// Notes that the advertisement changed (the accessory was paired or unpaired, or it
    /// starts); the next [`Accessory::poll_mdns`] hands it to the responder, with the
    /// time.
    fn announce(&mut self, _: &Advertisement<'_>) -> Result<(), Self::Error> {
        self.announce_due = true;
        Ok(())
    }

    /// Nothing to do here: [`Accessory::withdraw_mdns`] sends the goodbye, as it has
    /// the stack.
    fn goodbye(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The accessory advertised by its own [`UdpResponder`]: made with
/// [`Accessory::with_responder`] from [`UdpResponder::open`].
impl<T: TcpFullStack, const N: usize, S> Accessory<'_, '_, T, N, UdpResponder<S>> {
    /// One pass of the mDNS responder on `udp` (the stack [`UdpResponder::open`] used,
    /// which may be the accessory's own): hands it what the accessory announced since
    /// the last pass and the addresses given to [`Accessory::set_addresses`], reads the
    /// datagrams that arrived, runs its timers, sends what is due, and passes its
    /// [`MdnsEvent`]s (probing, announced, a conflict, a rename to store) to `events`.
    /// Call it after every [`Accessory::poll`], which decides when to announce.
    ///
    /// Returns when to call it again at the latest, as [`Accessory::poll`] does; poll on
    /// the earlier of the two, and sooner on a regular tick, since `embedded-nal` does
    /// not say when a datagram arrives (queries want an answer within a few hundred
    /// milliseconds). An error (the stack failed to receive or send, or the responder
    /// refused the host label, the instance name or the TXT record) comes after the
    /// rest of the pass was done; poll again.
    pub fn poll_mdns<U, R, E>(
        &mut self,
        udp: &mut U,
        now: Instant,
        rng: &mut R,
        events: E,
    ) -> Result<Option<Instant>, Error<U::Error>>
    where
        U: UdpFullStack<UdpSocket = S>,
        R: RngCore,
        E: FnMut(MdnsEvent),
    {
        let Some(advertisement) = self.mdns.advertisement(self.server.state()) else {
            return Ok(None);
        };
        self.mdns
            .advertiser
            .responder_mut()
            .poll(udp, &advertisement, now, rng, events)
    }

    /// Replaces the addresses advertised for the host (the first [`MAX_ADDRESSES`]), for
    /// example after DHCP gave a new lease; the next [`Accessory::poll_mdns`] announces
    /// them (RFC 6762 §8.4). The same addresses as before change nothing, so a device may
    /// pass its current ones on every check. Returns whether they changed.
    pub fn set_addresses(&mut self, addresses: &[IpAddr]) -> bool {
        let mdns = self.mdns.advertiser.responder_mut();
        let addresses: heapless::Vec<IpAddr, MAX_ADDRESSES> =
            addresses.iter().take(MAX_ADDRESSES).copied().collect();
        if addresses == mdns.addresses {
            return false;
        }
        mdns.addresses = addresses;
        mdns.addresses_due = true;
        true
    }

    /// Withdraws the advertisement: starts the goodbye (every record with TTL 0, sent
    /// twice 250 ms apart, in case one is lost) and sends its first round on `udp`. Go
    /// on calling [`Accessory::poll_mdns`] until [`Accessory::is_mdns_withdrawn`] (it
    /// sends the second round when due, then closes the socket); then call
    /// [`Accessory::shut_down`]. Controllers then forget the accessory at once rather
    /// than when the records expire. The accessory announces nothing after it.
    ///
    /// Returns when to poll again, as [`Accessory::poll_mdns`] does; `None` when
    /// nothing was ever announced and the socket is already closed.
    ///
    /// ```
    /// # use embedded_nal::{TcpFullStack, UdpFullStack};
    /// # use hap_core::time::Instant;
    /// # use hap_embedded::{Accessory, UdpResponder};
    /// # fn stop<T: TcpFullStack + UdpFullStack>(
    /// #     accessory: &mut Accessory<'_, '_, T, 2, UdpResponder<<T as embedded_nal::UdpClientStack>::UdpSocket>>,
    /// #     stack: &mut T,
    /// #     clock: impl Fn() -> Instant,
    /// #     rng: &mut impl rand_core::RngCore,
    /// # ) {
    /// let _ = accessory.withdraw_mdns(stack, clock());
    /// while !accessory.is_mdns_withdrawn() {
    ///     // Sleep until the instant returned (250 ms at most), then:
    ///     let _ = accessory.poll_mdns(stack, clock(), rng, |_event| {});
    /// #   break;
    /// }
    /// # }
    /// ```
    pub fn withdraw_mdns<U>(
        &mut self,
        udp: &mut U,
        now: Instant,
    ) -> Result<Option<Instant>, Error<U::Error>>
    where
        U: UdpFullStack<UdpSocket = S>,
    {
        // Announcements requested from now on are ignored.
        let _ = self.mdns.advertiser.goodbye();
        self.mdns.advertiser.responder_mut().withdraw(udp, now)
    }

    /// Whether the goodbye [`Accessory::withdraw_mdns`] started was sent and the socket
    /// closed (also true once the socket was closed for any reason).
    pub fn is_mdns_withdrawn(&self) -> bool {
        self.mdns.advertiser.responder().socket.is_none()
    }
}

/// Checks a slot's buffers against their minimums, so that accepting never fails on
/// them (which would lose them).
fn check(buffers: &SlotBuffers<'_>) -> Result<(), BuffersTooSmall> {
    for (buffer, len, minimum) in [
        ("input", buffers.input.len(), MIN_INPUT_LEN),
        ("scratch", buffers.scratch.len(), MIN_SCRATCH_LEN),
        ("output", buffers.output.len(), MIN_OUTPUT_LEN),
        ("receive", buffers.receive.len(), 1),
        ("pending", buffers.pending.len(), buffers.output.len()),
    ] {
        if len < minimum {
            return Err(BuffersTooSmall { buffer, minimum });
        }
    }
    Ok(())
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The mDNS side: what to announce; the core's [`Advertiser`] says when.
struct Mdns<'a, M> {
    advertiser: Advertiser<M>,
    info: Option<ServiceInfo<'a>>,
    /// The configuration number for the database's shape.
    config: ConfigNumber,
    port: u16,
}

impl<'a, M: Responder> Mdns<'a, M> {
    fn advertisement(&self, state: &AccessoryState) -> Option<Advertisement<'a>> {
        let info = self.info?;
        Some(Advertisement {
            name: info.name,
            port: self.port,
            model: info.model,
            device_id: state.device_id,
            config_number: self.config.number,
            category: info.category,
            paired: state.is_paired(),
            setup_id: info.setup_id,
        })
    }

    /// When to announce next, if there is something to announce.
    fn poll_timeout(&self) -> Option<Instant> {
        self.info.and(self.advertiser.poll_timeout())
    }

    /// Announces if it is due; after a failure the advertiser tries again a little
    /// later.
    fn run(&mut self, state: &AccessoryState, now: Instant) {
        if let Some(advertisement) = self.advertisement(state) {
            // A failure is retried; a responder without errors to report has no log.
            let _ = self.advertiser.handle_timeout(now, &advertisement);
        }
    }
}

/// One connection slot: its socket and connection while open, its buffers while free.
struct Slot<'b, S> {
    link: Link<'b, S>,
    /// Bytes received and not yet taken by the core: `receive[..received]`.
    receive: &'b mut [u8],
    received: usize,
    /// The core took none of the received bytes; offer them again only after it
    /// produced output, a time-out passed or the application set a value.
    stalled: bool,
    /// Accepted in this poll, after the open connections were served.
    fresh: bool,
    /// Bytes the socket has not taken yet: `pending[sent..queued]`.
    pending: &'b mut [u8],
    sent: usize,
    queued: usize,
}

// A connection is large and free buffers are small, but without a heap there is nowhere
// to box either; a slot is one or the other over its life.
#[allow(clippy::large_enum_variant)]
enum Link<'b, S> {
    Free(ConnectionBuffers<'b>),
    Open {
        socket: S,
        conn: Connection<'b>,
    },
    /// The buffers were lost to a refused accept, which the checks in `start` prevent.
    Broken,
}

impl<'b, S> Slot<'b, S> {
    fn new(buffers: SlotBuffers<'b>) -> Self {
        Self {
            link: Link::Free(ConnectionBuffers {
                input: buffers.input,
                scratch: buffers.scratch,
                output: buffers.output,
                subscriptions: buffers.subscriptions,
            }),
            receive: buffers.receive,
            received: 0,
            stalled: false,
            fresh: false,
            pending: buffers.pending,
            sent: 0,
            queued: 0,
        }
    }

    fn id(&self) -> Option<ConnectionId> {
        match &self.link {
            Link::Open { conn, .. } => Some(conn.id()),
            _ => None,
        }
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The core closed it ([`Output::Close`]).
    Closed,
    /// The socket failed or the peer left.
    Lost,
}

/// Everything one poll works with.
struct Pass<'p, 'd, T, R, P: ?Sized, E, M> {
    server: &'p mut Server<'d>,
    stack: &'p mut T,
    now: Instant,
    rng: &'p mut R,
    persist: &'p mut P,
    events: &'p mut E,
    mdns: &'p mut Mdns<'d, M>,
    /// Work is left that does not wait for the network.
    again: bool,
}

impl<'d, T, R, P, E, M> Pass<'_, 'd, T, R, P, E, M>
where
    T: TcpFullStack,
    R: RngCore + CryptoRng,
    P: Persist + ?Sized,
    E: FnMut(Event),
    M: Responder,
{
    /// Drains the connections the core names ([`Server::poll_wake`]), letting them take
    /// input they refused before, for a bounded number of rounds; what is left waits
    /// for the next poll, which is then due at once.
    fn wake(&mut self, slots: &mut [Slot<'_, T::TcpSocket>]) {
        for _ in 0..slots.len().max(1) * WAKE_ROUNDS {
            let Some(id) = self.server.poll_wake() else {
                return;
            };
            if let Some(slot) = slots.iter_mut().find(|slot| slot.id() == Some(id)) {
                slot.stalled = false;
                if let Err(end) = self.drain(slot) {
                    self.teardown(slot, end);
                }
            }
        }
        self.again = true;
    }

    /// Accepts waiting connections into free slots. When every slot is taken, the
    /// connection idle longest makes room if it has been idle long enough
    /// ([`Server::make_room`], as HomeKitADK); otherwise the newcomer is closed at once.
    fn accept(
        &mut self,
        listener: &mut T::TcpSocket,
        slots: &mut [Slot<'_, T::TcpSocket>],
        next_id: &mut u32,
    ) -> Result<(), T::Error> {
        // Bounded, so that a flood of connections cannot hold up the others.
        for _ in 0..=slots.len() {
            let socket = match self.stack.accept(listener) {
                Ok((socket, _)) => socket,
                Err(nb::Error::WouldBlock) => return Ok(()),
                Err(nb::Error::Other(error)) => return Err(error),
            };
            if !self.server.has_room() {
                if let Some(evicted) = self.server.make_room(self.now) {
                    if let Some(slot) = slots.iter_mut().find(|slot| slot.id() == Some(evicted)) {
                        // Its next output is the close; teardown takes it and frees the slot.
                        self.teardown(slot, End::Closed);
                    }
                }
            }
            let room = self.server.has_room();
            let free = slots
                .iter()
                .position(|slot| matches!(slot.link, Link::Free(_)));
            let (Some(index), true) = (free, room) else {
                let _ = self.stack.close(socket);
                continue;
            };
            let id = fresh_id(next_id, slots);
            let Some(slot) = slots.get_mut(index) else {
                let _ = self.stack.close(socket);
                continue;
            };
            let Link::Free(buffers) = core::mem::replace(&mut slot.link, Link::Broken) else {
                let _ = self.stack.close(socket);
                continue;
            };
            match self.server.accept(id, buffers, self.now) {
                Ok(conn) => {
                    slot.link = Link::Open { socket, conn };
                    slot.fresh = true;
                    slot.received = 0;
                    slot.stalled = false;
                    slot.sent = 0;
                    slot.queued = 0;
                }
                // Cannot happen: the count and the buffers were checked. The slot's
                // buffers are gone with the refusal.
                Err(_) => {
                    let _ = self.stack.close(socket);
                }
            }
        }
        Ok(())
    }

    /// Serves one slot: sends, drains the core's output, reads and feeds input while
    /// anything moves, then applies time-outs.
    fn service(&mut self, slot: &mut Slot<'_, T::TcpSocket>) {
        if let Err(end) = self.exchange(slot) {
            self.teardown(slot, end);
        }
        self.server_events();
    }

    fn exchange(&mut self, slot: &mut Slot<'_, T::TcpSocket>) -> Result<(), End> {
        if !matches!(slot.link, Link::Open { .. }) {
            return Ok(());
        }
        let mut idle = false;
        for _ in 0..ROUNDS {
            let mut progress = self.flush(slot)?;
            progress |= self.drain(slot)?;
            progress |= self.receive(slot)?;
            progress |= self.feed(slot);
            if !progress {
                idle = true;
                break;
            }
        }
        if !idle {
            self.again = true;
        }
        let Link::Open { conn, .. } = &mut slot.link else {
            return Ok(());
        };
        if self
            .server
            .poll_timeout(conn)
            .is_some_and(|at| at <= self.now)
        {
            self.server.handle_timeout(conn, self.now);
            slot.stalled = false;
            self.drain(slot)?;
        }
        Ok(())
    }

    /// Sends bytes the socket did not take before. Returns whether any went.
    fn flush(&mut self, slot: &mut Slot<'_, T::TcpSocket>) -> Result<bool, End> {
        let Link::Open { socket, .. } = &mut slot.link else {
            return Ok(false);
        };
        let Some(bytes) = slot.pending.get(slot.sent..slot.queued) else {
            return Err(End::Lost);
        };
        let sent = send(self.stack, socket, bytes)?;
        slot.sent += sent;
        if slot.sent == slot.queued {
            slot.sent = 0;
            slot.queued = 0;
        }
        Ok(sent > 0)
    }

    /// Takes the core's output for `slot` until it has none or the socket is full.
    /// Returns whether there was any.
    fn drain(&mut self, slot: &mut Slot<'_, T::TcpSocket>) -> Result<bool, End> {
        let Link::Open { socket, conn } = &mut slot.link else {
            return Ok(false);
        };
        let mut any = false;
        for _ in 0..OUTPUTS_PER_DRAIN {
            // Backpressure: leave the output in the core until the socket takes more.
            if slot.queued > 0 {
                return Ok(any);
            }
            let Some(output) = self.server.poll_output(conn, self.now, self.rng) else {
                return Ok(any);
            };
            any = true;
            slot.stalled = false;
            match output {
                Output::Transmit(bytes) => {
                    let sent = send(self.stack, socket, bytes)?;
                    // The output borrows the connection: keep what is left.
                    let rest = bytes.get(sent..).unwrap_or_default();
                    let Some(room) = slot.pending.get_mut(..rest.len()) else {
                        return Err(End::Lost);
                    };
                    room.copy_from_slice(rest);
                    slot.sent = 0;
                    slot.queued = rest.len();
                }
                Output::Persist => self.store(conn),
                Output::Event(event) => (self.events)(event),
                Output::Close => return Err(End::Closed),
                // hap-embedded is built with the hap-core it depends on, so an output it
                // does not know is a bug; closing is the safe answer.
                _ => return Err(End::Closed),
            }
        }
        self.again = true;
        Ok(any)
    }

    /// Reads what fits in the receive buffer. Returns whether anything arrived.
    fn receive(&mut self, slot: &mut Slot<'_, T::TcpSocket>) -> Result<bool, End> {
        let Link::Open { socket, .. } = &mut slot.link else {
            return Ok(false);
        };
        let Some(room) = slot.receive.get_mut(slot.received..) else {
            return Err(End::Lost);
        };
        if room.is_empty() {
            return Ok(false);
        }
        match self.stack.receive(socket, room) {
            // End of stream.
            Ok(0) => Err(End::Lost),
            Ok(read) => {
                slot.received += read.min(room.len());
                slot.stalled = false;
                Ok(true)
            }
            Err(nb::Error::WouldBlock) => Ok(false),
            Err(nb::Error::Other(_)) => Err(End::Lost),
        }
    }

    /// Offers the received bytes to the core and keeps what it does not take. Returns
    /// whether it took any.
    fn feed(&mut self, slot: &mut Slot<'_, T::TcpSocket>) -> bool {
        let Link::Open { conn, .. } = &mut slot.link else {
            return false;
        };
        if slot.received == 0 || slot.stalled {
            return false;
        }
        let Some(bytes) = slot.receive.get(..slot.received) else {
            return false;
        };
        let taken = self
            .server
            .handle_input(conn, self.now, bytes, self.rng)
            .min(slot.received);
        if taken == 0 {
            // The core waits for output room, storage or the application.
            slot.stalled = true;
            return false;
        }
        slot.receive.copy_within(taken..slot.received, 0);
        slot.received -= taken;
        true
    }

    /// Stores the state for `conn`, reports the result, and passes on server-wide
    /// events.
    fn store(&mut self, conn: &mut Connection<'_>) {
        let stored = self.persist.store(self.server.state());
        self.server
            .state_persisted(conn, self.now, stored, self.rng);
        self.server_events();
    }

    /// Passes on server-wide events: a change of the paired state, reported once the
    /// controller that made it has its reply (after its next input or its end).
    fn server_events(&mut self) {
        // One pairing change is reported at a time; the bound is only a guard.
        for _ in 0..4 {
            let Some(event) = self.server.poll_event() else {
                break;
            };
            self.mdns.advertiser.handle_event(&event, self.now);
            (self.events)(event);
        }
    }

    /// Ends the connection in `slot`: tells the core if it did not close it itself,
    /// stores a change that still waits for storage, closes the socket and frees the
    /// slot.
    fn teardown(&mut self, slot: &mut Slot<'_, T::TcpSocket>, end: End) {
        let link = core::mem::replace(&mut slot.link, Link::Broken);
        let Link::Open { socket, mut conn } = link else {
            slot.link = link;
            return;
        };
        if end == End::Lost {
            self.server.connection_lost(&mut conn);
        }
        // Nothing can be sent any more; only storage is still owed.
        for _ in 0..OUTPUTS_PER_DRAIN {
            match self.server.poll_output(&mut conn, self.now, self.rng) {
                Some(Output::Persist) => self.store(&mut conn),
                Some(Output::Event(event)) => (self.events)(event),
                // Nothing can be sent, and the connection is closing anyway.
                Some(_) => {}
                None => break,
            }
        }
        let _ = self.stack.close(socket);
        let buffers = conn.into_buffers();
        buffers.input.fill(0);
        buffers.scratch.fill(0);
        buffers.output.fill(0);
        buffers.subscriptions.fill(Subscription::EMPTY);
        slot.receive.fill(0);
        slot.pending.fill(0);
        slot.link = Link::Free(buffers);
        slot.received = 0;
        slot.stalled = false;
        slot.sent = 0;
        slot.queued = 0;
    }
}

/// Sends as much of `bytes` as the socket takes now. A failed socket ends the
/// connection.
fn send<T: TcpClientStack>(
    stack: &mut T,
    socket: &mut T::TcpSocket,
    bytes: &[u8],
) -> Result<usize, End> {
    let mut sent = 0;
    while sent < bytes.len() {
        match stack.send(socket, &bytes[sent..]) {
            Ok(0) | Err(nb::Error::WouldBlock) => break,
            Ok(n) => sent += n.min(bytes.len() - sent),
            Err(nb::Error::Other(_)) => return Err(End::Lost),
        }
    }
    Ok(sent)
}

/// The next connection id after `next`, skipping the ids of open connections.
fn fresh_id<S>(next: &mut u32, slots: &[Slot<'_, S>]) -> ConnectionId {
    // At most `slots.len()` ids are in use, so this ends within that many steps more.
    for _ in 0..=slots.len() {
        *next = next.wrapping_add(1);
        let id = ConnectionId(*next);
        if slots.iter().all(|slot| slot.id() != Some(id)) {
            return id;
        }
    }
    ConnectionId(*next)
}
