//! Guest memory: the bytes and the dirty log the "hardware" keeps for them.
//! Dirty tracking mirrors QEMU's: the guest sets bits in a dirty *log*; a
//! *sync* moves the log into the migration bitmap, which iteration drains.

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::TARGET_PAGE_SIZE;

/// Target page size (x86).
pub const PAGE_SIZE: usize = TARGET_PAGE_SIZE as usize;

/// Guest memory: the bytes and the dirty log the "hardware" keeps for them.
///
/// ```
/// use vmstate_devices::machine::{GuestMemory, PAGE_SIZE};
///
/// let mut mem = GuestMemory::new(4);
/// mem.write(PAGE_SIZE + 1, b"hi");
/// assert_eq!(&mem.page(1)[1..3], b"hi");
/// assert_eq!(mem.len(), 4 * PAGE_SIZE);
/// ```
pub struct GuestMemory {
    /// The bytes (the RAM section and the boot code fill them directly).
    pub(super) data: Vec<u8>,
    /// One bit per page, set by guest writes, cleared by a sync.
    dirty_log: Vec<u64>,
}

impl std::fmt::Debug for GuestMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemory")
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl GuestMemory {
    /// `pages` zeroed pages.
    pub fn new(pages: usize) -> Self {
        GuestMemory {
            data: vec![0; pages * PAGE_SIZE],
            dirty_log: vec![0; pages.div_ceil(64)],
        }
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.data.len() / PAGE_SIZE
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there is no memory at all.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// All bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// One page.
    pub fn page(&self, index: usize) -> &[u8] {
        &self.data[index * PAGE_SIZE..(index + 1) * PAGE_SIZE]
    }

    /// A guest write: copies `bytes` to `offset` and logs the pages dirty.
    /// Writes past the end are cut off.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) {
        let end = (offset + bytes.len()).min(self.data.len());
        if offset >= end {
            return;
        }
        self.data[offset..end].copy_from_slice(&bytes[..end - offset]);
        for page in offset / PAGE_SIZE..=(end - 1) / PAGE_SIZE {
            self.dirty_log[page / 64] |= 1 << (page % 64);
        }
    }

    /// Moves the dirty log into `bitmap` (OR) and clears it; returns how many
    /// bits were newly set in `bitmap`.
    pub(super) fn sync_into(&mut self, bitmap: &mut [u64]) -> usize {
        let mut added = 0;
        for (b, l) in bitmap.iter_mut().zip(self.dirty_log.iter_mut()) {
            added += (*l & !*b).count_ones() as usize;
            *b |= *l;
            *l = 0;
        }
        added
    }

    /// Forgets every logged write (the bulk stage sends every page anyway).
    pub(super) fn clear_dirty_log(&mut self) {
        self.dirty_log.fill(0);
    }
}

/// Guest memory shared between the guest (vCPU) thread and the migration.
pub type SharedMemory = Arc<Mutex<GuestMemory>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_writes_log_dirty_pages_and_sync_moves_them() {
        let mut mem = GuestMemory::new(130);
        mem.write(PAGE_SIZE - 4, &[1; 8]); // straddles pages 0 and 1
        mem.write(129 * PAGE_SIZE, &[2]);
        mem.write(200 * PAGE_SIZE, &[3]); // beyond the end: ignored
        let mut bitmap = vec![0u64; 3];
        assert_eq!(mem.sync_into(&mut bitmap), 3);
        assert_eq!(bitmap, [0b11, 0, 0b10]);
        assert_eq!(mem.sync_into(&mut bitmap), 0);
    }
}
