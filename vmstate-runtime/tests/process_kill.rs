//! One side of a precopy migration is a separate process (this test binary run
//! again in a role) and dies by SIGKILL mid-stream:
//!
//! * the destination killed: the source fails with a clear error, its VM runs
//!   again with RAM and device state unchanged, and a retry to a new
//!   destination process delivers the same VM (by digest);
//! * the source killed: the destination fails with the offset and section
//!   where the stream ended, in bounded time, and reports no loaded VM.
//!
//! The migration goes through a counting proxy so "mid-stream" is a measured
//! byte count, not a sleep.

mod common;
use common::child::{report, role, ChildPeer};
use common::cut::{cut_proxy, Cut, WAIT};
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::{Vm, VmLog};

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationCapabilities, MigrationConfig,
    MigrationParameters, MigrationStatus, MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, InstanceId, LoadOptions, Registry, VmDescPolicy};
use vmstate_runtime::{ErrorKind, Result, VmState};

const PAGE: usize = 4096;
/// 1 MiB of guest RAM.
const PAGES: usize = 256;
const MACHINE: &str = "pc-i440fx-7.2";
/// The child entry point (the test below).
const ENTRY: &str = "child_process";
/// Where the child source sends its stream.
const TARGET_VAR: &str = "VMSTATE_CHILD_TARGET";
/// Killed once this much of the stream went through: mid-RAM.
const KILL_AFTER: usize = 256 * 1024;
/// 2 MiB/s: the 1 MiB stream takes about half a second, so the kill lands
/// mid-stream.
const SLOW: u64 = 2 * 1024 * 1024;

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
    regs: [u64; 4],
}

fn booted_cpu() -> Cpu {
    Cpu {
        rip: 0xfff0,
        regs: [5, 6, 7, 8],
    }
}

fn pattern(i: usize) -> Vec<u8> {
    (0..PAGE)
        .map(|b| (i as u8).wrapping_mul(13) ^ (b as u8))
        .collect()
}

/// FNV-1a over the pages and the cpu: what the two processes compare.
fn digest(mem: &SharedMemory, cpu: &Cpu) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    for p in mem.pages() {
        eat(&p);
    }
    eat(&cpu.rip.to_be_bytes());
    for r in cpu.regs {
        eat(&r.to_be_bytes());
    }
    format!("{h:016x}")
}

fn load_options() -> LoadOptions {
    LoadOptions::default()
        .with_configuration(Configuration::new(MACHINE))
        .with_vmdesc(VmDescPolicy::Expected)
        .with_accept_timeout(WAIT)
        .with_idle_timeout(Duration::from_secs(10))
        .with_write_timeout(Duration::from_secs(10))
}

fn config(uri: MigrationUri, max_bandwidth: u64) -> MigrationConfig {
    MigrationConfig::new(uri)
        .with_machine(MACHINE)
        .with_params(
            MigrationParameters::default()
                .with_downtime_limit_ms(0)
                .with_max_bandwidth(max_bandwidth),
        )
        .with_caps(MigrationCapabilities::default().with_return_path(true))
}

fn source_registry(mem: &SharedMemory, cpu: &Arc<Mutex<Cpu>>) -> Registry {
    let mut reg = Registry::new();
    reg.register_savevm_live(
        "ram",
        0,
        1,
        Box::new(SyntheticRam::new(mem.clone()).burst(16)),
    )
    .unwrap();
    reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
    reg
}

/// A destination's registry over fresh memory and cpu.
fn destination_registry() -> (Registry, SharedMemory, Arc<Mutex<Cpu>>) {
    let mem = SharedMemory::zeroed(PAGES, PAGE);
    let cpu = Arc::new(Mutex::new(Cpu::default()));
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem.clone())))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
    (reg, mem, cpu)
}

// ---- the child's roles ----

/// Destination role: listens, reports `ADDR`, loads, reports `LOADED digest`
/// or `FAILED error`.
fn destination_child() {
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    report("ADDR", incoming.local_tcp_addr().unwrap());
    let (mut reg, mem, cpu) = destination_registry();
    match run_incoming(incoming, &mut reg, load_options(), &StatsHandle::default()) {
        Ok(()) => report("LOADED", digest(&mem, &cpu.lock().unwrap())),
        Err(e) => report("FAILED", e),
    }
}

/// Source role: migrates a booted VM to the target, slowly (loopback socket
/// buffers would otherwise take the whole stream before the kill).
fn source_child() {
    let target = std::env::var(TARGET_VAR).expect("target");
    let mem = SharedMemory::new(PAGES, PAGE, pattern);
    let cpu = Arc::new(Mutex::new(booted_cpu()));
    let handle = start_migration(
        config(MigrationUri::Tcp(target), SLOW),
        source_registry(&mem, &cpu),
        Box::new(Vm::default()),
    )
    .unwrap();
    report("STARTED", std::process::id());
    let (_, r) = handle.wait();
    report("DONE", format!("{r:?}"));
}

/// The child processes' entry point: a role when run as a child, nothing in
/// the normal run (the tests below are the parents).
#[test]
fn child_process() {
    match role().as_deref() {
        Some("destination") => destination_child(),
        Some("source") => source_child(),
        Some(other) => panic!("unknown child role {other}"),
        None => {}
    }
}

// ---- the parents ----

#[test]
fn destination_killed_mid_stream_leaves_the_source_running_and_a_retry_succeeds() {
    let mem = SharedMemory::new(PAGES, PAGE, pattern);
    let cpu = Arc::new(Mutex::new(booted_cpu()));
    let log = Arc::new(VmLog::default());

    let dst = ChildPeer::spawn(ENTRY, "destination", &[]);
    let addr = dst.expect("ADDR", WAIT).parse().unwrap();
    let proxy = cut_proxy(addr, Cut::Never, false);
    let handle = start_migration(
        config(MigrationUri::Tcp(proxy.addr.to_string()), SLOW),
        source_registry(&mem, &cpu),
        Box::new(Vm(log.clone())),
    )
    .unwrap();
    let stats = handle.stats();
    proxy.wait_passed(KILL_AFTER);
    let mut dst = dst;
    dst.child.kill().unwrap();
    let status = dst.child.wait().unwrap();
    assert!(!status.success(), "killed: {status:?}");

    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(handle.wait().1);
    });
    let e = rx
        .recv_timeout(WAIT)
        .expect("the source ends after the destination died")
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Io(_) | ErrorKind::Transport(_) | ErrorKind::ReturnPath(_)
        ),
        "the source says the link broke: {e}"
    );
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Failed);
    assert!(s.error.is_some());
    assert!(log.running(), "the source VM runs");
    assert_eq!(log.pauses(), log.resumes(), "every pause was undone");
    assert!(
        mem.pages()
            .iter()
            .enumerate()
            .all(|(i, p)| *p == pattern(i)),
        "source RAM unchanged"
    );
    assert_eq!(*cpu.lock().unwrap(), booted_cpu(), "source cpu unchanged");

    // A new destination process: the same VM arrives.
    let dst = ChildPeer::spawn(ENTRY, "destination", &[]);
    let addr = dst.expect("ADDR", WAIT);
    let handle = start_migration(
        config(MigrationUri::Tcp(addr), 0),
        source_registry(&mem, &cpu),
        Box::new(Vm(log.clone())),
    )
    .unwrap();
    handle.wait().1.unwrap();
    let loaded = dst.expect("LOADED", WAIT);
    assert_eq!(loaded, digest(&mem, &cpu.lock().unwrap()));
}

#[test]
fn source_killed_mid_stream_fails_the_destination_with_where() {
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let dst_addr = incoming.local_tcp_addr().unwrap();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let (mut reg, mem, _) = destination_registry();
        let stats = StatsHandle::default();
        let r = run_incoming(incoming, &mut reg, load_options(), &stats);
        let died = Instant::now();
        let _ = tx.send((r, mem, stats.snapshot(), died));
    });
    // The proxy holds the stream mid-RAM; the source is killed while it still
    // owes most of it, and what it had written still comes.
    let proxy = cut_proxy(dst_addr, Cut::Stall(KILL_AFTER), false);
    let mut src = ChildPeer::spawn(ENTRY, "source", &[(TARGET_VAR, proxy.addr.to_string())]);
    src.expect("STARTED", WAIT);
    proxy.wait_passed(KILL_AFTER);
    let killed = Instant::now();
    src.child.kill().unwrap();
    src.child.wait().unwrap();
    proxy.release();

    let (r, mem, stats, failed_at): (Result<()>, _, _, Instant) = rx
        .recv_timeout(WAIT)
        .expect("the destination ends after the source died");
    let e = r.unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e.kind(), ErrorKind::Truncated { .. } | ErrorKind::Io(_)),
        "the stream ended: {msg}"
    );
    let at = e.offset().unwrap_or_else(|| panic!("says where: {msg}"));
    // What the source had written before it died still arrived.
    assert!(at >= KILL_AFTER as u64, "ended at {at}: {msg}");
    // Inside a section the error names it; the source often dies between two
    // (its writes are whole sections), where the next record's type is missing.
    assert!(
        msg.contains("section 'ram'") || msg.starts_with("stream ended: needed 1 more byte"),
        "says which section or that a record was due: {msg}"
    );
    eprintln!("source killed: the destination says: {msg}");
    // Ended by the hang-up itself, not by the 10 s idle timeout.
    assert!(
        failed_at.duration_since(killed) < Duration::from_secs(5),
        "took {:?}",
        failed_at.duration_since(killed)
    );
    assert_eq!(stats.status, MigrationStatus::Failed);
    assert!(stats.error.is_some());
    // A partial VM: some pages came, not all (and the load said so: a VMM
    // starts the guest only on Ok).
    let m = mem.lock();
    let got = m.received.iter().filter(|r| **r).count();
    assert!(got > 0 && got < PAGES, "{got} of {PAGES} pages arrived");
}
