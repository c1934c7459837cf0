//! # vmstate-runtime
//!
//! The runtime half of vmstate-rs: QEMU's VMState model in Rust.
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
