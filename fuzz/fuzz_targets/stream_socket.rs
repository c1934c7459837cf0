//! Fuzz target `stream_socket`: see `vmstate_fuzz::stream_socket`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::stream_socket(data));
