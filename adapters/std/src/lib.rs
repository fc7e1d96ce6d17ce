//! HomeKit accessories on std: threads and blocking sockets, a crash-safe file store, and
//! an mDNS responder.
#![forbid(unsafe_code)]

pub mod mdns;
pub mod store;
