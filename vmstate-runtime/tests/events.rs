//! Migration events (QMP `MIGRATION` / `MIGRATION_PASS`) end to end: the
//! exact sequences of precopy (with a pre-switchover pause, driven by
//! `wait_for`), postcopy, a cancel and a failure, on the source and the
//! destination; the `events` capability gating them.
// Config structs are built as `default()` plus fields: they are (or will be)
// `#[non_exhaustive]`, where struct literals do not compile.
#![allow(clippy::field_reassign_with_default)]

mod common;
use common::net::cutting_proxy;
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::Vm;

use std::os::unix::net::UnixStream;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming_with, start_migration, start_migration_on, Connection, Incoming, IncomingHooks,
    MigrationCapabilities, MigrationConfig, MigrationEvent, MigrationHandle, MigrationStatus,
    MigrationUri, SourceOptions, StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, InstanceId, LoadOptions, QemuVersion, Registry};
use vmstate_runtime::{ErrorKind, Result, VmState};

use MigrationEvent::{Pass, Status};
use MigrationStatus::*;

const PAGES: usize = 128;
const PAGE: usize = 4096;
const BLOCK: &str = "pc.ram";
const MACHINE: &str = "pc-i440fx-7.2";

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
}

fn ram(mem: &SharedMemory) -> SyntheticRam {
    SyntheticRam::new(mem.clone()).postcopy(BLOCK).version(4)
}

fn source_registry() -> Registry {
    let mem = SharedMemory::new(PAGES, PAGE, |i| vec![i as u8; PAGE]);
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 4, Box::new(ram(&mem).burst(8)))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu { rip: 7 })))
        .unwrap();
    reg
}

fn config(caps: MigrationCapabilities, max_bandwidth: u64) -> MigrationConfig {
    let mut c = MigrationConfig::new(MigrationUri::Unix("/nonexistent/events".into()))
        .with_machine(MACHINE)
        .with_version(QemuVersion::V7_2)
        .with_caps(caps);
    c.params.downtime_limit_ms = 20;
    c.params.max_bandwidth = max_bandwidth;
    c
}

fn caps() -> MigrationCapabilities {
    let mut c = MigrationCapabilities::default();
    c.events = true;
    c.return_path = true;
    c
}

/// A destination on its own thread with `events` as its capability, loading
/// for `machine`; its statistics were subscribed to before it started.
struct Destination {
    events: Receiver<MigrationEvent>,
    stats: StatsHandle,
    thread: thread::JoinHandle<Result<()>>,
}

fn destination(conn: Connection, events: bool, machine: &str) -> Destination {
    let stats = StatsHandle::with_events(events);
    let rx = stats.subscribe();
    let s = stats.clone();
    let machine = machine.to_string();
    let thread = thread::spawn(move || {
        let mem = SharedMemory::zeroed(PAGES, PAGE);
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 4, Box::new(ram(&mem)))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu::default())))
            .unwrap();
        let mut opts = LoadOptions::default();
        opts.version = QemuVersion::V7_2;
        opts.configuration = Some(Configuration::new(&machine));
        opts.idle_timeout = Some(Duration::from_secs(20));
        let mut hooks = IncomingHooks::default();
        hooks.on_postcopy_run = Some(Box::new(|| Ok(())));
        run_incoming_with(Incoming::from_connection(conn), &mut reg, opts, &s, hooks)
    });
    Destination {
        events: rx,
        stats,
        thread,
    }
}

/// A source and a destination over a socketpair.
fn start(
    caps: MigrationCapabilities,
    max_bandwidth: u64,
    dst_events: bool,
    dst_machine: &str,
) -> (MigrationHandle, Destination) {
    let (a, b) = UnixStream::pair().unwrap();
    let dst = destination(
        Connection::from_unix_stream(b).unwrap(),
        dst_events,
        dst_machine,
    );
    let handle = start_migration_on(
        Connection::from_unix_stream(a).unwrap(),
        config(caps, max_bandwidth),
        source_registry(),
        Box::new(Vm::default()),
        SourceOptions::default(),
    )
    .unwrap();
    (handle, dst)
}

/// All events of a subscription (it ends with the migration).
fn collect(rx: &Receiver<MigrationEvent>) -> Vec<MigrationEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.recv_timeout(Duration::from_secs(30)) {
        v.push(e);
    }
    v
}

/// `head` statuses, passes 1..=syncs, then `tail` statuses.
fn sequence(head: &[MigrationStatus], syncs: u64, tail: &[MigrationStatus]) -> Vec<MigrationEvent> {
    head.iter()
        .map(|&s| Status(s))
        .chain((1..=syncs).map(Pass))
        .chain(tail.iter().map(|&s| Status(s)))
        .collect()
}

#[test]
fn precopy_with_pre_switchover_source_and_destination_sequences() {
    let mut c = caps();
    c.pause_before_switchover = true;
    let (handle, dst) = start(c, 0, true, MACHINE);
    // Subscribed after the start: the events so far come first.
    let events = handle.subscribe();
    handle
        .wait_for(PreSwitchover, Duration::from_secs(20))
        .unwrap();
    handle.continue_switchover();
    assert_eq!(
        handle.wait_for(Completed, Duration::from_secs(20)).unwrap(),
        Completed
    );
    let stats = handle.stats();
    let (_, outcome) = handle.wait();
    outcome.unwrap();
    let syncs = stats.snapshot().dirty_sync_count;
    assert!(syncs >= 1);
    assert_eq!(
        collect(&events),
        sequence(&[Setup, Active], syncs, &[PreSwitchover, Device, Completed])
    );
    dst.thread.join().unwrap().unwrap();
    assert_eq!(
        collect(&dst.events),
        sequence(&[Setup, Active], 0, &[Completed])
    );
    // And QMP's names.
    assert_eq!(Status(Completed).qmp_name(), "MIGRATION");
    assert_eq!(Pass(1).qmp_name(), "MIGRATION_PASS");
}

#[test]
fn postcopy_sequences() {
    let mut c = caps();
    c.postcopy_ram = true;
    let (handle, dst) = start(c, 0, true, MACHINE);
    handle.start_postcopy();
    let events = handle.subscribe();
    let stats = handle.stats();
    let (_, outcome) = handle.wait();
    outcome.unwrap();
    let syncs = stats.snapshot().dirty_sync_count;
    assert_eq!(
        collect(&events),
        sequence(&[Setup, Active], syncs, &[PostcopyActive, Completed])
    );
    dst.thread.join().unwrap().unwrap();
    assert_eq!(
        collect(&dst.events),
        sequence(&[Setup, Active, PostcopyActive], 0, &[Completed])
    );
}

#[test]
fn cancel_sequences() {
    // 256 KiB/s: the 512 KiB of RAM take two seconds, time to cancel.
    let (handle, dst) = start(caps(), 256 * 1024, true, MACHINE);
    let events = handle.subscribe();
    handle.wait_for(Active, Duration::from_secs(20)).unwrap();
    thread::sleep(Duration::from_millis(150));
    handle.cancel();
    let stats = handle.stats();
    let (_, outcome) = handle.wait();
    assert!(matches!(
        outcome.unwrap_err().kind(),
        ErrorKind::Cancelled { .. }
    ));
    let got = collect(&events);
    let syncs = stats.snapshot().dirty_sync_count;
    // The passes are 1..=syncs in order, all after active; the statuses exact
    // (a pass counted as the cancel came may follow "cancelling").
    let statuses: Vec<_> = got.iter().filter(|e| matches!(e, Status(_))).collect();
    assert_eq!(
        statuses,
        [
            &Status(Setup),
            &Status(Active),
            &Status(Cancelling),
            &Status(Cancelled)
        ]
    );
    let passes: Vec<_> = got
        .iter()
        .filter(|e| matches!(e, Pass(_)))
        .copied()
        .collect();
    assert_eq!(passes, (1..=syncs).map(Pass).collect::<Vec<_>>());
    let active_at = got.iter().position(|e| *e == Status(Active)).unwrap();
    assert!(got[..active_at].iter().all(|e| matches!(e, Status(_))));
    assert_eq!(got.last(), Some(&Status(Cancelled)));
    // The destination sees its stream end early: failed.
    assert!(dst.thread.join().unwrap().is_err());
    assert_eq!(
        collect(&dst.events),
        sequence(&[Setup, Active], 0, &[Failed])
    );
    assert_eq!(dst.stats.snapshot().status, Failed);
}

#[test]
fn failure_sequences_and_wait_for_a_status_never_reached() {
    // The destination expects another machine: it fails at the header and
    // says so on the return path.
    let (handle, dst) = start(caps(), 0, true, "pc-q35-7.2");
    let events = handle.subscribe();
    let e = handle
        .wait_for(Completed, Duration::from_secs(20))
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::StatusNotReached {
                wanted: Completed,
                ended: Failed
            }
        ),
        "{e}"
    );
    let stats = handle.stats();
    let (_, outcome) = handle.wait();
    assert!(outcome.is_err());
    let syncs = stats.snapshot().dirty_sync_count;
    assert_eq!(
        collect(&events),
        sequence(&[Setup, Active], syncs, &[Failed])
    );
    assert!(dst.thread.join().unwrap().is_err());
    assert_eq!(
        collect(&dst.events),
        sequence(&[Setup, Active], 0, &[Failed])
    );
}

#[test]
fn events_capability_off_means_no_events_but_wait_for_still_works() {
    let mut c = caps();
    c.events = false;
    let (handle, dst) = start(c, 0, false, MACHINE);
    let events = handle.subscribe();
    assert_eq!(
        handle.wait_for(Completed, Duration::from_secs(20)).unwrap(),
        Completed
    );
    // Reached earlier: answered at once.
    handle.wait_for(Setup, Duration::ZERO).unwrap();
    let (_, outcome) = handle.wait();
    outcome.unwrap();
    assert_eq!(collect(&events), vec![]);
    dst.thread.join().unwrap().unwrap();
    assert_eq!(collect(&dst.events), vec![]);
    assert_eq!(
        dst.stats.wait_for(Active, Duration::ZERO).unwrap(),
        Completed
    );
}

#[test]
fn postcopy_recovery_sequences() {
    // The link breaks 200 kB into the stream (in postcopy: the switch comes at
    // once), the destination listens again, the source resumes there.
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let proxy = cutting_proxy(200_000, incoming.local_tcp_addr().unwrap());
    let (again_tx, again_rx) = std::sync::mpsc::channel();
    let dst_stats = StatsHandle::with_events(true);
    let dst_events = dst_stats.subscribe();
    let s = dst_stats.clone();
    let dst = thread::spawn(move || {
        let mem = SharedMemory::zeroed(PAGES, PAGE);
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 4, Box::new(ram(&mem)))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu::default())))
            .unwrap();
        let mut opts = LoadOptions::default();
        opts.version = QemuVersion::V7_2;
        opts.configuration = Some(Configuration::new(MACHINE));
        let mut hooks = IncomingHooks::default();
        hooks.on_postcopy_run = Some(Box::new(|| Ok(())));
        hooks.on_postcopy_paused = Some(Box::new(move |_| {
            let inc = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into()))?;
            again_tx.send(inc.local_tcp_addr().unwrap()).unwrap();
            Ok(inc)
        }));
        run_incoming_with(incoming, &mut reg, opts, &s, hooks)
    });
    let mut c = caps();
    c.postcopy_ram = true;
    let mut cfg = config(c, 0);
    cfg.uri = MigrationUri::Tcp(proxy.to_string());
    let handle = start_migration(cfg, source_registry(), Box::new(Vm::default())).unwrap();
    handle.start_postcopy();
    let events = handle.subscribe();
    handle
        .wait_for(PostcopyPaused, Duration::from_secs(20))
        .unwrap();
    let addr = again_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    handle.resume(MigrationUri::Tcp(addr.to_string())).unwrap();
    let stats = handle.stats();
    let (_, outcome) = handle.wait();
    outcome.unwrap();
    let syncs = stats.snapshot().dirty_sync_count;
    let recovery = [
        PostcopyActive,
        PostcopyPaused,
        PostcopyRecover,
        PostcopyActive,
        Completed,
    ];
    assert_eq!(
        collect(&events),
        sequence(&[Setup, Active], syncs, &recovery)
    );
    dst.join().unwrap().unwrap();
    assert_eq!(
        collect(&dst_events),
        sequence(&[Setup, Active], 0, &recovery)
    );
}
