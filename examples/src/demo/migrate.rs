//! The source's migration: its configuration from the options (parameters
//! and capabilities as QEMU names them), starting it, watching it, and the
//! truth about how it ended.

use std::io::Write;

use vmstate_runtime::migration::{
    start_migration, MigrationCapabilities, MigrationConfig, MigrationParameters, MigrationUri,
};
use vmstate_runtime::savevm::Registry;

use super::converge::{verdict, AutoConverge};
use super::guest::Source;
use super::options::{is_bidirectional, PAGE_SIZE};
use super::progress::{self, Ending, Watch, Watched};
use super::report::ms;
use super::{fail, DemoError, DemoOptions};
use vmstate_devices::machine::{MACHINE_TYPE, PART_BUDGET};
use vmstate_devices::ram::protocol::MemSizeOptions;
use vmstate_devices::ram::{RamSectionConfig, XbzrleConfig};

/// The "ram" section's configuration on both sides: under a bandwidth limit
/// short PARTs (the driver checks the limit between PARTs, so the rate and
/// the bar stay smooth), without one the library's default PART size; and
/// the MEM_SIZE page-size words postcopy-ram adds.
///
/// Why bounded PARTs without a limit too: the stream writer holds a PART
/// until it ends, so a PART bounded only by QEMU's 50 ms (about 100 MiB here)
/// kept the destination idle while the source built it, then the source
/// waiting while the destination read it: the two sides took turns instead
/// of overlapping (`perf record -a`, 2026-12-04: one core idle for a fifth of
/// the transfer). With 256 KiB PARTs the socket buffer holds the last PART
/// while the next is built: 1 GiB ran about 10-20% faster end to end
/// (interleaved demo pairs on warm memory).
pub(super) fn ram_config(opts: &DemoOptions) -> RamSectionConfig {
    RamSectionConfig {
        part_budget: if opts.max_bandwidth == 0 {
            RamSectionConfig::default().part_budget
        } else {
            PART_BUDGET
        },
        mem_size: MemSizeOptions {
            postcopy_host_page_size: opts.postcopy.then_some(PAGE_SIZE),
            ..MemSizeOptions::default()
        },
        xbzrle: opts
            .xbzrle_cache_size
            .map(|cache_size| XbzrleConfig { cache_size }),
        // The destination faults its RAM in beside the loader.
        prefault: true,
        ..RamSectionConfig::default()
    }
}

/// Refuses `--postcopy` where it cannot work: a one-way transport (no return
/// path for page requests), or a RAM section without postcopy.
fn check_postcopy(uri: &MigrationUri, reg: &Registry) -> Result<(), DemoError> {
    if !is_bidirectional(uri) {
        return fail(
            "--postcopy needs a tcp: or unix: --uri: the destination asks for pages on the \
             return path, which file: and exec: do not have",
        );
    }
    if !reg.entries().any(|e| e.handlers.has_postcopy()) {
        return fail(
            "--postcopy: the RAM section of this build cannot migrate in postcopy (it does not \
             offer the runtime's PostcopyRam interface yet); run without --postcopy",
        );
    }
    Ok(())
}

/// Starts migrating `source` to `uri` and watches it to the end.
pub(super) fn migrate(
    opts: &DemoOptions,
    source: &Source,
    uri: MigrationUri,
    out: &mut dyn Write,
) -> Result<Watched, DemoError> {
    let registry = if opts.postcopy {
        source.machine.postcopy_registry_with(ram_config(opts))?
    } else {
        source.machine.registry_with(ram_config(opts))?
    };
    if opts.postcopy {
        check_postcopy(&uri, &registry)?;
    }
    let caps = MigrationCapabilities::default()
        .with_return_path(is_bidirectional(&uri))
        .with_postcopy_ram(opts.postcopy);
    let config = MigrationConfig::new(uri)
        .with_caps(caps)
        .with_machine(MACHINE_TYPE)
        .with_params(
            MigrationParameters::default()
                .with_downtime_limit_ms(opts.downtime_limit_ms)
                .with_max_bandwidth(opts.max_bandwidth),
        );
    let ram_total = source
        .machine
        .ram
        .lock()
        .map_err(|_| DemoError::Failed("source RAM poisoned".into()))?
        .total_used();
    let handle = start_migration(config, registry, source.guest.control())?;
    let watch = Watch {
        mode: opts.progress,
        timeout: opts.timeout,
        interrupt: opts.interrupt.as_ref(),
        postcopy: opts.postcopy,
        auto_converge: opts.auto_converge.then(|| {
            AutoConverge::new(
                source.guest.throttle(),
                opts.cpu_throttle_initial,
                opts.cpu_throttle_increment,
            )
        }),
        ram_total,
        guest_writes: &source.guest.counters().writes,
        nominal_dirty_bps: opts.dirty_bytes_per_sec() as f64,
    };
    let watched = progress::watch(handle, watch, out);
    // A throttled guest that goes on running (after a cancel) runs freely again.
    source.guest.throttle().set(0);
    Ok(watched)
}

/// The error of a migration that did not complete, saying why: Ctrl-C, the
/// timeout (did not converge, or still converging), or the failure itself.
pub(super) fn why_not_completed(
    opts: &DemoOptions,
    w: &Watched,
    guest_running: bool,
) -> Option<DemoError> {
    let e = w.result.as_ref().err()?;
    let resumed = if guest_running {
        "the source guest runs again"
    } else {
        "the source guest is NOT running"
    };
    Some(match w.ending {
        Ending::Interrupted => DemoError::Interrupted(format!(
            "migration cancelled by Ctrl-C after {}; {resumed}",
            ms(w.stats.total_time)
        )),
        Ending::TimedOut => {
            let at = w.at_timeout.as_ref().unwrap_or(&w.stats);
            let v = verdict(
                at,
                w.dirty_bps_at_timeout,
                opts.max_bandwidth,
                opts.downtime_limit_ms,
            );
            DemoError::Failed(format!(
                "{}; {resumed}",
                v.message(opts.timeout, opts.max_bandwidth)
            ))
        }
        Ending::ByItself => DemoError::Failed(format!("migration failed: {e}; {resumed}")),
    })
}
