//! Sans-IO core of the HomeKit Accessory Protocol.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod crypto;
#[cfg(feature = "alloc")]
pub mod srp;
pub mod time;
pub mod tlv;
pub mod session;
pub mod setup;
pub mod pairing { pub mod tlv_type { pub const SEPARATOR: u8 = 0xFF; } }
