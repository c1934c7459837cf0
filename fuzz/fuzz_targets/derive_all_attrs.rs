//! Fuzz target `derive_all_attrs`: see `vmstate_fuzz::derive_all_attrs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::derive_all_attrs(data));
