//! The live-migration demo, as a library function so tests can run it
//! in-process with tiny parameters: a source machine (guest RAM + keyboard
//! controller) keeps running a guest workload while precopy migration streams
//! it to a destination listening in another thread; at the end the destination
//! must hold exactly the source's state at switchover.
//!
//! [`run`] goes through the phases, one module each: `options` (the knobs and
//! their checks), `link` (the destination thread and the optional tee),
//! `guest` (the source machine and its workload), `progress` (watching the
//! migration, with the timeout), `report` (comparison and summary).

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use vmstate_runtime::migration::{
    start_migration, MigrationCapabilities, MigrationConfig, MigrationParameters,
};
use vmstate_runtime::savevm::{QemuVersion, TargetPage};

mod guest;
mod link;
mod options;
mod progress;
mod report;

pub use guest::pending_bytes;
pub use options::{DemoOptions, ProgressMode};
pub use report::{human_bytes, Check, DemoReport};

use guest::Source;
use link::{Link, Patience};
use vmstate_devices::machine::MACHINE_TYPE;
use vmstate_devices::ram::RamCounters;

const MIB: u64 = 1024 * 1024;

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

/// Runs the demo, writing its story to `out`. Fails (with what went wrong) if
/// the migration fails, does not converge within the timeout, or the
/// destination's state differs from the source's at switchover.
pub fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    opts.check()?;
    let pages = opts.pages();
    let tmp = tempfile::Builder::new().prefix("vmstate-demo-").tempdir()?;
    let listen_uri = opts.listen_uri(tmp.path())?;
    let patience = Patience {
        accept: opts.accept_timeout,
        idle: opts.idle_timeout,
    };
    let link = Link::open(
        &listen_uri,
        opts.keep_stream.as_deref(),
        pages,
        tmp.path(),
        patience,
    )?;
    let source = Source::start(opts, pages)?;
    report::print_intro(opts, pages, &link.dst_uri, link.has_tee(), out);

    let config = MigrationConfig {
        uri: link.src_uri.clone(),
        machine: MACHINE_TYPE.into(),
        version: QemuVersion::V7_2,
        params: MigrationParameters {
            downtime_limit_ms: opts.downtime_ms,
            max_bandwidth: opts.max_bandwidth(),
            ..MigrationParameters::default()
        },
        caps: MigrationCapabilities {
            return_path: true,
            ..MigrationCapabilities::default()
        },
        target_page: TargetPage::default(),
    };
    let src_registry = source.machine.registry()?;
    let handle = match start_migration(config, src_registry, source.guest.control()) {
        Ok(h) => h,
        Err(e) => {
            link.unblock();
            return Err(e.into());
        }
    };
    let watched = progress::watch(handle, opts.progress, opts.timeout, out);
    if let Err(e) = watched.result {
        let dst_note = link.abandon();
        if watched.timed_out {
            return fail(format!(
                "the migration did not converge within {} s: the guest dirties memory \
                 ({}/s) about as fast as it can be sent ({}/s); raise --max-bandwidth-mib \
                 or --downtime-ms, or lower --dirty-rate",
                opts.timeout.as_secs(),
                human_bytes(opts.dirty_bytes_per_sec()),
                human_bytes(opts.max_bandwidth())
            ));
        }
        return fail(format!("migration failed: {e}{dst_note}"));
    }
    let arrived = link.finish()?;
    if source.guest.is_running() {
        return fail("the source guest is running after a completed migration");
    }

    // Compare: the source is still paused, exactly as it was at switchover.
    let (checks, in_flight) = report::compare(&source.machine, &arrived.machine)?;
    let rs = &source.machine.ram_counters;
    let counters = source.guest.counters();
    let report = DemoReport {
        stats: watched.stats,
        destination_status: arrived.stats.snapshot().status,
        ram_pages: pages as u64,
        normal_pages: RamCounters::get(&rs.normal),
        zero_pages: RamCounters::get(&rs.duplicate),
        resent_pages: RamCounters::get(&rs.resent),
        downtime_bytes: RamCounters::get(&rs.downtime_bytes),
        guest_writes: counters.writes.load(Ordering::Relaxed),
        keys_typed: counters.keys.load(Ordering::Relaxed),
        in_flight,
        checks,
        kept_bytes: arrived.kept_bytes,
        wall: t0.elapsed(),
    };
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
    if let (Some(path), Some(n)) = (&opts.keep_stream, report.kept_bytes) {
        report::print_kept(out, path, n);
    }
    drop(source);
    Ok(report)
}
