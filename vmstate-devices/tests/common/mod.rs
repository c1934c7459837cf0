//! Test support shared by this crate's integration tests, one job a module:
//! the fixture streams, cutting sections out of a stream, the keyboard
//! controller's three sections, the unmodelled devices of a QEMU stream, a
//! live QEMU driven over QMP, and the link pieces of thread-to-thread migrations.
#![allow(dead_code)]

pub mod fixtures;
pub mod i8042;
pub mod link;
pub mod opaque;
pub mod qemu;
pub mod sections;
pub mod streams;
pub mod virtio;
