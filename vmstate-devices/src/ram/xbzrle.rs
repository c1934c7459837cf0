//! XBZRLE (XOR-based zero run-length encoding, qemu-wire.md §4.5): QEMU's
//! delta encoding of a dirty page against the copy the source sent before, and
//! the source's page cache that holds those copies.
//!
//! An encoded page is a sequence of `zrun nzrun bytes…` triples: `zrun` bytes
//! are unchanged, the next `nzrun` bytes are the new values, carried as they
//! are. Both lengths are ULEB128 of at most 2 bytes (< 0x4000). The runs are
//! maximal (a zrun ends at the first changed byte, an nzrun at the first
//! unchanged one), only the first zrun may be 0, an nzrun never is, and the
//! trailing zrun is left out — so a page that did not change encodes to
//! nothing, and QEMU then sends no record at all. An encoding that would not
//! fit in one page is an overflow: the page goes as a normal PAGE.
//!
//! [`encode`] and [`decode`] are plain functions over byte slices (easy to call
//! from a fuzz target); [`PageCache`] is QEMU's `page_cache.c` cache:
//! `cache_size / page_size` slots rounded down to a power of two, a slot per
//! page address (`address / page_size` masked), a slot holding a page refreshed
//! in the last 2 dirty syncs is not taken over by another page.
//!
//! ```
//! use vmstate_devices::ram::xbzrle::{decode, encode, Encoded};
//!
//! let old = vec![0u8; 4096];
//! let mut new = old.clone();
//! new[100..104].copy_from_slice(b"ABCD");
//! let mut out = vec![0u8; 4096];
//! let Encoded::Delta(len) = encode(&old, &new, &mut out) else { panic!() };
//! // zrun 100, nzrun 4, the 4 new bytes; the trailing zrun is left out.
//! assert_eq!(&out[..len], b"\x64\x04ABCD");
//! let mut page = old.clone();
//! assert_eq!(decode(&out[..len], &mut page).unwrap(), 104);
//! assert_eq!(page, new);
//! assert_eq!(encode(&new, &new, &mut out), Encoded::Unchanged);
//! ```

use thiserror::Error;

/// QEMU's `ENCODING_FLAG_XBZRLE`: the byte in front of every XBZRLE payload.
pub const ENCODING_FLAG_XBZRLE: u8 = 0x01;

/// Largest run length a 2-byte ULEB128 can carry.
pub const MAX_RUN: usize = 0x3fff;

/// The default `xbzrle-cache-size` parameter of QEMU: 64 MiB.
pub const DEFAULT_CACHE_SIZE: u64 = 64 << 20;

/// Dirty syncs during which a refreshed cache slot is not handed to another
/// page (QEMU's `CACHED_PAGE_LIFETIME`).
pub const CACHED_PAGE_LIFETIME: u64 = 2;

/// Why XBZRLE data (or its record header) is invalid; `at` is the byte offset
/// in the encoded data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XbzrleError {
    /// The byte before the payload is not [`ENCODING_FLAG_XBZRLE`].
    #[error("encoding flag {0:#04x}, only 0x01 (XBZRLE) exists")]
    BadEncodingFlag(u8),
    /// The payload length is more than a page.
    #[error("encoded length {len:#x} is more than the page size {page:#x}")]
    LengthBeyondPage {
        /// The announced length.
        len: usize,
        /// The page size.
        page: usize,
    },
    /// Fewer than the 2 bytes a run header needs are left (QEMU requires 2
    /// even for a 1-byte length).
    #[error("run header at {at:#x} has fewer than 2 bytes left of the encoded data")]
    TruncatedHeader {
        /// Offset of the header.
        at: usize,
    },
    /// A ULEB128 length longer than 2 bytes (or beyond 14 bits).
    #[error("run length at {at:#x} is a ULEB128 longer than 2 bytes")]
    LongLength {
        /// Offset of the length.
        at: usize,
    },
    /// A zero-length unchanged run after the first.
    #[error("unchanged run of length 0 at {at:#x} (only the first may be empty)")]
    EmptyZeroRun {
        /// Offset of the length.
        at: usize,
    },
    /// A zero-length changed run.
    #[error("changed run of length 0 at {at:#x}")]
    EmptyChangedRun {
        /// Offset of the length.
        at: usize,
    },
    /// A run reaching past the end of the page.
    #[error("run at {at:#x} ends at page offset {end:#x}, beyond the page size {page:#x}")]
    RunBeyondPage {
        /// Offset of the run's length.
        at: usize,
        /// Page offset where the run would end.
        end: usize,
        /// The page size.
        page: usize,
    },
    /// A changed run whose bytes are not all in the encoded data.
    #[error("changed run at {at:#x} of {len:#x} bytes, only {left:#x} left in the encoded data")]
    RunBeyondInput {
        /// Offset of the run's length.
        at: usize,
        /// The run's length.
        len: usize,
        /// Bytes left after its length.
        left: usize,
    },
    /// The cache size is more than the guest RAM it caches (QEMU refuses it
    /// too).
    #[error("xbzrle-cache-size {size:#x} is larger than the guest RAM of {ram:#x} bytes")]
    CacheTooLarge {
        /// The requested size.
        size: u64,
        /// Bytes of guest RAM.
        ram: u64,
    },
    /// The cache size is below one page.
    #[error("xbzrle-cache-size {size:#x} is smaller than the page size {page:#x}")]
    CacheTooSmall {
        /// The requested size.
        size: u64,
        /// The page size.
        page: usize,
    },
}

/// What [`encode`] made of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// The page equals the old copy: nothing to send.
    Unchanged,
    /// The encoding needs more room than the output has (a page): send the
    /// page as it is.
    Overflow,
    /// The first `n` bytes of the output hold the encoding.
    Delta(usize),
}

/// Writes `n` (≤ [`MAX_RUN`]) as ULEB128 at `out[d..]`, returning the new `d`.
fn put_len(out: &mut [u8], d: usize, n: usize) -> usize {
    debug_assert!(n <= MAX_RUN);
    if n < 0x80 {
        out[d] = n as u8;
        d + 1
    } else {
        out[d] = (n as u8 & 0x7f) | 0x80;
        out[d + 1] = (n >> 7) as u8;
        d + 2
    }
}

/// Length of the run of equal bytes of `a` and `b` from `i` on.
fn equal_run(a: &[u8], b: &[u8], i: usize) -> usize {
    let (a, b) = (&a[i..], &b[i..]);
    let mut n = 0;
    // Eight bytes at a time; the first differing word is finished bytewise.
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let d = u64::from_le_bytes(x.try_into().expect("8 bytes"))
            ^ u64::from_le_bytes(y.try_into().expect("8 bytes"));
        if d != 0 {
            return n + (d.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Length of the run of differing bytes of `a` and `b` from `i` on.
fn changed_run(a: &[u8], b: &[u8], i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = LO << 7;
    let (a, b) = (&a[i..], &b[i..]);
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let d = u64::from_le_bytes(x.try_into().expect("8 bytes"))
            ^ u64::from_le_bytes(y.try_into().expect("8 bytes"));
        // Some byte of the word is equal (a zero byte of the XOR): finish it
        // bytewise.
        if d.wrapping_sub(LO) & !d & HI != 0 {
            break;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x != y)
        .count()
}

/// Encodes `new` against `old` (two pages of one size) into `out`, whose
/// length is the room the encoding may take (QEMU: one page). The overflow
/// rule is QEMU's: a run header needs 2 bytes of room, a changed run its bytes;
/// a run longer than [`MAX_RUN`] overflows too (pages above 16 KiB).
///
/// ```
/// use vmstate_devices::ram::xbzrle::{encode, Encoded};
///
/// let old = vec![0u8; 4096];
/// // Every other byte changed: more than a page of encoding.
/// let new: Vec<u8> = (0..4096).map(|i| (i % 2) as u8).collect();
/// assert_eq!(encode(&old, &new, &mut vec![0; 4096]), Encoded::Overflow);
/// ```
pub fn encode(old: &[u8], new: &[u8], out: &mut [u8]) -> Encoded {
    assert_eq!(
        old.len(),
        new.len(),
        "XBZRLE compares two pages of one size"
    );
    let (len, room) = (new.len(), out.len());
    let (mut i, mut d) = (0usize, 0usize);
    while i < len {
        if d + 2 > room {
            return Encoded::Overflow;
        }
        let zrun = equal_run(old, new, i);
        if zrun == len {
            return Encoded::Unchanged;
        }
        i += zrun;
        if i == len {
            // The trailing unchanged run is left out.
            return Encoded::Delta(d);
        }
        if zrun > MAX_RUN {
            return Encoded::Overflow;
        }
        d = put_len(out, d, zrun);
        if d + 2 > room {
            return Encoded::Overflow;
        }
        let nzrun = changed_run(old, new, i);
        if nzrun > MAX_RUN {
            return Encoded::Overflow;
        }
        d = put_len(out, d, nzrun);
        if d + nzrun > room {
            return Encoded::Overflow;
        }
        out[d..d + nzrun].copy_from_slice(&new[i..i + nzrun]);
        d += nzrun;
        i += nzrun;
    }
    Encoded::Delta(d)
}

/// Reads a run length at `at` (at least 2 bytes are there): (value, bytes).
fn get_len(enc: &[u8], at: usize) -> Result<(usize, usize), XbzrleError> {
    let b0 = enc[at];
    if b0 & 0x80 == 0 {
        return Ok((usize::from(b0), 1));
    }
    let b1 = enc[at + 1];
    if b1 & 0x80 != 0 {
        return Err(XbzrleError::LongLength { at });
    }
    Ok((usize::from(b0 & 0x7f) | usize::from(b1) << 7, 2))
}

/// Applies `encoded` to `page` in place (the destination's copy of the page is
/// the old page), with every check of QEMU's decoder; returns the page offset
/// the last run ended at. On an error `page` may be partly changed.
///
/// ```
/// use vmstate_devices::ram::xbzrle::{decode, XbzrleError};
///
/// let mut page = vec![0u8; 4096];
/// // zrun 2, nzrun 1, byte 0xaa.
/// assert_eq!(decode(&[2, 1, 0xaa], &mut page), Ok(3));
/// assert_eq!(page[2], 0xaa);
/// // An empty changed run is refused.
/// assert_eq!(decode(&[2, 0, 0xaa], &mut page), Err(XbzrleError::EmptyChangedRun { at: 1 }));
/// // A run header needs 2 bytes of input, even a 1-byte one (as in QEMU).
/// assert_eq!(decode(&[2, 1], &mut page), Err(XbzrleError::TruncatedHeader { at: 1 }));
/// ```
pub fn decode(encoded: &[u8], page: &mut [u8]) -> Result<usize, XbzrleError> {
    let (slen, dlen) = (encoded.len(), page.len());
    let (mut i, mut d) = (0usize, 0usize);
    while i < slen {
        if slen - i < 2 {
            return Err(XbzrleError::TruncatedHeader { at: i });
        }
        let (zrun, n) = get_len(encoded, i)?;
        if i != 0 && zrun == 0 {
            return Err(XbzrleError::EmptyZeroRun { at: i });
        }
        let zat = i;
        i += n;
        d += zrun;
        if d > dlen {
            return Err(XbzrleError::RunBeyondPage {
                at: zat,
                end: d,
                page: dlen,
            });
        }
        if slen - i < 2 {
            return Err(XbzrleError::TruncatedHeader { at: i });
        }
        let (nzrun, n) = get_len(encoded, i)?;
        if nzrun == 0 {
            return Err(XbzrleError::EmptyChangedRun { at: i });
        }
        let nat = i;
        i += n;
        if d + nzrun > dlen {
            return Err(XbzrleError::RunBeyondPage {
                at: nat,
                end: d + nzrun,
                page: dlen,
            });
        }
        if nzrun > slen - i {
            return Err(XbzrleError::RunBeyondInput {
                at: nat,
                len: nzrun,
                left: slen - i,
            });
        }
        page[d..d + nzrun].copy_from_slice(&encoded[i..i + nzrun]);
        d += nzrun;
        i += nzrun;
    }
    Ok(d)
}

/// How the source uses XBZRLE (capability `xbzrle`, parameter
/// `xbzrle-cache-size`). The destination needs nothing: it always accepts
/// XBZRLE records and decodes them against its own copy of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XbzrleConfig {
    /// Bytes of the page cache (QEMU's `xbzrle-cache-size`, default 64 MiB).
    pub cache_size: u64,
}

impl Default for XbzrleConfig {
    fn default() -> Self {
        XbzrleConfig {
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

/// One slot of the cache: which page it holds and when it was last refreshed.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Page address, `None` while the slot is empty.
    addr: Option<u64>,
    /// Dirty-sync count of the last insert or hit.
    age: u64,
}

/// QEMU's XBZRLE page cache: the page last sent for each cached address.
///
/// The pages live in one buffer of `slots × page_size` bytes allocated (and,
/// being zeroed memory, paged in lazily by the OS) when the cache is made, so
/// caching a page allocates nothing.
///
/// ```
/// use vmstate_devices::ram::xbzrle::PageCache;
///
/// // 3 pages of room round down to 2 slots.
/// let mut cache = PageCache::new(3 * 4096, 4096).unwrap();
/// assert_eq!(cache.slots(), 2);
/// assert!(!cache.is_cached(0x1000, 1));
/// assert!(cache.insert(0x1000, &[7; 4096], 1));
/// assert!(cache.is_cached(0x1000, 1));
/// // 0x3000 maps to the same slot, refreshed within the lifetime: refused.
/// assert!(!cache.insert(0x3000, &[8; 4096], 2));
/// // Two syncs later the slot may be taken over.
/// assert!(cache.insert(0x3000, &[8; 4096], 3));
/// assert!(!cache.is_cached(0x1000, 3));
/// assert_eq!(cache.page_mut(0x3000).unwrap()[0], 8);
/// ```
#[derive(Debug, Clone)]
pub struct PageCache {
    page_size: usize,
    slots: Vec<Slot>,
    data: Vec<u8>,
}

impl PageCache {
    /// A cache of `cache_size` bytes of `page_size` pages: `cache_size /
    /// page_size` slots rounded down to a power of two.
    pub fn new(cache_size: u64, page_size: usize) -> Result<Self, XbzrleError> {
        let pages = cache_size / page_size as u64;
        if pages == 0 {
            return Err(XbzrleError::CacheTooSmall {
                size: cache_size,
                page: page_size,
            });
        }
        // Round down to a power of two (QEMU's pow2floor).
        let slots = 1usize << (63 - pages.leading_zeros());
        Ok(PageCache {
            page_size,
            slots: vec![Slot { addr: None, age: 0 }; slots],
            data: vec![0; slots * page_size],
        })
    }

    /// Number of slots (pages the cache can hold).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, addr: u64) -> usize {
        (addr / self.page_size as u64) as usize & (self.slots.len() - 1)
    }

    /// Whether the page at `addr` is cached; a hit refreshes its age to
    /// `age` (the current dirty-sync count).
    pub fn is_cached(&mut self, addr: u64, age: u64) -> bool {
        let i = self.index(addr);
        let slot = &mut self.slots[i];
        if slot.addr == Some(addr) {
            slot.age = age;
            true
        } else {
            false
        }
    }

    /// Caches `page` for `addr`, unless its slot holds another page refreshed
    /// within the last [`CACHED_PAGE_LIFETIME`] syncs; returns whether it did.
    pub fn insert(&mut self, addr: u64, page: &[u8], age: u64) -> bool {
        let i = self.index(addr);
        let slot = &mut self.slots[i];
        if slot
            .addr
            .is_some_and(|held| held != addr && slot.age + CACHED_PAGE_LIFETIME > age)
        {
            return false;
        }
        *slot = Slot {
            addr: Some(addr),
            age,
        };
        let ps = self.page_size;
        self.data[i * ps..(i + 1) * ps].copy_from_slice(page);
        true
    }

    /// The cached copy of the page at `addr`, when it is cached.
    pub fn page_mut(&mut self, addr: u64) -> Option<&mut [u8]> {
        let i = self.index(addr);
        let ps = self.page_size;
        (self.slots[i].addr == Some(addr)).then(|| &mut self.data[i * ps..(i + 1) * ps])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_uleb128_of_one_or_two_bytes() {
        let mut out = [0u8; 2];
        for (n, bytes) in [
            (0usize, &[0u8][..]),
            (0x7f, &[0x7f]),
            (0x80, &[0x80, 0x01]),
            (4095, &[0xff, 0x1f]),
            (MAX_RUN, &[0xff, 0x7f]),
        ] {
            let d = put_len(&mut out, 0, n);
            assert_eq!(&out[..d], bytes, "{n:#x}");
            assert_eq!(get_len(&out, 0), Ok((n, d)));
        }
        assert_eq!(
            get_len(&[0x80, 0x80], 0),
            Err(XbzrleError::LongLength { at: 0 })
        );
    }

    #[test]
    fn runs_are_maximal_in_and_across_words() {
        let a = [0u8; 40];
        let mut b = a;
        b[3] = 1;
        b[4] = 1;
        b[13..21].fill(9);
        assert_eq!(equal_run(&a, &b, 0), 3);
        assert_eq!(changed_run(&a, &b, 3), 2);
        assert_eq!(equal_run(&a, &b, 5), 8);
        assert_eq!(changed_run(&a, &b, 13), 8);
        assert_eq!(equal_run(&a, &b, 21), 19);
    }

    #[test]
    fn cache_rounds_down_to_a_power_of_two() {
        assert_eq!(PageCache::new(64 << 20, 4096).unwrap().slots(), 16384);
        assert_eq!(PageCache::new(5 * 4096 + 7, 4096).unwrap().slots(), 4);
        assert!(matches!(
            PageCache::new(4095, 4096),
            Err(XbzrleError::CacheTooSmall { .. })
        ));
    }
}
