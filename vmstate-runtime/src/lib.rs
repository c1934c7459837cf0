//! # vmstate-runtime
//!
//! The runtime half of vmstate-rs: QEMU's VMState model in Rust.
//!
//! * [`wire`]: big-endian [`Reader`](wire::Reader)/[`Writer`](wire::Writer) over
//!   `bytes`, bounded and offset-aware;
//! * [`VmState`] and [`VmStateField`]: the traits `#[derive(VmState)]` implements,
//!   with encodings for the standard types;
//! * [`VmStateDescription`]: the static description every type carries (the source
//!   for docs, vmdesc JSON and compatibility checks);
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

mod codec;
pub mod error;
pub mod migration;
mod priority;
pub mod savevm;
pub mod vmstate;
pub mod wire;

pub use codec::{from_bytes, to_bytes};
pub use error::{Error, ErrorKind, PathSegment, Result};
pub use priority::MigrationPriority;
pub use vmstate::{
    check_version, FieldDescription, FieldLayout, FieldType, Hooks, PlainField,
    SubsectionDescription, VmState, VmStateDescription, VmStateField, VmStateTmp, WithTmp,
};
/// `#[derive(VmState)]`: see the [`vmstate_derive`] crate for the attribute reference.
pub use vmstate_derive::VmState;

/// Support code for the derive's output. Not a public API: anything here may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::vmstate::helpers::*;
    pub use bytes::{Buf, BufMut};
    pub use core::result::Result;
}
