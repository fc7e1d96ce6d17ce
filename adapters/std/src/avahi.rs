//! STAND-IN, not for main: the API of helper M3's `hap_std::avahi` (branch `mdnsavahi`),
//! so that `--mdns auto|avahi` compiles here. It never reaches avahi-daemon. Replaced by
//! M3's file when that branch is merged.

use std::fmt;

use hap_core::mdns::{Advertisement, MdnsEvent, Responder};

/// Hears what the registration did.
pub type EventHandler = Box<dyn Fn(MdnsEvent) + Send + Sync>;

/// Why avahi-daemon could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum AvahiError {
    /// This stand-in never reaches avahi-daemon.
    Unavailable,
}

impl fmt::Display for AvahiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("avahi-daemon support is not built in (stand-in)")
    }
}

impl std::error::Error for AvahiError {}

/// A registration with avahi-daemon (stand-in).
#[derive(Debug)]
pub struct AvahiResponder {
    name: String,
}

impl AvahiResponder {
    /// Always fails in this stand-in.
    pub fn connect(events: EventHandler) -> Result<Self, AvahiError> {
        let _ = events;
        Err(AvahiError::Unavailable)
    }

    /// The instance name registered.
    pub fn instance_name(&self) -> String {
        self.name.clone()
    }
}

impl Responder for AvahiResponder {
    type Error = AvahiError;

    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), AvahiError> {
        advertisement.name.clone_into(&mut self.name);
        Err(AvahiError::Unavailable)
    }

    fn goodbye(&mut self) -> Result<(), AvahiError> {
        Ok(())
    }
}
