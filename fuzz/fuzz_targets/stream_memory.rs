//! Fuzz target `stream_memory`: see `vmstate_fuzz::stream_memory`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::stream_memory(data));
