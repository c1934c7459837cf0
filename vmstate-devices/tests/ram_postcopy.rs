//! Postcopy of the "ram" section on real memory, end to end: a source guest
//! dirtying pages, the switch to postcopy after the first pass (discards of
//! pages sent and written again, at most 12 ranges per command), destination
//! accessor threads that read pages while they are still missing (they block,
//! ask the source, and get the source's bytes), over a unix socket and TCP
//! loopback, and with the connection dropped mid-postcopy and recovered with
//! the received bitmaps; then the hostile cases of page requests, discards
//! and received bitmaps.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use vmstate_devices::ram::postcopy::{
    decode_recv_bitmap, encode_recv_bitmap, recv_bitmap_size, BadRange, MAX_QUEUED_REQUESTS,
};
use vmstate_devices::ram::protocol::X86_TARGET_PAGE_SIZE as PS;
use vmstate_devices::ram::{
    PostcopyAccess, PostcopyRamError, RamBlockList, RamBlockSpec, RamError, RamErrorKind,
    RamSection, RamSectionConfig, VmMemoryDirtyLog,
};
use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationParameters, MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{
    Command, CommandHandler, Configuration, IterateStatus, LoadEnd, LoadFlow, LoadOptions,
    PostcopyRam, QemuVersion, Registry, SaveVmHandlers, SectionBuf, SectionWriter, StreamLoader,
    StreamWriter, MAX_DISCARDS_PER_COMMAND,
};
use vmstate_runtime::wire::{Reader, Writer};

mod common;
use common::link::Proxy;
use common::qemu::TempDir;

const MACHINE: &str = "pc-i440fx-7.2";
/// pc.ram: 4 MiB.
const RAM_PAGES: u64 = 1024;
const BIOS_PAGES: u64 = 16;

fn specs() -> Vec<RamBlockSpec> {
    vec![
        RamBlockSpec::ram("pc.ram", RAM_PAGES * PS),
        RamBlockSpec::rom("pc.bios", BIOS_PAGES * PS).at(0xfffc_0000),
    ]
}

fn shared_ram() -> Arc<Mutex<RamBlockList>> {
    Arc::new(Mutex::new(RamBlockList::new(specs()).unwrap()))
}

/// A small generator (the guests' workloads).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
}

/// Every page gets a pattern, every fourth stays zero.
fn fill(ram: &RamBlockList, seed: u64) {
    let mut rng = Lcg(seed);
    for b in ram.blocks() {
        for p in 0..b.pages() {
            if p % 4 != 3 {
                let page: Vec<u8> = (0..PS).map(|_| rng.next() as u8).collect();
                b.write(p * PS, &page).unwrap();
            }
        }
    }
}

fn assert_same(src: &RamBlockList, dst: &RamBlockList) {
    for (a, b) in src.blocks().iter().zip(dst.blocks()) {
        let (va, vb) = (a.to_vec().unwrap(), b.to_vec().unwrap());
        for (i, (pa, pb)) in va
            .chunks(PS as usize)
            .zip(vb.chunks(PS as usize))
            .enumerate()
        {
            assert!(pa == pb, "{} page {i} differs", a.idstr());
        }
    }
}

fn page_of(ram: &RamBlockList, block: usize, page: u64) -> Vec<u8> {
    let mut buf = vec![0; PS as usize];
    ram.blocks()[block].read(page * PS, &mut buf).unwrap();
    buf
}

/// The source guest's vCPUs: running until the migration pauses them; the
/// writer holds the lock while it writes, so no write lands after a pause.
#[derive(Clone, Default)]
struct Guest(Arc<Mutex<bool>>);

impl VmControl for Guest {
    fn pause(&mut self) -> vmstate_runtime::Result<()> {
        *self.0.lock().unwrap() = false;
        Ok(())
    }
    fn resume(&mut self) -> vmstate_runtime::Result<()> {
        *self.0.lock().unwrap() = true;
        Ok(())
    }
}

/// Writes bursts of 2 random pages of pc.ram through the vm-memory API
/// (dirty-logged) until paused; returns the writes made.
fn spawn_writer(view: RamBlockList, running: Guest) -> JoinHandle<u64> {
    thread::spawn(move || {
        let block = view.get("pc.ram").unwrap();
        let mut rng = Lcg(7);
        let mut writes = 0;
        loop {
            {
                let run = running.0.lock().unwrap();
                if !*run {
                    return writes;
                }
                for _ in 0..2 {
                    let p = rng.next() % RAM_PAGES;
                    let bytes: Vec<u8> = (0..64).map(|_| rng.next() as u8 | 1).collect();
                    block
                        .write(p * PS + rng.next() % (PS - 64), &bytes)
                        .unwrap();
                    writes += 1;
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    Unix,
    /// TCP loopback through a recording proxy.
    Tcp,
    /// TCP through a proxy cut in the middle of postcopy, then recovered.
    TcpCut,
}

/// What a destination accessor read: (block index, page, bytes).
type Reads = Vec<(usize, u64, Vec<u8>)>;

struct Outcome {
    src: Arc<Mutex<RamBlockList>>,
    dst: Arc<Mutex<RamBlockList>>,
    reads: Reads,
    requests: u64,
    received: Vec<u64>,
    postcopy_bytes: u64,
    recovered: bool,
    captured: Vec<u8>,
    writes: u64,
}

fn load_options() -> LoadOptions {
    LoadOptions::default().with_configuration(Configuration::new(MACHINE))
}

fn small_parts() -> RamSectionConfig {
    RamSectionConfig {
        part_budget: 64 * 1024,
        ..RamSectionConfig::default()
    }
}

/// Destination accessors: three threads reading random pages of both blocks
/// as soon as the guest runs there.
fn spawn_accessors(access: PostcopyAccess) -> Vec<JoinHandle<Reads>> {
    (0..3u64)
        .map(|t| {
            let access = access.clone();
            thread::spawn(move || {
                let mut rng = Lcg(100 + t);
                let mut buf = vec![0u8; PS as usize];
                (0..120)
                    .map(|i| {
                        let (bi, name, pages) = if i % 10 == 9 {
                            (1, "pc.bios", BIOS_PAGES)
                        } else {
                            (0, "pc.ram", RAM_PAGES)
                        };
                        let page = rng.next() % pages;
                        access.read(name, page * PS, &mut buf).unwrap();
                        (bi, page, buf.clone())
                    })
                    .collect()
            })
        })
        .collect()
}

fn run_postcopy(link: Link) -> Outcome {
    let src = shared_ram();
    fill(&src.lock().unwrap(), 1);
    let guest = Guest(Arc::new(Mutex::new(true)));
    let writer = spawn_writer(src.lock().unwrap().clone(), guest.clone());
    let section = RamSection::with_config(src.clone(), small_parts(), Box::new(VmMemoryDirtyLog))
        .with_postcopy();
    let counters = section.counters();
    let postcopy_bytes = section.postcopy_bytes();
    let mut src_reg = Registry::new();
    section.register(&mut src_reg).unwrap();

    let dst = shared_ram();
    let dst_section = RamSection::new(dst.clone());
    let access = dst_section
        .postcopy_access()
        .with_timeout(Duration::from_secs(30));
    let tmp = TempDir::new("ram-postcopy");
    let listen_uri = match link {
        Link::Unix => MigrationUri::Unix(tmp.path().join("mig.sock")),
        Link::Tcp | Link::TcpCut => MigrationUri::Tcp("127.0.0.1:0".into()),
    };
    let incoming = Incoming::listen(&listen_uri).unwrap();
    let mut proxy = None;
    let src_uri = match link {
        Link::Unix => listen_uri.clone(),
        Link::Tcp | Link::TcpCut => {
            let p = Proxy::new(incoming.local_tcp_addr().unwrap());
            let uri = MigrationUri::Tcp(p.addr.to_string());
            proxy = Some(p);
            uri
        }
    };
    let (reconnect_tx, reconnect_rx) = std::sync::mpsc::channel::<MigrationUri>();
    let recover_path = tmp.path().join("recover.sock");
    let dst_access = access.clone();
    let dst_thread = thread::spawn(move || {
        let mut reg = Registry::new();
        dst_section.register(&mut reg).unwrap();
        let readers: Arc<Mutex<Vec<JoinHandle<Reads>>>> = Arc::default();
        let r2 = readers.clone();
        let hooks = IncomingHooks::default()
            .with_on_postcopy_run(move || {
                *r2.lock().unwrap() = spawn_accessors(dst_access.clone());
                Ok(())
            })
            .with_on_postcopy_paused(move |_err| {
                let uri = match link {
                    Link::Unix => MigrationUri::Unix(recover_path.clone()),
                    _ => MigrationUri::Tcp("127.0.0.1:0".into()),
                };
                let inc = Incoming::listen(&uri)?;
                let uri = match inc.local_tcp_addr() {
                    Some(a) => MigrationUri::Tcp(a.to_string()),
                    None => uri,
                };
                reconnect_tx.send(uri).unwrap();
                Ok(inc)
            });
        let result = run_incoming_with(
            incoming,
            &mut reg,
            load_options(),
            &StatsHandle::default(),
            hooks,
        );
        let reads: Reads = std::mem::take(&mut *readers.lock().unwrap())
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (result, reads)
    });

    let handle = start_migration(
        MigrationConfig::new(src_uri)
            .with_machine(MACHINE)
            .with_params(
                MigrationParameters::default()
                    .with_downtime_limit_ms(0)
                    .with_max_bandwidth(8 << 20)
                    .with_max_postcopy_bandwidth(4 << 20),
            )
            .with_caps(
                MigrationCapabilities::default()
                    .with_postcopy_ram(true)
                    .with_return_path(true),
            )
            .with_target_page(Default::default()),
        src_reg,
        Box::new(guest.clone()),
    )
    .unwrap();
    let stats = handle.stats();
    let total_pages = RAM_PAGES + BIOS_PAGES;
    let deadline = Instant::now() + Duration::from_secs(60);
    // The switch comes after the first pass: every page sent once.
    while RamCountersView::sent(&counters) < total_pages {
        assert!(
            Instant::now() < deadline,
            "first pass: {:?}",
            stats.snapshot()
        );
        assert!(
            !stats.snapshot().status.is_terminal(),
            "{:?}",
            stats.snapshot()
        );
        thread::sleep(Duration::from_millis(1));
    }
    handle.start_postcopy();
    let (mut cut, mut recovered, mut active_since) = (false, false, None);
    loop {
        let s = stats.snapshot();
        assert!(Instant::now() < deadline, "postcopy did not finish: {s:?}");
        if s.status == MigrationStatus::PostcopyActive && active_since.is_none() {
            active_since = Some(Instant::now());
        }
        if link == Link::TcpCut && !cut {
            if let Some(t) = active_since {
                if t.elapsed() > Duration::from_millis(40) {
                    proxy.as_ref().unwrap().cut();
                    cut = true;
                }
            }
        }
        if s.status == MigrationStatus::PostcopyPaused && !recovered {
            let uri = reconnect_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the destination listens again");
            handle.resume(uri).unwrap();
            recovered = true;
        }
        if s.status.is_terminal() {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let (_, result) = handle.wait();
    result.unwrap();
    // query-migrate's "ram" shows the bytes sent after the switch.
    let ram_stats = stats.snapshot().ram.expect("RAM statistics");
    let shown = ram_stats.postcopy_bytes;
    assert!(
        shown > 0 && shown <= postcopy_bytes.load(Ordering::Relaxed),
        "postcopy-bytes {shown}"
    );
    // ... and the page requests that reached the source ("postcopy-requests"):
    // some, and never more than the destination's accessors sent.
    let (counted, sent) = (ram_stats.postcopy_requests, access.requests_sent());
    eprintln!("postcopy-requests {counted} of {sent} sent");
    assert!(counted <= sent, "postcopy-requests {counted}, sent {sent}");
    assert!(sent < 10 || counted > 0, "postcopy-requests 0, sent {sent}");
    let writes = writer.join().unwrap();
    let (dst_result, reads) = dst_thread.join().unwrap();
    dst_result.unwrap();
    assert!(active_since.is_some(), "went through postcopy-active");
    let received = {
        let d = dst.lock().unwrap();
        d.blocks()
            .iter()
            .enumerate()
            .map(|(i, b)| access.received_pages(i, b.pages()))
            .collect()
    };
    Outcome {
        src,
        dst,
        reads,
        requests: access.requests_sent(),
        received,
        postcopy_bytes: postcopy_bytes.load(Ordering::Relaxed),
        recovered,
        captured: proxy.map(|p| p.take_stream()).unwrap_or_default(),
        writes,
    }
}

/// Pages the source sent so far (PAGE and ZERO records).
struct RamCountersView;
impl RamCountersView {
    fn sent(c: &vmstate_devices::ram::RamCounters) -> u64 {
        c.normal.load(Ordering::Relaxed) + c.duplicate.load(Ordering::Relaxed)
    }
}

fn check_outcome(o: &Outcome) {
    eprintln!(
        "postcopy: {} bytes after the switch, {} requests, {} guest writes, recovered {}",
        o.postcopy_bytes, o.requests, o.writes, o.recovered
    );
    let (src, dst) = (o.src.lock().unwrap(), o.dst.lock().unwrap());
    assert_same(&src, &dst);
    assert_eq!(o.received, [RAM_PAGES, BIOS_PAGES], "every page arrived");
    assert_eq!(o.reads.len(), 360);
    for (bi, page, bytes) in &o.reads {
        assert!(
            *bytes == page_of(&src, *bi, *page),
            "accessor read a wrong page {page} of block {bi}"
        );
    }
    assert!(o.postcopy_bytes > 0, "pages went after the switch");
    assert!(o.writes > 0, "the source guest dirtied memory");
}

#[test]
fn postcopy_over_unix_socket_with_blocking_accessors() {
    let o = run_postcopy(Link::Unix);
    check_outcome(&o);
    assert!(!o.recovered);
    assert!(o.requests > 0, "accessors faulted and asked for pages");
}

/// Records the discards while replaying a captured stream (and applies them,
/// as the destination does).
#[derive(Default)]
struct DiscardLog(Vec<(String, usize)>);

impl CommandHandler for DiscardLog {
    fn command(&mut self, cmd: Command, reg: &mut Registry) -> vmstate_runtime::Result<LoadFlow> {
        match cmd {
            Command::PostcopyRamDiscard { block, ranges } => {
                self.0.push((block.clone(), ranges.len()));
                let mut owned = false;
                for ram in reg.postcopy_rams() {
                    owned |= ram.postcopy_discard(&block, &ranges)?;
                }
                assert!(owned, "discard for {block}");
                Ok(LoadFlow::Continue)
            }
            Command::PostcopyRun => Ok(LoadFlow::Quit),
            _ => Ok(LoadFlow::Continue),
        }
    }
}

#[test]
fn postcopy_over_tcp_chunks_discards_at_twelve_per_command() {
    let o = run_postcopy(Link::Tcp);
    check_outcome(&o);
    assert!(o.requests > 0, "accessors faulted and asked for pages");
    // Replay what the source sent into a fresh destination.
    let replay = shared_ram();
    let mut reg = Registry::new();
    RamSection::new(replay.clone()).register(&mut reg).unwrap();
    let mut log = DiscardLog::default();
    let mut loader = StreamLoader::new(load_options());
    let mut r = Reader::new(BytesMut::from(&o.captured[..]));
    loader.load_header(&mut r).unwrap();
    StreamLoader::load_setup_all(&mut reg).unwrap();
    assert_eq!(
        loader.load_main(&mut r, &mut reg, &mut log).unwrap(),
        LoadEnd::Quit
    );
    assert_eq!(
        loader.load_main(&mut r, &mut reg, &mut log).unwrap(),
        LoadEnd::Eof
    );
    StreamLoader::load_cleanup_all(&mut reg).unwrap();
    assert_same(&o.src.lock().unwrap(), &replay.lock().unwrap());
    // Discards: QEMU's chunking, full commands of 12, the remainder last.
    let ram: Vec<usize> = log
        .0
        .iter()
        .filter(|(b, _)| b == "pc.ram")
        .map(|(_, n)| *n)
        .collect();
    let total: usize = ram.iter().sum();
    assert!(total > MAX_DISCARDS_PER_COMMAND, "{total} ranges: {ram:?}");
    let (last, full) = ram.split_last().unwrap();
    assert!(
        full.iter().all(|n| *n == MAX_DISCARDS_PER_COMMAND),
        "{ram:?}"
    );
    assert!((1..=MAX_DISCARDS_PER_COMMAND).contains(last), "{ram:?}");
    assert!(
        log.0.iter().all(|(b, _)| b == "pc.ram"),
        "the ROM is never written: {:?}",
        log.0
    );
}

#[test]
fn postcopy_recovers_after_the_connection_drops_and_loses_nothing() {
    let o = run_postcopy(Link::TcpCut);
    assert!(o.recovered, "the cut paused postcopy and it was recovered");
    check_outcome(&o);
}

// ---- The hostile cases, without a network ----

fn section_writer() -> SectionWriter {
    Writer::new(SectionBuf::with_capacity(1 << 16))
}

/// A source section after its START (bulk pass pending).
fn source() -> (RamSection, Arc<Mutex<RamBlockList>>) {
    let ram = shared_ram();
    fill(&ram.lock().unwrap(), 3);
    let mut s = RamSection::with_config(ram.clone(), small_parts(), Box::new(VmMemoryDirtyLog))
        .with_postcopy();
    s.save_setup(&mut section_writer()).unwrap();
    (s, ram)
}

fn postcopy_kind(e: &vmstate_runtime::Error) -> PostcopyRamError {
    let ram = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<RamError>())
        .unwrap_or_else(|| panic!("a RamError source: {e}"));
    match ram.kind() {
        RamErrorKind::Postcopy(p) => p.clone(),
        other => panic!("not a postcopy error: {other:?}"),
    }
}

#[test]
fn hostile_page_requests_are_typed_errors() {
    let (mut s, _) = source();
    let used = RAM_PAGES * PS;
    let cases: [(u64, u64, BadRange); 6] = [
        (0, 0, BadRange::Empty),
        (used, PS, BadRange::BeyondUsed { used }),
        (used - PS, 2 * PS, BadRange::BeyondUsed { used }),
        (u64::MAX - (PS - 1), 2 * PS, BadRange::Overflow),
        (100, PS, BadRange::Unaligned { page_size: PS }),
        (0, used, BadRange::TooLong { max: 2 << 20 }),
    ];
    for (start, len, want) in cases {
        let e = s.queue_page_request("pc.ram", start, len).unwrap_err();
        match postcopy_kind(&e) {
            PostcopyRamError::BadRange { why, block, .. } => {
                assert_eq!(
                    (why, block.as_str()),
                    (want, "pc.ram"),
                    "{start:#x}+{len:#x}"
                )
            }
            other => panic!("{start:#x}+{len:#x}: {other:?}"),
        }
        assert!(
            e.to_string()
                .contains("page request for RAMBlock \"pc.ram\""),
            "{e}"
        );
    }
    // A block of somebody else: not this handler's (the runtime says so).
    assert!(!s.queue_page_request("pc.rom", 0, PS).unwrap());
    // A good one is taken.
    assert!(s.queue_page_request("pc.bios", 0, PS).unwrap());
    // "postcopy-requests" counts every request for this handler's blocks,
    // the refused ones too (as QEMU counts), not the other handler's.
    assert_eq!(s.ram_stats().unwrap().postcopy_requests, 7);
}

#[test]
fn a_request_flood_is_bounded_and_urgent_pages_go_first() {
    let (mut s, _) = source();
    // More requests than the queue holds: the excess is dropped, not stored.
    let n = MAX_QUEUED_REQUESTS as u64 + 500;
    for i in 0..n {
        let page = RAM_PAGES - 1 - (i % RAM_PAGES);
        assert!(s.queue_page_request("pc.ram", page * PS, PS).unwrap());
    }
    assert_eq!(s.postcopy_requests_dropped(), 500);
    assert_eq!(s.ram_stats().unwrap().postcopy_requests, n);
    // One PART: the budget bounds it although thousands of requests wait, and
    // its first pages are the requested ones (the top of pc.ram), not page 0.
    let mut w = section_writer();
    assert_eq!(
        s.save_live_iterate(&mut w).unwrap(),
        IterateStatus::Continue
    );
    let part = w.into_inner().to_vec();
    assert!(
        part.len() < 64 * 1024 + 20 * (PS as usize + 64),
        "{}",
        part.len()
    );
    let first = u64::from_be_bytes(part[..8].try_into().unwrap());
    assert_eq!(
        first & !(PS - 1),
        (RAM_PAGES - 1) * PS,
        "first record: {first:#x}"
    );
}

#[test]
fn received_bitmap_discard_and_resume_in_qemu_format() {
    // A destination that received the whole precopy stream.
    let src = shared_ram();
    fill(&src.lock().unwrap(), 5);
    let mut reg = Registry::new();
    RamSection::new(src.clone()).register(&mut reg).unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(&mut reg).unwrap();
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(&mut reg).unwrap();
    let stream = w.into_inner().unwrap();
    let dst = shared_ram();
    let dst_section = RamSection::new(dst.clone());
    let access = dst_section.postcopy_access();
    let mut one = Registry::new();
    dst_section.register(&mut one).unwrap();
    let mut loader = StreamLoader::new(load_options());
    let mut r = Reader::new(BytesMut::from(&stream[..]));
    loader.load_header(&mut r).unwrap();
    StreamLoader::load_setup_all(&mut one).unwrap();
    assert_eq!(
        loader
            .load_main(&mut r, &mut one, &mut DiscardLog::default())
            .unwrap(),
        LoadEnd::Eof
    );
    assert_eq!(
        access.received_pages(0, RAM_PAGES),
        RAM_PAGES,
        "PAGE and ZERO alike"
    );
    let pc = one.postcopy_rams().next().unwrap();
    let bitmap = pc.postcopy_received_bitmap("pc.ram").unwrap().unwrap();
    assert_eq!(bitmap.len() as u64, recv_bitmap_size(RAM_PAGES));
    assert!(bitmap.iter().all(|b| *b == 0xff));
    // Discards drop the pages: zero memory, bits clear.
    let discards = [(3 * PS, 2 * PS), (64 * PS, PS), (1000 * PS, 24 * PS)];
    assert!(pc.postcopy_discard("pc.ram", &discards).unwrap());
    assert_eq!(access.received_pages(0, RAM_PAGES), RAM_PAGES - 27);
    assert_eq!(page_of(&dst.lock().unwrap(), 0, 64), vec![0; PS as usize]);
    let bitmap = pc.postcopy_received_bitmap("pc.ram").unwrap().unwrap();
    assert_eq!(bitmap[0], 0b1110_0111);
    assert_eq!(
        bitmap[8], 0xfe,
        "page 64 is bit 0 of the second little-endian word"
    );
    // A bad discard is refused before any range is applied.
    let e = pc
        .postcopy_discard("pc.ram", &[(0, PS), (RAM_PAGES * PS, PS)])
        .unwrap_err();
    assert!(matches!(
        postcopy_kind(&e),
        PostcopyRamError::BadRange {
            what: "discard",
            ..
        }
    ));
    assert_eq!(access.received_pages(0, RAM_PAGES), RAM_PAGES - 27);
    assert!(!pc.postcopy_discard("pc.rom", &[(0, PS)]).unwrap());

    // The blob as the return path carries it, checked as QEMU's source does.
    let blob = encode_recv_bitmap(&bitmap);
    assert_eq!(
        decode_recv_bitmap("pc.ram", &blob, RAM_PAGES).unwrap(),
        &bitmap[..]
    );
    let mut bad_mark = blob.clone();
    let end = bad_mark.len() - 8;
    bad_mark[end..].copy_from_slice(&0x0123456789abcdeeu64.to_be_bytes());
    assert!(matches!(
        decode_recv_bitmap("pc.ram", &bad_mark, RAM_PAGES),
        Err(PostcopyRamError::RecvBitmapEndMark {
            found: 0x0123456789abcdee,
            ..
        })
    ));
    let mut bad_size = blob.clone();
    bad_size[..8].copy_from_slice(&(recv_bitmap_size(RAM_PAGES) + 8).to_be_bytes());
    assert!(matches!(
        decode_recv_bitmap("pc.ram", &bad_size, RAM_PAGES),
        Err(PostcopyRamError::RecvBitmapSize { .. })
    ));

    // The source resumes from it: exactly the discarded pages are dirty.
    let (mut s, _) = source();
    s.postcopy_resume_bitmap("pc.ram", &bitmap).unwrap();
    s.postcopy_resume_bitmap("pc.bios", &[0xff; 8]).unwrap();
    assert_eq!(s.state_pending_estimate().can_postcopy, 27 * PS);
    for bad in [
        &bitmap[..bitmap.len() - 8],
        &[bitmap.clone(), vec![0; 8]].concat()[..],
    ] {
        let e = s.postcopy_resume_bitmap("pc.ram", bad).unwrap_err();
        assert!(
            matches!(postcopy_kind(&e), PostcopyRamError::RecvBitmapSize { .. }),
            "{e}"
        );
    }
    assert!(matches!(
        postcopy_kind(&s.postcopy_resume_bitmap("pc.rom", &bitmap).unwrap_err()),
        PostcopyRamError::UnknownBlock { .. }
    ));
}

#[test]
fn an_accessor_blocks_until_the_page_arrives_and_times_out_or_cancels() {
    let dst = shared_ram();
    let mut section = RamSection::new(dst.clone());
    let access = section
        .postcopy_access()
        .with_timeout(Duration::from_secs(10));
    section.load_setup().unwrap();
    // Listening, with a requester whose messages the test collects.
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let a2 = asked.clone();
    let requester = vmstate_runtime::savevm::PageRequester::new(Box::new(move |m| {
        a2.lock().unwrap().push(format!("{m:?}"));
        Ok(())
    }));
    section.postcopy_listen(requester).unwrap();
    assert!(access.is_listening());
    // Two readers of the same missing page: one request, both wait.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let a = access.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 8];
                a.read("pc.ram", 5 * PS + 8, &mut buf).map(|()| buf)
            })
        })
        .collect();
    // A guest write to a missing page waits too: the page that lands later
    // (here a ZERO record) must not overwrite it.
    let guest_write = {
        let a = access.clone();
        thread::spawn(move || a.write("pc.ram", 6 * PS, b"guest"))
    };
    let t0 = Instant::now();
    while asked.lock().unwrap().len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "no request sent");
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(30));
    assert!(readers.iter().all(|r| !r.is_finished()), "readers block");
    assert!(!guest_write.is_finished(), "the writer blocks");
    let asked_now = asked.lock().unwrap().clone();
    assert_eq!(asked_now.len(), 2, "one request per page: {asked_now:?}");
    for offset in [5 * PS, 6 * PS] {
        let start = format!("start: {offset}");
        assert!(
            asked_now.iter().any(|m| m.contains(&start)),
            "{asked_now:?}"
        );
    }
    // The page arrives through the loader's path (a PAGE record).
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    let src = shared_ram();
    src.lock().unwrap().blocks()[0]
        .write(5 * PS + 8, b"arrived!")
        .unwrap();
    let mut sreg = Registry::new();
    RamSection::new(src.clone()).register(&mut sreg).unwrap();
    w.setup(&mut sreg).unwrap();
    while w.iterate(&mut sreg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(&mut sreg).unwrap();
    let stream = w.into_inner().unwrap();
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 4, Box::new(section))
        .unwrap();
    let mut loader = StreamLoader::new(load_options());
    let mut r = Reader::new(BytesMut::from(&stream[..]));
    loader.load_header(&mut r).unwrap();
    // No load_setup_all here: it would reset the listening state.
    assert_eq!(
        loader
            .load_main(&mut r, &mut reg, &mut DiscardLog::default())
            .unwrap(),
        LoadEnd::Eof
    );
    for r in readers {
        assert_eq!(&r.join().unwrap().unwrap(), b"arrived!");
    }
    guest_write.join().unwrap().unwrap();
    let mut back = [0u8; 5];
    access.read("pc.ram", 6 * PS, &mut back).unwrap();
    assert_eq!(&back, b"guest", "the guest's write landed after the page");
    // A timeout: a fresh listening section whose page never comes.
    let mut lonely = RamSection::new(shared_ram());
    let quick = lonely
        .postcopy_access()
        .with_timeout(Duration::from_millis(50));
    lonely.load_setup().unwrap();
    lonely
        .postcopy_listen(vmstate_runtime::savevm::PageRequester::new(Box::new(
            |_| Ok(()),
        )))
        .unwrap();
    let e = quick.read("pc.ram", 0, &mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            RamErrorKind::Postcopy(PostcopyRamError::PageTimeout { .. })
        ),
        "{e}"
    );
    // Out of range: refused before anything is asked.
    let e = access
        .read("pc.ram", RAM_PAGES * PS, &mut [0u8; 1])
        .unwrap_err();
    assert!(
        matches!(e.kind(), RamErrorKind::OffsetBeyondUsed { .. }),
        "{e}"
    );
    // The migration ends (fails) while an access waits: an error, no hang;
    // afterwards accesses go straight to memory again.
    let waiter = {
        let p = quick.clone().with_timeout(Duration::from_secs(30));
        thread::spawn(move || p.read("pc.ram", 2 * PS, &mut [0u8; 1]))
    };
    thread::sleep(Duration::from_millis(30));
    lonely.load_cleanup().unwrap();
    let e = waiter.join().unwrap().unwrap_err();
    assert!(
        matches!(
            e.kind(),
            RamErrorKind::Postcopy(PostcopyRamError::EndedWithoutPage { .. })
        ),
        "{e}"
    );
    assert!(!quick.is_listening());
    assert!(quick.read("pc.ram", 0, &mut [0u8; 1]).is_ok());
    // A cancel ends a wait at once, whatever the timeout.
    let mut other = RamSection::new(shared_ram());
    let patient = other
        .postcopy_access()
        .with_timeout(Duration::from_secs(30));
    other.load_setup().unwrap();
    other
        .postcopy_listen(vmstate_runtime::savevm::PageRequester::new(Box::new(
            |_| Ok(()),
        )))
        .unwrap();
    let waiter = {
        let p = patient.clone();
        thread::spawn(move || p.read("pc.ram", PS, &mut [0u8; 1]))
    };
    thread::sleep(Duration::from_millis(30));
    patient.cancel();
    let e = waiter.join().unwrap().unwrap_err();
    assert!(
        matches!(
            e.kind(),
            RamErrorKind::Postcopy(PostcopyRamError::AccessCancelled { .. })
        ),
        "{e}"
    );
}
