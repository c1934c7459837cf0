//! Guest RAM as a device: QEMU's "ram" section over rust-vmm `vm-memory`.
//!
//! * [`protocol`]: the RAM record protocol (`RAM_SAVE_FLAG_*`, encode and
//!   decode with every check of QEMU's loader);
//! * [`block`]: RAMBlocks in RAM-list order, backed by `GuestMemoryMmap`-style
//!   regions with vm-memory's `AtomicBitmap`;
//! * [`dirty`]: the migration dirty bitmap and the [`DirtyLog`] it is synced from;
//! * [`section`]: the "ram" section's `SaveVmHandlers` (precopy).

pub mod block;
pub mod dirty;
mod error;
pub mod protocol;
pub mod section;

pub use block::{RamBlock, RamBlockList, RamBlockSpec, RamRegion};
pub use dirty::{DirtyBitmap, DirtyLog, VmMemoryDirtyLog};
pub use error::{RamError, RamErrorKind};
pub use section::{RamSection, RamSectionConfig};
