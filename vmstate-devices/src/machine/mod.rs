//! A small machine to migrate: guest RAM (the RAM model of [`crate::ram`], on
//! vm-memory, with its dirty log), the PC keyboard controller, a guest workload
//! thread that writes memory and types while the VM runs, and the vCPU
//! pause/resume the migration driver calls
//! ([`VmControl`](vmstate_runtime::migration::VmControl)). The live-migration
//! demo, the stream analyzer and the tests use it.
//!
//! One module per job:
//!
//! * `composition`: [`Machine`], what the machine is made of (RAMBlocks:
//!   [`RAM_BLOCK`] alone, or QEMU 7.2's pc block set with
//!   [`Machine::qemu_pc`], so a QEMU pc stream's RAM loads into it block for
//!   block; registered as QEMU's "ram" section through
//!   [`ram::RamSection`](crate::ram::RamSection)) and its
//!   [`Registry`](vmstate_runtime::savevm::Registry) of sections;
//! * `workload`: [`Guest`], the guest thread, what it does ([`Workload`]),
//!   and its vCPU throttle ([`CpuThrottle`], for auto-converge);
//! * `virtio`: virtio-net, -blk (over a disk image), -rng and -balloon at
//!   QEMU's PCI slots ([`Machine::with_virtio`]), the guest's drivers for
//!   them ([`VirtioGuest`]) and the check after a migration
//!   ([`Machine::virtio_resume`]);
//! * `vm_control`: pausing and resuming that guest for the migration driver.
//!
//! ```
//! use vmstate_devices::machine::Machine;
//! use vmstate_devices::ram::protocol::SECTION_NAME as RAM_SECTION;
//!
//! let m = Machine::new(16).unwrap(); // 16 pages of RAM
//! m.boot(50, 1).unwrap(); // half of them hold data
//! let reg = m.registry().unwrap();
//! let sections: Vec<&str> = reg.entries().map(|e| e.idstr.as_str()).collect();
//! assert_eq!(sections, [RAM_SECTION, "ps2kbd", "ps2mouse", "pckbd"]);
//! ```

use std::sync::{Mutex, MutexGuard};

use vmstate_runtime::{Error, Result};

mod composition;
mod virtio;
mod vm_control;
mod workload;

pub use composition::{Machine, PART_BUDGET, RAM_BLOCK};
pub use virtio::{
    VirtioCounters, VirtioDevices, VirtioGuest, VirtioVerdict, BALLOON_SLOT, BLK_SLOT, DISK_SIZE,
    MAC, MIN_RAM, NET_SLOT, RNG_SLOT, VIRTIO_AREA,
};
pub use workload::{CpuThrottle, Guest, GuestCounters, Rng, Workload};

/// Machine type written in (and checked against) the configuration record.
pub const MACHINE_TYPE: &str = "vmstate-demo";

/// Locks a piece of machine state shared with the guest thread.
fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::poisoned("machine state mutex poisoned by a panicking thread"))
}

/// What the machine's unit tests share.
#[cfg(test)]
mod test_support {
    use super::{Machine, RAM_BLOCK};

    /// The bytes of the machine's RAM block.
    pub(super) fn ram_bytes(m: &Machine) -> Vec<u8> {
        let ram = m.ram.lock().unwrap();
        ram.get(RAM_BLOCK).unwrap().to_vec().unwrap()
    }
}
