//! Migration events instead of polling: every status change (QEMU's QMP
//! `MIGRATION` event) and every pass (`MIGRATION_PASS`), on a channel, and a
//! blocking [`wait_for`](super::StatsHandle::wait_for) a status.
//!
//! # The `events` capability
//!
//! As in QEMU, [`MigrationCapabilities::events`](super::MigrationCapabilities::events)
//! gates the events: with it off (QEMU's default) a subscription delivers
//! nothing and ends with the migration; with it on, it delivers every event.
//! The source takes the capability from its
//! [`MigrationConfig`](super::MigrationConfig), the destination (which has
//! capabilities of its own in QEMU, set by `migrate-set-capabilities` on the
//! destination's monitor) from the [`StatsHandle`](super::StatsHandle) it
//! is given: [`StatsHandle::with_events`](super::StatsHandle::with_events). The statistics and
//! [`wait_for`](super::StatsHandle::wait_for) do not depend on it.
//!
//! # What is delivered
//!
//! * [`MigrationEvent::Status`] for each change of the status, in order, on
//!   both sides (a status set twice is one event);
//! * [`MigrationEvent::Pass`] on the source for each dirty-bitmap
//!   synchronisation (QEMU emits `MIGRATION_PASS` with `dirty-sync-count` in
//!   `migration_bitmap_sync`); the destination has no passes, as in QEMU.
//!
//! A subscription starts with the events of the current migration so far
//! (none are lost to a late subscriber) and ends (the receiver disconnects)
//! after the final status: `completed`, `failed` or `cancelled`. One
//! [`StatsHandle`](super::StatsHandle) is one migration's events: give each
//! incoming migration a fresh one to subscribe to it before it starts.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::stats::MigrationStats;
use super::status::MigrationStatus;
use crate::error::{Error, ErrorKind, Result, TimeoutError};

/// An event of a migration, as QEMU's QMP events carry it.
///
/// ```
/// use vmstate_runtime::migration::{MigrationEvent, MigrationStatus};
/// let e = MigrationEvent::Status(MigrationStatus::PostcopyActive);
/// assert_eq!((e.qmp_name(), e.to_string().as_str()), ("MIGRATION", "status postcopy-active"));
/// assert_eq!(MigrationEvent::Pass(3).qmp_name(), "MIGRATION_PASS");
/// assert_eq!(e.qmp_data(), r#"{"status": "postcopy-active"}"#);
/// assert_eq!(MigrationEvent::Pass(3).qmp_data(), r#"{"pass": 3}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MigrationEvent {
    /// QMP `MIGRATION` `{"status": ...}`: the status changed to this.
    Status(MigrationStatus),
    /// QMP `MIGRATION_PASS` `{"pass": N}`: dirty-bitmap sync number `N`
    /// (the `dirty-sync-count` of `query-migrate`) started a pass.
    Pass(u64),
}

impl MigrationEvent {
    /// The QMP event's name: `MIGRATION` or `MIGRATION_PASS`.
    pub fn qmp_name(&self) -> &'static str {
        match self {
            MigrationEvent::Status(_) => "MIGRATION",
            MigrationEvent::Pass(_) => "MIGRATION_PASS",
        }
    }

    /// The QMP event's `data` member as JSON text, as QEMU sends it:
    /// `{"status": "active"}` or `{"pass": 2}`.
    pub fn qmp_data(&self) -> String {
        match self {
            MigrationEvent::Status(s) => format!(r#"{{"status": "{}"}}"#, s.as_str()),
            MigrationEvent::Pass(n) => format!(r#"{{"pass": {n}}}"#),
        }
    }
}

impl std::fmt::Display for MigrationEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationEvent::Status(s) => write!(f, "status {s}"),
            MigrationEvent::Pass(n) => write!(f, "pass {n}"),
        }
    }
}

/// At most this many events are kept for late subscribers (a migration that
/// never converges syncs for ever): past it, a late subscriber gets the first
/// ones and then only live events.
pub const EVENT_HISTORY_LIMIT: usize = 65_536;

/// Bit of a status in [`BusState::reached`].
fn bit(s: MigrationStatus) -> u32 {
    let i = MigrationStatus::ALL
        .iter()
        .position(|&x| x == s)
        .unwrap_or_default();
    1 << i
}

#[derive(Debug, Default)]
struct BusState {
    /// The `events` capability of this migration.
    enabled: bool,
    current: MigrationStatus,
    /// Every status this migration has been in.
    reached: u32,
    history: Vec<MigrationEvent>,
    subscribers: Vec<Sender<MigrationEvent>>,
}

impl BusState {
    fn emit(&mut self, e: MigrationEvent) {
        if !self.enabled {
            return;
        }
        if self.history.len() < EVENT_HISTORY_LIMIT {
            self.history.push(e);
        }
        self.subscribers.retain(|tx| tx.send(e).is_ok());
    }
}

/// The events of one [`StatsHandle`](super::StatsHandle): who listens, what
/// happened so far, and the wake-up of [`wait`](Self::wait).
#[derive(Debug, Default)]
pub(crate) struct EventBus {
    state: Mutex<BusState>,
    changed: Condvar,
}

/// What [`EventBus::observe`] compares: the figures before an update.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Before {
    status: MigrationStatus,
    syncs: u64,
}

impl Before {
    pub(crate) fn of(s: &MigrationStats) -> Before {
        Before {
            status: s.status,
            syncs: s.dirty_sync_count,
        }
    }
}

impl EventBus {
    fn lock(&self) -> MutexGuard<'_, BusState> {
        // A subscriber never panics under this lock (sends do not block), so
        // poisoning would only come from a bug here: keep going with the state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the `events` capability (before the migration's first status).
    pub(crate) fn set_enabled(&self, on: bool) {
        self.lock().enabled = on;
    }

    /// Called under the statistics lock after every update: the events the
    /// change makes, in order (status first, then the passes).
    pub(crate) fn observe(&self, before: Before, after: &MigrationStats) {
        let status_changed = after.status != before.status;
        let new_syncs = after.dirty_sync_count > before.syncs;
        if !status_changed && !new_syncs {
            return;
        }
        let mut st = self.lock();
        if status_changed {
            if after.status == MigrationStatus::Setup && before.status != MigrationStatus::Setup {
                // A new migration on this handle: its own history.
                st.history.clear();
                st.reached = 0;
            }
            tracing::info!(status = %after.status, from = %before.status, "migration status");
            st.current = after.status;
            st.reached |= bit(after.status);
            st.emit(MigrationEvent::Status(after.status));
        }
        if new_syncs {
            // One pass per sync; a jump larger than the history is reported
            // from its last sync on (nothing counts that many in one update).
            let first = (before.syncs + 1).max(
                after
                    .dirty_sync_count
                    .saturating_sub(EVENT_HISTORY_LIMIT as u64),
            );
            for n in first..=after.dirty_sync_count {
                st.emit(MigrationEvent::Pass(n));
            }
        }
        if after.status.is_terminal() {
            // The migration's last event: its subscriptions end.
            st.subscribers.clear();
        }
        drop(st);
        if status_changed {
            self.changed.notify_all();
        }
    }

    /// A new subscription: the history, then live events until the end.
    pub(crate) fn subscribe(&self) -> Receiver<MigrationEvent> {
        let (tx, rx) = channel();
        let mut st = self.lock();
        for &e in &st.history {
            let _ = tx.send(e);
        }
        if !st.current.is_terminal() {
            st.subscribers.push(tx);
        }
        rx
    }

    /// Blocks until the migration has reached `wanted` (now or earlier), it
    /// ended without reaching it, or `timeout` passed.
    pub(crate) fn wait(
        &self,
        wanted: MigrationStatus,
        timeout: Duration,
    ) -> Result<MigrationStatus> {
        let start = Instant::now();
        let mut st = self.lock();
        loop {
            if st.reached & bit(wanted) != 0 || wanted == MigrationStatus::None {
                return Ok(st.current);
            }
            if st.current.is_terminal() {
                return Err(Error::new(ErrorKind::StatusNotReached {
                    wanted,
                    ended: st.current,
                }));
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::new(ErrorKind::TimedOut(TimeoutError::Status {
                    wanted,
                    current: st.current,
                    timeout,
                })));
            }
            st = match self.changed.wait_timeout(st, timeout - waited) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MigrationStatus::*;

    fn step(bus: &EventBus, s: &mut MigrationStats, f: impl FnOnce(&mut MigrationStats)) {
        let before = Before::of(s);
        f(s);
        bus.observe(before, s);
    }

    #[test]
    fn statuses_and_passes_in_order_only_when_enabled_and_subscription_ends() {
        for enabled in [true, false] {
            let bus = EventBus::default();
            bus.set_enabled(enabled);
            let mut s = MigrationStats::default();
            step(&bus, &mut s, |s| s.status = Setup);
            step(&bus, &mut s, |s| s.status = Active);
            let late = bus.subscribe();
            step(&bus, &mut s, |s| s.dirty_sync_count = 2);
            step(&bus, &mut s, |s| s.status = Active); // no change, no event
            step(&bus, &mut s, |s| s.status = Completed);
            let got: Vec<_> = late.iter().collect();
            let want = if enabled {
                vec![
                    MigrationEvent::Status(Setup),
                    MigrationEvent::Status(Active),
                    MigrationEvent::Pass(1),
                    MigrationEvent::Pass(2),
                    MigrationEvent::Status(Completed),
                ]
            } else {
                vec![]
            };
            assert_eq!(got, want);
            // After the end: the history, then the channel closes.
            assert_eq!(bus.subscribe().iter().count(), want.len());
            // wait_for works either way.
            assert_eq!(bus.wait(Active, Duration::ZERO).unwrap(), Completed);
            let e = bus.wait(PostcopyActive, Duration::ZERO).unwrap_err();
            assert!(matches!(
                e.kind(),
                ErrorKind::StatusNotReached {
                    wanted: PostcopyActive,
                    ended: Completed
                }
            ));
        }
    }

    #[test]
    fn wait_times_out_typed_and_wakes_on_change() {
        let bus = std::sync::Arc::new(EventBus::default());
        let mut s = MigrationStats::default();
        step(&bus, &mut s, |s| s.status = Setup);
        let e = bus.wait(Active, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(
            e.kind(),
            ErrorKind::TimedOut(TimeoutError::Status {
                wanted: Active,
                current: Setup,
                ..
            })
        ));
        let b = bus.clone();
        let t = std::thread::spawn(move || b.wait(Active, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        step(&bus, &mut s, |s| s.status = Active);
        assert_eq!(t.join().unwrap().unwrap(), Active);
        // A new migration on the same bus starts a new history.
        step(&bus, &mut s, |s| s.status = Failed);
        step(&bus, &mut s, |s| s.status = Setup);
        assert!(bus.wait(Active, Duration::ZERO).is_err());
    }
}
