//! The constructor and setters of [`IncomingHooks`] (a `#[non_exhaustive]`
//! struct: code outside the crate builds it with these).

use super::incoming::IncomingHooks;
use super::transport::Incoming;
use crate::error::{Error, Result};

impl IncomingHooks {
    /// No hooks: a broken postcopy stream fails the migration, POSTCOPY_RUN
    /// starts nothing, no switchover-ack (the same as [`Default`]).
    ///
    /// ```
    /// use vmstate_runtime::migration::IncomingHooks;
    ///
    /// let hooks = IncomingHooks::new()
    ///     .with_on_postcopy_run(|| Ok(()))
    ///     .with_switchover_ack(true);
    /// assert!(hooks.on_postcopy_run.is_some() && hooks.on_postcopy_paused.is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`on_postcopy_run`](Self::on_postcopy_run): called at POSTCOPY_RUN
    /// to start the guest's vCPUs.
    #[must_use]
    pub fn with_on_postcopy_run(mut self, f: impl FnMut() -> Result<()> + Send + 'static) -> Self {
        self.on_postcopy_run = Some(Box::new(f));
        self
    }

    /// Sets [`switchover_ack`](Self::switchover_ack) (QEMU 10.x's capability).
    #[must_use]
    pub fn with_switchover_ack(mut self, on: bool) -> Self {
        self.switchover_ack = on;
        self
    }

    /// Sets [`on_postcopy_paused`](Self::on_postcopy_paused): postcopy
    /// recovery, returning where the source will reconnect.
    #[must_use]
    pub fn with_on_postcopy_paused(
        mut self,
        f: impl FnMut(&Error) -> Result<Incoming> + Send + 'static,
    ) -> Self {
        self.on_postcopy_paused = Some(Box::new(f));
        self
    }
}
