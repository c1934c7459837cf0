//! Helpers shared by the example programs.

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
