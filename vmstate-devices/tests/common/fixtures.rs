//! The one home of this crate's fixtures: the QEMU 7.2 streams in
//! `tests/fixtures/qemu-7.2` (see the README there).

use std::path::PathBuf;

/// The directory of the QEMU 7.2 fixture streams shipped with this crate.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-7.2")
}

/// The bytes of a fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The four QEMU streams.
pub const STREAMS: [&str; 4] = [
    "pc-default.mig",
    "pc-i8042.mig",
    "pc-virtio-blk.mig",
    "pc-virtio-net.mig",
];
