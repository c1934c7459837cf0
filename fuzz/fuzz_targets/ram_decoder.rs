//! Fuzz target `ram_decoder`: see `vmstate_fuzz::ram_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::ram_decoder(data));
