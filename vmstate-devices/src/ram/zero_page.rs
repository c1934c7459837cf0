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

/// The bytes of a page tested first, and prefetched: one cache line.
const HEAD: usize = 64;

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
    // The first cache line alone first: a page with data almost always shows
    // it there, and that line is the one `prefetch_page_heads` asked for.
    if len >= HEAD {
        // SAFETY: `base .. base + HEAD` lies inside `page` (`len >= HEAD`),
        // mapped while `guard` lives; as for the loop below, a raw read into
        // a local array that is only tested.
        #[allow(unsafe_code)]
        let head: [u64; HEAD / 8] = unsafe { base.cast::<[u64; HEAD / 8]>().read_unaligned() };
        if head.iter().fold(0, |a, w| a | w) != 0 {
            return false;
        }
    }
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

/// Asks the CPU to start loading the first cache line ([`HEAD`]) of each
/// page of `run` (pages of `page_size` bytes), so that [`is_zero_in_memory`]
/// over the run waits for memory once, not once per page. One line per page,
/// not more: a core tracks only about a dozen outstanding misses, so four
/// lines per page would overlap only three pages' misses.
///
/// Why: a non-zero page is told apart by its first bytes, so the check of a
/// page of random data is one cache miss, and the hardware prefetchers do not
/// cross page boundaries: checked one after another, the misses did not
/// overlap and the check took 96% of the source's user time (`perf annotate`).
pub(super) fn prefetch_page_heads(run: &VolatileSlice<'_, BS<'_, AtomicBitmap>>, page_size: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // A prefetch of a page not yet mapped in this process is dropped: one
        // read first takes the fault, which maps the run's pages (the
        // kernel's fault-around maps 16 pages of a file at once), and the
        // prefetches of the other pages then go through.
        let _ = vm_memory::Bytes::read_obj::<u8>(run, 0);
        let guard = run.ptr_guard();
        let base = guard.as_ptr() as usize;
        for page in (page_size..run.len()).step_by(page_size.max(1)) {
            // SAFETY: SSE is part of the x86-64 baseline, so the instruction
            // exists on every CPU this code runs on. A prefetch is a hint: it
            // reads nothing into the program and never faults, whatever the
            // address (here one inside `run`, which `guard` keeps mapped).
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>((base + page) as *const i8)
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (run, page_size);
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
