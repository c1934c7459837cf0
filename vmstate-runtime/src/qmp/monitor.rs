//! The monitor: the migration commands over a [`MigrationHost`] (the VMM),
//! QEMU's capability and parameter tables, `query-migrate` and `query-status`
//! replies, and the events (MIGRATION, MIGRATION_PASS, STOP, RESUME) a poller
//! derives from the migration's statistics and the VM's run state.
//!
//! The monitor owns the [`MigrationHandle`] the host's `start_migration`
//! returns: `migrate_cancel`, `migrate-continue`, `migrate-start-postcopy`,
//! `migrate-pause`, `migrate` with `resume` and `migrate-set-parameters` act
//! on it; when the migration ends the registry goes back to the host
//! ([`MigrationHost::migration_finished`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::args::Args;
use super::params::{self, ParamKind, PARAMETERS};
use super::protocol::{event, Dispatch, QmpVersion};
use super::QmpError;
use crate::error::{ErrorKind, UriError};
use crate::migration::{
    CancelToken, Incoming, MigrationCapabilities, MigrationHandle, MigrationParameters,
    MigrationStats, MigrationStatus, MigrationUri, PausedHook, StatsHandle,
};
use crate::savevm::Registry;

/// How often the poller drains the outgoing migration's event channel and
/// looks at the VM's run state (STOP/RESUME) and the incoming side's status.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// QEMU 7.2's migration capabilities, in QAPI order (`query-migrate-capabilities`).
pub const CAPABILITIES: &[&str] = &[
    "xbzrle",
    "rdma-pin-all",
    "auto-converge",
    "zero-blocks",
    "compress",
    "events",
    "postcopy-ram",
    "x-colo",
    "release-ram",
    "block",
    "return-path",
    "pause-before-switchover",
    "multifd",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "x-ignore-shared",
    "validate-uuid",
    "background-snapshot",
    "zero-copy-send",
    "postcopy-preempt",
];

/// The capabilities the runtime itself implements (the host may add more:
/// [`MigrationHost::extra_capabilities`]).
pub const RUNTIME_CAPABILITIES: &[&str] = &[
    "events",
    "postcopy-ram",
    "return-path",
    "pause-before-switchover",
];

/// A host's refusal or failure, reported as a `GenericError` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

impl From<crate::Error> for HostError {
    fn from(e: crate::Error) -> Self {
        HostError(e.to_string())
    }
}

/// The capabilities and parameters in force, QMP names to values: what the
/// runtime reads is in the typed fields of [`OutgoingSetup`] and
/// [`IncomingSetup`]; what the host added is read from here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    capabilities: BTreeMap<&'static str, bool>,
    parameters: BTreeMap<&'static str, Value>,
}

impl Settings {
    /// Whether capability `name` is on.
    pub fn capability(&self, name: &str) -> bool {
        self.capabilities.get(name).copied().unwrap_or(false)
    }

    /// Parameter `name` as an unsigned number (sizes, counts, percents).
    pub fn parameter_u64(&self, name: &str) -> Option<u64> {
        self.parameters.get(name).and_then(Value::as_u64)
    }

    // Field by field, not a literal: the config structs become #[non_exhaustive].
    #[allow(clippy::field_reassign_with_default)]
    fn runtime_caps(&self) -> MigrationCapabilities {
        let mut c = MigrationCapabilities::default();
        c.events = self.capability("events");
        c.postcopy_ram = self.capability("postcopy-ram");
        c.return_path = self.capability("return-path");
        c.pause_before_switchover = self.capability("pause-before-switchover");
        c
    }

    fn runtime_params(&self) -> MigrationParameters {
        let mut p = MigrationParameters::default();
        if let Some(v) = self.parameter_u64("downtime-limit") {
            p.downtime_limit_ms = v;
        }
        if let Some(v) = self.parameter_u64("max-bandwidth") {
            p.max_bandwidth = v;
        }
        if let Some(v) = self.parameter_u64("max-postcopy-bandwidth") {
            p.max_postcopy_bandwidth = v;
        }
        p
    }
}

/// What QMP `migrate` asks the host to start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OutgoingSetup {
    /// Where to migrate (the `uri` argument).
    pub uri: MigrationUri,
    /// The capabilities the runtime reads, as set by `migrate-set-capabilities`.
    pub caps: MigrationCapabilities,
    /// The parameters the runtime reads, as set by `migrate-set-parameters`.
    pub params: MigrationParameters,
    /// Everything in force, by QMP name (the host's own capabilities too).
    pub settings: Settings,
}

/// What QMP `migrate-incoming` asks the host to start.
#[non_exhaustive]
pub struct IncomingSetup {
    /// Where to wait for the source (the `uri` argument).
    pub uri: MigrationUri,
    /// The capabilities the runtime reads.
    pub caps: MigrationCapabilities,
    /// Everything in force, by QMP name.
    pub settings: Settings,
    /// Give it to [`LoadOptions::cancel`](crate::savevm::LoadOptions::cancel):
    /// the monitor cancels the incoming migration with it when it is dropped.
    pub cancel: CancelToken,
    /// The statistics to report into: give a clone to `run_incoming` and
    /// return it in [`IncomingMigration::new`]. The monitor subscribed to
    /// them before the host was asked, so its `MIGRATION` events carry every
    /// status of the incoming migration in order. (A host that reports into
    /// a handle of its own still works; the monitor then samples its status
    /// and may miss one that lasted less than a poll.)
    pub stats: StatsHandle,
    recover: Arc<Mutex<Option<Incoming>>>,
}

impl std::fmt::Debug for IncomingSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingSetup")
            .field("uri", &self.uri)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl IncomingSetup {
    /// A hook for [`IncomingHooks::on_postcopy_paused`](crate::migration::IncomingHooks::on_postcopy_paused)
    /// that waits in postcopy-paused for QMP `migrate-recover URI` (which
    /// listens there before it replies, so the source's `migrate` with
    /// `resume` finds it) and hands that listener over; a cancel ends the wait.
    pub fn recovery_hook(&self) -> PausedHook {
        let slot = self.recover.clone();
        let cancel = self.cancel.clone();
        Box::new(move |_err| loop {
            if cancel.is_cancelled() {
                return Err(crate::Error::new(ErrorKind::Cancelled {
                    in_postcopy_pause: true,
                }));
            }
            if let Some(listening) = slot.lock().ok().and_then(|mut s| s.take()) {
                return Ok(listening);
            }
            std::thread::sleep(POLL_INTERVAL);
        })
    }
}

/// An incoming migration the host started: its statistics (the runtime's
/// `run_incoming` fills them) and, for a tcp listener on port 0, the port.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IncomingMigration {
    /// The destination's statistics (status setup → active → completed/failed).
    pub stats: StatsHandle,
    /// The address actually listened on (`Incoming::local_tcp_addr`).
    pub tcp_addr: Option<std::net::SocketAddr>,
}

impl IncomingMigration {
    /// An incoming migration reporting into `stats`.
    pub fn new(stats: StatsHandle) -> Self {
        IncomingMigration {
            stats,
            tcp_addr: None,
        }
    }

    /// With the address a tcp listener got.
    pub fn with_tcp_addr(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.tcp_addr = addr;
        self
    }
}

/// What the monitor needs from the VMM.
pub trait MigrationHost: Send {
    /// Starts an outgoing migration (QMP `migrate`): build the registry, the
    /// [`VmControl`](crate::migration::VmControl) and the
    /// [`MigrationConfig`](crate::migration::MigrationConfig) from `setup`,
    /// and return what [`start_migration`](crate::migration::start_migration)
    /// returned.
    fn start_migration(&mut self, setup: &OutgoingSetup) -> Result<MigrationHandle, HostError>;

    /// The outgoing migration ended: the registry comes back, with the outcome
    /// and the final statistics.
    fn migration_finished(
        &mut self,
        registry: Registry,
        outcome: crate::Result<()>,
        stats: &MigrationStats,
    ) {
        let _ = (registry, outcome, stats);
    }

    /// Starts waiting for an incoming migration (QMP `migrate-incoming`):
    /// listen at `setup.uri`, run `run_incoming` on a thread with
    /// `setup.cancel` in the load options, and return its statistics.
    fn start_incoming(&mut self, setup: IncomingSetup) -> Result<IncomingMigration, HostError>;

    /// Whether the guest's vCPUs run (STOP and RESUME follow its changes).
    fn is_running(&self) -> bool;

    /// QMP `stop`.
    fn stop(&mut self) -> Result<(), HostError>;

    /// QMP `cont`.
    fn cont(&mut self) -> Result<(), HostError>;

    /// Capabilities the host implements beyond [`RUNTIME_CAPABILITIES`]
    /// (QEMU names, e.g. `xbzrle`).
    fn extra_capabilities(&self) -> &[&'static str] {
        &[]
    }

    /// Parameters the host implements beyond `downtime-limit`, `max-bandwidth`
    /// and `max-postcopy-bandwidth` (QEMU names, e.g. `xbzrle-cache-size`).
    fn extra_parameters(&self) -> &[&'static str] {
        &[]
    }

    /// QMP `quit`: the process should end (after the reply is sent).
    fn quit(&mut self) {}
}

/// How the VM was started, as QEMU's command line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmStart {
    /// A running VM (may be migrated away with `migrate`).
    #[default]
    Running,
    /// QEMU's `-incoming defer`: an empty VM waiting for `migrate-incoming`.
    IncomingDefer,
}

/// Receives every event (the server's connections are listeners).
pub trait EventListener: Send + Sync {
    /// Delivers one event; `false` when the listener is gone (it is dropped).
    fn event(&self, event: &Value) -> bool;
}

struct Outgoing {
    handle: Option<MigrationHandle>,
    stats: StatsHandle,
    /// The migration's event channel ([`StatsHandle::subscribe`]): every
    /// status change and pass in order, none missed however short. `None`
    /// for a migration that failed before it started (its one status is
    /// polled).
    events: Option<std::sync::mpsc::Receiver<crate::migration::events::MigrationEvent>>,
    seen: MigrationStatus,
    passes: u64,
}

struct IncomingState {
    stats: StatsHandle,
    uri: MigrationUri,
    tcp_addr: Option<std::net::SocketAddr>,
    cancel: CancelToken,
    recover: Arc<Mutex<Option<Incoming>>>,
    seen: MigrationStatus,
    /// The migration's event channel, when the host reports into the
    /// statistics the monitor gave it (`None`: status sampled each poll).
    events: Option<std::sync::mpsc::Receiver<crate::migration::events::MigrationEvent>>,
}

struct State {
    host: Box<dyn MigrationHost>,
    start: VmStart,
    settings: Settings,
    outgoing: Option<Outgoing>,
    incoming: Option<IncomingState>,
    running: bool,
    /// Paused by a completed outgoing migration (QEMU's postmigrate).
    postmigrate: bool,
}

struct Inner {
    state: Mutex<State>,
    listeners: Mutex<Vec<Arc<dyn EventListener>>>,
    version: QmpVersion,
    quit: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(s) = self.state.get_mut() {
            if let Some(i) = &s.incoming {
                i.cancel.cancel();
            }
            if let Some(h) = s.outgoing.as_ref().and_then(|o| o.handle.as_ref()) {
                h.cancel();
            }
        }
    }
}

/// The QMP monitor of one VM (cheap to clone: all clones are the same monitor).
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

fn busy() -> QmpError {
    QmpError::generic("There's a migration process in progress")
}

/// The `uri` argument as a migration URI, refused as QEMU refuses it.
fn parse_uri(uri: &str) -> Result<MigrationUri, QmpError> {
    parse_uri_why(uri).map_err(|(e, _)| e)
}

/// [`parse_uri`], and the reason QEMU records in the migration's state
/// (`None` for an unknown protocol, which it refuses before trying).
fn parse_uri_why(uri: &str) -> Result<MigrationUri, (QmpError, Option<String>)> {
    uri.parse::<MigrationUri>().map_err(|e| match e.kind() {
        ErrorKind::InvalidUri(UriError::NoScheme { .. } | UriError::UnsupportedScheme { .. }) => (
            QmpError::generic("Parameter 'uri' expects a valid migration protocol"),
            None,
        ),
        _ => (QmpError::generic(e.to_string()), Some(e.to_string())),
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Monitor {
    /// A monitor over `host`; a poller thread turns status changes into events
    /// until the last clone is dropped.
    pub fn new(host: Box<dyn MigrationHost>, start: VmStart) -> std::io::Result<Monitor> {
        Self::with_version(host, start, QmpVersion::default())
    }

    /// [`Monitor::new`] announcing `version` in the greeting.
    pub fn with_version(
        host: Box<dyn MigrationHost>,
        start: VmStart,
        version: QmpVersion,
    ) -> std::io::Result<Monitor> {
        let running = host.is_running();
        let mut settings = Settings::default();
        for c in CAPABILITIES {
            settings.capabilities.insert(c, false);
        }
        for p in PARAMETERS {
            settings.parameters.insert(p.name, p.default.to_value());
        }
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                host,
                start,
                settings,
                outgoing: None,
                incoming: None,
                running,
                postmigrate: false,
            }),
            listeners: Mutex::new(Vec::new()),
            version,
            quit: AtomicBool::new(false),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("qmp-poller".into())
            .spawn(move || loop {
                std::thread::sleep(POLL_INTERVAL);
                let Some(inner) = weak.upgrade() else { return };
                Monitor { inner }.poll();
            })?;
        Ok(Monitor { inner })
    }

    /// The version the greeting announces.
    pub fn version(&self) -> &QmpVersion {
        &self.inner.version
    }

    /// Whether a client sent `quit`.
    pub fn quit_requested(&self) -> bool {
        self.inner.quit.load(Ordering::SeqCst)
    }

    /// Adds an event listener (a client connection).
    pub fn add_listener(&self, l: Arc<dyn EventListener>) {
        if let Ok(mut v) = self.inner.listeners.lock() {
            v.push(l);
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, QmpError> {
        self.inner
            .state
            .lock()
            .map_err(|_| QmpError::generic("monitor state lock poisoned"))
    }

    fn broadcast(&self, events: Vec<Value>) {
        if events.is_empty() {
            return;
        }
        let listeners: Vec<_> = match self.inner.listeners.lock() {
            Ok(v) => v.clone(),
            Err(_) => return,
        };
        let mut dead = Vec::new();
        for e in &events {
            for (i, l) in listeners.iter().enumerate() {
                if !l.event(e) && !dead.contains(&i) {
                    dead.push(i);
                }
            }
        }
        if !dead.is_empty() {
            if let Ok(mut v) = self.inner.listeners.lock() {
                v.retain(|l| !dead.iter().any(|&i| Arc::ptr_eq(l, &listeners[i])));
            }
        }
    }

    /// One look at the migration and the VM: the events it finds go out.
    pub fn poll(&self) {
        let events = match self.inner.state.lock() {
            Ok(mut s) => s.poll(),
            Err(_) => return,
        };
        self.broadcast(events);
    }

    /// The status of the outgoing migration (`None` before the first).
    pub fn outgoing_status(&self) -> MigrationStatus {
        self.state()
            .ok()
            .and_then(|s| s.outgoing.as_ref().map(|o| o.stats.snapshot().status))
            .unwrap_or_default()
    }

    fn run(&self, command: &str, args: &Map<String, Value>) -> Option<Result<Value, QmpError>> {
        // Whatever changed so far is announced before a reply can show it.
        self.poll();
        let r = match command {
            "query-status" => self.no_args(args, |s| Ok(s.query_status())),
            "stop" => self.no_args(args, |s| s.host.stop().map(|_| json!({})).map_err(host)),
            "cont" => self.no_args(args, |s| {
                s.host.cont().map_err(host)?;
                Ok(json!({}))
            }),
            "migrate" => self.with_state(|s| s.migrate(args)),
            "migrate-incoming" => self.with_state(|s| s.migrate_incoming(args)),
            "query-migrate" => self.no_args(args, |s| Ok(s.query_migrate())),
            "migrate-set-capabilities" => self.with_state(|s| s.set_capabilities(args)),
            "query-migrate-capabilities" => self.no_args(args, |s| Ok(s.query_capabilities())),
            "migrate-set-parameters" => self.with_state(|s| s.set_parameters(args)),
            "query-migrate-parameters" => self.no_args(args, |s| Ok(s.query_parameters())),
            "migrate_cancel" => self.no_args(args, |s| {
                if let Some(h) = s.running_handle() {
                    h.cancel();
                }
                Ok(json!({}))
            }),
            "migrate-continue" => self.with_state(|s| s.migrate_continue(args)),
            "migrate-pause" => self.no_args(args, |s| s.migrate_pause()),
            "migrate-recover" => self.with_state(|s| s.migrate_recover(args)),
            "migrate-start-postcopy" => self.no_args(args, |s| s.start_postcopy()),
            "query-version" => self.no_args(args, |_| Ok(self.inner.version.to_json())),
            "query-commands" => self.no_args(args, |_| {
                let mut names: Vec<&str> = COMMANDS.to_vec();
                names.push("qmp_capabilities");
                Ok(Value::Array(
                    names.into_iter().map(|n| json!({"name": n})).collect(),
                ))
            }),
            "quit" => self.no_args(args, |s| {
                s.host.quit();
                self.inner.quit.store(true, Ordering::SeqCst);
                Ok(json!({}))
            }),
            _ => return None,
        };
        // What the command changed is announced before its reply, as QEMU
        // does (MIGRATION "setup" before migrate's return, STOP before stop's).
        if command == "quit" {
            self.broadcast(vec![event(
                "SHUTDOWN",
                Some(json!({"guest": false, "reason": "host-qmp-quit"})),
            )]);
        } else {
            self.poll();
        }
        Some(r)
    }

    fn with_state(
        &self,
        f: impl FnOnce(&mut State) -> Result<Value, QmpError>,
    ) -> Result<Value, QmpError> {
        let mut s = self.state()?;
        f(&mut s)
    }

    fn no_args(
        &self,
        args: &Map<String, Value>,
        f: impl FnOnce(&mut State) -> Result<Value, QmpError>,
    ) -> Result<Value, QmpError> {
        Args::new(args).finish()?;
        self.with_state(f)
    }
}

/// The commands this monitor runs (besides `qmp_capabilities`).
pub const COMMANDS: &[&str] = &[
    "migrate",
    "migrate-incoming",
    "query-migrate",
    "migrate-set-capabilities",
    "query-migrate-capabilities",
    "migrate-set-parameters",
    "query-migrate-parameters",
    "migrate_cancel",
    "migrate-continue",
    "migrate-pause",
    "migrate-recover",
    "migrate-start-postcopy",
    "query-status",
    "stop",
    "cont",
    "query-version",
    "query-commands",
    "quit",
];

fn host(e: HostError) -> QmpError {
    QmpError::generic(e.0)
}

impl Dispatch for Monitor {
    fn dispatch(
        &self,
        command: &str,
        args: &Map<String, Value>,
    ) -> Option<Result<Value, QmpError>> {
        self.run(command, args)
    }
}

fn migration_event(status: MigrationStatus) -> Value {
    event("MIGRATION", Some(json!({"status": status.as_str()})))
}

/// At most this many MIGRATION_PASS events from one poll (the counter only
/// grows by one per dirty sync; this bounds a runaway figure).
const MAX_PASSES_PER_POLL: u64 = 64;

impl State {
    fn events_on(&self) -> bool {
        self.settings.capability("events")
    }

    fn poll(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        let running = self.host.is_running();
        if running != self.running {
            self.running = running;
            if running {
                self.postmigrate = false;
            }
            out.push(event(if running { "RESUME" } else { "STOP" }, None));
        }
        let events = self.events_on();
        if let Some(o) = &mut self.outgoing {
            // The snapshot first: an event is sent under the statistics
            // lock, so a final status seen here is already in the channel
            // and goes out before the host hears the migration ended.
            let s = o.stats.snapshot();
            if let Some(rx) = &o.events {
                use crate::migration::events::MigrationEvent;
                while let Ok(e) = rx.try_recv() {
                    match e {
                        MigrationEvent::Status(st) => {
                            o.seen = st;
                            if events {
                                out.push(migration_event(st));
                            }
                        }
                        MigrationEvent::Pass(p) => {
                            o.passes = o.passes.max(p);
                            if events {
                                out.push(event("MIGRATION_PASS", Some(json!({"pass": p}))));
                            }
                        }
                    }
                }
            }
            // Passes first: QEMU announces the last sync before the status
            // it leads to.
            let syncs = s.dirty_sync_count;
            if o.events.is_none() && syncs > o.passes {
                let from = o.passes.max(syncs.saturating_sub(MAX_PASSES_PER_POLL));
                if events {
                    for p in from + 1..=syncs {
                        out.push(event("MIGRATION_PASS", Some(json!({"pass": p}))));
                    }
                }
                o.passes = syncs;
            }
            if o.events.is_none() && s.status != o.seen {
                o.seen = s.status;
                if events {
                    out.push(migration_event(s.status));
                }
            }
            if s.status.is_terminal() {
                if let Some(h) = o.handle.take() {
                    let (registry, outcome) = h.wait();
                    let fin = o.stats.snapshot();
                    if fin.status == MigrationStatus::Completed && !self.host.is_running() {
                        self.postmigrate = true;
                    }
                    self.host.migration_finished(registry, outcome, &fin);
                }
            }
        }
        if let Some(i) = &mut self.incoming {
            use crate::migration::events::MigrationEvent;
            // Every status from the channel, or the sampled one if it changed.
            let statuses: Vec<MigrationStatus> = match &i.events {
                Some(rx) => rx
                    .try_iter()
                    .filter_map(|e| match e {
                        MigrationEvent::Status(st) => Some(st),
                        _ => None,
                    })
                    .collect(),
                None => {
                    let st = i.stats.snapshot().status;
                    (st != i.seen).then_some(st).into_iter().collect()
                }
            };
            for st in statuses {
                i.seen = st;
                if events {
                    out.push(migration_event(st));
                }
            }
        }
        out
    }

    fn outgoing_stats(&self) -> Option<MigrationStats> {
        self.outgoing.as_ref().map(|o| o.stats.snapshot())
    }

    fn incoming_status(&self) -> MigrationStatus {
        self.incoming
            .as_ref()
            .map(|i| i.stats.snapshot().status)
            .unwrap_or_default()
    }

    /// The handle of an outgoing migration that has not ended (the poller
    /// takes it at the end).
    fn running_handle(&self) -> Option<&MigrationHandle> {
        let o = self.outgoing.as_ref()?;
        if o.stats.snapshot().status.is_terminal() {
            None
        } else {
            o.handle.as_ref()
        }
    }

    fn run_state(&self) -> &'static str {
        if self.running {
            return "running";
        }
        if let Some(s) = self.outgoing_stats() {
            use MigrationStatus::*;
            match s.status {
                PreSwitchover | Device | PostcopyActive | PostcopyPaused | PostcopyRecover => {
                    return "finish-migrate"
                }
                _ if self.postmigrate => return "postmigrate",
                _ => {}
            }
        }
        if self.start == VmStart::IncomingDefer && !self.incoming_status().is_terminal() {
            return "inmigrate";
        }
        "paused"
    }

    fn query_status(&self) -> Value {
        json!({"status": self.run_state(), "singlestep": false, "running": self.running})
    }

    fn supported_caps(&self) -> Vec<&'static str> {
        let mut v = RUNTIME_CAPABILITIES.to_vec();
        v.extend_from_slice(self.host.extra_capabilities());
        v
    }

    fn supported_params(&self) -> Vec<&'static str> {
        let mut v = params::RUNTIME_PARAMETERS.to_vec();
        v.extend_from_slice(self.host.extra_parameters());
        v
    }

    fn migrate(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let uri = a.str("uri")?;
        let blk = a.opt_bool("blk")?.unwrap_or(false);
        let inc = a.opt_bool("inc")?.unwrap_or(false);
        let _detach = a.opt_bool("detach")?;
        let resume = a.opt_bool("resume")?.unwrap_or(false);
        a.finish()?;
        if blk || inc {
            return Err(QmpError::generic(
                "Block migration (blk, inc) is not supported: this VMM migrates no disks",
            ));
        }
        if resume {
            let uri = parse_uri(&uri)?;
            let paused = self
                .outgoing_stats()
                .is_some_and(|s| s.status == MigrationStatus::PostcopyPaused);
            let h = self.outgoing.as_ref().and_then(|o| o.handle.as_ref());
            return match (paused, h) {
                (true, Some(h)) => {
                    h.resume(uri)
                        .map_err(|e| QmpError::generic(e.to_string()))?;
                    Ok(json!({}))
                }
                _ => Err(QmpError::generic(
                    "Cannot resume if there is no paused migration",
                )),
            };
        }
        if self.running_handle().is_some() {
            return Err(busy());
        }
        if self.start == VmStart::IncomingDefer
            && self.incoming_status() != MigrationStatus::Completed
        {
            return Err(QmpError::generic(
                "Guest is waiting for an incoming migration",
            ));
        }
        if self.postmigrate {
            return Err(QmpError::generic(
                "Can't migrate the vm that was paused due to previous migration",
            ));
        }
        // As QEMU 7.2: the migration is in setup when the URI is looked at, so
        // a bad one leaves it failed (with the reason, except for an unknown
        // protocol), as query-migrate then shows.
        let uri = match parse_uri_why(&uri) {
            Ok(u) => u,
            Err((e, reason)) => {
                let stats = StatsHandle::default();
                stats.update(|s| {
                    s.status = MigrationStatus::Failed;
                    s.error = reason;
                });
                self.outgoing = Some(Outgoing {
                    stats,
                    handle: None,
                    events: None,
                    seen: MigrationStatus::Setup,
                    passes: 0,
                });
                return Err(e);
            }
        };
        let setup = OutgoingSetup {
            uri,
            caps: self.settings.runtime_caps(),
            params: self.settings.runtime_params(),
            settings: self.settings.clone(),
        };
        let handle = self.host.start_migration(&setup).map_err(host)?;
        // Setup from the command on, as QEMU (the driver's thread may not
        // have begun yet).
        handle.stats().update(|s| {
            if s.status == MigrationStatus::None {
                s.status = MigrationStatus::Setup;
            }
        });
        // Subscribed before anything else reads it: the channel replays the
        // migration's events from its start (the runtime emits them when
        // the `events` capability, passed on in `setup.caps`, is on).
        let events = Some(handle.stats().subscribe());
        self.outgoing = Some(Outgoing {
            stats: handle.stats(),
            events,
            handle: Some(handle),
            seen: MigrationStatus::None,
            passes: 0,
        });
        Ok(json!({}))
    }

    fn migrate_incoming(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let uri = a.str("uri")?;
        a.finish()?;
        if self.start != VmStart::IncomingDefer {
            return Err(QmpError::generic(
                "'-incoming' was not specified on the command line",
            ));
        }
        if self.incoming.is_some() {
            return Err(QmpError::generic(
                "The incoming migration has already been started",
            ));
        }
        let uri = parse_uri(&uri)?;
        let cancel = CancelToken::new();
        let recover = Arc::new(Mutex::new(None));
        // Events on whatever the `events` capability says: the monitor
        // decides what it announces; the channel must see every status.
        let stats = StatsHandle::with_events(true);
        let events = stats.subscribe();
        let setup = IncomingSetup {
            uri: uri.clone(),
            caps: self.settings.runtime_caps(),
            settings: self.settings.clone(),
            cancel: cancel.clone(),
            stats: stats.clone(),
            recover: recover.clone(),
        };
        let m = self.host.start_incoming(setup).map_err(host)?;
        let events = m.stats.same_as(&stats).then_some(events);
        // Setup from the command on, as QEMU (the host's thread may not have
        // begun yet; one that got further is left alone).
        m.stats.update(|s| {
            if s.status == MigrationStatus::None {
                s.status = MigrationStatus::Setup;
            }
        });
        self.incoming = Some(IncomingState {
            stats: m.stats,
            uri,
            tcp_addr: m.tcp_addr,
            cancel,
            recover,
            seen: MigrationStatus::None,
            events,
        });
        Ok(json!({}))
    }

    fn query_migrate(&self) -> Value {
        let mut m = Map::new();
        if let Some(i) = &self.incoming {
            let st = i.stats.snapshot().status;
            if st != MigrationStatus::None {
                m.insert("status".into(), json!(st.as_str()));
            }
            if st == MigrationStatus::Setup {
                let addr = match (&i.uri, i.tcp_addr) {
                    (MigrationUri::Unix(p), _) => {
                        Some(json!({"type": "unix", "path": p.to_string_lossy()}))
                    }
                    (_, Some(a)) => Some(
                        json!({"type": "inet", "host": a.ip().to_string(), "port": a.port().to_string()}),
                    ),
                    _ => None,
                };
                if let Some(a) = addr {
                    m.insert("socket-address".into(), json!([a]));
                }
            }
        }
        if let Some(s) = self.outgoing_stats() {
            if s.status != MigrationStatus::None {
                m = self.source_info(&s);
            }
        }
        Value::Object(m)
    }

    /// `query-migrate` of the source, member by member as QEMU 7.2 fills it
    /// for each status.
    fn source_info(&self, s: &MigrationStats) -> Map<String, Value> {
        use MigrationStatus::*;
        let mut m = Map::new();
        m.insert("status".into(), json!(s.status.as_str()));
        match s.status {
            Setup => {
                m.insert("total-time".into(), json!(ms(s.total_time)));
            }
            Failed => {
                if let Some(e) = &s.error {
                    m.insert("error-desc".into(), json!(e));
                }
            }
            Cancelled | None => {}
            Completed => {
                m.insert("total-time".into(), json!(ms(s.total_time)));
                m.insert("setup-time".into(), json!(ms(s.setup_time)));
                if let Some(d) = s.downtime {
                    m.insert("downtime".into(), json!(ms(d)));
                }
                self.ram_info(s, &mut m);
            }
            _ => {
                m.insert("total-time".into(), json!(ms(s.total_time)));
                m.insert("setup-time".into(), json!(ms(s.setup_time)));
                let expected = s
                    .expected_downtime
                    .map_or(self.settings.runtime_params().downtime_limit_ms, ms);
                m.insert("expected-downtime".into(), json!(expected));
                self.ram_info(s, &mut m);
            }
        }
        m
    }

    /// The "ram" member (and "xbzrle-cache" when the xbzrle counters exist).
    /// `transferred`, `remaining` and `total` are the stream's bytes (all
    /// sections); `skipped` and `multifd-bytes` are 0 as in QEMU without
    /// multifd.
    fn ram_info(&self, s: &MigrationStats, m: &mut Map<String, Value>) {
        let r = s.ram.unwrap_or_default();
        let page = if r.page_size == 0 { 4096 } else { r.page_size };
        let ram = json!({
            "transferred": s.transferred,
            "remaining": s.remaining,
            "total": s.total,
            "duplicate": r.duplicate,
            "skipped": 0,
            "normal": r.normal,
            "normal-bytes": r.normal_bytes,
            "dirty-pages-rate": r.dirty_pages_rate,
            "mbps": s.throughput_bps * 8.0 / 1e6,
            "dirty-sync-count": s.dirty_sync_count.max(r.dirty_sync_count),
            "postcopy-requests": r.postcopy_requests,
            "page-size": page,
            "multifd-bytes": 0,
            "pages-per-second": (s.throughput_bps / page as f64) as u64,
            "precopy-bytes": r.precopy_bytes,
            "downtime-bytes": r.downtime_bytes,
            "postcopy-bytes": r.postcopy_bytes,
            "dirty-sync-missed-zero-copy": 0,
        });
        m.insert("ram".into(), ram);
        if let Some(x) = r.xbzrle {
            m.insert(
                "xbzrle-cache".into(),
                json!({
                    "cache-size": x.cache_size,
                    "bytes": x.bytes,
                    "pages": x.pages,
                    "cache-miss": x.cache_miss,
                    "cache-miss-rate": x.cache_miss_rate,
                    "encoding-rate": x.encoding_rate,
                    "overflow": x.overflow,
                }),
            );
        }
    }

    fn set_capabilities(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let list = a.array("capabilities")?;
        let mut wanted = Vec::with_capacity(list.len().min(CAPABILITIES.len()));
        for (i, v) in list.iter().enumerate() {
            let mut e = Args::object(v, a.element_path("capabilities", i))?;
            let name = e.enumeration("capability", CAPABILITIES)?;
            let state = e.bool("state")?;
            e.finish()?;
            let name = CAPABILITIES
                .iter()
                .copied()
                .find(|c| *c == name)
                .unwrap_or("events");
            wanted.push((name, state));
        }
        a.finish()?;
        if self.running_handle().is_some()
            || self.incoming_status().is_running()
                && self.incoming_status() != MigrationStatus::Setup
        {
            return Err(busy());
        }
        let supported = self.supported_caps();
        for (name, state) in &wanted {
            if *state && !supported.contains(name) {
                return Err(QmpError::generic(format!(
                    "Capability '{name}' is not supported by this VMM (supported: {})",
                    supported.join(", ")
                )));
            }
        }
        for (name, state) in wanted {
            self.settings.capabilities.insert(name, state);
        }
        Ok(json!({}))
    }

    fn query_capabilities(&self) -> Value {
        Value::Array(
            CAPABILITIES
                .iter()
                .map(|c| json!({"capability": c, "state": self.settings.capability(c)}))
                .collect(),
        )
    }

    fn set_parameters(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let mut given = Vec::new();
        for p in PARAMETERS {
            if let Some(v) = p.kind.read(&mut a, p.name)? {
                given.push((p, v));
            }
        }
        a.finish()?;
        for (p, v) in &given {
            params::check_range(p.name, v)?;
        }
        let supported = self.supported_params();
        for (p, v) in &given {
            if !supported.contains(&p.name) && *v != p.default.to_value() {
                return Err(QmpError::generic(format!(
                    "Parameter '{}' is not supported by this VMM (supported: {})",
                    p.name,
                    supported.join(", ")
                )));
            }
        }
        for (p, v) in given {
            if p.kind != ParamKind::List {
                self.settings.parameters.insert(p.name, v);
            }
        }
        if let Some(h) = self.running_handle() {
            h.set_parameters(self.settings.runtime_params())
                .map_err(|e| QmpError::generic(e.to_string()))?;
        }
        Ok(json!({}))
    }

    fn query_parameters(&self) -> Value {
        let supported = self.supported_params();
        let mut m = Map::new();
        for p in PARAMETERS {
            if supported.contains(&p.name) {
                if let Some(v) = self.settings.parameters.get(p.name) {
                    m.insert(p.name.into(), v.clone());
                }
            }
        }
        Value::Object(m)
    }

    fn migrate_continue(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let names: Vec<&str> = MigrationStatus::ALL.iter().map(|s| s.as_str()).collect();
        let state = a.enumeration("state", &names)?;
        a.finish()?;
        let current = self.outgoing_stats().map(|s| s.status).unwrap_or_default();
        if current.as_str() != state {
            return Err(QmpError::generic(format!(
                "Migration not in expected state: {current}"
            )));
        }
        if let Some(h) = self.running_handle() {
            h.continue_switchover();
        }
        Ok(json!({}))
    }

    fn migrate_pause(&mut self) -> Result<Value, QmpError> {
        let out = self.outgoing_stats().map(|s| s.status);
        if out == Some(MigrationStatus::PostcopyActive) {
            if let Some(h) = self.running_handle() {
                if h.pause_postcopy() {
                    return Ok(json!({}));
                }
            }
        }
        if self.incoming_status() == MigrationStatus::PostcopyActive {
            return Err(QmpError::generic(
                "migrate-pause on the destination is not supported by this VMM: pause on the source",
            ));
        }
        Err(QmpError::generic(
            "migrate-pause is currently only supported during postcopy-active state",
        ))
    }

    fn migrate_recover(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let uri = a.str("uri")?;
        a.finish()?;
        if self.incoming_status() != MigrationStatus::PostcopyPaused {
            return Err(QmpError::generic(
                "Migrate recover can only be run when postcopy is paused.",
            ));
        }
        let uri = parse_uri(&uri)?;
        let Some(i) = &self.incoming else {
            return Err(QmpError::generic(
                "Migrate recover can only be run when postcopy is paused.",
            ));
        };
        let mut slot = i
            .recover
            .lock()
            .map_err(|_| QmpError::generic("recovery lock poisoned"))?;
        if slot.is_some() {
            return Err(QmpError::generic("Migrate recovery is triggered already"));
        }
        *slot = Some(Incoming::listen(&uri).map_err(|e| QmpError::generic(e.to_string()))?);
        Ok(json!({}))
    }

    fn start_postcopy(&mut self) -> Result<Value, QmpError> {
        if !self.settings.capability("postcopy-ram") {
            return Err(QmpError::generic(
                "Enable postcopy with migrate_set_capability before the start of migration",
            ));
        }
        match self.running_handle() {
            Some(h) => {
                h.start_postcopy();
                Ok(json!({}))
            }
            None => Err(QmpError::generic(
                "Postcopy must be started after migration has been started",
            )),
        }
    }
}
