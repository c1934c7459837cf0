//! vCPU pause and resume ([`VmControl`]) of the machine's guest thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vmstate_runtime::migration::VmControl;
use vmstate_runtime::Result;

use super::composition::Machine;
use super::lock;
use super::workload::GuestCounters;

/// Pauses and resumes the guest thread for the migration driver: pause clears
/// the running flag and waits out a guest tick in progress, so nothing changes
/// guest state after it returns.
pub(super) struct GuestControl {
    machine: Machine,
    running: Arc<AtomicBool>,
    counters: Arc<GuestCounters>,
}

impl GuestControl {
    /// Control of the guest of `machine` whose running flag is `running`.
    pub(super) fn new(
        machine: Machine,
        running: Arc<AtomicBool>,
        counters: Arc<GuestCounters>,
    ) -> Self {
        GuestControl {
            machine,
            running,
            counters,
        }
    }
}

impl VmControl for GuestControl {
    fn pause(&mut self) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        // Wait out a guest tick in progress: it re-checks the flag under each lock.
        drop(lock(&self.machine.ram)?);
        drop(lock(&self.machine.i8042)?);
        if let Some(v) = &self.machine.virtio {
            drop(lock(&v.guest)?);
        }
        self.counters.pauses.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn resume(&mut self) -> Result<()> {
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }
}
