//! A `VmState` device registered as a FULL section, observed by the test: a
//! hook before each save (to stop it at a gate) or each load (to record the
//! order the loader meets sections), and on the destination the
//! switchover-ack handshake (ask to approve, hand the approver to the test,
//! record SWITCHOVER_START).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::{
    SaveVmHandlers, SectionReader, SectionWriter, SwitchoverApprover, VmStateHandler,
};
use vmstate_runtime::vmstate::DescribeSink;
use vmstate_runtime::{Result, VmState, VmStateDescription};

/// A hook run before a save or a load.
type Hook = Box<dyn FnMut() + Send>;

/// A device behind [`VmStateHandler`], observed by the test.
pub struct ObservedDevice<T> {
    inner: VmStateHandler<T>,
    before_save: Option<Hook>,
    before_load: Option<Hook>,
    approver: Option<Arc<Mutex<Option<SwitchoverApprover>>>>,
    switchover_started: Option<Arc<AtomicBool>>,
}

impl<T> ObservedDevice<T> {
    /// The shared device, with no hooks.
    pub fn new(device: Arc<Mutex<T>>) -> Self {
        ObservedDevice {
            inner: VmStateHandler::new(device),
            before_save: None,
            before_load: None,
            approver: None,
            switchover_started: None,
        }
    }

    /// Runs `hook` before every save of the FULL section.
    pub fn before_save(mut self, hook: impl FnMut() + Send + 'static) -> Self {
        self.before_save = Some(Box::new(hook));
        self
    }

    /// Runs `hook` before every load of the FULL section.
    pub fn before_load(mut self, hook: impl FnMut() + Send + 'static) -> Self {
        self.before_load = Some(Box::new(hook));
        self
    }

    /// Destination: asks to approve the switchover; the approver lands in
    /// `slot`.
    pub fn switchover_ack(mut self, slot: Arc<Mutex<Option<SwitchoverApprover>>>) -> Self {
        self.approver = Some(slot);
        self
    }

    /// Destination: sets `flag` when SWITCHOVER_START arrives.
    pub fn on_switchover_start(mut self, flag: Arc<AtomicBool>) -> Self {
        self.switchover_started = Some(flag);
        self
    }

    fn saving(&mut self) {
        if let Some(hook) = &mut self.before_save {
            hook();
        }
    }
}

impl<T: VmState + Send> SaveVmHandlers for ObservedDevice<T> {
    fn has_full_section(&self) -> bool {
        true
    }
    fn description(&self) -> Option<&'static VmStateDescription> {
        self.inner.description()
    }
    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.saving();
        self.inner.save_state(w)
    }
    fn save_state_described(
        &mut self,
        w: &mut SectionWriter,
        sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        self.saving();
        self.inner.save_state_described(w, sink)
    }
    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        if let Some(hook) = &mut self.before_load {
            hook();
        }
        self.inner.load_state(r, version_id)
    }
    fn switchover_ack_needed(&self) -> bool {
        self.approver.is_some()
    }
    fn set_switchover_approver(&mut self, approver: SwitchoverApprover) {
        if let Some(slot) = &self.approver {
            *slot.lock().unwrap() = Some(approver);
        }
    }
    fn switchover_start(&mut self) -> Result<()> {
        if let Some(flag) = &self.switchover_started {
            flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}
