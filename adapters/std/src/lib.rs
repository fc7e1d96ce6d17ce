//! HomeKit accessories on std: blocking sockets and threads, a crash-safe file store,
//! and an mDNS responder.
//!
//! - [`host`]: what every runtime shares: loading the state ([`Setup`]), the shared
//!   [`Host`] and the loop that drains a connection. `hap-smol` builds on it too.
//! - [`threads`]: serving with threads ([`serve`]).
//! - [`socket`]: where the listener binds (by default `[::]` for IPv6 and IPv4 at once)
//!   and the keepalive every accepted connection gets. `hap-smol` uses it too.
//! - [`store`]: the durable file store and an in-memory one.
//! - [`mdns`]: the mDNS responder.
//! - [`app`] (feature `app`, on by default): an application layer over all of these,
//!   with the standard flags, the start-up banner, signals, handlers and timers.
//!
//! All protocol logic is in [`hap_core`]; this crate only moves bytes, keeps time and
//! stores state.
#![forbid(unsafe_code)]

#[cfg(feature = "app")]
pub mod app;
pub mod host;
pub mod mdns;
pub mod socket;
pub mod store;
pub mod threads;

pub use hap_core;
pub use host::{Host, Identity, Options, Setup, StartError};
pub use socket::Bind;
pub use threads::{serve, Handle, Running};
