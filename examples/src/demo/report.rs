//! What the demo tells: the introduction, the comparison of destination and
//! source at switchover, and the `query-migrate`-style summary.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use vmstate_runtime::migration::{MigrationStats, MigrationStatus, MigrationUri};
use vmstate_runtime::to_bytes;

use super::guest::pending_bytes;
use super::{DemoError, DemoOptions, MIB};
use vmstate_devices::machine::Machine;
use vmstate_devices::ram::RamBlock;

/// One compared part of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was compared ("ram", "ps2kbd", ...).
    pub what: String,
    /// Bytes compared.
    pub bytes: usize,
    /// Whether source and destination were identical.
    pub identical: bool,
}

/// What the demo measured and checked.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The source's final `query-migrate` figures.
    pub stats: MigrationStats,
    /// The destination's final status.
    pub destination_status: MigrationStatus,
    /// Pages of guest RAM.
    pub ram_pages: u64,
    /// PAGE records sent.
    pub normal_pages: u64,
    /// ZERO records sent.
    pub zero_pages: u64,
    /// Pages sent again after the guest rewrote them.
    pub resent_pages: u64,
    /// Bytes of the "ram" section sent while the guest was paused (QEMU's
    /// `downtime-bytes`).
    pub downtime_bytes: u64,
    /// Memory writes the guest made.
    pub guest_writes: u64,
    /// Keys typed into the source keyboard.
    pub keys_typed: u64,
    /// Bytes waiting in the source controller at switchover, in the order the
    /// guest would read them (the destination delivers the same).
    pub in_flight: Vec<u8>,
    /// Source-vs-destination comparisons.
    pub checks: Vec<Check>,
    /// Bytes of the kept stream file, when one was written.
    pub kept_bytes: Option<u64>,
    /// Wall time of the whole demo.
    pub wall: Duration,
}

impl DemoReport {
    /// Whether every comparison was identical.
    pub fn verified(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.identical)
    }
}

/// Human-readable byte count (binary units).
pub fn human_bytes(b: u64) -> String {
    if b >= MIB {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    } else if b >= 1024 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Compares the destination with the source (still paused, exactly as at
/// switchover): RAM block by block, the three keyboard-controller sections,
/// and the bytes the guest reads next. Returns the checks and the source's bytes in flight.
pub(super) fn compare(src: &Machine, dst: &Machine) -> Result<(Vec<Check>, Vec<u8>), DemoError> {
    let mut checks = Vec::new();
    {
        let (a, b) = (
            lock(&src.ram, "source RAM")?,
            lock(&dst.ram, "destination RAM")?,
        );
        for block in a.blocks() {
            checks.push(Check {
                what: format!("ram ({})", block.idstr()),
                bytes: block.used_length() as usize,
                identical: match b.get(block.idstr()) {
                    Some(other) => same_contents(block, other)?,
                    None => false,
                },
            });
        }
    }
    let src_kbd = lock(&src.i8042, "source i8042")?.clone();
    let dst_kbd = lock(&dst.i8042, "destination i8042")?.clone();
    for (what, x, y) in [
        (
            "ps2kbd",
            to_bytes(src_kbd.keyboard())?,
            to_bytes(dst_kbd.keyboard())?,
        ),
        (
            "ps2mouse",
            to_bytes(src_kbd.mouse())?,
            to_bytes(dst_kbd.mouse())?,
        ),
        ("pckbd", to_bytes(&src_kbd)?, to_bytes(&dst_kbd)?),
    ] {
        checks.push(Check {
            what: what.into(),
            bytes: x.len(),
            identical: x == y,
        });
    }
    let in_flight = pending_bytes(&src_kbd);
    let dst_in_flight = pending_bytes(&dst_kbd);
    checks.push(Check {
        what: "bytes the guest reads next at port 0x60".into(),
        bytes: in_flight.len(),
        identical: in_flight == dst_in_flight,
    });
    Ok((checks, in_flight))
}

/// Whether two RAMBlocks hold the same bytes, compared a chunk at a time (no
/// copy of a whole guest RAM).
fn same_contents(a: &RamBlock, b: &RamBlock) -> Result<bool, DemoError> {
    const CHUNK: u64 = 1 << 20;
    if a.used_length() != b.used_length() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; CHUNK as usize], vec![0u8; CHUNK as usize]);
    let mut at = 0;
    while at < a.used_length() {
        let n = (a.used_length() - at).min(CHUNK) as usize;
        let read = |block: &RamBlock, buf: &mut [u8]| {
            block
                .read(at, buf)
                .map_err(|e| DemoError(format!("reading RAMBlock {}: {e}", block.idstr())))
        };
        read(a, &mut x[..n])?;
        read(b, &mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

fn lock<'a, T>(m: &'a Mutex<T>, what: &str) -> Result<MutexGuard<'a, T>, DemoError> {
    m.lock().map_err(|_| DemoError(format!("{what} poisoned")))
}

/// The setup, before the migration starts.
pub(super) fn print_intro(
    opts: &DemoOptions,
    pages: usize,
    dst_uri: &MigrationUri,
    tee: bool,
    out: &mut dyn Write,
) {
    let _ = writeln!(out, "vmstate-rs live migration demo");
    let _ = writeln!(out, "==============================");
    let _ = writeln!(
        out,
        "A running VM is copied to a destination while its guest keeps writing\n\
         memory and typing; the guest pauses only for the final step (precopy\n\
         live migration in QEMU's stream format).\n"
    );
    let _ = writeln!(
        out,
        "  source       {} MiB guest RAM: {pages} pages of 4 KiB, {}% data, the rest zero\n\
         \x20              + PC keyboard controller (i8042, PS/2 keyboard and mouse)",
        opts.ram_mib, opts.used_percent
    );
    let _ = writeln!(
        out,
        "  guest        dirties {} pages/s ({}/s) of its RAM,\n\
         \x20              types {} keys/s and moves the mouse",
        opts.dirty_rate,
        human_bytes(opts.dirty_bytes_per_sec()),
        opts.keys_per_sec
    );
    let uri_text = match dst_uri {
        MigrationUri::Unix(p) => format!("unix:{}", p.display()),
        MigrationUri::Tcp(a) => format!("tcp:{a}"),
        other => format!("{other:?}"),
    };
    let _ = writeln!(
        out,
        "  destination  a thread listening on {uri_text}{}",
        if tee {
            "\n               (through a tee that keeps a copy of the stream)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  limits       bandwidth {}, downtime {} ms\n",
        if opts.max_bandwidth() == 0 {
            "unlimited".to_string()
        } else {
            format!("{}/s", human_bytes(opts.max_bandwidth()))
        },
        opts.downtime_ms
    );
    let _ = out.flush();
}

pub(super) fn print_kept(out: &mut dyn Write, path: &Path, n: u64) {
    let _ = writeln!(
        out,
        "\nThe stream ({}) is in {}; decode it like QEMU's analyze-migration.py:\n  \
         cargo run --release -p vmstate-examples --bin vmstate -- analyze {}",
        human_bytes(n),
        path.display(),
        path.display()
    );
}

pub(super) fn print_summary(opts: &DemoOptions, r: &DemoReport, out: &mut dyn Write) {
    let s = &r.stats;
    let secs = s.total_time.as_secs_f64();
    let average = if secs > 0.0 {
        s.transferred as f64 / secs
    } else {
        0.0
    };
    let limit = if opts.max_bandwidth_mib == 0 {
        "no limit".to_string()
    } else {
        format!("limit {} MiB/s", opts.max_bandwidth_mib)
    };
    let downtime = s.downtime.map(ms).unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "\nMigration summary (as QMP query-migrate reports it)");
    let _ = writeln!(out, "  status        {}", s.status);
    let _ = writeln!(out, "  total time    {}", ms(s.total_time));
    let _ = writeln!(out, "  setup time    {}", ms(s.setup_time));
    let _ = writeln!(
        out,
        "  downtime      {downtime} (limit {} ms): how long the guest was paused",
        opts.downtime_ms
    );
    let _ = writeln!(
        out,
        "  transferred   {} ({} bytes)",
        human_bytes(s.transferred),
        s.transferred
    );
    let _ = writeln!(
        out,
        "  throughput    {}/s while throttled ({limit}), {}/s overall",
        human_bytes(s.throughput_bps as u64),
        human_bytes(average as u64)
    );
    let _ = writeln!(
        out,
        "  iterations    {} (PART sections of the \"ram\" section)",
        s.iterations
    );
    let _ = writeln!(out, "  dirty syncs   {}", s.dirty_sync_count);
    let _ = writeln!(
        out,
        "  ram pages     {} sent with data, {} as zero-page records;\n\
         \x20               {} resent after the guest rewrote them, {} sent while paused",
        r.normal_pages,
        r.zero_pages,
        r.resent_pages,
        human_bytes(r.downtime_bytes)
    );
    let _ = writeln!(
        out,
        "  guest         {} memory writes, {} keys typed",
        r.guest_writes, r.keys_typed
    );
    let in_flight = if r.in_flight.is_empty() {
        "nothing queued in the controller at switchover".to_string()
    } else {
        let bytes: Vec<_> = r.in_flight.iter().map(|b| format!("{b:02x}")).collect();
        let n = bytes.len();
        format!(
            "{n} byte{} queued in the controller at switchover: {}",
            if n == 1 { "" } else { "s" },
            bytes.join(" ")
        )
    };
    let _ = writeln!(out, "  keyboard      {in_flight}");
    let _ = writeln!(
        out,
        "\nVerification: destination vs source at switchover (byte compare)"
    );
    for c in &r.checks {
        let _ = writeln!(
            out,
            "  {:<42} {:>10}  {}",
            c.what,
            human_bytes(c.bytes as u64),
            if c.identical {
                "identical"
            } else {
                "DIFFERENT"
            }
        );
    }
    let _ = writeln!(out, "  destination status: {}", r.destination_status);
    let _ = writeln!(out, "  demo wall time: {}", ms(r.wall));
}
