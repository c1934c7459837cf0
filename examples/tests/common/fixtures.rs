//! The fixtures: QEMU 7.2's own tool output in `tests/fixtures` (see the README
//! there), and the QEMU 7.2 streams it describes, which live once, in
//! `vmstate-devices/tests/fixtures/qemu-7.2`.

use std::path::PathBuf;

/// The four QEMU 7.2 streams, by name without ".mig".
pub const STREAMS: [&str; 4] = ["pc-default", "pc-i8042", "pc-virtio-blk", "pc-virtio-net"];

/// The path of the QEMU 7.2 stream `name` (without ".mig").
pub fn stream_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../vmstate-devices/tests/fixtures/qemu-7.2/{name}.mig"
    ))
}

/// The bytes of the QEMU 7.2 stream `name` (without ".mig").
pub fn stream(name: &str) -> Vec<u8> {
    read(stream_path(name))
}

/// The text of `file` in this crate's `tests/fixtures` (an oracle written by
/// QEMU's own tools).
pub fn oracle(file: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    String::from_utf8(read(p)).unwrap()
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
