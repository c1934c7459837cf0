//! The example programs' code, as a library so tests can drive it in-process
//! (the machine they migrate is `vmstate_devices::machine`):
//!
//! * [`demo`]: the live-migration demo (`cargo run --release -p vmstate-examples --bin demo`);
//! * [`analyze`]: reading migration stream files like QEMU's
//!   `analyze-migration.py` (`vmstate analyze`);
//! * [`dump`]: wire layouts, `-dump-vmstate` JSON and the wire-format page of
//!   the device catalog (`vmstate describe`, `dump-vmstate`, `docs`);
//! * [`schema`]: `-dump-vmstate` JSON from static descriptions, and the static
//!   compatibility check of two dumps (`vmstate check`);
//! * [`interop`]: `vmstate rewrite`, `receive` and `send`, on
//!   `vmstate_devices::qemu_pc`;
//! * [`logging`]: the binaries' `tracing` output (`RUST_LOG`, `-v`).
#![deny(missing_docs)]

pub mod analyze;
pub mod demo;
pub mod dump;
pub mod interop;
pub mod logging;
pub mod schema;

/// Formats bytes as a classic 16-bytes-per-line hex dump with offsets.
///
/// ```
/// let s = vmstate_examples::hexdump(b"QEVM");
/// assert!(s.starts_with("00000000  51 45 56 4d"));
/// ```
pub fn hexdump(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", i * 16);
        for b in line {
            let _ = write!(out, " {b:02x}");
        }
        for _ in line.len()..16 {
            out.push_str("   ");
        }
        out.push_str("  |");
        for &b in line {
            out.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    out
}

/// The README's code examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
