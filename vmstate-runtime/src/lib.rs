//! # vmstate-runtime
//!
//! The runtime half of vmstate-rs: QEMU's VMState model, savevm stream and live
//! migration in Rust, byte-compatible with QEMU 7.2. A VMM declares its device
//! state with `#[derive(VmState)]`, registers it, and migrates it to another
//! process (ours or a QEMU) over a socket, a pipe or a file.
//!
//! This page walks through the four steps of a VMM that migrates: declare a
//! device, register it, migrate it with your own [`VmControl`](migration::VmControl),
//! load it on the other side. `examples/src/bin/minimal_vmm.rs` is the same
//! program in two processes (`minimal_vmm --role destination --incoming unix:P`,
//! `minimal_vmm --role source --uri unix:P`).
//!
//! ## 1. Declare a device
//!
//! A struct whose fields are the device's migratable state. The derive writes
//! QEMU's wire format: fields in order, big-endian, with the section's name and
//! version; `since` fields exist from that version on (an older stream leaves
//! them at their default), and [`to_bytes`]/[`from_bytes`] show the bytes.
//!
//! ```
//! use vmstate_runtime::{from_bytes, to_bytes, VmState};
//!
//! #[derive(VmState, Default, Debug, PartialEq)]
//! #[vmstate(name = "rtc", version = 2)]
//! struct Rtc {
//!     regs: [u8; 4],
//!     #[vmstate(since = 2)]
//!     period: u32,
//! }
//!
//! let rtc = Rtc { regs: [1, 2, 3, 4], period: 9 };
//! let bytes = to_bytes(&rtc)?;
//! assert_eq!(bytes, [1, 2, 3, 4, 0, 0, 0, 9]);
//! assert_eq!(from_bytes::<Rtc>(&bytes, 2)?, rtc);
//! # Ok::<(), vmstate_runtime::Error>(())
//! ```
//!
//! The attribute reference (subsections, arrays, pointers, hooks, `WithTmp`) is
//! in the [`vmstate_derive`] crate; QEMU's own devices, already declared, are in
//! `vmstate-devices`.
//!
//! ## 2. Register it
//!
//! A [`Registry`](savevm::Registry) is the ordered list of what migrates, with
//! the section ids and instance ids QEMU would give. A device shared with your
//! vCPU threads goes in as `Arc<Mutex<T>>`: the migration locks it to save (on
//! the source) or load (on the destination).
//!
//! ## 3. Migrate it, with your own `VmControl`
//!
//! The source needs two things from the VMM: stop the vCPUs at switchover, and
//! restart them if the migration fails or is cancelled. That is
//! [`VmControl`](migration::VmControl). [`MigrationConfig::new`](migration::MigrationConfig::new)
//! takes the URI (`unix:PATH`, `tcp:HOST:PORT`, `exec:CMD`, `file:PATH`, as
//! QEMU's `migrate`) and puts everything else at QEMU's defaults;
//! [`start_migration`](migration::start_migration) runs it on its own thread and
//! returns a handle for statistics, cancel and postcopy.
//!
//! ## 4. Load it on the other side
//!
//! The destination registers the same devices (in their default state), listens
//! with [`Incoming::listen`](migration::Incoming::listen) and runs
//! [`run_incoming`](migration::run_incoming) with
//! [`LoadOptions::default()`](savevm::LoadOptions), which accepts what a
//! default source sends (its configuration record for
//! [`DEFAULT_MACHINE_TYPE`](savevm::DEFAULT_MACHINE_TYPE)).
//!
//! All four steps, source and destination in one process:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use vmstate_runtime::migration::{
//!     run_incoming, start_migration, Incoming, MigrationConfig, MigrationStatus, MigrationUri,
//!     StatsHandle, VmControl,
//! };
//! use vmstate_runtime::savevm::{LoadOptions, Registry};
//! use vmstate_runtime::VmState;
//!
//! // 1. The device.
//! #[derive(VmState, Default, Debug, Clone, PartialEq)]
//! #[vmstate(name = "acme-uart", version = 1)]
//! struct Uart {
//!     regs: [u8; 8],
//!     rx_count: u32,
//! }
//!
//! // 3. The VMM's side of the switchover.
//! struct MyVcpus;
//! impl VmControl for MyVcpus {
//!     fn pause(&mut self) -> vmstate_runtime::Result<()> {
//!         Ok(()) // stop the vCPU threads here
//!     }
//!     fn resume(&mut self) -> vmstate_runtime::Result<()> {
//!         Ok(()) // restart them here (the migration failed or was cancelled)
//!     }
//! }
//!
//! let path = std::env::temp_dir().join(format!("vmstate-doc-{}.sock", std::process::id()));
//! let _ = std::fs::remove_file(&path);
//! let uri: MigrationUri = format!("unix:{}", path.display()).parse()?;
//!
//! // 4. The destination: same devices, default state; listen, then load.
//! let incoming = Incoming::listen(&uri)?;
//! let destination = std::thread::spawn(move || {
//!     let uart = Arc::new(Mutex::new(Uart::default()));
//!     let mut registry = Registry::new();
//!     registry.vmstate_register(0, uart.clone())?;
//!     run_incoming(incoming, &mut registry, LoadOptions::default(), &StatsHandle::default())?;
//!     let loaded = uart.lock().unwrap().clone();
//!     Ok::<Uart, vmstate_runtime::Error>(loaded)
//! });
//!
//! // 2. The source registers its device ...
//! let uart = Uart { regs: *b"hello!\r\n", rx_count: 7 };
//! let mut registry = Registry::new();
//! registry.vmstate_register(0, Arc::new(Mutex::new(uart.clone())))?;
//! // ... and 3. migrates it.
//! let handle = start_migration(MigrationConfig::new(uri), registry, Box::new(MyVcpus))?;
//! let stats = handle.stats(); // poll from another thread for a progress bar
//! let (_registry, outcome) = handle.wait();
//! outcome?;
//! assert_eq!(stats.snapshot().status, MigrationStatus::Completed);
//!
//! assert_eq!(destination.join().unwrap()?, uart);
//! let _ = std::fs::remove_file(&path);
//! # Ok::<(), vmstate_runtime::Error>(())
//! ```
//!
//! ## Changing the defaults
//!
//! Every config and stats struct is `#[non_exhaustive]`: start from `new` or
//! `Default` and change what you need with the `with_*` setters, so new
//! fields in later releases do not break your code.
//!
//! ```
//! use std::time::Duration;
//! use vmstate_runtime::migration::{MigrationCapabilities, MigrationConfig, MigrationParameters};
//! use vmstate_runtime::savevm::{Configuration, LoadOptions};
//!
//! let config = MigrationConfig::new("tcp:10.0.0.2:4444".parse()?)
//!     .with_machine("pc-q35-7.2")
//!     .with_params(MigrationParameters::new().with_downtime_limit_ms(50))
//!     .with_caps(MigrationCapabilities::new().with_postcopy_ram(true));
//! // The destination expects the same machine type, and gives up on a source
//! // that does not connect within a minute.
//! let load = LoadOptions::default()
//!     .with_configuration(Configuration::new("pc-q35-7.2"))
//!     .with_accept_timeout(Duration::from_secs(60));
//! # let _ = (config, load);
//! # Ok::<(), vmstate_runtime::Error>(())
//! ```
//!
//! When the two sides disagree, the destination's error says what each side has
//! and which option to set: a different machine type
//! ([`ConfigMismatch::MachineType`](error::ConfigMismatch::MachineType)), a
//! stream without the configuration record (QEMU's `send-configuration=off`:
//! [`ErrorKind::MissingConfiguration`], load it with
//! `LoadOptions::default().with_configuration(None)`), or one with it where none
//! is expected ([`ErrorKind::UnexpectedConfiguration`]).
//!
//! ## Errors
//!
//! One [`Error`] type: an [`ErrorKind`] to match on (grouped by concern:
//! stream, transport, timeouts, return path, postcopy), the byte offset and the
//! path (section, field) where it happened; its message says what, where and
//! why. Untrusted input never panics and never allocates by a length the stream
//! claims.
//!
//! ## Features
//!
//! * `serde`: `Serialize`/`Deserialize` for
//!   [`MigrationCapabilities`](migration::MigrationCapabilities) and
//!   [`MigrationParameters`](migration::MigrationParameters), `Serialize` for
//!   [`MigrationStats`](migration::MigrationStats) (a `query-migrate` reply),
//!   with QMP's JSON names.
//!
//! ## Modules
//!
//! * [`wire`]: big-endian [`Reader`](wire::Reader)/[`Writer`](wire::Writer) over
//!   `bytes`, bounded and offset-aware;
//! * [`VmState`] and [`VmStateField`]: the traits `#[derive(VmState)]` implements,
//!   with encodings for the standard types (see [`vmstate`]);
//! * [`VmStateDescription`]: the static description every type carries (the source
//!   for layout docs and the vmdesc JSON);
//! * [`savevm`]: QEMU's migration stream (sections, commands, vmdesc) and the
//!   registry of migratable components;
//! * [`migration`]: live migration drivers, transports, parameters and status;
//! * `qmp` (feature `qmp`): a QMP server for the migration commands, so tools
//!   written for QEMU drive a VMM's migrations;
//! * [`Error`]: one error type that says what, where (field path, byte offset) and why.

#![deny(missing_docs)]

// Lets the derive's absolute `::vmstate_runtime::` paths work inside this crate's tests.
extern crate self as vmstate_runtime;

#[macro_use]
mod builder;
mod codec;
pub mod error;
pub mod migration;
mod priority;
#[cfg(feature = "qmp")]
pub mod qmp;
pub mod savevm;
pub mod vmstate;
pub mod wire;

pub use codec::{from_bytes, to_bytes};
pub use error::{Error, ErrorKind, PathSegment, Result};
pub use priority::MigrationPriority;
pub use vmstate::{
    FieldDescription, FieldLayout, FieldType, Hooks, SubsectionDescription, VmState,
    VmStateDescription, VmStateField, VmStateTmp, WithTmp,
};
/// `#[derive(VmState)]`: see the [`vmstate_derive`] crate for the attribute reference.
pub use vmstate_derive::VmState;

/// Everything the derive's output names, and nothing else names: generated code
/// reaches the runtime, `core` and the primitive types only through this module
/// (so it works where the caller shadows `Result`, `Option`, `core` or `std`, and
/// through a re-export of the runtime). Not a public API: anything here may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    // The traits and description types the impls are written against.
    pub use crate::error::{Error, ErrorKind};
    pub use crate::priority::MigrationPriority;
    pub use crate::vmstate::{
        DescribeSink, FieldDescription, FieldLayout, FieldType, Hooks, SubsectionDescription,
        VmState, VmStateDescription, VmStateField, VmStateTmp,
    };
    pub use crate::wire::{Reader, Writer};
    pub use bytes::{Buf, BufMut};

    // The calls the generated bodies make, one module per concern.
    pub use crate::vmstate::describe_sink::{
        begin_vmsd, end_vmsd, is_recording, save_field, save_value,
    };
    pub use crate::vmstate::encodings::*;
    pub use crate::vmstate::hooks::{hook, validation_failed};
    pub use crate::vmstate::plain::{PlainField, PlainRun};
    pub use crate::vmstate::subsection::{
        load_subsection, next_subsection, no_subsections, save_subsection, str_eq, str_starts_with,
        subsection_index_out_of_range, SubsectionHeader,
    };
    pub use crate::vmstate::with_tmp::{load_tmp, save_tmp, tmp_type};

    // `core` items and primitive types, by a path no caller can shadow.
    pub use core::marker::Sized;
    pub use core::mem::size_of;
    pub use core::option::Option;
    pub use core::primitive::{bool, i16, i32, i64, i8, str, u16, u32, u64, u8, usize};
    pub use core::result::Result;
    pub use core::{assert, unreachable};
}
