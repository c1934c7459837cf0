//! Fuzz target `ram_section`: see `vmstate_fuzz::ram_section`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::ram_section(data));
