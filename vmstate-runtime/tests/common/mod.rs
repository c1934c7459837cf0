//! Test support shared by this crate's integration tests, one job a module:
//! building stream bytes, the network, and synthetic savevm handlers.
#![allow(dead_code)]

pub mod bytes;
pub mod gate;
pub mod net;
pub mod ram;
