//! The "ram" section's handlers (QEMU's `ram_save_*` / `ram_load`, precopy):
//! START carries the MEM_SIZE list, PARTs carry dirty pages (the first pass
//! sends every page; later ones XBZRLE deltas when it is on), each bounded by
//! the round's byte budget and 50 ms, END the rest after a final dirty sync;
//! every body ends with EOS. All pages go out through one loop
//! (`send_dirty`). Loading checks every record against the local blocks and
//! copies PAGE payloads from the input straight into guest memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use vm_memory::WriteVolatile;
use vmstate_runtime::savevm::{
    IterateStatus, MemorySegment, Pending, RamStats, SaveVmHandlers, SectionReader, SectionWriter,
    SharedMemory, TargetPage, XbzrleStats,
};
use vmstate_runtime::{Error, Result};

use super::block::RamBlockList;
use super::dirty::{DirtyBitmap, DirtyLog, VmMemoryDirtyLog};
use super::error::{RamError, RamErrorKind};
// postcopy hook: the section's postcopy state (ram/postcopy/).
use super::chunking::RamChunking;
use super::postcopy::PostcopyState;
use super::protocol::{
    BlockEntry, MemSizeOptions, PageAt, RamDecoder, RamEncoder, RecordHeader, SECTION_VERSION,
};
use super::xbzrle::{self, Encoded, PageCache, XbzrleConfig};
use super::zero_page::is_zero_in_memory;
pub(super) use super::zero_page::is_zero_page;

/// How the section saves and loads.
///
/// The page the section counts and addresses in is the runtime's
/// [`TargetPage`], the same value a migration's `MigrationConfig::target_page`
/// and the destination's `LoadOptions::target_page()` carry, so one value sets
/// the configuration record, POSTCOPY_ADVISE and the RAM records.
///
/// ```
/// use vmstate_devices::ram::RamSectionConfig;
/// use vmstate_runtime::savevm::TargetPage;
///
/// assert_eq!(RamSectionConfig::default().target_page, TargetPage::default());
/// let arm = RamSectionConfig::for_target(TargetPage::new(14, 12).unwrap());
/// assert_eq!(arm.page_size(), 16384);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamSectionConfig {
    /// The target page (x86: 4 KiB).
    pub target_page: TargetPage,
    /// Optional MEM_SIZE words (postcopy-ram page size, x-ignore-shared GPA).
    pub mem_size: MemSizeOptions,
    /// Bytes of page records after which a PART ends at the latest; a smaller
    /// byte budget the driver gives the round from its rate limit
    /// ([`SectionWriter::remaining_budget`]) ends it earlier. Keep it small
    /// (the default, 256 KiB) even without a rate limit: the stream writer
    /// holds a whole PART until it ends, so a long PART leaves the
    /// destination idle while it is built and the source waiting while it is
    /// read (PARTs bounded only by `max_iterate_time` made a migration over a
    /// unix socket 10-25% slower, 2026-12-04).
    pub part_budget: u64,
    /// Longest time one PART may take (QEMU's 50 ms `MAX_WAIT`), checked every
    /// 64 pages as QEMU does.
    pub max_iterate_time: Duration,
    /// XBZRLE on the source (capability `xbzrle`, parameter
    /// `xbzrle-cache-size`); `None`: off. The destination accepts XBZRLE
    /// records whatever this says.
    pub xbzrle: Option<XbzrleConfig>,
    /// Destination: while the stream loads, a helper thread faults the blocks'
    /// memory in ([`RamBlock::populate`](super::RamBlock::populate)), from the
    /// end of the RAM list backwards while the loader fills it from the front,
    /// so the kernel's first-touch work (zeroing every page) runs beside the
    /// loader instead of inside it; where the thread has not got to yet, the
    /// loader faults each 2 MiB it writes into in one call rather than one
    /// trap per page. The thread stops when the load ends. Off by
    /// default, as in QEMU (whose `prealloc` is the nearest option): it makes
    /// every page resident, including those the stream leaves zero.
    pub prefault: bool,
}

impl Default for RamSectionConfig {
    fn default() -> Self {
        Self::for_target(TargetPage::default())
    }
}

impl RamSectionConfig {
    /// The default configuration for pages of `target_page`.
    pub fn for_target(target_page: TargetPage) -> Self {
        RamSectionConfig {
            target_page,
            mem_size: MemSizeOptions::default(),
            part_budget: 256 * 1024,
            max_iterate_time: Duration::from_millis(50),
            xbzrle: None,
            prefault: false,
        }
    }

    /// The target page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.target_page.size()
    }
}

/// QEMU's RAM counters (`query-migrate` "ram"), shared with whoever reports.
#[derive(Debug, Default)]
pub struct RamCounters {
    /// PAGE records sent or received ("normal").
    pub normal: AtomicU64,
    /// ZERO records sent or received ("duplicate").
    pub duplicate: AtomicU64,
    /// Payload bytes of PAGE records ("normal-bytes").
    pub normal_bytes: AtomicU64,
    /// Dirty syncs done ("dirty-sync-count").
    pub dirty_sync_count: AtomicU64,
    /// Bytes of the section's START and PART bodies, sent while the guest runs
    /// ("precopy-bytes").
    pub precopy_bytes: AtomicU64,
    /// Bytes of the section's END body, sent with the guest stopped
    /// ("downtime-bytes").
    pub downtime_bytes: AtomicU64,
    /// Pages the guest dirtied per second, over the syncs of the last second
    /// or more ("dirty-pages-rate").
    pub dirty_pages_rate: AtomicU64,
    /// Bytes of the section sent after the switchover to postcopy
    /// ("postcopy-bytes").
    pub postcopy_bytes: AtomicU64,
    /// Page requests that came over the return path, counted on arrival,
    /// valid or not, as QEMU does ("postcopy-requests").
    pub postcopy_requests: AtomicU64,
    /// The XBZRLE cache size in bytes; 0 while XBZRLE is off.
    pub xbzrle_cache_size: AtomicU64,
    /// XBZRLE records sent ("xbzrle-cache" "pages").
    pub xbzrle_pages: AtomicU64,
    /// Bytes of XBZRLE records without their 8-byte record word, plus a page
    /// per overflow ("bytes", as QEMU counts it).
    pub xbzrle_bytes: AtomicU64,
    /// Pages not in the XBZRLE cache, sent whole ("cache-miss").
    pub xbzrle_cache_miss: AtomicU64,
    /// Pages whose encoding did not fit in a page, sent whole ("overflow").
    pub xbzrle_overflow: AtomicU64,
    /// Cache misses per page sent over the last rate period, as `f64` bits
    /// ("cache-miss-rate").
    pub xbzrle_cache_miss_rate: AtomicU64,
    /// Page bytes per encoded byte over the last rate period, as `f64` bits
    /// ("encoding-rate").
    pub xbzrle_encoding_rate: AtomicU64,
    /// Pages sent again because the guest wrote them after they were sent (not
    /// a QEMU counter: the number that tells how much the guest's writes cost;
    /// every page goes once in the bulk pass, so pages sent = pages + resent).
    pub resent: AtomicU64,
}

impl RamCounters {
    /// Reads `counter` (a field of these counters).
    ///
    /// ```
    /// use vmstate_devices::ram::RamCounters;
    ///
    /// let c = RamCounters::default();
    /// assert_eq!(RamCounters::get(&c.normal), 0);
    /// ```
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters as the runtime's live statistics show them (QMP
    /// `query-migrate`'s "ram"), counted in pages of `page_size` bytes.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use vmstate_devices::ram::RamCounters;
    ///
    /// let c = RamCounters::default();
    /// c.normal.store(3, Ordering::Relaxed);
    /// c.normal_bytes.store(3 * 4096, Ordering::Relaxed);
    /// let s = c.to_stats(4096);
    /// assert_eq!((s.normal, s.normal_bytes, s.page_size), (3, 3 * 4096, 4096));
    /// ```
    pub fn to_stats(&self, page_size: u64) -> RamStats {
        let get = Self::get;
        RamStats::default()
            .with_normal(get(&self.normal))
            .with_duplicate(get(&self.duplicate))
            .with_normal_bytes(get(&self.normal_bytes))
            .with_dirty_sync_count(get(&self.dirty_sync_count))
            .with_dirty_pages_rate(get(&self.dirty_pages_rate))
            .with_precopy_bytes(get(&self.precopy_bytes))
            .with_downtime_bytes(get(&self.downtime_bytes))
            .with_postcopy_bytes(get(&self.postcopy_bytes))
            .with_postcopy_requests(get(&self.postcopy_requests))
            .with_page_size(page_size)
            .with_xbzrle(match get(&self.xbzrle_cache_size) {
                0 => None,
                cache_size => Some(
                    XbzrleStats::default()
                        .with_cache_size(cache_size)
                        .with_bytes(get(&self.xbzrle_bytes))
                        .with_pages(get(&self.xbzrle_pages))
                        .with_cache_miss(get(&self.xbzrle_cache_miss))
                        .with_cache_miss_rate(f64::from_bits(get(&self.xbzrle_cache_miss_rate)))
                        .with_encoding_rate(f64::from_bits(get(&self.xbzrle_encoding_rate)))
                        .with_overflow(get(&self.xbzrle_overflow)),
                ),
            })
    }
}

/// The "ram" section of a machine: its blocks (shared with the VMM, whose
/// vCPUs keep writing the regions) and the migration state of either side.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vmstate_devices::ram::{RamBlockList, RamBlockSpec, RamSection};
/// use vmstate_runtime::savevm::Registry;
///
/// let ram = Arc::new(Mutex::new(
///     RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", 1 << 20)]).unwrap(),
/// ));
/// let mut reg = Registry::new();
/// RamSection::new(ram).register(&mut reg).unwrap();
/// ```
pub struct RamSection {
    // postcopy hook: fields visible to ram/postcopy/ (pub(super)).
    pub(super) ram: Arc<Mutex<RamBlockList>>,
    pub(super) config: RamSectionConfig,
    log: Box<dyn DirtyLog>,
    pub(super) counters: Arc<RamCounters>,
    pub(super) save: Option<SaveState>,
    /// postcopy hook: discards, urgent pages, received bitmaps, accessors.
    pub(super) postcopy: PostcopyState,
    decoder: RamDecoder,
    /// One page, for loading (ZERO records' check, a PAGE split across
    /// buffers, the page an XBZRLE record is decoded in).
    scratch: Vec<u8>,
    /// One page of room for XBZRLE data split across input buffers.
    encoded_in: Vec<u8>,
    /// chunking hook: the record of each loaded body, replayed on save.
    chunking: Option<Arc<RamChunking>>,
    /// Destination: the helper faulting guest memory in while loading
    /// ([`RamSectionConfig::prefault`]).
    prefaulter: Option<Prefaulter>,
}

/// Bytes one `populate` call of the prefault thread covers (it checks for the
/// end of the load between calls).
const PREFAULT_CHUNK: u64 = 2 << 20;

/// A thread faulting the blocks' memory in, last block first and each from
/// its end down, until done or stopped (dropping it stops and joins it).
struct Prefaulter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prefaulter {
    /// Starts the thread over `blocks` (None: it could not be started; the
    /// load then takes its page faults itself).
    fn start(blocks: Vec<super::RamBlock>) -> Option<Self> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ram-prefault".into())
            .spawn(move || {
                for block in blocks.iter().rev() {
                    let mut end = block.used_length();
                    while end > 0 {
                        if flag.load(Ordering::Relaxed) {
                            return;
                        }
                        let start = end.saturating_sub(PREFAULT_CHUNK);
                        // A kernel or mapping that cannot populate: stop; the
                        // loader faults pages in as it writes them.
                        if block.populate(start, end - start).is_err() {
                            return;
                        }
                        end = start;
                    }
                }
            })
            .ok()?;
        Some(Prefaulter {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Prefaulter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // The thread only calls madvise; it cannot panic in a way that
            // matters to the load.
            let _ = t.join();
        }
    }
}

/// Bytes of page records per piece of the END body (the writer sends each
/// piece before asking for the next).
pub const COMPLETE_PIECE_BYTES: u64 = 1 << 20;

/// Dirty pages copied out of guest memory at once when saving.
pub(super) const RUN_PAGES: u64 = 16;

impl std::fmt::Debug for RamSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RamSection")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Source side: the migration bitmaps and where the pass stands.
pub(super) struct SaveState {
    pub(super) bitmaps: Vec<DirtyBitmap>,
    /// Per block, the pages sent at least once (to count resent pages).
    pub(super) sent_once: Vec<DirtyBitmap>,
    pub(super) encoder: RamEncoder,
    /// (block, page) where the current pass continues.
    pub(super) cursor: (usize, u64),
    /// The first (bulk) pass is over: XBZRLE starts with the second, as in
    /// QEMU (the first pass would only fill the cache with misses).
    bulk_done: bool,
    /// Per block, where its pages start in one address space over all blocks
    /// (QEMU's ram_addr_t, what the XBZRLE cache is indexed by).
    bases: Vec<u64>,
    /// Per block, its memory as the stream's PAGE payloads reference it
    /// (`MemorySegment`s: read when the transport takes them).
    memories: Vec<Arc<dyn SharedMemory>>,
    /// XBZRLE state, when the capability is on.
    xbzrle: Option<XbzrleState>,
    /// Pages handled so far (any record or none), for the per-period rates.
    pages_done: u64,
    /// The current rate period (QEMU: rates are taken at a bitmap sync once a
    /// second or more has passed).
    period: RatePeriod,
}

/// The source's XBZRLE state: QEMU's page cache and one page of encoding room.
struct XbzrleState {
    cache: PageCache,
    encoded: Vec<u8>,
    zero: Vec<u8>,
}

/// Counts at the start of the current rate period.
struct RatePeriod {
    started: Instant,
    /// Pages newly dirtied by the syncs of this period.
    dirtied: u64,
    pages_done: u64,
    cache_miss: u64,
    xbzrle_pages: u64,
    xbzrle_bytes: u64,
}

impl RatePeriod {
    fn new(c: &RamCounters, pages_done: u64) -> Self {
        let get = RamCounters::get;
        RatePeriod {
            started: Instant::now(),
            dirtied: 0,
            pages_done,
            cache_miss: get(&c.xbzrle_cache_miss),
            xbzrle_pages: get(&c.xbzrle_pages),
            xbzrle_bytes: get(&c.xbzrle_bytes),
        }
    }
}

/// What the page loop counts locally and publishes once per call (no atomic
/// per page).
#[derive(Default)]
struct Tally {
    /// Pages handled (the 50 ms check runs every 64).
    handled: u64,
    normal: u64,
    zero: u64,
    resent: u64,
    xbzrle_pages: u64,
    xbzrle_bytes: u64,
    cache_miss: u64,
    overflow: u64,
}

impl Tally {
    fn publish(&self, c: &RamCounters, page_size: u64) {
        let add = |counter: &AtomicU64, n: u64| {
            if n != 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&c.duplicate, self.zero);
        add(&c.resent, self.resent);
        add(&c.normal, self.normal);
        add(&c.normal_bytes, self.normal * page_size);
        add(&c.xbzrle_pages, self.xbzrle_pages);
        add(&c.xbzrle_bytes, self.xbzrle_bytes);
        add(&c.xbzrle_cache_miss, self.cache_miss);
        add(&c.xbzrle_overflow, self.overflow);
    }
}

/// Which stage pages are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// A PART: bounded by the byte budget and the time bound.
    Iterate,
    /// The END with the guest stopped: everything, and the XBZRLE cache is
    /// no longer updated (QEMU's `last_stage`).
    Complete,
}

pub(super) fn lock(ram: &Mutex<RamBlockList>) -> Result<MutexGuard<'_, RamBlockList>> {
    ram.lock()
        .map_err(|_| Error::poisoned("RAM block list poisoned by a panicking thread"))
}

impl RamSection {
    /// The section over `ram`, tracking dirty pages through vm-memory's bitmap.
    pub fn new(ram: Arc<Mutex<RamBlockList>>) -> Self {
        Self::with_config(ram, RamSectionConfig::default(), Box::new(VmMemoryDirtyLog))
    }

    /// The section with its configuration and dirty log.
    pub fn with_config(
        ram: Arc<Mutex<RamBlockList>>,
        config: RamSectionConfig,
        log: Box<dyn DirtyLog>,
    ) -> Self {
        RamSection {
            // postcopy hook: the postcopy state (bitmaps come at load_setup).
            postcopy: PostcopyState::default(),
            ram,
            decoder: RamDecoder::new(config.page_size(), config.mem_size),
            scratch: vec![0; config.page_size() as usize],
            encoded_in: vec![0; config.page_size() as usize],
            prefaulter: None,
            config,
            log,
            counters: Arc::default(),
            save: None,
            chunking: None,
        }
    }

    /// The section recording each loaded body's records in `chunking`, and
    /// writing them again on save once [`RamChunking::start_replay`] was
    /// called (the original order and section boundaries).
    pub fn with_chunking(mut self, chunking: Arc<RamChunking>) -> Self {
        self.chunking = Some(chunking);
        self
    }

    /// Registers the section as QEMU does: "ram", instance 0, version 4.
    pub fn register(self, reg: &mut vmstate_runtime::savevm::Registry) -> Result<()> {
        reg.register_savevm_live(
            super::protocol::SECTION_NAME,
            0,
            SECTION_VERSION,
            Box::new(self),
        )?;
        Ok(())
    }

    /// The counters, shared.
    pub fn counters(&self) -> Arc<RamCounters> {
        self.counters.clone()
    }

    /// The section counting into `counters` (e.g. a machine's, which outlive
    /// the registry the section is registered in).
    pub fn sharing_counters(mut self, counters: Arc<RamCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// A destination that knows a stream is coming starts faulting its
    /// memory in now ([`RamSectionConfig::prefault`] must be on), while it
    /// still waits for the source to connect, instead of at the start of the
    /// load: the kernel's first-touch work is then done, or under way, when
    /// the pages arrive. The load takes the running thread over and stops it
    /// when it ends (dropping the section stops it too). Without `prefault`
    /// it does nothing.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use vmstate_devices::ram::{
    ///     RamBlockList, RamBlockSpec, RamSection, RamSectionConfig, VmMemoryDirtyLog,
    /// };
    ///
    /// let ram = Arc::new(Mutex::new(
    ///     RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", 4 << 20)]).unwrap(),
    /// ));
    /// let config = RamSectionConfig { prefault: true, ..RamSectionConfig::default() };
    /// let section = RamSection::with_config(ram, config, Box::new(VmMemoryDirtyLog))
    ///     .prefaulting_now();
    /// drop(section); // stops and joins the thread
    /// ```
    pub fn prefaulting_now(mut self) -> Self {
        if self.config.prefault && self.prefaulter.is_none() {
            if let Ok(ram) = lock(&self.ram) {
                self.prefaulter = Prefaulter::start(ram.blocks().to_vec());
            }
        }
        self
    }

    /// The blocks, shared.
    pub fn ram(&self) -> Arc<Mutex<RamBlockList>> {
        self.ram.clone()
    }

    fn dirty_pages(&self) -> u64 {
        self.save
            .as_ref()
            .map_or(0, |s| s.bitmaps.iter().map(DirtyBitmap::count).sum())
    }

    /// Pulls the dirty log into the migration bitmaps (QEMU's bitmap sync).
    pub(super) fn sync(&mut self) -> Result<()> {
        let Some(save) = self.save.as_mut() else {
            return Ok(());
        };
        let ram = lock(&self.ram)?;
        let mut newly = 0;
        for (block, bitmap) in ram.blocks().iter().zip(save.bitmaps.iter_mut()) {
            let before = bitmap.count();
            self.log.sync(block, bitmap);
            newly += bitmap.count() - before;
        }
        save.period.dirtied += newly;
        let c = &self.counters;
        let n = c.dirty_sync_count.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(sync = n, newly_dirty_pages = newly, "ram: dirty log synced");
        let elapsed = save.period.started.elapsed();
        if elapsed >= Duration::from_secs(1) {
            Self::update_rates(c, save, elapsed, self.config.page_size());
        }
        Ok(())
    }

    /// QEMU's `migration_update_rates`: dirty-pages-rate, and the XBZRLE cache
    /// miss rate and encoding rate of the period that ends.
    fn update_rates(c: &RamCounters, save: &mut SaveState, elapsed: Duration, page_size: u64) {
        let get = RamCounters::get;
        let p = &save.period;
        let ms = elapsed.as_millis().max(1) as u64;
        c.dirty_pages_rate
            .store(p.dirtied * 1000 / ms, Ordering::Relaxed);
        if save.xbzrle.is_some() {
            let pages = save.pages_done - p.pages_done;
            let miss = get(&c.xbzrle_cache_miss) - p.cache_miss;
            let miss_rate = if pages == 0 {
                0.0
            } else {
                miss as f64 / pages as f64
            };
            let xb_pages = get(&c.xbzrle_pages) - p.xbzrle_pages;
            let encoded = get(&c.xbzrle_bytes) - p.xbzrle_bytes;
            let encoding_rate = if xb_pages == 0 || encoded == 0 {
                0.0
            } else {
                (xb_pages * page_size) as f64 / encoded as f64
            };
            c.xbzrle_cache_miss_rate
                .store(miss_rate.to_bits(), Ordering::Relaxed);
            c.xbzrle_encoding_rate
                .store(encoding_rate.to_bits(), Ordering::Relaxed);
        }
        save.period = RatePeriod::new(c, save.pages_done);
    }

    /// Sends dirty pages in RAM-list order, ascending in each block, from the
    /// cursor on; in a PART until `budget` bytes or the time bound. Returns
    /// whether the bitmaps are now clean.
    pub(super) fn send_dirty(
        &mut self,
        w: &mut SectionWriter,
        budget: u64,
        stage: Stage,
    ) -> Result<bool> {
        let started = Instant::now();
        let save = self
            .save
            .as_mut()
            .ok_or_else(|| Error::invalid("ram: save_live_iterate before save_setup"))?;
        let ram = lock(&self.ram)?;
        let ps = self.config.page_size();
        let age = RamCounters::get(&self.counters.dirty_sync_count);
        let start_pos = w.position();
        let mut tally = Tally::default();
        let (mut bi, mut from) = save.cursor;
        let mut wrapped = false;
        let clean = loop {
            if bi >= ram.len() {
                // A pass ended: XBZRLE (when on) is used from now on.
                save.bulk_done = true;
                if wrapped || save.bitmaps.iter().all(|b| b.count() == 0) {
                    save.cursor = (0, 0);
                    break true;
                }
                (bi, from) = (0, 0);
                wrapped = true;
                continue;
            }
            let block = &ram.blocks()[bi];
            let bitmap = &mut save.bitmaps[bi];
            let sent_once = &mut save.sent_once[bi];
            let Some(first) = bitmap.next_set(from) else {
                (bi, from) = (bi + 1, 0);
                continue;
            };
            let run = bitmap.run_len(first, RUN_PAGES);
            let bytes = (run * ps) as usize;
            let slice = block.slice(first * ps, bytes).map_err(Error::from)?;
            // postcopy hook: no XBZRLE after the switch (QEMU: the destination
            // has no previous copy of a page it has not received).
            let in_postcopy = self.postcopy.in_postcopy();
            let mut xbzrle = save
                .xbzrle
                .as_mut()
                .filter(|_| save.bulk_done && !in_postcopy);
            // With XBZRLE the run is copied out in one go (one long copy keeps
            // several pages' loads in flight): the cache must hold exactly the
            // bytes sent, which guest memory that the vCPUs keep writing
            // cannot promise. Otherwise PAGE payloads are the guest memory
            // itself (`put_memory`), read when the transport takes them: by
            // the kernel straight from guest memory on a socket
            // (`vmsplice`), copied once for any other sink.
            let snapshot = match xbzrle {
                Some(_) => {
                    let mut copied = Vec::with_capacity(bytes);
                    copied.write_volatile(&slice).map_err(|e| {
                        Error::from(RamError::new(RamErrorKind::Memory(e.to_string()), 0))
                    })?;
                    Some(Bytes::from(copied))
                }
                None => {
                    super::zero_page::prefetch_page_heads(&slice, ps as usize);
                    None
                }
            };
            let mut stop = false;
            for i in 0..run {
                let p = first + i;
                let in_run = (i * ps) as usize..((i + 1) * ps) as usize;
                bitmap.test_and_clear(p);
                if sent_once.get(p) {
                    tally.resent += 1;
                } else {
                    sent_once.set(p);
                }
                let offset = p * ps;
                let at = PageAt {
                    block: bi,
                    idstr: block.idstr(),
                    offset,
                };
                let addr = save.bases[bi] + offset;
                let zero = match &snapshot {
                    Some(copied) => is_zero_page(&copied[in_run.clone()]),
                    None => is_zero_in_memory(&slice.subslice(in_run.start, ps as usize).map_err(
                        |e| Error::from(RamError::new(RamErrorKind::Memory(e.to_string()), 0)),
                    )?),
                };
                if zero {
                    save.encoder.write_zero(w, at)?;
                    tally.zero += 1;
                    if let Some(xb) = xbzrle.as_deref_mut() {
                        // A page now zero must not be encoded against its old
                        // cached copy later.
                        xb.cache.insert(addr, &xb.zero, age);
                    }
                } else {
                    let sent = match (xbzrle.as_deref_mut(), &snapshot) {
                        (Some(xb), Some(copied)) => xbzrle_page(
                            xb,
                            &mut save.encoder,
                            w,
                            at,
                            addr,
                            &copied[in_run.clone()],
                            age,
                            stage,
                            &mut tally,
                        )?,
                        _ => false,
                    };
                    if !sent {
                        save.encoder.write_page_header(w, at)?;
                        match &snapshot {
                            Some(copied) => w.put_shared(copied.slice(in_run)),
                            None => w.put_memory(
                                MemorySegment::new(
                                    &save.memories[bi],
                                    offset as usize,
                                    ps as usize,
                                )
                                .ok_or_else(|| {
                                    Error::from(RamError::new(
                                        RamErrorKind::Memory(format!(
                                            "page {offset:#x} of \"{}\" lies outside its mapping",
                                            block.idstr()
                                        )),
                                        0,
                                    ))
                                })?,
                            ),
                        }
                        tally.normal += 1;
                    }
                }
                from = p + 1;
                tally.handled += 1;
                let over_budget = w.position() - start_pos >= budget;
                let over_time = stage == Stage::Iterate
                    && tally.handled.is_multiple_of(64)
                    && started.elapsed() >= self.config.max_iterate_time;
                if over_budget || over_time {
                    stop = true;
                    break;
                }
            }
            if stop {
                // Pages of the run not sent keep their dirty bits.
                save.cursor = (bi, from);
                break save.bitmaps.iter().all(|b| b.count() == 0);
            }
        };
        save.pages_done += tally.handled;
        tally.publish(&self.counters, ps);
        Ok(clean)
    }

    fn load_records(&mut self, r: &mut SectionReader) -> std::result::Result<(), RamError> {
        let mut ram = lock(&self.ram).map_err(|e| RamError::new(RamErrorKind::Wire(e), 0))?;
        let ps = self.config.page_size() as usize;
        let mut pages = 0u64;
        let mut zeros = 0u64;
        let mut xbzrle_pages = 0u64;
        // chunking hook: a body starts; each record is noted before it loads.
        let chunking = self.chunking.clone();
        let chunking = chunking.as_deref();
        if let Some(c) = chunking {
            c.begin_chunk(ps as u64, r.position());
        }
        // With `prefault`, the 2 MiB chunk (block, chunk) the loader last
        // populated: the loader faults each chunk it writes into in one call
        // (one batch, not a trap per page) where the helper thread has not
        // reached yet; a chunk already in costs a page-table walk.
        let mut populated: Option<(usize, u64)> = None;
        let result = loop {
            let at = r.position();
            let header = match self.decoder.next_header(r, &*ram) {
                Ok(h) => h,
                Err(e) => break Err(e),
            };
            match header {
                RecordHeader::Page { block, offset } => {
                    if let Some(c) = chunking {
                        c.page(&ram, ps, block, offset);
                    }
                    if self.config.prefault {
                        let chunk = offset / PREFAULT_CHUNK;
                        if populated != Some((block, chunk)) {
                            populated = Some((block, chunk));
                            // A failure only means the faults come one by one.
                            let b = &ram.blocks()[block];
                            let from = chunk * PREFAULT_CHUNK;
                            let len = PREFAULT_CHUNK.min(b.used_length() - from);
                            let _ = b.populate(from, len);
                        }
                    }
                    if let Err(e) = load_page(r, &ram, block, offset, &mut self.scratch, at) {
                        break Err(e);
                    }
                    // postcopy hook: the page arrived.
                    self.postcopy.loaded(block, offset / ps as u64, 1);
                    pages += 1;
                }
                RecordHeader::Xbzrle { block, offset, len } => {
                    if let Some(c) = chunking {
                        c.xbzrle(block, offset);
                    }
                    let bufs = (&mut self.scratch[..], &mut self.encoded_in[..]);
                    if let Err(e) = load_xbzrle(r, &ram, block, offset, len, bufs, at) {
                        break Err(e);
                    }
                    // postcopy hook: the page arrived.
                    self.postcopy.loaded(block, offset / ps as u64, 1);
                    xbzrle_pages += 1;
                }
                RecordHeader::Eos => break Ok(()),
                RecordHeader::MemSize(entries) => {
                    if let Some(c) = chunking {
                        let list = entries.iter().map(|(_, e)| e.clone()).collect();
                        c.mem_size(&ram, list, self.config.mem_size);
                    }
                    for (index, BlockEntry { used_length, .. }) in entries {
                        ram.block_mut(index)
                            .resize(used_length)
                            .map_err(|e| RamError::new(into_kind(e), at))?;
                    }
                }
                RecordHeader::Zero { block, offset, .. } => {
                    if let Some(c) = chunking {
                        c.zero(&ram, ps, block, offset);
                    }
                    let slice = ram.blocks()[block]
                        .slice(offset, ps)
                        .map_err(|e| RamError::new(into_kind(e), at))?;
                    // Leave a page that is already zero untouched (an untouched
                    // anonymous page stays unallocated).
                    slice.copy_to(&mut self.scratch[..]);
                    if !is_zero_page(&self.scratch) {
                        self.scratch.fill(0);
                        slice.copy_from(&self.scratch[..]);
                    }
                    // postcopy hook: the page arrived.
                    self.postcopy.loaded(block, offset / ps as u64, 1);
                    zeros += 1;
                }
            }
        };
        if let (Some(c), Ok(())) = (chunking, &result) {
            c.end_chunk(r.position());
        }
        let c = &self.counters;
        c.normal.fetch_add(pages, Ordering::Relaxed);
        c.normal_bytes
            .fetch_add(pages * ps as u64, Ordering::Relaxed);
        c.duplicate.fetch_add(zeros, Ordering::Relaxed);
        c.xbzrle_pages.fetch_add(xbzrle_pages, Ordering::Relaxed);
        result
    }
}

/// QEMU's `save_xbzrle_page` for one non-zero page: a cache miss caches the
/// page (outside the last stage) and has it sent whole; a hit is encoded
/// against the cached copy: unchanged sends nothing, an overflow has it sent
/// whole, a delta goes as an XBZRLE record; both refresh the cached copy
/// outside the last stage. Returns whether the page is dealt with (false: send
/// it as a PAGE).
#[allow(clippy::too_many_arguments)]
fn xbzrle_page(
    xb: &mut XbzrleState,
    encoder: &mut RamEncoder,
    w: &mut SectionWriter,
    at: PageAt<'_>,
    addr: u64,
    page: &[u8],
    age: u64,
    stage: Stage,
    tally: &mut Tally,
) -> Result<bool> {
    let last_stage = stage == Stage::Complete;
    if !xb.cache.is_cached(addr, age) {
        tally.cache_miss += 1;
        if !last_stage {
            xb.cache.insert(addr, page, age);
        }
        return Ok(false);
    }
    let cached = xb
        .cache
        .page_mut(addr)
        .expect("is_cached just found the page");
    match xbzrle::encode(cached, page, &mut xb.encoded) {
        Encoded::Unchanged => Ok(true),
        Encoded::Overflow => {
            tally.overflow += 1;
            tally.xbzrle_bytes += page.len() as u64;
            if !last_stage {
                cached.copy_from_slice(page);
            }
            Ok(false)
        }
        Encoded::Delta(len) => {
            if !last_stage {
                cached.copy_from_slice(page);
            }
            let before = w.position();
            encoder.write_xbzrle(w, at, &xb.encoded[..len])?;
            tally.xbzrle_pages += 1;
            // QEMU leaves the 8-byte record word out of these bytes.
            tally.xbzrle_bytes += w.position() - before - 8;
            Ok(true)
        }
    }
}

/// An XBZRLE record's data applied to the destination's copy of the page
/// (QEMU's `load_xbzrle`): the page is decoded in `page` (one page of scratch)
/// and goes back into guest memory only when the whole encoding is valid.
/// `encoded` is a page of room for data split across input buffers.
fn load_xbzrle(
    r: &mut SectionReader,
    ram: &RamBlockList,
    block: usize,
    offset: u64,
    len: usize,
    (page, encoded): (&mut [u8], &mut [u8]),
    at: u64,
) -> std::result::Result<(), RamError> {
    let b = &ram.blocks()[block];
    let dst = b
        .slice(offset, page.len())
        .map_err(|e| RamError::new(into_kind(e), at))?;
    r.require(len)
        .map_err(|e| RamError::new(RamErrorKind::Wire(e), at))?;
    dst.copy_to(&mut page[..]);
    let decoded = match r.with_contiguous(len, |enc| xbzrle::decode(enc, page)) {
        Some(d) => d,
        None => {
            let enc = &mut encoded[..len];
            r.read_bytes(enc)
                .map_err(|e| RamError::new(RamErrorKind::Wire(e), at))?;
            xbzrle::decode(enc, page)
        }
    };
    decoded.map_err(|reason| {
        RamError::new(
            RamErrorKind::BadXbzrle {
                block: b.idstr().to_string(),
                offset,
                reason,
            },
            at,
        )
    })?;
    dst.copy_from(&page[..]);
    Ok(())
}

/// A PAGE record's payload, from the section's input straight into guest
/// memory: one copy out of the reader's buffer (which the transport filled),
/// no staging buffer. The decoder has checked `offset` against used_length.
fn load_page(
    r: &mut SectionReader,
    ram: &RamBlockList,
    block: usize,
    offset: u64,
    scratch: &mut [u8],
    at: u64,
) -> std::result::Result<(), RamError> {
    let ps = scratch.len();
    let dst = ram.blocks()[block]
        .slice(offset, ps)
        .map_err(|e| RamError::new(into_kind(e), at))?;
    r.require(ps)
        .map_err(|e| RamError::new(RamErrorKind::Wire(e), at))?;
    // The section reader's buffer is one contiguous `BytesMut`, so once `ps`
    // bytes are buffered they are one chunk; `with_contiguous` still checks.
    // Streaming stores (`page_copy`): the page is written once and not read
    // back during the load.
    if r.with_contiguous(ps, |src| super::page_copy::copy_page(&dst, src))
        .is_none()
    {
        r.read_bytes(scratch)
            .map_err(|e| RamError::new(RamErrorKind::Wire(e), at))?;
        super::page_copy::copy_page(&dst, &scratch[..]);
    }
    Ok(())
}

fn into_kind(e: RamError) -> RamErrorKind {
    e.into_kind()
}

impl SaveVmHandlers for RamSection {
    fn is_iterative(&self) -> bool {
        true
    }

    // postcopy hook: postcopy-capable when enabled (RamSection::with_postcopy).
    fn has_postcopy(&self) -> bool {
        self.postcopy.enabled()
    }

    // postcopy hook: the PostcopyRam interface (ram/postcopy/mod.rs).
    fn as_postcopy_ram(&mut self) -> Option<&mut dyn vmstate_runtime::savevm::PostcopyRam> {
        Some(self)
    }

    // postcopy hook: after the switch, the rest without a dirty sync.
    fn save_live_complete_postcopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.postcopy_complete(w)
    }

    fn load_cleanup(&mut self) -> Result<()> {
        // The load is over: pages not faulted in yet were not sent.
        self.prefaulter = None;
        // postcopy hook: accessors stop waiting.
        self.postcopy.load_cleanup();
        Ok(())
    }

    fn save_setup(&mut self, w: &mut SectionWriter) -> Result<()> {
        // chunking hook: a replay writes the recorded bodies.
        if let Some(c) = self.chunking.as_ref().filter(|c| c.replaying()) {
            return c.replay_next(w, &*lock(&self.ram)?);
        }
        let ram = lock(&self.ram)?;
        self.check_block_pages(&ram)?;
        let start = w.position();
        let mut bitmaps = Vec::with_capacity(ram.len());
        let mut sent_once = Vec::with_capacity(ram.len());
        let mut entries = Vec::with_capacity(ram.len());
        let mut bases = Vec::with_capacity(ram.len());
        let mut memories = Vec::with_capacity(ram.len());
        let mut base = 0u64;
        for block in ram.blocks() {
            bases.push(base);
            memories.push(block.shared_memory());
            base += block.spec().max_length;
            // Log from now on; the bulk pass sends every page anyway.
            self.log.start(block);
            bitmaps.push(DirtyBitmap::all_dirty(block.pages()));
            sent_once.push(DirtyBitmap::new(block.pages()));
            let spec = block.spec();
            entries.push(BlockEntry {
                idstr: spec.idstr.clone(),
                used_length: spec.used_length,
                page_size: self
                    .config
                    .mem_size
                    .postcopy_host_page_size
                    .filter(|host| *host != spec.page_size)
                    .map(|_| spec.page_size),
                gpa: self.config.mem_size.ignore_shared.then_some(spec.gpa),
            });
        }
        drop(ram);
        // postcopy hook: a new outgoing migration starts in precopy.
        self.postcopy.save_setup();
        let ps = self.config.page_size() as usize;
        let xbzrle = match self.config.xbzrle {
            None => None,
            Some(cfg) => {
                let err = |e| Error::device("ram", RamError::new(RamErrorKind::Xbzrle(e), 0));
                if cfg.cache_size > base {
                    return Err(err(xbzrle::XbzrleError::CacheTooLarge {
                        size: cfg.cache_size,
                        ram: base,
                    }));
                }
                let cache = PageCache::new(cfg.cache_size, ps).map_err(err)?;
                self.counters
                    .xbzrle_cache_size
                    .store(cfg.cache_size, Ordering::Relaxed);
                Some(XbzrleState {
                    cache,
                    encoded: vec![0; ps],
                    zero: vec![0; ps],
                })
            }
        };
        let mut encoder = RamEncoder::new(self.config.page_size());
        encoder.write_mem_size(w, &entries, self.config.mem_size)?;
        encoder.write_eos(w)?;
        self.save = Some(SaveState {
            bitmaps,
            sent_once,
            encoder,
            cursor: (0, 0),
            bulk_done: false,
            bases,
            memories,
            xbzrle,
            pages_done: 0,
            period: RatePeriod::new(&self.counters, 0),
        });
        self.count_bytes(&self.counters.precopy_bytes, w, start);
        Ok(())
    }

    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        // chunking hook: a replay writes the recorded bodies.
        if let Some(c) = self.chunking.as_ref().filter(|c| c.replaying()) {
            c.replay_next(w, &*lock(&self.ram)?)?;
            return Ok(if c.replay_at_last() {
                IterateStatus::Done
            } else {
                IterateStatus::Continue
            });
        }
        let start = w.position();
        // postcopy hook: pages the destination asked for go first.
        self.postcopy_send_urgent(w)?;
        // The PART's bound: the configured one, or less when the driver's rate
        // limit leaves less of this window.
        let budget = w
            .remaining_budget()
            .map_or(self.config.part_budget, |left| {
                left.min(self.config.part_budget)
            });
        let clean = self.send_dirty(w, budget, Stage::Iterate)?;
        self.save_eos(w)?;
        // postcopy hook: after the switch the bytes are postcopy-bytes.
        if self.postcopy.in_postcopy() {
            self.postcopy.count_bytes(w.position() - start);
        } else {
            self.count_bytes(&self.counters.precopy_bytes, w, start);
        }
        Ok(if clean {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }

    fn state_pending_estimate(&mut self) -> Pending {
        let left = self.dirty_pages() * self.config.page_size();
        // postcopy hook: with postcopy, all of it may go after the switch.
        if self.postcopy.enabled() {
            return Pending {
                must_precopy: 0,
                can_postcopy: left,
            };
        }
        Pending {
            must_precopy: left,
            can_postcopy: 0,
        }
    }

    fn state_pending_exact(&mut self) -> Pending {
        // postcopy hook: no dirty sync after the switch (the destination's
        // guest owns the memory then).
        if !self.postcopy.in_postcopy() {
            // A poisoned lock shows up as an error in the next PART.
            let _ = self.sync();
        }
        self.state_pending_estimate()
    }

    fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        let mut first = true;
        while self.save_live_complete_precopy_piece(w, first)? {
            first = false;
        }
        Ok(())
    }

    /// The END body in pieces of about [`COMPLETE_PIECE_BYTES`]: the final sync
    /// on the first, then the remaining dirty pages, EOS on the last; the
    /// writer sends each piece before the next, so stop-and-copy of all of RAM
    /// does not hold a copy of RAM.
    fn save_live_complete_precopy_piece(
        &mut self,
        w: &mut SectionWriter,
        first: bool,
    ) -> Result<bool> {
        // chunking hook: a replay writes the recorded bodies.
        if let Some(c) = self.chunking.as_ref().filter(|c| c.replaying()) {
            c.replay_next(w, &*lock(&self.ram)?)?;
            return Ok(false);
        }
        let start = w.position();
        if first {
            self.sync()?;
        }
        let clean = self.send_dirty(w, COMPLETE_PIECE_BYTES, Stage::Complete)?;
        if clean {
            self.save_eos(w)?;
        }
        self.count_bytes(&self.counters.downtime_bytes, w, start);
        Ok(!clean)
    }

    fn save_cleanup(&mut self) {
        self.save = None;
    }

    fn load_setup(&mut self) -> Result<()> {
        self.check_block_pages(&*lock(&self.ram)?)?;
        // postcopy hook: no page received yet (one bit per page by max_length).
        self.postcopy.load_setup(&*lock(&self.ram)?);
        self.decoder = RamDecoder::new(self.config.page_size(), self.config.mem_size);
        // A thread started early ([`RamSection::prefaulting_now`]) goes on.
        if self.config.prefault && self.prefaulter.is_none() {
            self.prefaulter = Prefaulter::start(lock(&self.ram)?.blocks().to_vec());
        }
        Ok(())
    }

    fn ram_stats(&self) -> Option<RamStats> {
        let mut stats = self.counters.to_stats(self.config.page_size());
        // postcopy hook: bytes sent after the switch.
        stats.postcopy_bytes = self.postcopy.bytes();
        Some(stats)
    }

    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        if version_id != SECTION_VERSION {
            return Err(RamError::new(RamErrorKind::BadVersion(version_id), r.position()).into());
        }
        self.load_records(r).map_err(Error::from)
    }
}

impl RamSection {
    /// Refuses blocks whose pages are not the section's target pages: the
    /// bitmaps and records count in the one, the blocks in the other.
    fn check_block_pages(&self, ram: &RamBlockList) -> Result<()> {
        let target_page = self.config.page_size();
        match ram
            .blocks()
            .iter()
            .find(|b| b.spec().page_size != target_page)
        {
            Some(b) => Err(RamError::new(
                RamErrorKind::BlockPageNotTargetPage {
                    block: b.idstr().to_string(),
                    block_page: b.spec().page_size,
                    target_page,
                },
                0,
            )
            .into()),
            None => Ok(()),
        }
    }

    /// Adds the bytes `w` took since `start` to `counter`.
    pub(super) fn count_bytes(&self, counter: &AtomicU64, w: &SectionWriter, start: u64) {
        counter.fetch_add(w.position() - start, Ordering::Relaxed);
    }

    pub(super) fn save_eos(&mut self, w: &mut SectionWriter) -> Result<()> {
        match self.save.as_mut() {
            Some(s) => s.encoder.write_eos(w),
            None => Err(Error::invalid("ram: chunk written before save_setup")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::RamBlockSpec;
    use vmstate_runtime::savevm::{QemuVersion, Registry, SectionBuf, StreamWriter};

    const PS: u64 = 4096;

    fn section(pages: u64) -> (Arc<Mutex<RamBlockList>>, RamSection) {
        let ram = Arc::new(Mutex::new(
            RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", pages * PS)]).unwrap(),
        ));
        {
            let r = ram.lock().unwrap();
            for p in 0..pages {
                r.blocks()[0].write(p * PS, &[p as u8 | 1; 4096]).unwrap();
            }
        }
        (ram.clone(), RamSection::new(ram))
    }

    #[test]
    fn a_part_stops_when_the_rounds_byte_budget_is_spent() {
        let (_ram, s) = section(64);
        let counters = s.counters();
        let mut reg = Registry::new();
        s.register(&mut reg).unwrap();
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.setup(&mut reg).unwrap();
        // Room for three pages' records (the first names its block).
        let record = PS + 8;
        let budget = 3 * record;
        let before = w.position();
        let status = w
            .iterate_within(&mut reg, false, Some(budget), &mut |_| false)
            .unwrap();
        assert_eq!(status, IterateStatus::Continue);
        assert_eq!(RamCounters::get(&counters.normal), 3);
        let part = w.position() - before;
        assert!(part <= budget + 8 + 7 + 8 + 5 + 5, "{part}");
        // The budget ends with the round: the next PART takes the configured
        // part budget (256 KiB), which takes the 61 pages left.
        w.iterate(&mut reg, false, &mut |_| false).unwrap();
        assert_eq!(RamCounters::get(&counters.normal), 3 + 61);
    }

    #[test]
    fn the_section_sees_the_budget_the_writer_was_given() {
        let mut w = SectionWriter::new(SectionBuf::default());
        w.set_budget(Some(2 * (PS + 8)));
        let (_ram, mut s) = section(8);
        s.save_setup(&mut w).unwrap();
        // The MEM_SIZE list already used some of it; one page still fits.
        let sent_before = RamCounters::get(&s.counters.normal);
        s.save_live_iterate(&mut w).unwrap();
        let sent = RamCounters::get(&s.counters.normal) - sent_before;
        assert!((1..=2).contains(&sent), "{sent}");
    }

    #[test]
    fn dirty_pages_rate_is_taken_at_a_sync_after_a_second() {
        let (ram, mut s) = section(16);
        let mut w = SectionWriter::new(SectionBuf::default());
        s.save_setup(&mut w).unwrap();
        s.save_live_iterate(&mut w).unwrap();
        for p in 0..10 {
            ram.lock().unwrap().blocks()[0].write(p * PS, &[9]).unwrap();
        }
        let save = s.save.as_mut().unwrap();
        save.period.started = Instant::now().checked_sub(Duration::from_secs(2)).unwrap();
        s.sync().unwrap();
        // 10 pages over about 2 s.
        let rate = RamCounters::get(&s.counters.dirty_pages_rate);
        assert!((4..=5).contains(&rate), "{rate}");
        // A new period starts; syncs within it leave the rate as it is.
        ram.lock().unwrap().blocks()[0].write(0, &[1]).unwrap();
        s.sync().unwrap();
        assert_eq!(RamCounters::get(&s.counters.dirty_pages_rate), rate);
    }
}
