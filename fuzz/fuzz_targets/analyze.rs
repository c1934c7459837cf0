//! Fuzz target `analyze`: see `vmstate_fuzz::analyze`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::analyze(data));
