//! Sans-IO core of the HomeKit Accessory Protocol (HAP) over IP.
//!
//! # The run loop
//!
//! A [`Server`](server::Server) holds what an accessory's connections share; each TCP
//! connection is a [`Connection`](server::Connection). The caller owns the socket and
//! the clock, and drives each connection with one loop: feed the bytes that arrived,
//! drain the outputs, and wait for more bytes or the next deadline. Here a controller
//! asks an unpaired light to identify itself, over an in-memory `socket` that stands in
//! for TCP:
//!
//! ```
//! use hap_core::server::{Config, Event, Output, OwnedBuffers, Server};
//! use hap_core::{time::Instant, ConnectionId};
//! # #[cfg(feature = "alloc")] {
//! # use std::collections::VecDeque;
//! # use hap_core::catalog::service as s;
//! # use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
//! # use hap_core::database::ids::IdMap;
//! # use hap_core::state::AccessoryState;
//! # use rand_core::SeedableRng;
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! # let mut ids = IdMap::new();
//! # let mut builder = DatabaseBuilder::new(&mut ids);
//! # builder.accessory("light", &AccessoryInfo::new("Light", "Acme", "L1", "1", "1.0"));
//! # builder.service(&s::LIGHTBULB).primary();
//! # let database = builder.build().unwrap();
//! # let state = AccessoryState::generate(&"518-08-582".parse().unwrap(), &mut rng);
//! # fn store(_: &AccessoryState) -> bool { true }
//! # enum Received { Bytes(Vec<u8>), Deadline(Instant), Closed }
//! # struct Socket<'a> { incoming: VecDeque<&'a [u8]>, sent: Vec<u8> }
//! # impl Socket<'_> {
//! #     fn send(&mut self, bytes: &[u8]) { self.sent.extend_from_slice(bytes) }
//! #     // Bytes if any arrived, else the deadline if there is one, else the peer left.
//! #     fn wait(&mut self, deadline: Option<Instant>) -> Received {
//! #         match (self.incoming.pop_front(), deadline) {
//! #             (Some(bytes), _) => Received::Bytes(bytes.to_vec()),
//! #             (None, Some(at)) => Received::Deadline(at),
//! #             (None, None) => Received::Closed,
//! #         }
//! #     }
//! # }
//! // The request arrives in two pieces, as TCP may deliver it.
//! let request: [&[u8]; 2] = [b"POST /identify HTTP/1.1\r\nContent-", b"Length: 0\r\n\r\n"];
//! let mut socket = Socket { incoming: VecDeque::from(request), sent: Vec::new() };
//! let mut now = Instant::from_millis(0);
//! let mut server = Server::new(state, database, Config::default());
//! let mut buffers = OwnedBuffers::for_database(server.config(), server.database());
//! let mut conn = server.accept(ConnectionId(1), buffers.borrow(), now).unwrap();
//! let mut unread = Vec::new(); // received, not yet taken by the server
//! let mut events = Vec::new(); // for the application
//!
//! 'connection: loop {
//!     // 1. Feed what arrived, and keep what the server did not take yet.
//!     let taken = server.handle_input(&mut conn, now, &unread, &mut rng);
//!     unread.drain(..taken);
//!     // 2. Drain the connection's outputs, then the server-wide events.
//!     while let Some(output) = server.poll_output(&mut conn, now, &mut rng) {
//!         match output {
//!             Output::Transmit(bytes) => socket.send(bytes),
//!             Output::Persist => {
//!                 let stored = store(server.state());
//!                 server.state_persisted(&mut conn, now, stored, &mut rng);
//!             }
//!             Output::Event(event) => events.push(event),
//!             Output::Close => break 'connection,
//!             _ => break 'connection, // an output newer than this code: close
//!         }
//!     }
//!     while let Some(event) = server.poll_event() {
//!         events.push(event); // the paired state changed: update mDNS `sf`
//!     }
//!     // Connections to poll again: after a completion, or another's change to a value
//!     // they subscribe to. With one connection, that is this one.
//!     let mut woken = false;
//!     while let Some(id) = server.poll_wake() {
//!         woken |= id == conn.id();
//!     }
//!     if woken {
//!         continue;
//!     }
//!     // 3. Wait for bytes or the next deadline, whichever comes first.
//!     match socket.wait(server.poll_timeout(&conn)) {
//!         Received::Bytes(bytes) => unread.extend_from_slice(&bytes),
//!         Received::Deadline(at) => {
//!             now = at;
//!             server.handle_timeout(&mut conn, now);
//!         }
//!         Received::Closed => {
//!             server.connection_lost(&mut conn);
//!             break;
//!         }
//!     }
//! }
//! assert!(socket.sent.starts_with(b"HTTP/1.1 204 No Content\r\n"));
//! assert_eq!(events, [Event::Identify]);
//! # }
//! ```
//!
//! [`server`]'s documentation is the whole contract: several connections and
//! [`Server::poll_wake`](server::Server::poll_wake), making room for new connections,
//! and the writes and reads the application completes. The core consumes bytes and
//! produces bytes and events. It never touches a socket, a clock, a file or a global
//! random number generator: time is passed in as an [`Instant`](time::Instant),
//! randomness comes from a caller-supplied `rand_core::CryptoRng + RngCore`, and
//! persistent state is plain data ([`AccessoryState`](state::AccessoryState)) that the
//! caller stores.
//!
//! # Layers
//!
//! - [`tlv`]: TLV8, the encoding of pairing messages.
//! - [`crypto`]: HKDF-SHA-512, ChaCha20-Poly1305 with HAP nonces, Ed25519, X25519.
//! - [`srp`]: SRP-6a with the 3072-bit group and SHA-512 (needs `alloc`).
//! - [`pairing`]: pair-setup (needs `alloc`), pair-verify and `/pairings`, both roles.
//! - [`session`]: the encrypted framing that follows pair-verify.
//! - [`http`] and [`json`]: HTTP/1.1 and JSON request bodies, without a heap.
//! - [`catalog`]: Apple's service and characteristic types, values and their validation.
//! - [`database`]: accessories, services, characteristics, their values and stable ids.
//! - [`server`]: the accessory's connections and shared state, with the run loop.
//! - [`controller`]: the controller's side of a connection, the mirror of [`server`].
//! - [`adaptive`]: Adaptive Lighting: its TLV8 formats and the transition engine.
//! - [`setup`]: setup codes, the `X-HM://` URI and the setup hash.
//! - [`mdns`]: the DNS-SD advertisement and the responder trait.
//! - [`persist`]: the documented stored form of the state (needs `alloc`).
//! - [`state`]: what the accessory must persist.
//!
//! The exchanges below the server can also be driven directly.
//!
//! # Driving an exchange
//!
//! Every exchange follows one rule: hand it the peer's message, act on the output, and
//! never send a reply that waits for storage before storing. For pair-setup:
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use hap_core::pairing::setup::{PairSetup, SetupOutput, MAX_SETUP_MESSAGE_LEN};
//! use hap_core::{state::AccessoryState, setup::SetupCode, time::Instant, ConnectionId};
//! # use rand_core::SeedableRng;
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! # let m1 = [0x06, 0x01, 0x01, 0x00, 0x01, 0x00];
//! # fn store(_: &AccessoryState) -> Result<(), ()> { Ok(()) }
//! # fn send(_: &[u8]) {}
//!
//! let code: SetupCode = "518-08-582".parse().unwrap();
//! let mut state = AccessoryState::generate(&code, &mut rng); // once, then load it
//! let mut setup = PairSetup::new(true);
//! let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
//! let conn = ConnectionId(1);
//!
//! match setup.handle(Instant::from_millis(0), conn, &m1, &mut state, &mut rng, &mut out) {
//!     Ok(SetupOutput::Reply(len)) => send(&out[..len]),
//!     Ok(SetupOutput::Persist(_change)) => match store(&state) {
//!         Ok(()) => match setup.persisted(conn, &state, &mut out) {
//!             Ok(SetupOutput::Reply(len)) => send(&out[..len]),
//!             _ => { /* transient sessions and errors, as below */ }
//!         },
//!         // Undo in memory, answer HTTP 500, and close the sessions it names.
//!         Err(()) => drop(setup.persist_failed(conn, &mut state)),
//!     },
//!     Ok(SetupOutput::Transient { reply_len, keys: _ }) => send(&out[..reply_len]),
//!     Err(_malformed) => { /* answer HTTP 400 */ }
//! }
//! # }
//! ```
//!
//! # Features
//!
//! - `alloc` (default): SRP and therefore pair-setup. Everything else works without a
//!   heap, in caller-provided or fixed-capacity buffers.
//! - `std` (default): implies `alloc`.
//! - `fuzzing`: the entry points of the `fuzz/` targets (module `fuzzing`); for testing only.
#![no_std]
#![forbid(unsafe_code)]
// The library must build without std; tests and tools, which are std programs, need not.
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod adaptive;
pub mod catalog;
pub mod controller;
pub mod crypto;
pub mod database;
// Entry points for cargo-fuzz; also built by the crate's own tests, so that they keep
// compiling and running on stable.
#[cfg(any(feature = "fuzzing", all(test, feature = "std")))]
pub mod fuzzing;
pub mod http;
pub mod json;
pub mod mdns;
pub mod pairing;
#[cfg(feature = "alloc")]
pub mod persist;
pub mod server;
pub mod session;
pub mod setup;
#[cfg(feature = "alloc")]
pub mod srp;
pub mod state;
pub mod status;
pub mod time;
pub mod tlv;

/// Identifies a connection to the code that shares state between connections, such as
/// the pair-setup lock. The caller chooses the values; they must be unique among open
/// connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u32);
