//! Test support shared by this crate's integration tests, one job a module:
//! a counting allocator, building stream bytes, error-kind checks, the network, gates, a recording
//! VM, and the synthetic savevm handlers (a RAM-like iterative one, a chunked
//! payload, an observed device). Each test crate uses part of it.
#![allow(dead_code)]

pub mod alloc;
pub mod bytes;
pub mod device;
pub mod gate;
pub mod kinds;
pub mod net;
pub mod payload;
pub mod ram;
pub mod stream;
pub mod vm;
