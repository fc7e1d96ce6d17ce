//! The accessory database: accessories, their services and characteristics, and the ids
//! HAP addresses them by.
//!
//! In progress: so far the stable id map ([`ids`]) and the configuration number
//! ([`config`]) exist.

pub mod config;
#[cfg(feature = "alloc")]
pub mod ids;
