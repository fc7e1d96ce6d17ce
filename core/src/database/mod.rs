//! The accessory database: accessories, their services and characteristics, and the ids
//! HAP addresses them by.
//!
//! In progress: only [`ids`], the stable id map, exists so far.

#[cfg(feature = "alloc")]
pub mod ids;
