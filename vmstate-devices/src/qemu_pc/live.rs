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

/// Why a buffered [`receive_whole`] failed before the stream was loaded.
fn io_err(what: String) -> QemuPcError {
    QemuPcError::Runtime(vmstate_runtime::Error::invalid(what))
}

/// Listens on `uri` for a precopy migration from a QEMU `pc` machine and
/// keeps the whole stream until QEMU closes the connection (each read waits
/// at most `patience`; at most `max_bytes` are kept), then loads it like a
/// stream file ([`QemuPc::load_stream`]): the vmdesc trailer at its end
/// frames the sections carried opaque, so no save of the machine is needed
/// beforehand. A source that opens a return path (the `postcopy-ram` or
/// `return-path` capability) needs answers while it sends: that is refused
/// with a message pointing at [`receive`]. Returns the machine, its registry,
/// the statistics and the stream as received.
// The runtime's stats and options are built field by field (they become
// #[non_exhaustive]), which this lint would have as struct literals.
#[allow(clippy::field_reassign_with_default)]
pub fn receive_whole(
    uri: &MigrationUri,
    patience: Duration,
    max_bytes: u64,
    on_listen: impl FnOnce(&Incoming),
) -> Result<(QemuPc, Registry, MigrationStats, Vec<u8>), QemuPcError> {
    use std::io::Read;
    let started = std::time::Instant::now();
    let incoming = Incoming::listen(uri)?;
    on_listen(&incoming);
    let conn = incoming.accept_within(Some(patience), None)?;
    let mut rx = conn.stream;
    let _ = rx.set_read_timeout(Some(patience));
    let mut stream = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    // The return-path command would come right after the header and the
    // configuration record: `08 | be16 1 | be16 0`.
    let mut checked = false;
    loop {
        let n = rx
            .read(&mut buf)
            .map_err(|e| io_err(format!("reading the stream at byte {}: {e}", stream.len())))?;
        if n == 0 {
            break;
        }
        if stream.len() as u64 + n as u64 > max_bytes {
            return Err(io_err(format!(
                "the stream is longer than {max_bytes} bytes"
            )));
        }
        stream.extend_from_slice(&buf[..n]);
        if !checked && stream.len() >= 13 {
            let config_len = u32::from_be_bytes([stream[9], stream[10], stream[11], stream[12]]);
            let at = 13 + config_len as usize;
            if stream.len() >= at + 5 {
                checked = true;
                if stream[at..at + 5] == [0x08, 0x00, 0x01, 0x00, 0x00] {
                    return Err(io_err(
                        "QEMU opened a return path (capability postcopy-ram or return-path): \
                         a destination that answers it must frame the sections beforehand \
                         (vmstate receive --like FILE)"
                            .into(),
                    ));
                }
            }
        }
    }
    let (pc, reg, _) = QemuPc::load_stream(&stream)?;
    let mut stats = MigrationStats::default();
    stats.status = vmstate_runtime::migration::MigrationStatus::Completed;
    stats.transferred = stream.len() as u64;
    stats.total_time = started.elapsed();
    stats.ram = Some(pc.ram_counters.to_stats(4096));
    Ok((pc, reg, stats, stream))
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
    // Nothing to record while sending; the counters count what is sent,
    // not what the file load put in.
    pc.ram_chunking.set_recording(false);
    let c = &pc.ram_counters;
    for n in [&c.normal, &c.duplicate, &c.normal_bytes, &c.xbzrle_pages] {
        n.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    // The return path tells whether QEMU loaded it (its SHUT message).
    let config = MigrationConfig::new(uri)
        .with_machine(MACHINE_TYPE)
        .with_version(QemuVersion::V7_2)
        .with_caps(
            MigrationCapabilities::default()
                .with_postcopy_ram(postcopy)
                .with_return_path(true),
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
        if ram.postcopy_bytes > 0 {
            s += &format!("postcopy-bytes: {}\n", ram.postcopy_bytes);
        }
    }
    if let Some(e) = &stats.error {
        s += &format!("error: {e}\n");
    }
    s
}
