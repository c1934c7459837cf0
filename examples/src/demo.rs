//! The live-migration demo, as a library function so tests can run it
//! in-process with tiny parameters: a source machine (guest RAM + keyboard
//! controller) keeps running a guest workload while precopy migration streams
//! it to a destination listening in another thread; at the end the destination
//! must hold exactly the source's state at switchover.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vmstate_devices::pckbd::I8042;
use vmstate_runtime::migration::{
    connect, run_incoming, start_migration, Incoming, MigrationCapabilities, MigrationConfig,
    MigrationParameters, MigrationStats, MigrationStatus, MigrationUri, StatsHandle,
    MAX_DOWNTIME_LIMIT_MS,
};
use vmstate_runtime::savevm::{Configuration, LoadOptions, QemuVersion};
use vmstate_runtime::to_bytes;

use crate::machine::{Guest, Machine, RamStats, Workload, MACHINE_TYPE, PAGE_SIZE, RAM_BLOCK};

const MIB: u64 = 1024 * 1024;

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
            progress: ProgressMode::Auto,
        }
    }
}

/// A demo failure, with what went wrong.
#[derive(Debug)]
pub struct DemoError(pub String);

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

impl From<vmstate_runtime::Error> for DemoError {
    fn from(e: vmstate_runtime::Error) -> Self {
        DemoError(e.to_string())
    }
}

impl From<io::Error> for DemoError {
    fn from(e: io::Error) -> Self {
        DemoError(e.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, DemoError> {
    Err(DemoError(msg.into()))
}

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
    /// Pages sent while the guest was paused.
    pub downtime_pages: u64,
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

/// Copies the source's stream to the destination and to `file`, and the return
/// path back; returns the bytes of the stream.
fn spawn_tee(
    listener: UnixListener,
    target: MigrationUri,
    file: File,
) -> io::Result<JoinHandle<io::Result<u64>>> {
    std::thread::Builder::new()
        .name("tee".into())
        .spawn(move || {
            let (src, _) = listener.accept()?;
            let dst = connect(&target).map_err(io::Error::other)?;
            let mut dst_w = dst.stream;
            let dst_r = dst.reverse;
            let mut src_r = src.try_clone()?;
            let mut src_w = src;
            let back = std::thread::spawn(move || {
                if let Some(mut r) = dst_r {
                    let _ = io::copy(&mut r, &mut src_w);
                }
                let _ = src_w.shutdown(std::net::Shutdown::Both);
            });
            let mut file = BufWriter::new(file);
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            let copied = (|| -> io::Result<()> {
                loop {
                    let n = match src_r.read(&mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    file.write_all(&buf[..n])?;
                    dst_w.write_all(&buf[..n])?;
                    total += n as u64;
                }
            })();
            let flushed = file.flush();
            if copied.is_err() {
                let _ = dst_w.shutdown();
                let _ = src_r.shutdown(std::net::Shutdown::Both);
            } else {
                let _ = dst_w.flush();
                let _ = dst_w.shutdown_write();
            }
            let _ = back.join();
            copied.and(flushed).map(|_| total)
        })
}

/// Unblocks a thread waiting in `accept` on `uri` (after the source failed
/// before connecting): connect once and hang up.
fn poke(uri: &MigrationUri) {
    let _ = connect(uri);
}

/// Bytes the controller holds for the guest, in the order port 0x60 would
/// deliver them (read on a copy: the device itself is not disturbed).
pub fn pending_bytes(dev: &I8042) -> Vec<u8> {
    let mut twin = dev.clone();
    let mut out = Vec::new();
    while twin.read_port(0x64) & 0x01 != 0 && out.len() < 64 {
        out.push(twin.read_port(0x60));
    }
    out
}

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

    fn update(&mut self, s: &MigrationStats, out: &mut dyn Write) {
        if let Some(bar) = &self.bar {
            bar.set_length(s.total.max(s.transferred).max(1));
            bar.set_position(s.transferred);
            bar.set_message(Self::short(s));
        } else if self.lines && self.last_line.elapsed() >= Duration::from_millis(250) {
            self.last_line = Instant::now();
            let _ = writeln!(
                out,
                "  {:>5.2} s  {}",
                self.started.elapsed().as_secs_f64(),
                Self::short(s)
            );
        }
    }

    fn finish(&mut self, s: &MigrationStats, out: &mut dyn Write) {
        if let Some(bar) = self.bar.take() {
            bar.set_length(s.transferred.max(1));
            bar.set_position(s.transferred);
            bar.set_message(Self::short(s));
            bar.finish();
        } else if self.lines {
            let _ = writeln!(
                out,
                "  {:>5.2} s  {}",
                self.started.elapsed().as_secs_f64(),
                Self::short(s)
            );
        }
    }
}

/// Runs the demo, writing its story to `out`. Fails (with what went wrong) if
/// the migration fails, does not converge within the timeout, or the
/// destination's state differs from the source's at switchover.
pub fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    if opts.ram_mib == 0 || opts.ram_mib > 4096 {
        return fail("--ram-mib must be between 1 and 4096");
    }
    if opts.downtime_ms > MAX_DOWNTIME_LIMIT_MS {
        return fail(format!(
            "--downtime-ms must be at most {MAX_DOWNTIME_LIMIT_MS}"
        ));
    }
    let pages = (opts.ram_mib * MIB) as usize / PAGE_SIZE;
    let tmp = tempfile::Builder::new().prefix("vmstate-demo-").tempdir()?;
    let listen_uri = match &opts.uri {
        Some(u) => parse_uri(u)?,
        None => MigrationUri::Unix(tmp.path().join("migrate.sock")),
    };

    // The destination: listening before the source starts.
    let incoming = Incoming::listen(&listen_uri)?;
    let dst_uri = match incoming.local_tcp_addr() {
        Some(a) => MigrationUri::Tcp(a.to_string()),
        None => listen_uri.clone(),
    };
    let dst_machine = Machine::new(pages);
    let dst_stats = StatsHandle::default();
    let destination = {
        let (m, s) = (dst_machine.clone(), dst_stats.clone());
        std::thread::Builder::new()
            .name("destination".into())
            .spawn(move || -> vmstate_runtime::Result<()> {
                let mut reg = m.registry()?;
                let opts = LoadOptions {
                    version: QemuVersion::V7_2,
                    configuration: Some(Configuration::new(MACHINE_TYPE)),
                };
                run_incoming(incoming, &mut reg, opts, &s)
            })?
    };

    // Optionally a tee between the two, keeping a copy of the stream.
    let (src_uri, tee) = match &opts.keep_stream {
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| DemoError(format!("--keep-stream {}: {e}", path.display())))?;
            let sock = tmp.path().join("tee.sock");
            let listener = UnixListener::bind(&sock)?;
            let tee = spawn_tee(listener, dst_uri.clone(), file)?;
            (MigrationUri::Unix(sock), Some(tee))
        }
        None => (dst_uri.clone(), None),
    };

    // The source: boot, start the guest, let it run a moment.
    let src = Machine::new(pages);
    src.boot(opts.used_percent, 0x1234_5678)?;
    let guest = Guest::start(
        &src,
        Workload {
            dirty_pages_per_sec: opts.dirty_rate,
            keys_per_sec: opts.keys_per_sec,
            ..Workload::default()
        },
    )?;
    std::thread::sleep(Duration::from_millis(200));

    let max_bandwidth = opts.max_bandwidth_mib * MIB;
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
        human_bytes(opts.dirty_rate * PAGE_SIZE as u64),
        opts.keys_per_sec
    );
    let uri_text = match &dst_uri {
        MigrationUri::Unix(p) => format!("unix:{}", p.display()),
        MigrationUri::Tcp(a) => format!("tcp:{a}"),
        other => format!("{other:?}"),
    };
    let _ = writeln!(
        out,
        "  destination  a thread listening on {uri_text}{}",
        if tee.is_some() {
            "\n               (through a tee that keeps a copy of the stream)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  limits       bandwidth {}, downtime {} ms\n",
        if max_bandwidth == 0 {
            "unlimited".to_string()
        } else {
            format!("{}/s", human_bytes(max_bandwidth))
        },
        opts.downtime_ms
    );
    let _ = out.flush();

    let config = MigrationConfig {
        uri: src_uri.clone(),
        machine: MACHINE_TYPE.into(),
        version: QemuVersion::V7_2,
        params: MigrationParameters {
            downtime_limit_ms: opts.downtime_ms,
            max_bandwidth,
            ..MigrationParameters::default()
        },
        caps: MigrationCapabilities {
            return_path: true,
            ..MigrationCapabilities::default()
        },
    };
    let src_registry = src.registry()?;
    let handle = match start_migration(config, src_registry, guest.control()) {
        Ok(h) => h,
        Err(e) => {
            poke(&src_uri);
            poke(&dst_uri);
            return Err(e.into());
        }
    };
    let stats = handle.stats();
    let mut progress = Progress::new(opts.progress);
    let mut timed_out = false;
    loop {
        let s = stats.snapshot();
        if s.status.is_terminal() {
            break;
        }
        progress.update(&s, out);
        if s.total_time > opts.timeout && !timed_out {
            timed_out = true;
            handle.cancel();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_registry, result) = handle.wait();
    let final_stats = stats.snapshot();
    progress.finish(&final_stats, out);

    if let Err(e) = result {
        // Unblock the destination (and tee) if they still wait for a connection.
        poke(&src_uri);
        poke(&dst_uri);
        let dst = destination.join();
        if let Some(t) = tee {
            let _ = t.join();
        }
        if timed_out {
            return fail(format!(
                "the migration did not converge within {} s: the guest dirties memory \
                 ({}/s) about as fast as it can be sent ({}/s); raise --max-bandwidth-mib \
                 or --downtime-ms, or lower --dirty-rate",
                opts.timeout.as_secs(),
                human_bytes(opts.dirty_rate * PAGE_SIZE as u64),
                human_bytes(max_bandwidth)
            ));
        }
        let dst_note = match dst {
            Ok(Err(de)) => format!("; destination: {de}"),
            _ => String::new(),
        };
        return fail(format!("migration failed: {e}{dst_note}"));
    }
    match destination.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return fail(format!("destination failed: {e}")),
        Err(_) => return fail("destination thread panicked"),
    }
    let kept_bytes = match tee {
        Some(t) => match t.join() {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => return fail(format!("keeping the stream: {e}")),
            Err(_) => return fail("tee thread panicked"),
        },
        None => None,
    };
    if guest.is_running() {
        return fail("the source guest is running after a completed migration");
    }

    // Compare: the source is still paused, exactly as it was at switchover.
    let mut checks = Vec::new();
    {
        let a = src
            .ram
            .lock()
            .map_err(|_| DemoError("source RAM poisoned".into()))?;
        let b = dst_machine
            .ram
            .lock()
            .map_err(|_| DemoError("destination RAM poisoned".into()))?;
        checks.push(Check {
            what: format!("ram ({RAM_BLOCK})"),
            bytes: a.len(),
            identical: a.bytes() == b.bytes(),
        });
    }
    let (src_kbd, dst_kbd) = {
        let a = src
            .i8042
            .lock()
            .map_err(|_| DemoError("source i8042 poisoned".into()))?;
        let b = dst_machine
            .i8042
            .lock()
            .map_err(|_| DemoError("destination i8042 poisoned".into()))?;
        (a.clone(), b.clone())
    };
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

    let rs = &src.ram_stats;
    let report = DemoReport {
        stats: final_stats,
        destination_status: dst_stats.snapshot().status,
        ram_pages: pages as u64,
        normal_pages: RamStats::get(&rs.normal_pages),
        zero_pages: RamStats::get(&rs.zero_pages),
        resent_pages: RamStats::get(&rs.resent_pages),
        downtime_pages: RamStats::get(&rs.downtime_pages),
        guest_writes: RamStats::get(&guest.counters().writes),
        keys_typed: RamStats::get(&guest.counters().keys),
        in_flight,
        checks,
        kept_bytes,
        wall: t0.elapsed(),
    };
    print_summary(opts, &report, out);
    if !report.verified() {
        let bad: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.identical)
            .map(|c| c.what.as_str())
            .collect();
        return fail(format!(
            "verification failed: the destination differs from the source in {}",
            bad.join(", ")
        ));
    }
    let _ = writeln!(
        out,
        "verified: the destination holds exactly the source's state at switchover"
    );
    if let (Some(path), Some(n)) = (&opts.keep_stream, report.kept_bytes) {
        print_kept(out, path, n);
    }
    drop(guest);
    Ok(report)
}

fn print_kept(out: &mut dyn Write, path: &Path, n: u64) {
    let _ = writeln!(
        out,
        "\nThe stream ({}) is in {}; decode it like QEMU's analyze-migration.py:\n  \
         cargo run --release -p vmstate-examples --bin vmstate -- analyze {}",
        human_bytes(n),
        path.display(),
        path.display()
    );
}

fn print_summary(opts: &DemoOptions, r: &DemoReport, out: &mut dyn Write) {
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
        r.normal_pages, r.zero_pages, r.resent_pages, r.downtime_pages
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
