//! Copying one received page into guest memory with streaming
//! (non-temporal) stores.
//!
//! Why: a destination writes each page of the stream once and does not read
//! it again during the load. An ordinary copy first reads every destination
//! cache line into the cache (a read-for-ownership) and later evicts it
//! again, so it moves each byte of guest memory over the memory bus twice
//! and pushes the stream's own buffers out of the cache. Streaming stores
//! write whole lines straight to memory. glibc's `memcpy` switches to them
//! only for copies far larger than a page, which is why a load of 4 KiB
//! pages ran at 0.4x of a `memcpy` of the same gigabyte.
//!
//! The stores are weakly ordered, so [`copy_page`] ends with a store fence:
//! when it returns, the page is visible to every other thread (a postcopy
//! accessor woken by the page's received bit reads the new bytes).

use vm_memory::bitmap::{AtomicBitmap, Bitmap, BS};
use vm_memory::VolatileSlice;

/// Bytes copied per step of the streaming loop (one cache line).
const LINE: usize = 64;

/// Copies `src` into `dst` (both `len` bytes) and marks the bytes dirty in
/// vm-memory's bitmap, as `VolatileSlice::copy_from` does: with streaming
/// stores where the target allows it (x86-64; the slice 16-byte aligned and
/// its length a multiple of 64, as a guest page is), an ordinary copy
/// otherwise.
pub(super) fn copy_page(dst: &VolatileSlice<'_, BS<'_, AtomicBitmap>>, src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    if !copy_streaming(dst, src) {
        dst.copy_from(src);
        return;
    }
    dst.bitmap().mark_dirty(0, src.len());
}

/// The streaming copy; false (nothing written) where it does not apply.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // one reviewed streaming copy; see SAFETY below and the tests of this module.
fn copy_streaming(dst: &VolatileSlice<'_, BS<'_, AtomicBitmap>>, src: &[u8]) -> bool {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};

    let len = src.len();
    let guard = dst.ptr_guard_mut();
    let to = guard.as_ptr();
    if len != dst.len()
        || len == 0
        || !len.is_multiple_of(LINE)
        || !(to as usize).is_multiple_of(16)
    {
        return false;
    }
    let from = src.as_ptr();
    // SAFETY: `to..to + len` is the memory of `dst`, a live slice of guest
    // memory that `guard` keeps mapped for this whole block; `from..from +
    // len` is `src`, a borrowed Rust slice; `len` is the length of both
    // (checked above), so every access below is in bounds. They cannot
    // overlap: `src` is a Rust slice outside guest memory's volatile view (the
    // same argument vm-memory's own `copy_from` makes). `to` is 16-byte
    // aligned (checked) and each store is at `to + i` with `i` a multiple of
    // 16, as `_mm_stream_si128` requires; the loads are unaligned loads,
    // which take any address. SSE2 is part of the x86-64 baseline, so the
    // intrinsics are available on every x86-64 CPU. Guest memory may be
    // written by other threads (vCPUs) at the same time: these are raw-pointer
    // stores into memory no Rust reference covers, as volatile accesses are,
    // so there is no data race in Rust's sense (a concurrent guest write to
    // the page is as racy as it is for QEMU, and the migration protocol never
    // lets the guest run on a page still being loaded). The closing
    // `_mm_sfence` orders the streaming stores before every later store of
    // this thread (the received bit), so no thread sees the page announced
    // before its bytes.
    unsafe {
        let mut i = 0;
        while i < len {
            let s = from.add(i).cast::<__m128i>();
            let d = to.add(i).cast::<__m128i>();
            let a = _mm_loadu_si128(s);
            let b = _mm_loadu_si128(s.add(1));
            let c = _mm_loadu_si128(s.add(2));
            let e = _mm_loadu_si128(s.add(3));
            _mm_stream_si128(d, a);
            _mm_stream_si128(d.add(1), b);
            _mm_stream_si128(d.add(2), c);
            _mm_stream_si128(d.add(3), e);
            i += LINE;
        }
        _mm_sfence();
    }
    true
}

#[cfg(not(target_arch = "x86_64"))]
fn copy_streaming(_dst: &VolatileSlice<'_, BS<'_, AtomicBitmap>>, _src: &[u8]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::{RamBlock, RamBlockSpec};

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Table: (offset, length) of pages and odd shapes; each copy lands
    /// exactly, leaves its neighbours alone and marks exactly its bytes dirty.
    #[test]
    fn copies_exactly_and_marks_dirty() {
        let block = RamBlock::new(RamBlockSpec::ram("pc.ram", 64 << 10)).unwrap();
        for (offset, len) in [
            (0x1000u64, 4096usize), // a page: streaming
            (0x3000, 64),           // one line: streaming
            (0x5008, 4096),         // 8-byte aligned only: ordinary copy
            (0x8000, 100),          // not a multiple of a line: ordinary copy
            (0xa000, 16384),        // four pages at once
        ] {
            let before = block.to_vec().unwrap();
            let src = pattern(len, offset as u8);
            copy_page(&block.slice(offset, len).unwrap(), &src);
            let after = block.to_vec().unwrap();
            let (lo, hi) = (offset as usize, offset as usize + len);
            assert!(after[lo..hi] == src[..], "{offset:#x}+{len}");
            assert!(after[..lo] == before[..lo] && after[hi..] == before[hi..]);
            assert!(block.dirty_bitmap().is_addr_set(lo));
            assert!(block.dirty_bitmap().is_addr_set(hi - 1));
        }
        assert!(!block.dirty_bitmap().is_addr_set(0xf000));
    }

    /// A page another thread reads right after the copy returns holds the
    /// new bytes (the fence).
    #[test]
    fn the_page_is_visible_to_another_thread_when_the_copy_returns() {
        let block = RamBlock::new(RamBlockSpec::ram("pc.ram", 8192)).unwrap();
        for round in 0..64u8 {
            let src = pattern(4096, round);
            copy_page(&block.slice(4096, 4096).unwrap(), &src);
            let b = block.clone();
            let seen = std::thread::spawn(move || {
                let mut v = vec![0; 4096];
                b.read(4096, &mut v).unwrap();
                v
            })
            .join()
            .unwrap();
            assert!(seen == src, "round {round}");
        }
    }
}
