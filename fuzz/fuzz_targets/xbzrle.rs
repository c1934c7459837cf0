//! Fuzz target `xbzrle`: see `vmstate_fuzz::xbzrle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::xbzrle(data));
