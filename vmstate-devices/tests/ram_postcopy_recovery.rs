//! Postcopy page requests after a recovery: the destination's accessor must
//! reach the source over the new connection's return path. The source's
//! background walk is throttled so hard that a page the accessor wants after
//! the recovery can only arrive because the accessor asked for it on the new
//! link; a request sent to the dead link would leave the accessor waiting.
//! A request swallowed by the link as it broke is asked again on the new one.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_devices::ram::protocol::X86_TARGET_PAGE_SIZE as PS;
use vmstate_devices::ram::{
    PostcopyAccess, RamBlockList, RamBlockSpec, RamCounters, RamError, RamSection,
    RamSectionConfig, VmMemoryDirtyLog,
};
use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationHandle, MigrationParameters, MigrationStatus, MigrationUri,
    StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, LoadOptions, Registry, RpMessage};
use vmstate_runtime::wire::Writer;

mod common;
use common::link::{await_stats, Proxy, StillGuest};

const MACHINE: &str = "pc-i440fx-7.2";
/// pc.ram: 2 MiB.
const RAM_PAGES: u64 = 512;
/// One page per 100 ms rate-limit window: the walk would need about a minute
/// for pc.ram, longer than the accessor waits; the test needs seconds.
const CRAWL: u64 = 10 * PS;
/// Only a guard against a hang; the test passes long before.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn shared_ram() -> Arc<Mutex<RamBlockList>> {
    Arc::new(Mutex::new(
        RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", RAM_PAGES * PS)]).unwrap(),
    ))
}

/// No page is zero: a ZERO record costs a few bytes and would let the
/// throttled walk race ahead.
fn fill(ram: &RamBlockList) {
    let block = &ram.blocks()[0];
    for p in 0..RAM_PAGES {
        let page: Vec<u8> = (0..PS).map(|i| (p * 31 + i * 7) as u8 | 1).collect();
        block.write(p * PS, &page).unwrap();
    }
}

fn page_of(ram: &RamBlockList, page: u64) -> Vec<u8> {
    let mut buf = vec![0; PS as usize];
    ram.blocks()[0].read(page * PS, &mut buf).unwrap();
    buf
}

fn params(max_postcopy_bandwidth: u64) -> MigrationParameters {
    MigrationParameters::default()
        .with_downtime_limit_ms(0)
        .with_max_bandwidth(CRAWL)
        .with_max_postcopy_bandwidth(max_postcopy_bandwidth)
}

/// The bytes of REQ_PAGES_ID for one page of pc.ram, as the destination sends
/// the first request on a link.
fn req_pages_id(page: u64) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    RpMessage::ReqPages {
        block: Some("pc.ram".into()),
        start: page * PS,
        len: PS as u32,
    }
    .write(&mut w)
    .unwrap();
    w.into_inner()
}

/// What a destination accessor read: the page's bytes, and how many pages of
/// pc.ram had arrived by then.
type PageRead = (Result<Vec<u8>, RamError>, u64);

/// Reads pages through the destination's accessor, on any thread.
struct Reader {
    access: PostcopyAccess,
    counters: Arc<RamCounters>,
}

impl Reader {
    /// Reads `page` (blocking until it is there).
    fn read(&self, page: u64) -> PageRead {
        let mut buf = vec![0u8; PS as usize];
        let read = self.access.read("pc.ram", page * PS, &mut buf);
        let received = self.access.received_pages(0, RAM_PAGES);
        let sent = self.counters.normal.load(Ordering::Relaxed)
            + self.counters.duplicate.load(Ordering::Relaxed);
        eprintln!(
            "page {page}: {read:?}; {received} of {RAM_PAGES} pages arrived, \
             source sent {sent} records"
        );
        (read.map(|()| buf), received)
    }
}

/// A postcopy migration of a filled pc.ram through a cuttable proxy, with the
/// source's walk crawling.
struct Run {
    src: Arc<Mutex<RamBlockList>>,
    dst: Arc<Mutex<RamBlockList>>,
    access: PostcopyAccess,
    counters: Arc<RamCounters>,
    first: Proxy,
    handle: MigrationHandle,
    reconnect: mpsc::Receiver<SocketAddr>,
    dst_thread: thread::JoinHandle<vmstate_runtime::Result<()>>,
}

/// Starts the migration and returns once the destination's guest runs in
/// postcopy (a cut before POSTCOPY_RUN fails the migration instead of pausing
/// it).
fn start() -> Run {
    let src = shared_ram();
    fill(&src.lock().unwrap());
    // One page per PART: the rate limit is checked between PARTs, so the walk
    // sends about one page per window.
    let one_page_parts = RamSectionConfig {
        part_budget: PS,
        ..RamSectionConfig::default()
    };
    let section = RamSection::with_config(src.clone(), one_page_parts, Box::new(VmMemoryDirtyLog))
        .with_postcopy();
    let counters = section.counters();
    let mut src_reg = Registry::new();
    section.register(&mut src_reg).unwrap();

    let dst = shared_ram();
    let dst_section = RamSection::new(dst.clone());
    let access = dst_section
        .postcopy_access()
        .with_timeout(Duration::from_secs(20));
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let first = Proxy::new(incoming.local_tcp_addr().unwrap());
    let (reconnect_tx, reconnect) = mpsc::channel::<SocketAddr>();
    let (running_tx, running_rx) = mpsc::channel::<()>();
    let dst_thread = thread::spawn(move || {
        let mut reg = Registry::new();
        dst_section.register(&mut reg).unwrap();
        let hooks = IncomingHooks::default()
            .with_on_postcopy_run(move || {
                let _ = running_tx.send(());
                Ok(())
            })
            .with_on_postcopy_paused(move |_err| {
                let inc = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into()))?;
                reconnect_tx.send(inc.local_tcp_addr().unwrap()).unwrap();
                Ok(inc)
            });
        let opts = LoadOptions::default().with_configuration(Configuration::new(MACHINE));
        run_incoming_with(incoming, &mut reg, opts, &StatsHandle::default(), hooks)
    });

    let handle = start_migration(
        MigrationConfig::new(first.uri())
            .with_machine(MACHINE)
            .with_params(params(CRAWL))
            .with_caps(
                MigrationCapabilities::default()
                    .with_postcopy_ram(true)
                    .with_return_path(true),
            )
            .with_target_page(Default::default()),
        src_reg,
        Box::new(StillGuest),
    )
    .unwrap();
    // Postcopy at once: nearly all of pc.ram is still to come after the switch.
    handle.start_postcopy();
    running_rx
        .recv_timeout(HANG_GUARD)
        .expect("the destination's guest runs in postcopy");
    Run {
        src,
        dst,
        access,
        counters,
        first,
        handle,
        reconnect,
        dst_thread,
    }
}

impl Run {
    /// Cuts the first link and recovers over a second recording proxy;
    /// returns once the source is active again (after RESUME_ACK: the
    /// destination has its new link).
    fn cut_and_recover(&self) -> Proxy {
        self.first.cut();
        let new_addr = self
            .reconnect
            .recv_timeout(HANG_GUARD)
            .expect("the destination listens again");
        let stats = self.handle.stats();
        await_stats(&stats, "postcopy-paused", HANG_GUARD, |s| {
            s.status == MigrationStatus::PostcopyPaused
        });
        let second = Proxy::new(new_addr);
        self.handle.resume(second.uri()).unwrap();
        await_stats(&stats, "postcopy-active after recovery", HANG_GUARD, |s| {
            s.status == MigrationStatus::PostcopyActive
        });
        second
    }

    /// The last page of pc.ram that has not arrived: the crawling walk is
    /// furthest away from it.
    fn furthest_missing(&self) -> u64 {
        (0..RAM_PAGES)
            .rev()
            .find(|&p| self.access.received_pages(0, p + 1) == self.access.received_pages(0, p))
            .expect("the throttled walk left pages to send")
    }

    /// A reader of pages through the destination's accessor.
    fn reader(&self) -> Reader {
        Reader {
            access: self.access.clone(),
            counters: self.counters.clone(),
        }
    }

    /// `got` is `page` as the source has it, brought by a request while the
    /// walk had not sent everything.
    fn check_served(&self, page: u64, got: PageRead) {
        let (bytes, received_then) = got;
        let bytes = bytes.expect("the accessor was served through a request on the new link");
        assert!(
            bytes == page_of(&self.src.lock().unwrap(), page),
            "the source's bytes"
        );
        assert!(
            received_then < RAM_PAGES,
            "the walk had not sent everything: only the request brought page {page}"
        );
    }

    /// Lets the walk run: the migration completes and nothing was lost.
    fn finish(self) {
        self.handle.set_parameters(params(0)).unwrap();
        let (_, result) = self.handle.wait();
        result.unwrap();
        self.dst_thread.join().unwrap().unwrap();
        let (src, dst) = (self.src.lock().unwrap(), self.dst.lock().unwrap());
        for p in 0..RAM_PAGES {
            assert!(page_of(&src, p) == page_of(&dst, p), "page {p} differs");
        }
    }
}

#[test]
fn after_recovery_page_requests_go_to_the_new_link_and_are_served() {
    let run = start();
    let second = run.cut_and_recover();
    let missing = run.furthest_missing();
    let requests_before = run.access.requests_sent();
    let got = run.reader().read(missing);
    run.check_served(missing, got);
    assert!(
        run.access.requests_sent() > requests_before,
        "the accessor asked"
    );
    assert!(
        second.saw(&req_pages_id(missing)),
        "REQ_PAGES_ID for page {missing} went to the source on the new link"
    );
    run.finish();
}

#[test]
fn a_request_lost_with_the_broken_link_is_asked_again_after_recovery() {
    let run = start();
    // The accessor's request leaves the destination and dies on the way.
    run.first.swallow();
    let missing = run.furthest_missing();
    let requests_before = run.access.requests_sent();
    let reader = run.reader();
    let reader = thread::spawn(move || reader.read(missing));
    let guard = Instant::now() + HANG_GUARD;
    while run.access.requests_sent() == requests_before {
        assert!(Instant::now() < guard, "the accessor never asked");
        thread::sleep(Duration::from_millis(1));
    }
    let second = run.cut_and_recover();
    let got = reader.join().unwrap();
    run.check_served(missing, got);
    assert!(
        second.saw(&req_pages_id(missing)),
        "page {missing} asked again on the new link"
    );
    run.finish();
}
