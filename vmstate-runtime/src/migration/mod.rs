//! Live migration on top of the savevm stream:
//!
//! * [`start_migration`] and [`MigrationHandle`]: the source driver (precopy,
//!   postcopy and its recovery, cancel), on its own thread;
//! * [`run_incoming`] / [`run_incoming_with`]: the destination driver, answering on
//!   the return path;
//! * [`MigrationParameters`] and [`MigrationCapabilities`] (QMP
//!   `migrate-set-parameters` / `-capabilities`), [`MigrationStatus`] and its
//!   transitions, [`MigrationStats`] (QMP `query-migrate`);
//! * events instead of polling ([`MigrationEvent`]: QMP `MIGRATION` and
//!   `MIGRATION_PASS`) from [`StatsHandle::subscribe`] /
//!   [`MigrationHandle::subscribe`], and [`StatsHandle::wait_for`] a status;
//! * transports with QEMU-style URIs ([`MigrationUri`], [`connect`], [`Incoming`],
//!   `fd:N` for an inherited descriptor), and connections the caller already
//!   has ([`Connection`]'s constructors, [`start_migration_on`],
//!   [`Incoming::from_connection`]);
//! * the incoming side's timeouts and [`CancelToken`] (a peer that never
//!   connects, goes silent or stops reading cannot hold the destination), and
//!   the source's ([`SourceOptions`]: a destination that stops reading or owes
//!   a reply cannot hold the source).
//!
//! Failures are typed: cancel, peer failure, transport, return path, postcopy and
//! postcopy recovery each have their [`ErrorKind`](crate::ErrorKind).

pub mod events;
mod incoming;
mod incoming_hooks;
mod params;
#[cfg(feature = "serde")]
mod qmp_json;
mod source;
#[cfg(target_os = "linux")]
mod splice;
#[cfg(target_os = "linux")]
pub(crate) use splice::Splicer;
pub(crate) use transport::enlarge_send_buffer;
mod stall;
mod stats;
mod status;
mod transport;

pub use events::{MigrationEvent, EVENT_HISTORY_LIMIT};
pub use incoming::{
    run_incoming, run_incoming_with, IncomingHooks, PausedHook, PostcopyState, INCOMING_READ_SIZE,
};
pub use params::{
    MigrationCapabilities, MigrationParameters, BUFFER_DELAY_MS, DEFAULT_DOWNTIME_LIMIT_MS,
    DEFAULT_MAX_BANDWIDTH, MAX_DOWNTIME_LIMIT_MS,
};
pub use source::{
    read_return_path, read_return_path_sized, start_migration, start_migration_on,
    start_migration_with, MigrationConfig, MigrationHandle, SourceOptions, VmControl,
    DEFAULT_REPLY_TIMEOUT, DEFAULT_SOURCE_WRITE_TIMEOUT, MAX_QUEUED_PAGE_REQUESTS,
};
pub use stall::{CancelToken, IncomingPhase, DEFAULT_RP_WRITE_TIMEOUT, POLL_INTERVAL};
pub use stats::{MigrationStats, StatsHandle};
pub use status::MigrationStatus;
pub use transport::{
    connect, mem_pair, Connection, Incoming, MigrationUri, ReadWrite, TransportRefill,
};
