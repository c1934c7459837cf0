//! The source's queue of pages the destination asked for (QEMU
//! `src_page_requests`): served before the background walk, each request's
//! pages still dirty sent once. Bounded: a request covers at most
//! [`MAX_REQUEST_BYTES`], at most [`MAX_QUEUED_REQUESTS`] wait (more are
//! dropped, which is safe: every dirty page is sent by the walk anyway), so a
//! hostile destination cannot make the source hold or scan unbounded state.

use std::collections::VecDeque;

use super::range::PageSpan;
use crate::ram::DirtyBitmap;

/// The longest page request accepted: one 2 MiB huge page (this side's
/// destination asks for one target page at a time).
pub const MAX_REQUEST_BYTES: u64 = 2 << 20;

/// Requests queued at most; later ones are dropped until the queue drains.
pub const MAX_QUEUED_REQUESTS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Urgent {
    block: usize,
    next: u64,
    end: u64,
}

/// Pages to send first, in the order they were asked for.
///
/// ```
/// use vmstate_devices::ram::DirtyBitmap;
/// use vmstate_devices::ram::postcopy::range::PageSpan;
/// use vmstate_devices::ram::postcopy::UrgentQueue;
///
/// let mut dirty = vec![DirtyBitmap::all_dirty(100)];
/// dirty[0].test_and_clear(41);
/// let mut q = UrgentQueue::default();
/// q.push(0, PageSpan { first: 40, pages: 4 });
/// // Page 41 was sent already: runs 40 and 42..44.
/// assert_eq!(q.next_run(&dirty, 16), Some((0, 40, 1)));
/// assert_eq!(q.next_run(&dirty, 16), Some((0, 42, 2)));
/// assert_eq!(q.next_run(&dirty, 16), None);
/// ```
#[derive(Debug, Default)]
pub struct UrgentQueue {
    queue: VecDeque<Urgent>,
    dropped: u64,
}

impl UrgentQueue {
    /// Queues `span` of block `block`; false when the queue is full and the
    /// request was dropped.
    pub fn push(&mut self, block: usize, span: PageSpan) -> bool {
        if self.queue.len() >= MAX_QUEUED_REQUESTS {
            self.dropped += 1;
            return false;
        }
        self.queue.push_back(Urgent {
            block,
            next: span.first,
            end: span.first.saturating_add(span.pages),
        });
        true
    }

    /// The next run of at most `max_run` pages that are still dirty in
    /// `bitmaps` (block, first page, pages), oldest request first; pages of a
    /// request that are clean (sent since) are skipped. Each request's pages
    /// are looked at once, so the work is bounded by what was queued.
    pub fn next_run(&mut self, bitmaps: &[DirtyBitmap], max_run: u64) -> Option<(usize, u64, u64)> {
        while let Some(front) = self.queue.front_mut() {
            let Some(bitmap) = bitmaps.get(front.block) else {
                self.queue.pop_front();
                continue;
            };
            let end = front.end.min(bitmap.pages());
            while front.next < end && !bitmap.get(front.next) {
                front.next += 1;
            }
            if front.next >= end {
                self.queue.pop_front();
                continue;
            }
            let first = front.next;
            let run = bitmap.run_len(first, max_run.min(end - first));
            front.next += run;
            return Some((front.block, first, run));
        }
        None
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Requests dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets every request (a new migration, or recovery: the dirty bitmap
    /// is rebuilt from the destination's received bitmap).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_served_in_order_in_bounded_runs() {
        let mut bitmaps = vec![DirtyBitmap::all_dirty(64), DirtyBitmap::all_dirty(64)];
        let mut q = UrgentQueue::default();
        q.push(
            1,
            PageSpan {
                first: 10,
                pages: 40,
            },
        );
        q.push(0, PageSpan { first: 3, pages: 1 });
        assert_eq!(q.next_run(&bitmaps, 16), Some((1, 10, 16)));
        assert_eq!(q.next_run(&bitmaps, 16), Some((1, 26, 16)));
        // The sender clears what it sent; the rest of the request goes next.
        bitmaps[1].test_and_clear(42);
        assert_eq!(q.next_run(&bitmaps, 16), Some((1, 43, 7)));
        assert_eq!(q.next_run(&bitmaps, 16), Some((0, 3, 1)));
        assert_eq!(q.next_run(&bitmaps, 16), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_queue_drops_and_a_stale_block_is_skipped() {
        let bitmaps = vec![DirtyBitmap::all_dirty(8)];
        let mut q = UrgentQueue::default();
        for _ in 0..MAX_QUEUED_REQUESTS {
            assert!(q.push(0, PageSpan { first: 0, pages: 1 }));
        }
        assert!(!q.push(0, PageSpan { first: 1, pages: 1 }));
        assert_eq!(q.dropped(), 1);
        q.clear();
        q.push(5, PageSpan { first: 0, pages: 1 });
        q.push(
            0,
            PageSpan {
                first: 7,
                pages: 100,
            },
        );
        assert_eq!(q.next_run(&bitmaps, 16), Some((0, 7, 1)));
        assert_eq!(q.next_run(&bitmaps, 16), None);
    }
}
