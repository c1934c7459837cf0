//! The demo's knobs and their checks: which side(s) this process runs, the
//! guest, the migration parameters (named as QEMU names them) and where the
//! stream goes.

use std::path::PathBuf;
use std::time::Duration;

use vmstate_runtime::migration::{CancelToken, MigrationUri, MAX_DOWNTIME_LIMIT_MS};

use super::{fail, DemoError, MIB};
use vmstate_devices::ram::protocol::X86_TARGET_PAGE_SIZE;

/// The guest's page size (x86).
pub(super) const PAGE_SIZE: u64 = X86_TARGET_PAGE_SIZE;

/// Largest guest RAM the demo boots.
pub const MAX_RAM_SIZE: u64 = 64 << 30;

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

/// Which side of the migration this process runs (QEMU runs one process per
/// side: the source is told `migrate URI`, the destination `-incoming URI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Both sides in this process, the destination in a thread, and a
    /// byte-for-byte comparison at the end.
    #[default]
    Both,
    /// The running VM: migrates to `--uri`.
    Source,
    /// An empty VM waiting at `--incoming` for the stream.
    Destination,
}

/// The demo's knobs (the `demo` binary's flags).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Which side(s) this process runs.
    pub role: Role,
    /// Guest RAM size in bytes (the `pc.ram` block; a multiple of 4 KiB).
    pub ram_size: u64,
    /// Share of RAM holding data (the rest are zero pages), percent.
    pub used_percent: u32,
    /// QEMU's `max-bandwidth`: bytes/s during precopy (0: unlimited).
    pub max_bandwidth: u64,
    /// QEMU's `downtime-limit` in ms.
    pub downtime_limit_ms: u64,
    /// Pages the guest dirties per second.
    pub dirty_rate: u64,
    /// Keys typed per second.
    pub keys_per_sec: u32,
    /// QEMU's `postcopy-ram` capability, and `migrate-start-postcopy` once
    /// the first pass is sent.
    pub postcopy: bool,
    /// QEMU's `xbzrle` capability with this `xbzrle-cache-size` in bytes
    /// (`None`: off).
    pub xbzrle_cache_size: Option<u64>,
    /// QEMU's `auto-converge` capability: throttle the guest's vCPUs while
    /// it dirties memory faster than half the transfer rate.
    pub auto_converge: bool,
    /// QEMU's `cpu-throttle-initial`, percent.
    pub cpu_throttle_initial: u32,
    /// QEMU's `cpu-throttle-increment`, percent.
    pub cpu_throttle_increment: u32,
    /// Where the stream goes (`migrate URI`): `tcp:`, `unix:`, `file:` or
    /// `exec:`. With both sides in one process the destination listens (or
    /// reads) there; default a unix socket in a fresh temporary directory.
    pub uri: Option<String>,
    /// Where the destination takes the stream from (`-incoming URI`).
    pub incoming: Option<String>,
    /// This side's `pc.ram` in this file, mapped shared (QEMU's
    /// `memory-backend-file` `mem-path` with `share=on`); with both sides
    /// in one process, the source's. `None`: anonymous memory.
    pub mem_path: Option<PathBuf>,
    /// Also write the stream to this file.
    pub keep_stream: Option<PathBuf>,
    /// Give up (cancel) when the migration has not finished after this long.
    pub timeout: Duration,
    /// The destination gives up when no source connected within this long
    /// (default `None`: it waits until cancelled).
    pub accept_timeout: Option<Duration>,
    /// The destination gives up when the source sends nothing for this long in
    /// the middle of the stream (default `None`).
    pub idle_timeout: Option<Duration>,
    /// Serve QMP at this address (`unix:PATH`, `tcp:127.0.0.1:PORT`) and take
    /// the migration commands from there.
    pub qmp: Option<String>,
    /// How to show progress.
    pub progress: ProgressMode,
    /// Set from outside (Ctrl-C) to cancel the migration cleanly.
    pub interrupt: Option<CancelToken>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            role: Role::Both,
            ram_size: 128 * MIB,
            used_percent: 50,
            max_bandwidth: 32 * MIB,
            downtime_limit_ms: 50,
            dirty_rate: 4000,
            keys_per_sec: 25,
            postcopy: false,
            xbzrle_cache_size: None,
            auto_converge: false,
            cpu_throttle_initial: 20,
            cpu_throttle_increment: 10,
            uri: None,
            incoming: None,
            mem_path: None,
            keep_stream: None,
            timeout: Duration::from_secs(30),
            accept_timeout: None,
            idle_timeout: None,
            qmp: None,
            progress: ProgressMode::Auto,
            interrupt: None,
        }
    }
}

impl DemoOptions {
    /// Refuses sizes, limits and combinations the demo cannot run with.
    pub(super) fn check(&self) -> Result<(), DemoError> {
        if self.ram_size == 0
            || self.ram_size > MAX_RAM_SIZE
            || !self.ram_size.is_multiple_of(PAGE_SIZE)
        {
            return fail(format!(
                "--ram-size must be a multiple of 4 KiB between 4K and {}G",
                MAX_RAM_SIZE >> 30
            ));
        }
        if self.xbzrle_cache_size == Some(0) {
            return fail("--xbzrle-cache-size must be more than 0");
        }
        if self.used_percent > 100 {
            return fail("--used-percent must be between 0 and 100");
        }
        if self.downtime_limit_ms > MAX_DOWNTIME_LIMIT_MS {
            return fail(format!(
                "--downtime-limit must be at most {MAX_DOWNTIME_LIMIT_MS} ms"
            ));
        }
        if !(1..=99).contains(&self.cpu_throttle_initial)
            || !(1..=99).contains(&self.cpu_throttle_increment)
        {
            return fail("--cpu-throttle-initial and --cpu-throttle-increment must be 1..=99");
        }
        match self.role {
            Role::Both if self.qmp.is_some() => {
                return fail("--qmp goes with --role source or --role destination");
            }
            Role::Both => {
                if self.incoming.is_some() && !self.uri.as_deref().is_some_and(is_exec) {
                    return fail(
                        "--incoming goes with --role destination (or with --uri exec:... \
                         to name the command the destination reads from)",
                    );
                }
            }
            Role::Source => {
                if self.uri.is_none() && self.qmp.is_none() {
                    return fail(
                        "--role source needs --uri (where the destination waits), or --qmp \
                         to wait for QMP migrate",
                    );
                }
                if self.incoming.is_some() {
                    return fail("--incoming is the destination's; the source takes --uri");
                }
            }
            Role::Destination => {
                if self.incoming.is_none() && self.qmp.is_none() {
                    return fail(
                        "--role destination needs --incoming (where to listen), or --qmp \
                         to wait for QMP migrate-incoming",
                    );
                }
                if self.incoming.as_deref() == Some("defer") && self.qmp.is_none() {
                    return fail("--incoming defer waits for QMP migrate-incoming: add --qmp");
                }
                if self.uri.is_some() || self.keep_stream.is_some() {
                    return fail(
                        "--uri and --keep-stream are the source's; the destination takes --incoming",
                    );
                }
            }
        }
        Ok(())
    }

    /// Guest RAM in pages.
    pub(super) fn pages(&self) -> u64 {
        self.ram_size / PAGE_SIZE
    }

    /// The guest's dirtying rate in bytes per second.
    pub(super) fn dirty_bytes_per_sec(&self) -> u64 {
        self.dirty_rate * PAGE_SIZE
    }

    /// Where the source sends the stream: `--uri`, or a unix socket in `tmp`.
    pub(super) fn outgoing_uri(&self, tmp: &std::path::Path) -> Result<MigrationUri, DemoError> {
        match &self.uri {
            Some(u) => parse_uri("--uri", u),
            None => Ok(MigrationUri::Unix(tmp.join("migrate.sock"))),
        }
    }

    /// Where a destination process takes the stream from: `--incoming`.
    pub(super) fn destination_uri(&self) -> Result<MigrationUri, DemoError> {
        match &self.incoming {
            Some(u) => parse_uri("--incoming", u),
            None => fail("--role destination needs --incoming (where to listen)"),
        }
    }

    /// Where the destination takes the stream from: `--incoming`; with both
    /// sides here, the `--uri` itself (a socket to listen on, a file to read
    /// back), except for `exec:`, which needs its own `--incoming exec:...`.
    pub(super) fn incoming_uri(&self, outgoing: &MigrationUri) -> Result<MigrationUri, DemoError> {
        if let Some(u) = &self.incoming {
            let incoming = parse_uri("--incoming", u)?;
            if matches!(incoming, MigrationUri::Fd(_)) && incoming == *outgoing {
                // One descriptor has one owner: the two sides cannot both take it.
                return fail("--uri and --incoming name the same fd: give each side its own");
            }
            return Ok(incoming);
        }
        match outgoing {
            MigrationUri::Fd(_) => fail(
                "--uri fd:N is the source's end; say with --incoming fd:M which descriptor \
                 the destination reads",
            ),
            MigrationUri::Exec(_) => fail(
                "--uri exec:CMD sends the stream to CMD; say with --incoming exec:CMD2 which \
                 command gives it back to the destination",
            ),
            other => Ok(other.clone()),
        }
    }
}

fn is_exec(uri: &str) -> bool {
    uri.starts_with("exec:")
}

/// Whether the transport carries a return path (sockets do; files and pipes
/// are one way).
pub(super) fn is_bidirectional(uri: &MigrationUri) -> bool {
    matches!(uri, MigrationUri::Tcp(_) | MigrationUri::Unix(_))
}

fn parse_uri(flag: &str, uri: &str) -> Result<MigrationUri, DemoError> {
    uri.parse()
        .map_err(|e| DemoError::Failed(format!("{flag} {uri}: {e}")))
}

/// A size as QEMU's command line and HMP take it: a number with an optional
/// binary suffix `K`, `M`, `G` or `T` (`B` and `iB` may follow: `512MiB`),
/// and without a suffix MiB, as QEMU's `-m` and HMP's `max-bandwidth` read
/// it. Fractions are allowed with a suffix (`1.5G`).
///
/// ```
/// use vmstate_examples::demo::parse_size;
/// assert_eq!(parse_size("1G"), Ok(1 << 30));
/// assert_eq!(parse_size("512"), Ok(512 << 20));
/// assert_eq!(parse_size("4k"), Ok(4096));
/// assert_eq!(parse_size("0"), Ok(0));
/// assert!(parse_size("1X").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let unit: u64 = match suffix
        .trim_end_matches("iB")
        .trim_end_matches('B')
        .to_ascii_uppercase()
        .as_str()
    {
        "" if suffix.is_empty() => MIB,
        "" => 1, // "B": bytes
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        other => {
            return Err(format!(
                "{s}: unknown size suffix {other:?} (use K, M, G or T)"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!("{s}: not a size (try 512M or 1G)"));
    }
    let bytes = if num.contains('.') {
        let v: f64 = num.parse().map_err(|e| format!("{s}: {e}"))?;
        v * unit as f64
    } else {
        let v: u64 = num.parse().map_err(|e| format!("{s}: {e}"))?;
        return v.checked_mul(unit).ok_or_else(|| format!("{s}: too large"));
    };
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("{s}: too large"));
    }
    Ok(bytes.round() as u64)
}
