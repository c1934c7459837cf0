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

    /// Requests cancellation; the source VM keeps (or goes back to) running.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
    }

    /// Switches to postcopy as soon as what must be sent in precopy fits the
    /// downtime limit (QMP `migrate-start-postcopy`; needs the postcopy-ram
    /// capability).
    pub fn start_postcopy(&self) {
        self.shared.postcopy_requested.store(true, Ordering::SeqCst);
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
        self.shared.stats.update(|s| {
            s.status = to;
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
            Err(Stop::Failed(e)) if self.in_postcopy => {
                // The destination already runs the guest: resuming here would
                // split it in two. QEMU pauses and waits for recovery.
                let msg = e.to_string();
                self.set_status(MigrationStatus::PostcopyPaused);
                self.shared.stats.update(|s| s.error = Some(msg));
                Err(e)
            }
            Err(Stop::Failed(e)) => {
                // The source must keep running whatever happened.
                let resumed = if vm_paused { self.vm.resume() } else { Ok(()) };
                let msg = e.to_string();
                self.set_status(MigrationStatus::Failed);
                self.shared.stats.update(|s| s.error = Some(msg));
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
        let mut postcopy_since: Option<Instant> = None;
        loop {
            if self.cancelled() && postcopy_since.is_none() {
                return Err(Stop::Cancelled);
            }
            if let Some(rp) = &rp {
                rp.check()?;
            }
            let params = self.params();
            window.roll(w.position(), &self.shared.stats);
            let threshold = (window.bandwidth_bpms * params.downtime_limit_ms as f64) as u64;
            let mut pending = StreamWriter::<Outgoing>::pending(reg, false);
            if pending.total() < threshold || pending.total() == 0 {
                pending = StreamWriter::<Outgoing>::pending(reg, true);
                syncs += 1;
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

            if let Some(since) = postcopy_since {
                // Postcopy: serve the destination's faults first, then the rest.
                if let Some(rp) = &rp {
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
                            return Err(Stop::Failed(Error::invalid(format!(
                                "destination requested pages of unknown block '{block}'"
                            ))));
                        }
                    }
                }
                if pending.total() == 0 && !rp.as_ref().is_some_and(|r| r.has_page_requests()) {
                    w.complete_postcopy(reg)?;
                    break;
                }
                let per_window = params.max_postcopy_bandwidth / (1000 / BUFFER_DELAY_MS);
                let start_pos = window.start_pos;
                let mut limited = |pos: u64| per_window != 0 && pos - start_pos >= per_window;
                if limited(w.position()) {
                    w.flush()?;
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                w.iterate(reg, true, &mut limited)?;
                iterations += 1;
                w.flush()?;
                let _ = since;
                continue;
            }

            let switchover_allowed = rp.as_ref().is_none_or(|r| r.switchover_allowed(caps));
            if caps.postcopy_ram
                && self.shared.postcopy_requested.load(Ordering::SeqCst)
                && pending.must_precopy <= threshold
                && switchover_allowed
            {
                let rp = rp
                    .as_ref()
                    .ok_or_else(|| Error::invalid("postcopy needs the return path"))?;
                let stop_at = Instant::now();
                self.vm.pause()?;
                *vm_paused = true;
                self.in_postcopy = true;
                self.switch_to_postcopy(&mut w, reg)?;
                let _ = rp;
                self.shared
                    .stats
                    .update(|s| s.downtime = Some(stop_at.elapsed()));
                self.set_status(MigrationStatus::PostcopyActive);
                postcopy_since = Some(Instant::now());
                continue;
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

        if postcopy_since.is_none() {
            // Precopy switchover.
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
            let stop_at = Instant::now();
            self.vm.pause()?;
            *vm_paused = true;
            self.set_status(MigrationStatus::Device);
            if self.config.version == QemuVersion::V10 {
                w.write_command(&Command::SwitchoverStart)?;
            }
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

    fn roll(&mut self, pos: u64, stats: &StatsHandle) {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        if elapsed_ms < BUFFER_DELAY_MS {
            return;
        }
        self.bandwidth_bpms = (pos - self.start_pos) as f64 / elapsed_ms as f64;
        self.started = Instant::now();
        self.start_pos = pos;
        let bw = self.bandwidth_bpms;
        stats.update(|s| {
            s.throughput_bps = bw * 1000.0;
            s.transferred = pos;
        });
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
}

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
                    let msg = (|| -> Result<Option<RpMessage>> {
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
                        RpMessage::read(&mut r, version).map(Some)
                    })();
                    let mut s = match st.lock() {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                    match msg {
                        Ok(Some(RpMessage::Shut { error })) => {
                            s.shut = Some(error);
                            return;
                        }
                        Ok(Some(RpMessage::Pong(v))) => s.pongs.push(v),
                        Ok(Some(RpMessage::SwitchoverAck)) => s.switchover_acked = true,
                        Ok(Some(RpMessage::ReqPages { block, start, len })) => {
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
                        Ok(Some(other)) => {
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
