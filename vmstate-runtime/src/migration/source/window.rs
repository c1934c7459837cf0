//! Bandwidth accounting per 100 ms window (QEMU `migration_update_counters`) and
//! the per-window byte budget that enforces a bandwidth limit.

use std::time::Instant;

use crate::migration::params::BUFFER_DELAY_MS;
use crate::migration::stats::StatsHandle;

/// One measuring window.
pub(super) struct Window {
    pub(super) started: Instant,
    pub(super) start_pos: u64,
    /// Bytes per millisecond over the last full window.
    pub(super) bandwidth_bpms: f64,
}

impl Window {
    pub(super) fn new(pos: u64) -> Self {
        Window {
            started: Instant::now(),
            start_pos: pos,
            bandwidth_bpms: 0.0,
        }
    }

    /// Closes the window when 100 ms have passed; returns whether it did.
    pub(super) fn roll(&mut self, pos: u64, stats: &StatsHandle) -> bool {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        if elapsed_ms < BUFFER_DELAY_MS {
            return false;
        }
        self.bandwidth_bpms = (pos - self.start_pos) as f64 / elapsed_ms as f64;
        self.started = Instant::now();
        self.start_pos = pos;
        let bw = self.bandwidth_bpms;
        stats.update(|s| {
            s.throughput_bps = bw * 1000.0;
            s.transferred = pos;
        });
        true
    }

    /// The rate limiter for `max_bandwidth` bytes per second (0: unlimited): true
    /// once the stream position has used up this window's share.
    pub(super) fn limiter(&self, max_bandwidth: u64) -> impl FnMut(u64) -> bool {
        let per_window = max_bandwidth / (1000 / BUFFER_DELAY_MS);
        let start_pos = self.start_pos;
        move |pos: u64| per_window != 0 && pos - start_pos >= per_window
    }

    /// Bytes of this window's share left at stream position `pos` (`None`:
    /// unlimited): the budget a handler sees inside one iterate round.
    pub(super) fn budget(&self, max_bandwidth: u64, pos: u64) -> Option<u64> {
        let per_window = max_bandwidth / (1000 / BUFFER_DELAY_MS);
        (per_window != 0).then(|| (self.start_pos + per_window).saturating_sub(pos))
    }
}
