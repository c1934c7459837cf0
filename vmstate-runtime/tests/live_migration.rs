//! Live migration end to end over real sockets: a synthetic iterative device
//! whose pages are dirtied by a "guest" thread, precopy converging under a
//! bandwidth limit over unix and TCP, cancel, destination rejection, and the
//! connection killed mid-stream at many offsets (source intact, retry succeeds).

mod common;
use common::net::cutting_proxy;
use common::ram::{SharedMemory, SyntheticRam};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationCapabilities, MigrationConfig,
    MigrationHandle, MigrationParameters, MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{Configuration, InstanceId, LoadOptions, Registry};
use vmstate_runtime::{Result, VmState};

const PAGE: usize = 4096;
const PAGES: usize = 256;

/// Guest memory of `PAGES` pages, page `i` filled with `seed + i`.
fn memory(seed: u8) -> SharedMemory {
    SharedMemory::new(PAGES, PAGE, |i| vec![seed.wrapping_add(i as u8); PAGE])
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
    regs: [u64; 4],
}

/// The guest: a thread dirtying pages while running.
struct Guest {
    mem: SharedMemory,
    running: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    pauses: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Guest {
    /// Dirties `pages_per_tick` random pages every 5 ms while running.
    fn start(mem: SharedMemory, pages_per_tick: usize) -> Guest {
        let running = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let (m, r, s, wr) = (mem.clone(), running.clone(), stop.clone(), writes.clone());
        let thread = thread::spawn(move || {
            let mut x: u64 = 12345;
            while !s.load(Ordering::SeqCst) {
                if r.load(Ordering::SeqCst) {
                    let mut g = m.lock();
                    // Re-check under the lock: pause() takes the lock after clearing.
                    if r.load(Ordering::SeqCst) {
                        for _ in 0..pages_per_tick {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                            let p = (x >> 33) as usize % PAGES;
                            let v = (x >> 20) as u8;
                            g.pages[p][(x as usize >> 8) % PAGE] = v;
                            g.dirty[p] = true;
                            wr.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        Guest {
            mem,
            running,
            stop,
            writes,
            pauses: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
        }
    }

    fn control(&self) -> Box<dyn VmControl> {
        Box::new(GuestControl {
            mem: self.mem.clone(),
            running: self.running.clone(),
            pauses: self.pauses.clone(),
        })
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct GuestControl {
    mem: SharedMemory,
    running: Arc<AtomicBool>,
    pauses: Arc<AtomicU64>,
}

impl VmControl for GuestControl {
    fn pause(&mut self) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        // Wait out a write in progress.
        drop(self.mem.lock());
        self.pauses.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn source_registry(mem: &SharedMemory, cpu: Cpu) -> Registry {
    let mut reg = Registry::new();
    reg.register_savevm_live(
        "ram",
        0,
        1,
        Box::new(SyntheticRam::new(mem.clone()).burst(16)),
    )
    .unwrap();
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(cpu)))
        .unwrap();
    reg
}

fn destination_registry() -> (Registry, SharedMemory, Arc<Mutex<Cpu>>) {
    let mem = memory(0);
    let cpu = Arc::new(Mutex::new(Cpu::default()));
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem.clone())))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
    (reg, mem, cpu)
}

/// Capabilities with the return path.
fn with_return_path() -> MigrationCapabilities {
    MigrationCapabilities::default().with_return_path(true)
}

/// Starts migrating `guest` (its memory `src_mem` and the sample cpu) to `uri`.
fn start_source(
    guest: &Guest,
    src_mem: &SharedMemory,
    uri: MigrationUri,
    max_bandwidth: u64,
    caps: MigrationCapabilities,
) -> MigrationHandle {
    start_migration(
        config(uri, max_bandwidth, caps),
        source_registry(src_mem, sample_cpu()),
        guest.control(),
    )
    .unwrap()
}

/// Runs a destination with fresh registries on a thread: its memory once
/// loaded, or the load error.
fn spawn_destination(incoming: Incoming) -> thread::JoinHandle<Result<SharedMemory>> {
    thread::spawn(move || {
        let (mut reg, mem, _) = destination_registry();
        run_incoming(incoming, &mut reg, load_options(), &StatsHandle::default()).map(|_| mem)
    })
}

fn load_options() -> LoadOptions {
    LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2"))
}

fn config(uri: MigrationUri, max_bandwidth: u64, caps: MigrationCapabilities) -> MigrationConfig {
    MigrationConfig::new(uri)
        .with_machine("pc-i440fx-7.2")
        .with_params(
            MigrationParameters::default()
                .with_downtime_limit_ms(50)
                .with_max_bandwidth(max_bandwidth),
        )
        .with_caps(caps)
}

fn sample_cpu() -> Cpu {
    Cpu {
        rip: 0xfff0,
        regs: [1, 2, 3, 4],
    }
}

/// Migrates over `listen`/`connect_uri`; returns the destination memory and cpu.
fn migrate_once(
    listen: MigrationUri,
    connect_uri: Option<MigrationUri>,
    caps: MigrationCapabilities,
) {
    let src_mem = memory(7);
    let guest = Guest::start(src_mem.clone(), 1);
    let incoming = Incoming::listen(&listen).unwrap();
    let connect_uri = connect_uri.unwrap_or_else(|| match incoming.local_tcp_addr() {
        Some(a) => MigrationUri::Tcp(a.to_string()),
        None => listen.clone(),
    });
    let dst = thread::spawn(move || {
        let (mut reg, mem, cpu) = destination_registry();
        let stats = StatsHandle::default();
        let r = run_incoming(incoming, &mut reg, load_options(), &stats);
        (r, mem, cpu, stats.snapshot())
    });
    let handle = start_source(&guest, &src_mem, connect_uri, 4 * 1024 * 1024, caps);
    let stats = handle.stats();
    let mut seen_active = false;
    let mut finished = false;
    for _ in 0..10_000 {
        let s = stats.snapshot();
        seen_active |= s.status == MigrationStatus::Active;
        if s.status.is_terminal() {
            finished = true;
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    if !finished {
        handle.cancel();
        panic!("migration did not converge in 20 s: {:?}", stats.snapshot());
    }
    let (_reg, result) = handle.wait();
    result.unwrap();
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Completed);
    assert!(seen_active, "status went through active");
    assert!(s.downtime.is_some());
    // The 4 MiB/s cap held: no 100 ms window carried more than its share.
    assert!(
        s.throughput_bps <= 4.0 * 1024.0 * 1024.0 * 1.25,
        "throughput {} over the cap",
        s.throughput_bps
    );
    assert!(s.iterations > 1, "{s:?}");
    assert!(s.transferred > (PAGES * PAGE) as u64, "{s:?}");
    assert!(
        guest.writes.load(Ordering::Relaxed) > 0,
        "the guest dirtied memory"
    );
    assert_eq!(guest.pauses.load(Ordering::SeqCst), 1);
    let (r, dst_mem, dst_cpu, dst_stats) = dst.join().unwrap();
    r.unwrap();
    assert_eq!(dst_stats.status, MigrationStatus::Completed);
    assert_eq!(*dst_cpu.lock().unwrap(), sample_cpu());
    // The destination holds exactly the memory the source had when it stopped.
    let a = src_mem.lock();
    let b = dst_mem.lock();
    for i in 0..PAGES {
        assert!(a.pages[i] == b.pages[i], "page {i} differs");
    }
}

fn tmp_sock(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vmstate-{}-{name}.sock", std::process::id()))
}

#[test]
fn precopy_converges_over_unix_socket_with_return_path() {
    migrate_once(
        MigrationUri::Unix(tmp_sock("unix")),
        None,
        with_return_path(),
    );
}

#[test]
fn precopy_converges_over_tcp() {
    migrate_once(
        MigrationUri::Tcp("127.0.0.1:0".into()),
        None,
        MigrationCapabilities::default(),
    );
}

#[test]
fn cancel_keeps_the_source_running_and_a_retry_succeeds() {
    let src_mem = memory(3);
    let guest = Guest::start(src_mem.clone(), 2);
    let path = tmp_sock("cancel");
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    let dst = spawn_destination(incoming);
    // 64 KiB/s: far too slow to finish before the cancel.
    let handle = start_source(
        &guest,
        &src_mem,
        MigrationUri::Unix(path.clone()),
        64 * 1024,
        with_return_path(),
    );
    let stats = handle.stats();
    while stats.snapshot().status != MigrationStatus::Active {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(50));
    handle.cancel();
    let (reg, result) = handle.wait();
    assert!(result.is_err());
    assert_eq!(stats.snapshot().status, MigrationStatus::Cancelled);
    assert!(guest.running.load(Ordering::SeqCst), "source VM still runs");
    assert_eq!(guest.pauses.load(Ordering::SeqCst), 0);
    let e = dst.join().unwrap().unwrap_err();
    assert!(e.offset().is_some(), "destination error has an offset: {e}");
    drop(reg);

    // Retry with the same guest and fresh registries: succeeds.
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    let dst = spawn_destination(incoming);
    let handle = start_source(
        &guest,
        &src_mem,
        MigrationUri::Unix(path),
        0,
        MigrationCapabilities::default(),
    );
    handle.wait().1.unwrap();
    let dst_mem = dst.join().unwrap().unwrap();
    assert!(src_mem.lock().pages == dst_mem.lock().pages);
}

#[test]
fn destination_rejection_fails_the_source_and_resumes_the_vm() {
    let src_mem = memory(5);
    let guest = Guest::start(src_mem.clone(), 1);
    let path = tmp_sock("reject");
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    let dst = thread::spawn(move || {
        // No "cpu" registered: the FULL section is unknown here.
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(memory(0))))
            .unwrap();
        run_incoming(incoming, &mut reg, load_options(), &StatsHandle::default())
    });
    let handle = start_source(
        &guest,
        &src_mem,
        MigrationUri::Unix(path),
        0,
        with_return_path(),
    );
    let stats = handle.stats();
    let (_, result) = handle.wait();
    let e = result.unwrap_err();
    assert!(e.to_string().contains("destination failed"), "{e}");
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Failed);
    assert!(s.error.is_some());
    assert_eq!(guest.pauses.load(Ordering::SeqCst), 1);
    assert!(
        guest.running.load(Ordering::SeqCst),
        "VM resumed after the failure"
    );
    let de = dst.join().unwrap().unwrap_err();
    assert!(
        de.to_string()
            .contains("unknown savevm section or instance 'cpu' 0"),
        "{de}"
    );
}

#[test]
fn connection_killed_mid_stream_at_many_offsets() {
    let src_mem = memory(9);
    let guest = Guest::start(src_mem.clone(), 1);
    // The whole stream is ~1.1 MB; cut at offsets across all its parts.
    for cut in [0usize, 3, 8, 21, 40, 200, 5000, 70_000, 400_000, 1_000_000] {
        let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
        let dst_addr = incoming.local_tcp_addr().unwrap();
        let dst = spawn_destination(incoming);
        let proxy = cutting_proxy(cut, dst_addr);
        let handle = start_source(
            &guest,
            &src_mem,
            MigrationUri::Tcp(proxy.to_string()),
            0,
            with_return_path(),
        );
        let (_, result) = handle.wait();
        assert!(result.is_err(), "cut at {cut} must fail the source");
        assert!(
            guest.running.load(Ordering::SeqCst),
            "cut at {cut}: VM runs"
        );
        let e = dst.join().unwrap().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("stream ended") || msg.contains("i/o error"),
            "cut at {cut}: destination error is clear: {msg}"
        );
    }
    // And a retry without the proxy succeeds.
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let addr = incoming.local_tcp_addr().unwrap();
    let dst = spawn_destination(incoming);
    let handle = start_source(
        &guest,
        &src_mem,
        MigrationUri::Tcp(addr.to_string()),
        0,
        MigrationCapabilities::default(),
    );
    handle.wait().1.unwrap();
    let dst_mem = dst.join().unwrap().unwrap();
    assert!(src_mem.lock().pages == dst_mem.lock().pages);
}
