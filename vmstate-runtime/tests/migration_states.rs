//! The migration status machines, observed from outside through `StatsHandle`
//! snapshots, over real unix sockets: every source transition (setup, active,
//! pre-switchover, device, completed; cancelling/cancelled from each state where a
//! cancel can happen; failed from the source and from the destination via the
//! return path), parameters changed while running, and the destination's own
//! status.
//!
//! Transitions are made observable deterministically with *gates*: the synthetic
//! handlers stop at a known point (in `save_setup`, in the first
//! `save_live_iterate`, in a device's FULL `save_state`) until the test opens the
//! gate, so the status at that point is a fact, not a race. A watcher thread also
//! records every status it sees, to check that nothing unexpected happened in
//! between.

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationCapabilities, MigrationConfig,
    MigrationHandle, MigrationParameters, MigrationStats, MigrationStatus, MigrationUri,
    StatsHandle, MAX_DOWNTIME_LIMIT_MS,
};
use vmstate_runtime::savevm::{Configuration, LoadOptions, QemuVersion, Registry};
use vmstate_runtime::{ErrorKind, Result, VmState};

use MigrationStatus as S;

mod common;
use common::device::ObservedDevice;
use common::gate::{Gate, PATIENCE};
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::{Vm, VmLog};

const PAGE: usize = 4096;
const PAGES: usize = 64;
const MACHINE: &str = "pc-i440fx-7.2";

/// The content of source page `i`.
fn page_byte(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(7)
}

// ---------------------------------------------------------------------------
// Devices (FULL sections).

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
    regs: [u64; 4],
}

fn sample_cpu() -> Cpu {
    Cpu {
        rip: 0xfff0,
        regs: [1, 2, 3, 4],
    }
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "timer", version = 3)]
struct TimerV3 {
    ticks: u64,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "timer", version = 2)]
struct TimerV2 {
    ticks: u64,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "rtc", version = 1)]
struct Rtc {
    regs: [u8; 4],
}

#[derive(Debug)]
struct NicError(String);

impl std::fmt::Display for NicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NicError {}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "nic", version = 1, post_load = Nic::post_load)]
struct Nic {
    queue_sel: u16,
}

impl Nic {
    fn post_load(&mut self, _version_id: u32) -> std::result::Result<(), NicError> {
        if self.queue_sel >= 1024 {
            return Err(NicError(format!(
                "queue_sel {} out of range (max 1023)",
                self.queue_sel
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Source and destination set-ups.

/// Extra FULL sections beyond "cpu".
#[derive(Clone, Copy, PartialEq)]
enum Extra {
    /// "timer" v3 on the source, v2 on the destination.
    TimerTooNew,
    /// "rtc" on the source only.
    UnknownRtc,
    /// "nic" on both; the source's queue_sel fails the destination's post_load.
    NicBadQueue,
}

struct SourceOpts {
    version: QemuVersion,
    caps: MigrationCapabilities,
    params: MigrationParameters,
    burst: usize,
    filler: usize,
    setup_gate: Gate,
    iterate_gate: Gate,
    device_gate: Gate,
    fail_setup: bool,
    fail_iterate_at: Option<u32>,
    fail_pause: bool,
    extras: Vec<Extra>,
}

impl Default for SourceOpts {
    fn default() -> Self {
        SourceOpts {
            version: QemuVersion::V7_2,
            caps: MigrationCapabilities::default().with_return_path(true),
            params: MigrationParameters::default()
                .with_downtime_limit_ms(50)
                .with_max_bandwidth(0),
            burst: 8,
            filler: 0,
            setup_gate: Gate::opened(),
            iterate_gate: Gate::opened(),
            device_gate: Gate::opened(),
            fail_setup: false,
            fail_iterate_at: None,
            fail_pause: false,
            extras: Vec::new(),
        }
    }
}

impl SourceOpts {
    /// The defaults with the pause-before-switchover capability.
    fn pausing_before_switchover() -> Self {
        let mut o = SourceOpts::default();
        o.caps.pause_before_switchover = true;
        o
    }
}

struct Source {
    handle: MigrationHandle,
    stats: StatsHandle,
    vm: Arc<VmLog>,
    iterate_calls: Arc<AtomicU32>,
    watcher: Watcher,
}

impl Source {
    /// Waits for a handler at `gate`, checks the status there is `want`, and
    /// waits until the watcher has recorded it (the gate is still closed).
    fn at_gate(&self, gate: &Gate, want: MigrationStatus) {
        gate.wait_arrived(&want.to_string());
        assert_eq!(status(&self.stats), want);
        self.watcher.wait_seen(want);
    }

    /// [`at_gate`](Self::at_gate), then opens the gate.
    fn through_gate(&self, gate: &Gate, want: MigrationStatus) {
        self.at_gate(gate, want);
        gate.open();
    }
}

fn start_source(uri: MigrationUri, o: &SourceOpts) -> Source {
    let ram = SyntheticRam::new(SharedMemory::new(PAGES, PAGE, |i| vec![page_byte(i); PAGE]))
        .burst(o.burst)
        .start_filler(o.filler)
        .setup_gate(o.setup_gate.clone())
        .iterate_gate(o.iterate_gate.clone())
        .fail_setup(o.fail_setup)
        .fail_iterate_at(o.fail_iterate_at);
    let iterate_calls = ram.iterate_calls();
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 1, Box::new(ram))
        .unwrap();
    reg.register_savevm_live(
        "cpu",
        0,
        1,
        Box::new(
            // A device whose FULL `save_state` stops at a gate first.
            ObservedDevice::new(Arc::new(Mutex::new(sample_cpu()))).before_save({
                let gate = o.device_gate.clone();
                move || gate.pass()
            }),
        ),
    )
    .unwrap();
    for e in &o.extras {
        match e {
            Extra::TimerTooNew => {
                reg.vmstate_register(0, Arc::new(Mutex::new(TimerV3 { ticks: 9 })))
            }
            Extra::UnknownRtc => {
                reg.vmstate_register(0, Arc::new(Mutex::new(Rtc { regs: [1; 4] })))
            }
            Extra::NicBadQueue => {
                reg.vmstate_register(0, Arc::new(Mutex::new(Nic { queue_sel: 5000 })))
            }
        }
        .unwrap();
    }
    let vm = Arc::new(VmLog::default());
    vm.fail_pause(o.fail_pause);
    let handle = start_migration(
        MigrationConfig::new(uri)
            .with_machine(MACHINE)
            .with_version(o.version)
            .with_params(o.params.clone())
            .with_caps(o.caps),
        reg,
        Box::new(Vm(vm.clone())),
    )
    .unwrap();
    let stats = handle.stats();
    let watcher = Watcher::start(stats.clone());
    Source {
        handle,
        stats,
        vm,
        iterate_calls,
        watcher,
    }
}

struct Destination {
    stats: StatsHandle,
    thread: thread::JoinHandle<(Result<()>, Vec<Vec<u8>>, Cpu)>,
    watcher: Watcher,
}

/// Listens on a fresh unix socket and runs `run_incoming` on a thread.
fn start_destination(
    name: &str,
    version: QemuVersion,
    extras: &[Extra],
) -> (MigrationUri, Destination) {
    let uri = MigrationUri::Unix(sock(name));
    let incoming = Incoming::listen(&uri).unwrap();
    let stats = StatsHandle::default();
    let s2 = stats.clone();
    let extras = extras.to_vec();
    let thread = thread::spawn(move || {
        let pages = SharedMemory::zeroed(PAGES, PAGE);
        let cpu = Arc::new(Mutex::new(Cpu::default()));
        let mut reg = Registry::new();
        reg.register_savevm_live(
            "ram",
            0,
            1,
            Box::new(SyntheticRam::new(pages.clone()).start_filler(0)),
        )
        .unwrap();
        reg.vmstate_register(0, cpu.clone()).unwrap();
        for e in extras {
            match e {
                Extra::TimerTooNew => {
                    reg.vmstate_register(0, Arc::new(Mutex::new(TimerV2::default())))
                }
                Extra::UnknownRtc => continue,
                Extra::NicBadQueue => reg.vmstate_register(0, Arc::new(Mutex::new(Nic::default()))),
            }
            .unwrap();
        }
        let r = run_incoming(
            incoming,
            &mut reg,
            LoadOptions::default()
                .with_version(version)
                .with_configuration(Configuration::new(MACHINE)),
            &s2,
        );
        let pages = pages.pages();
        let cpu = cpu.lock().unwrap().clone();
        (r, pages, cpu)
    });
    let watcher = Watcher::start(stats.clone());
    (
        uri,
        Destination {
            stats,
            thread,
            watcher,
        },
    )
}

fn sock(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vmstate-states-{}-{name}.sock", std::process::id()))
}

// ---------------------------------------------------------------------------
// Observation helpers.

/// Records every distinct status a `StatsHandle` shows, until a terminal one.
struct Watcher {
    seen: Arc<Mutex<Vec<MigrationStatus>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(stats: StatsHandle) -> Watcher {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + 3 * PATIENCE;
            let mut last = None;
            while Instant::now() < deadline {
                let st = stats.snapshot().status;
                if last != Some(st) {
                    last = Some(st);
                    s2.lock().unwrap().push(st);
                }
                if st.is_terminal() {
                    return;
                }
                thread::sleep(Duration::from_micros(50));
            }
        });
        Watcher {
            seen,
            thread: Some(thread),
        }
    }

    /// Waits until the watcher has recorded `want` as the current status (so a
    /// status held by a gate is in the log before the gate opens).
    fn wait_seen(&self, want: MigrationStatus) {
        let deadline = Instant::now() + PATIENCE;
        while self.seen.lock().unwrap().last() != Some(&want) {
            assert!(
                Instant::now() < deadline,
                "watcher never saw {want}: {:?}",
                self.seen.lock().unwrap()
            );
            thread::sleep(Duration::from_micros(100));
        }
    }

    /// The statuses seen, once a terminal one was reached; a leading `none`
    /// (before the driver started) is dropped.
    fn finish(mut self) -> Vec<MigrationStatus> {
        self.thread.take().unwrap().join().unwrap();
        let mut v = self.seen.lock().unwrap().clone();
        if v.first() == Some(&S::None) {
            v.remove(0);
        }
        v
    }
}

/// Every observed step is a transition the status machine allows, possibly
/// through states the poller did not catch (a state left without waiting for
/// anything, such as `cancelling` when the VM was not stopped, lasts
/// nanoseconds).
fn assert_valid_path(path: &[MigrationStatus]) {
    const ALL: [MigrationStatus; 14] = [
        S::None,
        S::Setup,
        S::Cancelling,
        S::Cancelled,
        S::Active,
        S::PostcopyActive,
        S::PostcopyPaused,
        S::PostcopyRecover,
        S::Completed,
        S::Failed,
        S::Colo,
        S::PreSwitchover,
        S::Device,
        S::WaitUnplug,
    ];
    let reachable = |from: MigrationStatus, to: MigrationStatus| {
        let mut seen = vec![from];
        let mut i = 0;
        while i < seen.len() {
            let at = seen[i];
            i += 1;
            for next in ALL {
                if at.can_become(next) && !seen.contains(&next) {
                    if next == to {
                        return true;
                    }
                    // Restarting (terminal -> setup) is not a skipped step.
                    if !next.is_terminal() {
                        seen.push(next);
                    }
                }
            }
        }
        false
    };
    for w in path.windows(2) {
        assert!(
            reachable(w[0], w[1]),
            "{} -> {} in observed path {path:?}",
            w[0],
            w[1]
        );
    }
}

fn wait_for(stats: &StatsHandle, want: MigrationStatus) -> MigrationStats {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = stats.snapshot();
        if s.status == want {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "status never became {want}: {s:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn status(stats: &StatsHandle) -> MigrationStatus {
    stats.snapshot().status
}

fn expected_pages() -> Vec<Vec<u8>> {
    (0..PAGES).map(|i| vec![page_byte(i); PAGE]).collect()
}

// ---------------------------------------------------------------------------
// Successful paths.

#[test]
fn precopy_goes_setup_active_device_completed_on_both_sides() {
    assert_eq!(StatsHandle::default().snapshot().status, S::None);
    let (uri, dst) = start_destination("path", QemuVersion::V10, &[]);
    // The destination waits in accept: setup.
    dst.watcher.wait_seen(S::Setup);
    let o = SourceOpts {
        version: QemuVersion::V10,
        setup_gate: Gate::closed(),
        iterate_gate: Gate::closed(),
        device_gate: Gate::closed(),
        ..Default::default()
    };
    let src = start_source(uri, &o);

    src.at_gate(&o.setup_gate, S::Setup);
    // The source connected: the destination accepted and is loading.
    dst.watcher.wait_seen(S::Active);
    o.setup_gate.open();

    src.at_gate(&o.iterate_gate, S::Active);
    assert!(
        src.vm.running() && src.vm.pauses() == 0,
        "VM runs in active"
    );
    o.iterate_gate.open();

    src.at_gate(&o.device_gate, S::Device);
    assert!(!src.vm.running(), "VM is stopped while devices are saved");
    assert_eq!(status(&dst.stats), S::Active);
    o.device_gate.open();

    let (_reg, r) = src.handle.wait();
    r.unwrap();
    let s = src.stats.snapshot();
    assert_eq!(s.status, S::Completed);
    assert!(s.downtime.is_some() && s.error.is_none(), "{s:?}");
    assert_eq!(src.vm.pauses(), 1);
    assert_eq!(
        src.vm.resumes(),
        0,
        "the source stays stopped after success"
    );
    assert_eq!(
        src.watcher.finish(),
        [S::Setup, S::Active, S::Device, S::Completed]
    );

    let (r, pages, cpu) = dst.thread.join().unwrap();
    r.unwrap();
    assert_eq!(dst.watcher.finish(), [S::Setup, S::Active, S::Completed]);
    let d = dst.stats.snapshot();
    assert_eq!(d.status, S::Completed);
    assert!(d.error.is_none());
    assert_eq!(
        d.transferred, s.transferred,
        "both sides count the same bytes"
    );
    assert!(pages == expected_pages());
    assert_eq!(cpu, sample_cpu());
}

#[test]
fn qemu_7_2_precopy_completes_through_a_valid_path() {
    let (uri, dst) = start_destination("path72", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        setup_gate: Gate::closed(),
        iterate_gate: Gate::closed(),
        ..Default::default()
    };
    let src = start_source(uri, &o);
    src.through_gate(&o.setup_gate, S::Setup);
    src.through_gate(&o.iterate_gate, S::Active);
    src.handle.wait().1.unwrap();
    let path = src.watcher.finish();
    assert_valid_path(&path);
    assert_eq!(path[..2], [S::Setup, S::Active]);
    assert_eq!(path.last(), Some(&S::Completed));
    assert!(!path.contains(&S::PreSwitchover), "{path:?}");
    dst.thread.join().unwrap().0.unwrap();
}

/// QEMU 7.2 (`migration_completion`): without pause-before-switchover the state
/// stays `active` while the VM is stopped and the devices are saved, then goes
/// straight to `completed`; `device` is only entered after `pre-switchover`
/// (QEMU 8.x+ always enters `device`). The driver enters `device` for both
/// dialects.
#[test]
fn qemu_7_2_source_stays_active_while_saving_devices() {
    let (uri, dst) = start_destination("nodevice72", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        device_gate: Gate::closed(),
        ..Default::default()
    };
    let src = start_source(uri, &o);
    o.device_gate.wait_arrived("device");
    let st = status(&src.stats);
    o.device_gate.open();
    src.handle.wait().1.unwrap();
    dst.thread.join().unwrap().0.unwrap();
    assert_eq!(
        st,
        S::Active,
        "QEMU 7.2 reports 'active' during stop-and-copy"
    );
    assert!(!src.watcher.finish().contains(&S::Device));
}

#[test]
fn pause_before_switchover_waits_in_pre_switchover_until_continue() {
    let (uri, dst) = start_destination("preswitch", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        setup_gate: Gate::closed(),
        iterate_gate: Gate::closed(),
        device_gate: Gate::closed(),
        ..SourceOpts::pausing_before_switchover()
    };
    let src = start_source(uri, &o);
    src.through_gate(&o.setup_gate, S::Setup);
    src.through_gate(&o.iterate_gate, S::Active);

    wait_for(&src.stats, S::PreSwitchover);
    src.watcher.wait_seen(S::PreSwitchover);
    // It stays there: nothing moves until migrate-continue.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(status(&src.stats), S::PreSwitchover);
    assert_eq!(status(&dst.stats), S::Active);
    src.handle.continue_switchover();

    src.at_gate(&o.device_gate, S::Device);
    assert!(!src.vm.running());
    o.device_gate.open();
    src.handle.wait().1.unwrap();
    assert_eq!(
        src.watcher.finish(),
        [
            S::Setup,
            S::Active,
            S::PreSwitchover,
            S::Device,
            S::Completed
        ]
    );
    assert_eq!(src.vm.pauses(), 1);
    let (r, pages, cpu) = dst.thread.join().unwrap();
    r.unwrap();
    assert!(pages == expected_pages());
    assert_eq!(cpu, sample_cpu());
}

/// QEMU stops the VM (`vm_stop_force_state(RUN_STATE_FINISH_MIGRATE)`) *before*
/// `migration_maybe_pause` enters `pre-switchover`: the capability exists so that
/// management can act (e.g. finish block jobs) while the guest cannot write. The
/// driver only pauses the VM after leaving pre-switchover.
#[test]
fn vm_is_stopped_in_pre_switchover() {
    let (uri, dst) = start_destination("preswitch-vm", QemuVersion::V7_2, &[]);
    let o = SourceOpts::pausing_before_switchover();
    let src = start_source(uri, &o);
    wait_for(&src.stats, S::PreSwitchover);
    let paused_in_pre_switchover = !src.vm.running();
    src.handle.continue_switchover();
    src.handle.wait().1.unwrap();
    dst.thread.join().unwrap().0.unwrap();
    assert!(
        paused_in_pre_switchover,
        "VM must be stopped in pre-switchover"
    );
    assert_eq!(src.vm.pauses(), 1);
}

// ---------------------------------------------------------------------------
// Cancel.

/// After a cancel: cancelled, the error says so, and the VM ran throughout.
fn assert_cancelled(src: Source, must_have_seen: MigrationStatus) -> Vec<MigrationStatus> {
    let (_reg, r) = src.handle.wait();
    let e = r.unwrap_err();
    assert!(e.to_string().contains("cancelled"), "{e}");
    let s = src.stats.snapshot();
    assert_eq!(s.status, S::Cancelled);
    assert!(src.vm.running());
    assert_eq!(
        (src.vm.pauses(), src.vm.resumes()),
        (0, 0),
        "VM never paused nor resumed"
    );
    let path = src.watcher.finish();
    assert_valid_path(&path);
    assert!(path.contains(&must_have_seen), "{path:?}");
    assert_eq!(path.last(), Some(&S::Cancelled));
    assert!(!path.contains(&S::Device) && !path.contains(&S::Completed));
    // `cancelling` is left immediately when the VM was not stopped, so a poller
    // may or may not catch it; if it did, it came right before `cancelled`.
    if let Some(i) = path.iter().position(|s| *s == S::Cancelling) {
        assert_eq!(i + 2, path.len(), "{path:?}");
    }
    path
}

/// The destination of a cancelled or failed source: the stream just stops.
fn assert_destination_saw_a_cut(dst: Destination) {
    let (r, _, _) = dst.thread.join().unwrap();
    let e = r.unwrap_err();
    assert!(e.offset().is_some(), "{e}");
    let d = dst.stats.snapshot();
    assert_eq!(d.status, S::Failed);
    let msg = d.error.unwrap();
    assert!(
        msg.contains("stream ended") || msg.contains("i/o error"),
        "{msg}"
    );
    let path = dst.watcher.finish();
    assert_eq!(path.last(), Some(&S::Failed), "{path:?}");
    assert_valid_path(&path);
}

/// The gates of the synthetic handlers a test can stop the source at.
#[derive(Clone, Copy)]
enum Stop {
    /// In `save_setup`.
    Setup,
    /// In the first `save_live_iterate`.
    FirstIterate,
}

/// Cancels while the source stands at gate `stop` (where the status is `at`),
/// then opens it: the migration ends cancelled after `rounds` iterate calls
/// (none after the cancel), and the destination sees the connection cut.
fn cancel_at_gate(name: &str, stop: Stop, at: MigrationStatus, rounds: u32) {
    let o = SourceOpts {
        setup_gate: Gate::new(!matches!(stop, Stop::Setup)),
        iterate_gate: Gate::new(!matches!(stop, Stop::FirstIterate)),
        ..Default::default()
    };
    let gate = |o: &SourceOpts| match stop {
        Stop::Setup => o.setup_gate.clone(),
        Stop::FirstIterate => o.iterate_gate.clone(),
    };
    let (uri, dst) = start_destination(name, QemuVersion::V7_2, &[]);
    let src = start_source(uri, &o);
    src.at_gate(&gate(&o), at);
    src.handle.cancel();
    gate(&o).open();
    let calls = src.iterate_calls.clone();
    assert_cancelled(src, at);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        rounds,
        "no round after the cancel"
    );
    assert_destination_saw_a_cut(dst);
}

#[test]
fn cancel_during_setup() {
    cancel_at_gate("cancel-setup", Stop::Setup, S::Setup, 0);
}

#[test]
fn cancel_immediately_after_start() {
    let (uri, dst) = start_destination("cancel-now", QemuVersion::V7_2, &[]);
    // 64 KiB/s for 256 KiB of pages: the migration cannot finish before the
    // cancel is seen.
    let mut o = SourceOpts::default();
    o.params.max_bandwidth = 64 * 1024;
    let src = start_source(uri, &o);
    src.handle.cancel();
    assert_cancelled(src, S::Cancelled);
    assert_destination_saw_a_cut(dst);
}

#[test]
fn cancel_while_active() {
    cancel_at_gate("cancel-active", Stop::FirstIterate, S::Active, 1);
}

#[test]
fn cancel_in_pre_switchover() {
    let (uri, dst) = start_destination("cancel-pre", QemuVersion::V7_2, &[]);
    let o = SourceOpts::pausing_before_switchover();
    let src = start_source(uri, &o);
    wait_for(&src.stats, S::PreSwitchover);
    src.handle.cancel();
    let (_reg, r) = src.handle.wait();
    assert!(r.unwrap_err().to_string().contains("cancelled"));
    assert_eq!(status(&src.stats), S::Cancelled);
    // Whether or not the VM is stopped in pre-switchover (see
    // `vm_is_stopped_in_pre_switchover`), it runs again after the cancel.
    assert!(src.vm.running());
    assert_eq!(src.vm.pauses(), src.vm.resumes());
    // (`wait_for` above saw pre-switchover; the sampling watcher may not have,
    // since cancel() publishes "cancelling" at once.)
    let path = src.watcher.finish();
    assert_valid_path(&path);
    assert_eq!(path.last(), Some(&S::Cancelled));
    assert!(!path.contains(&S::Device));
    assert_destination_saw_a_cut(dst);
}

/// QEMU's `migrate_cancel` moves the state to `cancelling` synchronously
/// (`migrate_fd_cancel`), so `query-migrate` right after it says so and the
/// migration thread's later `setup -> active` cmpxchg fails. Here `cancel()`
/// only sets a flag: the status keeps saying `setup`/`active` until the driver
/// next polls it, and a cancel during setup still passes through `active`.
#[test]
fn cancel_reports_cancelling_at_once() {
    let (uri, dst) = start_destination("cancel-status", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        setup_gate: Gate::closed(),
        ..Default::default()
    };
    let src = start_source(uri, &o);
    o.setup_gate.wait_arrived("setup");
    src.handle.cancel();
    let right_after = status(&src.stats);
    o.setup_gate.open();
    let _ = src.handle.wait();
    let path = src.watcher.finish();
    let _ = dst.thread.join();
    assert_eq!(right_after, S::Cancelling);
    assert!(!path.contains(&S::Active), "{path:?}");
}

/// A destination that accepts and never reads: the source blocks in a socket
/// write during setup. QEMU's cancel shuts the channel down
/// (`qemu_file_shutdown`) so the blocked write fails and the state becomes
/// `cancelled`; here `cancel()` only sets a flag that the blocked thread never
/// looks at.
#[test]
fn cancel_unblocks_a_source_stuck_writing_to_a_stalled_destination() {
    let path = sock("stalled");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel::<UnixStream>();
    thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        tx.send(s).unwrap();
    });
    // 32 MiB in the START section: far more than a socket buffer holds.
    let o = SourceOpts {
        filler: 32 << 20,
        ..Default::default()
    };
    let src = start_source(MigrationUri::Unix(path), &o);
    let held = rx.recv_timeout(PATIENCE).unwrap();
    wait_for(&src.stats, S::Setup);
    thread::sleep(Duration::from_millis(200)); // now blocked in write()
    src.handle.cancel();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !status(&src.stats).is_terminal() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let after_cancel = status(&src.stats);
    // Unblock the source whatever happened, so the thread ends.
    let _ = held.shutdown(std::net::Shutdown::Both);
    drop(held);
    let _ = src.handle.wait();
    let final_status = status(&src.stats);
    assert_eq!(
        after_cancel,
        S::Cancelled,
        "3 s after cancel(); once the destination went away it ended {final_status}"
    );
    assert_eq!(final_status, S::Cancelled);
}

// ---------------------------------------------------------------------------
// Failures on the source side: failed, VM running, the error in the stats.

fn assert_source_failed(src: Source, needles: &[&str]) -> (MigrationStats, Vec<MigrationStatus>) {
    let (_reg, r) = src.handle.wait();
    let e = r.unwrap_err();
    let s = src.stats.snapshot();
    assert_eq!(s.status, S::Failed);
    let msg = s.error.clone().expect("error text in the stats");
    assert_eq!(msg, e.to_string());
    for n in needles {
        assert!(msg.contains(n), "expected '{n}' in: {msg}");
    }
    assert!(src.vm.running(), "VM runs after a failure");
    assert_eq!(src.vm.pauses(), src.vm.resumes());
    let path = src.watcher.finish();
    assert_valid_path(&path);
    assert_eq!(path.last(), Some(&S::Failed));
    (s, path)
}

#[test]
fn save_setup_error_fails_from_setup() {
    let (uri, dst) = start_destination("fail-setup", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        setup_gate: Gate::closed(),
        fail_setup: true,
        ..Default::default()
    };
    let src = start_source(uri, &o);
    src.through_gate(&o.setup_gate, S::Setup);
    let (_, path) = assert_source_failed(
        src,
        &[
            "section 'ram' instance 0 (id 1)",
            "cannot allocate the dirty bitmap",
        ],
    );
    assert_eq!(path, [S::Setup, S::Failed]);
    assert_destination_saw_a_cut(dst);
}

#[test]
fn save_live_iterate_error_fails_from_active() {
    let (uri, dst) = start_destination("fail-iter", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        iterate_gate: Gate::closed(),
        burst: 1,
        fail_iterate_at: Some(3),
        ..Default::default()
    };
    let src = start_source(uri, &o);
    src.through_gate(&o.iterate_gate, S::Active);
    let vm = src.vm.clone();
    let (_, path) = assert_source_failed(
        src,
        &[
            "section 'ram' instance 0 (id 1)",
            "dirty log sync failed in round 3",
        ],
    );
    assert!(path.contains(&S::Active));
    assert!(!path.contains(&S::Device));
    assert_eq!(vm.pauses(), 0, "never reached switchover");
    assert_destination_saw_a_cut(dst);
}

#[test]
fn vm_pause_failure_fails_and_leaves_the_vm_running() {
    let (uri, dst) = start_destination("fail-pause", QemuVersion::V7_2, &[]);
    let o = SourceOpts {
        fail_pause: true,
        ..Default::default()
    };
    let src = start_source(uri, &o);
    let vm = src.vm.clone();
    let (_, path) = assert_source_failed(src, &["vcpu 0 refused to stop"]);
    assert!(!path.contains(&S::Device), "{path:?}");
    assert_eq!((vm.pauses(), vm.resumes()), (0, 0));
    assert_destination_saw_a_cut(dst);
}

// ---------------------------------------------------------------------------
// Failures on the destination side: reported on the return path with SHUT(1);
// the source fails and resumes its VM. The destination's own status names the
// section and field.

fn destination_failure(name: &str, extra: Extra) -> (String, u64) {
    let (uri, dst) = start_destination(name, QemuVersion::V7_2, &[extra]);
    let o = SourceOpts {
        extras: vec![extra],
        ..Default::default()
    };
    let src = start_source(uri, &o);
    let vm = src.vm.clone();
    // QEMU 7.2 stays "active" while saving devices (no "device" state); that the
    // failure came after the switchover shows in the one pause below.
    let (_, path) = assert_source_failed(src, &["destination failed to load the stream"]);
    assert!(
        !path.contains(&S::Device),
        "7.2 has no device state here: {path:?}"
    );
    assert_eq!(
        (vm.pauses(), vm.resumes()),
        (1, 1),
        "VM stopped, then resumed"
    );

    let (r, _, _) = dst.thread.join().unwrap();
    let e = r.unwrap_err();
    let d = dst.stats.snapshot();
    assert_eq!(d.status, S::Failed);
    assert_eq!(d.error.as_deref(), Some(e.to_string().as_str()));
    let path = dst.watcher.finish();
    assert_valid_path(&path);
    assert_eq!(path.last(), Some(&S::Failed), "{path:?}");
    (
        e.to_string(),
        e.offset().expect("destination error has an offset"),
    )
}

#[test]
fn destination_unknown_section_fails_the_source_via_return_path() {
    let (msg, _) = destination_failure("dst-unknown", Extra::UnknownRtc);
    assert!(
        msg.contains("unknown savevm section or instance 'rtc' 0"),
        "{msg}"
    );
}

#[test]
fn destination_version_too_new_fails_the_source_via_return_path() {
    let (msg, _) = destination_failure("dst-version", Extra::TimerTooNew);
    assert!(msg.contains("section 'timer' instance 0"), "{msg}");
    assert!(
        msg.contains("incoming version 3 is too new (this side supports up to 2)"),
        "{msg}"
    );
}

#[test]
fn destination_post_load_failure_fails_the_source_via_return_path() {
    let (msg, _) = destination_failure("dst-postload", Extra::NicBadQueue);
    assert!(msg.contains("section 'nic' instance 0"), "{msg}");
    assert!(msg.contains("post_load"), "{msg}");
    assert!(msg.contains("queue_sel 5000 out of range"), "{msg}");
}

// ---------------------------------------------------------------------------
// Parameters.

#[test]
fn raising_max_bandwidth_while_running_lets_it_complete() {
    let (uri, dst) = start_destination("bw", QemuVersion::V7_2, &[]);
    // 10 kB/s: 1000 bytes per 100 ms window, i.e. one page per window at best;
    // the 256 KiB of pages would take half a minute.
    let mut o = SourceOpts {
        burst: 1,
        ..Default::default()
    };
    o.params.max_bandwidth = 10_000;
    let src = start_source(uri, &o);
    wait_for(&src.stats, S::Active);
    thread::sleep(Duration::from_millis(300));
    let s = src.stats.snapshot();
    assert_eq!(s.status, S::Active, "still crawling: {s:?}");
    assert!(s.transferred < 64 * 1024, "the cap holds: {s:?}");

    // An invalid change is refused and changes nothing.
    let bad = o
        .params
        .clone()
        .with_downtime_limit_ms(MAX_DOWNTIME_LIMIT_MS + 1);
    let e = src.handle.set_parameters(bad).unwrap_err();
    assert!(e.to_string().contains("downtime-limit"), "{e}");
    assert_eq!(status(&src.stats), S::Active);

    let lifted = Instant::now();
    src.handle
        .set_parameters(o.params.clone().with_max_bandwidth(0))
        .unwrap();
    src.handle.wait().1.unwrap();
    assert!(
        lifted.elapsed() < Duration::from_secs(5),
        "completed {:?} after lifting the cap",
        lifted.elapsed()
    );
    let s = src.stats.snapshot();
    assert_eq!(s.status, S::Completed);
    assert!(s.transferred > (PAGES * PAGE) as u64);
    let (r, pages, _) = dst.thread.join().unwrap();
    r.unwrap();
    assert!(pages == expected_pages());
}

#[test]
fn raising_downtime_limit_while_running_switches_over_early() {
    let (uri, dst) = start_destination("downtime", QemuVersion::V7_2, &[]);
    let mut o = SourceOpts {
        burst: 1,
        ..Default::default()
    };
    o.params.max_bandwidth = 100_000; // ~10 kB per window
    o.params.downtime_limit_ms = 1;
    let src = start_source(uri, &o);
    wait_for(&src.stats, S::Active);
    // Let at least one 100 ms window measure the bandwidth.
    thread::sleep(Duration::from_millis(250));
    let before = src.stats.snapshot();
    assert_eq!(before.status, S::Active);
    assert!(before.remaining > 0, "{before:?}");
    src.handle
        .set_parameters(
            o.params
                .clone()
                .with_downtime_limit_ms(MAX_DOWNTIME_LIMIT_MS),
        )
        .unwrap();
    src.handle.wait().1.unwrap();
    let s = src.stats.snapshot();
    assert_eq!(s.status, S::Completed);
    // The rest went in the END section at stop-and-copy, not page by page.
    assert!(
        s.iterations < PAGES as u64,
        "switched over with pages left: {s:?}"
    );
    let (r, pages, _) = dst.thread.join().unwrap();
    r.unwrap();
    assert!(pages == expected_pages());
}

#[test]
fn downtime_limit_above_2_000_000_ms_is_rejected() {
    let ok = MigrationParameters::default().with_downtime_limit_ms(2_000_000);
    ok.validate().unwrap();
    let bad = MigrationParameters::default().with_downtime_limit_ms(2_000_001);
    let e = bad.validate().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("downtime-limit") && msg.contains("2000001") && msg.contains("2000000"),
        "{msg}"
    );
    // start_migration refuses it before connecting anywhere.
    let e = start_migration(
        MigrationConfig::new(MigrationUri::Unix(sock("never-listened")))
            .with_machine(MACHINE)
            .with_params(bad),
        Registry::new(),
        Box::new(Vm(Arc::new(VmLog::default()))),
    )
    .unwrap_err();
    assert!(e.to_string().contains("downtime-limit"), "{e}");
}

// ---------------------------------------------------------------------------
// Destination status on its own.

#[test]
fn destination_status_setup_until_connected_then_failed_on_garbage() {
    let (uri, dst) = start_destination("dst-garbage", QemuVersion::V7_2, &[]);
    dst.watcher.wait_seen(S::Setup);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(status(&dst.stats), S::Setup, "waits in accept");
    let MigrationUri::Unix(path) = uri else {
        unreachable!()
    };
    let mut c = UnixStream::connect(path).unwrap();
    // Accepted, now blocked reading the header: active.
    dst.watcher.wait_seen(S::Active);
    use std::io::Write;
    c.write_all(b"QEVM\0\0\0\x02").unwrap();
    drop(c);
    let (r, _, _) = dst.thread.join().unwrap();
    let e = r.unwrap_err();
    let d = dst.stats.snapshot();
    assert_eq!(d.status, S::Failed);
    let msg = d.error.unwrap();
    assert!(
        msg.contains("stream version 2 is obsolete") && msg.contains("offset 4"),
        "{msg}"
    );
    assert_eq!(e.offset(), Some(4));
    assert_eq!(dst.watcher.finish(), [S::Setup, S::Active, S::Failed]);
}

/// Cancel while the devices are being saved (VM stopped, "device"): the
/// connection is shut down before EOF, the destination fails, and the source VM
/// runs again.
#[test]
fn cancel_in_device_resumes_the_vm_and_the_destination_never_completes() {
    let (uri, dst) = start_destination("cancel-device", QemuVersion::V10, &[]);
    let o = SourceOpts {
        version: QemuVersion::V10,
        device_gate: Gate::closed(),
        ..Default::default()
    };
    let src = start_source(uri, &o);
    src.at_gate(&o.device_gate, S::Device);
    assert!(!src.vm.running(), "VM is stopped while devices are saved");
    src.handle.cancel();
    assert_eq!(status(&src.stats), S::Cancelling, "published at once");
    o.device_gate.open();
    let (_reg, r) = src.handle.wait();
    assert!(r.unwrap_err().to_string().contains("cancelled"));
    assert_eq!(status(&src.stats), S::Cancelled);
    assert!(src.vm.running(), "VM runs again after the cancel");
    assert_eq!(src.vm.pauses(), src.vm.resumes());
    assert_destination_saw_a_cut(dst);
}
