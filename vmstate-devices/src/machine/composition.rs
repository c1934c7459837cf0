//! [`Machine`]: what the machine is made of (guest RAM and a PC keyboard
//! controller), how it boots, and its registry of migrated sections.

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::Registry;
use vmstate_runtime::Result;

use super::demo_ram::{RamSection, RamStats, PART_BUDGET, RAM_SECTION, RAM_VERSION};
use super::guest_memory::{GuestMemory, SharedMemory, PAGE_SIZE};
use super::lock;
use super::workload::Rng;
use crate::pckbd::{self, I8042};

/// The demo machine: guest RAM and a PC keyboard controller.
#[derive(Clone)]
pub struct Machine {
    /// Guest RAM (one RAMBlock, [`RAM_BLOCK`](super::RAM_BLOCK)).
    pub ram: SharedMemory,
    /// The i8042 with its PS/2 keyboard and mouse.
    pub i8042: Arc<Mutex<I8042>>,
    /// The RAM section's counters.
    pub ram_stats: Arc<RamStats>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine with `pages` pages of zeroed RAM and a keyboard controller
    /// fresh from reset.
    pub fn new(pages: usize) -> Self {
        Machine {
            ram: Arc::new(Mutex::new(GuestMemory::new(pages))),
            i8042: Arc::new(Mutex::new(I8042::default())),
            ram_stats: Arc::new(RamStats::default()),
        }
    }

    /// "Boots" the guest: fills the first `used_percent` of RAM with data (the
    /// rest stays zero pages, as in a fresh guest) and sets the keyboard
    /// controller up as an OS driver does (translation and interrupts on, Num
    /// Lock LED, mouse reporting enabled).
    pub fn boot(&self, used_percent: u32, seed: u64) -> Result<()> {
        {
            let mut mem = lock(&self.ram)?;
            let used = mem.len() / PAGE_SIZE * used_percent.min(100) as usize / 100 * PAGE_SIZE;
            let mut rng = Rng(seed | 1);
            for chunk in mem.data[..used].chunks_exact_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            mem.clear_dirty_log();
        }
        let mut kbd = lock(&self.i8042)?;
        for (port, val) in [
            (0x64, 0x60), // write command byte:
            (0x60, 0x47), //   translate to set 1, system flag, both interrupts on
            (0x60, 0xed), // keyboard: set LEDs ...
            (0x60, 0x02), //   ... Num Lock
            (0x64, 0xa8), // enable the aux (mouse) port
            (0x64, 0xd4), // next byte to the mouse:
            (0x60, 0xf4), //   enable reporting
        ] {
            kbd.write_port(port, val);
            // The driver reads each acknowledgement.
            while kbd.read_port(0x64) & 0x01 != 0 {
                kbd.read_port(0x60);
            }
        }
        Ok(())
    }

    /// A registry with this machine's sections: "ram" (iterative, instance 0,
    /// version 4), then "ps2kbd", "ps2mouse" and "pckbd" (FULL).
    pub fn registry(&self) -> Result<Registry> {
        self.registry_with_part_budget(PART_BUDGET)
    }

    /// [`registry`](Self::registry) with a different PART size.
    pub fn registry_with_part_budget(&self, part_budget: u64) -> Result<Registry> {
        let mut reg = Registry::new();
        let ram = RamSection::new(self.ram.clone(), self.ram_stats.clone())?
            .with_part_budget(part_budget);
        reg.register_savevm_live(RAM_SECTION, 0, RAM_VERSION, Box::new(ram))?;
        pckbd::register(&mut reg, self.i8042.clone())?;
        Ok(reg)
    }
}
