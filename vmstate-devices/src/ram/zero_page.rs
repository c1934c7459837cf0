//! The zero-page check (QEMU's `buffer_is_zero`): a page that is all zero
//! bytes goes as a ZERO record, with no payload.
//!
//! Two forms of one check: over a Rust slice (a snapshot copy, a received
//! page) and over guest memory in place, where no Rust reference may be
//! formed (the vCPUs keep writing it), so it is read through raw pointers.

use vm_memory::bitmap::{AtomicBitmap, BS};
use vm_memory::VolatileSlice;

/// Bytes tested per step: 32 words ORed together with no branch (the
/// compiler turns it into vector ORs), one test per step so that a non-zero
/// page stops early.
const STEP: usize = 256;

/// Whether a page is all zero bytes.
pub(super) fn is_zero_page(page: &[u8]) -> bool {
    let (chunks, tail) = page.as_chunks::<STEP>();
    chunks.iter().all(|c| {
        let (words, _) = c.as_chunks::<8>();
        words.iter().fold(0u64, |a, w| a | u64::from_ne_bytes(*w)) == 0
    }) && tail.iter().all(|b| *b == 0)
}

/// Whether a page of guest memory is all zero bytes now, read in place (no
/// copy). A guest write racing with the check makes the answer that of some
/// moment during it; the write also marks the page dirty, so it is sent again.
pub(super) fn is_zero_in_memory(page: &VolatileSlice<'_, BS<'_, AtomicBitmap>>) -> bool {
    let guard = page.ptr_guard();
    let base = guard.as_ptr();
    let len = page.len();
    let mut at = 0;
    while at + STEP <= len {
        // SAFETY: `base + at .. base + at + STEP` lies inside `page` (the loop
        // condition), a live view of mapped guest memory that `guard` keeps
        // mapped for this whole function. `read_unaligned` takes any
        // address. The read goes into a local array, never into a reference
        // over guest memory: other threads may write these bytes meanwhile,
        // as for vm-memory's own raw copies of guest memory, and the value
        // read is only tested, never trusted.
        #[allow(unsafe_code)]
        let words: [u64; STEP / 8] =
            unsafe { base.add(at).cast::<[u64; STEP / 8]>().read_unaligned() };
        if words.iter().fold(0, |a, w| a | w) != 0 {
            return false;
        }
        at += STEP;
    }
    while at < len {
        // SAFETY: as above, for the one byte at `base + at` (`at < len`).
        #[allow(unsafe_code)]
        let b = unsafe { base.add(at).read() };
        if b != 0 {
            return false;
        }
        at += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::{RamBlock, RamBlockSpec};

    #[test]
    fn both_checks_see_every_byte() {
        let block = RamBlock::new(RamBlockSpec::ram("r", 2 * 4096)).unwrap();
        let mut page = vec![0u8; 4096];
        let in_memory = |len: usize| is_zero_in_memory(&block.slice(0, len).unwrap());
        assert!(is_zero_page(&page));
        assert!(in_memory(4096));
        for at in [0, 7, 8, 255, 256, 1000, 4088, 4095] {
            page[at] = 0x80;
            block.write(at as u64, &[0x80]).unwrap();
            assert!(!is_zero_page(&page), "byte {at}");
            assert!(!in_memory(4096), "byte {at} in memory");
            page[at] = 0;
            block.write(at as u64, &[0]).unwrap();
        }
        // A length that is not a multiple of the step: the tail counts too.
        let mut odd = vec![0u8; 300];
        assert!(is_zero_page(&odd));
        assert!(in_memory(300));
        odd[299] = 1;
        block.write(299, &[1]).unwrap();
        assert!(!is_zero_page(&odd));
        assert!(!in_memory(300));
        assert!(in_memory(299), "only the bytes asked about");
    }
}
