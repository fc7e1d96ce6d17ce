//! Sans-IO core of the HomeKit Accessory Protocol (HAP) over IP.
//!
//! The core consumes bytes and produces bytes and events. It never touches a socket, a
//! clock, a file or a global random number generator: time is passed in as an
//! [`Instant`](time::Instant), randomness comes from a caller-supplied
//! `rand_core::CryptoRng + RngCore`, and persistent state is plain data
//! ([`AccessoryState`](state::AccessoryState)) that the caller stores.
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
//! - [`setup`]: setup codes, the `X-HM://` URI and the setup hash.
//! - [`mdns`]: the DNS-SD advertisement and the responder trait.
//! - [`persist`]: the documented stored form of the state (needs `alloc`).
//! - [`state`]: what the accessory must persist.
//!
//! An accessory is driven through [`server::Server`]; its documentation describes the
//! run loop. The exchanges below it can also be driven directly.
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

pub mod catalog;
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
