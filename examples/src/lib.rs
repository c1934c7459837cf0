//! The example programs' code, as a library so tests can drive it in-process
//! (the machine they migrate is `vmstate_devices::machine`):
//!
//! * [`demo`]: the live-migration demo (`cargo run --release -p vmstate-examples --bin demo`);
//! * [`interop`]: `vmstate rewrite`, `receive` and `send`, on
//!   `vmstate_devices::qemu_pc`;
//! * [`logging`]: the binaries' `tracing` output (`RUST_LOG`, `-v`).
//!
//! The `vmstate` tool's other subcommands are thin front ends over library code
//! of `vmstate-devices`, re-exported here under their old paths:
//! [`analyze`] (`vmstate_devices::analyze`, feature `analyze`), [`dump`]
//! (`vmstate_devices::schema::catalog`) and [`schema`]
//! (`vmstate_devices::schema`).
#![deny(missing_docs)]

pub mod demo;
pub mod interop;
pub mod logging;

/// `vmstate analyze`'s library: [`vmstate_devices::analyze`].
pub use vmstate_devices::analyze;
/// Schemas and the static check: [`vmstate_devices::schema`].
pub use vmstate_devices::schema;
/// The catalog's dumps and pages: [`vmstate_devices::schema::catalog`].
pub use vmstate_devices::schema::catalog as dump;

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
