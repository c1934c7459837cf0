//! The migration dirty bitmap (one bit per target page of a block, QEMU's
//! `RAMBlock::bmap`) and where it is filled from: a [`DirtyLog`], by default
//! vm-memory's `AtomicBitmap` that every write through the API marks.

use super::block::RamBlock;

/// One bit per target page of a block: set = must be sent.
///
/// ```
/// use vmstate_devices::ram::DirtyBitmap;
///
/// let mut b = DirtyBitmap::new(130);
/// b.set(3);
/// b.set(129);
/// assert_eq!(b.count(), 2);
/// assert_eq!(b.next_set(0), Some(3));
/// assert_eq!(b.next_set(4), Some(129));
/// assert_eq!(b.run_len(3, 16), 1);
/// assert!(b.test_and_clear(3));
/// assert_eq!(b.next_set(0), Some(129));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtyBitmap {
    words: Vec<u64>,
    pages: u64,
    count: u64,
}

impl DirtyBitmap {
    /// A clean bitmap of `pages` pages.
    pub fn new(pages: u64) -> Self {
        DirtyBitmap {
            words: vec![0; pages.div_ceil(64) as usize],
            pages,
            count: 0,
        }
    }

    /// A bitmap of `pages` pages, all dirty (the bulk first pass).
    pub fn all_dirty(pages: u64) -> Self {
        let mut b = Self::new(pages);
        b.set_all();
        b
    }

    /// Marks every page.
    pub fn set_all(&mut self) {
        self.words.fill(u64::MAX);
        let tail = self.pages % 64;
        if tail != 0 {
            if let Some(last) = self.words.last_mut() {
                *last = (1 << tail) - 1;
            }
        }
        self.count = self.pages;
    }

    /// Pages covered.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Pages set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Marks page `page` (ignored beyond the end).
    pub fn set(&mut self, page: u64) {
        if page < self.pages {
            let w = &mut self.words[(page / 64) as usize];
            let bit = 1 << (page % 64);
            if *w & bit == 0 {
                *w |= bit;
                self.count += 1;
            }
        }
    }

    /// Whether page `page` is set.
    pub fn get(&self, page: u64) -> bool {
        page < self.pages && self.words[(page / 64) as usize] & (1 << (page % 64)) != 0
    }

    /// Clears page `page`, returning whether it was set.
    pub fn test_and_clear(&mut self, page: u64) -> bool {
        if page >= self.pages {
            return false;
        }
        let w = &mut self.words[(page / 64) as usize];
        let bit = 1 << (page % 64);
        let was = *w & bit != 0;
        if was {
            *w &= !bit;
            self.count -= 1;
        }
        was
    }

    /// The first set page at or after `from`.
    pub fn next_set(&self, from: u64) -> Option<u64> {
        if from >= self.pages {
            return None;
        }
        let mut i = (from / 64) as usize;
        let mut w = self.words[i] & (u64::MAX << (from % 64));
        loop {
            if w != 0 {
                let page = i as u64 * 64 + u64::from(w.trailing_zeros());
                return (page < self.pages).then_some(page);
            }
            i += 1;
            w = *self.words.get(i)?;
        }
    }

    /// How many pages from `page` on (at most `max`) are set in a row.
    pub fn run_len(&self, page: u64, max: u64) -> u64 {
        let mut n = 0;
        while n < max && self.get(page + n) {
            n += 1;
        }
        n
    }

    /// ORs 64-page words in (word i covers pages 64·i ..), e.g. a hypervisor's
    /// dirty log; bits beyond the end are ignored.
    pub fn or_words(&mut self, words: &[u64]) {
        let n = self.words.len().min(words.len());
        for (dst, src) in self.words[..n].iter_mut().zip(&words[..n]) {
            *dst |= *src;
        }
        let tail = self.pages % 64;
        if tail != 0 && n == self.words.len() {
            if let Some(last) = self.words.last_mut() {
                *last &= (1 << tail) - 1;
            }
        }
        self.count = self.words.iter().map(|w| u64::from(w.count_ones())).sum();
    }

    /// Changes the number of pages (a block resize); new pages are dirty.
    pub fn resize(&mut self, pages: u64) {
        let old = self.pages;
        self.words.resize(pages.div_ceil(64) as usize, 0);
        self.pages = pages;
        if pages < old {
            let tail = pages % 64;
            if tail != 0 {
                if let Some(last) = self.words.last_mut() {
                    *last &= (1 << tail) - 1;
                }
            }
            self.count = self.words.iter().map(|w| u64::from(w.count_ones())).sum();
        } else {
            for p in old..pages {
                self.set(p);
            }
        }
    }
}

/// Where the pages dirtied since the last sync come from: vm-memory's bitmap
/// (writes through the API), or a hypervisor's log (KVM's `get_dirty_log`).
pub trait DirtyLog: Send {
    /// ORs the pages of `block` dirtied since the previous call into `into`
    /// (one bit per target page of the block) and restarts the log.
    fn sync(&mut self, block: &RamBlock, into: &mut DirtyBitmap);

    /// Called once before the first pass: start logging from now on.
    fn start(&mut self, block: &RamBlock) {
        let mut discard = DirtyBitmap::new(block.pages());
        self.sync(block, &mut discard);
    }
}

/// The [`DirtyLog`] of writes made through vm-memory (`Bytes` on the block's
/// region, [`RamBlock::write`]): its `AtomicBitmap`, read and reset atomically.
#[derive(Debug, Clone, Copy, Default)]
pub struct VmMemoryDirtyLog;

impl DirtyLog for VmMemoryDirtyLog {
    fn sync(&mut self, block: &RamBlock, into: &mut DirtyBitmap) {
        let log = block.dirty_bitmap();
        let log_page = log_page_size(log);
        let target = block.spec().page_size;
        let words = log.get_and_reset();
        if log_page == target {
            // The usual case (4 KiB host and target pages): the words line up.
            into.or_words(&words);
            return;
        }
        // Another granularity: each set log page marks the target pages it covers.
        for (wi, w) in words.iter().enumerate() {
            let mut w = *w;
            while w != 0 {
                let bit = wi as u64 * 64 + u64::from(w.trailing_zeros());
                w &= w - 1;
                let (start, end) = (bit * log_page, (bit + 1) * log_page);
                for page in start / target..end.div_ceil(target) {
                    into.set(page);
                }
            }
        }
    }
}

/// The page size of vm-memory's bitmap (the host page size it was made with):
/// its byte size over its bit count, rounded up to a power of two.
fn log_page_size(log: &vm_memory::bitmap::AtomicBitmap) -> u64 {
    if log.len() == 0 {
        return 1;
    }
    (log.byte_size() as u64)
        .div_ceil(log.len() as u64)
        .next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::RamBlockSpec;

    #[test]
    fn writes_through_vm_memory_reach_the_migration_bitmap() {
        let block = RamBlock::new(RamBlockSpec::ram("b", 64 * 4096)).unwrap();
        let mut log = VmMemoryDirtyLog;
        log.start(&block);
        block.write(5 * 4096 + 7, &[1, 2]).unwrap();
        block.write(63 * 4096, &[1; 4096]).unwrap();
        let mut bm = DirtyBitmap::new(block.pages());
        log.sync(&block, &mut bm);
        assert_eq!(bm.count(), 2);
        assert!(bm.get(5) && bm.get(63));
        // The log restarted: nothing new.
        let mut again = DirtyBitmap::new(block.pages());
        log.sync(&block, &mut again);
        assert_eq!(again.count(), 0);
    }

    #[test]
    fn bitmap_resize_and_tail() {
        let mut b = DirtyBitmap::all_dirty(70);
        assert_eq!(b.count(), 70);
        assert_eq!(b.next_set(69), Some(69));
        assert_eq!(b.next_set(70), None);
        b.resize(65);
        assert_eq!(b.count(), 65);
        b.resize(130);
        assert_eq!(b.count(), 130);
        b.or_words(&[u64::MAX; 3]);
        assert_eq!(b.count(), 130);
    }
}
