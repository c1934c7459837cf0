//! Both sides in this process: the destination in a thread (listening on a
//! socket before the source starts, or, over `file:`/`exec:`, reading the
//! stream back once the source is done), and a byte-for-byte comparison of
//! the two machines at the end.

use std::io::Write;
use std::time::Instant;

use vmstate_runtime::migration::{CancelToken, Incoming, MigrationStatus};

use super::checksum::{machine_checksums, print_checksums};
use super::guest::Source;
use super::link::{Link, Patience, Receiver};
use super::migrate::{migrate, ram_config, why_not_completed};
use super::options::{is_bidirectional, Role};
use super::progress::Watched;
use super::report::{self, peak_rss, uri_text, DemoReport};
use super::{fail, DemoError, DemoOptions};
use vmstate_devices::machine::Machine;

pub(super) fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new().prefix("vmstate-demo-").tempdir()?;
    let out_uri = opts.outgoing_uri(tmp.path())?;
    let in_uri = opts.incoming_uri(&out_uri)?;
    // The virtio-blk image both machines open (shared storage).
    let disk = tmp.path().join("disk.raw");
    let patience = Patience {
        accept: opts.accept_timeout,
        idle: opts.idle_timeout,
    };
    let spawn = |incoming: Incoming| {
        Receiver::spawn(
            incoming,
            opts.ram_size,
            ram_config(opts),
            patience,
            CancelToken::new(),
            super::guest::virtio_disk(opts, &disk),
            // The source's RAM is the file; this side's is its own.
            None,
        )
    };
    if is_bidirectional(&out_uri) {
        let link = Link::open(&out_uri, opts.keep_stream.as_deref(), spawn, tmp.path())?;
        let source = match Source::start(opts, super::guest::virtio_disk(opts, &disk)) {
            Ok(s) => s,
            Err(e) => {
                link.unblock();
                return Err(e);
            }
        };
        print_intro(opts, &source, out)?;
        let _ = writeln!(
            out,
            "  destination  a thread listening on {}{}\n",
            uri_text(&link.dst_uri),
            if link.has_tee() {
                "\n               (through a tee that keeps a copy of the stream)"
            } else {
                ""
            }
        );
        let watched = match migrate(opts, &source, link.src_uri.clone(), out) {
            Ok(w) => w,
            Err(e) => {
                link.unblock();
                return Err(e);
            }
        };
        if let Some(err) = why_not_completed(opts, &watched, source.guest.is_running()) {
            let note = link.abandon();
            summarize_failure(opts, &source, &watched, t0, out)?;
            return Err(match err {
                DemoError::Failed(m) => DemoError::Failed(m + &note),
                other => other,
            });
        }
        let arrived = link.finish()?;
        let status = arrived.stats.snapshot().status;
        let mut report = verify(opts, &source, watched, &arrived.machine, status, t0, out)?;
        report.kept_bytes = arrived.kept_bytes;
        if let (Some(path), Some(n)) = (&opts.keep_stream, report.kept_bytes) {
            report::print_kept(out, path, n);
        }
        Ok(report)
    } else {
        if opts.keep_stream.is_some() {
            return fail(format!(
                "--keep-stream goes with a socket --uri; over {} the stream is kept where it goes",
                uri_text(&out_uri)
            ));
        }
        let source = Source::start(opts, super::guest::virtio_disk(opts, &disk))?;
        print_intro(opts, &source, out)?;
        let _ = writeln!(
            out,
            "  stream       to {}, read back by the destination from {} once the source is done\n",
            uri_text(&out_uri),
            uri_text(&in_uri)
        );
        let watched = migrate(opts, &source, out_uri, out)?;
        if let Some(err) = why_not_completed(opts, &watched, source.guest.is_running()) {
            summarize_failure(opts, &source, &watched, t0, out)?;
            return Err(err);
        }
        let receiver = spawn(Incoming::listen(&in_uri)?)?;
        let (machine, stats, r) = receiver.join();
        if let Err(e) = r {
            return fail(format!(
                "destination failed loading {}: {e}",
                uri_text(&in_uri)
            ));
        }
        let status = stats.snapshot().status;
        verify(opts, &source, watched, &machine, status, t0, out)
    }
}

fn print_intro(opts: &DemoOptions, source: &Source, out: &mut dyn Write) -> Result<(), DemoError> {
    let total = report::lock(&source.machine.ram, "source RAM")?.total_used();
    report::print_intro(opts, total, out);
    Ok(())
}

/// The summary of a migration that did not complete (the figures so far).
fn summarize_failure(
    opts: &DemoOptions,
    source: &Source,
    watched: &Watched,
    t0: Instant,
    out: &mut dyn Write,
) -> Result<(), DemoError> {
    let mut r = DemoReport::new(Role::Both, watched.stats.clone(), opts.pages());
    r.count_ram(&source.machine);
    r.count_guest(source)?;
    r.max_throttle = watched.max_throttle;
    r.peak_rss = peak_rss();
    r.wall = t0.elapsed();
    report::print_summary(opts, &r, out);
    Ok(())
}

/// After a completed migration: checksums of both sides, the byte compare
/// (the source is still paused, exactly as at switchover) and the summary.
fn verify(
    opts: &DemoOptions,
    source: &Source,
    watched: Watched,
    dst: &Machine,
    dst_status: MigrationStatus,
    t0: Instant,
    out: &mut dyn Write,
) -> Result<DemoReport, DemoError> {
    if source.guest.is_running() {
        return fail("the source guest is running after a completed migration");
    }
    let mut report = DemoReport::new(Role::Both, watched.stats, opts.pages());
    report.destination_status = Some(dst_status);
    report.max_throttle = watched.max_throttle;
    report.source_checksums = machine_checksums(&source.machine)?;
    report.destination_checksums = machine_checksums(dst)?;
    if report.source_checksums == report.destination_checksums {
        print_checksums(
            "source and destination alike",
            &report.source_checksums,
            out,
        );
    } else {
        print_checksums("source", &report.source_checksums, out);
        print_checksums("destination", &report.destination_checksums, out);
    }
    let (checks, _) = report::compare(&source.machine, dst)?;
    report.checks = checks;
    // The destination's virtio devices go on with the source's guest.
    if let (Some(v), true) = (&source.machine.virtio, dst.virtio.is_some()) {
        let guest = report::lock(&v.guest, "source virtio guest")?.clone();
        let verdict = dst.virtio_resume(&guest)?;
        report.checks.extend(report::virtio_checks(&verdict));
    }
    report.count_ram(&source.machine);
    report.count_guest(source)?;
    report.peak_rss = peak_rss();
    report.wall = t0.elapsed();
    report::print_summary(opts, &report, out);
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
    Ok(report)
}
