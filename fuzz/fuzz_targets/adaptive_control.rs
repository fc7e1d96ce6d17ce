#![no_main]
// The entry point and its invariants live in hap-core, where unit tests run them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hap_core::fuzzing::adaptive_control(data));
