//! The main job, on built-in defaults: a live migration of a small VM (64 MiB of
//! guest RAM and a PC keyboard controller) while its guest keeps writing memory
//! and typing, to a destination in another thread over a unix socket, with a
//! bandwidth and a downtime limit; then a `query-migrate`-style summary and a
//! byte-for-byte check that the destination holds the source's state at
//! switchover.
//!
//! Run: `cargo run --release -p vmstate-examples --bin demo [-- --help]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vmstate_examples::demo::{self, DemoOptions, ProgressMode};

/// Live-migrate a small VM (guest RAM + PC keyboard controller) while its guest
/// runs, in QEMU's migration stream format, and verify the result.
#[derive(Parser, Debug)]
#[command(name = "demo", version)]
struct Args {
    /// Guest RAM size in MiB (4 KiB pages).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    ram_mib: u64,
    /// Bandwidth limit during precopy, MiB/s (0: unlimited).
    #[arg(long, default_value_t = 32)]
    max_bandwidth_mib: u64,
    /// Longest acceptable guest pause at switchover, ms.
    #[arg(long, default_value_t = 50)]
    downtime_ms: u64,
    /// Pages the guest dirties per second while running.
    #[arg(long, default_value_t = 4000)]
    dirty_rate: u64,
    /// Keys the host types into the guest's keyboard per second.
    #[arg(long, default_value_t = 25)]
    keys_per_sec: u32,
    /// Share of guest RAM holding data, percent (the rest are zero pages).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    used_percent: u32,
    /// Where the destination listens: tcp:HOST:PORT (port 0: any free port) or
    /// unix:PATH [default: unix socket in a fresh temporary directory].
    #[arg(long)]
    uri: Option<String>,
    /// Also write the migration stream to FILE (decode it with `vmstate analyze FILE`).
    #[arg(long, value_name = "FILE")]
    keep_stream: Option<PathBuf>,
    /// Cancel the migration if it has not finished after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// The destination gives up if no source connected within SECS seconds
    /// (fractions allowed) [default: it waits].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    accept_timeout: Option<Duration>,
    /// The destination gives up if the source sends nothing for SECS seconds in
    /// the middle of the stream [default: it waits].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    idle_timeout: Option<Duration>,
    /// Plain progress lines instead of a progress bar.
    #[arg(long)]
    no_progress_bar: bool,
}

/// A positive number of seconds, fractions allowed.
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{s}: must be more than 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s}: {e}"))
}

fn main() -> ExitCode {
    let a = Args::parse();
    let opts = DemoOptions {
        ram_mib: a.ram_mib,
        used_percent: a.used_percent,
        max_bandwidth_mib: a.max_bandwidth_mib,
        downtime_ms: a.downtime_ms,
        dirty_rate: a.dirty_rate,
        keys_per_sec: a.keys_per_sec,
        uri: a.uri,
        keep_stream: a.keep_stream,
        timeout: Duration::from_secs(a.timeout_secs),
        accept_timeout: a.accept_timeout,
        idle_timeout: a.idle_timeout,
        progress: if a.no_progress_bar {
            ProgressMode::Lines
        } else {
            ProgressMode::Auto
        },
    };
    let mut out = std::io::stdout();
    match demo::run(&opts, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: error: {e}");
            ExitCode::FAILURE
        }
    }
}
