//! A `pc` machine as the destination or the source of a live migration with
//! QEMU, and written back as a stream file: what `vmstate receive` and
//! `vmstate send` run.

use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationStats, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{Configuration, IterateStatus, QemuVersion, Registry, StreamWriter};

use crate::ram::PostcopyAccess;

use super::{
    merge_vmdescs, parse_vmdesc, stream_vmdesc, QemuPc, QemuPcError, QemuPcLayout, MACHINE_TYPE,
};

/// Writes the machine state held in `reg` (a [`QemuPc`]'s registry) as a
/// QEMU 7.2 stream file: header, configuration, RAM (every page), the FULL
/// sections, EOF and our vmdesc. QEMU `-incoming "exec:cat FILE"` loads it.
pub fn write_stream(reg: &mut Registry) -> Result<Vec<u8>, QemuPcError> {
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header()?;
    w.write_configuration(&Configuration::new(MACHINE_TYPE))?;
    w.setup(reg)?;
    while w.iterate(reg, false, &mut |_| false)? != IterateStatus::Done {}
    w.complete_precopy(reg)?;
    let out = w.into_inner()?;
    StreamWriter::<Vec<u8>>::cleanup(reg);
    Ok(out)
}

/// Listens on `uri` (`unix:PATH`, `tcp:HOST:PORT`) for a live migration from
/// a QEMU `pc` machine shaped like the one that wrote the stream files
/// `like` (saves of the same QEMU command line: the first gives the RAM size
/// and, through its vmdesc, the sections; all of them the subsections the
/// sections carried opaque may send). Waits
/// at most `patience` for QEMU to connect and for each read. Returns the
/// loaded machine, its registry and the destination's statistics.
pub fn receive(
    uri: &MigrationUri,
    like: &[Vec<u8>],
    patience: Duration,
    on_listen: impl FnOnce(&Incoming),
) -> Result<(QemuPc, Registry, MigrationStats), QemuPcError> {
    receive_with(uri, like, patience, on_listen, |_| {})
}

/// [`receive`], postcopy too: when QEMU switches to postcopy
/// (`migrate-start-postcopy` on a source with the `postcopy-ram`
/// capability), `on_postcopy_run` is called at POSTCOPY_RUN with the guest's
/// RAM access, through which reads of pages not yet received ask QEMU for
/// them on the return path (e.g. threads standing in for vCPUs).
pub fn receive_with(
    uri: &MigrationUri,
    like: &[Vec<u8>],
    patience: Duration,
    on_listen: impl FnOnce(&Incoming),
    on_postcopy_run: impl FnOnce(PostcopyAccess) + Send + 'static,
) -> Result<(QemuPc, Registry, MigrationStats), QemuPcError> {
    let mut lists = Vec::with_capacity(like.len());
    for stream in like {
        lists.push(parse_vmdesc(
            stream_vmdesc(stream).ok_or(QemuPcError::NoVmDesc)?,
        )?);
    }
    let first = like.first().ok_or(QemuPcError::NoVmDesc)?;
    let layout = QemuPcLayout::of_stream(first).ok_or(QemuPcError::VmDescShape {
        device: None,
        what: "the stream lists no pc.ram block",
    })?;
    let first_list = lists.remove(0);
    let devices = merge_vmdescs(first_list, &lists);
    let (pc, mut reg) = QemuPc::build(layout, &devices)?;
    // A live destination keeps no record of every page.
    pc.ram_chunking.set_recording(false);
    let incoming = Incoming::listen(uri)?;
    on_listen(&incoming);
    let mut opts = QemuPc::load_options();
    opts.accept_timeout = Some(patience);
    opts.idle_timeout = Some(patience);
    let stats = StatsHandle::default();
    let mut hooks = IncomingHooks::default();
    let access = pc.ram_access.clone().with_timeout(patience);
    let mut run = Some(on_postcopy_run);
    hooks.on_postcopy_run = Some(Box::new(move || {
        if let Some(f) = run.take() {
            f(access.clone());
        }
        Ok(())
    }));
    run_incoming_with(incoming, &mut reg, opts, &stats, hooks)?;
    pc.adopt_loaded_versions(&mut reg);
    Ok((pc, reg, stats.snapshot()))
}

/// A source guest that does not run: its state is a loaded stream file.
struct LoadedGuest;

impl VmControl for LoadedGuest {
    fn pause(&mut self) -> vmstate_runtime::Result<()> {
        Ok(())
    }
    fn resume(&mut self) -> vmstate_runtime::Result<()> {
        Ok(())
    }
}

/// Migrates the machine state of the stream file `stream` (written by QEMU
/// 7.2 for a `pc` machine, or by [`write_stream`]) live to a QEMU started
/// with `-incoming URI` at `uri`, precopy (`postcopy`: with the
/// `postcopy-ram` capability, which the destination must have too). Returns
/// the source's statistics once the migration completed.
pub fn send(
    stream: &[u8],
    uri: MigrationUri,
    postcopy: bool,
) -> Result<MigrationStats, QemuPcError> {
    let (pc, reg, _) = QemuPc::load_stream_with(stream, postcopy)?;
    // Nothing to record while sending.
    pc.ram_chunking.set_recording(false);
    let config = MigrationConfig::new(uri)
        .with_machine(MACHINE_TYPE)
        .with_version(QemuVersion::V7_2)
        .with_caps(
            MigrationCapabilities::default()
                .with_postcopy_ram(postcopy)
                .with_return_path(postcopy),
        );
    let handle = start_migration(config, reg, Box::new(LoadedGuest))?;
    if postcopy {
        // As `migrate-start-postcopy` right away: the switch comes once
        // what must go in precopy fits the downtime limit.
        handle.start_postcopy();
    }
    let stats = handle.stats();
    let (_, r) = handle.wait();
    r?;
    Ok(stats.snapshot())
}

/// A `query-migrate`-style summary of `stats`, one `key: value` a line.
///
/// ```
/// use vmstate_devices::qemu_pc::summary;
/// use vmstate_runtime::migration::MigrationStats;
///
/// let s = summary(&MigrationStats::default());
/// assert!(s.starts_with("status: none"));
/// assert!(s.contains("transferred: 0"));
/// ```
pub fn summary(stats: &MigrationStats) -> String {
    let mut s = format!(
        "status: {}\ntotal-time: {} ms\ntransferred: {}\nremaining: {}\n",
        stats.status,
        stats.total_time.as_millis(),
        stats.transferred,
        stats.remaining,
    );
    if let Some(d) = stats.downtime {
        s += &format!("downtime: {} ms\n", d.as_millis());
    }
    s += &format!(
        "dirty-sync-count: {}\niterations: {}\n",
        stats.dirty_sync_count, stats.iterations
    );
    if let Some(ram) = &stats.ram {
        s += &format!(
            "ram normal: {} duplicate: {} normal-bytes: {}\n",
            ram.normal, ram.duplicate, ram.normal_bytes
        );
    }
    if let Some(e) = &stats.error {
        s += &format!("error: {e}\n");
    }
    s
}
