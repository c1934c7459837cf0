//! Live migration: parameters, status, statistics, transports, and the source and
//! destination drivers built on the savevm stream.

#![deny(unsafe_code)]

mod incoming;
mod params;
mod source;
mod stats;
mod status;
mod transport;

pub use incoming::{run_incoming, run_incoming_with, IncomingHooks, PausedHook, PostcopyState};
pub use params::{
    MigrationCapabilities, MigrationParameters, BUFFER_DELAY_MS, DEFAULT_DOWNTIME_LIMIT_MS,
    DEFAULT_MAX_BANDWIDTH, MAX_DOWNTIME_LIMIT_MS,
};
pub use source::{start_migration, MigrationConfig, MigrationHandle, VmControl};
pub use stats::{MigrationStats, StatsHandle};
pub use status::MigrationStatus;
pub use transport::{
    connect, mem_pair, Connection, Incoming, MigrationUri, ReadWrite, TransportRefill,
};
