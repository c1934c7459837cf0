//! Guest memory access on a postcopy destination: a page that has not arrived
//! blocks its accessor until the loader has written it (what userfaultfd does
//! for QEMU, here in the memory API). The first accessor of a missing page asks
//! the source for it once over the return path (MIG_RP_MSG_REQ_PAGES), then
//! every accessor of it waits on a condition variable that the loader signals
//! when pages land, with a timeout and a cancel so no access waits forever.
//!
//! Locks: while postcopy listens, accessors never take the block list's
//! mutex (the loader holds it while it applies a section); they use clones of
//! the blocks (same memory) taken at POSTCOPY_LISTEN and the lock-free
//! received bitmap, and request pages without holding any lock of theirs.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use vmstate_runtime::savevm::PageRequester;

use super::error::PostcopyRamError;
use super::received::ReceivedMap;
use crate::ram::{RamBlock, RamBlockList, RamError, RamErrorKind};

/// No incoming postcopy: accesses go straight to memory.
const IDLE: u8 = 0;
/// POSTCOPY_LISTEN seen: missing pages block their accessors.
const LISTENING: u8 = 1;
/// The incoming migration ended: accesses go straight to memory again.
const ENDED: u8 = 2;

/// How often a waiting accessor looks again (and asks again when its request
/// could not be sent, e.g. while postcopy is paused).
const RECHECK: Duration = Duration::from_millis(20);

/// How long an access waits for a page unless told otherwise.
pub const DEFAULT_ACCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The bitmaps of one incoming migration, per block in RAM-list order (sized
/// by max_length, so a resize never outgrows them).
#[derive(Debug, Default)]
pub(crate) struct Maps {
    /// The pages that arrived.
    pub(crate) received: Vec<ReceivedMap>,
    /// The pages asked for since they went missing.
    requested: Vec<ReceivedMap>,
}

impl Maps {
    pub(crate) fn new(ram: &RamBlockList) -> Self {
        let maps = || {
            ram.blocks()
                .iter()
                .map(|b| ReceivedMap::new(b.spec().max_length / b.spec().page_size))
                .collect()
        };
        Maps {
            received: maps(),
            requested: maps(),
        }
    }

    /// The loader wrote `n` pages of block `block` from `first` on.
    #[inline]
    pub(crate) fn loaded(&self, block: usize, first: u64, n: u64) {
        if let Some(m) = self.received.get(block) {
            m.set_range(first, n);
        }
    }

    /// Pages of block `block` dropped by a discard: missing again.
    pub(crate) fn discarded(&self, block: usize, first: u64, n: u64) {
        if let Some(m) = self.received.get(block) {
            m.clear_range(first, n);
        }
        if let Some(m) = self.requested.get(block) {
            m.clear_range(first, n);
        }
    }
}

/// What the loader, the PostcopyRam hooks and the accessors share.
#[derive(Default)]
pub(crate) struct Shared {
    /// The bitmaps of the current incoming migration (replaced at each
    /// load_setup; the loader keeps its own reference and takes no lock).
    maps: RwLock<Arc<Maps>>,
    phase: AtomicU8,
    /// The blocks as they were at POSTCOPY_LISTEN (shared memory).
    views: RwLock<Option<Arc<[RamBlock]>>>,
    requester: Mutex<Option<PageRequester>>,
    waiters: AtomicUsize,
    cancelled: AtomicBool,
    lock: Mutex<()>,
    arrived: Condvar,
}

impl Shared {
    /// A new incoming migration with `maps` (nothing received), nobody
    /// listening.
    pub(crate) fn reset(&self, maps: Arc<Maps>) {
        self.phase.store(IDLE, Ordering::SeqCst);
        if let Ok(mut m) = self.maps.write() {
            *m = maps;
        }
        if let Ok(mut v) = self.views.write() {
            *v = None;
        }
    }

    /// Pages arrived: wakes the accessors, only when one waits (the precopy
    /// load path pays one load here).
    #[inline]
    pub(crate) fn arrived(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake();
        }
    }

    fn maps(&self) -> Arc<Maps> {
        self.maps.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// POSTCOPY_LISTEN: from now on missing pages block, and are asked for
    /// with `requester`.
    pub(crate) fn listen(&self, ram: &RamBlockList, requester: PageRequester) {
        if let Ok(mut v) = self.views.write() {
            *v = Some(ram.blocks().to_vec().into());
        }
        if let Ok(mut r) = self.requester.lock() {
            *r = Some(requester);
        }
        self.phase.store(LISTENING, Ordering::SeqCst);
    }

    /// The incoming migration is over (every page arrived, or it failed).
    pub(crate) fn end(&self) {
        if self.phase.swap(ENDED, Ordering::SeqCst) == LISTENING {
            self.wake();
        }
    }

    fn wake(&self) {
        let _g = self.lock.lock();
        self.arrived.notify_all();
    }
}

/// A handle through which the destination's guest (its vCPUs and devices)
/// reads and writes RAM while postcopy runs: an access to a page that has not
/// arrived asks the source for it and blocks until it is there. Before
/// POSTCOPY_LISTEN and after the incoming migration ended, accesses go
/// straight to memory. Cheap to clone; get it from
/// [`RamSection::postcopy_access`](crate::ram::RamSection::postcopy_access)
/// before registering the section.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vmstate_devices::ram::{RamBlockList, RamBlockSpec, RamSection};
///
/// let ram = Arc::new(Mutex::new(
///     RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", 1 << 20)]).unwrap(),
/// ));
/// let section = RamSection::new(ram);
/// let guest = section.postcopy_access();
/// // No incoming postcopy: plain memory access.
/// guest.write("pc.ram", 0x1000, b"hi").unwrap();
/// let mut buf = [0u8; 2];
/// guest.read("pc.ram", 0x1000, &mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// assert!(guest.read("pc.rom", 0, &mut buf).is_err());
/// ```
#[derive(Clone)]
pub struct PostcopyAccess {
    ram: Arc<Mutex<RamBlockList>>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl std::fmt::Debug for PostcopyAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostcopyAccess")
            .field("timeout", &self.timeout)
            .field("listening", &self.is_listening())
            .finish_non_exhaustive()
    }
}

fn postcopy_err(e: PostcopyRamError) -> RamError {
    RamError::new(RamErrorKind::Postcopy(e), 0)
}

impl PostcopyAccess {
    pub(crate) fn new(ram: Arc<Mutex<RamBlockList>>, shared: Arc<Shared>) -> Self {
        PostcopyAccess {
            ram,
            shared,
            timeout: DEFAULT_ACCESS_TIMEOUT,
        }
    }

    /// The same handle waiting at most `timeout` for a page.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether accesses may block now (POSTCOPY_LISTEN seen, migration not
    /// ended).
    pub fn is_listening(&self) -> bool {
        self.shared.phase.load(Ordering::SeqCst) == LISTENING
    }

    /// Ends every wait, now and later, with
    /// [`PostcopyRamError::AccessCancelled`] (the VMM shuts the guest down).
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        self.shared.wake();
    }

    /// Page requests sent to the source so far (over the requester handed
    /// over at the last POSTCOPY_LISTEN).
    pub fn requests_sent(&self) -> u64 {
        self.shared
            .requester
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(PageRequester::requests_sent))
            .unwrap_or(0)
    }

    /// Pages of block `block` (by RAM-list index) that arrived so far, among
    /// its first `pages`.
    pub fn received_pages(&self, block: usize, pages: u64) -> u64 {
        self.shared
            .maps()
            .received
            .get(block)
            .map_or(0, |m| m.count(pages))
    }

    /// Reads `buf.len()` bytes at `offset` of block `block`, waiting for the
    /// pages that have not arrived.
    pub fn read(&self, block: &str, offset: u64, buf: &mut [u8]) -> Result<(), RamError> {
        match self.view(block, offset, buf.len())? {
            Some(view) => view.read(offset, buf),
            None => self.locked(block, |b| b.read(offset, buf)),
        }
    }

    /// Writes `buf` at `offset` of block `block` (marking vm-memory's dirty
    /// bitmap), waiting first for the pages that have not arrived: the page
    /// that lands later must not overwrite what the guest wrote.
    pub fn write(&self, block: &str, offset: u64, buf: &[u8]) -> Result<(), RamError> {
        match self.view(block, offset, buf.len())? {
            Some(view) => view.write(offset, buf),
            None => self.locked(block, |b| b.write(offset, buf)),
        }
    }

    fn locked<T>(
        &self,
        block: &str,
        f: impl FnOnce(&RamBlock) -> Result<T, RamError>,
    ) -> Result<T, RamError> {
        let ram = self.ram.lock().map_err(|_| {
            RamError::new(
                RamErrorKind::Memory("RAM block list poisoned by a panicking thread".into()),
                0,
            )
        })?;
        let b = ram.get(block).ok_or_else(|| unknown(block))?;
        f(b)
    }

    /// While listening: the block, once every page of the range is there.
    /// Otherwise `None` (access memory directly).
    fn view(&self, block: &str, offset: u64, len: usize) -> Result<Option<RamBlock>, RamError> {
        if !self.is_listening() {
            return Ok(None);
        }
        let views = self
            .shared
            .views
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or_else(|| unknown(block))?;
        let Some((index, view)) = views.iter().enumerate().find(|(_, b)| b.idstr() == block) else {
            return Err(unknown(block));
        };
        // Checks the range against used_length before any page is asked for.
        view.slice(offset, len)?;
        let ps = view.spec().page_size;
        if len > 0 {
            let maps = self.shared.maps();
            let last = (offset + len as u64 - 1) / ps;
            for page in offset / ps..=last {
                self.wait_for(&maps, index, view, page)?;
            }
        }
        Ok(Some(view.clone()))
    }

    /// Returns once page `page` of block `index` is there.
    fn wait_for(
        &self,
        maps: &Maps,
        index: usize,
        view: &RamBlock,
        page: u64,
    ) -> Result<(), RamError> {
        let s = &*self.shared;
        let (Some(received), Some(requested)) =
            (maps.received.get(index), maps.requested.get(index))
        else {
            // No bitmap for the block (no load_setup): nothing to wait for.
            return Ok(());
        };
        if received.get(page) {
            return Ok(());
        }
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let outcome = self.wait_loop(received, requested, view, page);
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    fn wait_loop(
        &self,
        received: &ReceivedMap,
        requested: &ReceivedMap,
        view: &RamBlock,
        page: u64,
    ) -> Result<(), RamError> {
        let s = &*self.shared;
        let ps = view.spec().page_size;
        let offset = page * ps;
        let started = Instant::now();
        let named = || (view.idstr().to_string(), offset);
        // The link this accessor's request went on, while it is outstanding.
        let mut asked_on: Option<u64> = None;
        loop {
            if received.get(page) {
                return Ok(());
            }
            if s.cancelled.load(Ordering::SeqCst) {
                let (block, offset) = named();
                return Err(postcopy_err(PostcopyRamError::AccessCancelled {
                    block,
                    offset,
                }));
            }
            if s.phase.load(Ordering::SeqCst) != LISTENING {
                let (block, offset) = named();
                return Err(postcopy_err(PostcopyRamError::EndedWithoutPage {
                    block,
                    offset,
                }));
            }
            let waited = started.elapsed();
            if waited >= self.timeout {
                let (block, offset) = named();
                return Err(postcopy_err(PostcopyRamError::PageTimeout {
                    block,
                    offset,
                    waited,
                }));
            }
            // The first accessor of the page asks for it; a request that
            // could not be sent (postcopy paused) is asked again next round,
            // and so is one sent on a link replaced since (postcopy paused and
            // recovered): it may have been lost with the old connection.
            let requester = s.requester.lock().ok().and_then(|r| r.clone());
            if let (Some(on), Some(r)) = (asked_on, &requester) {
                if r.link() != on {
                    asked_on = None;
                    requested.clear_range(page, 1);
                }
            }
            if !requested.test_and_set(page) {
                let sent = requester.as_ref().and_then(|r| {
                    let link = r.link();
                    r.request(view.idstr(), offset, ps as u32)
                        .ok()
                        .map(|()| link)
                });
                asked_on = sent;
                if sent.is_none() {
                    requested.clear_range(page, 1);
                }
            }
            let guard = s.lock.lock().map_err(|_| {
                RamError::new(
                    RamErrorKind::Memory("postcopy wait lock poisoned".into()),
                    0,
                )
            })?;
            if received.get(page) {
                return Ok(());
            }
            let wait = RECHECK.min(self.timeout.saturating_sub(waited));
            drop(s.arrived.wait_timeout(guard, wait));
        }
    }
}

fn unknown(block: &str) -> RamError {
    RamError::new(
        RamErrorKind::UnknownBlock {
            block: block.to_string(),
        },
        0,
    )
}
