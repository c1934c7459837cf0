//! The connection killed at 100 offsets spread over a precopy migration and 100
//! over a postcopy one (a proxy that cuts after N bytes of the main stream, and
//! one that cuts after N bytes of the return path).
//!
//! Precopy: the source VM runs again with its RAM and devices unchanged and its
//! workload going on, the destination reports a typed error in bounded time,
//! and a retry to a fresh destination succeeds page for page. Postcopy: a cut
//! after the destination started the guest pauses both sides, recovery
//! resumes, and no page is lost; a cut before the switch is a precopy failure.
//!
//! The offsets are taken from a clean run's stream (measured through the same
//! proxy): spread evenly, plus every boundary that matters (header,
//! configuration, commands, first section, RAM iteration, the switchover, the
//! device section, EOF, vmdesc; in postcopy the discards, the package and the
//! commands inside it).

mod common;
use common::cut::{cut_proxy, spread_offsets, Cut, CutProxy, ProxyReport, WAIT};
use common::gate::Gate;
use common::ram::{SharedMemory, SyntheticRam};
use common::stream_map::{map_stream, probes, section_body_at, Record};

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::error::PostcopyError;
use vmstate_runtime::migration::{
    run_incoming, run_incoming_with, start_migration, Incoming, IncomingHooks,
    MigrationCapabilities, MigrationConfig, MigrationHandle, MigrationParameters, MigrationStats,
    MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{
    Configuration, InstanceId, LoadOptions, PageRequester, Registry, VmDescPolicy,
};
use vmstate_runtime::{Error, ErrorKind, Result, VmState};

const PAGE: usize = 4096;
/// 1 MiB of guest RAM.
const PAGES: usize = 256;
const MACHINE: &str = "pc-i440fx-7.2";
/// Offsets per migration kind.
const OFFSETS: usize = 100;
/// Worker threads running offsets side by side (each with its own source VM).
const WORKERS: usize = 3;

fn pattern(seed: u8) -> impl Fn(usize) -> Vec<u8> {
    move |i| {
        (0..PAGE)
            .map(|b| (i as u8).wrapping_mul(31) ^ (b as u8) ^ seed)
            .collect()
    }
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    /// Advances while the VM runs: the workload.
    rip: u64,
    regs: [u64; 4],
}

const REGS: [u64; 4] = [0x11, 0x22, 0x33, 0x44];

/// What pausing and resuming did to a source VM.
#[derive(Default)]
struct RunLog {
    running: AtomicBool,
    pauses: AtomicU32,
    resumes: AtomicU32,
}

/// A source VM: 1 MiB of RAM in a fixed pattern, a cpu whose `rip` a vcpu
/// thread advances while the VM runs.
struct SourceVm {
    seed: u8,
    mem: SharedMemory,
    cpu: Arc<Mutex<Cpu>>,
    log: Arc<RunLog>,
    stop: Arc<AtomicBool>,
    vcpu: Option<thread::JoinHandle<()>>,
}

impl SourceVm {
    fn boot(seed: u8) -> SourceVm {
        let mem = SharedMemory::new(PAGES, PAGE, pattern(seed));
        let cpu = Arc::new(Mutex::new(Cpu { rip: 0, regs: REGS }));
        let log = Arc::new(RunLog::default());
        log.running.store(true, Ordering::SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let (c, l, s) = (cpu.clone(), log.clone(), stop.clone());
        let vcpu = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                {
                    let mut cpu = c.lock().unwrap();
                    // Checked under the lock: pause() takes it after clearing.
                    if l.running.load(Ordering::SeqCst) {
                        cpu.rip += 1;
                    }
                }
                thread::sleep(Duration::from_micros(200));
            }
        });
        SourceVm {
            seed,
            mem,
            cpu,
            log,
            stop,
            vcpu: Some(vcpu),
        }
    }

    fn registry(&self) -> Registry {
        let mut reg = Registry::new();
        reg.register_savevm_live(
            "ram",
            0,
            1,
            Box::new(SyntheticRam::new(self.mem.clone()).burst(16)),
        )
        .unwrap();
        reg.vmstate_register(InstanceId::Any, self.cpu.clone())
            .unwrap();
        reg
    }

    fn control(&self) -> Box<dyn VmControl> {
        Box::new(Vcpus {
            cpu: self.cpu.clone(),
            log: self.log.clone(),
        })
    }

    fn running(&self) -> bool {
        self.log.running.load(Ordering::SeqCst)
    }

    /// The operator restarts the VM after a completed migration (so the same
    /// VM can be migrated again).
    fn restart(&self) {
        self.control().resume().unwrap();
    }

    /// Asserts the VM runs with RAM and registers as booted, and that its
    /// workload goes on (rip advances).
    fn assert_intact_and_running(&self, what: &str) {
        assert!(self.running(), "{what}: the source VM runs again");
        let (p, r) = (
            self.log.pauses.load(Ordering::SeqCst),
            self.log.resumes.load(Ordering::SeqCst),
        );
        assert_eq!(p, r, "{what}: every pause was undone");
        let pages = self.mem.pages();
        let want = pattern(self.seed);
        for (i, page) in pages.iter().enumerate() {
            assert!(*page == want(i), "{what}: source page {i} changed");
        }
        let rip = {
            let cpu = self.cpu.lock().unwrap();
            assert_eq!(cpu.regs, REGS, "{what}: source registers changed");
            cpu.rip
        };
        let deadline = Instant::now() + WAIT;
        while self.cpu.lock().unwrap().rip == rip {
            assert!(Instant::now() < deadline, "{what}: the workload stopped");
            thread::yield_now();
        }
    }
}

impl Drop for SourceVm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.vcpu.take() {
            let _ = t.join();
        }
    }
}

struct Vcpus {
    cpu: Arc<Mutex<Cpu>>,
    log: Arc<RunLog>,
}

impl VmControl for Vcpus {
    fn pause(&mut self) -> Result<()> {
        self.log.running.store(false, Ordering::SeqCst);
        // Wait out a vcpu step in progress.
        drop(self.cpu.lock().unwrap());
        self.log.pauses.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        self.log.resumes.fetch_add(1, Ordering::SeqCst);
        self.log.running.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Bounded waits on the peer: nothing may block a fault test.
fn load_options() -> LoadOptions {
    LoadOptions::default()
        .with_configuration(Configuration::new(MACHINE))
        .with_vmdesc(VmDescPolicy::Expected)
        .with_accept_timeout(WAIT)
        .with_idle_timeout(Duration::from_secs(10))
        .with_write_timeout(Duration::from_secs(10))
}

fn config(uri: MigrationUri, caps: MigrationCapabilities) -> MigrationConfig {
    MigrationConfig::new(uri)
        .with_machine(MACHINE)
        // No downtime allowance: iterate until nothing is left, so every run
        // writes the same stream and a clean run's map fits the cut runs.
        .with_params(
            MigrationParameters::default()
                .with_downtime_limit_ms(0)
                .with_max_bandwidth(0),
        )
        .with_caps(caps)
}

fn with_return_path() -> MigrationCapabilities {
    MigrationCapabilities::default().with_return_path(true)
}

/// What a precopy destination ended with.
struct Landed {
    result: Result<()>,
    mem: SharedMemory,
    cpu: Cpu,
    stats: MigrationStats,
    took: Duration,
}

/// A fresh destination listening on TCP; its outcome arrives on the receiver.
fn precopy_destination() -> (std::net::SocketAddr, Receiver<Landed>) {
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let addr = incoming.local_tcp_addr().unwrap();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mem = SharedMemory::zeroed(PAGES, PAGE);
        let cpu = Arc::new(Mutex::new(Cpu::default()));
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem.clone())))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
        let stats = StatsHandle::default();
        let t0 = Instant::now();
        let result = run_incoming(incoming, &mut reg, load_options(), &stats);
        let took = t0.elapsed();
        let cpu = cpu.lock().unwrap().clone();
        let _ = tx.send(Landed {
            result,
            mem,
            cpu,
            stats: stats.snapshot(),
            took,
        });
    });
    (addr, rx)
}

/// Waits for the source's outcome in bounded time.
fn wait_source(handle: MigrationHandle, what: &str) -> (Result<()>, MigrationStats) {
    let stats = handle.stats();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(handle.wait().1);
    });
    let r = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what}: the source hangs: {:?}", stats.snapshot()));
    (r, stats.snapshot())
}

fn landed(rx: &Receiver<Landed>, what: &str) -> Landed {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what}: the destination hangs or panicked"))
}

/// One precopy migration of `vm` through a proxy that cuts as `cut` says.
fn precopy_through(
    vm: &SourceVm,
    cut: Cut,
    capture: bool,
    what: &str,
) -> (Result<()>, MigrationStats, Landed, ProxyReport) {
    let (dst, landing) = precopy_destination();
    let proxy: CutProxy = cut_proxy(dst, cut, capture);
    let handle = start_migration(
        config(
            MigrationUri::Tcp(proxy.addr.to_string()),
            with_return_path(),
        ),
        vm.registry(),
        vm.control(),
    )
    .unwrap();
    let (result, stats) = wait_source(handle, what);
    let landed = landed(&landing, what);
    (result, stats, landed, proxy.report())
}

/// Asserts the destination holds exactly the source VM's memory and cpu.
fn assert_same_vm(vm: &SourceVm, dst: &Landed, what: &str) {
    let (a, b) = (vm.mem.pages(), dst.mem.pages());
    for i in 0..PAGES {
        assert!(a[i] == b[i], "{what}: page {i} differs after the retry");
    }
    assert_eq!(*vm.cpu.lock().unwrap(), dst.cpu, "{what}: cpu differs");
}

/// A clean precopy run: its stream (for the map), checked to arrive whole.
fn measure_precopy(vm: &SourceVm) -> Vec<u8> {
    let (r, stats, dst, report) = precopy_through(vm, Cut::Never, true, "clean run");
    r.unwrap();
    dst.result.as_ref().unwrap();
    assert_eq!(stats.status, MigrationStatus::Completed);
    assert_same_vm(vm, &dst, "clean run");
    assert!(!report.cut);
    vm.restart();
    report.captured
}

/// Whether a destination error is a clean report of a broken connection: the
/// stream ended (with the offset where) or the socket failed.
fn is_broken_connection(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Truncated { .. } => e.offset().is_some(),
        ErrorKind::Io(_) | ErrorKind::Transport(_) => true,
        _ => false,
    }
}

/// Whether a source error says the connection or the destination failed.
fn is_link_failure(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Io(_)
            | ErrorKind::Transport(_)
            | ErrorKind::ReturnPath(_)
            | ErrorKind::Postcopy(PostcopyError::DestinationGone)
    )
}

/// Offsets that probe the records named by `pick`, plus evenly spread ones.
fn offsets(map: &[Record], len: usize, pick: impl Fn(&Record, usize) -> bool) -> Vec<usize> {
    let mut extra = Vec::new();
    for (k, r) in map.iter().enumerate() {
        if pick(r, k) {
            extra.extend(probes(r));
        }
    }
    let v = spread_offsets(len, OFFSETS, &extra);
    assert!(v.len() >= OFFSETS, "{} offsets", v.len());
    v
}

/// Runs `job` for each item on `WORKERS` threads, each with its own state
/// made by `init`; panics in a worker fail the test.
fn run_parallel<T: Send + Sync + 'static, S>(
    items: Vec<T>,
    init: impl Fn(usize) -> S + Sync,
    job: impl Fn(&S, &T) + Sync,
) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        for w in 0..WORKERS {
            let (next, items, init, job) = (&next, &items, &init, &job);
            s.spawn(move || {
                let state = init(w);
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(k) else { break };
                    job(&state, item);
                }
            });
        }
    });
}

#[test]
fn precopy_survives_the_connection_cut_at_100_offsets() {
    let vm = SourceVm::boot(1);
    let stream = measure_precopy(&vm);
    drop(vm);
    let map = map_stream(&stream, &Configuration::new(MACHINE), PAGE);
    let last = map.last().unwrap();
    assert_eq!(last.what, "vmdesc", "{map:?}");
    assert_eq!(last.end(), stream.len(), "the map covers the stream");
    let first_part = map.iter().position(|r| r.what == "PART ram").unwrap();
    let last_part = map.iter().rposition(|r| r.what == "PART ram").unwrap();
    let cuts = offsets(&map, stream.len(), |r, k| {
        !r.what.starts_with("PART") || k == first_part || k == last_part
    });
    eprintln!(
        "precopy: {} byte stream, {} records, {} cut offsets",
        stream.len(),
        map.len(),
        cuts.len()
    );
    let slowest = Mutex::new(Duration::ZERO);
    let mid_section = std::sync::atomic::AtomicUsize::new(0);
    run_parallel(
        cuts,
        |w| SourceVm::boot(10 + w as u8),
        |vm, &cut| {
            let what = format!("precopy cut at {cut}");
            let (r, stats, dst, report) = precopy_through(vm, Cut::Forward(cut), false, &what);
            assert!(report.cut, "{what}: the proxy cut");
            assert_eq!(report.forward, cut, "{what}: bytes through");
            let e = r.expect_err(&what);
            assert!(is_link_failure(&e), "{what}: source error: {e}");
            assert_eq!(stats.status, MigrationStatus::Failed, "{what}");
            assert!(stats.error.is_some(), "{what}");
            vm.assert_intact_and_running(&what);
            let de = dst.result.expect_err(&what);
            assert!(is_broken_connection(&de), "{what}: destination error: {de}");
            // Cut inside a section's body: the error (stream ended, or the
            // connection reset) says which section.
            if let Some((_, name)) = section_body_at(&map, cut) {
                let want = format!("section '{name}'");
                assert!(de.to_string().contains(&want), "{what}: {de}");
                mid_section.fetch_add(1, Ordering::SeqCst);
            }
            assert_eq!(dst.stats.status, MigrationStatus::Failed, "{what}");
            {
                let mut s = slowest.lock().unwrap();
                *s = (*s).max(dst.took);
            }
            // The same VM, to a fresh destination, without the fault.
            let (r, _, dst, _) = precopy_through(vm, Cut::Never, false, &what);
            r.unwrap_or_else(|e| panic!("{what}: retry failed: {e}"));
            if let Err(e) = &dst.result {
                panic!("{what}: retry destination: {e}");
            }
            assert_same_vm(vm, &dst, &what);
            vm.restart();
        },
    );
    let named = mid_section.load(Ordering::SeqCst);
    eprintln!(
        "precopy: slowest destination failure {:?}; {named} cuts inside a section body named it",
        slowest.lock().unwrap()
    );
    assert!(named > OFFSETS / 2, "most cuts land inside a section body");
}

// ---- postcopy ----

const BLOCK: &str = "pc.ram";

/// The source's postcopy registry: RAM that may all go after the switch (its
/// first iteration stops at `gate`), and the cpu.
fn postcopy_registry(vm: &SourceVm, gate: &Gate) -> (Registry, Arc<AtomicU32>) {
    let ram = SyntheticRam::new(vm.mem.clone())
        .burst(16)
        .postcopy(BLOCK)
        .iterate_gate(gate.clone());
    let calls = ram.iterate_calls();
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 4, Box::new(ram))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, vm.cpu.clone())
        .unwrap();
    (reg, calls)
}

/// What a postcopy destination reports to the test.
enum DstEvent {
    /// Paused after the guest started here: listening for the recovery.
    Listening(std::net::SocketAddr),
    /// The end: the outcome, its memory, cpu, whether the guest ran here and
    /// the pages it read.
    Done(Box<PostcopyLanded>),
}

struct PostcopyLanded {
    result: Result<()>,
    mem: SharedMemory,
    cpu: Cpu,
    guest_ran: bool,
    guest_read: Option<Vec<Vec<u8>>>,
    stats: MigrationStats,
}

/// The destination guest: the pages it read, unless the destination failed.
type GuestThread = thread::JoinHandle<Option<Vec<Vec<u8>>>>;

/// The destination guest reads page `i`: fault, request it, wait (gives up
/// when `stop` is set: the destination failed).
fn fault_in(
    mem: &SharedMemory,
    requester: &Mutex<Option<PageRequester>>,
    i: usize,
    stop: &AtomicBool,
) -> Option<Vec<u8>> {
    loop {
        let ask = {
            let mut s = mem.lock();
            if s.received[i] {
                return Some(s.pages[i].clone());
            }
            let ask = !s.requested[i];
            s.requested[i] = true;
            ask
        };
        if stop.load(Ordering::SeqCst) {
            // The load ended: the page may have arrived since it was looked
            // at above (the last ones come just before the end).
            let s = mem.lock();
            return s.received[i].then(|| s.pages[i].clone());
        }
        if ask {
            let req = requester.lock().unwrap().clone().expect("listening");
            if req.request(BLOCK, (i * PAGE) as u64, PAGE as u32).is_err() {
                // The link is down (postcopy paused): ask again later.
                mem.lock().requested[i] = false;
            }
        }
        let s = mem.lock();
        if !s.received[i] {
            drop(mem.wait(s, Duration::from_millis(5)));
        }
    }
}

/// A fresh postcopy destination; its guest reads every page top down (the
/// source sends bottom up, so the guest faults).
fn postcopy_destination() -> (std::net::SocketAddr, Receiver<DstEvent>) {
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let addr = incoming.local_tcp_addr().unwrap();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mem = SharedMemory::zeroed(PAGES, PAGE);
        let ram = SyntheticRam::new(mem.clone()).postcopy(BLOCK).version(4);
        let requester = ram.requester();
        let cpu = Arc::new(Mutex::new(Cpu::default()));
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 4, Box::new(ram))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let guest: Arc<Mutex<Option<GuestThread>>> = Arc::new(Mutex::new(None));
        let (g2, m2, s2) = (guest.clone(), mem.clone(), stop.clone());
        let tx2 = tx.clone();
        let hooks = IncomingHooks::default()
            .with_on_postcopy_run(move || {
                let (mem, requester, stop) = (m2.clone(), requester.clone(), s2.clone());
                *g2.lock().unwrap() = Some(thread::spawn(move || {
                    (0..PAGES)
                        .rev()
                        .map(|i| fault_in(&mem, &requester, i, &stop))
                        .collect()
                }));
                Ok(())
            })
            .with_on_postcopy_paused(move |_err| {
                let inc = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into()))?;
                let _ = tx2.send(DstEvent::Listening(inc.local_tcp_addr().unwrap()));
                Ok(inc)
            });
        let mut opts = load_options();
        // Postcopy streams carry no vmdesc.
        opts.vmdesc = VmDescPolicy::IfPresent;
        let stats = StatsHandle::default();
        let result = run_incoming_with(incoming, &mut reg, opts, &stats, hooks);
        stop.store(true, Ordering::SeqCst);
        let guest = guest.lock().unwrap().take();
        let guest_ran = guest.is_some();
        let guest_read = guest.and_then(|g| g.join().unwrap());
        let cpu = cpu.lock().unwrap().clone();
        let _ = tx.send(DstEvent::Done(Box::new(PostcopyLanded {
            result,
            mem,
            cpu,
            guest_ran,
            guest_read,
            stats: stats.snapshot(),
        })));
    });
    (addr, rx)
}

/// How a postcopy run with a fault ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Completed without a fault (the cut was past the end of the traffic).
    Clean,
    /// The fault came before the switch: a precopy failure.
    FailedInPrecopy,
    /// Both sides paused, recovery resumed, the migration completed.
    Recovered,
    /// The source switched but the destination failed before starting the
    /// guest: the source waits in postcopy-paused (it cannot know), the
    /// operator cancels and restarts it.
    DestinationNeverRan,
    /// The destination loaded everything but its SHUT was lost: the source
    /// waits in postcopy-paused, the operator cancels it (the guest runs on
    /// the destination, whole).
    ShutLost,
}

/// One postcopy migration of `vm` through a proxy that cuts as `cut` says
/// (the switch is asked for once `setup_bytes`, what precedes the first
/// iteration, went through; postcopy limited to `postcopy_bandwidth`, 0:
/// none); checks everything the outcome promises and
/// returns it, with the proxy's report.
fn postcopy_through(
    vm: &SourceVm,
    cut: Cut,
    capture: bool,
    setup_bytes: usize,
    postcopy_bandwidth: u64,
    what: &str,
) -> (Outcome, ProxyReport) {
    let (dst, events) = postcopy_destination();
    let proxy = cut_proxy(dst, cut, capture);
    let gate = Gate::closed();
    let (reg, iterations) = postcopy_registry(vm, &gate);
    let mut cfg = config(
        MigrationUri::Tcp(proxy.addr.to_string()),
        MigrationCapabilities::default()
            .with_postcopy_ram(true)
            .with_return_path(true),
    );
    cfg.params.max_postcopy_bandwidth = postcopy_bandwidth;
    let handle = start_migration(cfg, reg, vm.control()).unwrap();
    let stats = handle.stats();
    // Switch after exactly one precopy iteration (or when the fault came first)
    // and once what the source wrote before it went through the proxy (or the
    // cut came): a cut there is then seen before the switch, as in precopy.
    let deadline = Instant::now() + WAIT;
    while iterations.load(Ordering::SeqCst) == 0 && !stats.snapshot().status.is_terminal() {
        assert!(Instant::now() < deadline, "{what}: no iteration started");
        thread::yield_now();
    }
    proxy.wait_passed(setup_bytes);
    // A cut that came first is complete (both sockets shut) before the switch
    // is asked for: "cut before the switch" is what the source then meets.
    proxy.wait_cut_done();
    handle.start_postcopy();
    gate.open();
    let mut landed = None;
    let mut recovered = false;
    let mut cancelled = false;
    let mut shut_lost = false;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "{what}: no end: {:?}",
            stats.snapshot()
        );
        let s = stats.snapshot();
        if s.status.is_terminal() {
            break;
        }
        if s.status == MigrationStatus::PostcopyPaused && !recovered && !cancelled {
            assert!(s.error.is_some(), "{what}: paused with the reason");
            match events.recv_timeout(WAIT) {
                Ok(DstEvent::Listening(addr)) => {
                    handle.resume(MigrationUri::Tcp(addr.to_string())).unwrap();
                    recovered = true;
                }
                Ok(DstEvent::Done(d)) => {
                    // Nothing to recover: the operator ends the migration.
                    shut_lost = d.result.is_ok();
                    landed = Some(d);
                    handle.cancel();
                    cancelled = true;
                }
                Err(_) => panic!("{what}: the destination neither paused nor ended"),
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    let (result, s) = wait_source(handle, what);
    let landed = match landed {
        Some(l) => l,
        None => match events.recv_timeout(WAIT) {
            Ok(DstEvent::Done(d)) => d,
            Ok(DstEvent::Listening(_)) => {
                panic!("{what}: the destination paused but the source ended: {s:?}")
            }
            Err(_) => panic!("{what}: the destination hangs"),
        },
    };
    let report = proxy.report();
    let outcome = if shut_lost {
        Outcome::ShutLost
    } else if cancelled {
        Outcome::DestinationNeverRan
    } else if recovered {
        Outcome::Recovered
    } else if result.is_ok() {
        Outcome::Clean
    } else {
        Outcome::FailedInPrecopy
    };
    match outcome {
        Outcome::Clean | Outcome::Recovered | Outcome::ShutLost => {
            if outcome == Outcome::ShutLost {
                let e = result.unwrap_err();
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Cancelled {
                            in_postcopy_pause: true
                        }
                    ),
                    "{what}: {e}"
                );
            } else {
                result.unwrap_or_else(|e| panic!("{what}: source: {e}"));
                assert_eq!(s.status, MigrationStatus::Completed, "{what}");
            }
            if let Err(e) = &landed.result {
                panic!("{what}: destination: {e}");
            }
            assert_eq!(landed.stats.status, MigrationStatus::Completed, "{what}");
            assert!(!vm.running(), "{what}: the source stays stopped");
            // (A clean end may still see the proxy cut: right after the last byte.)
            assert!(outcome == Outcome::Clean || report.cut, "{what}");
            // No page lost: what the guest read and what the destination holds
            // are the source's memory, page for page.
            let src = vm.mem.pages();
            let read = landed.guest_read.as_ref().expect("the guest ran");
            for (k, page) in read.iter().enumerate() {
                assert!(
                    *page == src[PAGES - 1 - k],
                    "{what}: guest read a wrong page"
                );
            }
            let d = landed.mem.lock();
            assert!(d.received.iter().all(|r| *r), "{what}: a page never came");
            for (i, (got, want)) in d.pages.iter().zip(&src).enumerate() {
                assert!(got == want, "{what}: page {i} lost");
            }
            assert_eq!(landed.cpu, *vm.cpu.lock().unwrap(), "{what}: cpu");
            vm.restart();
        }
        Outcome::FailedInPrecopy => {
            assert!(report.cut, "{what}");
            let e = result.unwrap_err();
            assert!(is_link_failure(&e), "{what}: source error: {e}");
            assert_eq!(s.status, MigrationStatus::Failed, "{what}");
            vm.assert_intact_and_running(what);
            let de = landed.result.as_ref().unwrap_err();
            assert!(is_broken_connection(de), "{what}: destination: {de}");
            assert!(!landed.guest_ran, "{what}: the destination never ran");
        }
        Outcome::DestinationNeverRan => {
            assert!(report.cut, "{what}");
            let e = result.unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Cancelled {
                        in_postcopy_pause: true
                    }
                ),
                "{what}: {e}"
            );
            let de = landed.result.as_ref().unwrap_err();
            assert!(is_broken_connection(de), "{what}: destination: {de}");
            assert!(!landed.guest_ran, "{what}: the destination never ran");
            // The source stopped for the switch and may not guess; its state is
            // whole, so the operator restarts it.
            assert!(!vm.running(), "{what}: the source does not resume alone");
            vm.restart();
            vm.assert_intact_and_running(what);
        }
    }
    (outcome, report)
}

/// The outcomes a cut at `cut` may have: before `setup` (what precedes the
/// first iteration) the source sees it before it switches; before `ran` the
/// destination cannot have started the guest; from `ran` on it has.
fn expected_postcopy_outcome(cut: usize, setup: usize, ran: usize) -> &'static [Outcome] {
    if cut < setup {
        // Cut before the switch was asked for: the source checks the link
        // (peer_hung_up) before the package goes out, so this is a precopy
        // failure and the source VM runs on, every time.
        &[Outcome::FailedInPrecopy]
    } else if cut < ran {
        // The source may notice the cut before the package goes out (a
        // precopy failure) or only once it handed the whole package to the
        // socket (it pauses; the destination lacks RUN).
        &[Outcome::FailedInPrecopy, Outcome::DestinationNeverRan]
    } else {
        // A cut at (or, the stream varying a little with the guest's faults,
        // near) the very end can leave only SHUT undelivered.
        &[Outcome::Recovered, Outcome::Clean, Outcome::ShutLost]
    }
}

#[test]
fn postcopy_survives_the_connection_cut_at_100_offsets() {
    let vm = SourceVm::boot(2);
    let (outcome, report) = postcopy_through(&vm, Cut::Never, true, 0, 0, "clean postcopy run");
    assert_eq!(outcome, Outcome::Clean);
    drop(vm);
    let stream = report.captured;
    let map = map_stream(&stream, &Configuration::new(MACHINE), PAGE);
    assert_eq!(map.last().unwrap().end(), stream.len(), "{map:?}");
    let at = |what: &str| map.iter().position(|r| r.what == what).unwrap();
    let package = at("package");
    let run = at("command POSTCOPY_RUN");
    // The switch starts after the one precopy PART (no discards: nothing was
    // dirtied): with PING(2) before the package.
    let switch = map[package - 1].at;
    let ran = map[run].end();
    let first_part = at("PART ram");
    let first_postcopy_part = package
        + map[package..]
            .iter()
            .position(|r| r.what == "PART ram")
            .unwrap();
    let last_part = map.iter().rposition(|r| r.what == "PART ram").unwrap();
    let setup = map[first_part].at;
    // The boundaries anywhere, and 100 offsets spread over what follows RUN.
    let mut cuts = spread_offsets(stream.len() - ran, OFFSETS, &[])
        .into_iter()
        .map(|o| ran + o)
        .collect::<Vec<_>>();
    for (k, r) in map.iter().enumerate() {
        if !r.what.starts_with("PART") || [first_part, first_postcopy_part, last_part].contains(&k)
        {
            cuts.extend(probes(r));
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    eprintln!(
        "postcopy: {} byte stream, {} records, switch at {switch}, RUN ends at {ran}, {} cut offsets",
        stream.len(),
        map.len(),
        cuts.len()
    );
    let tally = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    run_parallel(
        cuts,
        |w| SourceVm::boot(20 + w as u8),
        |vm, &cut| {
            let what = format!("postcopy cut at {cut}");
            let (outcome, report) = postcopy_through(vm, Cut::Forward(cut), false, setup, 0, &what);
            let allowed = expected_postcopy_outcome(cut, setup, ran);
            assert!(
                allowed.contains(&outcome),
                "{what}: {outcome:?}, expected one of {allowed:?} (setup {setup}, RUN {ran})"
            );
            if outcome != Outcome::Clean {
                assert_eq!(report.forward, cut, "{what}: bytes through");
            }
            *tally
                .lock()
                .unwrap()
                .entry(format!("{outcome:?}"))
                .or_default() += 1;
        },
    );
    eprintln!("postcopy outcomes: {:?}", tally.lock().unwrap());
}

#[test]
fn postcopy_cut_before_the_switch_fails_in_precopy_and_the_vm_resumes() {
    // The switch is asked for once the whole setup went through (or the cut
    // came): a cut anywhere in it means the destination is gone when the
    // source is about to send the package. The source sees that
    // (ReadWrite::peer_hung_up) instead of handing the package to a dead
    // socket and pausing for a recovery that cannot come.
    let vm = SourceVm::boot(4);
    let (outcome, report) = postcopy_through(&vm, Cut::Never, true, 0, 0, "clean postcopy run");
    assert_eq!(outcome, Outcome::Clean);
    drop(vm);
    let map = map_stream(&report.captured, &Configuration::new(MACHINE), PAGE);
    let setup = map.iter().find(|r| r.what == "PART ram").unwrap().at;
    let cuts = spread_offsets(setup, 8, &[0, setup - 1]);
    run_parallel(
        cuts,
        |w| SourceVm::boot(40 + w as u8),
        |vm, &cut| {
            let what = format!("cut at {cut} before the switch");
            let (outcome, _) = postcopy_through(vm, Cut::Forward(cut), false, setup, 0, &what);
            // postcopy_through checked the rest: source failed with a link
            // error and runs intact, the destination never ran the guest.
            assert_eq!(outcome, Outcome::FailedInPrecopy, "{what}");
        },
    );
}

/// Postcopy at 8 MiB/s: the 1 MiB of RAM takes about 120 ms, so the guest's
/// faults (page requests on the return path) spread over the run.
const PACED: u64 = 8 * 1024 * 1024;

#[test]
fn postcopy_survives_the_return_path_cut() {
    let vm = SourceVm::boot(3);
    let (outcome, report) = postcopy_through(&vm, Cut::Never, true, 0, PACED, "clean postcopy run");
    assert_eq!(outcome, Outcome::Clean);
    drop(vm);
    let map = map_stream(&report.captured, &Configuration::new(MACHINE), PAGE);
    let setup = map.iter().find(|r| r.what == "PART ram").unwrap().at;
    let back = report.back;
    assert!(back > 0, "the destination answered on the return path");
    let cuts = spread_offsets(back, 24, &[0, 1, 7, 8, 9, back - 1]);
    eprintln!(
        "return path: {back} bytes in a clean run, {} cut offsets",
        cuts.len()
    );
    let tally = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    run_parallel(
        cuts,
        |w| SourceVm::boot(30 + w as u8),
        |vm, &cut| {
            let what = format!("return path cut at {cut}");
            let (outcome, report) =
                postcopy_through(vm, Cut::Return(cut), false, setup, PACED, &what);
            if report.cut {
                assert_eq!(report.back, cut, "{what}: bytes through");
            }
            *tally
                .lock()
                .unwrap()
                .entry(format!("{outcome:?}"))
                .or_default() += 1;
        },
    );
    eprintln!("return path outcomes: {:?}", tally.lock().unwrap());
}
