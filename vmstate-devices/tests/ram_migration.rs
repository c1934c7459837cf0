//! The "ram" section saving and loading itself: a save with guest writes
//! between the passes over the runtime's StreamWriter/StreamLoader, and a live
//! precopy migration over a unix socket with a guest thread dirtying memory;
//! the destination's blocks equal the source's page for page.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use vmstate_devices::ram::protocol::X86_TARGET_PAGE_SIZE as PS;
use vmstate_devices::ram::{
    RamBlockList, RamBlockSpec, RamSection, RamSectionConfig, VmMemoryDirtyLog,
};
use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationCapabilities, MigrationConfig,
    MigrationParameters, MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{
    Configuration, IterateStatus, LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader,
    StreamWriter, TargetPage,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::Result;

mod common;
use common::qemu::TempDir;

const MACHINE: &str = "pc-i440fx-7.2";

/// Three blocks of different kinds: RAM, a fixed ROM and a resizeable blob.
fn specs(ram_pages: u64, blob_pages: u64) -> Vec<RamBlockSpec> {
    vec![
        RamBlockSpec::ram("pc.ram", ram_pages * PS),
        RamBlockSpec::rom("pc.bios", 16 * PS).at(0xfffc_0000),
        RamBlockSpec::resizeable_rom("/rom@etc/acpi/tables", blob_pages * PS, 32 * PS),
    ]
}

/// A small generator (the guest's "workload").
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

/// Fills every block: most pages get a pattern, every fourth stays zero.
fn fill(ram: &RamBlockList, seed: u64) {
    let mut rng = Lcg(seed);
    for b in ram.blocks() {
        for p in 0..b.pages() {
            if p % 4 == 3 {
                continue;
            }
            let page: Vec<u8> = (0..PS).map(|_| rng.next() as u8).collect();
            b.write(p * PS, &page).unwrap();
        }
    }
}

/// Writes a few bytes into `n` pseudo-random pages of pc.ram, some of them zero
/// pages turned non-zero, some non-zero pages zeroed.
fn dirty(ram: &RamBlockList, rng: &mut Lcg, n: usize) {
    let b = ram.get("pc.ram").unwrap();
    for i in 0..n {
        let p = rng.next() % b.pages();
        if i % 5 == 0 {
            b.write(p * PS, &vec![0; PS as usize]).unwrap();
        } else {
            b.write(p * PS + rng.next() % PS, &[rng.next() as u8 | 1])
                .unwrap();
        }
    }
}

fn assert_same(src: &RamBlockList, dst: &RamBlockList) {
    assert_eq!(src.len(), dst.len());
    for (a, b) in src.blocks().iter().zip(dst.blocks()) {
        assert_eq!(a.idstr(), b.idstr());
        assert_eq!(a.used_length(), b.used_length(), "{}", a.idstr());
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

fn small_parts() -> RamSectionConfig {
    RamSectionConfig {
        part_budget: 64 * 1024,
        ..RamSectionConfig::default()
    }
}

fn load_options() -> LoadOptions {
    LoadOptions::default().with_configuration(Configuration::new(MACHINE))
}

#[test]
fn save_with_dirtying_between_passes_then_load() {
    let src = Arc::new(Mutex::new(RamBlockList::new(specs(512, 3)).unwrap()));
    fill(&src.lock().unwrap(), 1);
    let guest_view = src.lock().unwrap().clone(); // shares the regions
    let section = RamSection::with_config(src.clone(), small_parts(), Box::new(VmMemoryDirtyLog));
    let counters = section.counters();
    let mut reg = Registry::new();
    section.register(&mut reg).unwrap();

    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(&mut reg).unwrap();
    let mut rng = Lcg(99);
    let mut parts = 0;
    // Bulk pass, with the guest writing between PARTs.
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {
        parts += 1;
        if parts % 3 == 0 {
            dirty(&guest_view, &mut rng, 20);
        }
    }
    assert!(
        parts > 10,
        "the 64 KiB budget splits the pass: {parts} PARTs"
    );
    // The pending figure comes from the dirty bitmap after a sync.
    let pending = StreamWriter::<Vec<u8>>::pending(&mut reg, true);
    assert!(pending.must_precopy > 0 && pending.must_precopy.is_multiple_of(PS));
    assert!(pending.must_precopy <= 20 * (parts as u64 / 3 + 1) * PS);
    // A second pass over what was dirtied, then more writes before stop-and-copy.
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    dirty(&guest_view, &mut rng, 50);
    w.complete_precopy(&mut reg).unwrap();
    let stream = w.into_inner().unwrap();
    StreamWriter::<Vec<u8>>::cleanup(&mut reg);
    let total_pages: u64 = src.lock().unwrap().blocks().iter().map(|b| b.pages()).sum();
    let sent = counters.normal.load(Ordering::Relaxed) + counters.duplicate.load(Ordering::Relaxed);
    assert!(
        sent > total_pages,
        "re-dirtied pages went again: {sent} records"
    );
    assert!(counters.duplicate.load(Ordering::Relaxed) >= total_pages / 4);

    // The destination declares the blob at another length: the stream resizes it.
    let dst = Arc::new(Mutex::new(RamBlockList::new(specs(512, 7)).unwrap()));
    let mut dreg = Registry::new();
    RamSection::new(dst.clone()).register(&mut dreg).unwrap();
    let mut loader = StreamLoader::new(load_options());
    let mut r = Reader::new(BytesMut::from(stream.as_slice()));
    loader.load(&mut r, &mut dreg, &mut NoCommands).unwrap();
    assert_same(&src.lock().unwrap(), &dst.lock().unwrap());
    assert_eq!(
        dst.lock()
            .unwrap()
            .get("/rom@etc/acpi/tables")
            .unwrap()
            .used_length(),
        3 * PS
    );
}

#[test]
fn a_page_record_beyond_a_shrunk_block_is_rejected() {
    // Source blob of 5 pages; destination max 32 pages: the resize is fine. Then
    // the stream is cut to claim 2 pages in MEM_SIZE: its pages 2..4 must fail.
    let src = Arc::new(Mutex::new(RamBlockList::new(specs(8, 5)).unwrap()));
    fill(&src.lock().unwrap(), 5);
    let mut reg = Registry::new();
    RamSection::new(src).register(&mut reg).unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(&mut reg).unwrap();
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(&mut reg).unwrap();
    let mut stream = w.into_inner().unwrap();
    // Patch the blob's MEM_SIZE length and the total (both be64).
    let name = b"\x14/rom@etc/acpi/tables";
    let at = stream.windows(name.len()).position(|x| x == name).unwrap() + name.len();
    stream[at..at + 8].copy_from_slice(&(2 * PS).to_be_bytes());
    let total_at = stream.windows(3).position(|x| x == b"ram").unwrap() + 3 + 8;
    let total = u64::from_be_bytes(stream[total_at..total_at + 8].try_into().unwrap());
    stream[total_at..total_at + 8].copy_from_slice(&(total - 3 * PS).to_be_bytes());

    let dst = Arc::new(Mutex::new(RamBlockList::new(specs(8, 5)).unwrap()));
    let mut dreg = Registry::new();
    RamSection::new(dst).register(&mut dreg).unwrap();
    let mut r = Reader::new(BytesMut::from(stream.as_slice()));
    let e = StreamLoader::new(load_options())
        .load(&mut r, &mut dreg, &mut NoCommands)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("RAMBlock \"/rom@etc/acpi/tables\": page at offset 0x2000 is beyond its used_length 0x2000"),
        "{e}"
    );
}

/// The guest: a thread writing pc.ram through vm-memory while running.
struct Guest {
    running: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    busy: Arc<Mutex<()>>,
    writes: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Guest {
    fn start(ram: RamBlockList) -> Guest {
        let running = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(Mutex::new(()));
        let writes = Arc::new(AtomicU64::new(0));
        let (r, s, b, wr) = (running.clone(), stop.clone(), busy.clone(), writes.clone());
        let thread = thread::spawn(move || {
            let mut rng = Lcg(4242);
            while !s.load(Ordering::SeqCst) {
                {
                    let _g = b.lock().unwrap();
                    // Re-check under the lock: pause() takes it after clearing.
                    if r.load(Ordering::SeqCst) {
                        dirty(&ram, &mut rng, 8);
                        wr.fetch_add(8, Ordering::Relaxed);
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
        });
        Guest {
            running,
            stop,
            busy,
            writes,
            thread: Some(thread),
        }
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
    running: Arc<AtomicBool>,
    busy: Arc<Mutex<()>>,
}

impl VmControl for GuestControl {
    fn pause(&mut self) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        drop(self.busy.lock());
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn live_precopy_over_a_unix_socket_with_a_dirtying_guest() {
    let dir = TempDir::new("ram-live");
    let uri = MigrationUri::Unix(dir.path().join("mig.sock"));
    let src = Arc::new(Mutex::new(RamBlockList::new(specs(2048, 4)).unwrap()));
    fill(&src.lock().unwrap(), 3);
    let guest = Guest::start(src.lock().unwrap().clone());

    let incoming = Incoming::listen(&uri).unwrap();
    let dst = Arc::new(Mutex::new(RamBlockList::new(specs(2048, 4)).unwrap()));
    let dst_ram = dst.clone();
    let destination = thread::spawn(move || {
        let mut reg = Registry::new();
        RamSection::new(dst_ram).register(&mut reg).unwrap();
        run_incoming(incoming, &mut reg, load_options(), &StatsHandle::default())
    });

    let mut reg = Registry::new();
    let section = RamSection::with_config(src.clone(), small_parts(), Box::new(VmMemoryDirtyLog));
    let counters = section.counters();
    section.register(&mut reg).unwrap();
    let config = MigrationConfig::new(uri).with_machine(MACHINE).with_params(
        MigrationParameters::default()
            .with_downtime_limit_ms(50)
            // 8 MiB of RAM at 16 MiB/s: several passes while the guest writes.
            .with_max_bandwidth(16 << 20),
    );
    let control = Box::new(GuestControl {
        running: guest.running.clone(),
        busy: guest.busy.clone(),
    });
    let handle = start_migration(config, reg, control).unwrap();
    let stats = handle.stats();
    let (_reg, result) = handle.wait();
    result.unwrap();
    destination.join().unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Completed);
    assert!(s.iterations > 1, "{s:?}");
    assert!(guest.writes.load(Ordering::Relaxed) > 0, "the guest wrote");
    // The guest stays paused after a completed migration: compare now.
    assert!(!guest.running.load(Ordering::SeqCst));
    assert_same(&src.lock().unwrap(), &dst.lock().unwrap());

    // The live statistics show the section's own RAM counters, final figures.
    let ram = s.ram.expect("the RAM section reports its counters");
    assert_eq!(ram, counters.to_stats(PS));
    let total_pages: u64 = src.lock().unwrap().blocks().iter().map(|b| b.pages()).sum();
    assert!(ram.normal > 0 && ram.duplicate > 0, "{ram:?}");
    assert!(
        ram.normal + ram.duplicate > total_pages,
        "re-dirtied pages went again: {ram:?}"
    );
    assert_eq!(ram.page_size, PS);
    assert_eq!(ram.normal_bytes, ram.normal * PS);
    assert!(ram.precopy_bytes > 0 && ram.downtime_bytes > 0, "{ram:?}");
    assert!(
        ram.precopy_bytes + ram.downtime_bytes <= s.transferred,
        "{ram:?} {s:?}"
    );
    assert!(ram.dirty_sync_count > 1, "{ram:?}");
    assert_eq!(ram.postcopy_bytes, 0);
}

/// 16 KiB target pages (e.g. an arm64 guest with 16 KiB pages, target minimum 4 KiB).
fn page_16k() -> TargetPage {
    TargetPage::new(14, 12).unwrap()
}

#[test]
fn the_section_migrates_in_the_runtimes_target_page() {
    let tp = page_16k();
    let ps = tp.size();
    let spec = |idstr: &str, pages: u64| RamBlockSpec {
        page_size: ps,
        ..RamBlockSpec::ram(idstr, pages * ps)
    };
    let src = Arc::new(Mutex::new(
        RamBlockList::new(vec![spec("pc.ram", 64), spec("pc.bios", 4)]).unwrap(),
    ));
    {
        let ram = src.lock().unwrap();
        for (i, b) in ram.blocks().iter().enumerate() {
            for p in (0..b.pages()).step_by(3) {
                b.write(p * ps + ps - 1, &[i as u8 + 1]).unwrap();
            }
        }
    }
    let config = RamSectionConfig::for_target(tp);
    assert_eq!(config.page_size(), ps);
    let section = RamSection::with_config(src.clone(), config, Box::new(VmMemoryDirtyLog));
    let counters = section.counters();
    let mut reg = Registry::new();
    section.register(&mut reg).unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::for_target(MACHINE, tp))
        .unwrap();
    w.setup(&mut reg).unwrap();
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(&mut reg).unwrap();
    let stream = w.into_inner().unwrap();
    StreamWriter::<Vec<u8>>::cleanup(&mut reg);
    // 68 pages of 16 KiB: every third one written (22 + 2), the rest zero.
    let stats = reg.ram_stats().unwrap();
    assert_eq!((stats.normal, stats.duplicate), (24, 44), "{stats:?}");
    assert_eq!(stats.page_size, ps);
    assert_eq!(stats.normal_bytes, 24 * ps);
    assert_eq!(stats, counters.to_stats(ps));

    let dst = Arc::new(Mutex::new(
        RamBlockList::new(vec![spec("pc.ram", 64), spec("pc.bios", 4)]).unwrap(),
    ));
    let mut dreg = Registry::new();
    RamSection::with_config(dst.clone(), config, Box::new(VmMemoryDirtyLog))
        .register(&mut dreg)
        .unwrap();
    let opts = LoadOptions::default().with_configuration(Configuration::for_target(MACHINE, tp));
    assert_eq!(opts.target_page(), tp);
    let mut r = Reader::new(BytesMut::from(stream.as_slice()));
    StreamLoader::new(opts)
        .load(&mut r, &mut dreg, &mut NoCommands)
        .unwrap();
    let (a, b) = (src.lock().unwrap(), dst.lock().unwrap());
    for (x, y) in a.blocks().iter().zip(b.blocks()) {
        assert!(x.to_vec().unwrap() == y.to_vec().unwrap(), "{}", x.idstr());
    }
}

#[test]
fn blocks_whose_pages_are_not_the_target_page_are_refused() {
    // 4 KiB blocks under a section configured for 16 KiB target pages.
    let ram = Arc::new(Mutex::new(RamBlockList::new(specs(8, 1)).unwrap()));
    let config = RamSectionConfig::for_target(page_16k());
    let mut reg = Registry::new();
    RamSection::with_config(ram.clone(), config, Box::new(VmMemoryDirtyLog))
        .register(&mut reg)
        .unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    let e = w.setup(&mut reg).unwrap_err();
    let want =
        "RAMBlock \"pc.ram\": its page size 0x1000 is not the section's target page size 0x4000";
    assert!(e.to_string().contains(want), "{e}");
    StreamWriter::<Vec<u8>>::cleanup(&mut reg);

    // The destination refuses before reading a record.
    let mut dreg = Registry::new();
    RamSection::with_config(ram, config, Box::new(VmMemoryDirtyLog))
        .register(&mut dreg)
        .unwrap();
    let mut src = Registry::new();
    let other = Arc::new(Mutex::new(RamBlockList::new(specs(8, 1)).unwrap()));
    RamSection::new(other).register(&mut src).unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(&mut src).unwrap();
    w.complete_precopy(&mut src).unwrap();
    let stream = w.into_inner().unwrap();
    let mut r = Reader::new(BytesMut::from(stream.as_slice()));
    let e = StreamLoader::new(load_options())
        .load(&mut r, &mut dreg, &mut NoCommands)
        .unwrap_err();
    assert!(e.to_string().contains(want), "{e}");
}

/// With the postcopy-ram capability on and a postcopy-capable section, a
/// migration that is never switched to postcopy converges and completes as
/// precopy: everything left counts as `can_postcopy`, nothing is discarded,
/// nothing goes after a switch.
#[test]
fn a_postcopy_capable_section_completes_in_precopy_when_never_switched() {
    let dir = TempDir::new("ram-pc-precopy");
    let uri = MigrationUri::Unix(dir.path().join("mig.sock"));
    let src = Arc::new(Mutex::new(RamBlockList::new(specs(512, 2)).unwrap()));
    fill(&src.lock().unwrap(), 11);
    let incoming = Incoming::listen(&uri).unwrap();
    let dst = Arc::new(Mutex::new(RamBlockList::new(specs(512, 2)).unwrap()));
    let dst_ram = dst.clone();
    let destination = thread::spawn(move || {
        let mut reg = Registry::new();
        RamSection::new(dst_ram).register(&mut reg).unwrap();
        run_incoming(incoming, &mut reg, load_options(), &StatsHandle::default())
    });
    let section = RamSection::with_config(src.clone(), small_parts(), Box::new(VmMemoryDirtyLog))
        .with_postcopy();
    let postcopy_bytes = section.postcopy_bytes();
    let mut reg = Registry::new();
    section.register(&mut reg).unwrap();
    let config = MigrationConfig::new(uri)
        .with_machine(MACHINE)
        .with_params(
            MigrationParameters::default()
                .with_downtime_limit_ms(300)
                .with_max_bandwidth(64 << 20),
        )
        .with_caps(
            MigrationCapabilities::default()
                .with_postcopy_ram(true)
                .with_return_path(true),
        );
    let running = Arc::new(AtomicBool::new(true));
    let control = Box::new(GuestControl {
        running: running.clone(),
        busy: Arc::default(),
    });
    let handle = start_migration(config, reg, control).unwrap();
    let stats = handle.stats();
    let (_reg, result) = handle.wait();
    result.unwrap();
    destination.join().unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Completed);
    assert_same(&src.lock().unwrap(), &dst.lock().unwrap());
    let ram = s.ram.expect("RAM counters");
    assert!(ram.precopy_bytes > 0 && ram.downtime_bytes > 0, "{ram:?}");
    assert_eq!(ram.postcopy_bytes, 0);
    assert_eq!(postcopy_bytes.load(Ordering::Relaxed), 0);
}

/// The destination faulting its memory in on a helper thread while loading
/// (`RamSectionConfig::prefault`) ends with the same memory as without.
#[test]
fn prefault_while_loading_keeps_every_page() {
    let src = Arc::new(Mutex::new(RamBlockList::new(specs(512, 3)).unwrap()));
    fill(&src.lock().unwrap(), 5);
    let mut reg = Registry::new();
    RamSection::with_config(src.clone(), small_parts(), Box::new(VmMemoryDirtyLog))
        .register(&mut reg)
        .unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(&mut reg).unwrap();
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(&mut reg).unwrap();
    let stream = w.into_inner().unwrap();
    StreamWriter::<Vec<u8>>::cleanup(&mut reg);

    let dst = Arc::new(Mutex::new(RamBlockList::new(specs(512, 7)).unwrap()));
    // A destination page the stream sends as ZERO must read zero afterwards
    // even with the prefault thread running beside the loader.
    dst.lock().unwrap().blocks()[0]
        .write(3 * PS, &[0xee; 64])
        .unwrap();
    let config = RamSectionConfig {
        prefault: true,
        ..RamSectionConfig::default()
    };
    let mut dreg = Registry::new();
    RamSection::with_config(dst.clone(), config, Box::new(VmMemoryDirtyLog))
        .register(&mut dreg)
        .unwrap();
    let mut loader = StreamLoader::new(load_options());
    let mut r = Reader::new(BytesMut::from(stream.as_slice()));
    loader.load(&mut r, &mut dreg, &mut NoCommands).unwrap();
    assert_same(&src.lock().unwrap(), &dst.lock().unwrap());
}
