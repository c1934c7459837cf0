//! Test support shared by the examples' integration tests, one job a module:
//! where the fixtures live, checks on a binary's output, and the demo binary
//! run as separate processes.
#![allow(dead_code)]

pub mod fixtures;
pub mod output;
pub mod processes;
