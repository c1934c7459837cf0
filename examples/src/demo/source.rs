//! `--role source`: the running VM of one host, migrating to a destination
//! process (`--uri`); at switchover it prints its checksums to compare with
//! the destination's, and stays paused (the guest now runs there).

use std::io::Write;
use std::time::Instant;

use super::checksum::{machine_checksums, print_checksums};
use super::guest::Source;
use super::migrate::{migrate, why_not_completed};
use super::options::Role;
use super::report::{self, peak_rss, uri_text, DemoReport};
use super::{DemoError, DemoOptions};

pub(super) fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    // The URI is given (checked): no temporary directory is needed.
    let uri = opts.outgoing_uri(std::path::Path::new("."))?;
    let source = Source::start(
        opts,
        super::guest::virtio_disk(opts, &super::guest::disk_for(&uri)),
    )?;
    let total = report::lock(&source.machine.ram, "source RAM")?.total_used();
    report::print_intro(opts, total, out);
    let _ = writeln!(
        out,
        "  destination  another process, at {}\n",
        uri_text(&uri)
    );
    let _ = out.flush();
    let watched = migrate(opts, &source, uri, out)?;
    let failure = why_not_completed(opts, &watched, source.guest.is_running());
    let mut report = DemoReport::new(Role::Source, watched.stats, opts.pages());
    report.max_throttle = watched.max_throttle;
    if failure.is_none() {
        report.source_checksums = machine_checksums(&source.machine)?;
        print_checksums("source", &report.source_checksums, out);
    }
    report.count_ram(&source.machine);
    report.count_guest(&source)?;
    report.peak_rss = peak_rss();
    report.wall = t0.elapsed();
    report::print_summary(opts, &report, out);
    match failure {
        Some(e) => Err(e),
        None => {
            let _ = writeln!(
                out,
                "completed: the guest is paused here and runs on at the destination \
                 (compare the checksums above with the destination's)"
            );
            Ok(report)
        }
    }
}
