//! Wire primitives: big-endian [`Reader`] and [`Writer`] over `bytes`.
//!
//! Both track their byte offset so every error can say where it happened; both
//! check bounds before every access so hostile input yields an error, never a panic.

#![deny(unsafe_code)]

mod reader;
mod writer;

pub use reader::{CountedName, Reader, Refill, MAX_NAME_LEN};
pub use writer::Writer;
