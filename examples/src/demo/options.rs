//! The demo's knobs and their checks.

use std::path::PathBuf;
use std::time::Duration;

use vmstate_runtime::migration::{MigrationUri, MAX_DOWNTIME_LIMIT_MS};

use super::{fail, DemoError, MIB};
use vmstate_devices::ram::protocol::X86_TARGET_PAGE_SIZE;

/// The guest's page size (x86).
const PAGE_SIZE: usize = X86_TARGET_PAGE_SIZE as usize;

/// How progress is shown while migrating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live progress bar on a terminal; plain lines when stderr is not one.
    Auto,
    /// Plain lines on the output, about four a second.
    Lines,
    /// Nothing (tests).
    Off,
}

/// The demo's knobs (the `demo` binary's flags).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Guest RAM size in MiB.
    pub ram_mib: u64,
    /// Share of RAM holding data (the rest are zero pages), percent.
    pub used_percent: u32,
    /// Bandwidth limit in MiB/s during precopy (0: unlimited).
    pub max_bandwidth_mib: u64,
    /// Downtime limit in ms.
    pub downtime_ms: u64,
    /// Pages the guest dirties per second.
    pub dirty_rate: u64,
    /// Keys typed per second.
    pub keys_per_sec: u32,
    /// Where the destination listens (`tcp:HOST:PORT` or `unix:PATH`); default a
    /// unix socket in a fresh temporary directory.
    pub uri: Option<String>,
    /// Also write the stream to this file.
    pub keep_stream: Option<PathBuf>,
    /// Give up (cancel) when the migration has not finished after this long.
    pub timeout: Duration,
    /// The destination gives up when no source connected within this long
    /// (default `None`: it waits until the demo cancels it).
    pub accept_timeout: Option<Duration>,
    /// The destination gives up when the source sends nothing for this long in
    /// the middle of the stream (default `None`).
    pub idle_timeout: Option<Duration>,
    /// How to show progress.
    pub progress: ProgressMode,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            ram_mib: 64,
            used_percent: 50,
            max_bandwidth_mib: 32,
            downtime_ms: 50,
            dirty_rate: 4000,
            keys_per_sec: 25,
            uri: None,
            keep_stream: None,
            timeout: Duration::from_secs(30),
            accept_timeout: None,
            idle_timeout: None,
            progress: ProgressMode::Auto,
        }
    }
}

impl DemoOptions {
    /// Refuses sizes and limits the demo cannot run with.
    pub(super) fn check(&self) -> Result<(), DemoError> {
        if self.ram_mib == 0 || self.ram_mib > 4096 {
            return fail("--ram-mib must be between 1 and 4096");
        }
        if self.downtime_ms > MAX_DOWNTIME_LIMIT_MS {
            return fail(format!(
                "--downtime-ms must be at most {MAX_DOWNTIME_LIMIT_MS}"
            ));
        }
        Ok(())
    }

    /// Guest RAM in pages.
    pub(super) fn pages(&self) -> usize {
        (self.ram_mib * MIB) as usize / PAGE_SIZE
    }

    /// The bandwidth limit in bytes per second (0: unlimited).
    pub(super) fn max_bandwidth(&self) -> u64 {
        self.max_bandwidth_mib * MIB
    }

    /// The guest's dirtying rate in bytes per second.
    pub(super) fn dirty_bytes_per_sec(&self) -> u64 {
        self.dirty_rate * PAGE_SIZE as u64
    }

    /// Where the destination listens: `--uri`, or a unix socket in `tmp`.
    pub(super) fn listen_uri(&self, tmp: &std::path::Path) -> Result<MigrationUri, DemoError> {
        match &self.uri {
            Some(u) => parse_uri(u),
            None => Ok(MigrationUri::Unix(tmp.join("migrate.sock"))),
        }
    }
}

fn parse_uri(uri: &str) -> Result<MigrationUri, DemoError> {
    let u: MigrationUri = uri
        .parse()
        .map_err(|e| DemoError(format!("--uri {uri}: {e}")))?;
    match u {
        MigrationUri::Tcp(_) | MigrationUri::Unix(_) => Ok(u),
        _ => fail(format!(
            "--uri {uri}: the demo's destination listens, so use tcp:HOST:PORT or unix:PATH"
        )),
    }
}
