//! HomeKit accessories on std: blocking sockets and threads, a crash-safe file store,
//! and an mDNS responder.
//!
//! - [`host`]: what every runtime shares: loading the state ([`Setup`]), the shared
//!   [`Host`] and the loop that drains a connection. `hap-smol` builds on it too.
//! - [`threads`]: serving with threads ([`serve`]).
//! - [`socket`]: where the listener binds (by default `[::]` for IPv6 and IPv4 at once)
//!   and the keepalive every accepted connection gets. `hap-smol` uses it too.
//! - [`store`]: the durable file store (feature `store`) and an in-memory one.
//! - `mdns`: the mDNS responder, and `browse` to find accessories (feature `mdns`).
//! - `app`: an application layer over all of these (feature `app`, with `store` and
//!   `mdns`): the standard flags, the start-up banner, signals, handlers and timers.
//!
//! These features are on by default. `hap-smol` turns them off in its dependency on this
//! crate and forwards its own `store` and `mdns` features, so that an application that
//! stores or advertises its own way builds neither.
//!
//! All protocol logic is in [`hap_core`]; this crate only moves bytes, keeps time and
//! stores state.
#![forbid(unsafe_code)]

#[cfg(feature = "app")]
pub mod app;
#[cfg(feature = "mdns")]
pub mod avahi;
pub mod host;
#[cfg(feature = "mdns")]
pub mod mdns;
pub mod socket;
pub mod store;
pub mod threads;

pub use hap_core;
pub use host::{Host, Identity, Options, Setup, StartError};
pub use socket::Bind;
pub use threads::{serve, Handle, Running};
