//! The source driver (QEMU's migration thread): setup → active →
//! [pre-switchover] → device → completed, or active → postcopy-active
//! [→ postcopy-paused → postcopy-recover → postcopy-active] → completed.
//!
//! * this module: the caller's side ([`start_migration`], [`MigrationHandle`]);
//! * `driver`: the thread's run, from connect to the outcome (a failure leaves the
//!   VM running, a cancel at any point before the stream's EOF too);
//! * `convergence`: the iteration loop, measured per 100 ms window (`window`),
//!   rate limited, until what is left fits the downtime limit;
//! * `completion`: the precopy switchover (stop, END and FULL sections, EOF);
//! * `postcopy`: the postcopy switch, serving page requests, and recovery over a
//!   new connection;
//! * `return_path`: the thread reading the destination's messages;
//! * `options`: the write and reply timeouts, and the table of which state
//!   waits for what.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::params::{MigrationCapabilities, MigrationParameters};
use super::stats::StatsHandle;
use super::status::MigrationStatus;
use super::transport::{Connection, MigrationUri, ReadWrite};
use crate::error::{Error, ErrorKind, Result};
use crate::savevm::{QemuVersion, Registry, TargetPage, DEFAULT_MACHINE_TYPE};

mod completion;
mod convergence;
mod driver;
mod options;
mod postcopy;
mod return_path;
mod window;

use driver::Driver;
pub use options::{SourceOptions, DEFAULT_REPLY_TIMEOUT, DEFAULT_SOURCE_WRITE_TIMEOUT};
pub use return_path::{read_return_path, read_return_path_sized, MAX_QUEUED_PAGE_REQUESTS};

/// What the driver needs from the VMM: stop and restart the vCPUs.
pub trait VmControl: Send {
    /// Stops the guest (switchover).
    fn pause(&mut self) -> Result<()>;
    /// Restarts the guest (after a failed or cancelled migration).
    fn resume(&mut self) -> Result<()>;
}

/// Everything a migration needs to start: where to, and (all at QEMU's
/// defaults from [`new`](Self::new)) the machine type, dialect, parameters,
/// capabilities and target page, changed with the `with_*` setters.
///
/// The defaults match [`LoadOptions::default()`](crate::savevm::LoadOptions)
/// on the destination: the stream carries a configuration record for
/// [`DEFAULT_MACHINE_TYPE`](crate::savevm::DEFAULT_MACHINE_TYPE), which the
/// default destination expects.
///
/// ```
/// use vmstate_runtime::migration::{MigrationCapabilities, MigrationConfig};
/// use vmstate_runtime::savevm::{QemuVersion, DEFAULT_MACHINE_TYPE};
///
/// let c = MigrationConfig::new("unix:/run/vm.sock".parse()?);
/// assert_eq!((c.machine.as_str(), c.version), (DEFAULT_MACHINE_TYPE, QemuVersion::V7_2));
/// let c = c
///     .with_machine("pc-q35-7.2")
///     .with_caps(MigrationCapabilities::new().with_return_path(true));
/// assert!(c.caps.return_path);
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The guest's target page (x86's 4 KiB by default): the configuration
    /// record's page bits, the vmdesc `page_size` and what POSTCOPY_ADVISE
    /// announces.
    pub target_page: TargetPage,
}

impl MigrationConfig {
    /// A migration to `uri` with everything else at QEMU's defaults: machine
    /// type [`DEFAULT_MACHINE_TYPE`], [`QemuVersion::V7_2`], the default
    /// [`MigrationParameters`], no capabilities, x86's 4 KiB target page.
    pub fn new(uri: MigrationUri) -> Self {
        MigrationConfig {
            uri,
            machine: DEFAULT_MACHINE_TYPE.to_owned(),
            version: QemuVersion::default(),
            params: MigrationParameters::default(),
            caps: MigrationCapabilities::default(),
            target_page: TargetPage::default(),
        }
    }
}

with_setters!(MigrationConfig {
    with_uri => uri: [MigrationUri],
    with_machine => machine: into [String],
    with_version => version: [QemuVersion],
    with_params => params: [MigrationParameters],
    with_caps => caps: [MigrationCapabilities],
    with_target_page => target_page: [TargetPage],
});

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
    /// Why the migration is (or last was) postcopy-paused.
    paused_error: Mutex<Option<Arc<Error>>>,
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

    /// The migration's events from its start (see
    /// [`StatsHandle::subscribe`]; they flow with the `events` capability on).
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<super::MigrationEvent> {
        self.shared.stats.subscribe()
    }

    /// Blocks until the migration has reached `status`, at most `timeout`
    /// ([`StatsHandle::wait_for`]).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use vmstate_runtime::migration::{MigrationHandle, MigrationStatus};
    /// # fn f(handle: &MigrationHandle) -> vmstate_runtime::Result<()> {
    /// handle.wait_for(MigrationStatus::PreSwitchover, Duration::from_secs(60))?;
    /// handle.continue_switchover();
    /// # Ok(()) }
    /// ```
    pub fn wait_for(
        &self,
        status: MigrationStatus,
        timeout: std::time::Duration,
    ) -> Result<MigrationStatus> {
        self.shared.stats.wait_for(status, timeout)
    }

    /// Changes parameters while running (takes effect at the next window).
    pub fn set_parameters(&self, p: MigrationParameters) -> Result<()> {
        p.validate()?;
        *self
            .shared
            .params
            .lock()
            .map_err(|_| Error::poisoned("parameters lock poisoned"))? = p;
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

    /// Breaks the connection of a migration in postcopy-active, so that it
    /// goes to postcopy-paused (QMP `migrate-pause`; a later
    /// [`resume`](Self::resume) recovers it). Returns whether it was in
    /// postcopy-active (nothing happens otherwise).
    pub fn pause_postcopy(&self) -> bool {
        if self.shared.stats.snapshot().status != MigrationStatus::PostcopyActive {
            return false;
        }
        if let Ok(k) = self.shared.kill.lock() {
            if let Some(conn) = k.as_ref() {
                let _ = conn.shutdown();
                return true;
            }
        }
        false
    }

    /// Recovers a paused postcopy over a new connection (QMP `migrate` with
    /// `resume: true`).
    pub fn resume(&self, uri: MigrationUri) -> Result<()> {
        *self
            .shared
            .resume_uri
            .lock()
            .map_err(|_| Error::poisoned("resume lock poisoned"))? = Some(uri);
        Ok(())
    }

    /// Why the migration went to postcopy-paused the last time (the typed
    /// error behind the status's `error` text): the connection failing, the
    /// destination breaking the return path, or a recovery attempt failing.
    /// `None` before the first pause.
    pub fn paused_error(&self) -> Option<Arc<Error>> {
        self.shared.paused_error.lock().ok().and_then(|e| e.clone())
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
                Err(Error::new(ErrorKind::ThreadPanicked {
                    thread: "migration",
                })),
            ),
        }
    }
}

/// Starts an outgoing migration on its own thread, with the default
/// [`SourceOptions`]. The registry is moved into the thread for the duration
/// and handed back by [`MigrationHandle::wait`].
pub fn start_migration(
    config: MigrationConfig,
    registry: Registry,
    vm: Box<dyn VmControl>,
) -> Result<MigrationHandle> {
    start_migration_with(config, registry, vm, SourceOptions::default())
}

/// [`start_migration`] with the given timeouts (see [`SourceOptions`] for which
/// state waits for what).
pub fn start_migration_with(
    config: MigrationConfig,
    registry: Registry,
    vm: Box<dyn VmControl>,
    opts: SourceOptions,
) -> Result<MigrationHandle> {
    spawn(config, None, registry, vm, opts)
}

/// [`start_migration_with`] over a connection the caller already has (a
/// connected `UnixStream` or `TcpStream`, an `OwnedFd`, a reader/writer pair:
/// see [`Connection`]'s constructors) instead of connecting to `config.uri`,
/// which then only names the destination (in traces); nothing connects to it
/// and a failure removes no file. Postcopy recovery
/// ([`MigrationHandle::resume`]) connects to the URI it is given; to recover
/// over a descriptor of the caller's, give it as `fd:N`
/// ([`MigrationUri::Fd`], ownership passes with it).
///
/// ```no_run
/// use std::os::unix::net::UnixStream;
/// use vmstate_runtime::migration::{
///     start_migration_on, Connection, MigrationConfig, SourceOptions, VmControl,
/// };
/// # fn demo(config: MigrationConfig, vm: Box<dyn VmControl>) -> vmstate_runtime::Result<()> {
/// let stream = UnixStream::connect("/run/vmm/migrate.sock")?; // the VMM's own socket
/// let conn = Connection::from_unix_stream(stream)?;
/// let handle = start_migration_on(
///     conn,
///     config,
///     vmstate_runtime::savevm::Registry::new(),
///     vm,
///     SourceOptions::default(),
/// )?;
/// let (_registry, outcome) = handle.wait();
/// outcome
/// # }
/// ```
pub fn start_migration_on(
    conn: Connection,
    config: MigrationConfig,
    registry: Registry,
    vm: Box<dyn VmControl>,
    opts: SourceOptions,
) -> Result<MigrationHandle> {
    spawn(config, Some(conn), registry, vm, opts)
}

fn spawn(
    config: MigrationConfig,
    conn: Option<Connection>,
    registry: Registry,
    vm: Box<dyn VmControl>,
    opts: SourceOptions,
) -> Result<MigrationHandle> {
    config.params.validate()?;
    if config.caps.switchover_ack && config.version == QemuVersion::V7_2 {
        return Err(Error::new(ErrorKind::SwitchoverAckNeedsV10));
    }
    let shared = Arc::new(Shared {
        params: Mutex::new(config.params.clone()),
        cancel: AtomicBool::new(false),
        resume_from_pre_switchover: AtomicBool::new(false),
        postcopy_requested: AtomicBool::new(false),
        resume_uri: Mutex::new(None),
        kill: Mutex::new(None),
        paused_error: Mutex::new(None),
        stats: StatsHandle::default(),
    });
    shared.stats.set_events(config.caps.events);
    let s2 = shared.clone();
    let span = tracing::info_span!("migration", side = "source", uri = %config.uri);
    let thread = std::thread::Builder::new()
        .name("migration".into())
        .spawn(move || {
            let _span = span.entered();
            let mut registry = registry;
            let r = Driver::new(config, conn, opts, s2, vm).run(&mut registry);
            (registry, r)
        })?;
    Ok(MigrationHandle {
        shared,
        thread: Some(thread),
    })
}
