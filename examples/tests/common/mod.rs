//! Test support shared by the examples' integration tests, one job a module:
//! where the fixtures live, and checks on a binary's output.
#![allow(dead_code)]

pub mod fixtures;
pub mod output;
