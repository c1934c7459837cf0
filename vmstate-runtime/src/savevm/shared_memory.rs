//! Guest memory as a stream segment: a range of memory that other threads
//! (vCPUs, device models) may write at any time, carried in a [`SectionBuf`]
//! without a copy until the transport takes it.
//!
//! Why a type of its own and not `Bytes`: a `&[u8]` promises that the bytes
//! do not change while it lives, and guest memory makes no such promise while
//! the guest runs. A [`MemorySegment`] is never turned into a Rust reference.
//! It is either copied out at the moment the stream is written
//! ([`MemorySegment::copy_to`], the same raw copy vm-memory's `VolatileSlice`
//! makes), or handed to the kernel by address (`vmsplice(2)` on a socket
//! transport, `migration/splice.rs`), which takes references on the pages
//! themselves. Either way the bytes sent are those in memory when they are
//! read, which is what migration needs: a page written after its dirty bit
//! was cleared is dirty again and is sent again.
//!
//! [`SectionBuf`]: super::SectionBuf

use std::sync::Arc;

/// Memory that a stream may read by address, outside Rust's borrow rules:
/// guest RAM (a RAMBlock's mapping).
///
/// # Safety
///
/// An implementation promises that [`host_range`](Self::host_range) returns
/// the same `(address, length)` for the whole life of the value, and that
/// those bytes stay mapped and readable for as long as the value lives (the
/// value owns the mapping, or keeps its owner alive). Other threads may write
/// the bytes at any time; readers never form a reference to them.
#[allow(unsafe_code)] // the promise above is what makes `MemorySegment::copy_to` and vmsplice sound.
pub unsafe trait SharedMemory: Send + Sync + 'static {
    /// The host address of the first byte and the length in bytes.
    fn host_range(&self) -> (usize, usize);
}

/// `len` bytes at `offset` of a [`SharedMemory`], held as a stream segment
/// (see [`SectionBuf::put_memory`](super::SectionBuf::put_memory)).
///
/// ```
/// use std::sync::Arc;
/// use vmstate_runtime::savevm::{MemorySegment, SharedMemory};
///
/// struct Heap(Box<[u8]>);
/// // SAFETY: the boxed bytes live, unmoved, as long as the value.
/// unsafe impl SharedMemory for Heap {
///     fn host_range(&self) -> (usize, usize) {
///         (self.0.as_ptr() as usize, self.0.len())
///     }
/// }
///
/// let mem: Arc<dyn SharedMemory> = Arc::new(Heap(vec![7u8; 8192].into()));
/// let page = MemorySegment::new(&mem, 4096, 4096).unwrap();
/// let mut out = [0u8; 4096];
/// page.copy_to(&mut out);
/// assert_eq!(out, [7u8; 4096]);
/// assert!(MemorySegment::new(&mem, 8000, 4096).is_none(), "past the end");
/// ```
#[derive(Clone)]
pub struct MemorySegment {
    /// Held, not read: it keeps the memory mapped while the segment lives.
    #[allow(dead_code)]
    mem: Arc<dyn SharedMemory>,
    /// Host address of the segment's first byte (inside `mem`'s range).
    addr: usize,
    len: usize,
}

impl std::fmt::Debug for MemorySegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySegment")
            .field("addr", &format_args!("{:#x}", self.addr))
            .field("len", &self.len)
            .finish()
    }
}

impl MemorySegment {
    /// The segment `offset..offset + len` of `mem`; `None` when it does not
    /// lie inside `mem`'s range.
    pub fn new(mem: &Arc<dyn SharedMemory>, offset: usize, len: usize) -> Option<Self> {
        let (base, size) = mem.host_range();
        let end = offset.checked_add(len)?;
        if end > size {
            return None;
        }
        Some(MemorySegment {
            mem: Arc::clone(mem),
            addr: base.checked_add(offset)?,
            len,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The host address of the first byte (for the kernel: `vmsplice(2)`).
    /// Valid while `self` (which keeps the memory mapped) lives.
    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    /// Copies the segment's bytes, as they are now, into `dst`.
    ///
    /// # Panics
    /// When `dst.len()` differs from [`len`](Self::len).
    pub fn copy_to(&self, dst: &mut [u8]) {
        assert_eq!(dst.len(), self.len, "MemorySegment::copy_to: wrong length");
        self.copy_range_to(0, dst);
    }

    /// Whether `self` starts where `prev` ends (in the same memory or in
    /// memory mapped right after it).
    pub(crate) fn follows(&self, prev: &MemorySegment) -> bool {
        prev.addr.checked_add(prev.len) == Some(self.addr)
    }

    /// Copies `segments`, which lie back to back in memory (each
    /// [`follows`](Self::follows) the one before), into `dst` with one copy.
    ///
    /// # Panics
    /// When they are not back to back, or `dst` is not their total length.
    pub(crate) fn copy_adjacent(segments: &[&MemorySegment], dst: &mut [u8]) {
        assert!(
            segments.windows(2).all(|w| w[1].follows(w[0])),
            "MemorySegment: segments not back to back"
        );
        let total: usize = segments.iter().map(|s| s.len).sum();
        assert_eq!(
            dst.len(),
            total,
            "MemorySegment::copy_adjacent: wrong length"
        );
        let Some(first) = segments.first() else {
            return;
        };
        // SAFETY: the source range is the union of the segments' ranges
        // (they are back to back, asserted above, and `dst.len()` is their
        // total), each of which lies inside memory its `SharedMemory` keeps
        // mapped and readable while the segment lives; the caller holds every
        // segment (borrowed in `segments`) across the call. `dst` is an
        // exclusive Rust slice, which cannot overlap shared memory (never lent
        // out as a reference). As in `copy_range_to`, other threads may write
        // the source meanwhile: a raw copy into no reference.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(first.addr as *const u8, dst.as_mut_ptr(), total);
        }
    }

    /// Copies `dst.len()` bytes from `from` on (within the segment) into `dst`.
    ///
    /// # Panics
    /// When the range does not lie inside the segment.
    pub(crate) fn copy_range_to(&self, from: usize, dst: &mut [u8]) {
        assert!(
            from.checked_add(dst.len())
                .is_some_and(|end| end <= self.len),
            "MemorySegment: copy beyond the segment"
        );
        // SAFETY: `addr + from .. addr + from + dst.len()` lies inside the
        // segment (asserted) and so inside the range `self.mem` keeps mapped
        // and readable while it lives (checked in `new`, promised by the
        // `SharedMemory` implementation); `self` holds `mem` across the call.
        // `dst` is an exclusive Rust slice and cannot overlap it: shared
        // memory is never lent out as a Rust reference. Other threads may
        // write the source meanwhile; this is a raw-pointer copy into no
        // reference, as vm-memory's own `VolatileSlice` copies are, and the
        // bytes copied are those in memory at the time (a torn page is sent
        // again: it is dirty).
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(
                (self.addr + from) as *const u8,
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }
}

/// Memory for the unit tests of the crate: a boxed slice.
#[cfg(test)]
pub(crate) struct Heap(pub(crate) Box<[u8]>);

// SAFETY: the boxed bytes live, unmoved, as long as the value.
#[cfg(test)]
#[allow(unsafe_code)]
unsafe impl SharedMemory for Heap {
    fn host_range(&self) -> (usize, usize) {
        (self.0.as_ptr() as usize, self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap(n: usize) -> Arc<dyn SharedMemory> {
        Arc::new(Heap((0..n).map(|i| i as u8).collect()))
    }

    #[test]
    fn segments_are_bounds_checked_and_copy_their_bytes() {
        let mem = heap(100);
        for (offset, len, ok) in [
            (0, 100, true),
            (99, 1, true),
            (100, 0, true),
            (100, 1, false),
            (1, 100, false),
            (usize::MAX, 2, false),
        ] {
            assert_eq!(
                MemorySegment::new(&mem, offset, len).is_some(),
                ok,
                "{offset}+{len}"
            );
        }
        let s = MemorySegment::new(&mem, 10, 5).unwrap();
        let mut out = [0u8; 5];
        s.copy_to(&mut out);
        assert_eq!(out, [10, 11, 12, 13, 14]);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn a_segment_keeps_its_memory_alive() {
        let mem = heap(16);
        let s = MemorySegment::new(&mem, 0, 16).unwrap();
        drop(mem);
        let mut out = [0u8; 16];
        s.copy_to(&mut out);
        assert_eq!(out[15], 15);
    }

    #[test]
    fn adjacent_segments_copy_as_one() {
        let mem = heap(64);
        let a = MemorySegment::new(&mem, 8, 8).unwrap();
        let b = MemorySegment::new(&mem, 16, 4).unwrap();
        let c = MemorySegment::new(&mem, 30, 2).unwrap();
        assert!(b.follows(&a) && !c.follows(&b) && !a.follows(&b));
        let mut out = [0u8; 12];
        MemorySegment::copy_adjacent(&[&a, &b], &mut out);
        assert_eq!(out, [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        let gap = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            MemorySegment::copy_adjacent(&[&b, &c], &mut [0u8; 6]);
        }));
        assert!(gap.is_err(), "a gap between segments is refused");
    }

    #[test]
    #[should_panic(expected = "wrong length")]
    fn copy_to_a_wrong_length_panics() {
        MemorySegment::new(&heap(8), 0, 8)
            .unwrap()
            .copy_to(&mut [0u8; 4]);
    }
}
