//! What the demo tells: the introduction, the comparison of destination and
//! source at switchover, and the `query-migrate`-style summary.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use vmstate_runtime::migration::{MigrationStats, MigrationStatus, MigrationUri};
use vmstate_runtime::to_bytes;

use super::checksum::Checksum;
use super::guest::pending_bytes;
use super::options::Role;
use super::{DemoError, DemoOptions, MIB};
use std::sync::atomic::Ordering;

use super::guest::Source;
use vmstate_devices::machine::{Machine, VirtioCounters, VirtioVerdict};
use vmstate_devices::ram::{RamBlock, RamCounters};

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
    /// The side(s) this process ran.
    pub role: Role,
    /// The final figures of this process's migration: the source's
    /// `query-migrate` (the destination's own, with `--role destination`).
    pub stats: MigrationStats,
    /// The destination's final status (when this process ran it).
    pub destination_status: Option<MigrationStatus>,
    /// Pages of guest RAM (all blocks).
    pub ram_pages: u64,
    /// PAGE records sent (received, on the destination).
    pub normal_pages: u64,
    /// ZERO records sent (received).
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
    /// Source-vs-destination comparisons (both sides in this process).
    pub checks: Vec<Check>,
    /// The source's checksums at switchover (when this process ran it).
    pub source_checksums: Vec<Checksum>,
    /// The destination's checksums once loaded (when this process ran it).
    pub destination_checksums: Vec<Checksum>,
    /// Bytes of the kept stream file, when one was written.
    pub kept_bytes: Option<u64>,
    /// The highest vCPU throttle auto-converge set, percent.
    pub max_throttle: u32,
    /// This process's peak resident set (`VmHWM`), when the OS tells it.
    pub peak_rss: Option<u64>,
    /// Wall time of the whole demo.
    pub wall: Duration,
    /// What the source guest's virtio drivers did (when it has the devices).
    pub virtio: Option<VirtioCounters>,
}

impl DemoReport {
    /// A report of `stats` with nothing else measured yet.
    pub(super) fn new(role: Role, stats: MigrationStats, ram_pages: u64) -> Self {
        DemoReport {
            role,
            stats,
            destination_status: None,
            ram_pages,
            normal_pages: 0,
            zero_pages: 0,
            resent_pages: 0,
            downtime_bytes: 0,
            guest_writes: 0,
            keys_typed: 0,
            in_flight: Vec::new(),
            checks: Vec::new(),
            source_checksums: Vec::new(),
            destination_checksums: Vec::new(),
            kept_bytes: None,
            max_throttle: 0,
            peak_rss: None,
            wall: Duration::ZERO,
            virtio: None,
        }
    }

    /// Takes the RAM counters of `machine` (what its "ram" section sent or
    /// loaded).
    pub(super) fn count_ram(&mut self, machine: &Machine) {
        let c = &machine.ram_counters;
        self.normal_pages = RamCounters::get(&c.normal);
        self.zero_pages = RamCounters::get(&c.duplicate);
        self.resent_pages = RamCounters::get(&c.resent);
        self.downtime_bytes = RamCounters::get(&c.downtime_bytes);
    }

    /// Takes the guest workload's counters and what the source's keyboard
    /// controller holds for the guest.
    pub(super) fn count_guest(&mut self, source: &Source) -> Result<(), DemoError> {
        let c = source.guest.counters();
        self.guest_writes = c.writes.load(Ordering::Relaxed);
        self.keys_typed = c.keys.load(Ordering::Relaxed);
        self.in_flight = pending_bytes(&*lock(&source.machine.i8042, "source i8042")?);
        if let Some(v) = &source.machine.virtio {
            self.virtio = Some(lock(&v.guest, "source virtio guest")?.counters.clone());
        }
        Ok(())
    }

    /// Whether every comparison was identical (both sides in this process),
    /// or, for one side, whether its migration completed.
    pub fn verified(&self) -> bool {
        match self.role {
            Role::Both => !self.checks.is_empty() && self.checks.iter().all(|c| c.identical),
            _ => self.stats.status == MigrationStatus::Completed,
        }
    }
}

const GIB: u64 = 1 << 30;

/// Human-readable byte count (binary units).
pub fn human_bytes(b: u64) -> String {
    if b >= GIB {
        format!("{:.2} GiB", b as f64 / GIB as f64)
    } else if b >= MIB {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    } else if b >= 1024 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// Human-readable rate (binary units per second).
pub fn human_rate(bps: f64) -> String {
    format!("{}/s", human_bytes(bps.max(0.0) as u64))
}

/// This process's peak resident set size in bytes (`VmHWM` of
/// `/proc/self/status`), where the OS has it.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
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
    if let (Some(a), Some(b)) = (&src.virtio, &dst.virtio) {
        for ((what, x), (_, y)) in a.section_bodies()?.into_iter().zip(b.section_bodies()?) {
            checks.push(Check {
                what,
                bytes: x.len(),
                identical: x == y,
            });
        }
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

/// The checks of the destination's virtio devices going on with the
/// source's guest (exactly-once block completion, the disk image, the frames).
pub(super) fn virtio_checks(v: &VirtioVerdict) -> Vec<Check> {
    vec![
        Check {
            what: format!(
                "virtio-blk: {} in flight, completed once there",
                v.blk_in_flight
            ),
            bytes: 0,
            identical: v.blk_exactly_once,
        },
        Check {
            what: format!(
                "virtio-blk: disk image ({} sectors written)",
                v.disk_sectors
            ),
            bytes: v.disk_sectors * 512,
            identical: v.disk_matches,
        },
        Check {
            what: format!(
                "virtio-net: {} frames, {} unsent at switchover",
                v.net_sent, v.net_unsent
            ),
            bytes: 0,
            identical: v.net_intact,
        },
    ]
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
                .map_err(|e| DemoError::Failed(format!("reading RAMBlock {}: {e}", block.idstr())))
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

pub(super) fn lock<'a, T>(m: &'a Mutex<T>, what: &str) -> Result<MutexGuard<'a, T>, DemoError> {
    m.lock()
        .map_err(|_| DemoError::Failed(format!("{what} poisoned")))
}

/// A URI as QEMU writes it.
pub(super) fn uri_text(uri: &MigrationUri) -> String {
    uri.to_string()
}

/// A bandwidth limit, 0 shown as unlimited.
pub(super) fn limit_text(max_bandwidth: u64) -> String {
    if max_bandwidth == 0 {
        "unlimited".into()
    } else {
        human_rate(max_bandwidth as f64)
    }
}

/// The guest and the migration parameters, before the migration starts.
pub(super) fn print_intro(opts: &DemoOptions, ram_total: u64, out: &mut dyn Write) {
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
        "  source       {} guest RAM ({:#x} bytes, {} pages of 4 KiB), {}% data, the rest zero,\n\
         \x20              in QEMU 7.2's pc RAM blocks ({} with firmware and fw_cfg)\n\
         \x20              + PC keyboard controller (i8042, PS/2 keyboard and mouse)",
        human_bytes(opts.ram_size),
        opts.ram_size,
        opts.pages(),
        opts.used_percent,
        human_bytes(ram_total)
    );
    let _ = writeln!(
        out,
        "  guest        dirties {} pages/s ({}) of its RAM,\n\
         \x20              types {} keys/s and moves the mouse",
        opts.dirty_rate,
        human_rate(opts.dirty_bytes_per_sec() as f64),
        opts.keys_per_sec
    );
    print_limits(opts, out);
}

/// The migration parameters and capabilities.
pub(super) fn print_limits(opts: &DemoOptions, out: &mut dyn Write) {
    let mut caps = Vec::new();
    if opts.postcopy {
        caps.push("postcopy-ram".to_string());
    }
    if let Some(size) = opts.xbzrle_cache_size {
        caps.push(format!("xbzrle (xbzrle-cache-size {})", human_bytes(size)));
    }
    if opts.auto_converge {
        caps.push(format!(
            "auto-converge (cpu-throttle-initial {}%, increment {}%)",
            opts.cpu_throttle_initial, opts.cpu_throttle_increment
        ));
    }
    let _ = writeln!(
        out,
        "  limits       max-bandwidth {}, downtime-limit {} ms{}",
        limit_text(opts.max_bandwidth),
        opts.downtime_limit_ms,
        if caps.is_empty() {
            String::new()
        } else {
            format!("\n  capabilities {}", caps.join(", "))
        }
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

/// The rate line: transferred bytes over the total time (what the
/// `qemu-vs-us` script compares with QEMU's `query-migrate`).
pub(super) fn rate_line(bytes: u64, time: Duration) -> String {
    let secs = time.as_secs_f64();
    let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    format!(
        "{:.3} GiB/s ({bytes} bytes in {secs:.3} s)",
        rate / GIB as f64
    )
}

/// The peak-RSS line, against the guest RAM size.
pub(super) fn rss_line(peak: Option<u64>, ram_total: u64) -> String {
    match peak {
        Some(p) => format!(
            "{} (VmHWM of /proc/self/status, {p} bytes), {:.3}x the guest RAM",
            human_bytes(p),
            p as f64 / ram_total.max(1) as f64
        ),
        None => "unknown (no VmHWM in /proc/self/status)".into(),
    }
}

pub(super) fn print_summary(opts: &DemoOptions, r: &DemoReport, out: &mut dyn Write) {
    let s = &r.stats;
    let secs = s.total_time.as_secs_f64();
    let average = if secs > 0.0 {
        s.transferred as f64 / secs
    } else {
        0.0
    };
    let downtime = s.downtime.map(ms).unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "\nMigration summary (as QMP query-migrate reports it)");
    let _ = writeln!(out, "  status        {}", s.status);
    let _ = writeln!(out, "  total time    {}", ms(s.total_time));
    let _ = writeln!(out, "  setup time    {}", ms(s.setup_time));
    let _ = writeln!(
        out,
        "  downtime      {downtime} (limit {} ms): how long the guest was paused",
        opts.downtime_limit_ms
    );
    let _ = writeln!(
        out,
        "  transferred   {} ({} bytes)",
        human_bytes(s.transferred),
        s.transferred
    );
    let _ = writeln!(
        out,
        "  rate          {}",
        rate_line(s.transferred, s.total_time)
    );
    let _ = writeln!(
        out,
        "  throughput    {} in the last window (max-bandwidth {}), {} overall",
        human_rate(s.throughput_bps),
        limit_text(opts.max_bandwidth),
        human_rate(average)
    );
    let _ = writeln!(
        out,
        "  iterations    {} (PART sections of the \"ram\" section)",
        s.iterations
    );
    let _ = writeln!(out, "  dirty syncs   {}", s.dirty_sync_count);
    if let Some(x) = s.ram.and_then(|r| r.xbzrle) {
        let _ = writeln!(
            out,
            "  xbzrle        {} pages as deltas ({}), {} cache misses, {} overflows",
            x.pages,
            human_bytes(x.bytes),
            x.cache_miss,
            x.overflow
        );
    }
    if let Some(ram) = s.ram.filter(|_| opts.postcopy) {
        let _ = writeln!(
            out,
            "  postcopy      {} sent after the switch, {} page requests from the destination",
            human_bytes(ram.postcopy_bytes),
            ram.postcopy_requests
        );
    }
    let _ = writeln!(
        out,
        "  ram pages     {} sent with data, {} as zero-page records;\n\
         \x20               {} resent after the guest rewrote them, {} sent while paused",
        r.normal_pages,
        r.zero_pages,
        r.resent_pages,
        human_bytes(r.downtime_bytes)
    );
    let throttle = if opts.auto_converge {
        format!(", vCPU throttle up to {}%", r.max_throttle)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  guest         {} memory writes, {} keys typed{throttle}",
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
    if let Some(v) = &r.virtio {
        let _ = writeln!(
            out,
            "  virtio        {} block writes ({} done on the source), {} frames looped back, {} entropy bytes",
            v.blk_submitted, v.blk_completed, v.net_received, v.rng_bytes
        );
    }
    let _ = writeln!(
        out,
        "  peak RSS      {}",
        rss_line(r.peak_rss, opts.ram_size)
    );
    if r.checks.is_empty() {
        return;
    }
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
    if let Some(st) = r.destination_status {
        let _ = writeln!(out, "  destination status: {st}");
    }
    let _ = writeln!(out, "  demo wall time: {}", ms(r.wall));
}

pub(super) fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}
