//! Live statistics, like QMP `query-migrate`: a snapshot can be taken at any time
//! from another thread (to draw a progress bar).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::events::{Before, EventBus, MigrationEvent};
use super::status::MigrationStatus;
use crate::savevm::RamStats;

/// A `query-migrate` snapshot. Made by the runtime; the `with_*` setters are
/// for code that builds one itself (tests, a QMP front end).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MigrationStats {
    /// Current status.
    pub status: MigrationStatus,
    /// Time since the start (or total time once finished).
    pub total_time: Duration,
    /// Time spent in setup.
    pub setup_time: Duration,
    /// How long the VM was stopped (once known).
    pub downtime: Option<Duration>,
    /// Expected downtime from the current bandwidth and remaining bytes.
    pub expected_downtime: Option<Duration>,
    /// Bytes put on the wire.
    pub transferred: u64,
    /// Bytes still to send (last pending figure).
    pub remaining: u64,
    /// transferred + remaining.
    pub total: u64,
    /// Last measured bandwidth, bytes per second.
    pub throughput_bps: f64,
    /// Rate at which data is being dirtied, bytes per second (last window).
    pub dirty_rate_bps: f64,
    /// Number of dirty-log syncs (pending_exact calls).
    pub dirty_sync_count: u64,
    /// Iteration rounds done.
    pub iterations: u64,
    /// The "ram" counters, as the handlers that migrate guest RAM report them
    /// ([`SaveVmHandlers::ram_stats`](crate::savevm::SaveVmHandlers::ram_stats));
    /// `None` when no handler does (or on the destination).
    pub ram: Option<RamStats>,
    /// The error, when failed.
    pub error: Option<String>,
}

with_setters!(MigrationStats {
    with_status => status: [MigrationStatus],
    with_total_time => total_time: [Duration],
    with_setup_time => setup_time: [Duration],
    with_downtime => downtime: into [Option<Duration>],
    with_expected_downtime => expected_downtime: into [Option<Duration>],
    with_transferred => transferred: [u64],
    with_remaining => remaining: [u64],
    with_total => total: [u64],
    with_throughput_bps => throughput_bps: [f64],
    with_dirty_rate_bps => dirty_rate_bps: [f64],
    with_dirty_sync_count => dirty_sync_count: [u64],
    with_iterations => iterations: [u64],
    with_ram => ram: into [Option<RamStats>],
    with_error => error: into [Option<String>],
});

/// Shared live statistics: the driver updates, anyone can snapshot,
/// [`subscribe`](Self::subscribe) to the events or [`wait_for`](Self::wait_for)
/// a status.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<MigrationStats>>, Arc<EventBus>);

impl StatsHandle {
    /// Whether `other` is a clone of this handle (the same statistics).
    #[cfg(feature = "qmp")]
    pub(crate) fn same_as(&self, other: &StatsHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A copy of the current figures.
    pub fn snapshot(&self) -> MigrationStats {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Updates the figures (and makes the events the change means).
    pub(crate) fn update(&self, f: impl FnOnce(&mut MigrationStats)) {
        if let Ok(mut s) = self.0.lock() {
            let before = Before::of(&s);
            f(&mut s);
            self.1.observe(before, &s);
        }
    }

    /// Statistics for an incoming migration whose `events` capability is
    /// `events` (the destination's own, as QEMU's `migrate-set-capabilities`
    /// on the destination sets it; off in [`default`](Self::default)): give it
    /// to [`run_incoming`](super::run_incoming) and
    /// [`subscribe`](Self::subscribe) before. (The source takes the capability
    /// from its [`MigrationConfig`](super::MigrationConfig).)
    ///
    /// ```
    /// use vmstate_runtime::migration::{MigrationEvent, MigrationStatus, StatsHandle};
    /// let stats = StatsHandle::with_events(true);
    /// let events = stats.subscribe();
    /// // ... run_incoming(incoming, &mut registry, options, &stats) on a thread ...
    /// # drop(events);
    /// ```
    pub fn with_events(events: bool) -> StatsHandle {
        let s = StatsHandle::default();
        s.set_events(events);
        s
    }

    /// Sets whether this migration emits events (its `events` capability).
    pub(crate) fn set_events(&self, on: bool) {
        self.1.set_enabled(on);
    }

    /// The migration's events (QMP `MIGRATION` and `MIGRATION_PASS`), from its
    /// start, until its final status; nothing with the `events` capability off
    /// (see [the events module](super::events) notes).
    ///
    /// ```
    /// use vmstate_runtime::migration::StatsHandle;
    /// let stats = StatsHandle::default(); // hand a clone to run_incoming
    /// let events = stats.subscribe();
    /// assert!(events.try_recv().is_err()); // nothing happened yet
    /// ```
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<MigrationEvent> {
        self.1.subscribe()
    }

    /// Blocks until the migration has reached `status` (now or earlier in
    /// this migration; returns the current status), at most `timeout`: ends in
    /// [`TimeoutError::Status`](crate::error::TimeoutError::Status) after it,
    /// or [`ErrorKind::StatusNotReached`](crate::ErrorKind::StatusNotReached)
    /// when the migration ended without reaching `status`. Works whatever the
    /// `events` capability.
    pub fn wait_for(
        &self,
        status: MigrationStatus,
        timeout: Duration,
    ) -> crate::Result<MigrationStatus> {
        self.1.wait(status, timeout)
    }
}
