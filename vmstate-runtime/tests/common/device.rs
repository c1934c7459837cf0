//! A `VmState` device registered as a FULL section, with a hook the test runs
//! before each save (to stop it at a gate) or each load (to record the order
//! the loader meets sections).

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::{SaveVmHandlers, SectionReader, SectionWriter, VmStateHandler};
use vmstate_runtime::vmstate::DescribeSink;
use vmstate_runtime::{Result, VmState, VmStateDescription};

/// A hook run before a save or a load.
type Hook = Box<dyn FnMut() + Send>;

/// A device behind [`VmStateHandler`], observed by the test.
pub struct ObservedDevice<T> {
    inner: VmStateHandler<T>,
    before_save: Option<Hook>,
    before_load: Option<Hook>,
}

impl<T> ObservedDevice<T> {
    /// The shared device, with no hooks.
    pub fn new(device: Arc<Mutex<T>>) -> Self {
        ObservedDevice {
            inner: VmStateHandler::new(device),
            before_save: None,
            before_load: None,
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
}
