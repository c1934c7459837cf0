//! Schemas of device state as JSON in QEMU's `-dump-vmstate` shape, and the
//! static compatibility check between two of them.
//!
//! (Library code behind the `vmstate` tool's `describe`, `dump-vmstate`,
//! `docs` and `check`. It lives here, not in the runtime: linking `serde_json`
//! into the runtime makes its `PartialEq<Value>` impls visible to every
//! dependent crate and breaks type inference in their code, e.g.
//! `assert_eq!(bytes, [])`; and the device list it dumps is this crate's
//! [`catalog`](crate::catalog).)
//!
//! * [`dump`]: a [`VmStateDescription`](vmstate_runtime::VmStateDescription) as the JSON
//!   `qemu-system-* -dump-vmstate FILE` writes, so dumps of this project and of
//!   QEMU can be compared with the same tools;
//! * [`check`]: the rules of QEMU's `scripts/vmstate-static-checker.py` (same
//!   verdict, same problems flagged), each problem classified by the migration
//!   direction it breaks;
//! * [`catalog`]: the catalog's device models as wire layout tables,
//!   `-dump-vmstate` JSON and the Markdown wire-format page.
//!
//! ```
//! use vmstate_devices::schema::{check, dump};
//! use vmstate_runtime::VmState;
//!
//! #[derive(VmState)]
//! #[vmstate(name = "uart", version = 1)]
//! struct UartV1 { lcr: u8 }
//!
//! #[derive(VmState)]
//! #[vmstate(name = "uart", version = 1)]
//! struct UartV2 { lcr: u8, mcr: u8 }
//!
//! let old = dump::dump_vmstate("pc", &[dump::DumpEntry::new("uart", UartV1::DESCRIPTION)]);
//! let new = dump::dump_vmstate("pc", &[dump::DumpEntry::new("uart", UartV2::DESCRIPTION)]);
//! // QEMU's checker does not see a field added at the end without a version bump
//! // (old -> new), but the reverse pass does, and it breaks both directions.
//! let report = check::compare(&old, &new)?;
//! assert!(report.forward.is_empty());
//! assert_eq!(report.backward.len(), 1);
//! assert!(!report.is_compatible_both_ways());
//! # Ok::<(), vmstate_devices::schema::check::SchemaError>(())
//! ```

pub mod catalog;
pub mod check;
pub mod dump;
