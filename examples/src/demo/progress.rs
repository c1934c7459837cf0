//! Watching the migration: progress as a bar on a terminal, or plain lines, and
//! the timeout that cancels a migration that does not converge.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vmstate_runtime::migration::{MigrationHandle, MigrationStats};

use super::{ProgressMode, MIB};

struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    last_line: Instant,
    started: Instant,
}

impl Progress {
    fn new(mode: ProgressMode) -> Progress {
        let bar = match mode {
            ProgressMode::Auto => {
                let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
                (!bar.is_hidden()).then_some(bar)
            }
            _ => None,
        };
        if let Some(bar) = &bar {
            bar.set_style(
                ProgressStyle::with_template("{spinner:.green} [{bar:20.cyan/blue}] {msg}")
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
        }
    }

    /// The bar's message: short enough for an 80-column terminal.
    fn short(s: &MigrationStats) -> String {
        let mib = |b: u64| b as f64 / MIB as f64;
        format!(
            "{:.1}/{:.1} MiB  {:.1} MiB/s  iter {}  syncs {}  {}",
            mib(s.transferred),
            mib(s.total.max(s.transferred)),
            mib(s.throughput_bps as u64),
            s.iterations,
            s.dirty_sync_count,
            s.status.as_str()
        )
    }

    fn line(&self, s: &MigrationStats, out: &mut dyn Write) {
        let _ = writeln!(
            out,
            "  {:>5.2} s  {}",
            self.started.elapsed().as_secs_f64(),
            Self::short(s)
        );
    }

    fn update(&mut self, s: &MigrationStats, out: &mut dyn Write) {
        if let Some(bar) = &self.bar {
            bar.set_length(s.total.max(s.transferred).max(1));
            bar.set_position(s.transferred);
            bar.set_message(Self::short(s));
        } else if self.lines && self.last_line.elapsed() >= Duration::from_millis(250) {
            self.last_line = Instant::now();
            self.line(s, out);
        }
    }

    fn finish(&mut self, s: &MigrationStats, out: &mut dyn Write) {
        if let Some(bar) = self.bar.take() {
            bar.set_length(s.transferred.max(1));
            bar.set_position(s.transferred);
            bar.set_message(Self::short(s));
            bar.finish();
        } else if self.lines {
            self.line(s, out);
        }
    }
}

/// How the migration ended, as watched.
pub(super) struct Watched {
    /// The final figures.
    pub(super) stats: MigrationStats,
    /// The migration's outcome.
    pub(super) result: vmstate_runtime::Result<()>,
    /// The timeout ran out and the migration was cancelled.
    pub(super) timed_out: bool,
}

/// Shows progress until the migration ends; cancels it after `timeout`.
pub(super) fn watch(
    handle: MigrationHandle,
    mode: ProgressMode,
    timeout: Duration,
    out: &mut dyn Write,
) -> Watched {
    let stats = handle.stats();
    let mut progress = Progress::new(mode);
    let mut timed_out = false;
    loop {
        let s = stats.snapshot();
        if s.status.is_terminal() {
            break;
        }
        progress.update(&s, out);
        if s.total_time > timeout && !timed_out {
            timed_out = true;
            handle.cancel();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_registry, result) = handle.wait();
    let final_stats = stats.snapshot();
    progress.finish(&final_stats, out);
    Watched {
        stats: final_stats,
        result,
        timed_out,
    }
}
