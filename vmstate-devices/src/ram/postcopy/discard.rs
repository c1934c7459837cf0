//! The source's discard ranges at the postcopy switch (QEMU
//! `postcopy_each_ram_send_discard`): pages already sent that the guest wrote
//! again since, as byte ranges of runs of consecutive pages. The destination
//! drops them and waits for them again; the runtime puts at most
//! [`MAX_DISCARDS_PER_COMMAND`](vmstate_runtime::savevm::MAX_DISCARDS_PER_COMMAND)
//! of them in each MIG_CMD_POSTCOPY_RAM_DISCARD.

use crate::ram::DirtyBitmap;

/// Byte ranges (start, length) of the runs of pages set in both `sent` and
/// `dirty`, ascending.
///
/// ```
/// use vmstate_devices::ram::DirtyBitmap;
/// use vmstate_devices::ram::postcopy::discard_ranges;
///
/// let mut sent = DirtyBitmap::new(16);
/// let mut dirty = DirtyBitmap::new(16);
/// for p in 0..8 { sent.set(p); }
/// for p in [1, 2, 3, 6, 9] { dirty.set(p); }
/// // Page 9 was never sent: it will go anyway, nothing to discard.
/// assert_eq!(discard_ranges(&sent, &dirty, 4096), [(4096, 3 * 4096), (6 * 4096, 4096)]);
/// ```
pub fn discard_ranges(sent: &DirtyBitmap, dirty: &DirtyBitmap, page_size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = dirty.next_set(from) {
        if !sent.get(p) {
            from = p + 1;
            continue;
        }
        let mut end = p + 1;
        while dirty.get(end) && sent.get(end) {
            end += 1;
        }
        out.push((p * page_size, (end - p) * page_size));
        from = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_break_where_either_bitmap_does() {
        let pages = 200;
        let mut sent = DirtyBitmap::new(pages);
        let mut dirty = DirtyBitmap::new(pages);
        for p in 0..150 {
            sent.set(p);
        }
        // Every other page dirty from 10 to 40: 16 single-page runs; a long run
        // over the 64-page word boundary; dirty pages past the sent ones.
        for p in (10..41).step_by(2) {
            dirty.set(p);
        }
        for p in 60..70 {
            dirty.set(p);
        }
        for p in 145..160 {
            dirty.set(p);
        }
        let r = discard_ranges(&sent, &dirty, 4096);
        assert_eq!(r.len(), 16 + 1 + 1);
        assert_eq!(r[0], (10 * 4096, 4096));
        assert_eq!(r[16], (60 * 4096, 10 * 4096));
        assert_eq!(r[17], (145 * 4096, 5 * 4096));
        assert!(discard_ranges(&sent, &DirtyBitmap::new(pages), 4096).is_empty());
    }
}
