//! A counting allocator (the approach of vmstate-runtime's tests): records, for
//! the current thread while tracking is on, the largest single allocation and
//! the peak of bytes held. A test crate installs it with
//! `#[global_allocator] static ALLOC: alloc::Counting = alloc::Counting;`
//! (including this file by `#[path]`) and measures with [`measure`]. Other
//! threads are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator (forwards to `System`).
pub struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
            let _ = HELD.try_with(|h| {
                h.set(h.get() + size as isize);
                let _ = PEAK.try_with(|p| p.set(p.get().max(h.get())));
            });
        }
    });
}

fn note_free(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = HELD.try_with(|h| h.set(h.get() - size as isize));
        }
    });
}

// The test-only place `unsafe_code` is allowed: a `GlobalAlloc` cannot be written
// without it. It measures what a load allocates, which is how the bounded-allocation
// properties are checked.
// SAFETY: every method forwards its arguments unchanged to `System`, which upholds
// `GlobalAlloc`'s contract; `note_alloc`/`note_free` only update thread-locals and
// never allocate (`Cell`s with const initialisers), so there is no re-entrancy
// into the allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What [`measure`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Allocated {
    /// The largest single allocation (or reallocation's new size).
    pub largest: usize,
    /// The most bytes held at once (allocated minus freed during the call).
    pub peak: usize,
}

/// Runs `f` on this thread and returns its result with what it allocated
/// (all zeros unless [`Counting`] is the crate's global allocator).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Allocated) {
    LARGEST.with(|l| l.set(0));
    HELD.with(|h| h.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    let seen = Allocated {
        largest: LARGEST.with(|l| l.get()),
        peak: PEAK.with(|p| p.get()).max(0) as usize,
    };
    (r, seen)
}
