//! Test support shared by this crate's integration tests, one job a module:
//! the fixture streams, cutting sections out of a stream, the keyboard
//! controller's three sections, the unmodelled devices of a QEMU stream, and a
//! live QEMU driven over QMP.
#![allow(dead_code)]

pub mod fixtures;
pub mod i8042;
pub mod opaque;
pub mod qemu;
pub mod sections;
pub mod streams;
