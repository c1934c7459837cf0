//! Postcopy end to end over a unix socket: precopy starts, the switch to
//! postcopy sends discards and the packaged device state, the destination guest
//! starts before all pages arrived and faults on missing ones, the source serves
//! those requests first, and in the end both sides hold the same memory.

mod common;
use common::net::cutting_proxy;
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::{Vm, VmLog};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationParameters, MigrationStatus, MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{
    Configuration, InstanceId, LoadOptions, PageRequester, Registry, TargetPage,
};
use vmstate_runtime::VmState;

/// Guest RAM size, whatever the target page size.
const RAM_BYTES: usize = 2 * 1024 * 1024;
const BLOCK: &str = "pc.ram";

fn page_bytes(i: usize, gen: u8, page: usize) -> Vec<u8> {
    (0..page).map(|b| (i as u8) ^ (b as u8) ^ gen).collect()
}

/// What the running destination guest does on access: fault, request, wait
/// (one request is one target page of `page` bytes).
fn read_page(
    mem: &SharedMemory,
    requester: &Mutex<Option<PageRequester>>,
    i: usize,
    page: usize,
) -> Vec<u8> {
    loop {
        let ask = {
            let mut s = mem.lock();
            if s.received[i] {
                return s.pages[i].clone();
            }
            let ask = !s.requested[i];
            s.requested[i] = true;
            ask
        };
        // Ask without holding the memory lock: the loader must keep applying
        // pages even while the return path is slow or broken.
        if ask {
            let req = requester.lock().unwrap().clone().expect("listening");
            if req.request(BLOCK, (i * page) as u64, page as u32).is_err() {
                // The link is down (postcopy paused): ask again later.
                mem.lock().requested[i] = false;
            }
        }
        let s = mem.lock();
        if !s.received[i] {
            drop(mem.wait(s, Duration::from_millis(20)));
        }
    }
}

/// The destination guest: returns the pages it read.
type GuestThread = thread::JoinHandle<Vec<Vec<u8>>>;

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
}

#[test]
fn postcopy_runs_the_destination_early_and_serves_faults() {
    postcopy(None, TargetPage::X86);
}

#[test]
fn postcopy_recovers_after_the_connection_drops() {
    // 400 kB is past the switch (about 100 kB of precopy plus the package) and
    // well before the end of the 2 MiB of RAM.
    postcopy(Some(400_000), TargetPage::X86);
}

/// A 16 KiB target page (an aarch64-style target whose minimum is 4 KiB) flows
/// through: the configuration record carries its page bits, POSTCOPY_ADVISE
/// announces 16 KiB and the destination accepts it, discards, page requests
/// and the recovery's received bitmaps are in 16 KiB pages, and nothing is lost.
#[test]
fn postcopy_with_16_kib_target_pages_recovers_at_that_granularity() {
    postcopy(Some(400_000), TargetPage::new(14, 12).unwrap());
}

fn postcopy(cut: Option<usize>, target_page: TargetPage) {
    let page = target_page.size() as usize;
    let pages = RAM_BYTES / page;
    let mem = SharedMemory::new(pages, page, |i| page_bytes(i, 0, page));
    let vm = Arc::new(VmLog::default());
    // The source guest rewrites pages while it runs.
    let (m2, r2) = (mem.clone(), vm.clone());
    let writer = thread::spawn(move || {
        let mut gen = 1u8;
        for k in 0..400 {
            if !r2.running() {
                break;
            }
            let i = (k * 37) % pages;
            {
                let mut m = m2.lock();
                if !r2.running() {
                    break;
                }
                m.pages[i] = page_bytes(i, gen, page);
                m.dirty[i] = true;
            }
            gen = gen.wrapping_add(1);
            thread::sleep(Duration::from_millis(1));
        }
    });

    let mut src_reg = Registry::new();
    src_reg
        .register_savevm_live(
            "ram",
            0,
            4,
            Box::new(SyntheticRam::new(mem.clone()).burst(8).postcopy(BLOCK)),
        )
        .unwrap();
    src_reg
        .vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu { rip: 0x1234 })))
        .unwrap();

    let dst_mem = SharedMemory::zeroed(pages, page);
    let dst_ram = SyntheticRam::new(dst_mem.clone())
        .postcopy(BLOCK)
        .version(4);
    let dst_requester = dst_ram.requester();
    let dst_cpu = Arc::new(Mutex::new(Cpu::default()));
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let dst_addr = incoming.local_tcp_addr().unwrap();
    let src_uri = match cut {
        Some(limit) => MigrationUri::Tcp(cutting_proxy(limit, dst_addr).to_string()),
        None => MigrationUri::Tcp(dst_addr.to_string()),
    };
    // Where the destination listens again after a failure (postcopy recovery).
    let (reconnect_tx, reconnect_rx) = std::sync::mpsc::channel::<std::net::SocketAddr>();
    let guest_reads = Arc::new(AtomicU64::new(0));
    let (mem2, req2) = (dst_mem.clone(), dst_requester.clone());
    let (cpu2, reads2) = (dst_cpu.clone(), guest_reads.clone());
    let dst_stats = StatsHandle::default();
    let dst_stats2 = dst_stats.clone();
    let dst = thread::spawn(move || {
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 4, Box::new(dst_ram))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, cpu2.clone()).unwrap();
        let guest: Arc<Mutex<Option<GuestThread>>> = Arc::new(Mutex::new(None));
        let g2 = guest.clone();
        let hooks = IncomingHooks::default()
            .with_on_postcopy_run(move || {
                // Device state is in: the cpu is already loaded here.
                assert_eq!(cpu2.lock().unwrap().rip, 0x1234);
                let (mem, requester) = (mem2.clone(), req2.clone());
                let reads = reads2.clone();
                *g2.lock().unwrap() = Some(thread::spawn(move || {
                    // The guest touches memory from the top down: the source sends
                    // bottom up, so these fault.
                    (0..pages)
                        .rev()
                        .map(|i| {
                            reads.fetch_add(1, Ordering::Relaxed);
                            read_page(&mem, &requester, i, page)
                        })
                        .collect()
                }));
                Ok(())
            })
            .with_on_postcopy_paused(move |_err| {
                let inc = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into()))?;
                reconnect_tx.send(inc.local_tcp_addr().unwrap()).unwrap();
                Ok(inc)
            });
        let r = run_incoming_with(
            incoming,
            &mut reg,
            LoadOptions::default()
                .with_configuration(Configuration::for_target("pc-i440fx-7.2", target_page)),
            &dst_stats2,
            hooks,
        );
        let seen = guest.lock().unwrap().take().map(|g| g.join().unwrap());
        (r, seen)
    });

    let handle = start_migration(
        MigrationConfig::new(src_uri)
            .with_machine("pc-i440fx-7.2")
            .with_params(
                MigrationParameters::default()
                    .with_downtime_limit_ms(10)
                    .with_max_bandwidth(1024 * 1024)
                    .with_max_postcopy_bandwidth(2 * 1024 * 1024),
            )
            .with_caps(
                MigrationCapabilities::default()
                    .with_postcopy_ram(true)
                    .with_return_path(true),
            )
            .with_target_page(target_page),
        src_reg,
        Box::new(Vm(vm.clone())),
    )
    .unwrap();
    let stats = handle.stats();
    while stats.snapshot().status != MigrationStatus::Active {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(60));
    handle.start_postcopy();
    let mut saw_postcopy = false;
    let mut recovered = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let s = stats.snapshot();
        if std::time::Instant::now() > deadline {
            handle.cancel();
            panic!("postcopy did not finish in 90 s: {s:?}");
        }
        saw_postcopy |= s.status == MigrationStatus::PostcopyActive;
        if s.status == MigrationStatus::PostcopyPaused && !recovered {
            assert!(cut.is_some(), "paused without a network failure: {s:?}");
            assert!(s.error.is_some());
            let addr = reconnect_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("destination paused and listens again");
            handle.resume(MigrationUri::Tcp(addr.to_string())).unwrap();
            recovered = true;
        }
        if s.status.is_terminal() {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        recovered,
        cut.is_some(),
        "recovery happened exactly when the link broke"
    );
    let (_, result) = handle.wait();
    result.unwrap();
    writer.join().unwrap();
    assert!(saw_postcopy, "went through postcopy-active");
    assert!(!vm.running(), "the source stays stopped");
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Completed);
    assert!(s.downtime.is_some());

    let (r, seen) = dst.join().unwrap();
    r.unwrap();
    assert_eq!(dst_stats.snapshot().status, MigrationStatus::Completed);
    let seen = seen.expect("guest ran on the destination");
    let src = mem.pages();
    // What the destination guest read is the source's memory at switchover.
    for (k, page) in seen.iter().enumerate() {
        let i = pages - 1 - k;
        assert!(*page == src[i], "guest read a wrong page {i}");
    }
    let d = dst_mem.lock();
    assert!(d.received.iter().all(|r| *r));
    assert!(d.pages == *src, "destination memory equals the source's");
    let requests = dst_requester
        .lock()
        .unwrap()
        .as_ref()
        .map(|r| r.requests_sent())
        .unwrap();
    assert!(requests > 0, "the guest faulted and asked for pages");
    assert_eq!(guest_reads.load(Ordering::Relaxed), pages as u64);
}
