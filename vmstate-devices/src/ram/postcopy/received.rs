//! The destination's received bitmap (QEMU's `receivedmap`): one bit per
//! target page of a block, set when the page lands (PAGE, ZERO or XBZRLE
//! alike), cleared by a discard; shared by the loader, which sets bits a run of
//! pages at a time, and the guest accessors, which read them without a lock.
//! Also QEMU's RECV_BITMAP blob (postcopy recovery, `ramblock_recv_bitmap_send`
//! and `ram_dirty_bitmap_reload`): be64 size in bytes (the bitmap's bytes
//! rounded up to whole 64-bit words), the bitmap as little-endian 64-bit words
//! (bit i = page i), be64 end mark 0x0123456789abcdef.

use std::sync::atomic::{AtomicU64, Ordering};

use vmstate_runtime::savevm::RECV_BITMAP_ENDING;

use super::error::PostcopyRamError;
use crate::ram::DirtyBitmap;

/// One bit per page, settable from any thread.
///
/// ```
/// use vmstate_devices::ram::postcopy::ReceivedMap;
///
/// let m = ReceivedMap::new(100);
/// m.set_range(3, 70);
/// assert!(m.get(3) && m.get(72) && !m.get(73));
/// assert_eq!(m.count(100), 70);
/// m.clear_range(10, 5);
/// assert_eq!(m.count(100), 65);
/// ```
#[derive(Debug)]
pub struct ReceivedMap {
    words: Box<[AtomicU64]>,
    pages: u64,
}

/// The bits of word `w` that pages `first .. first + n` cover.
fn word_mask(w: u64, first: u64, end: u64) -> u64 {
    let lo = first.max(w * 64) - w * 64;
    let hi = end.min(w * 64 + 64) - w * 64;
    if hi - lo == 64 {
        u64::MAX
    } else {
        ((1u64 << (hi - lo)) - 1) << lo
    }
}

impl ReceivedMap {
    /// `pages` pages, none received.
    pub fn new(pages: u64) -> Self {
        ReceivedMap {
            words: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            pages,
        }
    }

    /// Pages covered.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Marks `n` pages from `first` on (clipped to the map): one atomic OR per
    /// 64-page word, so a run of pages costs one or two.
    pub fn set_range(&self, first: u64, n: u64) {
        let end = first.saturating_add(n).min(self.pages);
        if first >= end {
            return;
        }
        for w in first / 64..=(end - 1) / 64 {
            self.words[w as usize].fetch_or(word_mask(w, first, end), Ordering::SeqCst);
        }
    }

    /// Clears `n` pages from `first` on (clipped to the map).
    pub fn clear_range(&self, first: u64, n: u64) {
        let end = first.saturating_add(n).min(self.pages);
        if first >= end {
            return;
        }
        for w in first / 64..=(end - 1) / 64 {
            self.words[w as usize].fetch_and(!word_mask(w, first, end), Ordering::SeqCst);
        }
    }

    /// Sets page `page`, returning whether it was set before.
    pub fn test_and_set(&self, page: u64) -> bool {
        if page >= self.pages {
            return true;
        }
        let bit = 1u64 << (page % 64);
        self.words[(page / 64) as usize].fetch_or(bit, Ordering::SeqCst) & bit != 0
    }

    /// Whether page `page` arrived (false beyond the map).
    pub fn get(&self, page: u64) -> bool {
        page < self.pages
            && self.words[(page / 64) as usize].load(Ordering::SeqCst) & (1 << (page % 64)) != 0
    }

    /// Clears every page.
    pub fn clear_all(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::SeqCst);
        }
    }

    /// Pages set among the first `pages`.
    pub fn count(&self, pages: u64) -> u64 {
        let end = pages.min(self.pages);
        if end == 0 {
            return 0;
        }
        (0..=(end - 1) / 64)
            .map(|w| {
                let bits = self.words[w as usize].load(Ordering::SeqCst) & word_mask(w, 0, end);
                u64::from(bits.count_ones())
            })
            .sum()
    }

    /// The first `pages` bits as QEMU sends them: little-endian 64-bit words,
    /// [`recv_bitmap_size`]`(pages)` bytes, bits past `pages` clear.
    ///
    /// ```
    /// use vmstate_devices::ram::postcopy::ReceivedMap;
    ///
    /// let m = ReceivedMap::new(70);
    /// m.set_range(0, 1);
    /// m.set_range(65, 1);
    /// assert_eq!(m.to_le_words(70), [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    /// ```
    pub fn to_le_words(&self, pages: u64) -> Vec<u8> {
        let end = pages.min(self.pages);
        let mut out = Vec::with_capacity(recv_bitmap_size(pages) as usize);
        for w in 0..pages.div_ceil(64) {
            let bits = if w * 64 < end {
                self.words[w as usize].load(Ordering::SeqCst) & word_mask(w, 0, end)
            } else {
                0
            };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        out
    }
}

/// Bytes of a RECV_BITMAP for a block of `pages` pages: the bitmap's bytes
/// rounded up to a multiple of 8 (QEMU's `ROUND_UP(DIV_ROUND_UP(nbits, 8), 8)`).
///
/// ```
/// use vmstate_devices::ram::postcopy::recv_bitmap_size;
///
/// assert_eq!(recv_bitmap_size(1), 8);
/// assert_eq!(recv_bitmap_size(64), 8);
/// assert_eq!(recv_bitmap_size(65), 16);
/// assert_eq!(recv_bitmap_size(0), 0);
/// ```
pub fn recv_bitmap_size(pages: u64) -> u64 {
    pages.div_ceil(8).div_ceil(8) * 8
}

/// The whole RECV_BITMAP blob that follows the return-path message: be64
/// size, the little-endian bitmap, be64 end mark.
///
/// ```
/// use vmstate_devices::ram::postcopy::encode_recv_bitmap;
///
/// let blob = encode_recv_bitmap(&[0xff, 0, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(&blob[..8], &8u64.to_be_bytes());
/// assert_eq!(&blob[16..], &0x0123456789abcdefu64.to_be_bytes());
/// ```
pub fn encode_recv_bitmap(le_words: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(le_words.len() + 16);
    out.extend_from_slice(&(le_words.len() as u64).to_be_bytes());
    out.extend_from_slice(le_words);
    out.extend_from_slice(&RECV_BITMAP_ENDING.to_be_bytes());
    out
}

/// Checks a whole RECV_BITMAP blob of `block` (of `pages` pages) as QEMU's
/// source does: the size word must be exactly the block's bitmap size, the
/// bytes must be there, the end mark must follow. Returns the bitmap.
///
/// ```
/// use vmstate_devices::ram::postcopy::{decode_recv_bitmap, encode_recv_bitmap, PostcopyRamError};
///
/// let blob = encode_recv_bitmap(&[1, 0, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(decode_recv_bitmap("pc.ram", &blob, 64).unwrap(), &[1, 0, 0, 0, 0, 0, 0, 0]);
/// assert!(matches!(
///     decode_recv_bitmap("pc.ram", &blob, 65),
///     Err(PostcopyRamError::RecvBitmapSize { size: 8, expected: 16, .. })
/// ));
/// ```
pub fn decode_recv_bitmap<'a>(
    block: &str,
    blob: &'a [u8],
    pages: u64,
) -> Result<&'a [u8], PostcopyRamError> {
    let word = |at: usize| -> Option<u64> {
        blob.get(at..at + 8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
    };
    let truncated = |need: u64| PostcopyRamError::RecvBitmapTruncated {
        block: block.to_string(),
        len: blob.len() as u64,
        need,
    };
    let size = word(0).ok_or_else(|| truncated(8))?;
    let expected = recv_bitmap_size(pages);
    if size != expected {
        return Err(PostcopyRamError::RecvBitmapSize {
            block: block.to_string(),
            size,
            expected,
        });
    }
    let need = expected + 16;
    if (blob.len() as u64) < need {
        return Err(truncated(need));
    }
    let end = 8 + expected as usize;
    let mark = word(end).ok_or_else(|| truncated(need))?;
    if mark != RECV_BITMAP_ENDING {
        return Err(PostcopyRamError::RecvBitmapEndMark {
            block: block.to_string(),
            found: mark,
        });
    }
    Ok(&blob[8..end])
}

/// The source's dirty bitmap after recovery (QEMU: the received bitmap,
/// complemented): every page of `pages` that the destination's bitmap
/// `le_words` lacks is dirty. The bitmap must be exactly the block's size.
///
/// ```
/// use vmstate_devices::ram::postcopy::dirty_from_received;
///
/// let mut words = vec![0u8; 16];
/// words[0] = 0b101; // pages 0 and 2 arrived
/// let dirty = dirty_from_received("pc.ram", &words, 70).unwrap();
/// assert_eq!(dirty.count(), 68);
/// assert!(!dirty.get(0) && dirty.get(1) && !dirty.get(2) && dirty.get(69));
/// assert!(dirty_from_received("pc.ram", &words[..8], 70).is_err());
/// ```
pub fn dirty_from_received(
    block: &str,
    le_words: &[u8],
    pages: u64,
) -> Result<DirtyBitmap, PostcopyRamError> {
    let expected = recv_bitmap_size(pages);
    if le_words.len() as u64 != expected {
        return Err(PostcopyRamError::RecvBitmapSize {
            block: block.to_string(),
            size: le_words.len() as u64,
            expected,
        });
    }
    let missing: Vec<u64> = le_words
        .chunks_exact(8)
        .map(|w| !u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .collect();
    let mut dirty = DirtyBitmap::new(pages);
    // or_words clips the bits past the last page.
    dirty.or_words(&missing);
    Ok(dirty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_across_word_boundaries() {
        let m = ReceivedMap::new(200);
        m.set_range(60, 80);
        assert_eq!(m.count(200), 80);
        assert!(!m.get(59) && m.get(60) && m.get(139) && !m.get(140));
        m.clear_range(63, 66);
        assert_eq!(m.count(200), 14);
        assert!(m.get(62) && !m.get(63) && !m.get(128) && m.get(129));
        // Clipped at the end, nothing beyond.
        m.set_range(190, 1000);
        assert_eq!(m.count(200), 24);
        assert!(!m.get(200));
        assert!(!m.test_and_set(5));
        assert!(m.test_and_set(5));
        m.clear_all();
        assert_eq!(m.count(200), 0);
    }

    #[test]
    fn recv_bitmap_round_trip_and_complement() {
        for pages in [1u64, 63, 64, 65, 130, 4096] {
            let m = ReceivedMap::new(pages + 10);
            for p in (0..pages + 10).step_by(3) {
                m.set_range(p, 1);
            }
            let words = m.to_le_words(pages);
            assert_eq!(words.len() as u64, recv_bitmap_size(pages));
            let blob = encode_recv_bitmap(&words);
            let back = decode_recv_bitmap("b", &blob, pages).unwrap();
            assert_eq!(back, &words[..]);
            let dirty = dirty_from_received("b", back, pages).unwrap();
            for p in 0..pages {
                assert_eq!(dirty.get(p), p % 3 != 0, "pages {pages} page {p}");
            }
            assert_eq!(dirty.count(), pages - pages.div_ceil(3));
        }
    }

    #[test]
    fn bad_blobs_are_refused() {
        let words = ReceivedMap::new(100).to_le_words(100);
        let good = encode_recv_bitmap(&words);
        let mut bad_mark = good.clone();
        let n = bad_mark.len();
        bad_mark[n - 1] ^= 1;
        assert!(matches!(
            decode_recv_bitmap("b", &bad_mark, 100),
            Err(PostcopyRamError::RecvBitmapEndMark { .. })
        ));
        assert!(matches!(
            decode_recv_bitmap("b", &good[..n - 1], 100),
            Err(PostcopyRamError::RecvBitmapTruncated { .. })
        ));
        assert!(matches!(
            decode_recv_bitmap("b", &good[..4], 100),
            Err(PostcopyRamError::RecvBitmapTruncated { .. })
        ));
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            decode_recv_bitmap("b", &huge, 100),
            Err(PostcopyRamError::RecvBitmapSize { .. })
        ));
    }
}
