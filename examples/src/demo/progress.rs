//! Watching the migration: progress as a bar on a terminal (or plain lines),
//! showing what `query-migrate` shows (remaining of the guest's total RAM,
//! which never shrinks), and acting on it: the timeout, Ctrl-C, the switch to
//! postcopy after the first pass, and auto-converge's throttle.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vmstate_runtime::migration::{CancelToken, MigrationHandle, MigrationStats, MigrationStatus};

use super::converge::AutoConverge;
use super::options::PAGE_SIZE;
use super::report::{human_bytes, human_rate};
use super::ProgressMode;

struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    last_line: Instant,
    started: Instant,
    /// The guest's RAM: the bar's length (QEMU's `ram.total`).
    ram_total: u64,
    throttle: u32,
}

impl Progress {
    fn new(mode: ProgressMode, ram_total: u64) -> Progress {
        let bar = match mode {
            ProgressMode::Auto => {
                let bar =
                    ProgressBar::with_draw_target(Some(ram_total), ProgressDrawTarget::stderr());
                (!bar.is_hidden()).then_some(bar)
            }
            _ => None,
        };
        if let Some(bar) = &bar {
            // `wide_msg` takes the rest of the line and is cut to the
            // terminal's width.
            bar.set_style(
                ProgressStyle::with_template("{spinner:.green} [{bar:20.cyan/blue}] {wide_msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
        }
        Progress {
            lines: bar.is_none() && mode != ProgressMode::Off,
            bar,
            last_line: Instant::now(),
            started: Instant::now(),
            ram_total,
            throttle: 0,
        }
    }

    /// Bytes of guest RAM still to send; all of it until the driver measured.
    fn remaining(&self, s: &MigrationStats) -> u64 {
        match s.status {
            MigrationStatus::Completed => 0,
            _ if s.total == 0 => self.ram_total,
            _ => s.remaining.min(self.ram_total),
        }
    }

    fn message(&self, s: &MigrationStats) -> String {
        let throttle = if self.throttle > 0 {
            format!("  throttle {}%", self.throttle)
        } else {
            String::new()
        };
        format!(
            "remaining {} of {}  sent {}  {}  syncs {}{throttle}  {}",
            human_bytes(self.remaining(s)),
            human_bytes(self.ram_total),
            human_bytes(s.transferred),
            human_rate(s.throughput_bps),
            s.dirty_sync_count,
            s.status.as_str()
        )
    }

    fn line(&self, s: &MigrationStats, out: &mut dyn Write) {
        let _ = writeln!(
            out,
            "  {:>5.2} s  {}",
            self.started.elapsed().as_secs_f64(),
            self.message(s)
        );
        let _ = out.flush();
    }

    fn update(&mut self, s: &MigrationStats, out: &mut dyn Write) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.ram_total - self.remaining(s));
            bar.set_message(self.message(s));
        } else if self.lines && self.last_line.elapsed() >= Duration::from_millis(250) {
            self.last_line = Instant::now();
            self.line(s, out);
        }
    }

    fn note(&self, text: &str, out: &mut dyn Write) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if self.lines => {
                let _ = writeln!(out, "  {text}");
            }
            None => {}
        }
    }

    fn finish(&mut self, s: &MigrationStats, out: &mut dyn Write) {
        if let Some(bar) = self.bar.take() {
            bar.set_position(self.ram_total - self.remaining(s));
            bar.set_message(self.message(s));
            bar.finish();
        } else if self.lines {
            self.line(s, out);
        }
    }
}

/// How the watch ended the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// It ended on its own (completed or failed).
    ByItself,
    /// The timeout ran out and it was cancelled.
    TimedOut,
    /// Ctrl-C (the interrupt token) cancelled it.
    Interrupted,
}

/// What to do while watching.
pub(super) struct Watch<'a> {
    pub(super) mode: ProgressMode,
    pub(super) timeout: Duration,
    pub(super) interrupt: Option<&'a CancelToken>,
    /// Ask for postcopy once the first pass is sent.
    pub(super) postcopy: bool,
    pub(super) auto_converge: Option<AutoConverge>,
    /// Bytes of guest RAM.
    pub(super) ram_total: u64,
    /// The guest's page writes so far (each dirties a page).
    pub(super) guest_writes: &'a AtomicU64,
    /// What the guest is set to dirty, bytes/s (before a throttle).
    pub(super) nominal_dirty_bps: f64,
}

/// The guest's dirtying rate, from its page writes over the last second.
struct DirtyMeter {
    mark: (Instant, u64),
    /// Bytes/s, once a second has been measured.
    rate: Option<f64>,
}

impl DirtyMeter {
    fn observe(&mut self, writes: u64, now: Instant) {
        let dt = now.duration_since(self.mark.0);
        if dt >= Duration::from_secs(1) {
            let pages = writes.saturating_sub(self.mark.1) as f64;
            self.rate = Some(pages * PAGE_SIZE as f64 / dt.as_secs_f64());
            self.mark = (now, writes);
        }
    }
}

/// How the migration ended, as watched.
pub(super) struct Watched {
    /// The final figures.
    pub(super) stats: MigrationStats,
    /// The figures when the timeout cancelled it.
    pub(super) at_timeout: Option<MigrationStats>,
    /// The migration's outcome.
    pub(super) result: vmstate_runtime::Result<()>,
    pub(super) ending: Ending,
    /// The highest vCPU throttle auto-converge set, percent.
    pub(super) max_throttle: u32,
    /// The guest's dirtying rate (bytes/s) when the timeout cancelled it.
    pub(super) dirty_bps_at_timeout: f64,
}

/// Shows progress until the migration ends, acting as `w` says.
pub(super) fn watch(handle: MigrationHandle, mut w: Watch<'_>, out: &mut dyn Write) -> Watched {
    let stats = handle.stats();
    let mut progress = Progress::new(w.mode, w.ram_total);
    let mut ending = Ending::ByItself;
    let mut at_timeout = None;
    let mut postcopy_requested = false;
    let mut meter = DirtyMeter {
        mark: (Instant::now(), w.guest_writes.load(Ordering::Relaxed)),
        rate: None,
    };
    let mut dirty_bps_at_timeout = 0.0;
    loop {
        let s = stats.snapshot();
        if s.status.is_terminal() {
            break;
        }
        let writes = w.guest_writes.load(Ordering::Relaxed);
        meter.observe(writes, Instant::now());
        if let Some(ac) = &mut w.auto_converge {
            if let Some(p) = ac.observe(&s, writes * PAGE_SIZE, Instant::now()) {
                progress.throttle = p;
                progress.note(&format!("auto-converge: vCPUs throttled to {p}%"), out);
            }
        }
        if w.postcopy && !postcopy_requested && s.dirty_sync_count >= 1 {
            handle.start_postcopy();
            postcopy_requested = true;
            progress.note("first pass sent: switching to postcopy", out);
        }
        progress.update(&s, out);
        if ending == Ending::ByItself {
            if w.interrupt.is_some_and(CancelToken::is_cancelled) {
                ending = Ending::Interrupted;
                handle.cancel();
            } else if s.total_time > w.timeout {
                ending = Ending::TimedOut;
                // Not a second measured yet: the set rate, throttled.
                dirty_bps_at_timeout = meter
                    .rate
                    .unwrap_or(w.nominal_dirty_bps * f64::from(100 - progress.throttle) / 100.0);
                at_timeout = Some(s);
                handle.cancel();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_registry, result) = handle.wait();
    let final_stats = stats.snapshot();
    progress.finish(&final_stats, out);
    Watched {
        stats: final_stats,
        at_timeout,
        result,
        ending,
        max_throttle: progress.throttle,
        dirty_bps_at_timeout,
    }
}
