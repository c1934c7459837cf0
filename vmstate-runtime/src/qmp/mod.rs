//! A QMP server (QEMU's monitor protocol) for the migration commands, so that
//! tools written for QEMU (libvirt-style scripts, `qemu.qmp`, `qmp-shell`)
//! drive a VMM's migrations. Feature `qmp`.
//!
//! * [`framing`]: JSON texts over a stream, bounded, strict (duplicate keys
//!   refused, as QEMU does);
//! * [`protocol`]: the greeting, capabilities negotiation, `execute` / `id` /
//!   `return` / `error` (`class` and `desc`), events with `timestamp`;
//! * [`args`]: command arguments with QEMU's names and its error texts
//!   (`Parameter 'uri' is missing`, `Parameter 'bogus' is unexpected`, ...);
//! * [`monitor`]: the commands over a [`MigrationHost`] the VMM implements,
//!   and the MIGRATION / MIGRATION_PASS / STOP / RESUME events;
//! * [`params`]: QEMU 7.2's migration parameters, defaults and range checks;
//! * [`server`]: unix-socket and loopback-tcp servers.
//!
//! Commands: `migrate`, `migrate-incoming`, `query-migrate`,
//! `migrate-set-capabilities`, `query-migrate-capabilities`,
//! `migrate-set-parameters`, `query-migrate-parameters`, `migrate_cancel`,
//! `migrate-continue`, `migrate-pause`, `migrate-recover`,
//! `migrate-start-postcopy`, `query-status`, `stop`, `cont`, plus
//! `qmp_capabilities`, `query-version`, `query-commands` and `quit`.
//!
//! ```no_run
//! use vmstate_runtime::migration::MigrationHandle;
//! use vmstate_runtime::qmp::{
//!     HostError, IncomingMigration, IncomingSetup, MigrationHost, Monitor, OutgoingSetup,
//!     QmpServer, VmStart,
//! };
//!
//! struct MyVmm { running: bool }
//!
//! impl MigrationHost for MyVmm {
//!     fn start_migration(&mut self, setup: &OutgoingSetup) -> Result<MigrationHandle, HostError> {
//!         // Build the registry, the VmControl and a MigrationConfig from
//!         // setup.uri, setup.caps and setup.params, then:
//!         // Ok(vmstate_runtime::migration::start_migration(config, registry, vm)?)
//!         Err(HostError("not in this example".into()))
//!     }
//!     fn start_incoming(&mut self, setup: IncomingSetup) -> Result<IncomingMigration, HostError> {
//!         // Incoming::listen(&setup.uri), run_incoming on a thread with
//!         // setup.cancel in the LoadOptions, reporting into setup.stats.
//!         Ok(IncomingMigration::new(setup.stats.clone()))
//!     }
//!     fn is_running(&self) -> bool { self.running }
//!     fn stop(&mut self) -> Result<(), HostError> { self.running = false; Ok(()) }
//!     fn cont(&mut self) -> Result<(), HostError> { self.running = true; Ok(()) }
//! }
//!
//! let monitor = Monitor::new(Box::new(MyVmm { running: true }), VmStart::Running)?;
//! let server = QmpServer::start(monitor.clone(), &"unix:/tmp/vmm-qmp.sock".parse()?)?;
//! while !monitor.quit_requested() {
//!     std::thread::sleep(std::time::Duration::from_millis(100));
//! }
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod args;
pub mod framing;
pub mod monitor;
pub mod params;
pub mod protocol;
pub mod server;

#[cfg(test)]
mod tests;

pub use monitor::{
    EventListener, HostError, IncomingMigration, IncomingSetup, MigrationHost, Monitor,
    OutgoingSetup, Settings, VmStart,
};
pub use protocol::{QmpVersion, Session};
pub use server::{QmpAddress, QmpServer};

/// QEMU's error classes (qapi/error.json `QapiErrorClass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Almost every error.
    GenericError,
    /// No such command (or not in this mode).
    CommandNotFound,
    /// A device exists but is not active.
    DeviceNotActive,
    /// No such device.
    DeviceNotFound,
}

impl ErrorClass {
    /// The `class` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
        }
    }
}

/// A QMP error reply's content: `{"error": {"class": ..., "desc": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {desc}", class.as_str())]
pub struct QmpError {
    /// The class.
    pub class: ErrorClass,
    /// The human-readable text.
    pub desc: String,
}

impl QmpError {
    /// An error of `class`.
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        QmpError {
            class,
            desc: desc.into(),
        }
    }

    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> Self {
        Self::new(ErrorClass::GenericError, desc)
    }
}
