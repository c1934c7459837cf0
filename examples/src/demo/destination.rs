//! `--role destination`: the empty VM of one host, waiting where `--incoming`
//! says (and nowhere else) for a source process; once the stream is loaded it
//! prints its checksums to compare with the source's, the rate and its peak
//! memory.

use std::io::Write;
use std::time::{Duration, Instant};

use vmstate_runtime::migration::{Incoming, MigrationStatus, MigrationUri};

use super::checksum::{machine_checksums, print_checksums};
use super::link::{Patience, Receiver};
use super::migrate::ram_config;
use super::options::Role;
use super::report::{self, human_bytes, peak_rss, rate_line, rss_line, uri_text, DemoReport};
use super::{DemoError, DemoOptions};

pub(super) fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    let uri = opts.destination_uri()?;
    let incoming = Incoming::listen(&uri)?;
    let shown = match incoming.local_tcp_addr() {
        Some(a) => format!("tcp:{a}"),
        None => uri_text(&uri),
    };
    let cancel = opts.interrupt.clone().unwrap_or_default();
    let receiver = Receiver::spawn(
        incoming,
        opts.ram_size,
        ram_config(opts),
        Patience {
            accept: opts.accept_timeout,
            idle: opts.idle_timeout,
        },
        cancel.clone(),
        super::guest::virtio_disk(opts, &super::guest::disk_for(&uri)),
        opts.mem_path.as_deref(),
    )?;
    let _ = writeln!(
        out,
        "vmstate-rs live migration demo: destination\n\
         \x20 guest RAM    {} ({:#x} bytes) in QEMU 7.2's pc RAM blocks + PC keyboard controller\n\
         \x20 incoming     waiting on {shown}",
        human_bytes(opts.ram_size),
        opts.ram_size
    );
    let _ = out.flush();
    // The time from the source's connection (status active) to the end.
    let mut connected: Option<Instant> = None;
    while !receiver.is_finished() {
        let status = receiver.stats.snapshot().status;
        if connected.is_none() && (status == MigrationStatus::Active || status.is_terminal()) {
            connected = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = connected.map(|c| c.elapsed()).unwrap_or_default();
    let (machine, stats, result) = receiver.join();
    // The socket this process bound goes with it (accepting removes it; a
    // cancel or timeout before any source came does not).
    if let MigrationUri::Unix(path) = &uri {
        let _ = std::fs::remove_file(path);
    }
    let mut s = stats.snapshot();
    s.total_time = elapsed;
    let mut report = DemoReport::new(Role::Destination, s, opts.pages());
    report.destination_status = Some(report.stats.status);
    report.count_ram(&machine);
    report.peak_rss = peak_rss();
    report.wall = t0.elapsed();
    if let Err(e) = result {
        let _ = writeln!(
            out,
            "  peak RSS     {}",
            rss_line(report.peak_rss, opts.ram_size)
        );
        return Err(if cancel.is_cancelled() {
            DemoError::Interrupted(format!("incoming migration cancelled by Ctrl-C: {e}"))
        } else {
            DemoError::Failed(format!("incoming migration failed: {e}"))
        });
    }
    report.destination_checksums = machine_checksums(&machine)?;
    print_checksums("destination", &report.destination_checksums, out);
    let r = &report;
    let _ = writeln!(
        out,
        "\nIncoming migration summary\n\
         \x20 status        {}\n\
         \x20 total time    {}\n\
         \x20 received      {} ({} bytes)\n\
         \x20 rate          {}\n\
         \x20 ram pages     {} with data, {} as zero-page records\n\
         \x20 peak RSS      {}",
        r.stats.status,
        report::ms(elapsed),
        human_bytes(r.stats.transferred),
        r.stats.transferred,
        rate_line(r.stats.transferred, elapsed),
        r.normal_pages,
        r.zero_pages,
        rss_line(r.peak_rss, opts.ram_size)
    );
    let _ = writeln!(
        out,
        "completed: compare the checksums above with the source's"
    );
    Ok(report)
}
