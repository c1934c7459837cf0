//! The VM a migration source stops and resumes: a log of what the migration
//! did to it; pausing can be made to fail.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use vmstate_runtime::migration::VmControl;
use vmstate_runtime::{Error, Result};

/// What the migration did to the VM, shared by the test and the [`Vm`].
#[derive(Default)]
pub struct VmLog {
    paused: AtomicBool,
    pauses: AtomicU32,
    resumes: AtomicU32,
    fail_pause: AtomicBool,
}

impl VmLog {
    /// Whether the VM runs (it does until paused).
    pub fn running(&self) -> bool {
        !self.paused.load(Ordering::SeqCst)
    }
    /// Pauses so far.
    pub fn pauses(&self) -> u32 {
        self.pauses.load(Ordering::SeqCst)
    }
    /// Resumes so far.
    pub fn resumes(&self) -> u32 {
        self.resumes.load(Ordering::SeqCst)
    }
    /// Makes every later pause fail (the vcpus refuse to stop), or not.
    pub fn fail_pause(&self, fail: bool) {
        self.fail_pause.store(fail, Ordering::SeqCst);
    }
}

/// The VM handed to the migration; records into its log.
#[derive(Default)]
pub struct Vm(pub Arc<VmLog>);

impl VmControl for Vm {
    fn pause(&mut self) -> Result<()> {
        if self.0.fail_pause.load(Ordering::SeqCst) {
            return Err(Error::invalid("vcpu 0 refused to stop (injected)"));
        }
        self.0.pauses.fetch_add(1, Ordering::SeqCst);
        self.0.paused.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        self.0.resumes.fetch_add(1, Ordering::SeqCst);
        self.0.paused.store(false, Ordering::SeqCst);
        Ok(())
    }
}
