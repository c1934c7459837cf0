//! Fuzz target `device_body`: see `vmstate_fuzz::device_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::device_body(data));
