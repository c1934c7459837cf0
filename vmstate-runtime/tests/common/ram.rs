//! The synthetic iterative "ram" handler of the migration tests: one handler,
//! configured for what a test needs (pages per round, a padded START, gates,
//! injected failures, postcopy), serving as the source or the destination of
//! guest memory shared with the test.
//!
//! Its sections (not QEMU's RAM format, a simpler one):
//! * START: be32 page count, then, when the handler pads it, be32 filler
//!   length and that many zero bytes;
//! * PART and END: (be32 page index, page bytes)* ended by be32 0xffffffff.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use vmstate_runtime::savevm::{
    BlockRanges, IterateStatus, PageRequester, Pending, PostcopyRam, SaveVmHandlers, SectionReader,
    SectionWriter,
};
use vmstate_runtime::{Error, Result};

use super::gate::Gate;

/// Ends the page records of a PART or END section.
const END_OF_PAGES: u32 = u32::MAX;

/// Guest memory and what the handler knows about each page.
#[derive(Debug, Clone)]
pub struct Memory {
    /// The page contents.
    pub pages: Vec<Vec<u8>>,
    /// Source: written since last sent.
    pub dirty: Vec<bool>,
    /// Source: sent at least once (postcopy discards cover sent pages only).
    pub sent: Vec<bool>,
    /// Destination: arrived (and not discarded since).
    pub received: Vec<bool>,
    /// Destination: asked for by the running guest (postcopy).
    pub requested: Vec<bool>,
}

/// Memory shared by the test (its guest) and the handler; the condition
/// variable is signalled whenever a page arrives.
#[derive(Clone, Debug)]
pub struct SharedMemory(Arc<(Mutex<Memory>, Condvar)>);

impl SharedMemory {
    /// `count` pages of `size` bytes, page `i` filled by `content(i)`, all dirty.
    pub fn new(count: usize, size: usize, content: impl Fn(usize) -> Vec<u8>) -> Self {
        let pages: Vec<Vec<u8>> = (0..count).map(content).collect();
        assert!(pages.iter().all(|p| p.len() == size), "page size");
        SharedMemory(Arc::new((
            Mutex::new(Memory {
                pages,
                dirty: vec![true; count],
                sent: vec![false; count],
                received: vec![false; count],
                requested: vec![false; count],
            }),
            Condvar::new(),
        )))
    }

    /// `count` zero pages of `size` bytes: a destination's memory.
    pub fn zeroed(count: usize, size: usize) -> Self {
        Self::new(count, size, |_| vec![0; size])
    }

    /// Locks the memory.
    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.0 .0.lock().unwrap()
    }

    /// Waits (at most `timeout`) for a page to arrive.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Memory>,
        timeout: Duration,
    ) -> MutexGuard<'a, Memory> {
        self.0 .1.wait_timeout(guard, timeout).unwrap().0
    }

    /// A copy of the page contents.
    pub fn pages(&self) -> Vec<Vec<u8>> {
        self.lock().pages.clone()
    }

    fn arrived(&self) {
        self.0 .1.notify_all();
    }
}

/// The synthetic "ram" handler. Defaults: every dirty page in one PART, an
/// unpadded START, no gates, no failures, precopy only.
pub struct SyntheticRam {
    mem: SharedMemory,
    burst: usize,
    filler: Option<usize>,
    setup_gate: Option<Gate>,
    iterate_gate: Option<Gate>,
    fail_setup: bool,
    fail_iterate_at: Option<u32>,
    iterate_calls: Arc<AtomicU32>,
    postcopy_block: Option<String>,
    urgent: VecDeque<usize>,
    requester: Arc<Mutex<Option<PageRequester>>>,
    version: u32,
    share_pages: bool,
    expect_start: bool,
}

impl SyntheticRam {
    /// A handler over `mem`.
    pub fn new(mem: SharedMemory) -> Self {
        SyntheticRam {
            mem,
            burst: usize::MAX,
            filler: None,
            setup_gate: None,
            iterate_gate: None,
            fail_setup: false,
            fail_iterate_at: None,
            iterate_calls: Arc::new(AtomicU32::new(0)),
            postcopy_block: None,
            urgent: VecDeque::new(),
            requester: Arc::new(Mutex::new(None)),
            version: 1,
            share_pages: false,
            expect_start: false,
        }
    }

    /// At most `pages` pages per PART section.
    pub fn burst(mut self, pages: usize) -> Self {
        self.burst = pages;
        self
    }

    /// START carries `bytes` bytes of filler (the destination must be told too).
    pub fn start_filler(mut self, bytes: usize) -> Self {
        self.filler = Some(bytes);
        self
    }

    /// `save_setup` stops at `gate` first.
    pub fn setup_gate(mut self, gate: Gate) -> Self {
        self.setup_gate = Some(gate);
        self
    }

    /// The first `save_live_iterate` stops at `gate` first.
    pub fn iterate_gate(mut self, gate: Gate) -> Self {
        self.iterate_gate = Some(gate);
        self
    }

    /// `save_setup` fails (after its gate) when `fail` is set.
    pub fn fail_setup(mut self, fail: bool) -> Self {
        self.fail_setup = fail;
        self
    }

    /// The `round`th `save_live_iterate` fails, when given.
    pub fn fail_iterate_at(mut self, round: Option<u32>) -> Self {
        self.fail_iterate_at = round;
        self
    }

    /// Postcopy RAM: everything left may be sent after the switch, page
    /// requests and discards are for RAM block `block`.
    pub fn postcopy(mut self, block: &str) -> Self {
        self.postcopy_block = Some(block.to_string());
        self
    }

    /// The section version the destination accepts (1 unless set).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Hands pages to the stream writer as shared `Bytes` segments
    /// ([`put_shared`](vmstate_runtime::wire::Writer::put_shared)), which it
    /// sends without copying them into its buffer (each page is copied once
    /// into its own `Bytes` here: the memory is plain `Vec`s).
    pub fn share_pages(mut self, share: bool) -> Self {
        self.share_pages = share;
        self
    }

    /// Counts the `save_live_iterate` calls.
    pub fn iterate_calls(&self) -> Arc<AtomicU32> {
        self.iterate_calls.clone()
    }

    /// Destination: where the requester handed over at POSTCOPY_LISTEN lands.
    pub fn requester(&self) -> Arc<Mutex<Option<PageRequester>>> {
        self.requester.clone()
    }

    fn page_size(&self) -> usize {
        self.mem.lock().pages.first().map_or(0, Vec::len)
    }

    fn dirty_pages(&self) -> usize {
        self.mem.lock().dirty.iter().filter(|d| **d).count()
    }

    fn is_ours(&self, block: &str) -> bool {
        self.postcopy_block.as_deref() == Some(block)
    }

    /// Writes the requested pages, then dirty pages in order until `limit`
    /// pages are written, then the end marker.
    fn send(&mut self, w: &mut SectionWriter, limit: usize) -> Result<()> {
        let mut m = self.mem.lock();
        let mut sent = 0;
        let urgent: Vec<usize> = self.urgent.drain(..).collect();
        let in_order = 0..m.pages.len();
        for (i, forced) in urgent
            .into_iter()
            .map(|i| (i, true))
            .chain(in_order.map(|i| (i, false)))
        {
            if !forced && sent >= limit {
                break;
            }
            if m.dirty[i] {
                w.write_u32(i as u32)?;
                if self.share_pages {
                    w.put_shared(Bytes::copy_from_slice(&m.pages[i]));
                } else {
                    w.write_bytes(&m.pages[i])?;
                }
                m.dirty[i] = false;
                m.sent[i] = true;
                sent += 1;
            }
        }
        w.write_u32(END_OF_PAGES)
    }

    fn load_start(&mut self, r: &mut SectionReader) -> Result<()> {
        let n = r.read_u32()?;
        let count = self.mem.lock().pages.len();
        if n as usize != count {
            return Err(Error::invalid(format!("ram: {n} pages, expected {count}")));
        }
        if self.filler.is_some() {
            let filler = r.read_u32()?;
            r.skip(filler as usize)?;
        }
        Ok(())
    }

    fn load_pages(&mut self, r: &mut SectionReader) -> Result<()> {
        let size = self.page_size();
        loop {
            let i = r.read_u32()?;
            if i == END_OF_PAGES {
                return Ok(());
            }
            let mut page = vec![0; size];
            r.read_bytes(&mut page)?;
            let mut m = self.mem.lock();
            let slot = m
                .pages
                .get_mut(i as usize)
                .ok_or_else(|| Error::invalid(format!("ram: page {i} out of range")))?;
            *slot = page;
            m.received[i as usize] = true;
            drop(m);
            self.mem.arrived();
        }
    }

    /// The page indexes `len` bytes at `start` cover, or an error naming `what`.
    fn pages_of(&self, start: u64, len: u64, what: &str) -> Result<std::ops::Range<usize>> {
        let size = self.page_size() as u64;
        let count = self.mem.lock().pages.len();
        let first = (start / size) as usize;
        let n = len.div_ceil(size) as usize;
        if first + n > count {
            return Err(Error::invalid(format!(
                "{what} {start:#x}+{len:#x} beyond RAM"
            )));
        }
        Ok(first..first + n)
    }
}

impl SaveVmHandlers for SyntheticRam {
    fn is_iterative(&self) -> bool {
        true
    }

    fn has_postcopy(&self) -> bool {
        self.postcopy_block.is_some()
    }

    fn save_setup(&mut self, w: &mut SectionWriter) -> Result<()> {
        if let Some(gate) = &self.setup_gate {
            gate.pass();
        }
        if self.fail_setup {
            return Err(Error::invalid(
                "ram: cannot allocate the dirty bitmap (injected)",
            ));
        }
        // Bulk stage: every page is sent at least once, whatever an earlier
        // (cancelled, failed or completed) attempt already sent; "sent" (what
        // the postcopy discards cover) starts over with this migration.
        let count = {
            let mut m = self.mem.lock();
            m.dirty.fill(true);
            m.sent.fill(false);
            m.pages.len()
        };
        w.write_u32(count as u32)?;
        if let Some(filler) = self.filler {
            w.write_u32(filler as u32)?;
            w.write_zeros(filler)?;
        }
        Ok(())
    }

    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        let round = self.iterate_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if round == 1 {
            if let Some(gate) = &self.iterate_gate {
                gate.pass();
            }
        }
        if self.fail_iterate_at == Some(round) {
            return Err(Error::invalid(format!(
                "ram: dirty log sync failed in round {round} (injected)"
            )));
        }
        self.send(w, self.burst)?;
        Ok(if self.dirty_pages() == 0 {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }

    fn state_pending_estimate(&mut self) -> Pending {
        let left = (self.dirty_pages() * self.page_size()) as u64;
        if self.has_postcopy() {
            // With postcopy-ram, all of RAM may be sent after the switch.
            Pending {
                must_precopy: 0,
                can_postcopy: left,
            }
        } else {
            Pending {
                must_precopy: left,
                can_postcopy: 0,
            }
        }
    }

    fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.send(w, usize::MAX)
    }

    fn load_setup(&mut self) -> Result<()> {
        self.expect_start = true;
        Ok(())
    }

    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        if version_id != self.version {
            return Err(Error::invalid(format!(
                "ram: version must be {}",
                self.version
            )));
        }
        if std::mem::take(&mut self.expect_start) {
            return self.load_start(r);
        }
        self.load_pages(r)
    }

    fn as_postcopy_ram(&mut self) -> Option<&mut dyn PostcopyRam> {
        Some(self)
    }
}

/// The synthetic RAM's postcopy side: one block (the one named by
/// [`SyntheticRam::postcopy`]), one bit per page of the memory's page size.
impl PostcopyRam for SyntheticRam {
    fn postcopy_discard_ranges(&mut self) -> Result<Vec<BlockRanges>> {
        let Some(block) = self.postcopy_block.clone() else {
            return Ok(Vec::new());
        };
        let size = self.page_size();
        let m = self.mem.lock();
        let ranges: Vec<(u64, u64)> = (0..m.pages.len())
            .filter(|&i| m.sent[i] && m.dirty[i])
            .map(|i| ((i * size) as u64, size as u64))
            .collect();
        Ok(vec![(block, ranges)])
    }

    fn queue_page_request(&mut self, block: &str, start: u64, len: u64) -> Result<bool> {
        if !self.is_ours(block) {
            return Ok(false);
        }
        let pages = self.pages_of(start, len, "request")?;
        self.urgent.extend(pages);
        Ok(true)
    }

    fn ram_block_names(&self) -> Vec<String> {
        self.postcopy_block.iter().cloned().collect()
    }

    fn postcopy_resume_bitmap(&mut self, block: &str, received: &[u8]) -> Result<()> {
        let mut m = self.mem.lock();
        if !self.is_ours(block) || received.len() * 8 < m.pages.len() {
            return Err(Error::invalid("bad bitmap"));
        }
        for (i, d) in m.dirty.iter_mut().enumerate() {
            let word = u64::from_le_bytes(received[i / 64 * 8..i / 64 * 8 + 8].try_into().unwrap());
            if word & (1 << (i % 64)) == 0 {
                *d = true;
            }
        }
        Ok(())
    }

    fn postcopy_discard(&mut self, block: &str, ranges: &[(u64, u64)]) -> Result<bool> {
        if !self.is_ours(block) {
            return Ok(false);
        }
        for &(start, len) in ranges {
            let pages = self.pages_of(start, len, "discard")?;
            let mut m = self.mem.lock();
            for i in pages {
                m.received[i] = false;
            }
        }
        Ok(true)
    }

    fn postcopy_listen(&mut self, requester: PageRequester) -> Result<()> {
        *self.requester.lock().unwrap() = Some(requester);
        Ok(())
    }

    fn postcopy_received_bitmap(&mut self, block: &str) -> Result<Option<Vec<u8>>> {
        if !self.is_ours(block) {
            return Ok(None);
        }
        let m = self.mem.lock();
        let mut words = vec![0u64; m.pages.len().div_ceil(64)];
        for (i, r) in m.received.iter().enumerate() {
            if *r {
                words[i / 64] |= 1 << (i % 64);
            }
        }
        Ok(Some(words.iter().flat_map(|w| w.to_le_bytes()).collect()))
    }
}
