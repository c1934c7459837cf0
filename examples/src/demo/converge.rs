//! Helping precopy converge, and telling why it did not: auto-converge (QEMU's
//! vCPU throttle, raised while the guest dirties more than half of what is
//! sent) and the verdict on a migration that ran out of time.

use std::time::{Duration, Instant};

use vmstate_devices::machine::CpuThrottle;
use vmstate_runtime::migration::MigrationStats;

use super::report::{human_bytes, human_rate};

/// QEMU's `throttle-trigger-threshold`: throttle when the bytes dirtied in a
/// sync period exceed this share of the bytes sent in it, percent.
const TRIGGER_THRESHOLD_PERCENT: f64 = 50.0;
/// QEMU measures a sync period only once it lasted this long.
const PERIOD: Duration = Duration::from_secs(1);
/// Periods over the threshold before the throttle goes up (QEMU: 2).
const HIGH_PERIODS: u32 = 2;

/// QEMU's auto-converge, fed the live statistics and the bytes the guest
/// dirtied (its page writes: each write dirties a page): at each dirty sync
/// at least [`PERIOD`] after the last measured one, a period in which the
/// guest dirtied more than half of what was sent counts as high; every
/// second high period starts the throttle at `initial` percent or raises it
/// by `increment` (up to 99).
#[derive(Debug)]
pub(super) struct AutoConverge {
    throttle: CpuThrottle,
    initial: u32,
    increment: u32,
    last_sync: u64,
    /// When the period started: time, bytes sent, bytes dirtied.
    period_start: Option<(Instant, u64, u64)>,
    high: u32,
}

impl AutoConverge {
    pub(super) fn new(throttle: CpuThrottle, initial: u32, increment: u32) -> Self {
        AutoConverge {
            throttle,
            initial,
            increment,
            last_sync: 0,
            period_start: None,
            high: 0,
        }
    }

    /// Looks at a statistics snapshot and the bytes the guest has dirtied so
    /// far; returns the new throttle when it changed.
    pub(super) fn observe(
        &mut self,
        s: &MigrationStats,
        dirtied_total: u64,
        now: Instant,
    ) -> Option<u32> {
        if s.dirty_sync_count == self.last_sync {
            return None;
        }
        self.last_sync = s.dirty_sync_count;
        let Some((t0, sent0, dirtied0)) = self.period_start else {
            self.period_start = Some((now, s.transferred, dirtied_total));
            return None;
        };
        if now.duration_since(t0) < PERIOD {
            return None;
        }
        self.period_start = Some((now, s.transferred, dirtied_total));
        let sent = s.transferred.saturating_sub(sent0) as f64;
        let dirtied = dirtied_total.saturating_sub(dirtied0) as f64;
        if dirtied <= sent * TRIGGER_THRESHOLD_PERCENT / 100.0 {
            return None;
        }
        self.high += 1;
        if self.high < HIGH_PERIODS {
            return None;
        }
        self.high = 0;
        let now_at = self.throttle.percent();
        let next = if now_at == 0 {
            self.initial
        } else {
            now_at + self.increment
        };
        self.throttle.set(next);
        Some(self.throttle.percent())
    }
}

/// Why a migration ran out of time.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The guest dirties memory at least as fast as it is sent: precopy cannot
    /// converge at this bandwidth.
    DirtiesFasterThanSent {
        /// Bytes dirtied per second.
        dirty_bps: f64,
        /// Bytes sent per second.
        sent_bps: f64,
    },
    /// Sending outpaces dirtying: it was converging, but not done in time.
    StillConverging {
        /// Bytes dirtied per second.
        dirty_bps: f64,
        /// Bytes sent per second.
        sent_bps: f64,
        /// Bytes left when time ran out.
        remaining: u64,
        /// Bytes that fit in the downtime limit at that speed.
        fits_in_downtime: u64,
    },
}

/// The verdict on a migration cancelled by its timeout: `stats` as it was
/// then, `dirty_bps` the bytes per second the guest was dirtying (its page
/// writes per second times the page size: while that is below the bandwidth
/// every pass is shorter than the one before, at or above it no pass is),
/// `max_bandwidth` the limit (0: none; the measured throughput counts first).
pub fn verdict(
    stats: &MigrationStats,
    dirty_bps: f64,
    max_bandwidth: u64,
    downtime_limit_ms: u64,
) -> Verdict {
    let sent_bps = if stats.throughput_bps > 0.0 {
        stats.throughput_bps
    } else {
        max_bandwidth as f64
    };
    if sent_bps > 0.0 && dirty_bps >= sent_bps {
        Verdict::DirtiesFasterThanSent {
            dirty_bps,
            sent_bps,
        }
    } else {
        Verdict::StillConverging {
            dirty_bps,
            sent_bps,
            remaining: stats.remaining,
            fits_in_downtime: (sent_bps * downtime_limit_ms as f64 / 1000.0) as u64,
        }
    }
}

impl Verdict {
    /// The message for a migration cancelled after `timeout`.
    pub fn message(&self, timeout: Duration, max_bandwidth: u64) -> String {
        let limit = if max_bandwidth == 0 {
            "unlimited".to_string()
        } else {
            human_rate(max_bandwidth as f64)
        };
        match self {
            Verdict::DirtiesFasterThanSent {
                dirty_bps,
                sent_bps,
            } => format!(
                "the migration did not converge (cancelled after {} s): the guest dirties \
                 memory at {}, at least as fast as it is sent ({}, bandwidth limit {limit}). \
                 What would help: raise --max-bandwidth, raise --downtime-limit, \
                 --auto-converge (throttle the guest) or --postcopy",
                timeout.as_secs_f64(),
                human_rate(*dirty_bps),
                human_rate(*sent_bps)
            ),
            Verdict::StillConverging {
                dirty_bps,
                sent_bps,
                remaining,
                fits_in_downtime,
            } => format!(
                "the migration timed out after {} s (--timeout-secs) while still converging: \
                 {} left to send, {} fits in the downtime limit at {} (the guest dirties {}, \
                 bandwidth limit {limit}); raise --timeout-secs or --downtime-limit",
                timeout.as_secs_f64(),
                human_bytes(*remaining),
                human_bytes(*fits_in_downtime),
                human_rate(*sent_bps),
                human_rate(*dirty_bps)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sent: f64, remaining: u64) -> MigrationStats {
        MigrationStats::default()
            .with_throughput_bps(sent)
            .with_remaining(remaining)
    }

    #[test]
    fn did_not_converge_only_when_dirtying_beats_sending() {
        const M: f64 = 1048576.0;
        // (dirtied/s, measured sent/s, limit, cannot converge)
        for (dirty, sent, limit, beats) in [
            (100.0 * M, 32.0 * M, 32 << 20, true),
            (32.0 * M, 32.0 * M, 32 << 20, true),
            (8.0 * M, 32.0 * M, 32 << 20, false),
            (0.0, 32.0 * M, 32 << 20, false),
            // Nothing measured yet: the limit.
            (64.0 * M, 0.0, 32 << 20, true),
            (M, 0.0, 32 << 20, false),
            // Unlimited and nothing measured: no claim that it cannot converge.
            (64.0 * M, 0.0, 0, false),
            (64.0 * M, 1024.0 * M, 0, false),
        ] {
            let v = verdict(&stats(sent, 4096), dirty, limit, 50);
            assert_eq!(
                matches!(v, Verdict::DirtiesFasterThanSent { .. }),
                beats,
                "{dirty} {sent} {limit}: {v:?}"
            );
            let msg = v.message(Duration::from_secs(3), limit);
            assert_eq!(msg.contains("did not converge"), beats, "{msg}");
            assert_eq!(msg.contains("timed out after 3 s"), !beats, "{msg}");
            if beats {
                for help in [
                    "--max-bandwidth",
                    "--downtime-limit",
                    "--auto-converge",
                    "--postcopy",
                ] {
                    assert!(msg.contains(help), "{msg}");
                }
            }
            assert_eq!(
                msg.contains("bandwidth limit unlimited"),
                limit == 0,
                "{msg}"
            );
        }
    }

    #[test]
    fn auto_converge_throttles_on_every_second_high_period() {
        let throttle = CpuThrottle::default();
        let mut ac = AutoConverge::new(throttle.clone(), 20, 10);
        let t0 = Instant::now();
        let mut s = stats(0.0, 0);
        let mut seen = Vec::new();
        for i in 1..=7u64 {
            s.dirty_sync_count = i;
            // 1 MiB sent and 10 MiB dirtied per 1.1 s period: high every period.
            s.transferred = i << 20;
            let at = t0 + Duration::from_millis(1100 * i);
            seen.push(ac.observe(&s, i * (10 << 20), at));
        }
        assert_eq!(seen, [None, None, Some(20), None, Some(30), None, Some(40)]);
        assert_eq!(throttle.percent(), 40);
        // A calm guest (dirtying a tenth of what is sent): no change.
        for i in 8..=12u64 {
            s.dirty_sync_count = i;
            s.transferred = i << 20;
            let dirtied = 7 * (10 << 20) + (i - 7) * (1 << 20) / 10;
            let at = t0 + Duration::from_millis(1100 * i);
            assert_eq!(ac.observe(&s, dirtied, at), None);
        }
        // No new sync: nothing measured.
        assert_eq!(ac.observe(&s, u64::MAX, t0 + Duration::from_secs(60)), None);
    }
}
