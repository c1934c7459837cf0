//! [`TargetPage`]: the guest's target page size, a parameter of a migration
//! (QEMU x86's 4 KiB by default) rather than a constant in the runtime. It sets
//! the configuration record's target-page-bits subsection, the vmdesc trailer's
//! `page_size`, the page size POSTCOPY_ADVISE announces and the destination
//! checks, and the granularity of a RAM handler's discards and bitmaps.

use super::format::{MAX_TARGET_PAGE_BITS, MIN_TARGET_PAGE_BITS, TARGET_PAGE_BITS_X86};
use crate::error::{Error, ErrorKind, Result};

/// A target page size: its bits, and the target's minimum page bits (a
/// configuration record carries the page bits only when they exceed that
/// minimum, as QEMU's `vmstate_target_page_bits` subsection does).
///
/// ```
/// use vmstate_runtime::savevm::TargetPage;
///
/// assert_eq!(TargetPage::default().size(), 4096); // QEMU x86
/// let arm64k = TargetPage::new(16, 10).unwrap();
/// assert_eq!(arm64k.size(), 65536);
/// assert!(arm64k.bits_sent());
/// assert!(TargetPage::new(12, 13).is_err()); // below its own minimum
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetPage {
    bits: u32,
    min_bits: u32,
}

impl TargetPage {
    /// QEMU x86's target page: 4 KiB, which is also the target's minimum.
    pub const X86: TargetPage = TargetPage {
        bits: TARGET_PAGE_BITS_X86,
        min_bits: TARGET_PAGE_BITS_X86,
    };

    /// A page of `1 << bits` bytes on a target whose smallest page has
    /// `min_bits`; both within QEMU's targets' range and `min_bits <= bits`.
    pub fn new(bits: u32, min_bits: u32) -> Result<Self> {
        let range = MIN_TARGET_PAGE_BITS..=MAX_TARGET_PAGE_BITS;
        if !range.contains(&bits) || !range.contains(&min_bits) || min_bits > bits {
            return Err(Error::new(ErrorKind::BadTargetPageBits { bits, min_bits }));
        }
        Ok(TargetPage { bits, min_bits })
    }

    /// The page bits.
    pub fn bits(self) -> u32 {
        self.bits
    }

    /// The target's minimum page bits (what a configuration record without the
    /// page-bits subsection means).
    pub fn min_bits(self) -> u32 {
        self.min_bits
    }

    /// The page size in bytes.
    pub fn size(self) -> u64 {
        1 << self.bits
    }

    /// Whether the configuration record carries the page bits (they exceed the
    /// target's minimum).
    pub fn bits_sent(self) -> bool {
        self.bits > self.min_bits
    }
}

impl Default for TargetPage {
    fn default() -> Self {
        TargetPage::X86
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::savevm::format::TARGET_PAGE_SIZE;

    #[test]
    fn x86_is_the_default_and_the_named_constant() {
        assert_eq!(TargetPage::default(), TargetPage::X86);
        assert_eq!(TargetPage::X86.size(), TARGET_PAGE_SIZE);
        assert!(!TargetPage::X86.bits_sent());
    }

    #[test]
    fn out_of_range_bits_are_refused_with_their_values() {
        for (bits, min) in [(9, 9), (17, 12), (12, 13), (12, 8)] {
            let e = TargetPage::new(bits, min).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::BadTargetPageBits { bits: b, min_bits: m } if *b == bits && *m == min),
                "{e}"
            );
        }
        assert_eq!(TargetPage::new(14, 12).unwrap().size(), 16384);
    }
}
