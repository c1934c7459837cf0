//! The iteration phase (QEMU `migration_iteration_run`): PART sections until
//! what is left can be sent within the downtime limit at the measured bandwidth,
//! with the bandwidth limit applied per 100 ms window; or, when postcopy was
//! requested, the switch to postcopy as soon as what must be sent in precopy fits.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::driver::{Driver, Stop};
use super::return_path::ReturnPath;
use super::window::Window;
use crate::error::{Error, ErrorKind, ReturnPathMissing, TimeoutError};
use crate::migration::params::BUFFER_DELAY_MS;
use crate::migration::status::MigrationStatus;
use crate::migration::transport::Outgoing;
use crate::savevm::{IterateStatus, QemuVersion, Registry, StreamWriter};

impl Driver {
    /// Iterates until switchover may start. Returns with `in_postcopy` set when
    /// the migration switched to postcopy instead.
    pub(super) fn converge(
        &mut self,
        w: &mut StreamWriter<Outgoing>,
        reg: &mut Registry,
        rp: Option<&ReturnPath>,
        vm_paused: &mut bool,
    ) -> Result<(), Stop> {
        let caps = self.config.caps;
        let mut window = Window::new(w.position());
        let mut iterations = 0u64;
        let mut syncs = 0u64;
        let mut dirty_mark: Option<(u64, u64, Instant)> = None;
        // Since when the switchover could start but for SWITCHOVER_ACK: the
        // destination owes it from then on (bounded by the reply timeout).
        let mut ack_owed_since: Option<Instant> = None;
        loop {
            if self.cancelled() {
                return Err(Stop::Cancelled);
            }
            if let Some(rp) = rp {
                rp.check()?;
            }
            let params = self.params();
            let rolled = window.roll(w.position(), &self.shared.stats);
            let threshold = (window.bandwidth_bpms * params.downtime_limit_ms as f64) as u64;
            let mut pending = StreamWriter::<Outgoing>::pending(reg, false);
            if pending.total() < threshold || pending.total() == 0 {
                pending = StreamWriter::<Outgoing>::pending(reg, true);
                syncs += 1;
                tracing::debug!(
                    sync = syncs,
                    pending = pending.total(),
                    must_precopy = pending.must_precopy,
                    "dirty sync"
                );
            }
            if rolled {
                tracing::debug!(
                    pending = pending.total(),
                    threshold,
                    bandwidth_bps = window.bandwidth_bpms * 1000.0,
                    downtime_limit_ms = params.downtime_limit_ms,
                    "convergence check"
                );
                // Newly dirtied bytes over the window: what is pending now, minus
                // what was pending at the last window, plus what was sent since.
                let now = (pending.total(), w.position(), Instant::now());
                if let Some((p0, pos0, t0)) = dirty_mark {
                    let dt = now.2.duration_since(t0).as_secs_f64();
                    let dirtied = (now.0 + (now.1 - pos0)).saturating_sub(p0);
                    if dt > 0.0 {
                        let rate = dirtied as f64 / dt;
                        self.shared.stats.update(|s| s.dirty_rate_bps = rate);
                    }
                }
                dirty_mark = Some(now);
            }
            let transferred = w.position();
            let expected = (window.bandwidth_bpms > 0.0).then(|| {
                Duration::from_secs_f64(pending.total() as f64 / window.bandwidth_bpms / 1000.0)
            });
            self.shared.stats.update(|s| {
                s.remaining = pending.total();
                s.transferred = transferred;
                s.total = transferred + pending.total();
                s.dirty_sync_count = syncs;
                s.iterations = iterations;
                s.expected_downtime = expected;
                s.total_time = self.started.elapsed();
            });
            self.publish_ram_stats(reg);

            let switchover_allowed = rp.is_none_or(|r| r.switchover_allowed(caps));
            if let Some(rp) = rp.filter(|_| !switchover_allowed) {
                let could_switch = pending.total() <= threshold
                    || (caps.postcopy_ram
                        && self.shared.postcopy_requested.load(Ordering::SeqCst)
                        && pending.must_precopy <= threshold);
                if could_switch {
                    let since = *ack_owed_since.get_or_insert_with(Instant::now);
                    if let Some(timeout) = rp.reply_timeout() {
                        if since.elapsed() > timeout {
                            return Err(Stop::Failed(Error::new(ErrorKind::TimedOut(
                                TimeoutError::Reply {
                                    waiting_for: "SWITCHOVER_ACK",
                                    timeout,
                                },
                            ))));
                        }
                    }
                }
            }
            if caps.postcopy_ram
                && self.shared.postcopy_requested.load(Ordering::SeqCst)
                && pending.must_precopy <= threshold
                && switchover_allowed
            {
                if rp.is_none() {
                    return Err(Stop::Failed(Error::new(ErrorKind::NoReturnPath(
                        ReturnPathMissing::ForPostcopy,
                    ))));
                }
                tracing::info!(
                    must_precopy = pending.must_precopy,
                    pending = pending.total(),
                    threshold,
                    bandwidth_bps = window.bandwidth_bpms * 1000.0,
                    downtime_limit_ms = params.downtime_limit_ms,
                    iterations,
                    syncs,
                    "switching to postcopy"
                );
                if self.config.version == QemuVersion::V10 {
                    // QEMU 10.x: a last PART (RAM: just EOS) before stopping.
                    w.postcopy_prepare(reg)?;
                }
                let stop_at = Instant::now();
                self.vm.pause()?;
                *vm_paused = true;
                if let Err(e) = self.switch_to_postcopy(w, reg) {
                    if !self.in_postcopy {
                        // Nothing of the package went out: the destination
                        // cannot run the guest, so this is a precopy failure
                        // (the VM resumes here).
                        return Err(e.into());
                    }
                    // The package may have arrived whole and the destination
                    // may run the guest already: the source can tell no more
                    // than after any later link failure, so it pauses for
                    // recovery (failing would strand a running destination).
                    self.switch_failed = Some(e);
                }
                self.shared
                    .stats
                    .update(|s| s.downtime = Some(stop_at.elapsed()));
                self.set_status(MigrationStatus::PostcopyActive);
                return Ok(());
            }
            if (pending.total() == 0 || pending.total() <= threshold) && switchover_allowed {
                tracing::info!(
                    pending = pending.total(),
                    threshold,
                    bandwidth_bps = window.bandwidth_bpms * 1000.0,
                    downtime_limit_ms = params.downtime_limit_ms,
                    iterations,
                    syncs,
                    "converged: switchover"
                );
                return Ok(());
            }
            // Rate limit: at most max_bandwidth/10 bytes per 100 ms window.
            let mut limited = window.limiter(params.max_bandwidth);
            if limited(w.position()) {
                let left =
                    Duration::from_millis(BUFFER_DELAY_MS).saturating_sub(window.started.elapsed());
                w.flush()?;
                std::thread::sleep(left.min(Duration::from_millis(5)));
                continue;
            }
            let budget = window.budget(params.max_bandwidth, w.position());
            let status = tracing::debug_span!("iteration", n = iterations + 1)
                .in_scope(|| w.iterate_within(reg, false, budget, &mut limited))?;
            iterations += 1;
            w.flush()?;
            if status == IterateStatus::Done && pending.total() == 0 {
                if switchover_allowed {
                    tracing::info!(iterations, syncs, "converged: all sent, switchover");
                    return Ok(());
                }
                // Everything is sent but the destination has not approved the
                // switchover yet (switchover-ack): wait without spinning.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
