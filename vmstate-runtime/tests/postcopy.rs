//! Postcopy end to end over a unix socket: precopy starts, the switch to
//! postcopy sends discards and the packaged device state, the destination guest
//! starts before all pages arrived and faults on missing ones, the source serves
//! those requests first, and in the end both sides hold the same memory.

mod common;
use common::net::cutting_proxy;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationParameters, MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{
    BlockRanges, Configuration, InstanceId, IterateStatus, LoadOptions, PageRequester, Pending,
    QemuVersion, Registry, SaveVmHandlers, SectionReader, SectionWriter,
};
use vmstate_runtime::{Error, Result, VmState};

const PAGE: usize = 4096;
const PAGES: usize = 512;
const BLOCK: &str = "pc.ram";

fn page_bytes(i: usize, gen: u8) -> Vec<u8> {
    (0..PAGE).map(|b| (i as u8) ^ (b as u8) ^ gen).collect()
}

/// Source RAM: dirty and sent bitmaps, urgent requests first.
struct SourceRam {
    mem: Arc<Mutex<Vec<Vec<u8>>>>,
    dirty: Arc<Mutex<Vec<bool>>>,
    sent: Vec<bool>,
    urgent: VecDeque<usize>,
    burst: usize,
}

impl SourceRam {
    fn send_page(&mut self, w: &mut SectionWriter, i: usize) -> Result<()> {
        let data = self.mem.lock().unwrap()[i].clone();
        w.write_u32(i as u32)?;
        w.write_bytes(&data)?;
        self.dirty.lock().unwrap()[i] = false;
        self.sent[i] = true;
        Ok(())
    }

    fn dirty_count(&self) -> usize {
        self.dirty.lock().unwrap().iter().filter(|d| **d).count()
    }

    fn send_some(&mut self, w: &mut SectionWriter, limit: usize) -> Result<()> {
        let mut n = 0;
        while let Some(i) = self.urgent.pop_front() {
            if self.dirty.lock().unwrap()[i] {
                self.send_page(w, i)?;
                n += 1;
            }
        }
        for i in 0..PAGES {
            if n >= limit {
                break;
            }
            if self.dirty.lock().unwrap()[i] {
                self.send_page(w, i)?;
                n += 1;
            }
        }
        w.write_u32(u32::MAX)
    }
}

impl SaveVmHandlers for SourceRam {
    fn is_iterative(&self) -> bool {
        true
    }
    fn has_postcopy(&self) -> bool {
        true
    }
    fn save_setup(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.dirty.lock().unwrap().fill(true);
        w.write_u32(PAGES as u32)
    }
    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        let burst = self.burst;
        self.send_some(w, burst)?;
        Ok(if self.dirty_count() == 0 {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }
    fn state_pending_estimate(&mut self) -> Pending {
        // With postcopy-ram, all of RAM may be sent after the switch.
        Pending {
            must_precopy: 0,
            can_postcopy: (self.dirty_count() * PAGE) as u64,
        }
    }
    fn save_live_complete_postcopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.send_some(w, usize::MAX)
    }
    fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.send_some(w, usize::MAX)
    }
    fn postcopy_discard_ranges(&mut self) -> Result<Vec<BlockRanges>> {
        let dirty = self.dirty.lock().unwrap();
        let ranges: Vec<(u64, u64)> = (0..PAGES)
            .filter(|&i| self.sent[i] && dirty[i])
            .map(|i| ((i * PAGE) as u64, PAGE as u64))
            .collect();
        Ok(vec![(BLOCK.to_string(), ranges)])
    }
    fn queue_page_request(&mut self, block: &str, start: u64, len: u64) -> Result<bool> {
        if block != BLOCK {
            return Ok(false);
        }
        let first = start as usize / PAGE;
        let n = (len as usize).div_ceil(PAGE);
        if first + n > PAGES {
            return Err(Error::invalid(format!(
                "request {start:#x}+{len:#x} beyond RAM"
            )));
        }
        self.urgent.extend(first..first + n);
        Ok(true)
    }
    fn ram_block_names(&self) -> Vec<String> {
        vec![BLOCK.to_string()]
    }
    fn postcopy_resume_bitmap(&mut self, block: &str, received: &[u8]) -> Result<()> {
        if block != BLOCK || received.len() * 8 < PAGES {
            return Err(Error::invalid("bad bitmap"));
        }
        let mut dirty = self.dirty.lock().unwrap();
        for (i, d) in dirty.iter_mut().enumerate() {
            let word = u64::from_le_bytes(received[i / 64 * 8..i / 64 * 8 + 8].try_into().unwrap());
            if word & (1 << (i % 64)) == 0 {
                *d = true;
            }
        }
        Ok(())
    }
    fn load_state(&mut self, _: &mut SectionReader, _: u32) -> Result<()> {
        Err(Error::invalid("source only"))
    }
}

/// Destination RAM: pages arrive from the stream; the running guest waits for
/// missing ones after asking the source.
struct DstState {
    pages: Vec<Vec<u8>>,
    received: Vec<bool>,
    requested: Vec<bool>,
}

#[derive(Clone)]
struct DstRam {
    state: Arc<(Mutex<DstState>, Condvar)>,
    requester: Arc<Mutex<Option<PageRequester>>>,
    expect_start: Arc<AtomicBool>,
}

impl DstRam {
    fn new() -> Self {
        DstRam {
            state: Arc::new((
                Mutex::new(DstState {
                    pages: vec![vec![0; PAGE]; PAGES],
                    received: vec![false; PAGES],
                    requested: vec![false; PAGES],
                }),
                Condvar::new(),
            )),
            requester: Arc::new(Mutex::new(None)),
            expect_start: Arc::new(AtomicBool::new(false)),
        }
    }

    /// What the running guest does on access: fault, request, wait.
    fn read_page(&self, i: usize) -> Vec<u8> {
        let (lock, cv) = &*self.state;
        loop {
            let ask = {
                let mut s = lock.lock().unwrap();
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
                let req = self.requester.lock().unwrap().clone().expect("listening");
                if req.request(BLOCK, (i * PAGE) as u64, PAGE as u32).is_err() {
                    // The link is down (postcopy paused): ask again later.
                    lock.lock().unwrap().requested[i] = false;
                }
            }
            let s = lock.lock().unwrap();
            if !s.received[i] {
                let _ = cv.wait_timeout(s, Duration::from_millis(20)).unwrap();
            }
        }
    }
}

impl SaveVmHandlers for DstRam {
    fn is_iterative(&self) -> bool {
        true
    }
    fn load_setup(&mut self) -> Result<()> {
        self.expect_start.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn load_state(&mut self, r: &mut SectionReader, _v: u32) -> Result<()> {
        if self.expect_start.swap(false, Ordering::SeqCst) {
            let n = r.read_u32()?;
            return if n as usize == PAGES {
                Ok(())
            } else {
                Err(Error::invalid("page count"))
            };
        }
        loop {
            let i = r.read_u32()?;
            if i == u32::MAX {
                return Ok(());
            }
            let i = i as usize;
            if i >= PAGES {
                return Err(Error::invalid(format!("page {i} out of range")));
            }
            let mut page = vec![0; PAGE];
            r.read_bytes(&mut page)?;
            let (lock, cv) = &*self.state;
            let mut s = lock.lock().unwrap();
            s.pages[i] = page;
            s.received[i] = true;
            cv.notify_all();
        }
    }
    fn postcopy_discard(&mut self, block: &str, ranges: &[(u64, u64)]) -> Result<bool> {
        if block != BLOCK {
            return Ok(false);
        }
        let (lock, _) = &*self.state;
        let mut s = lock.lock().unwrap();
        for &(start, len) in ranges {
            let first = start as usize / PAGE;
            let n = len as usize / PAGE;
            if first + n > PAGES {
                return Err(Error::invalid("discard beyond RAM"));
            }
            for i in first..first + n {
                s.received[i] = false;
            }
        }
        Ok(true)
    }
    fn postcopy_listen(&mut self, requester: PageRequester) -> Result<()> {
        *self.requester.lock().unwrap() = Some(requester);
        Ok(())
    }
    fn postcopy_received_bitmap(&mut self, block: &str) -> Result<Option<Vec<u8>>> {
        if block != BLOCK {
            return Ok(None);
        }
        let (lock, _) = &*self.state;
        let s = lock.lock().unwrap();
        let mut words = vec![0u64; PAGES.div_ceil(64)];
        for (i, r) in s.received.iter().enumerate() {
            if *r {
                words[i / 64] |= 1 << (i % 64);
            }
        }
        Ok(Some(words.iter().flat_map(|w| w.to_le_bytes()).collect()))
    }
}

/// The destination guest: returns the pages it read.
type GuestThread = thread::JoinHandle<Vec<Vec<u8>>>;

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
}

struct Vm {
    running: Arc<AtomicBool>,
}

impl VmControl for Vm {
    fn pause(&mut self) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn postcopy_runs_the_destination_early_and_serves_faults() {
    postcopy(None);
}

#[test]
fn postcopy_recovers_after_the_connection_drops() {
    // 400 kB is past the switch (about 100 kB of precopy plus the package) and
    // well before the end of the 2 MiB of RAM.
    postcopy(Some(400_000));
}

fn postcopy(cut: Option<usize>) {
    let mem = Arc::new(Mutex::new(
        (0..PAGES).map(|i| page_bytes(i, 0)).collect::<Vec<_>>(),
    ));
    let dirty = Arc::new(Mutex::new(vec![true; PAGES]));
    let running = Arc::new(AtomicBool::new(true));
    // The source guest rewrites pages while it runs.
    let (m2, d2, r2) = (mem.clone(), dirty.clone(), running.clone());
    let writer = thread::spawn(move || {
        let mut gen = 1u8;
        for k in 0..400 {
            if !r2.load(Ordering::SeqCst) {
                break;
            }
            let i = (k * 37) % PAGES;
            {
                let mut m = m2.lock().unwrap();
                let mut d = d2.lock().unwrap();
                if !r2.load(Ordering::SeqCst) {
                    break;
                }
                m[i] = page_bytes(i, gen);
                d[i] = true;
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
            Box::new(SourceRam {
                mem: mem.clone(),
                dirty: dirty.clone(),
                sent: vec![false; PAGES],
                urgent: VecDeque::new(),
                burst: 8,
            }),
        )
        .unwrap();
    src_reg
        .vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu { rip: 0x1234 })))
        .unwrap();

    let dst_ram = DstRam::new();
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
    let (ram2, cpu2, reads2) = (dst_ram.clone(), dst_cpu.clone(), guest_reads.clone());
    let dst_stats = StatsHandle::default();
    let dst_stats2 = dst_stats.clone();
    let dst = thread::spawn(move || {
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 4, Box::new(ram2.clone()))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, cpu2.clone()).unwrap();
        let guest: Arc<Mutex<Option<GuestThread>>> = Arc::new(Mutex::new(None));
        let g2 = guest.clone();
        let hooks = IncomingHooks {
            on_postcopy_run: Some(Box::new(move || {
                // Device state is in: the cpu is already loaded here.
                assert_eq!(cpu2.lock().unwrap().rip, 0x1234);
                let ram = ram2.clone();
                let reads = reads2.clone();
                *g2.lock().unwrap() = Some(thread::spawn(move || {
                    // The guest touches memory from the top down: the source sends
                    // bottom up, so these fault.
                    (0..PAGES)
                        .rev()
                        .map(|i| {
                            reads.fetch_add(1, Ordering::Relaxed);
                            ram.read_page(i)
                        })
                        .collect()
                }));
                Ok(())
            })),
            switchover_ack: false,
            on_postcopy_paused: Some(Box::new(move |_err| {
                let inc = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into()))?;
                reconnect_tx.send(inc.local_tcp_addr().unwrap()).unwrap();
                Ok(inc)
            })),
        };
        let r = run_incoming_with(
            incoming,
            &mut reg,
            LoadOptions {
                version: QemuVersion::V7_2,
                configuration: Some(Configuration::new("pc-i440fx-7.2")),
            },
            &dst_stats2,
            hooks,
        );
        let seen = guest.lock().unwrap().take().map(|g| g.join().unwrap());
        (r, seen)
    });

    let handle = start_migration(
        MigrationConfig {
            uri: src_uri,
            machine: "pc-i440fx-7.2".into(),
            version: QemuVersion::V7_2,
            params: MigrationParameters {
                downtime_limit_ms: 10,
                max_bandwidth: 1024 * 1024,
                max_postcopy_bandwidth: 2 * 1024 * 1024,
            },
            caps: MigrationCapabilities {
                postcopy_ram: true,
                return_path: true,
                ..Default::default()
            },
        },
        src_reg,
        Box::new(Vm {
            running: running.clone(),
        }),
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
    assert!(!running.load(Ordering::SeqCst), "the source stays stopped");
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Completed);
    assert!(s.downtime.is_some());

    let (r, seen) = dst.join().unwrap();
    r.unwrap();
    assert_eq!(dst_stats.snapshot().status, MigrationStatus::Completed);
    let seen = seen.expect("guest ran on the destination");
    let src = mem.lock().unwrap();
    // What the destination guest read is the source's memory at switchover.
    for (k, page) in seen.iter().enumerate() {
        let i = PAGES - 1 - k;
        assert!(*page == src[i], "guest read a wrong page {i}");
    }
    let (lock, _) = &*dst_ram.state;
    let d = lock.lock().unwrap();
    assert!(d.received.iter().all(|r| *r));
    assert!(d.pages == *src, "destination memory equals the source's");
    let requests = dst_ram
        .requester
        .lock()
        .unwrap()
        .as_ref()
        .map(|r| r.requests_sent())
        .unwrap();
    assert!(requests > 0, "the guest faulted and asked for pages");
    assert_eq!(guest_reads.load(Ordering::Relaxed), PAGES as u64);
}
