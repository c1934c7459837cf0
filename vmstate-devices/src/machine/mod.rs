//! A small machine to migrate: guest RAM with a dirty log, the PC keyboard
//! controller, a guest workload thread that writes memory and types while the
//! VM runs, and the vCPU pause/resume the migration driver calls
//! ([`VmControl`](vmstate_runtime::migration::VmControl)). The live-migration
//! demo, the stream analyzer and the tests use it.
//!
//! One module per job:
//!
//! * `composition`: [`Machine`], what the machine is made of and its
//!   [`Registry`](vmstate_runtime::savevm::Registry) of sections;
//! * `guest_memory`: [`GuestMemory`], the RAM bytes and their dirty log;
//! * `demo_ram`: [`RamSection`], the "ram" section's handlers and the record
//!   flags ([`flags`]). **This is the demo's own RAM handler: the real RAM model
//!   (`vmstate-devices`' `ram` module, on `vm-memory`) replaces it in the next
//!   increment of issue 8**;
//! * `workload`: [`Guest`], the guest thread, and what it does ([`Workload`]);
//! * `vm_control`: pausing and resuming that guest for the migration driver.
//!
//! ```
//! use vmstate_devices::machine::{Machine, RAM_SECTION};
//!
//! let m = Machine::new(16); // 16 pages of RAM
//! m.boot(50, 1).unwrap(); // half of them hold data
//! let reg = m.registry().unwrap();
//! let sections: Vec<&str> = reg.entries().map(|e| e.idstr.as_str()).collect();
//! assert_eq!(sections, [RAM_SECTION, "ps2kbd", "ps2mouse", "pckbd"]);
//! ```

use std::sync::{Mutex, MutexGuard};

use vmstate_runtime::{Error, Result};

mod composition;
mod demo_ram;
mod guest_memory;
mod vm_control;
mod workload;

pub use composition::Machine;
pub use demo_ram::{flags, RamSection, RamStats, PART_BUDGET, RAM_BLOCK, RAM_SECTION, RAM_VERSION};
pub use guest_memory::{GuestMemory, SharedMemory, PAGE_SIZE};
pub use workload::{Guest, GuestCounters, Rng, Workload};

/// Machine type written in (and checked against) the configuration record.
pub const MACHINE_TYPE: &str = "vmstate-demo";

/// Locks a piece of machine state shared with the guest thread.
fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::poisoned("machine state mutex poisoned by a panicking thread"))
}
