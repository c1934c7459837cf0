//! What can go wrong on the postcopy side of the "ram" section: a peer's page
//! request, discard or received bitmap that does not fit the local block, and
//! a blocking guest access that cannot be satisfied.

use std::time::Duration;

use thiserror::Error;

/// Why a byte range of a block (a page request or a discard) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRange {
    /// Zero bytes.
    Empty,
    /// Start or length is not a multiple of the block's page size.
    Unaligned {
        /// The block's page size.
        page_size: u64,
    },
    /// start + len does not fit in 64 bits.
    Overflow,
    /// The range ends beyond the block's used_length.
    BeyondUsed {
        /// The block's used_length.
        used: u64,
    },
    /// Longer than one request may be (a hostile destination asking for a
    /// whole block in one message).
    TooLong {
        /// The most one request may cover.
        max: u64,
    },
}

impl std::fmt::Display for BadRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRange::Empty => write!(f, "it is empty"),
            BadRange::Unaligned { page_size } => {
                write!(f, "it is not aligned to the page size {page_size:#x}")
            }
            BadRange::Overflow => write!(f, "its end overflows 64 bits"),
            BadRange::BeyondUsed { used } => {
                write!(f, "it ends beyond the used_length {used:#x}")
            }
            BadRange::TooLong { max } => write!(f, "it is longer than the {max:#x} bytes allowed"),
        }
    }
}

/// A postcopy failure of the "ram" section, naming the block (and offset)
/// concerned.
///
/// ```
/// use vmstate_devices::ram::postcopy::{BadRange, PostcopyRamError};
///
/// let e = PostcopyRamError::BadRange {
///     what: "page request",
///     block: "pc.ram".into(),
///     start: 0xff000,
///     len: 0x2000,
///     why: BadRange::BeyondUsed { used: 0x100000 },
/// };
/// assert_eq!(
///     e.to_string(),
///     "page request for RAMBlock \"pc.ram\" at 0xff000 length 0x2000 refused: it ends beyond the used_length 0x100000"
/// );
/// ```
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostcopyRamError {
    /// A page request (source) or a discard (destination) outside the block.
    #[error("{what} for RAMBlock \"{block}\" at {start:#x} length {len:#x} refused: {why}")]
    BadRange {
        /// "page request" or "discard".
        what: &'static str,
        /// Block name.
        block: String,
        /// Start offset in the block, as sent.
        start: u64,
        /// Length in bytes, as sent.
        len: u64,
        /// Why it was refused.
        why: BadRange,
    },
    /// A block this side does not have.
    #[error("{what}: unknown RAMBlock \"{block}\"")]
    UnknownBlock {
        /// What named it.
        what: &'static str,
        /// Block name.
        block: String,
    },
    /// A received bitmap of another size than the block's (QEMU: "bitmap
    /// size mismatch").
    #[error(
        "received bitmap of RAMBlock \"{block}\": {size:#x} bytes, the block needs {expected:#x}"
    )]
    RecvBitmapSize {
        /// Block name.
        block: String,
        /// Size sent.
        size: u64,
        /// Size of the local block's bitmap.
        expected: u64,
    },
    /// The bitmap blob ends before its announced size and end mark.
    #[error(
        "received bitmap of RAMBlock \"{block}\": blob of {len:#x} bytes, {need:#x} announced"
    )]
    RecvBitmapTruncated {
        /// Block name.
        block: String,
        /// Bytes there are.
        len: u64,
        /// Bytes the size word and end mark call for.
        need: u64,
    },
    /// The word after the bitmap is not QEMU's end mark 0x0123456789abcdef.
    #[error("received bitmap of RAMBlock \"{block}\": end mark {found:#018x}, expected 0x0123456789abcdef")]
    RecvBitmapEndMark {
        /// Block name.
        block: String,
        /// The word found.
        found: u64,
    },
    /// A page request or resume bitmap before the section saved anything.
    #[error("{what} before the section's save_setup")]
    NotSaving {
        /// What came too early.
        what: &'static str,
    },
    /// A guest access waited this long for a missing page.
    #[error("guest access to RAMBlock \"{block}\" offset {offset:#x}: the page did not arrive within {waited:?}")]
    PageTimeout {
        /// Block name.
        block: String,
        /// Offset of the page.
        offset: u64,
        /// How long the access waited.
        waited: Duration,
    },
    /// The accessor was cancelled while it waited.
    #[error("guest access to RAMBlock \"{block}\" offset {offset:#x}: cancelled while waiting for the page")]
    AccessCancelled {
        /// Block name.
        block: String,
        /// Offset of the page.
        offset: u64,
    },
    /// The incoming migration ended (failed) before the page arrived.
    #[error("guest access to RAMBlock \"{block}\" offset {offset:#x}: the migration ended without the page")]
    EndedWithoutPage {
        /// Block name.
        block: String,
        /// Offset of the page.
        offset: u64,
    },
}
