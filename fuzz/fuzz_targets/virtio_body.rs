//! Fuzz target `virtio_body`: see `vmstate_fuzz::virtio_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmstate_fuzz::virtio_body(data));
