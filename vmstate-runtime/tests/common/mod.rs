//! Test support shared by this crate's integration tests, one job a module:
//! a counting allocator, building stream bytes, a peer in a child process,
//! error-kind checks, the network (and a
//! measuring, cutting proxy with a map of the stream it saw), gates, a recording
//! VM, and the synthetic savevm handlers (a RAM-like iterative one, a chunked
//! payload, an observed device). Each test crate uses part of it.
#![allow(dead_code)]

pub mod alloc;
pub mod bytes;
pub mod child;
pub mod cut;
pub mod device;
pub mod gate;
pub mod kinds;
pub mod net;
pub mod payload;
pub mod ram;
pub mod stream;
pub mod stream_map;
pub mod vm;
