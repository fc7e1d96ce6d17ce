//! Entry points for the cargo-fuzz targets in `fuzz/`, and the seeds they start from.
//!
//! Each `pub fn` here takes the fuzzer's bytes, drives one layer of the core with them
//! and panics if an invariant breaks: a round trip that does not return what went in, a
//! state machine that stops making progress or contradicts itself, output that a peer
//! could not parse. Panics are the findings; everything else is the core refusing bad
//! input, as it should.
//!
//! The targets in `fuzz/fuzz_targets/` are one line each, so that this module's unit
//! tests keep every entry point compiling and running on stable Rust, over the
//! generated seeds and over every input committed under `fuzz/seeds/` and
//! `fuzz/regressions/`.
//!
//! Randomness comes from [`FuzzRng`], seeded with a constant, so a given input always
//! takes the same path: a seed that completes pair-setup against the harness completes
//! it on every run, and the fuzzer can mutate what follows.
//!
//! This module exists for testing only (feature `fuzzing`); its API is not stable.

use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};

mod adaptive;
mod completions;
mod connection;
mod controller;
mod frames;
mod mdns;
mod pairing;
mod parsers;
mod seeds;

pub use adaptive::adaptive_control;
pub use completions::completions;
pub use connection::{connection_chunked, connection_unverified, connection_verified};
pub use controller::controller_response;
pub use frames::{frame_decoder, session_plaintext};
pub use mdns::mdns_packet;
pub use pairing::pairing_handlers;
pub use parsers::{characteristic_bodies, http_request, tlv_decode, tlv_round_trip};
pub use seeds::seeds;

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every target, by the name its cargo-fuzz binary has.
pub const TARGETS: &[(&str, Target)] = &[
    ("tlv_decode", tlv_decode),
    ("tlv_round_trip", tlv_round_trip),
    ("frame_decoder", frame_decoder),
    ("session_plaintext", session_plaintext),
    ("http_request", http_request),
    ("characteristic_bodies", characteristic_bodies),
    ("pairing_handlers", pairing_handlers),
    ("connection_unverified", connection_unverified),
    ("connection_verified", connection_verified),
    ("connection_chunked", connection_chunked),
    ("completions", completions),
    ("mdns_packet", mdns_packet),
    ("controller_response", controller_response),
    ("adaptive_control", adaptive_control),
];

/// A deterministic random source: SHA-512 of a seed and a block counter.
///
/// It claims [`CryptoRng`] because the core demands one; it is predictable by design and
/// must never be used outside tests.
#[derive(Clone, Debug)]
pub struct FuzzRng {
    seed: u64,
    counter: u64,
    block: [u8; 64],
    used: usize,
}

impl FuzzRng {
    /// A source that yields the same bytes for the same seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 64],
            used: 64,
        }
    }
}

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                let mut hasher = Sha512::new();
                hasher.update(self.seed.to_le_bytes());
                hasher.update(self.counter.to_le_bytes());
                self.block.copy_from_slice(&hasher.finalize());
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FuzzRng {}

/// Reads a fuzzer's input as a sequence of small decisions and byte strings. Running out
/// of input yields zeros and empty strings, never an error, so every input is valid.
#[derive(Clone, Debug)]
pub(crate) struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((first, rest)) => {
                self.rest = rest;
                *first
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// A string preceded by its two-byte little-endian length.
    pub(crate) fn sized(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16());
        self.take(len)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.take(self.rest.len())
    }
}

/// Prepends a two-byte little-endian length, the framing [`Input::sized`] reads.
pub(crate) fn sized(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("seed pieces fit in 64 KiB");
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::string::{String, ToString};
    use std::{eprintln, format};

    use super::*;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    /// The files in `dir`, or none if it does not exist.
    fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_target_has_a_cargo_fuzz_binary_and_seeds() {
        for (name, _) in TARGETS {
            let binary = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
            let source = std::fs::read_to_string(&binary)
                .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
            assert!(
                source.contains(&format!("hap_core::fuzzing::{name}(")),
                "{} does not call its entry point",
                binary.display()
            );
            assert!(!seeds(name).is_empty(), "{name} has no generated seeds");
        }
    }

    #[test]
    fn committed_seeds_match_the_generated_ones() {
        for (name, _) in TARGETS {
            let committed: Vec<Vec<u8>> = inputs(&fuzz_dir().join("seeds").join(name))
                .into_iter()
                .map(|(_, bytes)| bytes)
                .collect();
            let mut generated = seeds(name);
            generated.sort();
            let mut committed_sorted = committed.clone();
            committed_sorted.sort();
            assert_eq!(
                committed_sorted, generated,
                "fuzz/seeds/{name} is stale: run `cargo run -p hap-core --features fuzzing \
                 --example fuzz-seeds`"
            );
        }
    }

    /// Every crash the fuzzers found, kept as a file under `fuzz/regressions/<target>/`,
    /// must stay fixed.
    #[test]
    fn regressions_stay_fixed() {
        for (name, target) in TARGETS {
            for (path, bytes) in inputs(&fuzz_dir().join("regressions").join(name)) {
                eprintln!("{path}");
                target(&bytes);
            }
        }
    }

    /// One test per target, running it over its generated seeds.
    macro_rules! runs_its_seeds {
        ($($target:ident),* $(,)?) => {
            mod runs_its_seeds {
                $(
                    #[test]
                    fn $target() {
                        let seeds = super::super::seeds(stringify!($target));
                        assert!(!seeds.is_empty());
                        for seed in seeds {
                            super::super::$target(&seed);
                        }
                    }
                )*
            }
        };
    }

    runs_its_seeds!(
        tlv_decode,
        tlv_round_trip,
        frame_decoder,
        session_plaintext,
        http_request,
        characteristic_bodies,
        pairing_handlers,
        connection_unverified,
        connection_verified,
        connection_chunked,
        completions,
        mdns_packet,
        controller_response,
        adaptive_control,
    );

    #[test]
    fn rng_is_deterministic_and_not_constant() {
        let mut a = FuzzRng::new(7);
        let mut b = FuzzRng::new(7);
        let (mut x, mut y) = ([0u8; 100], [0u8; 100]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y[..30]);
        b.fill_bytes(&mut y[30..]);
        assert_eq!(x, y);
        assert_ne!(x[..64], x[64..100].repeat(2)[..64]);
        assert_ne!(FuzzRng::new(8).next_u64(), FuzzRng::new(7).next_u64());
    }

    #[test]
    fn input_reader_never_fails() {
        let mut input = Input::new(&[5, 0, 1, 2]);
        assert_eq!(input.sized(), &[1, 2]);
        assert!(input.is_empty());
        assert_eq!(input.byte(), 0);
        assert_eq!(input.u16(), 0);
        assert_eq!(input.sized(), &[] as &[u8]);
        assert_eq!(Input::new(&sized(b"abc")).sized(), b"abc");
    }
}
