//! The `demo` binary's command line: flags named as QEMU names the migration
//! parameters and capabilities, turned into [`DemoOptions`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::options::{parse_size, DemoOptions, ProgressMode, Role};

/// Live-migrate a small VM (QEMU's pc RAM blocks + PC keyboard controller)
/// while its guest runs, in QEMU 7.2's migration stream format, and verify the
/// result. Sizes take K, M, G or T (plain numbers are MiB, as QEMU's -m).
#[derive(Parser, Debug)]
#[command(name = "demo", version)]
pub struct Args {
    /// More log output on stderr, repeatable: -v info, -vv debug, -vvv trace
    /// (RUST_LOG, when set, takes precedence).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Which side this process runs: both (the destination in a thread,
    /// compared byte for byte at the end), or one of them, as QEMU runs
    /// one process per side.
    #[arg(long, value_enum, default_value_t = RoleArg::Both)]
    pub role: RoleArg,
    /// Guest RAM size (QEMU's -m), e.g. 128M or 1G.
    #[arg(long, default_value = "128M", value_parser = parse_size)]
    pub ram_size: u64,
    /// Share of guest RAM holding data, percent (the rest are zero pages).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub used_percent: u32,
    /// Bandwidth limit during precopy, bytes/s with a suffix (32M); 0: unlimited.
    #[arg(long, default_value = "32M", value_parser = parse_size)]
    pub max_bandwidth: u64,
    /// Longest acceptable guest pause at switchover, ms.
    #[arg(long, default_value_t = 50)]
    pub downtime_limit: u64,
    /// Pages the guest dirties per second while running.
    #[arg(long, default_value_t = 4000)]
    pub dirty_rate: u64,
    /// Keys the host types into the guest's keyboard per second.
    #[arg(long, default_value_t = 25)]
    pub keys_per_sec: u32,
    /// Switch to postcopy once the first pass is sent (capability postcopy-ram,
    /// then migrate-start-postcopy). Give it to both sides.
    #[arg(long)]
    pub postcopy: bool,
    /// Send re-dirtied pages as XBZRLE deltas against a cache of what was sent
    /// (capability xbzrle).
    #[arg(long)]
    pub xbzrle: bool,
    /// Bytes of the XBZRLE page cache (parameter xbzrle-cache-size), e.g. 64M.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub xbzrle_cache_size: u64,
    /// Throttle the guest's vCPUs while it dirties memory faster than it can
    /// be sent (capability auto-converge).
    #[arg(long)]
    pub auto_converge: bool,
    /// First throttle auto-converge applies, percent.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub cpu_throttle_initial: u32,
    /// What auto-converge adds each time the throttle is not enough, percent.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub cpu_throttle_increment: u32,
    /// Where the stream goes: tcp:HOST:PORT, unix:PATH, file:PATH or
    /// exec:COMMAND. With both sides here the destination listens there (port 0:
    /// any free port) or reads the file back [default: a unix socket in a
    /// fresh temporary directory].
    #[arg(long)]
    pub uri: Option<String>,
    /// Where the destination waits for the stream (QEMU's -incoming):
    /// tcp:HOST:PORT, unix:PATH, file:PATH or exec:COMMAND.
    #[arg(long)]
    pub incoming: Option<String>,
    /// Also write the migration stream to FILE (decode it with `vmstate analyze FILE`).
    #[arg(long, value_name = "FILE")]
    pub keep_stream: Option<PathBuf>,
    /// Cancel the migration if it has not finished after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// The destination gives up if no source connected within SECS seconds
    /// (fractions allowed) [default: it waits].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub accept_timeout: Option<Duration>,
    /// The destination gives up if the source sends nothing for SECS seconds in
    /// the middle of the stream [default: it waits].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub idle_timeout: Option<Duration>,
    /// Serve QMP here (unix:PATH or tcp:127.0.0.1:PORT), as QEMU's -qmp: a
    /// source without --uri waits for `migrate`, a destination without
    /// --incoming (or with --incoming defer) for `migrate-incoming`.
    #[arg(long, value_name = "ADDR")]
    pub qmp: Option<String>,
    /// Plain progress lines instead of a progress bar.
    #[arg(long)]
    pub no_progress_bar: bool,
    /// Keep this side's guest RAM (`pc.ram`) in FILE, mapped shared, as
    /// QEMU's `-object memory-backend-file,mem-path=FILE,share=on`: the
    /// file's bytes are the guest's memory (a source does not fill it at
    /// boot). An empty file is sized to --ram-size. With --role both, the
    /// source's RAM.
    #[arg(long, value_name = "FILE")]
    pub mem_path: Option<PathBuf>,
}

/// `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Source and destination in this process.
    Both,
    /// The running VM, migrating to --uri.
    Source,
    /// The VM waiting at --incoming.
    Destination,
}

/// A positive number of seconds, fractions allowed.
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{s}: must be more than 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s}: {e}"))
}

impl Args {
    /// The options these flags ask for.
    pub fn into_options(self) -> DemoOptions {
        DemoOptions {
            role: match self.role {
                RoleArg::Both => Role::Both,
                RoleArg::Source => Role::Source,
                RoleArg::Destination => Role::Destination,
            },
            ram_size: self.ram_size,
            used_percent: self.used_percent,
            max_bandwidth: self.max_bandwidth,
            downtime_limit_ms: self.downtime_limit,
            dirty_rate: self.dirty_rate,
            keys_per_sec: self.keys_per_sec,
            postcopy: self.postcopy,
            xbzrle_cache_size: self.xbzrle.then_some(self.xbzrle_cache_size),
            auto_converge: self.auto_converge,
            cpu_throttle_initial: self.cpu_throttle_initial,
            cpu_throttle_increment: self.cpu_throttle_increment,
            uri: self.uri,
            incoming: self.incoming,
            mem_path: self.mem_path,
            keep_stream: self.keep_stream,
            timeout: Duration::from_secs(self.timeout_secs),
            accept_timeout: self.accept_timeout,
            idle_timeout: self.idle_timeout,
            qmp: self.qmp,
            progress: if self.no_progress_bar {
                ProgressMode::Lines
            } else {
                ProgressMode::Auto
            },
            interrupt: None,
        }
    }
}
