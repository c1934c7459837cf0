//! Postcopy for the "ram" section: [`PostcopyRam`] for [`RamSection`], over
//! the blocks' real memory.
//!
//! * Source ([`RamSection::with_postcopy`]): everything left may go after the
//!   switch (`can_postcopy`); at the switch the final dirty sync and the
//!   [`discard_ranges`] of pages sent and written again; then pages the
//!   destination asked for ([`UrgentQueue`], each request checked against the
//!   block by [`range`]) before the background walk in every PART, the rest in
//!   END with no further sync, the bytes counted as postcopy-bytes; recovery
//!   turns the destination's received bitmap into the dirty bitmap.
//! * Destination: a [`ReceivedMap`] per block that the loader sets per run of
//!   pages (PAGE, ZERO alike); discards drop the pages (zeroed, bits cleared);
//!   the RECV_BITMAP answer in QEMU's format ([`received`]); and
//!   [`PostcopyAccess`], the guest's memory access that blocks on a missing
//!   page until it arrives.

mod access;
pub mod discard;
mod error;
pub mod range;
pub mod received;
pub mod urgent;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use vm_memory::WriteVolatile;
use vmstate_runtime::savevm::{BlockRanges, PageRequester, PostcopyRam, SectionWriter};
use vmstate_runtime::{Error, Result};

pub use access::{PostcopyAccess, DEFAULT_ACCESS_TIMEOUT};
pub use discard::discard_ranges;
pub use error::{BadRange, PostcopyRamError};
pub use received::{
    decode_recv_bitmap, dirty_from_received, encode_recv_bitmap, recv_bitmap_size, ReceivedMap,
};
pub use urgent::{UrgentQueue, MAX_QUEUED_REQUESTS, MAX_REQUEST_BYTES};

use super::block::RamBlockList;
use super::protocol::PageAt;
use super::section::{is_zero_page, lock, RamSection, Stage, RUN_PAGES};
use super::{RamError, RamErrorKind};
use range::RangeLimits;

fn err(e: PostcopyRamError) -> Error {
    RamError::new(RamErrorKind::Postcopy(e), 0).into()
}

/// The section's postcopy state, both sides.
pub(crate) struct PostcopyState {
    /// Source: postcopy-capable (`has_postcopy`).
    enabled: bool,
    /// Source: the switch happened (discards computed).
    in_postcopy: AtomicBool,
    /// Source: bytes of the section sent after the switch.
    bytes: Arc<AtomicU64>,
    /// Source: pages asked for by the destination.
    urgent: UrgentQueue,
    /// Destination: the received bitmaps of this incoming migration (the
    /// loader's own reference: marking takes no lock).
    maps: Arc<access::Maps>,
    /// Destination: what the accessors share with the loader.
    shared: Arc<access::Shared>,
}

impl Default for PostcopyState {
    fn default() -> Self {
        PostcopyState {
            enabled: false,
            in_postcopy: AtomicBool::new(false),
            bytes: Arc::default(),
            urgent: UrgentQueue::default(),
            maps: Arc::default(),
            shared: Arc::default(),
        }
    }
}

impl PostcopyState {
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn in_postcopy(&self) -> bool {
        self.in_postcopy.load(Ordering::Relaxed)
    }

    pub(crate) fn save_setup(&mut self) {
        self.in_postcopy.store(false, Ordering::Relaxed);
        self.urgent.clear();
    }

    pub(crate) fn count_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// A new incoming migration into `ram`: fresh bitmaps, nothing received.
    pub(crate) fn load_setup(&mut self, ram: &RamBlockList) {
        self.maps = Arc::new(access::Maps::new(ram));
        self.shared.reset(self.maps.clone());
    }

    pub(crate) fn load_cleanup(&self) {
        self.shared.end();
    }

    /// The loader wrote `n` pages of block `block` from page `first` on.
    #[inline]
    pub(crate) fn loaded(&self, block: usize, first: u64, n: u64) {
        self.maps.loaded(block, first, n);
        self.shared.arrived();
    }
}

impl RamSection {
    /// The section, postcopy-capable (QEMU: the `postcopy-ram` capability on
    /// the source): everything not yet sent may be sent after the switch, and
    /// the driver's postcopy hooks reach it.
    pub fn with_postcopy(mut self) -> Self {
        self.postcopy.enabled = true;
        self
    }

    /// The destination guest's memory access, which blocks on pages that have
    /// not arrived while postcopy runs. Take it before registering.
    pub fn postcopy_access(&self) -> PostcopyAccess {
        PostcopyAccess::new(self.ram.clone(), self.postcopy.shared.clone())
    }

    /// Source: bytes of this section sent after the postcopy switch
    /// ("postcopy-bytes"), shared.
    pub fn postcopy_bytes(&self) -> Arc<AtomicU64> {
        self.postcopy.bytes.clone()
    }

    /// Source: page requests dropped because too many were queued.
    pub fn postcopy_requests_dropped(&self) -> u64 {
        self.postcopy.urgent.dropped()
    }

    /// Source, every PART: sends the requested pages that are still dirty,
    /// oldest request first (QEMU `get_queued_page`), until the queue is
    /// empty or the PART's byte budget is used.
    pub(super) fn postcopy_send_urgent(&mut self, w: &mut SectionWriter) -> Result<()> {
        if self.postcopy.urgent.is_empty() {
            return Ok(());
        }
        let save = self.save.as_mut().ok_or_else(|| {
            err(PostcopyRamError::NotSaving {
                what: "urgent pages",
            })
        })?;
        let ram = lock(&self.ram)?;
        let ps = self.config.page_size();
        let budget = self.config.part_budget;
        let start = w.position();
        let (mut sent, mut zero, mut resent) = (0u64, 0u64, 0u64);
        while w.position() - start < budget {
            let Some((bi, first, run)) = self.postcopy.urgent.next_run(&save.bitmaps, RUN_PAGES)
            else {
                break;
            };
            let block = &ram.blocks()[bi];
            let bytes = (run * ps) as usize;
            let slice = block.slice(first * ps, bytes).map_err(Error::from)?;
            let mut copied = Vec::with_capacity(bytes);
            copied
                .write_volatile(&slice)
                .map_err(|e| Error::from(RamError::new(RamErrorKind::Memory(e.to_string()), 0)))?;
            let copied = Bytes::from(copied);
            for (i, page) in copied.chunks_exact(ps as usize).enumerate() {
                let p = first + i as u64;
                save.bitmaps[bi].test_and_clear(p);
                if save.sent_once[bi].get(p) {
                    resent += 1;
                } else {
                    save.sent_once[bi].set(p);
                }
                let at = PageAt {
                    block: bi,
                    idstr: block.idstr(),
                    offset: p * ps,
                };
                if is_zero_page(page) {
                    save.encoder.write_zero(w, at)?;
                    zero += 1;
                } else {
                    save.encoder.write_page_header(w, at)?;
                    let s = i * ps as usize;
                    w.put_shared(copied.slice(s..s + ps as usize));
                }
                sent += 1;
            }
        }
        let c = &self.counters;
        c.duplicate.fetch_add(zero, Ordering::Relaxed);
        c.resent.fetch_add(resent, Ordering::Relaxed);
        c.normal.fetch_add(sent - zero, Ordering::Relaxed);
        c.normal_bytes
            .fetch_add((sent - zero) * ps, Ordering::Relaxed);
        Ok(())
    }

    /// Source, END after postcopy: the requested pages, then every page still
    /// dirty, with no dirty sync (the destination's guest owns the memory now).
    pub(super) fn postcopy_complete(&mut self, w: &mut SectionWriter) -> Result<()> {
        let start = w.position();
        loop {
            let before = w.position();
            self.postcopy_send_urgent(w)?;
            if w.position() == before {
                break;
            }
        }
        self.send_dirty(w, u64::MAX, Stage::Complete)?;
        self.save_eos(w)?;
        if self.postcopy.in_postcopy() {
            self.postcopy.count_bytes(w.position() - start);
        } else {
            self.count_bytes(&self.counters.downtime_bytes, w, start);
        }
        Ok(())
    }

    /// The index and the limits of block `name` for checking a peer's range.
    fn block_limits<'a>(
        ram: &RamBlockList,
        name: &'a str,
        what: &'static str,
        max_len: Option<u64>,
    ) -> Option<(usize, RangeLimits<'a>)> {
        let (index, b) = ram
            .blocks()
            .iter()
            .enumerate()
            .find(|(_, b)| b.idstr() == name)?;
        Some((
            index,
            RangeLimits {
                what,
                block: name,
                used: b.used_length(),
                page_size: b.spec().page_size,
                max_len,
            },
        ))
    }
}

impl PostcopyRam for RamSection {
    fn ram_block_names(&self) -> Vec<String> {
        lock(&self.ram)
            .map(|ram| ram.blocks().iter().map(|b| b.idstr().to_string()).collect())
            .unwrap_or_default()
    }

    fn postcopy_discard_ranges(&mut self) -> Result<Vec<BlockRanges>> {
        // The guest is stopped: the last sync, then every page still dirty
        // is dropped by the destination, sent before or not, as QEMU 7.2's
        // source does (postcopy_send_discard_bm_ram walks the whole dirty
        // bitmap). A QEMU 7.2 destination needs this: when LISTEN comes with
        // no DISCARD before it, it falls back to its DISCARD state after
        // setting LISTENING and then refuses POSTCOPY_RUN ("in wrong
        // postcopy state (2)").
        self.sync()?;
        self.postcopy.in_postcopy.store(true, Ordering::Relaxed);
        let save = self.save.as_ref().ok_or_else(|| {
            err(PostcopyRamError::NotSaving {
                what: "postcopy discard",
            })
        })?;
        let ram = lock(&self.ram)?;
        let ps = self.config.page_size();
        Ok(ram
            .blocks()
            .iter()
            .zip(save.sent_once.iter().zip(&save.bitmaps))
            .map(|(b, (_sent, dirty))| (b.idstr().to_string(), discard_ranges(dirty, dirty, ps)))
            .filter(|(_, ranges)| !ranges.is_empty())
            .collect())
    }

    fn queue_page_request(&mut self, block: &str, start: u64, len: u64) -> Result<bool> {
        let (index, span) = {
            let ram = lock(&self.ram)?;
            let Some((index, limits)) =
                Self::block_limits(&ram, block, "page request", Some(MAX_REQUEST_BYTES))
            else {
                return Ok(false);
            };
            // Counted before the range is checked, as QEMU's
            // ram_save_queue_pages counts; only by the handler whose block it
            // is, so several RAM handlers do not count one request twice.
            self.counters
                .postcopy_requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (index, limits.check(start, len).map_err(err)?)
        };
        if self.save.is_none() {
            return Err(err(PostcopyRamError::NotSaving {
                what: "page request",
            }));
        }
        self.postcopy.urgent.push(index, span);
        Ok(true)
    }

    fn recv_bitmap_size(&self, block: &str) -> Option<u64> {
        let ram = lock(&self.ram).ok()?;
        let b = ram.blocks().iter().find(|b| b.idstr() == block)?;
        Some(recv_bitmap_size(b.pages()))
    }

    fn postcopy_resume_bitmap(&mut self, block: &str, received: &[u8]) -> Result<()> {
        let ram = lock(&self.ram)?;
        let Some((index, b)) = ram
            .blocks()
            .iter()
            .enumerate()
            .find(|(_, b)| b.idstr() == block)
        else {
            return Err(err(PostcopyRamError::UnknownBlock {
                what: "received bitmap",
                block: block.to_string(),
            }));
        };
        let dirty = dirty_from_received(block, received, b.pages()).map_err(err)?;
        drop(ram);
        let save = self.save.as_mut().ok_or_else(|| {
            err(PostcopyRamError::NotSaving {
                what: "received bitmap",
            })
        })?;
        save.bitmaps[index] = dirty;
        // The new connection starts afresh: its first page names its block,
        // the walk starts over, old requests are void.
        save.encoder.reset_last_block();
        save.cursor = (0, 0);
        self.postcopy.urgent.clear();
        Ok(())
    }

    fn postcopy_received_bitmap(&mut self, block: &str) -> Result<Option<Vec<u8>>> {
        let ram = lock(&self.ram)?;
        let Some((index, b)) = ram
            .blocks()
            .iter()
            .enumerate()
            .find(|(_, b)| b.idstr() == block)
        else {
            return Ok(None);
        };
        // A block with no bitmap (no load_setup) has received nothing.
        Ok(Some(match self.postcopy.maps.received.get(index) {
            Some(m) => m.to_le_words(b.pages()),
            None => vec![0; recv_bitmap_size(b.pages()) as usize],
        }))
    }

    fn postcopy_discard(&mut self, block: &str, ranges: &[(u64, u64)]) -> Result<bool> {
        let ram = lock(&self.ram)?;
        let Some((index, limits)) = Self::block_limits(&ram, block, "discard", None) else {
            return Ok(false);
        };
        // Every range is checked before any is applied.
        let spans = ranges
            .iter()
            .map(|&(start, len)| limits.check(start, len))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(err)?;
        let b = &ram.blocks()[index];
        let ps = limits.page_size;
        let zero = vec![0u8; ps as usize];
        for span in spans {
            self.postcopy.maps.discarded(index, span.first, span.pages);
            // Dropped: the old contents are gone until the page comes again.
            for p in span.first..span.first + span.pages {
                b.slice(p * ps, ps as usize)
                    .map_err(Error::from)?
                    .copy_from(&zero[..]);
            }
        }
        Ok(true)
    }

    fn postcopy_listen(&mut self, requester: PageRequester) -> Result<()> {
        let ram = lock(&self.ram)?;
        self.postcopy.shared.listen(&ram, requester);
        Ok(())
    }
}
