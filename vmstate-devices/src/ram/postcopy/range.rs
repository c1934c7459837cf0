//! The checks every byte range a peer sends (a page request on the source, a
//! discard on the destination) passes before it touches a block: not empty,
//! page aligned, no overflow, within used_length, and for requests not longer
//! than one request may be.

use super::error::{BadRange, PostcopyRamError};

/// A checked range: the target pages it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpan {
    /// First page.
    pub first: u64,
    /// Number of pages (at least 1).
    pub pages: u64,
}

/// What a range is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RangeLimits<'a> {
    /// "page request" or "discard" (for the error).
    pub what: &'static str,
    /// Block name.
    pub block: &'a str,
    /// The block's used_length.
    pub used: u64,
    /// The block's (target) page size.
    pub page_size: u64,
    /// Longest range allowed, if any.
    pub max_len: Option<u64>,
}

impl RangeLimits<'_> {
    /// Checks `len` bytes at `start`.
    ///
    /// ```
    /// use vmstate_devices::ram::postcopy::range::{PageSpan, RangeLimits};
    ///
    /// let limits = RangeLimits {
    ///     what: "discard",
    ///     block: "pc.ram",
    ///     used: 16 * 4096,
    ///     page_size: 4096,
    ///     max_len: None,
    /// };
    /// assert_eq!(limits.check(0x2000, 0x3000).unwrap(), PageSpan { first: 2, pages: 3 });
    /// assert!(limits.check(0x2000, 0).is_err());
    /// assert!(limits.check(15 * 4096, 2 * 4096).is_err());
    /// ```
    pub fn check(&self, start: u64, len: u64) -> Result<PageSpan, PostcopyRamError> {
        let refuse = |why| PostcopyRamError::BadRange {
            what: self.what,
            block: self.block.to_string(),
            start,
            len,
            why,
        };
        if len == 0 {
            return Err(refuse(BadRange::Empty));
        }
        let ps = self.page_size;
        if !start.is_multiple_of(ps) || !len.is_multiple_of(ps) {
            return Err(refuse(BadRange::Unaligned { page_size: ps }));
        }
        let end = start.checked_add(len).ok_or(refuse(BadRange::Overflow))?;
        if end > self.used {
            return Err(refuse(BadRange::BeyondUsed { used: self.used }));
        }
        if let Some(max) = self.max_len.filter(|max| len > *max) {
            return Err(refuse(BadRange::TooLong { max }));
        }
        Ok(PageSpan {
            first: start / ps,
            pages: len / ps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_range_is_refused_with_its_reason() {
        let limits = RangeLimits {
            what: "page request",
            block: "pc.ram",
            used: 64 * 4096,
            page_size: 4096,
            max_len: Some(8 * 4096),
        };
        let cases: [(u64, u64, BadRange); 6] = [
            (0, 0, BadRange::Empty),
            (1, 4096, BadRange::Unaligned { page_size: 4096 }),
            (0, 100, BadRange::Unaligned { page_size: 4096 }),
            (u64::MAX - 4095, 8192, BadRange::Overflow),
            (
                63 * 4096,
                2 * 4096,
                BadRange::BeyondUsed { used: 64 * 4096 },
            ),
            (0, 9 * 4096, BadRange::TooLong { max: 8 * 4096 }),
        ];
        for (start, len, want) in cases {
            match limits.check(start, len) {
                Err(PostcopyRamError::BadRange { why, .. }) => {
                    assert_eq!(why, want, "{start:#x}+{len:#x}")
                }
                other => panic!("{start:#x}+{len:#x}: {other:?}"),
            }
        }
        assert_eq!(
            limits.check(63 * 4096, 4096).unwrap(),
            PageSpan {
                first: 63,
                pages: 1
            }
        );
    }
}
