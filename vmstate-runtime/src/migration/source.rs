//! The source driver (QEMU's migration thread, precopy): setup → active →
//! [pre-switchover] → device → completed, with convergence measured per 100 ms
//! window, rate limiting, cancel at any point and failure handling that leaves the
//! VM running.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::params::{MigrationCapabilities, MigrationParameters, BUFFER_DELAY_MS};
use super::stats::StatsHandle;
use super::status::MigrationStatus;
use super::transport::{connect, Connection, MigrationUri, Outgoing, ReadWrite};
use crate::error::{Error, Result};
use crate::savevm::{
    Command, Configuration, IterateStatus, PostcopyAdvise, QemuVersion, Registry, RpMessage,
    StreamWriter, MAX_DISCARDS_PER_COMMAND, TARGET_PAGE_SIZE,
};
use crate::wire::Reader;

/// What the driver needs from the VMM: stop and restart the vCPUs.
pub trait VmControl: Send {
    /// Stops the guest (switchover).
    fn pause(&mut self) -> Result<()>;
    /// Restarts the guest (after a failed or cancelled migration).
    fn resume(&mut self) -> Result<()>;
}

/// Everything a migration needs to start.
#[derive(Debug, Clone)]
pub struct MigrationConfig {
    /// Where to send the stream.
    pub uri: MigrationUri,
    /// Machine type written in the configuration record.
    pub machine: String,
    /// The QEMU dialect.
    pub version: QemuVersion,
    /// Initial parameters (can be changed while running).
    pub params: MigrationParameters,
    /// Capabilities.
    pub caps: MigrationCapabilities,
}

/// State shared between the driver thread and the handle.
struct Shared {
    params: Mutex<MigrationParameters>,
    cancel: AtomicBool,
    resume_from_pre_switchover: AtomicBool,
    postcopy_requested: AtomicBool,
    resume_uri: Mutex<Option<MigrationUri>>,
    /// A second handle on the outgoing connection, so cancel() can unblock a
    /// source stuck writing to a destination that stopped reading.
    kill: Mutex<Option<Box<dyn ReadWrite>>>,
    stats: StatsHandle,
}

/// A running outgoing migration.
pub struct MigrationHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<(Registry, Result<()>)>>,
}

impl std::fmt::Debug for MigrationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationHandle")
            .field("status", &self.shared.stats.snapshot().status)
            .finish_non_exhaustive()
    }
}

impl MigrationHandle {
    /// Live statistics (cheap; call as often as a progress bar needs).
    pub fn stats(&self) -> StatsHandle {
        self.shared.stats.clone()
    }

    /// Changes parameters while running (takes effect at the next window).
    pub fn set_parameters(&self, p: MigrationParameters) -> Result<()> {
        p.validate()?;
        *self
            .shared
            .params
            .lock()
            .map_err(|_| Error::invalid("parameters lock poisoned"))? = p;
        Ok(())
    }

    /// Requests cancellation; the source VM keeps (or goes back to) running. The
    /// status reads "cancelling" at once (except in postcopy, which cannot be
    /// cancelled without losing the guest).
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
        let in_postcopy = matches!(
            self.shared.stats.snapshot().status,
            MigrationStatus::PostcopyActive
                | MigrationStatus::PostcopyPaused
                | MigrationStatus::PostcopyRecover
        );
        if !in_postcopy {
            // Like QEMU's qemu_file_shutdown: a blocked write fails at once.
            if let Ok(k) = self.shared.kill.lock() {
                if let Some(conn) = k.as_ref() {
                    let _ = conn.shutdown();
                }
            }
        }
        self.shared.stats.update(|s| {
            if matches!(
                s.status,
                MigrationStatus::Setup
                    | MigrationStatus::Active
                    | MigrationStatus::PreSwitchover
                    | MigrationStatus::Device
                    | MigrationStatus::WaitUnplug
            ) {
                s.status = MigrationStatus::Cancelling;
            }
        });
    }

    /// Switches to postcopy as soon as what must be sent in precopy fits the
    /// downtime limit (QMP `migrate-start-postcopy`; needs the postcopy-ram
    /// capability).
    pub fn start_postcopy(&self) {
        self.shared.postcopy_requested.store(true, Ordering::SeqCst);
    }

    /// Recovers a paused postcopy over a new connection (QMP `migrate` with
    /// `resume: true`).
    pub fn resume(&self, uri: MigrationUri) -> Result<()> {
        *self
            .shared
            .resume_uri
            .lock()
            .map_err(|_| Error::invalid("resume lock poisoned"))? = Some(uri);
        Ok(())
    }

    /// Leaves pre-switchover (QMP `migrate-continue`).
    pub fn continue_switchover(&self) {
        self.shared
            .resume_from_pre_switchover
            .store(true, Ordering::SeqCst);
    }

    /// Waits for the end; returns the registry (for a retry) and the outcome.
    pub fn wait(mut self) -> (Registry, Result<()>) {
        let t = self.thread.take().expect("joined once");
        match t.join() {
            Ok(r) => r,
            Err(_) => (
                Registry::new(),
                Err(Error::invalid("migration thread panicked")),
            ),
        }
    }
}

/// Starts an outgoing migration on its own thread. The registry is moved into the
/// thread for the duration and handed back by [`MigrationHandle::wait`].
pub fn start_migration(
    config: MigrationConfig,
    registry: Registry,
    vm: Box<dyn VmControl>,
) -> Result<MigrationHandle> {
    config.params.validate()?;
    if config.caps.switchover_ack && config.version == QemuVersion::V7_2 {
        return Err(Error::invalid(
            "switchover-ack needs the QEMU 10.x stream dialect (7.2 has no SWITCHOVER_ACK)",
        ));
    }
    let shared = Arc::new(Shared {
        params: Mutex::new(config.params.clone()),
        cancel: AtomicBool::new(false),
        resume_from_pre_switchover: AtomicBool::new(false),
        postcopy_requested: AtomicBool::new(false),
        resume_uri: Mutex::new(None),
        kill: Mutex::new(None),
        stats: StatsHandle::default(),
    });
    let s2 = shared.clone();
    let thread = std::thread::Builder::new()
        .name("migration".into())
        .spawn(move || {
            let mut registry = registry;
            let mut driver = Driver {
                config,
                shared: s2,
                vm,
                started: Instant::now(),
                status: MigrationStatus::None,
                in_postcopy: false,
            };
            let r = driver.run(&mut registry);
            (registry, r)
        })?;
    Ok(MigrationHandle {
        shared,
        thread: Some(thread),
    })
}

struct Driver {
    config: MigrationConfig,
    shared: Arc<Shared>,
    vm: Box<dyn VmControl>,
    started: Instant,
    status: MigrationStatus,
    /// The destination runs the guest; the source must not resume.
    in_postcopy: bool,
}

/// Why the run stopped early.
enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

impl Driver {
    fn set_status(&mut self, to: MigrationStatus) {
        debug_assert!(
            self.status.can_become(to),
            "{} -> {to} is not a valid transition",
            self.status
        );
        self.status = to;
        let total = self.started.elapsed();
        let cancelling = self.cancelled() && !self.in_postcopy;
        self.shared.stats.update(|s| {
            // After cancel() published "cancelling", only the end of the
            // cancellation (or a failure) may replace it.
            let keep = cancelling
                && s.status == MigrationStatus::Cancelling
                && !matches!(
                    to,
                    MigrationStatus::Cancelled
                        | MigrationStatus::Failed
                        | MigrationStatus::Completed
                );
            if !keep {
                s.status = to;
            }
            s.total_time = total;
        });
    }

    fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::SeqCst)
    }

    fn params(&self) -> MigrationParameters {
        self.shared
            .params
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    fn run(&mut self, reg: &mut Registry) -> Result<()> {
        self.set_status(MigrationStatus::Setup);
        let mut vm_paused = false;
        let outcome = self.run_inner(reg, &mut vm_paused);
        StreamWriter::<Vec<u8>>::cleanup(reg);
        match outcome {
            Ok(()) => {
                self.set_status(MigrationStatus::Completed);
                Ok(())
            }
            Err(Stop::Cancelled) => {
                self.set_status(MigrationStatus::Cancelling);
                let r = if vm_paused { self.vm.resume() } else { Ok(()) };
                self.set_status(MigrationStatus::Cancelled);
                r.and(Err(Error::invalid("migration cancelled")))
            }
            // A failure caused by cancel() shutting the connection down is the
            // cancellation finishing.
            Err(Stop::Failed(_)) if self.cancelled() && !self.in_postcopy => {
                self.set_status(MigrationStatus::Cancelling);
                let r = if vm_paused { self.vm.resume() } else { Ok(()) };
                self.set_status(MigrationStatus::Cancelled);
                r.and(Err(Error::invalid("migration cancelled")))
            }
            Err(Stop::Failed(e)) if self.in_postcopy => {
                // The destination already runs the guest: resuming here would
                // split it in two, so the source VM stays stopped.
                self.shared.stats.update(|s| s.error = Some(e.to_string()));
                self.set_status(MigrationStatus::Failed);
                Err(e)
            }
            Err(Stop::Failed(e)) => {
                // The source must keep running whatever happened.
                let resumed = if vm_paused { self.vm.resume() } else { Ok(()) };
                self.shared.stats.update(|s| s.error = Some(e.to_string()));
                self.set_status(MigrationStatus::Failed);
                resumed.and(Err(e))
            }
        }
    }

    fn run_inner(
        &mut self,
        reg: &mut Registry,
        vm_paused: &mut bool,
    ) -> std::result::Result<(), Stop> {
        let setup_start = Instant::now();
        let conn = connect(&self.config.uri)?;
        let Connection {
            stream, reverse, ..
        } = conn;
        if let Ok(mut k) = self.shared.kill.lock() {
            *k = stream.try_clone_rw();
        }
        if self.cancelled() {
            return Err(Stop::Cancelled);
        }
        let caps = self.config.caps;
        let mut w = StreamWriter::new(Outgoing(stream), self.config.version);
        w.write_header()?;
        w.write_configuration(&Configuration::new(&self.config.machine))?;

        let rp = if caps.wants_return_path() {
            let reverse = reverse.ok_or_else(|| {
                Error::invalid("the return path needs a bidirectional transport (tcp/unix)")
            })?;
            w.write_command(&Command::OpenReturnPath)?;
            w.write_command(&Command::Ping(1))?;
            Some(ReturnPath::spawn(reverse, self.config.version)?)
        } else {
            None
        };
        if caps.postcopy_ram {
            w.write_command(&Command::PostcopyAdvise(Some(PostcopyAdvise {
                host_page_summary: TARGET_PAGE_SIZE,
                target_page_size: TARGET_PAGE_SIZE,
            })))?;
        }
        if self.cancelled() {
            return Err(Stop::Cancelled);
        }
        w.setup(reg)?;
        w.flush()?;
        self.shared
            .stats
            .update(|s| s.setup_time = setup_start.elapsed());
        self.set_status(MigrationStatus::Active);

        // Convergence loop (precopy, then postcopy if requested).
        let mut window = Window::new(w.position());
        let mut iterations = 0u64;
        let mut syncs = 0u64;
        let mut dirty_mark: Option<(u64, u64, Instant)> = None;
        loop {
            if self.cancelled() {
                return Err(Stop::Cancelled);
            }
            if let Some(rp) = &rp {
                rp.check()?;
            }
            let params = self.params();
            let rolled = window.roll(w.position(), &self.shared.stats);
            let threshold = (window.bandwidth_bpms * params.downtime_limit_ms as f64) as u64;
            let mut pending = StreamWriter::<Outgoing>::pending(reg, false);
            if pending.total() < threshold || pending.total() == 0 {
                pending = StreamWriter::<Outgoing>::pending(reg, true);
                syncs += 1;
            }
            if rolled {
                // Newly dirtied bytes over the window: what is pending now, minus
                // what was pending at the last window, plus what was sent since.
                let now = (pending.total(), w.position(), Instant::now());
                if let Some((p0, pos0, t0)) = dirty_mark {
                    let dt = now.2.duration_since(t0).as_secs_f64();
                    let dirtied = (now.0 + (now.1 - pos0)).saturating_sub(p0);
                    if dt > 0.0 {
                        let rate = dirtied as f64 / dt;
                        self.shared.stats.update(|s| s.dirty_rate_bps = rate);
                    }
                }
                dirty_mark = Some(now);
            }
            let transferred = w.position();
            let expected = (window.bandwidth_bpms > 0.0).then(|| {
                Duration::from_secs_f64(pending.total() as f64 / window.bandwidth_bpms / 1000.0)
            });
            self.shared.stats.update(|s| {
                s.remaining = pending.total();
                s.transferred = transferred;
                s.total = transferred + pending.total();
                s.dirty_sync_count = syncs;
                s.iterations = iterations;
                s.expected_downtime = expected;
                s.total_time = self.started.elapsed();
            });

            let switchover_allowed = rp.as_ref().is_none_or(|r| r.switchover_allowed(caps));
            if caps.postcopy_ram
                && self.shared.postcopy_requested.load(Ordering::SeqCst)
                && pending.must_precopy <= threshold
                && switchover_allowed
            {
                if rp.is_none() {
                    return Err(Stop::Failed(Error::invalid(
                        "postcopy needs the return path",
                    )));
                }
                if self.config.version == QemuVersion::V10 {
                    // QEMU 10.x: a last PART (RAM: just EOS) before stopping.
                    w.postcopy_prepare(reg)?;
                }
                let stop_at = Instant::now();
                self.vm.pause()?;
                *vm_paused = true;
                self.in_postcopy = true;
                self.switch_to_postcopy(&mut w, reg)?;
                self.shared
                    .stats
                    .update(|s| s.downtime = Some(stop_at.elapsed()));
                self.set_status(MigrationStatus::PostcopyActive);
                break;
            }
            if (pending.total() == 0 || pending.total() <= threshold) && switchover_allowed {
                break;
            }
            // Rate limit: at most max_bandwidth/10 bytes per 100 ms window.
            let per_window = params.max_bandwidth / (1000 / BUFFER_DELAY_MS);
            let start_pos = window.start_pos;
            let mut limited = |pos: u64| per_window != 0 && pos - start_pos >= per_window;
            if limited(w.position()) {
                let left =
                    Duration::from_millis(BUFFER_DELAY_MS).saturating_sub(window.started.elapsed());
                w.flush()?;
                std::thread::sleep(left.min(Duration::from_millis(5)));
                continue;
            }
            let status = w.iterate(reg, false, &mut limited)?;
            iterations += 1;
            w.flush()?;
            if status == IterateStatus::Done && pending.total() == 0 {
                if switchover_allowed {
                    break;
                }
                // Everything is sent but the destination has not approved the
                // switchover yet (switchover-ack): wait without spinning.
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        if self.in_postcopy {
            let rp = rp.ok_or_else(|| Error::invalid("postcopy needs the return path"))?;
            let transferred = self.postcopy_until_done(w, rp, reg)?;
            self.shared.stats.update(|s| {
                s.transferred = transferred;
                s.remaining = 0;
                s.total = transferred;
            });
            return Ok(());
        }
        {
            // Precopy switchover: the VM stops first (also before a
            // pre-switchover pause, as QEMU does).
            let stop_at = Instant::now();
            self.vm.pause()?;
            *vm_paused = true;
            if caps.pause_before_switchover {
                self.set_status(MigrationStatus::PreSwitchover);
                while !self
                    .shared
                    .resume_from_pre_switchover
                    .load(Ordering::SeqCst)
                {
                    if self.cancelled() {
                        return Err(Stop::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            // QEMU 7.2 only enters "device" after a pre-switchover pause; 10.x always.
            if caps.pause_before_switchover || self.config.version == QemuVersion::V10 {
                self.set_status(MigrationStatus::Device);
            }
            if self.cancelled() {
                return Err(Stop::Cancelled);
            }
            if self.config.version == QemuVersion::V10 {
                w.write_command(&Command::SwitchoverStart)?;
            }
            // A cancel from here on shuts the connection down, so the stream never
            // reaches EOF and the destination cannot start the guest.
            w.complete_precopy(reg)?;
            w.flush()?;
            self.shared
                .stats
                .update(|s| s.downtime = Some(stop_at.elapsed()));
        }
        let transferred = w.position();
        drop(w);
        if let Some(rp) = rp {
            // The destination reports whether it loaded the stream.
            rp.wait_shut()?;
        }
        self.shared.stats.update(|s| {
            s.transferred = transferred;
            s.remaining = 0;
            s.total = transferred;
        });
        Ok(())
    }

    /// Postcopy after the switch: serve faults first, send the rest, complete.
    /// A broken connection pauses (postcopy-paused) until [`MigrationHandle::resume`]
    /// gives a new URI; then the received bitmaps are fetched, the handlers mark
    /// what the destination lacks as dirty, and sending continues (no page lost).
    /// Returns the bytes sent over all connections.
    fn postcopy_until_done(
        &mut self,
        mut w: StreamWriter<Outgoing>,
        mut rp: ReturnPath,
        reg: &mut Registry,
    ) -> Result<u64> {
        let mut before = 0u64;
        loop {
            let pos = std::cell::Cell::new(0u64);
            match self.postcopy_serve(w, rp, reg, &pos) {
                Ok(sent) => return Ok(before + sent),
                Err(e) => {
                    before += pos.get();
                    let mut err = e;
                    // Paused until a recovery attempt succeeds (or a cancel).
                    let (w2, rp2) = loop {
                        let msg = err.to_string();
                        self.set_status(MigrationStatus::PostcopyPaused);
                        self.shared.stats.update(|s| s.error = Some(msg));
                        let uri = self.wait_for_resume_uri()?;
                        self.set_status(MigrationStatus::PostcopyRecover);
                        match self.reconnect_postcopy(&uri, reg) {
                            Ok(c) => break c,
                            Err(e) => err = e,
                        }
                    };
                    self.shared.stats.update(|s| s.error = None);
                    self.set_status(MigrationStatus::PostcopyActive);
                    w = w2;
                    rp = rp2;
                }
            }
        }
    }

    /// One connection's worth of postcopy; `pos` tracks the bytes sent on it.
    fn postcopy_serve(
        &mut self,
        mut w: StreamWriter<Outgoing>,
        rp: ReturnPath,
        reg: &mut Registry,
        pos: &std::cell::Cell<u64>,
    ) -> Result<u64> {
        let mut window = Window::new(w.position());
        loop {
            pos.set(w.position());
            rp.check()?;
            window.roll(w.position(), &self.shared.stats);
            for (block, start, len) in rp.take_page_requests() {
                let mut served = false;
                for e in reg.entries_mut() {
                    if e.handlers.has_postcopy()
                        && e.handlers.queue_page_request(&block, start, len)?
                    {
                        served = true;
                        break;
                    }
                }
                if !served {
                    return Err(Error::invalid(format!(
                        "destination requested pages of unknown block '{block}'"
                    )));
                }
            }
            let pending = StreamWriter::<Outgoing>::pending(reg, true);
            let transferred = w.position();
            self.shared.stats.update(|s| {
                s.remaining = pending.total();
                s.transferred = transferred;
                s.total = transferred + pending.total();
                s.total_time = self.started.elapsed();
            });
            if pending.total() == 0 && !rp.has_page_requests() {
                w.complete_postcopy(reg)?;
                let sent = w.position();
                pos.set(sent);
                drop(w);
                rp.wait_shut()?;
                return Ok(sent);
            }
            let params = self.params();
            let per_window = params.max_postcopy_bandwidth / (1000 / BUFFER_DELAY_MS);
            let start_pos = window.start_pos;
            let mut limited = |p: u64| per_window != 0 && p - start_pos >= per_window;
            if limited(w.position()) {
                w.flush()?;
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            w.iterate(reg, true, &mut limited)?;
            w.flush()?;
        }
    }

    /// Waits in postcopy-paused for a new URI (or a cancel, which fails).
    fn wait_for_resume_uri(&mut self) -> Result<MigrationUri> {
        loop {
            if self.cancelled() {
                return Err(Error::invalid(
                    "cancelled in postcopy-paused: the guest state stays split until recovery",
                ));
            }
            if let Some(uri) = self
                .shared
                .resume_uri
                .lock()
                .ok()
                .and_then(|mut u| u.take())
            {
                return Ok(uri);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Postcopy recovery on a new connection (QEMU `postcopy_do_resume`): for
    /// every RAM block ask for the destination's received bitmap
    /// (RECV_BITMAP → RP RECV_BITMAP + blob), let the handler re-dirty what did
    /// not arrive, resume_prepare, POSTCOPY_RESUME, wait for RESUME_ACK.
    fn reconnect_postcopy(
        &mut self,
        uri: &MigrationUri,
        reg: &mut Registry,
    ) -> Result<(StreamWriter<Outgoing>, ReturnPath)> {
        let Connection {
            stream, reverse, ..
        } = connect(uri)?;
        let reverse = reverse
            .ok_or_else(|| Error::invalid("postcopy recovery needs a bidirectional transport"))?;
        let mut w = StreamWriter::new(Outgoing(stream), self.config.version);
        w.suppress_vmdesc();
        let rp = ReturnPath::spawn(reverse, self.config.version)?;
        for e in reg.entries_mut() {
            if !e.handlers.has_postcopy() {
                continue;
            }
            for block in e.handlers.ram_block_names() {
                w.write_command(&Command::RecvBitmap(block.clone()))?;
                w.flush()?;
                let bitmap = rp.wait_bitmap(&block)?;
                e.handlers.postcopy_resume_bitmap(&block, &bitmap)?;
            }
        }
        for e in reg.entries_mut() {
            if e.handlers.is_active() {
                e.handlers.resume_prepare()?;
            }
        }
        w.write_command(&Command::PostcopyResume)?;
        w.flush()?;
        rp.wait_resume_ack()?;
        Ok((w, rp))
    }

    /// The postcopy switch (QEMU `postcopy_start`, with the VM stopped): END
    /// sections of handlers that cannot continue, discard ranges, PING(2), the
    /// package (LISTEN, device state, PING(3), RUN), PING(4).
    fn switch_to_postcopy(
        &mut self,
        w: &mut StreamWriter<Outgoing>,
        reg: &mut Registry,
    ) -> Result<()> {
        w.complete_iterables(reg, true)?;
        for e in reg.entries_mut() {
            if !e.handlers.has_postcopy() {
                continue;
            }
            for (block, ranges) in e.handlers.postcopy_discard_ranges()? {
                for chunk in ranges.chunks(MAX_DISCARDS_PER_COMMAND) {
                    w.write_command(&Command::PostcopyRamDiscard {
                        block: block.clone(),
                        ranges: chunk.to_vec(),
                    })?;
                }
            }
        }
        w.write_command(&Command::Ping(2))?;
        let mut pkg = StreamWriter::new(Vec::new(), self.config.version);
        pkg.suppress_vmdesc();
        pkg.write_command(&Command::PostcopyListen)?;
        pkg.full_sections(reg)?;
        pkg.write_command(&Command::Ping(3))?;
        if self.config.version == QemuVersion::V10 {
            pkg.write_command(&Command::Ping(crate::savevm::format::PING_PACKAGED_LOADED))?;
        }
        pkg.write_command(&Command::PostcopyRun)?;
        let pkg = pkg.into_inner()?;
        w.write_packaged(&pkg)?;
        w.write_command(&Command::Ping(4))?;
        w.flush()
    }
}

/// Bandwidth accounting per 100 ms window (QEMU `migration_update_counters`).
struct Window {
    started: Instant,
    start_pos: u64,
    /// Bytes per millisecond over the last full window.
    bandwidth_bpms: f64,
}

impl Window {
    fn new(pos: u64) -> Self {
        Window {
            started: Instant::now(),
            start_pos: pos,
            bandwidth_bpms: 0.0,
        }
    }

    /// Closes the window when 100 ms have passed; returns whether it did.
    fn roll(&mut self, pos: u64, stats: &StatsHandle) -> bool {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        if elapsed_ms < BUFFER_DELAY_MS {
            return false;
        }
        self.bandwidth_bpms = (pos - self.start_pos) as f64 / elapsed_ms as f64;
        self.started = Instant::now();
        self.start_pos = pos;
        let bw = self.bandwidth_bpms;
        stats.update(|s| {
            s.throughput_bps = bw * 1000.0;
            s.transferred = pos;
        });
        true
    }
}

/// The source's return-path reader thread.
struct ReturnPath {
    state: Arc<Mutex<RpState>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct RpState {
    error: Option<String>,
    shut: Option<bool>,
    switchover_acked: bool,
    pongs: Vec<u32>,
    /// Postcopy page requests not yet handed to a handler: (block, start, len).
    page_requests: std::collections::VecDeque<(String, u64, u64)>,
    /// Block of the previous request (REQ_PAGES refers to it).
    last_block: Option<String>,
    /// Received bitmaps from postcopy recovery, by block.
    bitmaps: std::collections::HashMap<String, Vec<u8>>,
    /// RESUME_ACK(1) arrived.
    resume_acked: bool,
}

/// Largest received bitmap accepted on the return path (one bit per 4 KiB page:
/// 64 MiB of bitmap covers 2 TiB of guest RAM).
const MAX_RECV_BITMAP: u64 = 64 * 1024 * 1024;

impl ReturnPath {
    fn spawn(mut reverse: Box<dyn ReadWrite>, version: QemuVersion) -> Result<Self> {
        let state = Arc::new(Mutex::new(RpState::default()));
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("return-path".into())
            .spawn(move || {
                let mut buf = BytesMut::new();
                loop {
                    // Read one frame (header + up to 512 bytes).
                    let msg = (|| -> Result<Option<(RpMessage, Option<Vec<u8>>)>> {
                        let mut hdr = [0u8; 4];
                        if let Err(e) = reverse.read_exact(&mut hdr) {
                            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                                return Ok(None);
                            }
                            return Err(e.into());
                        }
                        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
                        buf.clear();
                        buf.extend_from_slice(&hdr);
                        if len <= crate::savevm::MAX_RP_PAYLOAD {
                            let mut p = vec![0u8; len];
                            reverse.read_exact(&mut p)?;
                            buf.extend_from_slice(&p);
                        }
                        let mut r = Reader::new(&buf[..]);
                        let msg = RpMessage::read(&mut r, version)?;
                        if let RpMessage::RecvBitmap(_) = &msg {
                            // The bitmap blob follows outside the framing.
                            let mut b8 = [0u8; 8];
                            reverse.read_exact(&mut b8)?;
                            let size = u64::from_be_bytes(b8);
                            if size > MAX_RECV_BITMAP || size % 8 != 0 {
                                return Err(Error::invalid(format!(
                                    "received bitmap of {size} bytes is invalid"
                                )));
                            }
                            let mut blob = vec![0u8; size as usize];
                            reverse.read_exact(&mut blob)?;
                            reverse.read_exact(&mut b8)?;
                            if u64::from_be_bytes(b8) != crate::savevm::RECV_BITMAP_ENDING {
                                return Err(Error::invalid(
                                    "received bitmap without its end marker",
                                ));
                            }
                            return Ok(Some((msg, Some(blob))));
                        }
                        Ok(Some((msg, None)))
                    })();
                    let mut s = match st.lock() {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                    match msg {
                        Ok(Some((RpMessage::RecvBitmap(block), Some(blob)))) => {
                            s.bitmaps.insert(block, blob);
                        }
                        Ok(Some((RpMessage::ResumeAck(v), _))) => {
                            if v != crate::savevm::RESUME_ACK_VALUE {
                                s.error = Some(format!("RESUME_ACK with value {v}, expected 1"));
                                return;
                            }
                            s.resume_acked = true;
                        }
                        Ok(Some((RpMessage::Shut { error }, _))) => {
                            s.shut = Some(error);
                            return;
                        }
                        Ok(Some((RpMessage::Pong(v), _))) => s.pongs.push(v),
                        Ok(Some((RpMessage::SwitchoverAck, _))) => s.switchover_acked = true,
                        Ok(Some((RpMessage::ReqPages { block, start, len }, _))) => {
                            if let Some(b) = block {
                                s.last_block = Some(b);
                            }
                            match s.last_block.clone() {
                                Some(b) => s.page_requests.push_back((b, start, u64::from(len))),
                                None => {
                                    s.error = Some("REQ_PAGES before any REQ_PAGES_ID".into());
                                    return;
                                }
                            }
                        }
                        Ok(Some((other, _))) => {
                            s.error = Some(format!("unexpected return-path message {other:?}"));
                            return;
                        }
                        Ok(None) => {
                            if s.shut.is_none() {
                                s.error = Some("return path closed before SHUT".into());
                            }
                            return;
                        }
                        Err(e) => {
                            s.error = Some(format!("return path: {e}"));
                            return;
                        }
                    }
                }
            })?;
        Ok(ReturnPath {
            state,
            thread: Some(thread),
        })
    }

    /// Fails if the destination reported an error or the return path broke.
    fn check(&self) -> Result<()> {
        let s = self
            .state
            .lock()
            .map_err(|_| Error::invalid("return path state poisoned"))?;
        if let Some(e) = &s.error {
            return Err(Error::invalid(e.clone()));
        }
        if s.shut == Some(true) {
            return Err(Error::invalid("destination failed to load the stream"));
        }
        Ok(())
    }

    /// Waits (up to 30 s) for the received bitmap of `block`.
    fn wait_bitmap(&self, block: &str) -> Result<Vec<u8>> {
        self.wait_for(|s| s.bitmaps.remove(block), "the received bitmap")
    }

    /// Waits (up to 30 s) for RESUME_ACK.
    fn wait_resume_ack(&self) -> Result<()> {
        self.wait_for(|s| s.resume_acked.then_some(()), "RESUME_ACK")
    }

    fn wait_for<T>(&self, mut f: impl FnMut(&mut RpState) -> Option<T>, what: &str) -> Result<T> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mut s = self
                    .state
                    .lock()
                    .map_err(|_| Error::invalid("return path state poisoned"))?;
                if let Some(v) = f(&mut s) {
                    return Ok(v);
                }
                if let Some(e) = &s.error {
                    return Err(Error::invalid(format!("waiting for {what}: {e}")));
                }
            }
            if Instant::now() > deadline {
                return Err(Error::invalid(format!("timed out waiting for {what}")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Page requests received since the last call.
    fn take_page_requests(&self) -> Vec<(String, u64, u64)> {
        self.state
            .lock()
            .map(|mut s| s.page_requests.drain(..).collect())
            .unwrap_or_default()
    }

    fn has_page_requests(&self) -> bool {
        self.state
            .lock()
            .map(|s| !s.page_requests.is_empty())
            .unwrap_or(false)
    }

    fn switchover_allowed(&self, caps: MigrationCapabilities) -> bool {
        !caps.switchover_ack
            || self
                .state
                .lock()
                .map(|s| s.switchover_acked)
                .unwrap_or(false)
    }

    /// Waits for the destination's SHUT and turns an error report into a failure.
    fn wait_shut(mut self) -> Result<()> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self
            .state
            .lock()
            .map_err(|_| Error::invalid("return path state poisoned"))?;
        match (s.shut, &s.error) {
            (Some(false), _) => Ok(()),
            (Some(true), _) => Err(Error::invalid("destination failed to load the stream")),
            (None, Some(e)) => Err(Error::invalid(e.clone())),
            (None, None) => Err(Error::invalid("return path closed before SHUT")),
        }
    }
}
