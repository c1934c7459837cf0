//! Fuzz target `return_path`: see `vmstate_fuzz::return_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::return_path(data));
